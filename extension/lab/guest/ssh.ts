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
import { EventEmitter } from 'node:events';
import { randomUUID, timingSafeEqual } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { Client, type ClientChannel, type ConnectConfig } from 'ssh2';

export interface SshTarget {
  host: string;
  port: number;
  username: string;
  privateKey: Buffer;
  /** pinned host public key, OpenSSH one-line format ("ssh-ed25519 AAAA..."); connection refused if it differs */
  hostKey: string;
}

export type SshErrorKind = 'connect' | 'auth' | 'hostkey' | 'timeout' | 'exec' | 'closed';

export class SshError extends Error {
  readonly kind: SshErrorKind;
  constructor(kind: SshErrorKind, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SshError';
    this.kind = kind;
  }
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

export type SshCommand = readonly string[] | { shell: string };

export interface SshPty {
  cols: number;
  rows: number;
  term?: string;
}

export interface SshExecIo {
  /** Piped to the command's stdin; without it the command's stdin is closed at once (reads see EOF). */
  stdin?: NodeJS.ReadableStream;
  /** Not ended when the command ends (so process.stdout can be passed). Output is discarded when absent. */
  stdout?: NodeJS.WritableStream;
  stderr?: NodeJS.WritableStream;
  /** Allocate a pseudo-terminal (stdout and stderr then arrive merged on stdout). */
  pty?: SshPty;
  /** Abort: the remote command is sent SIGKILL (without a pty, a command's children are not), the channel closed, the call rejects with kind 'closed'. */
  signal?: AbortSignal;
  /** Same as abort, rejecting with kind 'timeout'. */
  timeoutMs?: number;
}

export interface SshExecResult {
  /** Exit status, or null when the command was killed by a signal (then `signal` names it, e.g. "SIGKILL"). */
  code: number | null;
  signal?: string;
}

export interface SshRunResult extends SshExecResult {
  stdout: string;
  stderr: string;
}

export interface SshRunOptions {
  stdin?: string | Buffer;
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Cap on each of stdout and stderr; exceeding it aborts the command with kind 'exec'. Default 32 MiB. */
  maxOutputBytes?: number;
}

const DEFAULT_HANDSHAKE_TIMEOUT_MS = 10_000;
const DEFAULT_MAX_OUTPUT_BYTES = 32 * 1024 * 1024;
const RETRY_DELAY_MIN_MS = 200;
const RETRY_DELAY_MAX_MS = 1_000;
/** Environment variable marking the remote process tree of a stoppable exec() (see exec()). */
const EXEC_TAG_VAR = 'VLAB_EXEC_TAG';

/** Words the shell treats as syntax in command position; quoted so argv[0] can be e.g. "if". */
const RESERVED_WORDS = new Set(['!', '{', '}', 'case', 'do', 'done', 'elif', 'else', 'esac', 'fi', 'for', 'if', 'in', 'then', 'until', 'while', 'function', 'select', '[[', ']]', 'time']);
/** Characters no POSIX shell treats specially anywhere in a word ('=' and '~' excluded: assignments, tilde expansion). */
const PLAIN_WORD = /^[A-Za-z0-9_./,:@%+-]+$/;

/**
 * Quotes argv for a POSIX shell (sh, dash, bash) so that the shell passes each element to the command
 * verbatim: plain words stay as they are, anything else is single-quoted with embedded single quotes
 * written as '\''. Throws TypeError for a NUL byte (no shell can pass one in an argument).
 */
export function quoteForShell(argv: readonly string[]): string {
  return argv.map((arg) => {
    if (arg.includes('\0')) throw new TypeError('a shell argument cannot contain a NUL byte');
    if (PLAIN_WORD.test(arg) && !RESERVED_WORDS.has(arg)) return arg;
    return `'${arg.replace(/'/g, `'\\''`)}'`;
  }).join(' ');
}

function commandString(cmd: SshCommand): string {
  if ('shell' in cmd && !Array.isArray(cmd)) return cmd.shell;
  const argv = cmd as readonly string[];
  if (argv.length === 0) throw new TypeError('empty command');
  return quoteForShell(argv);
}

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

function abortError(what: string, signal: AbortSignal | undefined): SshError {
  return new SshError('closed', `${what} aborted`, { cause: signal?.reason });
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

/** The parts of ssh2's channel internals sendSignal() needs (ssh2 1.17; the dependency is pinned exactly). */
interface Ssh2ChannelInternals {
  outgoing?: { id?: number; state?: string };
  _client?: { _protocol?: { signal(channelId: number, signalName: string): void } };
}

/**
 * Sends a "signal" channel request (RFC 4254 §6.9). ssh2's Channel.signal() silently drops it once our
 * side has sent EOF — which exec() does at once when there is no stdin — although the RFC allows it
 * after EOF and OpenSSH acts on it; so the request goes through the protocol object directly.
 */
function sendSignal(channel: ClientChannel, name: string): void {
  const ch = channel as unknown as Ssh2ChannelInternals;
  const id = ch.outgoing?.id;
  const state = ch.outgoing?.state;
  if ((state !== 'open' && state !== 'eof') || id === undefined || !ch._client?._protocol) return;
  try {
    ch._client._protocol.signal(id, name);
  } catch {
    // the connection is going away; close() below finishes the job
  }
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
      return new SshSession(await attempt(target, pinned, attemptTimeout, opts.signal));
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

/** An authenticated SSH connection. Emits 'close' once when the connection ends. */
export class SshSession extends EventEmitter {
  private readonly client: Client;
  private closed = false;

  /** @internal use sshConnect() */
  constructor(client: Client) {
    super();
    this.setMaxListeners(0); // every running exec() listens for 'close'
    this.client = client;
    client.on('error', () => undefined); // surfaced through 'close' and failing calls
    client.once('close', () => {
      this.closed = true;
      this.emit('close');
    });
  }

  get isOpen(): boolean {
    return !this.closed;
  }

  /**
   * Runs a command, streaming its stdio. Resolves with its exit status when the channel closes.
   * Rejects with SshError kind 'exec' (the server refused the channel or exec), 'timeout', 'closed'
   * (aborted, or the connection dropped before an exit status arrived).
   */
  exec(cmd: SshCommand, io: SshExecIo = {}): Promise<SshExecResult> {
    const display = commandString(cmd);
    if (this.closed) return Promise.reject(new SshError('closed', 'SSH session is closed'));
    if (io.signal?.aborted) return Promise.reject(abortError('SSH exec', io.signal));
    // OpenSSH refuses "signal" requests unless privilege separation applies to the session (it does
    // not for root: "session signalling requires privilege separation"), and without a pty closing the
    // channel does not end the command. So a command that may need stopping is tagged through its
    // environment, which its whole process tree inherits, and stop() kills that tree by the tag.
    const tag = io.timeoutMs !== undefined || io.signal ? `${process.pid}-${randomUUID()}` : undefined;
    const command = tag ? `export ${EXEC_TAG_VAR}=${tag}; ${display}` : display;
    return new Promise((resolve, reject) => {
      let channel: ClientChannel | undefined;
      let exit: SshExecResult | undefined;
      let failure: SshError | undefined;
      let timer: NodeJS.Timeout | undefined;
      let settled = false;
      const onSessionClose = (): void => {
        if (!exit) failure ??= new SshError('closed', 'SSH connection closed while the command ran');
        // ssh2 closes open channels when the connection ends; settle anyway if it did not.
        setImmediate(settle);
      };
      const settle = (): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        io.signal?.removeEventListener('abort', onAbort);
        this.off('close', onSessionClose);
        if (io.stdin && channel) io.stdin.unpipe(channel);
        if (exit && !failure) resolve(exit);
        else reject(failure ?? new SshError('closed', 'SSH channel closed without an exit status'));
      };
      const kill = (ch: ClientChannel): void => {
        sendSignal(ch, 'KILL');
        if (tag) this.killTagged(tag);
        ch.close();
      };
      const stop = (err: SshError): void => {
        if (failure) return;
        failure = err;
        if (channel) kill(channel); // else: killed as soon as the channel opens
      };
      const onAbort = (): void => stop(abortError('SSH exec', io.signal));
      io.signal?.addEventListener('abort', onAbort, { once: true });
      this.once('close', onSessionClose);
      if (io.timeoutMs !== undefined) {
        timer = setTimeout(() => stop(new SshError('timeout', `command timed out after ${io.timeoutMs} ms: ${display.slice(0, 200)}`)), io.timeoutMs);
      }
      const options = io.pty ? { pty: { cols: io.pty.cols, rows: io.pty.rows, term: io.pty.term ?? 'xterm-256color' } } : {};
      this.client.exec(command, options, (err, ch) => {
        if (err) {
          failure ??= new SshError('exec', `SSH exec refused: ${err.message}`, { cause: err });
          return settle();
        }
        channel = ch;
        if (failure) kill(ch); // stopped while the channel was opening
        ch.on('exit', (code: number | null, signalName?: string) => {
          exit = code === null || code === undefined ? { code: null, signal: signalName ?? 'unknown' } : { code };
        });
        ch.once('close', settle);
        if (io.stdout) ch.pipe(io.stdout, { end: false });
        else ch.resume();
        if (io.stderr) ch.stderr.pipe(io.stderr, { end: false });
        else ch.stderr.resume();
        if (io.stdin) io.stdin.pipe(ch);
        else ch.end();
      });
    });
  }

  /**
   * Runs a command and collects its output (decoded as UTF-8). Same errors as exec(), plus kind 'exec'
   * when an output stream exceeds maxOutputBytes.
   */
  async run(cmd: SshCommand, opts: SshRunOptions = {}): Promise<SshRunResult> {
    const cap = opts.maxOutputBytes ?? DEFAULT_MAX_OUTPUT_BYTES;
    const overflow = new AbortController();
    const signal = opts.signal ? AbortSignal.any([opts.signal, overflow.signal]) : overflow.signal;
    const collect = (name: string): { sink: NodeJS.WritableStream; text(): string } => {
      const chunks: Buffer[] = [];
      let size = 0;
      const sink = new Writable({
        write(chunk: Buffer, _enc, cb) {
          size += chunk.length;
          if (size > cap) overflow.abort(new SshError('exec', `command ${name} exceeded ${cap} bytes`));
          else chunks.push(chunk);
          cb();
        },
      });
      return { sink, text: () => Buffer.concat(chunks).toString('utf8') };
    };
    const out = collect('stdout');
    const err = collect('stderr');
    let stdin: NodeJS.ReadableStream | undefined;
    if (opts.stdin !== undefined) {
      stdin = Readable.from([Buffer.from(opts.stdin)]);
    }
    try {
      const res = await this.exec(cmd, { stdout: out.sink, stderr: err.sink, stdin, signal, timeoutMs: opts.timeoutMs });
      return { ...res, stdout: out.text(), stderr: err.text() };
    } catch (e) {
      if (overflow.signal.aborted) throw overflow.signal.reason as SshError;
      throw e;
    }
  }

  /** SIGKILLs every remote process whose environment carries the tag (best effort, fire and forget). */
  private killTagged(tag: string): void {
    // One grep over every environ file (a grep per process would fork hundreds of times).
    const script = `grep -lsxz ${EXEC_TAG_VAR}=${tag} /proc/[0-9]*/environ | ` +
      `while read -r e; do p=\${e#/proc/}; kill -KILL "\${p%/environ}" 2>/dev/null; done`;
    if (this.closed) return;
    this.client.exec(script, (err, ch) => {
      if (err) return;
      ch.on('error', () => undefined);
      ch.resume();
      ch.stderr.resume();
      ch.end();
    });
  }

  /** Opens an interactive shell on a pty. The caller owns the channel (resize with setWindow). Rejects with kind 'exec' or 'closed'. */
  shell(pty: SshPty): Promise<ClientChannel> {
    if (this.closed) return Promise.reject(new SshError('closed', 'SSH session is closed'));
    return new Promise((resolve, reject) => {
      this.client.shell({ cols: pty.cols, rows: pty.rows, term: pty.term ?? 'xterm-256color' }, (err, ch) => {
        if (err) reject(new SshError('exec', `SSH shell refused: ${err.message}`, { cause: err }));
        else resolve(ch);
      });
    });
  }

  /** Ends the connection; running commands reject with kind 'closed'. Idempotent. */
  close(): void {
    this.client.end();
  }
}
