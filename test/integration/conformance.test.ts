/**
 * One VM boot: our guest driver (guest/driver) against the TypeScript back-end, graded by the
 * back-end's conformance oracle (docs/checking.md). Known answers, random algorithms, the errno
 * checks (bad input must stop at the driver, or reach the device only as a request the spec allows)
 * and concurrent IV users, then the snapshot's conformance section: 0 violations, and `vlab check`
 * exits 0 on it.
 */
import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { requestSnapshot } from '../../backend/telemetry/client';
import { GUEST_TOOL_PATH, buildDriver, pushGuestTool } from '../../extension/lab/driver/driver';
import type { SshSession } from '../../extension/lab/guest/ssh';
import { labWithDriver } from '../../extension/lab/with-driver';
import { formatConformance } from '../../extension/cli/conformance-view';
import { runMainCaptured } from '../cli-capture';

const REPO = join(__dirname, '..', '..', '..');
const stateDir = mkdtempSync(join(tmpdir(), 'vlab-it-conformance-'));
const lab = labWithDriver(REPO, { stateDir, env: {} });
let session: SshSession | undefined;

// Our driver loaded (guestDriver 'lab'), its guest tool built for the guest kernel and pushed.
before(async () => {
  await lab.up({ backend: 'ts', guestDriver: 'lab' });
  session = await lab.ssh();
  await pushGuestTool(session, await buildDriver(lab));
});

after(async () => {
  session?.close();
  await lab.down().finally(() => rmSync(stateDir, { recursive: true, force: true })).catch(() => undefined);
});

const guest = async (argv: string[], timeoutMs = 300_000): Promise<string> => {
  const r = await session!.run(argv, { timeoutMs });
  assert.equal(r.code, 0, `${argv.join(' ')}: ${r.stdout}\n${r.stderr}`);
  assert.doesNotMatch(r.stdout, /^not ok /m, r.stdout);
  return r.stdout;
};

test('our driver through known answers, random algorithms, errno checks and concurrent IV users', async () => {
  await guest([GUEST_TOOL_PATH, 'kat', '--mac']);
  await guest([GUEST_TOOL_PATH, 'algs', '3198209']);
  await guest([GUEST_TOOL_PATH, 'errors', '--mac']);
  await guest([GUEST_TOOL_PATH, 'ivrace', '4', '20', '64']);
});

test('the conformance oracle saw 0 violations of the driver, and `vlab check` exits 0', async () => {
  const s = await requestSnapshot(lab.paths.telemetrySocket);
  const c = s.conformance;
  assert.ok(c, 'the back-end reports conformance');
  process.stdout.write(`# ${formatConformance(c).join('\n# ')}\n# requests served: ${s.counters.requests}\n`);
  assert.ok(s.counters.requests > 100, `only ${s.counters.requests} requests reached the device`);
  assert.equal(c.enabled, true);
  assert.equal(c.features, 'offered', 'QEMU 7.2 acks only bit 30');
  assert.deepEqual(c.rules.filter((r) => r.kind === 'driver'), [], 'no driver rule broken');
  assert.equal(c.violations, 0);
  const r = await runMainCaptured(['check', '--telemetry', lab.paths.telemetrySocket], { cwd: stateDir, env: process.env });
  assert.equal(r.code, 0, r.out + r.err);
  assert.match(r.out, /^conformance: 0 violations/);
});
