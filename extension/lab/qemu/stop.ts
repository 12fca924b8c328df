/**
 * Stopping a lab QEMU with escalating force, each step bounded: ACPI power button (the guest shuts down
 * cleanly), QMP quit, SIGTERM when the monitor does not answer, SIGKILL. Only the recorded process is
 * ever signalled, and only while it is still ours (see proc.ts).
 */
import { LabError } from '../common/errors';
import { type ProcessRecord, isOurProcess, signalProcess, waitForExit } from '../host/proc';
import { QmpClient } from './qmp';

export type StopMethod = 'powerdown' | 'quit' | 'terminate' | 'kill' | 'not-running';

export interface StopOptions {
  /** false: skip the ACPI power button (a failed boot has no guest worth waiting for). */
  readonly graceful: boolean;
  readonly powerdownMs: number;
  readonly quitMs: number;
  readonly progress: (step: string, message: string) => void;
}

const QMP_TIMEOUT_MS = 3_000;
const KILL_WAIT_MS = 5_000;

export async function stopQemu(rec: ProcessRecord, qmpSocket: string, opts: StopOptions): Promise<StopMethod> {
  let qmp: QmpClient | undefined;
  try {
    qmp = await QmpClient.connect(qmpSocket, { timeoutMs: QMP_TIMEOUT_MS });
  } catch {
    qmp = undefined; // monitor held by another client, gone, or QEMU wedged: signals below
  }
  try {
    if (qmp && opts.graceful) {
      opts.progress('powerdown', 'ACPI power button (system_powerdown)');
      const sent = await qmp.execute('system_powerdown', undefined, { timeoutMs: QMP_TIMEOUT_MS }).then(
        () => true,
        () => false,
      );
      if (sent && (await waitForExit(rec, opts.powerdownMs))) return 'powerdown';
    }
    if (qmp?.isOpen) {
      opts.progress('quit', 'QMP quit');
      await qmp.execute('quit', undefined, { timeoutMs: QMP_TIMEOUT_MS }).catch(() => undefined);
      if (await waitForExit(rec, opts.quitMs)) return 'quit';
    }
  } finally {
    qmp?.close();
  }
  if (!qmp) {
    // A healthy QEMU handles SIGTERM like `quit`; only if that fails, SIGKILL.
    opts.progress('terminate', `QMP did not answer: SIGTERM QEMU (pid ${rec.pid})`);
    if (isOurProcess(rec)) signalProcess(rec.pid, 'SIGTERM');
    if (await waitForExit(rec, opts.quitMs)) return 'terminate';
  }
  opts.progress('kill', `SIGKILL QEMU (pid ${rec.pid})`);
  if (isOurProcess(rec)) signalProcess(rec.pid, 'SIGKILL');
  if (!(await waitForExit(rec, KILL_WAIT_MS))) throw new LabError('qemu-exited', `QEMU (pid ${rec.pid}) did not exit after SIGKILL`);
  return 'kill';
}
