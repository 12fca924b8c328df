/**
 * Stopping what a lab recorded: its QEMU (qemu/stop.ts: ACPI, QMP quit, SIGTERM, SIGKILL, each bounded)
 * and its backend, the runtime sockets, and the lab lock for `down` (which stops a VM another `up` is
 * still booting so that `down` always gets the lab down).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { LabError } from './common/errors';
import { removeQuietly } from './common/files';
import type { LabPaths } from './common/paths';
import { isOurProcess, terminate } from './host/proc';
import { type StopMethod, type StopOptions, stopQemu } from './qemu/stop';
import { type StateFile, acquireLock, readState } from './state';

/** How long `down` waits for an interrupted `up` to clean up and release the lock. */
const DOWN_LOCK_WAIT_MS = 20_000;

export type BackendStop = 'none' | 'not-running' | 'terminated' | 'killed' | 'stuck';

export function removeRuntimeFiles(paths: LabPaths): void {
  for (const sock of [paths.qmpSocket, paths.qmpWatchSocket, paths.vhostUserSocket, paths.telemetrySocket]) removeQuietly(sock);
}

/** Stops the recorded QEMU and backend (only if they are still ours) and removes the runtime sockets. */
export async function stopRecorded(paths: LabPaths, file: StateFile, opts: StopOptions): Promise<{ qemu: StopMethod; backend: BackendStop }> {
  let qemu: StopMethod = 'not-running';
  if (file.qemu && isOurProcess(file.qemu)) qemu = await stopQemu(file.qemu, paths.qmpSocket, opts);
  let backend: BackendStop = file.backend ? 'not-running' : 'none';
  if (file.backend) {
    const how = await terminate(file.backend, 3000);
    if (how !== 'gone') backend = how;
    opts.progress('backend', `backend: ${backend}`);
  }
  removeRuntimeFiles(paths);
  return { qemu, backend };
}

/**
 * The lab lock for `down`. While another `up` is booting (it holds the lock), its QEMU is stopped so
 * that `up` fails fast, cleans up and lets go of the lock.
 */
export async function lockForDown(
  paths: LabPaths,
  opts: Pick<StopOptions, 'quitMs' | 'progress'>,
): Promise<{ release: () => void; abortedBoot?: StopMethod }> {
  try {
    return { release: acquireLock(paths, 'vlab down') };
  } catch (err) {
    const file = readState(paths);
    if (!(err instanceof LabError && err.kind === 'busy' && file?.state === 'booting' && file.qemu && isOurProcess(file.qemu))) throw err;
    opts.progress('abort-boot', `stopping the VM that vlab up (pid ${file.upPid}) is booting`);
    const abortedBoot = await stopQemu(file.qemu, paths.qmpSocket, { graceful: false, powerdownMs: 0, quitMs: opts.quitMs, progress: opts.progress });
    const deadline = Date.now() + DOWN_LOCK_WAIT_MS;
    for (;;) {
      try {
        return { release: acquireLock(paths, 'vlab down'), abortedBoot };
      } catch (again) {
        if (!(again instanceof LabError && again.kind === 'busy') || Date.now() > deadline) throw again;
        await sleep(100);
      }
    }
  }
}
