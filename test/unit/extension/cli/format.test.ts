import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { formatStatus, parseUpArgs } from '../../../../extension/cli/commands/lab';
import { formatDemoSummary } from '../../../../extension/lab/demo/run';
import type { LabStatus } from '../../../../extension/lab/lab';
import { UsageError } from '../../../../extension/cli/command';
import { backendSnapshot } from '../../backend/telemetry/snapshot-fixture';

const running: LabStatus = {
  schema: 1,
  state: 'running',
  accel: { kind: 'tcg', why: 'TCG (software emulation): no vmx/svm' },
  backend: { kind: 'ts', pid: 11, telemetry: backendSnapshot() },
  qemu: { pid: 12 },
  ssh: { host: '127.0.0.1', port: 40000 },
  uptimeSec: 5,
  bootSec: 9.3,
  device: null,
  stateDir: '/w/.vlab',
  workspace: '/w',
  guestDriver: 'upstream',
  kernelVersion: '6.1.0-x',
};

test('status text names state, accel and why, pids, port, telemetry summary', () => {
  const text = formatStatus(running);
  assert.match(text, /^state {6}running \(up 5 s, booted in 9\.3 s\)$/m);
  assert.match(text, /^accel {6}tcg — TCG \(software emulation\): no vmx\/svm$/m);
  assert.match(text, /^backend {4}ts \(pid 11\)$/m);
  assert.match(text, /^ {11}engine openssl; requests 10, bytesIn 4096, bytesOut 4096, kicks 7, interrupts 6, rejectedChains 0, unanswerable 0, statusOk 10$/m);
  assert.match(text, /^ssh {8}127\.0\.0\.1:40000/m);
  assert.match(text, /virtio-crypto status unavailable/);
});

test('status text of a failed lab shows the reason', () => {
  const text = formatStatus({ ...running, state: 'failed', reason: 'QEMU (pid 12) is no longer running', qemu: {}, ssh: { host: '127.0.0.1' } });
  assert.match(text, /^reason {5}QEMU \(pid 12\) is no longer running$/m);
  assert.doesNotMatch(text, /^ssh/m);
});

test('status text of a failed lab ends with the console tail when there is one', () => {
  const failed: LabStatus = { ...running, state: 'failed', reason: 'the guest kernel panicked: Kernel panic - not syncing: x', consoleTail: 'a\nKernel panic - not syncing: x', qemu: {}, ssh: { host: '127.0.0.1' } };
  assert.match(formatStatus(failed), /^state dir +\/w\/\.vlab\n--- last console lines \(vlab logs console\) ---\na\nKernel panic - not syncing: x\n$/m);
  assert.doesNotMatch(formatStatus(running), /last console lines/);
});

test('up options parse into typed values; bad values are usage errors', () => {
  assert.deepEqual(parseUpArgs(['--backend', 'ts', '--memory', '2048', '--cpus', '1', '--timeout', '1.5', '--guest-driver', 'lab']).options, {
    backend: 'ts', engine: undefined, accel: undefined, memoryMb: 2048, cpus: 1, guestDriver: 'lab', bootTimeoutMs: 1500,
  });
  assert.equal(parseUpArgs(['--dry-run']).dryRun, true);
  for (const bad of [['--backend', 'qemu'], ['--memory', '1e3'], ['--cpus', '0'], ['--timeout', '-1'], ['--timeout=-1'], ['--bogus'], ['--memory'], ['extra']]) {
    assert.throws(() => parseUpArgs(bad), UsageError, bad.join(' '));
  }
});

test('demo summary marks ok, failed and skipped steps', () => {
  const text = formatDemoSummary({
    ok: false,
    seconds: 12.3,
    steps: [
      { id: 'a', title: 'boot', ok: true, skipped: false, summary: '9 s', seconds: 9 },
      { id: 'b', title: 'crypto check', ok: false, skipped: false, summary: 'FAILED: x', seconds: 1 },
      { id: 'c', title: 'later', ok: false, skipped: true, summary: 'not run', seconds: 0 },
    ],
  });
  assert.match(text, /demo FAILED/);
  assert.match(text, /^ {2}ok {3}boot {10}9 s$/m);
  assert.match(text, /^ {2}FAIL crypto check {2}FAILED: x$/m);
  assert.match(text, /^ {2}-- {3}later/m);
});
