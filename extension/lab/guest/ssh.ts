/**
 * SSH client for the lab guest, over the pure-JS `ssh2` library.
 *
 * - The server's host key is pinned: the handshake is refused unless the key the server proves it owns
 *   is byte-for-byte the pinned one (no known_hosts, no trust on first use).
 * - While a guest boots, QEMU's port forward already accepts TCP connections and drops them until sshd
 *   listens, so connect() can retry 'connect'/'timeout' failures until a deadline. Auth and host-key
 *   failures are never retried: they will not fix themselves.
 * - Commands are given as argv and quoted for the remote POSIX shell (sshd always runs the command
 *   through the user's shell), or as an explicit `{ shell }` string.
 */
import { timingSafeEqual } from 'node:crypto';
import { Client, type ConnectConfig } from 'ssh2';
import { type SessionTransport, sshTransport } from './ssh-transport';
import { SshError, SshSession, abortError } from './ssh-session';

export { SshError, SshSession, quoteForShell } from './ssh-session';
export type { SshCommand, SshErrorKind, SshExecIo, SshExecResult, SshPty, SshRunOptions, SshRunResult } from './ssh-session';

export type { ChannelCallback, GuestChannel, SessionTransport } from './ssh-transport';

export interface SshTarget {
  host: string;
  port: number;
  username: string;
  privateKey: Buffer;
  /** pinned host public key, OpenSSH one-line format ("ssh-ed25519 AAAA..."); connection refused if it differs */
  hostKey: string;
}

export interface SshConnectOptions {
  /** Handshake timeout of one attempt (TCP connect through authentication). Default 10000 ms. */
  timeoutMs?: number;
  /**
   * Keep retrying 'connect' and 'timeout' failures for this many ms after the call (e.g. while the guest
   * boots). Default 0: one attempt.
   */
  retryUntilMs?: number;
  signal?: AbortSignal;
  /** Called after each failed attempt that will be retried (n counts from 1). */
  onAttempt?: (n: number, err: Error) => void;
}

const DEFAULT_HANDSHAKE_TIMEOUT_MS = 10_000;
const RETRY_DELAY_MIN_MS = 200;
const RETRY_DELAY_MAX_MS = 1_000;
/** "ssh-ed25519 AAAA... comment" -> the algorithm name and the raw key blob. */
export function parseOpenSshPublicKey(line: string): { type: string; blob: Buffer } {
  const parts = line.trim().split(/\s+/);
  if (parts.length < 2 || !/^[A-Za-z0-9+/]+={0,2}$/.test(parts[1]!)) {
    throw new TypeError(`not an OpenSSH public key line: ${line.slice(0, 60)}`);
  }
  const blob = Buffer.from(parts[1]!, 'base64');
  // The blob starts with its own algorithm name (RFC 4253 §6.6): it must agree with the text prefix.
  const nameLen = blob.length >= 4 ? blob.readUInt32BE(0) : -1;
  if (nameLen < 0 || 4 + nameLen > blob.length || blob.subarray(4, 4 + nameLen).toString('latin1') !== parts[0]) {
    throw new TypeError(`public key blob does not match its type ${parts[0]}`);
  }
  return { type: parts[0]!, blob };
}

/** Host-key algorithms to offer so the server presents the pinned key's type. */
function hostKeyAlgorithms(type: string): string[] {
  return type === 'ssh-rsa' ? ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'] : [type];
}

type Ssh2Error = Error & { level?: string };

function classify(err: Ssh2Error, hostKeyRejected: boolean): SshError {
  if (err instanceof SshError) return err;
  if (hostKeyRejected) return new SshError('hostkey', 'SSH host key does not match the pinned key', { cause: err });
  switch (err.level) {
    case 'client-authentication': return new SshError('auth', `SSH authentication failed: ${err.message}`, { cause: err });
    case 'client-timeout': return new SshError('timeout', `SSH handshake timed out: ${err.message}`, { cause: err });
    default: return new SshError('connect', `SSH connection failed: ${err.message}`, { cause: err });
  }
}

function attempt(target: SshTarget, pinned: { type: string; blob: Buffer }, timeoutMs: number, signal?: AbortSignal): Promise<Client> {
  return new Promise((resolve, reject) => {
    const client = new Client();
    let hostKeyRejected = false;
    let settled = false;
    const finish = (err: SshError | null): void => {
      if (settled) return;
      settled = true;
      signal?.removeEventListener('abort', onAbort);
      if (err) {
        client.removeAllListeners('ready');
        client.on('error', () => undefined); // late errors from a torn-down attempt
        client.destroy();
        reject(err);
      } else {
        resolve(client);
      }
    };
    const onAbort = (): void => finish(abortError('SSH connect', signal));
    signal?.addEventListener('abort', onAbort, { once: true });
    client.once('ready', () => finish(null));
    client.on('error', (err: Ssh2Error) => finish(classify(err, hostKeyRejected)));
    // A server that closes before 'ready' without an error (slirp's forward with nothing behind it).
    client.once('close', () => finish(new SshError('connect', 'SSH connection closed before the handshake completed')));
    const config: ConnectConfig = {
      host: target.host,
      port: target.port,
      username: target.username,
      privateKey: target.privateKey,
      readyTimeout: timeoutMs,
      algorithms: { serverHostKey: hostKeyAlgorithms(pinned.type) as NonNullable<ConnectConfig['algorithms']>['serverHostKey'] },
      hostVerifier: (key: Buffer): boolean => {
        const ok = key.length === pinned.blob.length && timingSafeEqual(key, pinned.blob);
        if (!ok) hostKeyRejected = true;
        return ok;
      },
    };
    try {
      client.connect(config);
    } catch (err) {
      // ssh2 throws synchronously for unusable config, e.g. a malformed private key.
      finish(new SshError('auth', `SSH client key unusable: ${(err as Error).message}`, { cause: err }));
    }
  });
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(abortError('SSH connect', signal));
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(abortError('SSH connect', signal));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * Opens an authenticated session. Rejects with SshError kind 'hostkey' (server key differs from the pin),
 * 'auth' (key refused or unusable), 'connect' / 'timeout' (after retries run out), 'closed' (aborted).
 */
export async function sshConnect(target: SshTarget, opts: SshConnectOptions = {}): Promise<SshSession> {
  return new SshSession(await sshConnectTransport(target, opts));
}

/** sshConnect's connection as a bare transport (the SSH mux serves its channels to other processes). */
export async function sshConnectTransport(target: SshTarget, opts: SshConnectOptions = {}): Promise<SessionTransport> {
  const pinned = parseOpenSshPublicKey(target.hostKey);
  const timeoutMs = opts.timeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS;
  const deadline = Date.now() + (opts.retryUntilMs ?? 0);
  let delay = RETRY_DELAY_MIN_MS;
  for (let n = 1; ; n++) {
    if (opts.signal?.aborted) throw abortError('SSH connect', opts.signal);
    const remaining = deadline - Date.now();
    // The last attempt still gets a useful handshake window, but never much beyond the deadline.
    const attemptTimeout = n === 1 ? timeoutMs : Math.max(1_000, Math.min(timeoutMs, remaining));
    try {
      return sshTransport(await attempt(target, pinned, attemptTimeout, opts.signal));
    } catch (err) {
      const e = err as SshError;
      const retryable = e.kind === 'connect' || e.kind === 'timeout';
      if (!retryable || Date.now() + delay >= deadline) throw e;
      opts.onAttempt?.(n, e);
      await sleep(delay, opts.signal);
      delay = Math.min(delay * 2, RETRY_DELAY_MAX_MS);
    }
  }
}

