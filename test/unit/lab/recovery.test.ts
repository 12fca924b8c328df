// State-folder recovery against a real QEMU (`-machine none`: starts in a fraction of a second, no guest).
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { DEFAULT_UP_OPTIONS, Lab, qemuMarker } from '../../../extension/core/lab';
import { optValue } from '../../../extension/core/qemu-args';
import { isAlive, recordProcess } from '../../../extension/core/proc';
import { readState, writeState, acquireLock } from '../../../extension/core/state';
import { LabError } from '../../../extension/core/errors';
import { QmpClient } from '../../../extension/core/qmp';

interface Fixture {
  lab: Lab;
  startQemu(): Promise<ChildProcess>;
  markRunning(pid: number, marker?: string): void;
}

function fixture(t: { after(fn: () => void | Promise<void>): void }, overrides: { powerdownTimeoutMs?: number; quitTimeoutMs?: number } = {}): Fixture {
  const dir = mkdtempSync(join(tmpdir(), 'vlab-rec-'));
  // A comma and a space in the state path: QEMU's option syntax escapes the comma on its command line.
  const lab = Lab.forWorkspace(dir, { stateDir: join(dir, 's t,x'), env: {}, ...overrides });
  mkdirSync(lab.paths.stateDir, { recursive: true });
  const children: ChildProcess[] = [];
  t.after(() => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });
  return {
    lab,
    async startQemu() {
      const child = spawn('qemu-system-x86_64', ['-machine', 'none', '-nodefaults', '-display', 'none', '-qmp', `unix:${optValue(lab.paths.qmpSocket)},server=on,wait=off`], { stdio: 'ignore' });
      children.push(child);
      for (let i = 0; i < 100 && !existsSync(lab.paths.qmpSocket); i++) await sleep(20);
      assert.ok(existsSync(lab.paths.qmpSocket), 'QEMU created its QMP socket');
      return child;
    },
    markRunning(pid, marker = qemuMarker(lab.paths)) {
      writeState(lab.paths, {
        schema: 1,
        state: 'running',
        options: DEFAULT_UP_OPTIONS,
        accel: { kind: 'tcg', why: 'test' },
        kernelVersion: 'test',
        upPid: process.pid,
        qemu: recordProcess(pid, marker),
        sshPort: 1,
        startedAt: new Date().toISOString(),
        runningSince: new Date().toISOString(),
        bootSec: 1,
      });
    },
  };
}

test('a running QEMU is reported running; a second up does nothing', async (t) => {
  const f = fixture(t);
  const qemu = await f.startQemu();
  f.markRunning(qemu.pid!);
  const s = await f.lab.status();
  assert.equal(s.state, 'running');
  assert.equal(s.qemu.pid, qemu.pid);
  assert.equal(s.device, null, '-machine none has no virtio-crypto device');
  const again = await f.lab.up({});
  assert.equal(again.already, true);
  assert.ok(isAlive(qemu.pid!), 'the running QEMU was left alone');
});

test('QEMU killed with SIGKILL: status says failed with the reason; down cleans the stale state', async (t) => {
  const f = fixture(t);
  const qemu = await f.startQemu();
  f.markRunning(qemu.pid!);
  qemu.kill('SIGKILL');
  await new Promise((r) => qemu.once('exit', r));

  const events: string[] = [];
  f.lab.on('state', (state: string) => events.push(state));
  const s = await f.lab.status();
  assert.equal(s.state, 'failed');
  assert.match(s.reason ?? '', new RegExp(`QEMU \\(pid ${qemu.pid}\\) is no longer running`));
  assert.equal(s.qemu.pid, undefined);
  assert.equal(readState(f.lab.paths)?.state, 'failed', 'the failure is recorded');

  const down = await f.lab.down();
  assert.deepEqual(down, { wasRunning: false, qemu: 'not-running', backend: 'none', stale: true });
  assert.deepEqual(events, ['failed', 'stopping', 'stopped'], 'state changes are events');
  assert.equal(existsSync(f.lab.paths.stateFile), false);
  assert.equal(existsSync(f.lab.paths.qmpSocket), false, 'stale QMP socket removed');
  assert.equal((await f.lab.status()).state, 'stopped');
});

