// The state folder lives in the workspace, which the guest can write: what the lab reads back from it
// must not be able to point it at other files or processes.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync, lstatSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { labPaths } from '../../../../extension/lab/common/paths';
import { spawnDetached } from '../../../../extension/lab/host/proc';
import { readState } from '../../../../extension/lab/state';

function dir(t: { after(fn: () => void): void }): string {
  const d = mkdtempSync(join(tmpdir(), 'vlab-hostile-'));
  t.after(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

test('a log path planted as a symlink is replaced, its target left untouched', async (t) => {
  const d = dir(t);
  const victim = join(d, 'victim');
  writeFileSync(victim, 'precious\n');
  const log = join(d, 'qemu.log');
  symlinkSync(victim, log);
  spawnDetached('/bin/sh', ['-c', 'echo written'], log, 'marker');
  // The child is unref'd (it must not keep `vlab up` alive): poll for its output instead of awaiting exit.
  for (let i = 0; i < 200 && !readFileSync(log, 'utf8').includes('written'); i++) await sleep(20);
  assert.equal(readFileSync(victim, 'utf8'), 'precious\n');
  assert.equal(lstatSync(log).isSymbolicLink(), false);
  assert.equal(readFileSync(log, 'utf8'), 'written\n');
});

test('state.json that is oversized, malformed or carries bad records is ignored', (t) => {
  const d = dir(t);
  const paths = labPaths(d, join(d, 'st'), {});
  mkdirSync(paths.stateDir);
  const good = {
    schema: 1, state: 'running', options: {}, accel: { kind: 'tcg', why: 'x' }, kernelVersion: 'k', upPid: 1,
    qemu: { pid: 123, startTime: '5', marker: paths.qmpSocket }, sshPort: 2222, startedAt: 'now',
  };
  writeFileSync(paths.stateFile, JSON.stringify(good));
  assert.equal(readState(paths)?.qemu?.pid, 123);
  const bad: unknown[] = [
    { ...good, state: 'pwned' },
    { ...good, qemu: { pid: '1; rm -rf /', startTime: '5', marker: 'm' } },
    { ...good, qemu: { pid: 1, startTime: '5', marker: '' } },
    { ...good, sshPort: 70000 },
    { ...good, schema: 2 },
  ];
  for (const b of bad) {
    writeFileSync(paths.stateFile, JSON.stringify(b));
    assert.equal(readState(paths), undefined, JSON.stringify(b));
  }
  writeFileSync(paths.stateFile, `${JSON.stringify(good)}${' '.repeat(70 * 1024)}`);
  assert.equal(readState(paths), undefined, 'oversized');
  writeFileSync(paths.stateFile, '{"schema":1,');
  assert.equal(readState(paths), undefined, 'truncated JSON');
});
