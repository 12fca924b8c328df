// The gdb command lines and what the guest reports: quoting, add-symbol-file, argv, parsing (guest-written).
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { addSymbolFileCommand, gdbArgv, gdbQuote, symbolFileCommand } from '../../../../../extension/lab/debug/gdb-commands';
import { guestSymbolsScript, parseGuestSymbols, readSnapshot, writeSnapshot } from '../../../../../extension/lab/debug/guest-symbols';

test('gdbQuote: plain paths as they are, others double-quoted with \\ and " escaped; newlines refused', () => {
  assert.equal(gdbQuote('/ws/.vlab/guest/driver/vlab_cryptodev.ko'), '/ws/.vlab/guest/driver/vlab_cryptodev.ko');
  assert.equal(gdbQuote('/my ws/a"b\\c.ko'), '"/my ws/a\\"b\\\\c.ko"');
  assert.throws(() => gdbQuote('/a\nshell rm -rf ~'), /NUL or newline/);
});

test('add-symbol-file: .text positional, then the .ko\'s sections in its order, where the guest has them or parked', () => {
  const cmd = addSymbolFileCommand('/m/x.ko', ['.note.gnu.build-id', '.text', '.init.text', '.rodata', '.data', '.bss', '.not-loaded'], {
    name: 'x',
    sections: { '.text': '0xffffffffc0337000', '.data': '0xffffffffc0343080', '.bss': '0xffffffffc0343700', '.rodata': '0xffffffffc033f060', '.init.text': '0xffffffffc0347000', '.strtab': '0xffffffffc0350000', '.note.gnu.build-id': '0xffffffffc033f000' },
  });
  assert.equal(cmd, 'add-symbol-file /m/x.ko 0xffffffffc0337000 -s .note.gnu.build-id 0xffffffffc033f000 -s .init.text 0xffffffffc0347000 -s .rodata 0xffffffffc033f060 -s .data 0xffffffffc0343080 -s .bss 0xffffffffc0343700 -s .not-loaded 0x2000000000000000');
  assert.throws(() => addSymbolFileCommand('/m/x.ko', ['.text'], { name: 'x', sections: { '.data': '0x1' } }), /no \.text address/);
  // Names and addresses from the guest are checked again here.
  const odd = addSymbolFileCommand('/m/x.ko', ['.text', '.data; shell id'], { name: 'x', sections: { '.text': '0xffffffffc0337000', '.data; shell id': '0x1' } });
  assert.equal(odd, 'add-symbol-file /m/x.ko 0xffffffffc0337000');
  const two = addSymbolFileCommand('/m/x.ko', ['.modinfo', '__versions'], { name: 'x', sections: { '.text': '0xffffffffc0337000' } });
  assert.match(two, /-s \.modinfo 0x2000000000000000 -s __versions 0x2000000100000000$/);
});

test('symbol-file with a KASLR offset; the gdb argv: batch is -nx -batch and ends a live session with detach', () => {
  assert.equal(symbolFileCommand('/v'), 'symbol-file /v');
  assert.equal(symbolFileCommand('/v', 0x2c800000n), 'symbol-file -o 0x2c800000 /v');
  assert.equal(symbolFileCommand('/v', -0x1000n), 'symbol-file -o -0x1000 /v');
  assert.deepEqual(gdbArgv(['set pagination off', 'target remote 127.0.0.1:1234'], { batch: true, live: true, ex: ['bt'] }), ['-q', '-nx', '-batch', '-ex', 'set pagination off', '-ex', 'target remote 127.0.0.1:1234', '-ex', 'bt', '-ex', 'detach']);
  assert.deepEqual(gdbArgv(['core-file /d.elf'], { batch: true, live: false, ex: ['bt'] }), ['-q', '-nx', '-batch', '-ex', 'core-file /d.elf', '-ex', 'bt']);
  assert.deepEqual(gdbArgv(['target remote 127.0.0.1:1'], { batch: false, live: true, ex: [] }), ['-q', '-ex', 'target remote 127.0.0.1:1']);
  assert.throws(() => gdbArgv([], { batch: true, live: true, ex: ['bt\nshell id'] }), /span lines/);
});