test('a recorded pid that is not our QEMU (pid reuse) is never signalled', async (t) => {
  const f = fixture(t);
  // Our own pid with the right start time, but its command line lacks the lab's QMP socket path.
  f.markRunning(process.pid);
  assert.equal((await f.lab.status()).state, 'failed');
  const down = await f.lab.down();
  assert.equal(down.wasRunning, false);
  assert.ok(isAlive(process.pid));
});

test('down on a QEMU whose guest ignores the power button falls back to QMP quit', async (t) => {
  const f = fixture(t, { powerdownTimeoutMs: 300 });
  const qemu = await f.startQemu();
  f.markRunning(qemu.pid!);
  const steps: string[] = [];
  const down = await f.lab.down({ onProgress: (p) => steps.push(p.step) });
  assert.equal(down.wasRunning, true);
  assert.equal(down.qemu, 'quit');
  assert.deepEqual(steps, ['powerdown', 'quit']);
  await new Promise((r) => (qemu.exitCode !== null ? r(null) : qemu.once('exit', r)));
  assert.equal(qemu.exitCode, 0, 'QEMU exited by itself on quit');
});

test('down while another client holds the QMP monitor: SIGTERM, QEMU shuts down cleanly', async (t) => {
  const f = fixture(t, { powerdownTimeoutMs: 300 });
  const qemu = await f.startQemu();
  f.markRunning(qemu.pid!);
  const holder = await QmpClient.connect(f.lab.paths.qmpSocket, { timeoutMs: 5000 });
  t.after(() => holder.close());
  const down = await f.lab.down();
  assert.equal(down.qemu, 'terminate');
  await new Promise((r) => (qemu.exitCode !== null || qemu.signalCode !== null ? r(null) : qemu.once('exit', r)));
  assert.equal(qemu.exitCode, 0, 'QEMU handled SIGTERM and exited cleanly');
});

test('down on a wedged QEMU (stopped, QMP silent) ends with SIGKILL', async (t) => {
  const f = fixture(t, { powerdownTimeoutMs: 300, quitTimeoutMs: 300 });
  const qemu = await f.startQemu();
  f.markRunning(qemu.pid!);
  process.kill(qemu.pid!, 'SIGSTOP');
  const down = await f.lab.down();
  assert.equal(down.qemu, 'kill');
  await new Promise((r) => (qemu.signalCode !== null ? r(null) : qemu.once('exit', r)));
  assert.equal(qemu.signalCode, 'SIGKILL');
});

test('the lab lock refuses a second concurrent operation and is released afterwards', (t) => {
  const f = fixture(t);
  const release = acquireLock(f.lab.paths, 'test');
  assert.throws(() => acquireLock(f.lab.paths, 'second'), (e: unknown) => e instanceof LabError && e.kind === 'busy' && /pid \d+, test/.test(e.message));
  release();
  acquireLock(f.lab.paths, 'third')();
});

test("'booting' is reported while the up process lives, 'failed' once it is gone", async (t) => {
  const f = fixture(t);
  const booting = (upPid: number): void =>
    writeState(f.lab.paths, {
      schema: 1,
      state: 'booting',
      options: DEFAULT_UP_OPTIONS,
      accel: { kind: 'tcg', why: 'test' },
      kernelVersion: 'test',
      upPid,
      startedAt: new Date().toISOString(),
    });
  booting(process.pid);
  assert.equal((await f.lab.status()).state, 'booting');
  const gone = spawn('true');
  await new Promise((r) => gone.once('exit', r));
  booting(gone.pid!);
  const s = await f.lab.status();
  assert.equal(s.state, 'failed');
  assert.match(s.reason ?? '', /ended before the boot finished/);
});
