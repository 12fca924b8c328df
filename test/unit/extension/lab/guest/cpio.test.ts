import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { type CpioEntry, readCpio, writeCpio } from '../../../../../extension/lab/guest/cpio';

const sample: CpioEntry[] = [
  { type: 'dir', path: 'bin' },
  { type: 'file', path: 'bin/hello', data: Buffer.from('#!/bin/sh\necho hi\n'), mode: 0o755 },
  { type: 'symlink', path: 'bin/sh', target: 'busybox' },
  { type: 'dir', path: 'dev' },
  { type: 'chardev', path: 'dev/console', major: 5, minor: 1, mode: 0o600 },
  { type: 'file', path: 'odd name.txt', data: Buffer.from([0, 1, 2, 255]) },
  { type: 'file', path: 'empty', data: Buffer.alloc(0) },
];

/** GNU cpio if installed, else busybox's (both read newc). */
function cpioTool(): string[] | undefined {
  for (const cmd of [['cpio'], ['busybox', 'cpio']]) {
    if (spawnSync(cmd[0]!, [...cmd.slice(1), '--help'], { stdio: 'ignore' }).error === undefined) return cmd;
  }
  return undefined;
}

test('a real cpio lists exactly our entries', (t) => {
  const tool = cpioTool();
  if (!tool) return t.skip('no cpio tool on this host (readCpio round trip still covers the format)');
  const res = spawnSync(tool[0]!, [...tool.slice(1), '-t'], { input: writeCpio(sample), encoding: 'utf8' });
  assert.equal(res.status, 0, res.stderr);
  assert.deepEqual(res.stdout.trim().split('\n'), sample.map((e) => e.path));
});

test('a real cpio extracts file contents, modes and symlinks', (t) => {
  const tool = cpioTool();
  if (!tool) return t.skip('no cpio tool on this host');
  const dir = mkdtempSync(join(tmpdir(), 'vlab-cpio-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const archive = join(dir, 'a.cpio');
  // Device nodes need root to extract; leave them out here (listing above covers them).
  writeFileSync(archive, writeCpio(sample.filter((e) => e.type !== 'chardev')));
  const out = join(dir, 'x');
  spawnSync('mkdir', [out]);
  const res = spawnSync('sh', ['-c', `cd "${out}" && ${tool.join(' ')} -i -d < "${archive}"`], { encoding: 'utf8' });
  assert.equal(res.status, 0, res.stderr);
  assert.equal(readFileSync(join(out, 'bin/hello'), 'utf8'), '#!/bin/sh\necho hi\n');
  assert.equal(statSync(join(out, 'bin/hello')).mode & 0o777, 0o755);
  assert.equal(readlinkSync(join(out, 'bin/sh')), 'busybox');
  assert.deepEqual(readFileSync(join(out, 'odd name.txt')), Buffer.from([0, 1, 2, 255]));
  assert.equal(statSync(join(out, 'empty')).size, 0);
});

test('newc layout: magic, 4-byte alignment, trailer, 0:0 owners', () => {
  const archive = writeCpio(sample);
  assert.equal(archive.toString('ascii', 0, 6), '070701');
  assert.equal(archive.length % 4, 0);
  assert.ok(archive.includes(Buffer.from('TRAILER!!!\0')));
  const entries = readCpio(archive);
  const dev = entries.find((e) => e.path === 'dev/console')!;
  assert.equal(dev.mode, 0o020600);
  assert.deepEqual([dev.rdevMajor, dev.rdevMinor], [5, 1]);
  // uid and gid are fields 2 and 3 of the first header.
  assert.equal(archive.toString('ascii', 6 + 2 * 8, 6 + 4 * 8), '0'.repeat(16));
});

test('output is deterministic', () => {
  assert.deepEqual(writeCpio(sample), writeCpio(sample));
});

test('bad paths and duplicates are refused', () => {
  assert.throws(() => writeCpio([{ type: 'dir', path: '../etc' }]), /bad entry path/);
  assert.throws(() => writeCpio([{ type: 'dir', path: 'a//b' }]), /bad entry path/);
  assert.throws(() => writeCpio([{ type: 'dir', path: '' }]), /bad entry path/);
  assert.throws(() => writeCpio([{ type: 'dir', path: 'a' }, { type: 'dir', path: '/a' }]), /duplicate/);
});

test('readCpio rejects truncated archives', () => {
  const archive = writeCpio(sample);
  assert.throws(() => readCpio(archive.subarray(0, 50)), /truncated/);
  assert.throws(() => readCpio(archive.subarray(0, archive.length - 40)), /truncated|bad/);
});

test('any file set round-trips through writeCpio/readCpio', () => {
  const name = fc.stringMatching(/^[a-z0-9_.-]{1,12}$/).filter((s) => s !== '.' && s !== '..');
  fc.assert(
    fc.property(fc.uniqueArray(fc.record({ name, data: fc.uint8Array({ maxLength: 300 }) }), { selector: (e) => e.name, maxLength: 12 }), (files) => {
      const entries: CpioEntry[] = files.map((f) => ({ type: 'file', path: f.name, data: Buffer.from(f.data) }));
      const back = readCpio(writeCpio(entries));
      assert.deepEqual(back.map((e) => [e.path, e.data.toString('hex')]), files.map((f) => [f.name, Buffer.from(f.data).toString('hex')]));
    }),
  );
});
