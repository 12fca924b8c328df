// The gdb index of a QEMU paging=false core: synthetic guest page tables in a synthetic core.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { elfHeader } from './elf-fixture';
import { PHYSICAL_ALIAS_BASE, addVirtualIndex, qemuCpuControlRegs, readCoreVirtual, walkKernelHalf } from '../../../../../extension/lab/debug/core-vaddr';

const PAGE = 4096;

/** Guest RAM with 4-/5-level page tables built by map(); tables are allocated from `next`. */
class GuestMemory {
  readonly ram: Buffer;
  private next: number;
  readonly root: number;
  /** `firstTable`: where the root table goes (page 0 stays empty). */
  constructor(size: number, private readonly levels: 4 | 5, firstTable = PAGE) {
    this.ram = Buffer.alloc(size);
    this.next = firstTable;
    this.root = this.table();
  }
  table(): number {
    const at = this.next;
    this.next += PAGE;
    return at;
  }
  page(fill: number): number {
    const at = this.table();
    this.ram.fill(fill, at, at + PAGE);
    return at;
  }
  /** Maps va -> pa; `large` ends the walk at level 2 (2 MiB) or 3 (1 GiB). */
  map(va: bigint, pa: number, large?: 2 | 3): void {
    let table = this.root;
    for (let level: number = this.levels; level >= 1; level--) {
      const index = Number((va >> BigInt(12 + 9 * (level - 1))) & 511n);
      const at = table + index * 8;
      if (level === 1 || level === large) {
        this.ram.writeBigUInt64LE(BigInt(pa) | 1n | (level === large ? 0x80n : 0n), at);
        return;
      }
      let entry = this.ram.readBigUInt64LE(at);
      if ((entry & 1n) === 0n) {
        entry = BigInt(this.table()) | 3n;
        this.ram.writeBigUInt64LE(entry, at);
      }
      table = Number(entry & 0x000f_ffff_ffff_f000n);
    }
  }
}

/** A core as QEMU writes it with paging=false: one QEMU CPU note, one PT_LOAD with vaddr = paddr = 0. */
function writeCore(path: string, ram: Buffer, cr3: bigint, cr4: bigint): void {
  const desc = Buffer.alloc(440);
  desc.writeUInt32LE(1, 0);
  desc.writeUInt32LE(440, 4);
  desc.writeBigUInt64LE(cr3, 416);
  desc.writeBigUInt64LE(cr4, 424);
  const note = Buffer.alloc(12 + 8 + desc.length);
  note.writeUInt32LE(5, 0);
  note.writeUInt32LE(desc.length, 4);
  note.writeUInt32LE(0, 8);
  note.write('QEMU\0', 12, 'latin1');
  desc.copy(note, 20);
  const phoff = 64;
  const noteOff = phoff + 2 * 56;
  const loadOff = PAGE;
  const h = Buffer.alloc(loadOff);
  elfHeader(h, { type: 4 /* ET_CORE */, phoff, phnum: 2 });
  const ph = (i: number, type: number, off: number, size: number): void => {
    const o = phoff + i * 56;
    h.writeUInt32LE(type, o);
    h.writeBigUInt64LE(BigInt(off), o + 8);
    h.writeBigUInt64LE(BigInt(size), o + 32);
    h.writeBigUInt64LE(BigInt(size), o + 40);
  };
  ph(0, 4, noteOff, note.length);
  ph(1, 1, loadOff, ram.length);
  note.copy(h, noteOff);
  writeFileSync(path, Buffer.concat([h, ram]));
}

function withCore(fn: (path: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'vlab-core-'));
  try {
    fn(join(dir, 'core.elf'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const TEXT = 0xffff_ffff_8100_0000n;

for (const levels of [4, 5] as const) {
  test(`${levels}-level page tables: kernel mappings become PT_LOADs gdb reads; user half, espfix and pages outside the dump are left out`, () => {
    withCore((path) => {
      const mem = new GuestMemory(64 * PAGE, levels);
      const a = mem.page(0xaa);
      const b = mem.page(0xbb);
      mem.map(TEXT, a);
      mem.map(TEXT + 0x1000n, b); // physically contiguous with a: one mapping
      mem.map(TEXT + 0x20_0000n, 0x4000_0000, 2); // a 2 MiB page outside the dump
      mem.map(0xffff_ff00_0000_0000n, a); // espfix
      mem.map(0x40_0000n, b); // user half
      const cr4 = levels === 5 ? 1n << 12n : 0n;
      writeCore(path, mem.ram, BigInt(mem.root) | 0x5n /* PCID */, cr4);
      assert.deepEqual(addVirtualIndex(path), { added: 1, pagingLevels: levels });
      assert.deepEqual(readCoreVirtual(path, TEXT, 4), Buffer.alloc(4, 0xaa));
      assert.deepEqual(readCoreVirtual(path, TEXT + 0x1ffcn, 4), Buffer.alloc(4, 0xbb));
      assert.equal(readCoreVirtual(path, TEXT + 0x2000n, 4), undefined);
      assert.equal(readCoreVirtual(path, 0x40_0000n, 4), undefined, 'user addresses are not indexed');
      // The physical PT_LOAD keeps its paddr (crash) but no longer claims low virtual addresses (gdb).
      const core = readFileSync(path);
      const phoff = Number(core.readBigUInt64LE(32));
      assert.equal(core.readUInt16LE(56), 3);
      assert.equal(core.readBigUInt64LE(phoff + 56 + 16), PHYSICAL_ALIAS_BASE);
      assert.equal(core.readBigUInt64LE(phoff + 56 + 24), 0n);
      assert.deepEqual(addVirtualIndex(path), { added: 0 }, 'a second run changes nothing');
    });
  });
}

test('CR3 of every CPU comes from QEMU notes; a CPU holding the PTI user copy does not win', () => {
  withCore((path) => {
    // PTI: the kernel's root table at an even page (0x2000), the user copy right after it (0x3000, here
    // empty); a CPU that was in user mode has the user copy in CR3.
    const mem = new GuestMemory(32 * PAGE, 4, 2 * PAGE);
    const userCopy = mem.table();
    assert.equal(userCopy, mem.root + 0x1000);
    mem.map(TEXT, mem.page(1));
    writeCore(path, mem.ram, BigInt(userCopy), 0n);
    const regs = qemuCpuControlRegs(readFileSync(path).subarray(64 + 112, 64 + 112 + 460));
    assert.equal(regs.length, 1);
    assert.equal(addVirtualIndex(path).added, 1, 'the kernel copy (bit 12 clear) is walked');
  });
});

test('the walk is bounded: page tables that point at themselves (guest memory) do not run away', () => {
  const table = Buffer.alloc(PAGE);
  for (let i = 256; i < 512; i++) table.writeBigUInt64LE(0x1000n | 3n, i * 8);
  assert.throws(() => walkKernelHalf(0x1000n, 4, () => table), /more than 60000 kernel mappings|too large/);
});
