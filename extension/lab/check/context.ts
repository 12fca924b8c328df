/**
 * What every section of the grader works with: the guest (SSH, the tool, the device node, the module
 * graded and how to load it again), the back-end, and the builders of a check's result.
 */
import type { SshSession } from '../guest/ssh';
import type { CheckResult } from './grade-report';
import type { CheckSpec } from './plan';
import type { StepResult } from './guest-runner';

export interface GradeContext {
  readonly session: SshSession;
  /** The guest tool's path in the guest. */
  readonly tool: string;
  /** The character device graded (e.g. /dev/crypto). */
  readonly dev: string;
  readonly backend: 'ts' | 'builtin';
  /** The back-end's telemetry/control socket (ts only). */
  readonly telemetrySocket: string;
  /** The graded module: its name as the kernel knows it and its .ko in the guest (for insmod again). */
  readonly module: { readonly name: string; readonly guestPath: string };
  readonly progress: (line: string) => void;
}

/** argv of the guest tool on the graded device. */
export function toolArgv(ctx: GradeContext, ...args: string[]): string[] {
  return [ctx.tool, '--dev', ctx.dev, ...args];
}

/** At most this many evidence lines per check (the JSON stays readable). */
export const MAX_EVIDENCE = 12;

function capped(lines: readonly string[]): string[] {
  const kept = lines.filter((l) => l.length > 0).map((l) => (l.length > 300 ? `${l.slice(0, 300)}…` : l));
  return kept.length <= MAX_EVIDENCE ? kept : [...kept.slice(0, MAX_EVIDENCE - 1), `… ${kept.length - MAX_EVIDENCE + 1} more line(s)`];
}

export function judged(spec: CheckSpec, pass: boolean, evidence: readonly string[], durationMs: number, extra: Partial<Pick<CheckResult, 'clause' | 'links'>> = {}): CheckResult {
  return {
    id: spec.id, section: spec.section, title: spec.title, points: spec.points,
    earned: pass ? spec.points : 0, status: pass ? 'pass' : 'fail', evidence: capped(evidence), durationMs, ...extra,
  };
}

export function skipped(spec: CheckSpec, reason: string): CheckResult {
  return { id: spec.id, section: spec.section, title: spec.title, points: spec.points, earned: 0, status: 'skip', evidence: [reason], durationMs: 0 };
}

/** A step that did not finish: why, in one line. */
export function stepProblem(r: StepResult | undefined): string | undefined {
  if (!r) return 'the step did not run';
  if (r.code === -1) return 'the step did not finish (the guest stopped answering)';
  if (r.code === 124 || r.code === 137) return `the step was killed after its time limit (exit ${r.code}): a request that never completed?`;
  return undefined;
}