const NOTE_HEX = '040000001400000003000000474e5500' + '6a2b4ac77585b8cf102cba771300e573c8489b69';
const OUTPUT = [
  '@release 6.1.0-57-amd64',
  `@kernel-notes 040000000600000001000000584e00000000000000000000${NOTE_HEX}`,
  '@text ffffffff81000000 T _text',
  '@sect /sys/module/vlab_cryptodev/sections/.text:0xffffffffc0337000',
  '@sect /sys/module/vlab_cryptodev/sections/.data:0xffffffffc0343080',
  '@sect /sys/module/vlab_cryptodev/sections/.bad name:0x1',
  '@sect /sys/module/vlab_cryptodev/sections/.rodata:not-an-address',
  '@sect /sys/module/../etc/sections/.text:0x1',
  '@sect /sys/module/9p/sections/.text:0xffffffffc02e0000',
  `@notes /sys/module/vlab_cryptodev/notes/.note.gnu.build-id ${NOTE_HEX}`,
  '@notes /sys/module/9p/notes/.note.gnu.build-id zz',
  '@release $(reboot)',
  '@kallsyms',
  'ffffffff81000000 T _text',
  'ffffffffc0337000 t vc_crypt\t[vlab_cryptodev]',
  '',
].join('\n');

test('what the guest reports: release, kernel build-id, _text, sections and build-ids per module; odd lines dropped', () => {
  const at = new Date('2026-12-04T00:00:00Z');
  const r = parseGuestSymbols(OUTPUT, at, 'boot-1');
  assert.deepEqual(r.info, {
    schema: 1,
    takenAt: at.toISOString(),
    boot: 'boot-1',
    release: '6.1.0-57-amd64',
    kernelBuildId: '6a2b4ac77585b8cf102cba771300e573c8489b69',
    textAddress: '0xffffffff81000000',
    modules: [
      { name: 'vlab_cryptodev', buildId: '6a2b4ac77585b8cf102cba771300e573c8489b69', sections: { '.text': '0xffffffffc0337000', '.data': '0xffffffffc0343080' } },
      { name: '9p', sections: { '.text': '0xffffffffc02e0000' } },
    ],
  });
  assert.match(r.kallsyms, /^ffffffff81000000 T _text\nffffffffc0337000 t vc_crypt\t\[vlab_cryptodev\]\n$/);
  assert.throws(() => parseGuestSymbols('@kallsyms\n', at), /kernel release/);
  assert.match(guestSymbolsScript(true), /grep -F '\[' \/proc\/kallsyms$/);
  assert.match(guestSymbolsScript(false), /cat \/proc\/kallsyms$/);
});

test('the snapshot round-trips, and a tampered one (the guest can write the state folder) is checked again', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vlab-snap-'));
  try {
    const r = parseGuestSymbols(OUTPUT, new Date(), 'b');
    writeSnapshot(dir, r);
    assert.deepEqual(readSnapshot(dir), r);
    const tampered = { ...r.info, modules: [{ name: 'x', sections: { '.text': '0x1', '.data;shell id': '0x2', '.bss': '$(id)' } }] };
    writeFileSync(join(dir, 'guest-symbols.json'), JSON.stringify(tampered));
    assert.deepEqual(readSnapshot(dir)?.info.modules, [{ name: 'x', sections: { '.text': '0x1' } }]);
    writeFileSync(join(dir, 'guest-symbols.json'), JSON.stringify({ ...r.info, modules: [{ name: '../x', sections: {} }] }));
    assert.equal(readSnapshot(dir), undefined);
    writeFileSync(join(dir, 'guest-symbols.json'), '{');
    assert.equal(readSnapshot(dir), undefined);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
