import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findGuestPanic, readGuestEnd } from '../../../../../extension/lab/guest/console';

// The shape Linux 6.1 prints for `echo c > /proc/sysrq-trigger` on ttyS0.
const boot = Array.from({ length: 40 }, (_, i) => `[    1.${String(i).padStart(6, '0')}] boot line ${i}`);
const panic = [
  '[   25.120000] sysrq: Trigger a crash',
  '[   25.124000] Kernel panic - not syncing: sysrq triggered crash',
  '[   25.124500] CPU: 1 PID: 312 Comm: sh Not tainted 6.1.0-57-amd64 #1  Debian 6.1.158-1',
  '[   25.125000] Call Trace:',
  ...Array.from({ length: 30 }, (_, i) => `[   25.13${String(i).padStart(4, '0')}]  frame_${i}+0x1d/0x30`),
  '[   25.200000] Kernel Offset: 0x1000000 from 0xffffffff81000000',
];

test('a kernel panic is found with its reason, and the tail starts just before it', () => {
  const p = findGuestPanic([...boot, ...panic].join('\n'));
  assert.ok(p);
  assert.equal(p.line, 'Kernel panic - not syncing: sysrq triggered crash');
  const tail = p.tail.split('\n');
  assert.ok(tail.length <= 60);
  assert.ok(tail.some((l) => l.includes('sysrq: Trigger a crash')), 'what led to it is kept');
  assert.ok(tail.findIndex((l) => l.includes('Kernel panic')) <= 8);
  assert.match(p.tail, /Call Trace:/);
});

test('no panic: nothing found; the last panic wins; guest bytes are cleaned and capped', () => {
  assert.equal(findGuestPanic(boot.join('\n')), undefined);
  assert.equal(findGuestPanic(''), undefined);
  const two = findGuestPanic(['Kernel panic - not syncing: first', 'x', 'Kernel panic - not syncing: second'].join('\n'));
  assert.equal(two?.line, 'Kernel panic - not syncing: second');
  const hostile = findGuestPanic(`junk\x07Kernel panic - not syncing: ${'A'.repeat(5000)}\x1b\x00`);
  assert.ok(hostile);
  assert.equal(hostile.line.length, 200);
  assert.doesNotMatch(hostile.line + hostile.tail, /[\x00-\x08\x0b-\x1f\x7f]/);
});

test('readGuestEnd: a panic beyond the last 25 lines is still found; without one, the last 25 lines', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vlab-con-'));
  try {
    const log = join(dir, 'console.log');
    writeFileSync(log, [...boot, ...panic].join('\r\n') + '\r\n');
    const end = readGuestEnd(log);
    assert.equal(end.panic?.line, 'Kernel panic - not syncing: sysrq triggered crash');
    assert.equal(end.tail, end.panic?.tail);
    writeFileSync(log, boot.join('\n'));
    const plain = readGuestEnd(log);
    assert.equal(plain.panic, undefined);
    assert.equal(plain.tail.split('\n').length, 25);
    assert.match(plain.tail, /boot line 39$/);
    assert.deepEqual(readGuestEnd(join(dir, 'missing')), { tail: '' });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
