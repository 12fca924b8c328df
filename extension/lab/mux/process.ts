/**
 * The SSH mux as a process of the lab: `up` starts it detached once the guest answers (`vlab ssh-mux`,
 * recorded in state.json like the backend, identified by its socket path in its command line), `down`
 * ends it by pid; it also ends by itself when its SSH connection does (the guest powered off).
 */
import { existsSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { errorMessage } from '../common/errors';
import { removeQuietly, tailFile } from '../common/files';
import type { LabPaths } from '../common/paths';
import { type DetachedProcess, spawnDetached, terminate } from '../host/proc';
import { sshConnectTransport } from '../guest/ssh';
import type { SessionTransport } from '../guest/ssh-transport';
import { MuxServer } from './server';

/** After `up`'s own login, how long the mux (started with QEMU, logging in meanwhile) may still take. */
const MUX_SOCKET_WAIT_MS = 60_000;
/** The mux logs little (refused or dropped clients); a flood is cut here. */
const MAX_LOG_LINES = 200;

export class MuxStartError extends Error {
  override readonly name = 'MuxStartError';
}

/**
 * Starts `vlab ssh-mux` for the guest on sshPort; it keeps trying to log in for retryMs (so `up` starts it
 * with QEMU and both log in while the guest boots). Wait for it with waitForSshMux.
 */
export function spawnSshMux(paths: LabPaths, vlabScript: string, sshPort: number, retryMs: number): DetachedProcess {
  removeQuietly(paths.sshMuxSocket);
  const args = [vlabScript, 'ssh-mux', '--socket', paths.sshMuxSocket, '--port', String(sshPort), '--key', paths.clientKey, '--host-key', `${paths.hostKey}.pub`, '--retry-ms', String(retryMs), '--console', paths.consoleLog];
  const env = { ...process.env, ELECTRON_RUN_AS_NODE: '1' };
  return spawnDetached(process.execPath, args, paths.sshMuxLog, paths.sshMuxSocket, env);
}

/** Waits until the mux listens; ends it and throws MuxStartError when it exits first or takes too long. */
export async function waitForSshMux(paths: LabPaths, started: DetachedProcess, signal?: AbortSignal): Promise<DetachedProcess> {
  let exited: string | undefined;
  void started.exited.then((how) => {
    exited = how;
  });
  const deadline = Date.now() + MUX_SOCKET_WAIT_MS;
  while (!existsSync(paths.sshMuxSocket)) {
    if (exited !== undefined) throw new MuxStartError(`the SSH mux exited before listening (${exited}): ${tailFile(paths.sshMuxLog, 3)}`);
    if (Date.now() > deadline || signal?.aborted) {
      await terminate(started.record, 2000);
      throw new MuxStartError(`the SSH mux did not listen on ${paths.sshMuxSocket} within ${MUX_SOCKET_WAIT_MS / 1000} s`);
    }
    await sleep(25);
  }
  return started;
}

export interface MuxProcessArgs {
  readonly socket: string;
  readonly port: number;
  readonly key: string;
  /** The guest's host public key file (OpenSSH one-line format): pinned. */
  readonly hostKey: string;
  /** Keep retrying the login this long (the guest may still be booting). */
  readonly retryMs: number;
  /**
   * The guest console: the first login is tried once the guest init printed its ready line (an attempt
   * made while the guest network is down hangs for its whole timeout), as `up` does.
   */
  readonly console?: string;
}

const READY_MARKER = 'vlab-init: ready';

async function waitForReady(consoleLog: string, untilMs: number, signal: AbortSignal): Promise<void> {
  const deadline = Date.now() + untilMs;
  while (!signal.aborted && Date.now() < deadline) {
    if (tailFile(consoleLog, 10, 4096).includes(READY_MARKER)) return;
    await sleep(25);
  }
}

/** The body of `vlab ssh-mux`: serves until the SSH connection ends or the signal (the CLI's SIGTERM/SIGINT). Returns the exit code. */
export async function runSshMux(args: MuxProcessArgs, log: (line: string) => void, signal: AbortSignal): Promise<number> {
  let lines = 0;
  const capped = (line: string): void => {
    if (++lines <= MAX_LOG_LINES) log(line);
    else if (lines === MAX_LOG_LINES + 1) log('(further mux log lines dropped)');
  };
  const fields = readFileSync(args.hostKey, 'utf8').trim().split(/\s+/);
  const target = { host: '127.0.0.1', port: args.port, username: 'root', privateKey: readFileSync(args.key), hostKey: `${fields[0]} ${fields[1]}` };
  let transport: SessionTransport;
  const start = Date.now();
  if (args.console) await waitForReady(args.console, args.retryMs, signal);
  try {
    transport = await sshConnectTransport(target, { timeoutMs: 8_000, retryUntilMs: Math.max(1_000, args.retryMs - (Date.now() - start)), signal });
  } catch (err) {
    capped(`cannot connect to the guest: ${errorMessage(err)}`);
    return 1;
  }
  const server = new MuxServer(transport, args.socket, { log: capped });
  try {
    await server.start();
  } catch (err) {
    capped(`cannot listen on ${args.socket}: ${errorMessage(err)}`);
    transport.end();
    return 1;
  }
  capped(`serving 127.0.0.1:${args.port} on ${args.socket}`);
  const stop = (): void => server.stop();
  if (signal.aborted) stop();
  signal.addEventListener('abort', stop, { once: true });
  await server.closed;
  removeQuietly(args.socket);
  return 0;
}
