/**
 * The "Check driver" tree model (extension/vscode/check/grade-tree.ts) from GradeReport objects:
 * section → check → evidence, failing checks first with their links (rings: queue/head, log:
 * file/line) as rows that run the link command, and the defensive read of the CLI's JSON.
 */
import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { CheckResult, GradeReport } from '../../../../../extension/lab/check/grade-report';
import { buildGradeTree, GradeReportError, gradeSummary, OPEN_CHECK_LINK, parseGradeReport, REPORT_LIMITS } from '../../../../../extension/vscode/check/grade-tree';
import { CommandId } from '../../../../../extension/vscode/command-ids';

const check = (over: Partial<CheckResult> & Pick<CheckResult, 'id' | 'section'>): CheckResult => ({
  title: over.id, points: 2, earned: over.status === 'pass' || over.status === undefined ? 2 : 0, status: 'pass', evidence: [], durationMs: 5, ...over,
});

const report = (checks: CheckResult[]): GradeReport => ({
  schema: 1, driver: { kind: 'ours', name: 'vlab_cryptodev', dev: '/dev/crypto' }, backend: 'ts', kernel: '6.1.0', startedAt: '2026-12-04T18:00:00Z', durationMs: 1000,
  checks, total: { points: checks.reduce((n, c) => n + c.points, 0), earned: checks.reduce((n, c) => n + c.earned, 0) },
});

const sample = (): GradeReport => report([
  check({ id: 'api.cbc-kat', section: 'api', title: 'AES-CBC known answers', evidence: ['8 vectors matched'] }),
  check({ id: 'api.bad-session', section: 'api', title: 'bad session id', status: 'fail', earned: 0, evidence: ['errno 0, expected EINVAL'],
    links: [{ kind: 'log', file: '/ws/.vlab/console.log', line: 42 }] }),
  check({ id: 'conformance.violations', section: 'conformance', title: '0 oracle violations', status: 'fail', earned: 0, points: 10, clause: '§2.7.4.2',
    evidence: ['chain.order ×1: readable descriptor 3 after writable descriptor 2'], links: [{ kind: 'rings', queue: 0, head: 5 }] }),
  check({ id: 'hygiene.rmmod', section: 'hygiene', title: 'module unload', status: 'skip', earned: 0 }),
]);

describe('Check driver tree model', () => {
  it('sections in grader order with points; failing checks first; evidence under each check', () => {
    const tree = buildGradeTree(sample());
    assert.deepEqual(tree.map((n) => [n.label, n.description, n.icon]), [
      ['api', '2/4 · 1 failed', 'error'], ['hygiene', '0/2 · 1 skipped', 'pass'], ['conformance', '0/10 · 1 failed', 'error'],
    ]);
    const api = tree[0]!.children!;
    assert.deepEqual(api.map((n) => [n.id, n.icon, n.description]), [['api.bad-session', 'error', '0/2'], ['api.cbc-kat', 'pass', '2/2']]);
    assert.deepEqual(api[1]!.children!.map((n) => n.label), ['8 vectors matched']);
    assert.equal(tree[1]!.children![0]!.description, '0/2 skipped');
    assert.equal(tree[1]!.children![0]!.children, undefined, 'nothing to expand');
  });

  it("a failing check's links run the link command: rings (queue/head) and log (file/line), before its evidence", () => {
    const tree = buildGradeTree(sample());
    const conf = tree[2]!.children![0]!;
    assert.equal(conf.description, '0/10 · §2.7.4.2');
    const [link, evidence] = conf.children!;
    assert.equal(link!.label, 'show queue 0 head 5 in the rings view');
    assert.deepEqual(link!.command, { command: OPEN_CHECK_LINK, title: 'Open', arguments: [{ kind: 'rings', queue: 0, head: 5 }] });
    assert.equal(evidence!.label, 'chain.order ×1: readable descriptor 3 after writable descriptor 2');
    const log = tree[0]!.children![0]!.children![0]!;
    assert.deepEqual(log.command?.arguments, [{ kind: 'log', file: '/ws/.vlab/console.log', line: 42 }]);
    assert.equal(log.label, 'open /ws/.vlab/console.log:42');
    assert.equal(OPEN_CHECK_LINK, CommandId.openCheckLink, 'the row runs the contributed command');
  });

  it('a passing check shows no links; the summary says points and failures', () => {
    const passing = report([check({ id: 'api.x', section: 'api', links: [{ kind: 'rings', queue: 0, head: 1 }], evidence: ['ok'] })]);
    assert.deepEqual(buildGradeTree(passing)[0]!.children![0]!.children!.map((n) => n.label), ['ok']);
    assert.equal(gradeSummary(passing), 'vlab_cryptodev: 2/2 points, every check passed');
    assert.equal(gradeSummary(sample()), 'vlab_cryptodev: 2/16 points, 2 checks failed');
  });

  it('reads the JSON the CLI prints, and recomputes the total from the checks', () => {
    const r = sample();
    assert.deepEqual(parseGradeReport(JSON.stringify(r)), r);
    const lying = { ...r, total: { points: 1, earned: 1 } };
    assert.deepEqual(parseGradeReport(JSON.stringify(lying)).total, r.total);
  });

  it('refuses what is not a report: not JSON, another schema, bad sections, statuses, points, links, oversized lists', () => {
    const good = sample();
    const withCheck = (c: Record<string, unknown>) => JSON.stringify({ ...good, checks: [{ ...good.checks[0], ...c }] });
    const bad: [string, RegExp][] = [
      ['usage: vlab check driver', /not JSON/],
      ['[]', /not a JSON object/],
      [JSON.stringify({ ...good, schema: 2 }), /schema 2/],
      [JSON.stringify({ ...good, backend: 'qemu' }), /backend/],
      [JSON.stringify({ ...good, driver: { kind: 'x', name: 'n' } }), /driver\.kind/],
      [withCheck({ section: 'style' }), /checks\[0\]\.section/],
      [withCheck({ status: 'ok' }), /checks\[0\]\.status/],
      [withCheck({ earned: 5 }), /checks\[0\]\.earned/],
      [withCheck({ points: -1 }), /checks\[0\]\.points/],
      [withCheck({ evidence: 'x' }), /evidence/],
      [withCheck({ evidence: ['x'.repeat(REPORT_LIMITS.text + 1)] }), /evidence\[0\]/],
      [withCheck({ links: [{ kind: 'rings', queue: 0, head: -1 }] }), /links\[0\]\.head/],
      [withCheck({ links: [{ kind: 'log', file: 'relative/path', line: 3 }] }), /absolute path/],
      [withCheck({ links: [{ kind: 'log', file: '/x', line: 0 }] }), /links\[0\]\.line/],
      [withCheck({ links: [{ kind: 'url', href: 'http://x' }] }), /kind/],
      [JSON.stringify({ ...good, checks: Array.from({ length: REPORT_LIMITS.checks + 1 }, () => good.checks[0]) }), /checks is not a list/],
    ];
    for (const [text, why] of bad) assert.throws(() => parseGradeReport(text), (e: unknown) => e instanceof GradeReportError && why.test(e.message), text.slice(0, 80));
  });
});
