/** Typed errors of the lab core. Every failure a user can meet has a kind and, when we know it, the fix. */
export type LabErrorKind =
  | 'missing-qemu'
  | 'missing-kernel'
  | 'missing-tool'
  | 'accel'
  | 'guest-build'
  | 'guest-driver'
  | 'already-running'
  | 'busy'
  | 'qemu-start'
  | 'qemu-exited'
  | 'backend'
  | 'boot-timeout'
  | 'not-running'
  | 'qmp'
  | 'cancelled'
  | 'bad-option';

export class LabError extends Error {
  override readonly name = 'LabError';
  constructor(
    readonly kind: LabErrorKind,
    message: string,
    /** A command that fixes the problem, shown to the user as is. */
    readonly fix?: string,
    /** Extra evidence (console tail, QEMU stderr) for failures of a running VM. */
    readonly details?: { readonly consoleTail?: string; readonly qemuStderr?: string; readonly backendLog?: string },
  ) {
    super(message);
  }
}

/** Throws the standard cancellation error when the signal is aborted. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new LabError('cancelled', 'cancelled');
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
