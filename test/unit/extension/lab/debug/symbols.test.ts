// kallsyms -> the symbol-only ELF gdb loads (checked with the real gdb when installed), and .ko reading.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseKallsyms } from '../../../../../extension/lab/debug/kallsyms';
import { writeSymbolElf } from '../../../../../extension/lab/debug/symbol-elf';
import { ElfFile, SHF_ALLOC, SHF_EXECINSTR, SHT_NOBITS, buildIdOfNotes, readModuleFile } from '../../../../../extension/lab/debug/elf-read';
import { elfHeader } from './elf-fixture';
import { findExecutable } from '../../../../../extension/lab/host/host';

const KALLSYMS = [
  '0000000000000000 A fixed_percpu_data',
  '0000000000001000 A cpu_debug_store',
  'ffffffff81000000 T _text',
  'ffffffff81000000 T startup_64',
  'ffffffff81690910 t sysrq_handle_crash',
  'ffffffff81690930 t sysrq_handle_reboot',
  'ffffffff81a01cb0 T panic',
  'ffffffff81e01d32 T _etext',
  'ffffffff82000000 D __start_rodata',
  'ffffffff82161900 D linux_banner',
  'ffffffff82a079c0 D jiffies',
  'ffffffffc0201020 t vp_legacy_get_features\t[virtio_pci_legacy_dev]',
  'ffffffffc0201060 t vp_legacy_set_features\t[virtio_pci_legacy_dev]',
  'ffffffffc0337000 t vc_crypt\t[vlab_cryptodev]',
  'ffffffffc0343080 d vc_stats\t[vlab_cryptodev]',
  'ffffffffc0400000 t later_module_fn\t[later]',
  'garbage line',
  'ffffffff81000000 T name;with;semicolons\x01',
  'ffffffffc0500000 t odd\t[bad/module]',
].join('\n');

