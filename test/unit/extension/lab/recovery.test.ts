// State-folder recovery against a real QEMU (`-machine none`: starts in a fraction of a second, no guest).
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { DEFAULT_UP_OPTIONS, Lab, qemuMarker } from '../../../../extension/lab/lab';
import { optValue } from '../../../../extension/lab/qemu/args';
import { type ProcessRecord, isAlive, recordProcess } from '../../../../extension/lab/host/proc';
import { writeFileSync } from 'node:fs';
import { readState, writeState, acquireLock } from '../../../../extension/lab/state';
import { LabError } from '../../../../extension/lab/common/errors';
import { QmpClient } from '../../../../extension/lab/qemu/qmp';

interface Fixture {
  lab: Lab;
  startQemu(): Promise<ChildProcess>;
  markRunning(pid: number, marker?: string, backend?: ProcessRecord): void;
  /** A stand-in backend: a process with the lab's vhost-user socket path in its command line. */
  startFakeBackend(): ChildProcess;
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
    startFakeBackend() {
      const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)', lab.paths.vhostUserSocket], { stdio: 'ignore' });
      children.push(child);
      return child;
    },
    markRunning(pid, marker = qemuMarker(lab.paths), backend) {
      writeState(lab.paths, {
        schema: 1,
        state: 'running',
        options: DEFAULT_UP_OPTIONS,
        accel: { kind: 'tcg', why: 'test' },
        kernelVersion: 'test',
        upPid: process.pid,
        qemu: recordProcess(pid, marker),
        ...(backend ? { backend } : {}),
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

/** Kills QEMU with SIGKILL and waits until it is reaped. */
async function killQemu(qemu: ChildProcess): Promise<void> {
  qemu.kill('SIGKILL');
  if (qemu.exitCode === null && qemu.signalCode === null) await new Promise((r) => qemu.once('exit', r));
}

/** Waits (bounded) until a backend stand-in's process is reaped and alive no more. */
async function gone(pid: number): Promise<boolean> {
  for (let i = 0; i < 100 && isAlive(pid); i++) await sleep(20);
  return !isAlive(pid);
}

test('QEMU gone: status stops the backend too (it serves that QEMU only)', async (t) => {
  const f = fixture(t);
  const qemu = await f.startQemu();
  const backend = f.startFakeBackend();
  await sleep(100);
  f.markRunning(qemu.pid!, undefined, recordProcess(backend.pid!, f.lab.paths.vhostUserSocket));
  await killQemu(qemu);
  const s = await f.lab.status();
  assert.equal(s.state, 'failed');
  assert.match(s.reason ?? '', /QEMU \(pid \d+\) is no longer running/);
  assert.equal(s.backend.pid, undefined);
  assert.equal(await gone(backend.pid!), true, 'the backend was stopped');
});

test('a guest kernel panic ended QEMU: the reason names the panic, the status carries the console tail', async (t) => {
  const f = fixture(t);
  const qemu = await f.startQemu();
  f.markRunning(qemu.pid!);
  const panic = ['[   25.1] sysrq: Trigger a crash', '[   25.2] Kernel panic - not syncing: sysrq triggered crash', '[   25.3] Call Trace:', ...Array.from({ length: 40 }, (_, i) => `[   25.4]  frame_${i}`)];
  writeFileSync(f.lab.paths.consoleLog, `${panic.join('\r\n')}\r\n`);
  await killQemu(qemu);
  const s = await f.lab.status();
  assert.equal(s.state, 'failed');
  assert.equal(s.reason, `the guest kernel panicked: Kernel panic - not syncing: sysrq triggered crash (QEMU pid ${qemu.pid} exited with it)`);
  assert.match(s.consoleTail ?? '', /^\[   25\.1\] sysrq: Trigger a crash\n\[   25\.2\] Kernel panic - not syncing: sysrq triggered crash\n/);
  assert.equal(readState(f.lab.paths)?.reason, s.reason, 'the panic is recorded as the reason');
  assert.equal((await f.lab.status()).reason, s.reason, 'and stays the reason');
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
