// Fault drills (issue 9): with 8 guest processes doing /dev/crypto traffic (CIOCCRYPT loops through the
// lab's driver and the ts backend), kill -9 the backend, kill -9 QEMU, panic the guest, and `vlab down`.
// Each drill starts from `up` on the wreck the previous one left: five boots, and each boot after the
// first is also the proof that `up` works again after that fault (new QEMU and backend, SSH, the driver
// loaded, the backend serving the guest's traffic). Every wait is bounded.
import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { type DriverBuild, GUEST_TOOL_PATH, buildDriver, pushFile } from '../../extension/lab/driver/driver';
import { LabError } from '../../extension/lab/common/errors';
import type { LabStatus } from '../../extension/lab/lab';
import { labWithDriver } from '../../extension/lab/with-driver';
import { isAlive } from '../../extension/lab/host/proc';
import { readState } from '../../extension/lab/state';
import { readSnapshotOrNull } from '../../backend/telemetry/client';
import { portIsFree, processesMentioning, runCli, tempWorkspace } from './lab-helpers';

const ws = tempWorkspace('vlab-drill-');
const lab = labWithDriver(ws.dir, { env: {} });
const stateDir = join(ws.dir, '.vlab');
const WORKERS = 8;
/** Generous bounds: TCG on a shared 2-core machine. */
const TRAFFIC_START_MS = 60_000;
const DEATH_WAIT_MS = 30_000;
const DOWN_BOUND_MS = 60_000;
let build: DriverBuild;
/** The previous drill's processes: the next `up` must start new ones. */
let previous: number[] = [];

/** Measured times, printed at the end (the final report and docs/lab.md quote them). */
const measured: Record<string, number | string> = {};
const seconds = (ms: number): number => Math.round(ms / 100) / 10;

before(async () => {
  build = await buildDriver(lab);
});

after(async () => {
  await lab.down().catch(() => undefined);
  ws.cleanup();
  process.stderr.write(`# drills measured (s): ${JSON.stringify(measured)}\n`);
});

async function requestsServed(): Promise<number> {
  const snap = await readSnapshotOrNull(lab.paths.telemetrySocket, 5000);
  return snap?.counters.requests ?? -1;
}

/**
 * `up` (asserting a fresh boot), then 8 processes looping CIOCCRYPT started in the background over
 * `vlab ssh`; returns once they all run and the backend's request counter moves.
 */
async function bootWithTraffic(name: string): Promise<LabStatus> {
  const t0 = Date.now();
  const up = await lab.up({});
  measured[`${name}.up`] = seconds(Date.now() - t0);
  assert.equal(up.already, false);
  assert.equal(up.status.state, 'running');
  assert.equal(up.status.backend.kind, 'ts');
  assert.equal(up.status.guestDriver, 'lab');
  assert.ok(up.status.qemu.pid && up.status.backend.pid);
  assert.ok(!previous.includes(up.status.qemu.pid) && !previous.includes(up.status.backend.pid), 'a new QEMU and a new backend');
  previous = [up.status.qemu.pid, up.status.backend.pid];
  const t1 = Date.now();
  const session = await lab.ssh();
  try {
    await pushFile(session, build.tool, GUEST_TOOL_PATH, true);
  } finally {
    session.close();
  }
  // bench dev SIZE PROCS MS: PROCS children, each looping CIOCCRYPT on its own session for MS ms. The
  // shell waits (bounded) until the parent and its 8 children are all there.
  const start = await runCli(
    [
      'ssh', '--', 'sh', '-c',
      `${GUEST_TOOL_PATH} bench dev 4096 ${WORKERS} 3600000 </dev/null >/tmp/traffic.log 2>&1 &
       for i in $(seq 300); do n=$(pgrep -cf '^${GUEST_TOOL_PATH} bench'); [ "$n" -gt ${WORKERS} ] && break; sleep 0.2; done; echo "processes=$n"`,
    ],
    ws.dir,
  );
  assert.equal(start.code, 0, start.err);
  assert.match(start.out, new RegExp(`^processes=${WORKERS + 1}$`, 'm'), 'the bench parent and its 8 workers run');
  const first = await requestsServed();
  let now = first;
  for (const deadline = Date.now() + TRAFFIC_START_MS; now <= first; ) {
    assert.ok(Date.now() < deadline, `the backend answered no request (${first} -> ${now})`);
    await sleep(300);
    now = await requestsServed();
  }
  assert.ok(first >= 0, 'telemetry answered');
  measured[`${name}.trafficStart`] = seconds(Date.now() - t1);
  return up.status;
}

