/**
 * "Check driver" as plain data: the report `vlab check driver --json` prints
 * (extension/lab/check/grade-report.ts), read defensively from the CLI's stdout, and the tree the
 * view shows: section → check → evidence, a failing check's links (a request in the rings view, a
 * line of a log) as clickable rows. No vscode import: unit-tested in plain Node.
 */
import {
  type CheckResult, type CheckStatus, type EvidenceLink, GRADE_SECTIONS, type GradeReport, type GradeSectionId, type GradedDriver, sectionTotals,
} from '../../lab/check/grade-report';

/** The command a link row runs, with the link as its one argument (command-ids.ts). */
export const OPEN_CHECK_LINK = 'vlab.openCheckLink';

export interface GradeNode {
  readonly id: string;
  readonly label: string;
  readonly description?: string;
  readonly tooltip?: string;
  /** a codicon id */
  readonly icon?: string;
  readonly command?: { readonly command: string; readonly title: string; readonly arguments: readonly [EvidenceLink] };
  readonly children?: readonly GradeNode[];
}

/** What a report may hold (a report far bigger than the grader writes is not one). */
export const REPORT_LIMITS = { checks: 1000, evidence: 200, links: 32, text: 2000, path: 4096, points: 1_000_000, queue: 0xffff, head: 32767, line: 10_000_000 } as const;
/** Characters of a label or description a tree row shows. */
const ROW_TEXT = 200;

export class GradeReportError extends Error {}

type Raw = Record<string, unknown>;

function isRecord(v: unknown): v is Raw {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function fail(what: string): never {
  throw new GradeReportError(`not a vlab check driver report: ${what}`);
}

function str(v: unknown, what: string, max: number = REPORT_LIMITS.text): string {
  if (typeof v !== 'string' || v.length > max) fail(`${what} is not a string of at most ${max} characters`);
  return v;
}

function int(v: unknown, what: string, max: number, min = 0): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) fail(`${what} is not an integer in ${min}..${max}`);
  return v;
}

function list(v: unknown, what: string, max: number): unknown[] {
  if (!Array.isArray(v) || v.length > max) fail(`${what} is not a list of at most ${max}`);
  return v;
}

function readLink(v: unknown, what: string): EvidenceLink {
  if (!isRecord(v)) fail(`${what} is not an object`);
  if (v.kind === 'rings') return { kind: 'rings', queue: int(v.queue, `${what}.queue`, REPORT_LIMITS.queue), head: int(v.head, `${what}.head`, REPORT_LIMITS.head) };
  if (v.kind === 'log') {
    const file = str(v.file, `${what}.file`, REPORT_LIMITS.path);
    if (!file.startsWith('/') || file.includes('\0')) fail(`${what}.file is not an absolute path`);
    return { kind: 'log', file, line: int(v.line, `${what}.line`, REPORT_LIMITS.line, 1) };
  }
  return fail(`${what}.kind is neither "rings" nor "log"`);
}

const STATUSES: readonly CheckStatus[] = ['pass', 'fail', 'skip'];

function readCheck(v: unknown, i: number): CheckResult {
  const what = `checks[${i}]`;
  if (!isRecord(v)) fail(`${what} is not an object`);
  const section = v.section;
  if (typeof section !== 'string' || !(GRADE_SECTIONS as readonly string[]).includes(section)) fail(`${what}.section is not one of ${GRADE_SECTIONS.join(', ')}`);
  const status = v.status;
  if (typeof status !== 'string' || !(STATUSES as readonly string[]).includes(status)) fail(`${what}.status is not pass, fail or skip`);
  const points = int(v.points, `${what}.points`, REPORT_LIMITS.points);
  const earned = int(v.earned, `${what}.earned`, points);
  return {
    id: str(v.id, `${what}.id`, ROW_TEXT), section: section as GradeSectionId, title: str(v.title, `${what}.title`), points, earned, status: status as CheckStatus,
    evidence: list(v.evidence, `${what}.evidence`, REPORT_LIMITS.evidence).map((e, k) => str(e, `${what}.evidence[${k}]`)),
    ...(v.clause !== undefined ? { clause: str(v.clause, `${what}.clause`, ROW_TEXT) } : {}),
    ...(v.links !== undefined ? { links: list(v.links, `${what}.links`, REPORT_LIMITS.links).map((l, k) => readLink(l, `${what}.links[${k}]`)) } : {}),
    durationMs: typeof v.durationMs === 'number' && Number.isFinite(v.durationMs) && v.durationMs >= 0 ? v.durationMs : 0,
  };
}

