/**
 * Starts the lab's TypeScript vhost-user backend as a detached process (`vlab backend`) with its capped
 * log, and waits until it listens on the vhost-user socket, or says why it did not.
 */
import { existsSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { LabError, throwIfAborted } from './common/errors';
import { tailFile } from './common/files';
import type { LabPaths } from './common/paths';
import { type DetachedProcess, spawnDetached, terminate } from './host/proc';
import type { UpOptions } from './state';

const BACKEND_SOCKET_WAIT_MS = 10_000;
/** backend.log and backend.log.1 each stay under this (the backend rotates). */
const BACKEND_LOG_MAX_BYTES = 8 << 20;

export async function startBackendProcess(
  paths: LabPaths,
  vlabScript: string,
  options: Pick<UpOptions, 'engine' | 'faults'>,
  progress: (message: string) => void,
  signal: AbortSignal | undefined,
): Promise<DetachedProcess> {
  // The backend owns its log (capped: a guest cannot fill the disk, docs/backend.md); stdout and
  // stderr still land in the same file (appending) for anything written before or after it.
  const args = [vlabScript, 'backend', '--socket', paths.vhostUserSocket, '--telemetry', paths.telemetrySocket, '--engine', options.engine,
    '--log-file', paths.backendLog, '--log-max-bytes', String(BACKEND_LOG_MAX_BYTES)];
  for (const rule of options.faults ?? []) args.push('--fault', rule);
  progress(`starting the TypeScript vhost-user backend (engine ${options.engine})`);
  // Inside desktop VS Code process.execPath is Electron: ELECTRON_RUN_AS_NODE makes it behave as node
  // (plain node ignores the variable).
  const env = { ...process.env, ELECTRON_RUN_AS_NODE: '1' };
  const started = spawnDetached(process.execPath, args, paths.backendLog, paths.vhostUserSocket, env);
  const deadline = Date.now() + BACKEND_SOCKET_WAIT_MS;
  let exited: string | undefined;
  void started.exited.then((how) => {
    exited = how;
  });
  while (!existsSync(paths.vhostUserSocket)) {
    if (exited !== undefined) {
      throw new LabError('backend', `backend exited before listening (${exited}): ${tailFile(paths.backendLog, 3)}`);
    }
    if (Date.now() > deadline) {
      await terminate(started.record, 2000);
      throw new LabError('backend', `backend did not create ${paths.vhostUserSocket} within ${BACKEND_SOCKET_WAIT_MS / 1000} s`);
    }
    throwIfAborted(signal);
    await sleep(50);
  }
  return started;
}