async function waitGone(pid: number, what: string): Promise<number> {
  const t0 = Date.now();
  while (isAlive(pid)) {
    assert.ok(Date.now() - t0 < DEATH_WAIT_MS, `${what} (pid ${pid}) still alive after ${DEATH_WAIT_MS / 1000} s`);
    await sleep(50);
  }
  return Date.now() - t0;
}

function assertNothingLeft(pids: readonly number[]): void {
  for (const pid of pids) assert.equal(isAlive(pid), false, `pid ${pid} is still alive`);
  assert.deepEqual(processesMentioning(stateDir), [], 'no process of this lab (QEMU, backend) is left');
}

async function statusJson(): Promise<LabStatus> {
  const r = await runCli(['status', '--json'], ws.dir);
  assert.equal(r.code, 0, r.err);
  return JSON.parse(r.out) as LabStatus;
}

test('drill 0: a guest kernel panic during boot (init exits): up fails naming the panic, with the console tail; nothing left', { timeout: 120_000 }, async () => {
  // A guest whose PID 1 exits: Linux panics ("Attempted to kill init!"). Its own state folder and init.
  const initDir = join(ws.dir, 'panic-init');
  mkdirSync(initDir);
  writeFileSync(join(initDir, 'init'), '#!/bin/busybox sh\necho "vlab-drill: init exits"\nexit 1\n', { mode: 0o755 });
  copyFileSync(join(__dirname, '..', '..', '..', 'guest', 'init', 'stage2'), join(initDir, 'stage2'));
  const panicState = join(ws.dir, '.vlab-panic');
  const panicking = labWithDriver(ws.dir, { env: {}, initDir, stateDir: panicState });
  const t0 = Date.now();
  const err = await panicking.up({ bootTimeoutMs: 90_000 }).then(
    () => assert.fail('up should fail'),
    (e: unknown) => e,
  );
  measured['bootPanic.upFails'] = seconds(Date.now() - t0);
  assert.ok(err instanceof LabError, String(err));
  assert.equal(err.kind, 'qemu-exited');
  assert.match(err.message, /^the guest kernel panicked during boot: Kernel panic - not syncing: Attempted to kill init!/);
  // Both lines, in either order: init's echo and the kernel's panic reach the serial console from two
  // writers, and two CI runs saw the echo land after the panic line.
  const tail = String(err.details?.consoleTail);
  assert.match(tail, /vlab-drill: init exits/);
  assert.match(tail, /Kernel panic - not syncing: Attempted to kill init!/);
  const s = await panicking.status();
  assert.equal(s.state, 'failed');
  assert.equal(s.reason, err.message);
  assert.match(s.consoleTail ?? '', /Kernel panic - not syncing: Attempted to kill init!/);
  assert.deepEqual(processesMentioning(panicState), [], 'QEMU and the backend were stopped');
  await panicking.down();
});

test('drill 1: backend killed (-9) under traffic: status says the backend died, QEMU is stopped, nothing left', { timeout: 240_000 }, async () => {
  const s = await bootWithTraffic('backendKill');
  const qemuPid = s.qemu.pid!;
  const backendPid = s.backend.pid!;
  process.kill(backendPid, 'SIGKILL');
  await waitGone(backendPid, 'backend');

  const t0 = Date.now();
  const failed = await statusJson();
  measured['backendKill.statusStopsQemu'] = seconds(Date.now() - t0);
  assert.equal(failed.state, 'failed');
  assert.match(failed.reason ?? '', new RegExp(`^backend died \\(pid ${backendPid}`));
  assert.equal(failed.qemu.pid, undefined);
  assert.equal(failed.backend.pid, undefined);
  assertNothingLeft([qemuPid, backendPid]);
});

