// Failure paths of a boot that need a real QEMU: boot timeout, cancel, down during up, the CLI's report.
// No full boot: QEMU / backend killed while running, a guest panic and `up` working again afterwards are
// the fault drills (drills.test.ts).
import { after, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { join } from 'node:path';
import { labWithDriver } from '../../extension/lab/with-driver';
import { LabError } from '../../extension/lab/common/errors';
import { processesMentioning, runCli, tempWorkspace } from './lab-helpers';

const ws = tempWorkspace('vlab-itf-');
const lab = labWithDriver(ws.dir, { env: {} });
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
  const down = await labWithDriver(ws.dir, { env: {} }).down();
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
