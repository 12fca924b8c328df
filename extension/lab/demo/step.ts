/**
 * The shape of one `vlab demo` step and the context the steps share (run.ts runs them, each step file
 * defines some). A step needing the guest takes the boot step's SSH session through `requireSession`.
 */
import type { AccelChoice } from '../host/accel';
import type { Lab, UpOptions } from '../lab';
import type { SshSession } from '../guest/ssh';

export interface DemoContext {
  readonly lab: Lab;
  readonly options: Partial<UpOptions>;
  readonly signal?: AbortSignal;
  log(line: string): void;
  /** Set by the boot step: an SSH session into the guest, closed by the runner before shutdown. */
  session?: SshSession;
  /** True when the demo booted the VM (then it also shuts it down). */
  bootedByDemo?: boolean;
  accel?: AccelChoice;
}

export interface DemoStep {
  readonly id: string;
  /** Label in the summary. */
  readonly title: string;
  /** Runs even after an earlier step failed (cleanup). */
  readonly always?: boolean;
  /** Returns the step's one-line summary; throws on failure. */
  run(ctx: DemoContext): Promise<string>;
}

export function requireSession(ctx: DemoContext): SshSession {
  if (!ctx.session) throw new Error('no SSH session (the boot step did not run)');
  return ctx.session;
}
