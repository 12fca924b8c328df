/**
 * `vlab check driver` on one VM boot (ts back-end): our driver gets full marks (table, JSON and JUnit at
 * once), and each single-bug variant of it (test/fixtures/driver-bugs/*.patch, built for the guest
 * kernel) loses exactly the checks — and points — its bug should cost, graded with --module in place
 * of ours; ours is loaded again after each.
 */
import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isDriverLoaded } from '../../extension/lab/driver/driver';
import { type GradeReport, lostChecks } from '../../extension/lab/check/grade-report';
import { ALL_CHECKS } from '../../extension/lab/check/plan';
import { labWithDriver } from '../../extension/lab/with-driver';
import { runMainCaptured } from '../cli-capture';
import { buildBugVariant, driverBugs } from './driver-bugs';
import { processesMentioning } from './lab-helpers';

const REPO = join(__dirname, '..', '..', '..');
const stateDir = mkdtempSync(join(tmpdir(), 'vlab-it-check-driver-'));
const lab = labWithDriver(REPO, { stateDir, env: {} });
const env = { ...process.env, VLAB_STATE_DIR: stateDir };
const variants = new Map<string, string>();

/**
 * What each bug costs. Without a request timeout a killed waiter's request outlives its process: when
 * the stall is cleared the device serves a request whose session the driver has destroyed meanwhile —
 * the oracle's §5.9.7.6.1 rule sees it. The session leak is graded last: the leaked sessions stay in
 * the back-end (they go with the front-end, not with a device reset).
 */
const EXPECTED: ReadonlyArray<readonly [string, readonly string[]]> = [
  ['no-iv-lock', ['concurrency.implicit-iv']],
  ['no-used-len-check', ['robustness.short-used']],
  ['no-request-timeout', ['robustness.stall-timeout', 'conformance.crypto.session-unknown']],
  // Every session still open at close stays in the device: within the API section the device reaches
  // its 1024-session limit, the driver serves the rest in software (its fallback), so the injected
  // faults that need a request at the device never fire.
  ['session-leak', ['hygiene.sessions', 'robustness.status', 'robustness.short-used', 'robustness.stall-timeout']],
];

const pointsOf = (id: string): number => ALL_CHECKS.find((c) => c.id === id)?.points ?? (id.startsWith('conformance.') ? 15 : NaN);

before(async () => {
  await lab.up({ backend: 'ts', guestDriver: 'lab' });
  // The variants first: the first grade then builds ours once more and the later ones find it built.
  for (const bug of driverBugs()) variants.set(bug, await buildBugVariant(lab, bug, stateDir));
});

after(async () => {
  await lab.down().catch(() => undefined);
  rmSync(stateDir, { recursive: true, force: true });
  assert.deepEqual(processesMentioning(stateDir), [], 'no QEMU or backend left behind');
});

async function grade(args: readonly string[]): Promise<{ code: number; report: GradeReport; err: string }> {
  const r = await runMainCaptured(['check', 'driver', '--json', ...args], { cwd: REPO, env });
  let report: GradeReport;
  try {
    report = JSON.parse(r.out) as GradeReport;
  } catch {
    assert.fail(`vlab check driver ${args.join(' ')} printed no JSON (exit ${r.code}): ${r.out.slice(0, 2000)}\n${r.err.slice(-2000)}`);
  }
  process.stdout.write(`# ${args.join(' ') || 'ours'}: ${report.total.earned}/${report.total.points} in ${(report.durationMs / 1000).toFixed(1)} s; lost ${lostChecks(report).join(', ') || 'nothing'}\n`);
  return { code: r.code, report, err: r.err };
}

test('every bug fixture has its expected losses listed', () => {
  assert.deepEqual(driverBugs(), EXPECTED.map(([b]) => b).sort());
});

test('our driver: full marks, as a table, JSON and JUnit at once', { timeout: 900_000 }, async () => {
  const junit = join(stateDir, 'grade.xml');
  const table = await runMainCaptured(['check', 'driver', '--junit', junit], { cwd: REPO, env });
  assert.equal(table.code, 0, table.out + table.err);
  assert.match(table.out, /^ {2}total +100\/100$/m, table.out);
  assert.match(table.out, /^full marks$/m);
  const xml = readFileSync(junit, 'utf8');
  assert.equal([...xml.matchAll(/<testsuite /g)].length, 5, xml);
  assert.equal([...xml.matchAll(/<testcase /g)].length, ALL_CHECKS.length, xml);
  assert.doesNotMatch(xml, /<failure|<skipped/);

  const { code, report } = await grade([]);
  assert.equal(code, 0);
  assert.equal(report.driver.kind, 'ours');
  assert.equal(report.backend, 'ts');
  assert.deepEqual(report.checks.map((c) => c.id), ALL_CHECKS.map((c) => c.id));
  assert.deepEqual(lostChecks(report), [], JSON.stringify(report.checks.filter((c) => c.status !== 'pass'), null, 1));
  assert.deepEqual(report.total, { points: 100, earned: 100 });
  process.stdout.write(`# our driver graded in ${(report.durationMs / 1000).toFixed(1)} s\n`);
});

for (const [bug, lost] of EXPECTED) {
  test(`bug fixture ${bug}: loses exactly ${lost.join(', ')}`, { timeout: 900_000 }, async () => {
    const ko = variants.get(bug);
    assert.ok(ko, `${bug} was built`);
    const { code, report, err } = await grade(['--module', ko]);
    assert.equal(code, 1, err.slice(-2000));
    assert.equal(report.driver.kind, 'module');
    assert.equal(report.driver.modulePath, ko);
    const failed = report.checks.filter((c) => c.status !== 'pass');
    assert.deepEqual(lostChecks(report).sort(), [...lost].sort(), JSON.stringify(failed, null, 1));
    const expectedLoss = lost.reduce((n, id) => n + pointsOf(id), 0);
    assert.equal(report.total.points - report.total.earned, expectedLoss, JSON.stringify(failed, null, 1));
    for (const c of failed) {
      assert.equal(c.status, 'fail', `${c.id} failed (not skipped)`);
      assert.ok(c.evidence.length > 0, `${c.id} has evidence`);
      if (c.section === 'conformance') {
        assert.match(c.clause ?? '', /^§5\.9\.7\.6\.1$/, `${c.id} names its clause`);
        assert.equal(c.links?.[0]?.kind, 'rings', `${c.id} links to the request in the rings view`);
      }
    }
    const session = await lab.ssh({ timeoutMs: 60_000 });
    try {
      assert.equal(await isDriverLoaded(session), true, 'our driver is loaded again after the grade');
    } finally {
      session.close();
    }
  });
}
