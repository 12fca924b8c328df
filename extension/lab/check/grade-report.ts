/**
 * The report of `vlab check driver` (docs/checking.md): the contract between the grader, its
 * printers (table, JSON, JUnit) and its readers (the editor's "Check driver" tree, the fixture
 * tests). Types and the two pure helpers every reader needs; no I/O.
 */

/** The grader's sections, in the order they run and print. */
export const GRADE_SECTIONS = ['api', 'concurrency', 'robustness', 'hygiene', 'conformance'] as const;
export type GradeSectionId = (typeof GRADE_SECTIONS)[number];

export type CheckStatus = 'pass' | 'fail' | 'skip';

/** Where the reason for a result can be seen: a request in the rings view, or a line of a log. */
export type EvidenceLink =
  | { readonly kind: 'rings'; readonly queue: number; readonly head: number }
  | { readonly kind: 'log'; readonly file: string; readonly line: number };

export interface CheckResult {
  /** Stable id, `section.name` (e.g. `api.cbc-kat`); fixtures and CI refer to it. */
  readonly id: string;
  readonly section: GradeSectionId;
  readonly title: string;
  /** What the check is worth. */
  readonly points: number;
  /** What the driver got: `points` on pass, 0 on fail or skip. */
  readonly earned: number;
  readonly status: CheckStatus;
  /** Lines that show why (errno seen, bytes compared, the rule and clause broken, dmesg lines). */
  readonly evidence: readonly string[];
  /** The virtio clause a conformance check refers to (e.g. `§2.7.4.2`). */
  readonly clause?: string;
  readonly links?: readonly EvidenceLink[];
  readonly durationMs: number;
}

export interface GradedDriver {
  /** `ours`, a user's module by path, or an upstream driver graded through AF_ALG. */
  readonly kind: 'ours' | 'module' | 'afalg';
  /** Module name as the guest reports it (e.g. `vlab_cryptodev`). */
  readonly name: string;
  /** Host path of the .ko graded, when one was loaded. */
  readonly modulePath?: string;
  /** The character device graded (default /dev/crypto); absent for AF_ALG. */
  readonly dev?: string;
}

export interface GradeReport {
  readonly schema: 1;
  readonly driver: GradedDriver;
  readonly backend: 'ts' | 'builtin';
  readonly kernel: string;
  readonly startedAt: string;
  readonly durationMs: number;
  readonly checks: readonly CheckResult[];
  readonly total: { readonly points: number; readonly earned: number };
}

export interface SectionTotal {
  readonly section: GradeSectionId;
  readonly points: number;
  readonly earned: number;
  readonly failed: number;
  readonly skipped: number;
}

/** Points per section, in GRADE_SECTIONS order (sections without checks are left out). */
export function sectionTotals(checks: readonly CheckResult[]): SectionTotal[] {
  return GRADE_SECTIONS.flatMap((section) => {
    const mine = checks.filter((c) => c.section === section);
    if (mine.length === 0) return [];
    return [{
      section,
      points: mine.reduce((n, c) => n + c.points, 0),
      earned: mine.reduce((n, c) => n + c.earned, 0),
      failed: mine.filter((c) => c.status === 'fail').length,
      skipped: mine.filter((c) => c.status === 'skip').length,
    }];
  });
}

/** The ids of the checks that did not pass (what a fixture is expected to lose). */
export function lostChecks(report: GradeReport): string[] {
  return report.checks.filter((c) => c.status !== 'pass').map((c) => c.id);
}