test('drill 1b: backend killed (-9) under traffic, then vlab down at once (no status first): bounded, clean', { timeout: 240_000 }, async () => {
  const s = await bootWithTraffic('backendKillDown');
  const qemuPid = s.qemu.pid!;
  const backendPid = s.backend.pid!;
  const port = s.ssh.port!;
  process.kill(backendPid, 'SIGKILL');
  await waitGone(backendPid, 'backend');
  const t0 = Date.now();
  const down = await runCli(['down'], ws.dir);
  const ms = Date.now() - t0;
  measured['backendKillDown.down'] = seconds(ms);
  measured['backendKillDown.method'] = down.out.trim();
  assert.equal(down.code, 0, down.err);
  assert.ok(ms < DOWN_BOUND_MS, `vlab down took ${seconds(ms)} s (bound ${DOWN_BOUND_MS / 1000} s)`);
  assertNothingLeft([qemuPid, backendPid]);
  assert.equal(await portIsFree(port), true);
  assert.equal(readState(lab.paths), undefined);
  assert.equal((await lab.status()).state, 'stopped');
});

test('drill 2: QEMU killed (-9) under traffic: up works again; status says QEMU died, the backend is stopped, nothing left', { timeout: 240_000 }, async () => {
  const s = await bootWithTraffic('qemuKill');
  const qemuPid = s.qemu.pid!;
  const backendPid = s.backend.pid!;
  process.kill(qemuPid, 'SIGKILL');
  await waitGone(qemuPid, 'QEMU');

  const t0 = Date.now();
  const failed = await statusJson();
  measured['qemuKill.statusStopsBackend'] = seconds(Date.now() - t0);
  assert.equal(failed.state, 'failed');
  assert.match(failed.reason ?? '', new RegExp(`^QEMU \\(pid ${qemuPid}\\) is no longer running`));
  assert.equal(failed.backend.pid, undefined);
  assert.equal(failed.ssh.port, undefined);
  assertNothingLeft([qemuPid, backendPid]);
});

test('drill 3: guest panic (sysrq-c) under traffic: up works again; status says failed with the panic and the console tail; down cleans up', { timeout: 240_000 }, async () => {
  const s = await bootWithTraffic('panic');
  const qemuPid = s.qemu.pid!;
  const backendPid = s.backend.pid!;
  // In the background so the SSH command returns before the guest dies under it.
  const trigger = await runCli(['ssh', '--', 'sh', '-c', '(sleep 1; echo c > /proc/sysrq-trigger) </dev/null >/dev/null 2>&1 &'], ws.dir);
  assert.equal(trigger.code, 0, trigger.err);
  // -no-reboot + panic=-1: the panic ends QEMU by itself.
  measured['panic.qemuExit'] = seconds(await waitGone(qemuPid, 'QEMU after the guest panic'));

  const failed = await statusJson();
  assert.equal(failed.state, 'failed');
  assert.match(failed.reason ?? '', /guest kernel panicked: Kernel panic - not syncing: sysrq triggered crash/);
  assert.match(failed.consoleTail ?? '', /Kernel panic - not syncing: sysrq triggered crash/);
  measured['panic.reason'] = failed.reason ?? '';
  measured['panic.consoleTailLines'] = (failed.consoleTail ?? '').split('\n').length;
  assert.equal(failed.backend.pid, undefined);
  assertNothingLeft([qemuPid, backendPid]);
  const text = await runCli(['status'], ws.dir);
  assert.match(text.out, /^reason +the guest kernel panicked/m);
  assert.match(text.out, /Kernel panic - not syncing: sysrq triggered crash/);

  const down = await runCli(['down'], ws.dir);
  assert.equal(down.code, 0, down.err);
  assert.equal(readState(lab.paths), undefined);
  assert.equal((await lab.status()).state, 'stopped');
  assertNothingLeft([qemuPid, backendPid]);
});

test('drill 4: vlab down while traffic runs is bounded and leaves nothing', { timeout: 240_000 }, async () => {
  const s = await bootWithTraffic('down');
  const qemuPid = s.qemu.pid!;
  const backendPid = s.backend.pid!;
  const port = s.ssh.port!;
  const t0 = Date.now();
  const down = await runCli(['down'], ws.dir);
  const ms = Date.now() - t0;
  measured['down.withTraffic'] = seconds(ms);
  assert.equal(down.code, 0, down.err);
  assert.ok(ms < DOWN_BOUND_MS, `vlab down took ${seconds(ms)} s (bound ${DOWN_BOUND_MS / 1000} s)`);
  assert.match(down.out, /lab stopped/);
  measured['down.method'] = down.out.trim();
  assertNothingLeft([qemuPid, backendPid]);
  assert.equal(await portIsFree(port), true);
  assert.equal(readState(lab.paths), undefined);
  assert.equal((await lab.status()).state, 'stopped');
});
