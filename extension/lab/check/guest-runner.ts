/**
 * Runs the grader's guest commands: many steps in one SSH round trip (the TCG guest is slow to start a
 * command), each bounded by coreutils `timeout` in the guest, their outputs split again by markers.
 * Also the verdict of a guest-tool run ("ok NAME" / "not ok NAME: why" lines).
 */
import { quoteForShell, type SshSession } from '../guest/ssh';

export interface GuestStep {
  /** Name of the step in the batch (letters, digits, `-`). */
  readonly key: string;
  /** argv, or a shell snippet. */
  readonly cmd: readonly string[] | { readonly shell: string };
  /** The guest kills the step after this long (exit 124). */
  readonly timeoutSec: number;
}

export interface StepResult {
  readonly key: string;
  /** exit status; 124 = killed by the timeout; -1 = the step's end marker never came. */
  readonly code: number;
  readonly stdout: string;
  readonly durationMs: number;
}

const MARK = '@@vlab-grade';

/** The shell script of one batch (stderr of each step folded into its stdout). */
export function batchScript(steps: readonly GuestStep[]): string {
  return steps.map((s) => {
    if (!/^[A-Za-z0-9-]+$/.test(s.key)) throw new Error(`bad step key ${s.key}`);
    const inner = Array.isArray(s.cmd) ? quoteForShell(s.cmd as readonly string[]) : (s.cmd as { shell: string }).shell;
    const secs = Math.max(1, Math.ceil(s.timeoutSec));
    return `echo "${MARK} begin ${s.key} $(date +%s%N)"; timeout -s KILL ${secs} sh -c ${quoteForShell([inner])} 2>&1 </dev/null; echo "${MARK} end ${s.key} $? $(date +%s%N)"`;
  }).join('\n');
}

/** Splits a batch's output into its steps. */
export function parseBatch(steps: readonly GuestStep[], stdout: string): StepResult[] {
  const lines = stdout.split('\n');
  return steps.map((s) => {
    const begin = lines.findIndex((l) => l.startsWith(`${MARK} begin ${s.key} `));
    const end = lines.findIndex((l, i) => i > begin && l.startsWith(`${MARK} end ${s.key} `));
    if (begin < 0) return { key: s.key, code: -1, stdout: '', durationMs: 0 };
    const body = lines.slice(begin + 1, end < 0 ? undefined : end).join('\n');
    if (end < 0) return { key: s.key, code: -1, stdout: body, durationMs: 0 };
    const t0 = Number(lines[begin]!.split(' ')[3]);
    const [, , , code, t1] = lines[end]!.split(' ');
    return { key: s.key, code: Number(code), stdout: body, durationMs: Math.round((Number(t1) - t0) / 1e6) || 0 };
  });
}

/** Runs the steps one after the other in one SSH command; the outer timeout covers them all. */
export async function runBatch(session: SshSession, steps: readonly GuestStep[]): Promise<Map<string, StepResult>> {
  const total = steps.reduce((n, s) => n + s.timeoutSec, 0) * 1000 + 60_000;
  const r = await session.run({ shell: batchScript(steps) }, { timeoutMs: total });
  return new Map(parseBatch(steps, r.stdout).map((x) => [x.key, x]));
}

/** One step by itself (a round trip of its own). */
export async function runStep(session: SshSession, step: GuestStep): Promise<StepResult> {
  return (await runBatch(session, [step])).get(step.key)!;
}

export interface ToolVerdict {
  readonly ok: number;
  readonly notOk: readonly string[];
}

/** The guest tool's "ok NAME" / "not ok NAME: why" lines. */
export function toolVerdict(stdout: string): ToolVerdict {
  const lines = stdout.split('\n');
  return { ok: lines.filter((l) => l.startsWith('ok ')).length, notOk: lines.filter((l) => l.startsWith('not ok ')) };
}