function withDir(fn: (dir: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'vlab-sym-'));
  try {
    fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('kallsyms: kernel-half symbols, typed, sorted, with their module; per-CPU offsets, odd lines and names left out', () => {
  const k = parseKallsyms(KALLSYMS);
  assert.equal(k.textAddress, 0xffff_ffff_8100_0000n);
  const names = k.symbols.map((s) => s.name);
  assert.ok(!names.includes('fixed_percpu_data'));
  assert.ok(!names.includes('odd'));
  assert.ok(!names.some((n) => n.includes('\x01')));
  assert.deepEqual(k.symbols.find((s) => s.name === 'vc_crypt'), { address: 0xffff_ffff_c033_7000n, name: 'vc_crypt', code: true, global: false, module: 'vlab_cryptodev' });
  assert.deepEqual(k.symbols.find((s) => s.name === 'jiffies'), { address: 0xffff_ffff_82a0_79c0n, name: 'jiffies', code: false, global: true });
  assert.deepEqual([...k.symbols].sort((a, b) => (a.address < b.address ? -1 : 1)).map((s) => s.name), names);
  assert.throws(() => parseKallsyms('0000000000000000 T _text\n0000000000000000 T panic\n'), /not read as root/);
});

test('symbol ELF: code runs are executable NOBITS sections at the real addresses; a left-out module leaves no section over it', () => {
  const k = parseKallsyms(KALLSYMS);
  withDir((dir) => {
    const path = join(dir, 'k.elf');
    writeFileSync(path, writeSymbolElf(k.symbols, new Set(['vlab_cryptodev'])));
    const elf = ElfFile.open(path);
    try {
      const runs = elf.sections.filter((s) => s.type === SHT_NOBITS);
      assert.ok(runs.every((s) => (s.flags & SHF_ALLOC) !== 0n));
      const holding = (a: bigint) => runs.filter((s) => a >= s.addr && a < s.addr + BigInt(s.size));
      assert.equal(holding(0xffff_ffff_8169_0910n).length, 1);
      assert.ok((holding(0xffff_ffff_8169_0910n)[0]!.flags & SHF_EXECINSTR) !== 0n, 'functions are in code sections');
      assert.equal(holding(0xffff_ffff_8216_1900n)[0]!.flags & SHF_EXECINSTR, 0n, 'data is not');
      assert.deepEqual(holding(0xffff_ffff_c033_7000n), [], "the left-out module's .text is free for its .ko");
      assert.deepEqual(holding(0xffff_ffff_c034_3080n), []);
    } finally {
      elf.close();
    }
    const gdb = findExecutable('gdb', process.env.PATH ?? '');
    if (!gdb) return;
    const out = execFileSync(gdb, ['-nx', '-batch', '-ex', `symbol-file ${path}`, '-ex', 'info symbol 0xffffffff81690918', '-ex', 'info address jiffies', '-ex', 'info symbol 0xffffffffc0201064', '-ex', 'break panic'], { encoding: 'utf8' });
    assert.match(out, /^sysrq_handle_crash \+ 8 in section \.text\.\d+$/m);
    assert.match(out, /Symbol "jiffies" is at 0xffffffff82a079c0/);
    assert.match(out, /^vp_legacy_set_features \+ 4 in section/m);
    assert.match(out, /Breakpoint 1 at 0xffffffff81a01cb0/);
  });
});

/** A minimal relocatable ELF with the given sections (name, type, flags, bytes). */
function relocatable(sections: { name: string; type: number; flags: bigint; data: Buffer }[]): Buffer {
  const names = Buffer.from(`\0${sections.map((s) => `${s.name}\0`).join('')}.shstrtab\0`, 'latin1');
  let off = 64;
  const placed = sections.map((s) => {
    const at = off;
    off += s.data.length;
    return at;
  });
  const strOff = off;
  off += names.length;
  const shoff = (off + 7) & ~7;
  const shnum = sections.length + 2;
  const out = Buffer.alloc(shoff + shnum * 64);
  elfHeader(out, { type: 1 /* ET_REL */, shoff, shnum });
  let nameAt = 1;
  const header = (i: number, name: number, type: number, flags: bigint, offset: number, size: number): void => {
    const o = shoff + i * 64;
    out.writeUInt32LE(name, o);
    out.writeUInt32LE(type, o + 4);
    out.writeBigUInt64LE(flags, o + 8);
    out.writeBigUInt64LE(BigInt(offset), o + 24);
    out.writeBigUInt64LE(BigInt(size), o + 32);
  };
  sections.forEach((s, i) => {
    s.data.copy(out, placed[i]!);
    header(i + 1, nameAt, s.type, s.flags, placed[i]!, s.data.length);
    nameAt += s.name.length + 1;
  });
  names.copy(out, strOff);
  header(shnum - 1, nameAt, 3, 0n, strOff, names.length);
  return out;
}

function buildIdNote(id: Buffer): Buffer {
  const n = Buffer.alloc(16 + id.length);
  n.writeUInt32LE(4, 0);
  n.writeUInt32LE(id.length, 4);
  n.writeUInt32LE(3, 8);
  n.write('GNU\0', 12, 'latin1');
  id.copy(n, 16);
  return n;
}

test('a .ko: its name from .modinfo, its build-id, its loaded sections; a file that is no module is refused', () => {
  withDir((dir) => {
    const id = Buffer.from('00112233445566778899aabbccddeeff01234567', 'hex');
    const ko = join(dir, 'my-mod.ko');
    writeFileSync(ko, relocatable([
      { name: '.note.gnu.build-id', type: 7, flags: 2n, data: buildIdNote(id) },
      { name: '.text', type: 1, flags: 6n, data: Buffer.alloc(32) },
      { name: '.init.text', type: 1, flags: 6n, data: Buffer.alloc(8) },
      { name: '.modinfo', type: 1, flags: 2n, data: Buffer.from('license=GPL\0name=my_mod\0', 'latin1') },
      { name: '.gnu.linkonce.this_module', type: 1, flags: 3n, data: Buffer.alloc(64) },
      { name: '.debug_info', type: 1, flags: 0n, data: Buffer.alloc(4) },
      { name: '.bss', type: 8, flags: 3n, data: Buffer.alloc(0) },
    ]));
    const info = readModuleFile(ko);
    assert.equal(info.name, 'my_mod');
    assert.equal(info.buildId, id.toString('hex'));
    assert.deepEqual(info.allocSections, ['.note.gnu.build-id', '.text', '.init.text', '.modinfo', '.gnu.linkonce.this_module']);
    assert.equal(buildIdOfNotes(Buffer.alloc(3)), undefined);
    const notModule = join(dir, 'x.ko');
    writeFileSync(notModule, relocatable([{ name: '.text', type: 1, flags: 6n, data: Buffer.alloc(4) }]));
    assert.throws(() => readModuleFile(notModule), /not a kernel module/);
    writeFileSync(notModule, 'not an elf file at all, but long enough to hold a header.....................');
    assert.throws(() => readModuleFile(notModule), /not an ELF file/);
  });
});
