/**
 * `vlab check driver --afalg` on one VM boot (ts back-end, --guest-driver upstream): upstream Linux
 * virtio_crypto, graded through AF_ALG, gets full marks on the sections that apply (table, JUnit and
 * JSON); and a real device misbehaviour costs it the check that sees it — one flipped ciphertext
 * (`vlab fault set flip-dst,opcode=encrypt,count=1`, undetectable by a driver) loses api.kat alone.
 */
import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type GradeReport, lostChecks } from '../../extension/lab/check/grade-report';
import { ALL_AFALG_CHECKS, AFALG_CHECKS } from '../../extension/lab/check/plan';
import { labWithDriver } from '../../extension/lab/with-driver';
import { runMainCaptured } from '../cli-capture';
import { processesMentioning } from './lab-helpers';

const REPO = join(__dirname, '..', '..', '..');
const stateDir = mkdtempSync(join(tmpdir(), 'vlab-it-check-afalg-'));
const lab = labWithDriver(REPO, { stateDir, env: {} });
const env = { ...process.env, VLAB_STATE_DIR: stateDir };
const TOTAL = ALL_AFALG_CHECKS.reduce((n, c) => n + c.points, 0);

before(async () => {
  await lab.up({ backend: 'ts', guestDriver: 'upstream' });
});

after(async () => {
  await lab.down().catch(() => undefined);
  rmSync(stateDir, { recursive: true, force: true });
  assert.deepEqual(processesMentioning(stateDir), [], 'no QEMU or backend left behind');
});

async function grade(): Promise<{ code: number; report: GradeReport; err: string }> {
  const r = await runMainCaptured(['check', 'driver', '--afalg', '--json'], { cwd: REPO, env });
  let report: GradeReport;
  try {
    report = JSON.parse(r.out) as GradeReport;
  } catch {
    assert.fail(`vlab check driver --afalg printed no JSON (exit ${r.code}): ${r.out.slice(0, 2000)}\n${r.err.slice(-2000)}`);
  }
  process.stdout.write(`# afalg: ${report.total.earned}/${report.total.points} in ${(report.durationMs / 1000).toFixed(1)} s; lost ${lostChecks(report).join(', ') || 'nothing'}\n`);
  return { code: r.code, report, err: r.err };
}

test('--afalg takes no --module or --dev (usage, exit 2)', async () => {
  const r = await runMainCaptured(['check', 'driver', '--afalg', '--dev', '/dev/crypto'], { cwd: REPO, env });
  assert.equal(r.code, 2, r.out + r.err);
  assert.match(r.err, /--afalg .*no --module or --dev/);
});

test('upstream virtio_crypto through AF_ALG: full marks, as a table, JUnit and JSON', { timeout: 900_000 }, async () => {
  const junit = join(stateDir, 'grade-afalg.xml');
  const table = await runMainCaptured(['check', 'driver', '--afalg', '--junit', junit], { cwd: REPO, env });
  assert.equal(table.code, 0, table.out + table.err);
  assert.match(table.out, /virtio_crypto \(virtio_crypto_aes_cbc\) via AF_ALG/);
  assert.match(table.out, new RegExp(`^ {2}total +${TOTAL}/${TOTAL}$`, 'm'), table.out);
  const xml = readFileSync(junit, 'utf8');
  assert.equal([...xml.matchAll(/<testsuite /g)].length, 5, xml);
  assert.equal([...xml.matchAll(/<testcase /g)].length, ALL_AFALG_CHECKS.length, xml);
  assert.doesNotMatch(xml, /<failure|<skipped/);

  const { code, report } = await grade();
  assert.equal(code, 0);
  assert.equal(report.driver.kind, 'afalg');
  assert.equal(report.backend, 'ts');
  assert.deepEqual(report.checks.map((c) => c.id), ALL_AFALG_CHECKS.map((c) => c.id));
  assert.deepEqual(lostChecks(report), [], JSON.stringify(report.checks.filter((c) => c.status !== 'pass'), null, 1));
  assert.deepEqual(report.total, { points: TOTAL, earned: TOTAL });
  const ev = (id: string): string => report.checks.find((c) => c.id === id)!.evidence.join('\n');
  // The routing is proven: /proc/crypto names the driver and the device served the known answers.
  assert.match(ev('api.routing'), /driver virtio_crypto_aes_cbc module virtio_crypto .*selftest passed/);
  assert.match(ev('api.routing'), /the back-end served ([6-9]|\d\d+) request\(s\)/);
  // Upstream's errno for each device status, as documented in docs/checking.md.
  assert.match(ev('robustness.status'), /status=err: errno 22 .*\n.*status=badmsg: errno 74 .*\n.*status=notsupp: errno 5 .*\n.*status=invsess: errno 22 /);
  assert.match(ev('robustness.stall-clear'), /after fault clear: errno 0 \(completed\)/);
  assert.match(ev('hygiene.sessions'), /created [1-9]\d* and closed [1-9]\d* during the grade/);
});

test('a flipped ciphertext from the device (flip-dst, count=1) costs api.kat alone, with evidence', { timeout: 900_000 }, async () => {
  const set = await runMainCaptured(['fault', 'set', 'flip-dst,opcode=encrypt,count=1'], { cwd: REPO, env });
  assert.equal(set.code, 0, set.err);
  try {
    const { code, report } = await grade();
    assert.equal(code, 1);
    assert.deepEqual(lostChecks(report), ['api.kat'], JSON.stringify(report.checks.filter((c) => c.status !== 'pass'), null, 1));
    assert.equal(report.total.points - report.total.earned, AFALG_CHECKS.apiKat.points);
    const kat = report.checks.find((c) => c.id === 'api.kat')!;
    assert.equal(kat.status, 'fail');
    assert.match(kat.evidence.join('\n'), /not ok cbc-aes128 encrypt: ciphertext differs from SP 800-38A/);
  } finally {
    await runMainCaptured(['fault', 'clear'], { cwd: REPO, env });
  }
});
