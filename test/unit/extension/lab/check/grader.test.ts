/**
 * The grader's pure parts: the check plan, the guest batch script and its parsing (run in a real
 * local sh), the conformance section from two snapshots, the table and JUnit printers, the module
 * name of a .ko, and `vlab check driver`'s usage and no-lab exit codes.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ALL_AFALG_CHECKS, ALL_CHECKS } from '../../../../../extension/lab/check/plan';
import { GRADE_SECTIONS, type CheckResult, type GradeReport, lostChecks } from '../../../../../extension/lab/check/grade-report';
import { batchScript, parseBatch, toolVerdict } from '../../../../../extension/lab/check/guest-runner';
import { conformanceChecks } from '../../../../../extension/lab/check/conformance';
import { formatGradeTable, formatJunit, xmlText } from '../../../../../extension/lab/check/print';
import { moduleNameOf } from '../../../../../extension/lab/check/module';
import { hostCiphertextHash, randomCases } from '../../../../../extension/lab/check/api';
import type { ConformanceSnapshot, RuleCount } from '../../../../../backend/conformance/report';
import { runMainCaptured } from '../../../../cli-capture';

test('the plan: 100 points, unique ids named after their section, every section present', () => {
  assert.equal(ALL_CHECKS.reduce((n, c) => n + c.points, 0), 100);
  assert.equal(new Set(ALL_CHECKS.map((c) => c.id)).size, ALL_CHECKS.length);
  for (const c of ALL_CHECKS) assert.ok(c.id.startsWith(`${c.section}.`), c.id);
  assert.deepEqual([...new Set(ALL_CHECKS.map((c) => c.section))], [...GRADE_SECTIONS]);
});

test('the AF_ALG plan: 62 points, unique ids named after their section, every section present', () => {
  assert.equal(ALL_AFALG_CHECKS.reduce((n, c) => n + c.points, 0), 62);
  assert.equal(new Set(ALL_AFALG_CHECKS.map((c) => c.id)).size, ALL_AFALG_CHECKS.length);
  for (const c of ALL_AFALG_CHECKS) assert.ok(c.id.startsWith(`${c.section}.`), c.id);
  assert.deepEqual([...new Set(ALL_AFALG_CHECKS.map((c) => c.section))], [...GRADE_SECTIONS]);
});

test('a batch runs each step bounded, and parsing gives each its output, exit code and time', () => {
  const steps = [
    { key: 'a', cmd: ['echo', "it's"], timeoutSec: 10 },
    { key: 'b', cmd: { shell: 'echo out; echo err >&2; exit 3' }, timeoutSec: 10 },
    { key: 'c', cmd: { shell: 'sleep 5' }, timeoutSec: 1 },
  ];
  const r = spawnSync('sh', ['-c', batchScript(steps)], { encoding: 'utf8' });
  const [a, b, c] = parseBatch(steps, r.stdout);
  assert.deepEqual([a!.code, a!.stdout], [0, "it's"]);
  assert.deepEqual([b!.code, b!.stdout], [3, 'out\nerr']);
  assert.equal(c!.code, 137, 'killed by its timeout');
  assert.ok(c!.durationMs >= 900 && c!.durationMs < 4000, String(c!.durationMs));
  assert.equal(parseBatch(steps, r.stdout.split('\n').slice(0, 3).join('\n'))[1]!.code, -1, 'a step cut off has no end marker');
  assert.throws(() => batchScript([{ key: 'x;y', cmd: ['true'], timeoutSec: 1 }]));
});

test('the tool verdict counts ok lines and keeps the not-ok ones', () => {
  assert.deepEqual(toolVerdict('ok a\nnot ok b: why\nok c\nnoise'), { ok: 2, notOk: ['not ok b: why'] });
});

const rule = (id: string, count: number, queue: number | null = 0, head: number | null = 7): RuleCount => ({
  rule: id, clause: '§5.9.7.6.1', kind: 'driver', count,
  last: { seq: count, rule: id, clause: '§5.9.7.6.1', kind: 'driver', queue, head, detail: `detail of ${id}`, atMs: 1 },
});
const snap = (rules: RuleCount[]): ConformanceSnapshot => ({ enabled: true, strict: false, features: 'offered', violations: rules.reduce((n, r) => n + r.count, 0), refusals: 0, rules, recent: [] });

test('conformance: only violations during the grade count; each rule broken is a failed check with clause and rings link', () => {
  const pass = conformanceChecks(snap([rule('crypto.session-unknown', 2)]), snap([rule('crypto.session-unknown', 2)]), 5);
  assert.deepEqual(pass.map((c) => [c.id, c.status, c.earned]), [['conformance.oracle', 'pass', 15]]);
  const fail = conformanceChecks(snap([rule('a.one', 1)]), snap([rule('a.one', 3), rule('b.two', 1, null, null)]), 5);
  assert.deepEqual(fail.map((c) => [c.id, c.status, c.points, c.earned]), [['conformance.a.one', 'fail', 8, 0], ['conformance.b.two', 'fail', 7, 0]]);
  assert.deepEqual(fail[0]!.links, [{ kind: 'rings', queue: 0, head: 7 }]);
  assert.equal(fail[0]!.clause, '§5.9.7.6.1');
  assert.match(fail[0]!.evidence.join('\n'), /2 violation\(s\)[\s\S]*queue 0 head 7: detail of a.one/);
  assert.deepEqual(fail[1]!.links, []);
  assert.equal(conformanceChecks(undefined, undefined, 0)[0]!.status, 'skip');
  assert.equal(conformanceChecks(undefined, { ...snap([]), enabled: false }, 0)[0]!.status, 'skip');
});

function report(checks: CheckResult[]): GradeReport {
  return {
    schema: 1, driver: { kind: 'module', name: 'mine', modulePath: '/x/mine.ko', dev: '/dev/crypto' }, backend: 'ts', kernel: '6.1', startedAt: '2026-01-01T00:00:00.000Z',
    durationMs: 1234, checks, total: { points: checks.reduce((n, c) => n + c.points, 0), earned: checks.reduce((n, c) => n + c.earned, 0) },
  };
}
const check = (id: string, status: CheckResult['status'], points: number, evidence: string[] = [], extra: Partial<CheckResult> = {}): CheckResult => ({
  id, section: id.split('.')[0] as CheckResult['section'], title: `title of ${id}`, points, earned: status === 'pass' ? points : 0, status, evidence, durationMs: 100, ...extra,
});

test('the table: points per section, total, and every check not passed with its evidence and link', () => {
  const r = report([
    check('api.kat', 'pass', 8), check('api.errors', 'fail', 6, ['not ok X: errno 0, want 22']),
    check('robustness.status', 'skip', 5, ['needs the ts back-end']),
    check('conformance.crypto.x', 'fail', 15, ['1 violation(s)'], { clause: '§2.7', links: [{ kind: 'rings', queue: 1, head: 3 }] }),
  ]);
  const t = formatGradeTable(r);
  assert.match(t, /^ {2}api +8\/14 +1\/2 passed \(1 failed\)$/m);
  assert.match(t, /^ {2}robustness +0\/5 +0\/1 passed \(1 skipped\)$/m);
  assert.match(t, /^ {2}total +8\/34$/m);
  assert.match(t, /FAIL api\.errors \(-6\)[^\n]*\n +not ok X: errno 0, want 22/);
  assert.match(t, /SKIP robustness\.status/);
  assert.match(t, /FAIL conformance\.crypto\.x \(-15\) title of conformance\.crypto\.x \[§2\.7\]\n.*\n +see vlab rings: queue 1 head 3/);
  assert.deepEqual(lostChecks(r), ['api.errors', 'robustness.status', 'conformance.crypto.x']);
  assert.match(formatGradeTable(report([check('api.kat', 'pass', 8)])), /^full marks$/m);
});

test('JUnit: a testsuite per section, a testcase per check, failures with escaped evidence, skips', () => {
  const x = formatJunit(report([check('api.kat', 'pass', 8), check('api.errors', 'fail', 6, ['<bad> & "quoted"\u0001']), check('hygiene.pages', 'skip', 4, ['why'])]));
  assert.match(x, /^<\?xml version="1.0" encoding="UTF-8"\?>\n<testsuites name="vlab check driver" tests="3" failures="1" skipped="1" time="1.234">/);
  assert.equal([...x.matchAll(/<testsuite /g)].length, 2);
  assert.match(x, /<testcase classname="api" name="api.kat" time="0.100"\/>/);
  assert.match(x, /<failure message="title of api.errors: -6 point\(s\)" type="check">&lt;bad&gt; &amp; &quot;quoted&quot;<\/failure>/);
  assert.match(x, /<testcase classname="hygiene" name="hygiene.pages" time="0.100"><skipped message="why"\/><\/testcase>/);
  assert.equal(xmlText("a'b"), 'a&apos;b');
});

test('the module name comes from .modinfo, else the file name', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vlab-grade-unit-'));
  try {
    const ko = join(dir, 'whatever.ko');
    writeFileSync(ko, Buffer.concat([Buffer.from('\x7fELF junk\0license=GPL\0name=my_crypto\0vermagic=6.1\0')]));
    assert.equal(moduleNameOf(ko), 'my_crypto');
    const plain = join(dir, 'other-drv.ko');
    writeFileSync(plain, 'no modinfo here');
    assert.equal(moduleNameOf(plain), 'other_drv');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('random cases are whole blocks where the cipher needs them, and the host hash is deterministic', () => {
  for (const c of randomCases(30)) {
    assert.ok(c.len >= 16 && c.len <= 65536);
    if (c.cipher.block > 1) assert.equal(c.len % 16, 0);
    assert.equal(hostCiphertextHash(c), hostCiphertextHash(c));
  }
});

test('vlab check driver: usage errors exit 2, no running lab exits 3', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vlab-grade-cli-'));
  try {
    const env = { ...process.env, VLAB_STATE_DIR: join(dir, 'state') };
    const bad = await runMainCaptured(['check', 'driver', '--bogus'], { cwd: dir, env });
    assert.equal(bad.code, 2, bad.err);
    const notKo = await runMainCaptured(['check', 'driver', '--module', 'x.txt'], { cwd: dir, env });
    assert.equal(notKo.code, 2, notKo.err);
    const missing = await runMainCaptured(['check', 'driver', '--module', 'missing.ko'], { cwd: dir, env });
    assert.equal(missing.code, 2, missing.err);
    const dev = await runMainCaptured(['check', 'driver', '--dev', '/etc/passwd'], { cwd: dir, env });
    assert.equal(dev.code, 2, dev.err);
    const afalgDev = await runMainCaptured(['check', 'driver', '--afalg', '--dev', '/dev/crypto'], { cwd: dir, env });
    assert.equal(afalgDev.code, 2, afalgDev.err);
    const afalgNone = await runMainCaptured(['check', 'driver', '--afalg'], { cwd: dir, env });
    assert.equal(afalgNone.code, 3, afalgNone.out + afalgNone.err);
    const none = await runMainCaptured(['check', 'driver'], { cwd: dir, env });
    assert.equal(none.code, 3, none.out + none.err);
    assert.match(none.err, /vlab up/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
