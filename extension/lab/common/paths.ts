/** Where a lab keeps its things: one state folder per workspace (default `<workspace>/.vlab`). */
import { isAbsolute, join, resolve } from 'node:path';

export type LogKind = 'console' | 'qemu' | 'backend';

export interface LabPaths {
  readonly workspace: string;
  readonly stateDir: string;
  readonly stateFile: string;
  readonly lockFile: string;
  /** QMP for short request/response use (vlab commands). QEMU serves one client per monitor at a time. */
  readonly qmpSocket: string;
  /** A second QMP monitor for one long-lived watcher (the extension), so it never blocks `vlab` commands. */
  readonly qmpWatchSocket: string;
  readonly vhostUserSocket: string;
  readonly telemetrySocket: string;
  readonly consoleLog: string;
  readonly qemuLog: string;
  readonly backendLog: string;
  readonly sshDir: string;
  readonly clientKey: string;
  readonly hostKey: string;
  readonly guestDir: string;
  readonly initramfs: string;
  readonly guestManifest: string;
}

/** Unix socket paths are limited to 107 bytes (sun_path); deep state folders are refused up front. */
export const MAX_SOCKET_PATH = 107;

export function labPaths(workspace: string, stateDirOverride?: string, env: NodeJS.ProcessEnv = process.env): LabPaths {
  const ws = resolve(workspace);
  const fromEnv = env.VLAB_STATE_DIR;
  const stateDir = stateDirOverride ? resolve(ws, stateDirOverride) : fromEnv && isAbsolute(fromEnv) ? fromEnv : fromEnv ? resolve(ws, fromEnv) : join(ws, '.vlab');
  const sshDir = join(stateDir, 'ssh');
  const guestDir = join(stateDir, 'guest');
  return {
    workspace: ws,
    stateDir,
    stateFile: join(stateDir, 'state.json'),
    lockFile: join(stateDir, 'lock'),
    qmpSocket: join(stateDir, 'qmp.sock'),
    qmpWatchSocket: join(stateDir, 'qmp-watch.sock'),
    vhostUserSocket: join(stateDir, 'vhost-user.sock'),
    telemetrySocket: join(stateDir, 'telemetry.sock'),
    consoleLog: join(stateDir, 'console.log'),
    qemuLog: join(stateDir, 'qemu.log'),
    backendLog: join(stateDir, 'backend.log'),
    sshDir,
    clientKey: join(sshDir, 'id_ed25519'),
    hostKey: join(sshDir, 'host_ed25519_key'),
    guestDir,
    initramfs: join(guestDir, 'initramfs.cpio.gz'),
    guestManifest: join(guestDir, 'manifest.json'),
  };
}

export function logPathOf(paths: LabPaths, kind: LogKind): string {
  return kind === 'console' ? paths.consoleLog : kind === 'qemu' ? paths.qemuLog : paths.backendLog;
}
