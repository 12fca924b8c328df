/**
 * The oracle is proven able to fail on a real guest: one VM boot with the TypeScript back-end, our
 * driver unbound, and the test-only module guest/fixtures/ring_breaker (a virtio-crypto driver
 * that writes its split ring directly) loaded once per rule it can break. Each load must make
 * `vlab check --json` report exactly that rule, with its clause, queue 0 and the head it was told;
 * the device and the lab survive (the ring is not abandoned), and once our driver is bound again
 * it serves known answers with 0 new violations.
 */
import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFileSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { ConformanceSnapshot, RuleCount } from '../../backend/conformance/report';
import { requestSnapshot, telemetryRequest } from '../../backend/telemetry/client';
import { runCheckpatch } from '../../extension/lab/driver/checkpatch';
import { GUEST_TOOL_PATH, type DriverBuild, MODULE_NAME, buildDriver, loadDriver, pushFile, pushGuestTool, unloadDriver } from '../../extension/lab/driver/driver';
import type { SshSession } from '../../extension/lab/guest/ssh';
import { findGuestKernel } from '../../extension/lab/host/host';
import { labWithDriver } from '../../extension/lab/with-driver';
import { runMainCaptured } from '../cli-capture';

const REPO = join(__dirname, '..', '..', '..');
const FIXTURE_SRC = join(REPO, 'guest', 'fixtures', 'ring_breaker');
const FIXTURE = 'vlab_ring_breaker';
const GUEST_KO = `/tmp/${FIXTURE}.ko`;
const stateDir = mkdtempSync(join(tmpdir(), 'vlab-it-ring-breaker-'));
const buildDir = mkdtempSync(join(tmpdir(), 'vlab-it-ring-breaker-build-'));
const lab = labWithDriver(REPO, { stateDir, env: {} });
let session: SshSession | undefined;
let ours: DriverBuild | undefined;

before(async () => {
  await lab.up({ backend: 'ts', guestDriver: 'lab' });
  session = await lab.ssh();
  ours = await buildDriver(lab);
  await pushGuestTool(session, ours);
  // Built like guest/driver: Kbuild against the guest kernel's headers, W=1.
  for (const f of readdirSync(FIXTURE_SRC)) copyFileSync(join(FIXTURE_SRC, f), join(buildDir, f));
  const kernel = findGuestKernel(lab.host);
  const make = await promisify(execFile)('make', ['-C', kernel.buildDir, `M=${buildDir}`, 'W=1', 'modules'], { timeout: 300_000, maxBuffer: 8 << 20 });
  assert.doesNotMatch(`${make.stdout}\n${make.stderr}`, /warning:/, 'the fixture builds without warnings (W=1)');
  await pushFile(session, join(buildDir, `${FIXTURE}.ko`), GUEST_KO);
});

after(async () => {
  session?.close();
  rmSync(buildDir, { recursive: true, force: true });
  await lab.down().finally(() => rmSync(stateDir, { recursive: true, force: true })).catch(() => undefined);
});

const guest = async (shell: string, timeoutMs = 120_000): Promise<string> => {
  const r = await session!.run({ shell }, { timeoutMs });
  assert.equal(r.code, 0, `${shell}: ${r.stdout}\n${r.stderr}`);
  return r.stdout;
};

/** The conformance section as `vlab check --json` prints it. */
async function check(): Promise<ConformanceSnapshot> {
  const r = await runMainCaptured(['check', '--json', '--telemetry', lab.paths.telemetrySocket], { cwd: stateDir, env: process.env });
  assert.ok(r.code === 0 || r.code === 1, `vlab check exit ${r.code}: ${r.err}`);
  const c = JSON.parse(r.out) as ConformanceSnapshot | null;
  assert.ok(c, 'the back-end reports conformance');
  return c;
}

const counts = (c: ConformanceSnapshot): Map<string, RuleCount> => new Map(c.rules.map((r) => [r.rule, r]));

/** The rules whose count grew from `before` to `now`, with how much. */
function grown(before: ConformanceSnapshot, now: ConformanceSnapshot): string[] {
  const was = counts(before);
  return now.rules.filter((r) => r.count > (was.get(r.rule)?.count ?? 0)).map((r) => `${r.rule} +${r.count - (was.get(r.rule)?.count ?? 0)}`);
}