function readDriver(v: unknown): GradedDriver {
  if (!isRecord(v) || (v.kind !== 'ours' && v.kind !== 'module' && v.kind !== 'afalg')) fail('driver.kind is not ours, module or afalg');
  return {
    kind: v.kind, name: str(v.name, 'driver.name', ROW_TEXT),
    ...(v.modulePath !== undefined ? { modulePath: str(v.modulePath, 'driver.modulePath', REPORT_LIMITS.path) } : {}),
    ...(v.dev !== undefined ? { dev: str(v.dev, 'driver.dev', REPORT_LIMITS.path) } : {}),
  };
}

/** The report in `stdout` (untrusted: the CLI's output); throws GradeReportError naming what is wrong. */
export function parseGradeReport(stdout: string): GradeReport {
  let raw: unknown;
  try {
    raw = JSON.parse(stdout);
  } catch {
    fail('the output is not JSON');
  }
  if (!isRecord(raw)) fail('not a JSON object');
  if (raw.schema !== 1) fail(`schema ${JSON.stringify(raw.schema)} (this editor reads schema 1)`);
  if (raw.backend !== 'ts' && raw.backend !== 'builtin') fail('backend is neither ts nor builtin');
  const checks = list(raw.checks, 'checks', REPORT_LIMITS.checks).map(readCheck);
  // The total is recomputed from the checks: a row never shows a sum that disagrees with them.
  const total = { points: checks.reduce((n, c) => n + c.points, 0), earned: checks.reduce((n, c) => n + c.earned, 0) };
  return {
    schema: 1, driver: readDriver(raw.driver), backend: raw.backend, kernel: str(raw.kernel, 'kernel', ROW_TEXT), startedAt: str(raw.startedAt, 'startedAt', ROW_TEXT),
    durationMs: typeof raw.durationMs === 'number' && Number.isFinite(raw.durationMs) && raw.durationMs >= 0 ? raw.durationMs : 0, checks, total,
  };
}

function short(s: string): string {
  return s.length > ROW_TEXT ? `${s.slice(0, ROW_TEXT - 1)}…` : s;
}

const STATUS_ICON: Readonly<Record<CheckStatus, string>> = { pass: 'pass', fail: 'error', skip: 'circle-slash' };

/** What a link row says. */
export function linkLabel(l: EvidenceLink): string {
  return l.kind === 'rings' ? `show queue ${l.queue} head ${l.head} in the rings view` : `open ${l.file}:${l.line}`;
}

function linkNode(checkId: string, l: EvidenceLink, k: number): GradeNode {
  return {
    id: `${checkId}/link/${k}`, label: short(linkLabel(l)), icon: l.kind === 'rings' ? 'circuit-board' : 'go-to-file',
    tooltip: l.kind === 'rings' ? 'Open the rings view with this request selected in its descriptor grid' : `Open ${l.file} at line ${l.line}`,
    command: { command: OPEN_CHECK_LINK, title: 'Open', arguments: [l] },
  };
}

function checkNode(c: CheckResult): GradeNode {
  const evidence: GradeNode[] = c.evidence.map((e, k) => ({ id: `${c.id}/evidence/${k}`, label: short(e), tooltip: e }));
  // Links only where they help: a check that did not pass.
  const links = c.status === 'pass' ? [] : (c.links ?? []).map((l, k) => linkNode(c.id, l, k));
  return {
    id: c.id, label: short(c.title), icon: STATUS_ICON[c.status],
    description: `${c.earned}/${c.points}${c.status === 'skip' ? ' skipped' : ''}${c.clause ? ` · ${c.clause}` : ''}`,
    tooltip: `${c.id}: ${c.status}${c.clause ? ` (${c.clause})` : ''}`,
    ...(links.length + evidence.length > 0 ? { children: [...links, ...evidence] } : {}),
  };
}

/** The tree: one node per section (GRADE_SECTIONS order, failing checks first inside it), then its checks. */
export function buildGradeTree(report: GradeReport): GradeNode[] {
  return sectionTotals(report.checks).map((t) => {
    const mine = report.checks.filter((c) => c.section === t.section);
    const order: Readonly<Record<CheckStatus, number>> = { fail: 0, skip: 1, pass: 2 };
    const sorted = [...mine].sort((a, b) => order[a.status] - order[b.status]);
    const notes = [t.failed ? `${t.failed} failed` : '', t.skipped ? `${t.skipped} skipped` : ''].filter(Boolean).join(', ');
    return {
      id: `section/${t.section}`, label: t.section, icon: t.failed ? 'error' : 'pass',
      description: `${t.earned}/${t.points}${notes ? ` · ${notes}` : ''}`, children: sorted.map(checkNode),
    };
  });
}

/** One line for the notification and the view's title: points, failures, the driver graded. */
export function gradeSummary(report: GradeReport): string {
  const failed = report.checks.filter((c) => c.status === 'fail').length;
  return `${report.driver.name}: ${report.total.earned}/${report.total.points} points${failed ? `, ${failed} check${failed === 1 ? '' : 's'} failed` : ', every check passed'}`;
}
