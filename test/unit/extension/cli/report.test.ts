// The one failure printer of the CLI (extension/cli/report.ts), used by every command: the lab
// commands and the driver commands print a LabError's evidence and fix, and a DriverError's diagnostics,
// the same way.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import type { CliIo } from '../../../../extension/cli/command';
import { reportError } from '../../../../extension/cli/report';
import { LabError } from '../../../../extension/lab/common/errors';
import { DriverError } from '../../../../extension/lab/driver/driver';

function io(): { io: CliIo; err: () => string } {
  const stderr = new PassThrough();
  let text = '';
  stderr.on('data', (c: Buffer) => (text += c.toString()));
  const cli: CliIo = { stdout: new PassThrough(), stderr, stdin: new PassThrough(), cwd: '/work/ws', env: {}, signal: new AbortController().signal };
  return { io: cli, err: () => text };
}

const evidence = new LabError('qemu-exited', 'the guest kernel panicked during boot: Kernel panic - not syncing: boom (QEMU exited 0)', 'vlab logs console', {
  consoleTail: '[    1.0] Kernel panic - not syncing: boom',
  qemuStderr: 'qemu: terminating on signal 15',
  backendLog: 'backend: guest hung up',
});

for (const command of ['up', 'driver load', 'driver reload', 'bench latency']) {
  test(`vlab ${command}: a LabError prints its reason, the console tail, QEMU stderr, the backend log and the fix`, () => {
    const { io: cli, err } = io();
    assert.equal(reportError(cli, command, evidence), 1);
    assert.equal(
      err(),
      [
        `vlab ${command}: the guest kernel panicked during boot: Kernel panic - not syncing: boom (QEMU exited 0)`,
        '--- last console lines (vlab logs console) ---',
        '[    1.0] Kernel panic - not syncing: boom',
        '--- QEMU stderr (vlab logs qemu) ---',
        'qemu: terminating on signal 15',
        '--- backend log (vlab logs backend) ---',
        'backend: guest hung up',
        'fix: vlab logs console',
        '',
      ].join('\n'),
    );
  });
}

test('a LabError without evidence prints its reason and fix only', () => {
  const { io: cli, err } = io();
  reportError(cli, 'driver load', new LabError('not-running', 'the lab is not running', 'vlab up'));
  assert.equal(err(), 'vlab driver load: the lab is not running\nfix: vlab up\n');
});

test('a DriverError prints the compiler diagnostics relative to the working folder', () => {
  const { io: cli, err } = io();
  const diag = { file: '/work/ws/guest/driver/vc_main.c', line: 12, column: 3, severity: 'error' as const, message: "'x' undeclared" };
  assert.equal(reportError(cli, 'driver build', new DriverError('build', 'building vlab_cryptodev.ko failed (make exit 2)', [diag], 'make output')), 1);
  assert.equal(err(), "vlab driver build: building vlab_cryptodev.ko failed (make exit 2)\nguest/driver/vc_main.c:12:3: error: 'x' undeclared\n");
});

test('a failed build without diagnostics prints the end of its output', () => {
  const { io: cli, err } = io();
  const output = Array.from({ length: 30 }, (_, i) => `line ${i}`).join('\n');
  reportError(cli, 'driver build', new DriverError('build', 'building vlab_cryptodev.ko failed (make exit 2)', [], output));
  const lines = err().trimEnd().split('\n');
  assert.equal(lines[0], 'vlab driver build: building vlab_cryptodev.ko failed (make exit 2)');
  assert.deepEqual(lines.slice(1), Array.from({ length: 20 }, (_, i) => `line ${i + 10}`));
});

test('any other error prints its message', () => {
  const { io: cli, err } = io();
  assert.equal(reportError(cli, 'up', new Error('boom')), 1);
  reportError(cli, 'up', 'plain');
  assert.equal(err(), 'vlab up: boom\nvlab up: plain\n');
});