/** Polls `vlab check --json` until `done` holds (an event the guest causes; generous: TCG on a loaded machine). */
async function checkUntil(done: (c: ConformanceSnapshot) => boolean, what: string, ms = 120_000): Promise<ConformanceSnapshot> {
  const deadline = Date.now() + ms;
  for (;;) {
    const c = await check();
    if (done(c)) return c;
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}: ${JSON.stringify(c.rules.map((r) => `${r.rule} ×${r.count}`))}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** Waits until data queue 0 (the fixture's fresh ring) has published `n` used entries for `n` exposed. */
async function usedUntil(n: number, ms = 120_000): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    const q = (await requestSnapshot(lab.paths.telemetrySocket)).queues[0];
    if (q && q.availIdx === n && q.usedIdx === n) return;
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${n} used entries: avail ${q?.availIdx}, used ${q?.usedIdx}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

test('the fixture module is checkpatch-clean (--strict)', async () => {
  const r = await runCheckpatch(FIXTURE_SRC, { strict: true });
  assert.equal(r.skipped, undefined, r.skipped);
  assert.deepEqual(r.problems, []);
});

const CASES = [
  { rule: 'in-flight', id: 'avail.head-in-use', clause: '§2.7.13 + §2.7.13.1', head: 2, detail: /head 2 made available again while the device still holds it/ },
  { rule: 'loop', id: 'chain.loop', clause: '§2.7.5.2 + §2.7.5.3.1', head: 5, detail: /chain longer than queue size \d+ \(loop\?\)/ },
  { rule: 'order', id: 'chain.order', clause: '§2.7.4.2', head: 9, detail: /readable descriptor after a writable one \(descriptor 10\)/ },
  { rule: 'indirect-next', id: 'desc.indirect-next', clause: '§2.7.5.3.1', head: 12, detail: /both INDIRECT and NEXT \(descriptor 12, flags 0x5\)/ },
] as const;

for (const k of CASES) {
  test(`rule=${k.rule} head=${k.head}: vlab check reports exactly ${k.id} (${k.clause}) at queue 0 head ${k.head}, and the device survives`, async () => {
    await unloadDriver(session!);
    // in-flight: the twice-exposed request must be served without the oracle seeing more than the
    // head rule (a zeroed header would also break crypto.opcode-unknown): a fault rule answers
    // both with ERR before the device decodes them (docs/fault-injection.md).
    if (k.rule === 'in-flight') {
      const set = await telemetryRequest(lab.paths.telemetrySocket, { type: 'fault-set', rules: ['status=err,count=2'] });
      assert.equal(set.type, 'fault-set', JSON.stringify(set));
    }
    const before = await check();
    await guest(`insmod ${GUEST_KO} rule=${k.rule} head=${k.head}`);
    try {
      const now = await checkUntil((c) => grown(before, c).length > 0, `${k.id} to be reported`);
      // Every rule a chain breaks is counted before its used entry is published: once the fixture's
      // fresh ring has returned every chain it exposed, nothing more can come from this load.
      const exposed = k.rule === 'in-flight' ? 2 : 1;
      await usedUntil(exposed);
      const settled = await check();
      assert.deepEqual(grown(before, settled), [`${k.id} +1`], 'exactly that rule, once');
      const v = settled.recent[0]!;
      assert.deepEqual([v.rule, v.clause, v.kind, v.queue, v.head], [k.id, k.clause, 'driver', 0, k.head]);
      assert.match(v.detail, k.detail);
      assert.equal(settled.violations, before.violations + 1);
      assert.ok(now.enabled);
      const dmesg = await guest('dmesg | tail -n 20');
      assert.match(dmesg, new RegExp(`broke ${k.rule} at head ${k.head} \\(test-only driver\\)`));
    } finally {
      await guest(`rmmod ${FIXTURE}`);
      if (k.rule === 'in-flight') await telemetryRequest(lab.paths.telemetrySocket, { type: 'fault-clear' });
    }
    const status = await lab.status();
    assert.equal(status.state, 'running', status.reason);
    const q = status.backend.telemetry?.queues[0];
    assert.equal(q?.broken ?? null, null, 'the ring is not abandoned');
  });
}

test('our driver bound again serves known answers with 0 new violations', async () => {
  const before = await check();
  assert.ok(await loadDriver(session!, ours!), `${MODULE_NAME} loads again`);
  const r = await session!.run([GUEST_TOOL_PATH, 'kat'], { timeoutMs: 300_000 });
  assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
  assert.doesNotMatch(r.stdout, /^not ok /m, r.stdout);
  const after = await check();
  assert.deepEqual(grown(before, after), [], 'no rule broken by our driver');
  assert.equal(after.violations, before.violations);
});
