// Failure paths that need a real QEMU: boot timeout, QEMU killed while running, and `up` working again
// afterwards. Two full boots (the minimum to show recovery after a kill).
import { after, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { join } from 'node:path';
import { Lab } from '../../extension/core/lab';
import { LabError } from '../../extension/core/errors';
import { isAlive } from '../../extension/core/proc';
import { readState } from '../../extension/core/state';
import { portIsFree, processesMentioning, runCli, tempWorkspace } from './lab-helpers';

const ws = tempWorkspace('vlab-itf-');
const lab = Lab.forWorkspace(ws.dir, { env: {} });
const stateDir = join(ws.dir, '.vlab');

after(async () => {
  await lab.down().catch(() => undefined);
  ws.cleanup();
});

test('boot timeout: up fails with the reason and evidence, stops QEMU, records the failure', async () => {
  const err = await lab.up({ bootTimeoutMs: 800 }).then(
    () => assert.fail('up should time out'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof LabError, String(err));
  assert.equal(err.kind, 'boot-timeout');
  assert.match(err.message, /did not answer over SSH within 0\.8 s/);
  assert.ok(err.details && typeof err.details.consoleTail === 'string' && typeof err.details.qemuStderr === 'string');
  assert.deepEqual(processesMentioning(stateDir), [], 'QEMU was stopped');
  const s = await lab.status();
  assert.equal(s.state, 'failed');
  assert.match(s.reason ?? '', /did not answer over SSH/);
});

test('cancelling up (AbortSignal) stops QEMU at once and records why', async () => {
  const ac = new AbortController();
  const steps: string[] = [];
  const pending = lab.up({}, { signal: ac.signal, onProgress: (p) => steps.push(p.step) });
  while (!steps.includes('ssh')) await new Promise((r) => setTimeout(r, 20));
  ac.abort();
  await assert.rejects(pending, (e: unknown) => e instanceof LabError && e.kind === 'cancelled');
  assert.deepEqual(processesMentioning(stateDir), []);
  const s = await lab.status();
  assert.equal(s.state, 'failed');
  assert.equal(s.reason, 'cancelled');
});

test('down while another up is booting stops that boot and cleans up', async () => {
  const steps: string[] = [];
  const booting = lab.up({}, { onProgress: (p) => steps.push(p.step) });
  const upOutcome = booting.then(
    () => 'resolved',
    (e: unknown) => (e instanceof LabError ? e.kind : String(e)),
  );
  while (!steps.includes('ssh')) await new Promise((r) => setTimeout(r, 20));
  const down = await Lab.forWorkspace(ws.dir, { env: {} }).down();
  assert.equal(down.wasRunning, true);
  assert.equal(await upOutcome, 'qemu-exited');
  assert.deepEqual(processesMentioning(stateDir), []);
  assert.equal((await lab.status()).state, 'stopped');
});

test('the CLI prints the reason and the console tail on a failed boot', async () => {
  const r = await runCli(['up', '--timeout', '0.5'], ws.dir);
  assert.equal(r.code, 1);
  assert.match(r.err, /vlab up: the guest did not answer over SSH within 0\.5 s/);
  assert.deepEqual(processesMentioning(stateDir), []);
});

test('QEMU killed while running: status says failed; up afterwards works; down leaves nothing', async () => {
  const first = await lab.up({});
  assert.equal(first.already, false);
  const pid = first.status.qemu.pid!;
  assert.ok(isAlive(pid));
  process.kill(pid, 'SIGKILL');
  for (let i = 0; i < 100 && isAlive(pid); i++) await new Promise((r) => setTimeout(r, 50));

  const failed = await lab.status();
  assert.equal(failed.state, 'failed');
  assert.match(failed.reason ?? '', new RegExp(`QEMU \\(pid ${pid}\\) is no longer running`));
  assert.equal(failed.ssh.port, undefined);

  const again = await lab.up({});
  assert.equal(again.already, false);
  assert.equal(again.status.state, 'running');
  assert.notEqual(again.status.qemu.pid, pid);
  const session = await lab.ssh();
  try {
    assert.equal((await session.run(['true'])).code, 0);
  } finally {
    session.close();
  }

  const port = again.status.ssh.port!;
  const down = await lab.down();
  assert.equal(down.wasRunning, true);
  assert.deepEqual(processesMentioning(stateDir), []);
  assert.equal(await portIsFree(port), true);
  assert.equal(readState(lab.paths), undefined);
});
