/**
 * QMP (QEMU Machine Protocol) client over a unix socket.
 *
 * Wire format (qemu docs/interop/qmp-spec): one JSON object per line. The server speaks first with a
 * greeting `{"QMP": {...}}`; the client must send `qmp_capabilities` before any other command
 * (capabilities negotiation mode). Afterwards each command may carry an `id` that the server echoes in
 * its `{"return": ...}` or `{"error": {class, desc}}` reply; asynchronous `{"event": ...}` messages can
 * arrive at any time between replies.
 *
 * Design (after qemu's python/qemu/qmp/qmp_client.py): connect, greeting and negotiation are separate
 * phases with their own error kinds; every command gets a generated id and its reply is routed back
 * by id; replies with unknown ids (late replies to timed-out calls) are dropped; when the connection
 * drops every pending call is rejected; a line longer than `maxLineBytes` is a fatal protocol error.
 */
import { EventEmitter } from 'node:events';
import * as net from 'node:net';

export interface QmpEvent {
  event: string;
  data?: Record<string, unknown>;
  timestamp: { seconds: number; microseconds: number };
}

export type QmpErrorKind = 'connect' | 'greeting' | 'negotiation' | 'command' | 'timeout' | 'closed' | 'protocol';

/** The phase an error happened in: lets a caller tell a greeting timeout from a command timeout. */
export type QmpPhase = 'connect' | 'greeting' | 'negotiation' | 'command';

export class QmpError extends Error {
  readonly kind: QmpErrorKind;
  /** QMP error class from the server (`GenericError`, `CommandNotFound`, `DeviceNotFound`, ...), kind 'command' and 'negotiation' only. */
  readonly qmpClass?: string;
  /** QMP error description from the server, verbatim. */
  readonly qmpDesc?: string;
  /** The command that failed or timed out, when there was one. */
  readonly command?: string;
  readonly phase?: QmpPhase;

  constructor(
    kind: QmpErrorKind,
    message: string,
    extra: { qmpClass?: string; qmpDesc?: string; command?: string; phase?: QmpPhase; cause?: unknown } = {},
  ) {
    super(message, extra.cause === undefined ? undefined : { cause: extra.cause });
    this.name = 'QmpError';
    this.kind = kind;
    if (extra.qmpClass !== undefined) this.qmpClass = extra.qmpClass;
    if (extra.qmpDesc !== undefined) this.qmpDesc = extra.qmpDesc;
    if (extra.command !== undefined) this.command = extra.command;
    if (extra.phase !== undefined) this.phase = extra.phase;
  }
}

/** What the server announced in its greeting. */
export interface QmpGreeting {
  version: { qemu: { major: number; minor: number; micro: number }; package: string };
  capabilities: string[];
}

export interface QmpConnectOptions {
  /** Bound on connect + greeting + negotiation together. Default 5000 ms. */
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Longest accepted line from the server; longer is a fatal 'protocol' error. Default 16 MiB. */
  maxLineBytes?: number;
  /** Default per-command timeout for execute(). Default 30000 ms. */
  commandTimeoutMs?: number;
  /**
   * Also retry (within timeoutMs) while the socket is missing or refuses connections — for a QEMU that
   * was just started: its socket file appears at bind(), before listen(). Default false.
   */
  waitForServer?: boolean;
}

export interface QmpExecuteOptions {
  /** Per-call timeout; on expiry the call rejects with kind 'timeout' and a late reply is dropped. */
  timeoutMs?: number;
  signal?: AbortSignal;
}

interface PendingCall {
  readonly command: string;
  readonly phase: QmpPhase;
  resolve(value: unknown): void;
  reject(err: QmpError): void;
}

const DEFAULT_CONNECT_TIMEOUT_MS = 5_000;
const DEFAULT_COMMAND_TIMEOUT_MS = 30_000;
const DEFAULT_MAX_LINE_BYTES = 16 * 1024 * 1024;

const CONNECT_RETRY_MS = 50;

/**
 * EAGAIN: QEMU's QMP chardev serves one client at a time with a listen backlog of one, so while another
 * client is connected a second connect() can find the backlog full; that clears when QEMU accepts.
 */
function retryableConnectError(err: NodeJS.ErrnoException, waitForServer: boolean): boolean {
  if (err.code === 'EAGAIN') return true;
  return waitForServer && (err.code === 'ENOENT' || err.code === 'ECONNREFUSED');
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * A connected, negotiated QMP session. Events: 'event' (QmpEvent), 'close' (reason: QmpError) — emitted
 * once, when the connection ends for any reason (close(), server hang-up, protocol error).
 */
export class QmpClient extends EventEmitter {
  /** Set once connect() has read it. */
  greeting: QmpGreeting | undefined;

  private readonly socket: net.Socket;
  private readonly maxLineBytes: number;
  private readonly commandTimeoutMs: number;
  private readonly pending = new Map<string, PendingCall>();
  private chunks: Buffer[] = [];
  private bufferedBytes = 0;
  private nextId = 1;
  private closedWith: QmpError | undefined;
  private greetingWaiter: { resolve(g: QmpGreeting): void; reject(e: QmpError): void } | undefined;

  private constructor(socket: net.Socket, opts: QmpConnectOptions) {
    super();
    this.setMaxListeners(0); // every nextEvent() waiter listens for 'event' and 'close'
    this.socket = socket;
    this.maxLineBytes = opts.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES;
    this.commandTimeoutMs = opts.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS;
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err) => this.teardown(new QmpError('closed', `QMP connection error: ${err.message}`, { cause: err })));
    socket.on('close', () => this.teardown(new QmpError('closed', 'QMP connection closed by QEMU')));
  }

  /**
   * Connects to QEMU's QMP socket, reads the greeting and leaves capabilities negotiation mode.
   * Rejects with QmpError kind: 'connect' (socket missing/refused), 'greeting' (no or malformed greeting),
   * 'negotiation' (qmp_capabilities refused), 'timeout' (any phase exceeded timeoutMs; see `phase`),
   * 'protocol' (oversized line or bad JSON), 'closed' (aborted through `signal`, or QEMU hung up).
   */
  static async connect(socketPath: string, opts: QmpConnectOptions = {}): Promise<QmpClient> {
    const timeoutMs = opts.timeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    if (opts.signal?.aborted) throw new QmpError('closed', 'QMP connect aborted', { phase: 'connect', cause: opts.signal.reason });

    let socket: net.Socket | undefined;
    let phase: QmpPhase = 'connect';
    let client: QmpClient | undefined;
    let onAbort: (() => void) | undefined;
    let timer: NodeJS.Timeout | undefined;
    let gaveUp = false;
    const fail = (err: QmpError): void => {
      gaveUp = true;
      if (client) client.teardown(err);
      else socket?.destroy();
    };
    const bounded = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const err = new QmpError('timeout', `QMP ${phase} timed out after ${timeoutMs} ms (${socketPath})`, { phase });
        reject(err); // first, so the race reports the timeout rather than the teardown it causes
        fail(err);
      }, timeoutMs);
      onAbort = () => {
        const err = new QmpError('closed', `QMP connect aborted during ${phase}`, { phase, cause: opts.signal?.reason });
        reject(err);
        fail(err);
      };
      opts.signal?.addEventListener('abort', onAbort, { once: true });
    });

    const steps = (async (): Promise<QmpClient> => {
      for (;;) {
        const candidate = net.createConnection({ path: socketPath });
        socket = candidate;
        const error = await new Promise<NodeJS.ErrnoException | null>((resolve) => {
          candidate.once('error', resolve);
          candidate.once('connect', () => {
            candidate.removeAllListeners('error');
            resolve(null);
          });
        });
        if (!error) break;
        candidate.destroy();
        if (gaveUp) throw new QmpError('closed', 'QMP connect abandoned', { phase: 'connect' });
        if (!retryableConnectError(error, opts.waitForServer === true)) {
          throw new QmpError('connect', `cannot connect to QMP socket ${socketPath}: ${error.message}`, { phase: 'connect', cause: error });
        }
        await new Promise((r) => setTimeout(r, CONNECT_RETRY_MS));
        if (gaveUp) throw new QmpError('closed', 'QMP connect abandoned', { phase: 'connect' });
      }
      phase = 'greeting';
      client = new QmpClient(socket!, opts);
      client.greeting = await client.readGreeting();
      phase = 'negotiation';
      try {
        await client.send('qmp_capabilities', undefined, 'negotiation', undefined);
      } catch (err) {
        if (err instanceof QmpError && err.kind === 'command') {
          throw new QmpError('negotiation', `QMP capabilities negotiation refused: ${err.qmpDesc ?? err.message}`, {
            phase: 'negotiation', qmpClass: err.qmpClass, qmpDesc: err.qmpDesc,
          });
        }
        throw err;
      }
      return client;
    })();

    try {
      return await Promise.race([steps, bounded]);
    } catch (err) {
      steps.catch(() => undefined); // the losing branch must not surface as an unhandled rejection
      const qe = err instanceof QmpError ? err : new QmpError('protocol', String(err), { phase, cause: err });
      fail(qe);
      throw qe;
    } finally {
      clearTimeout(timer);
      if (onAbort) opts.signal?.removeEventListener('abort', onAbort);
    }
  }

  /** True until the connection has ended. */
  get isOpen(): boolean {
    return this.closedWith === undefined;
  }

  /**
   * Runs a QMP command and resolves with its `return` value.
   * Rejects with QmpError kind 'command' (server error; `qmpClass`/`qmpDesc` set), 'timeout' (no reply in
   * time), 'closed' (connection ended before the reply, or the call was aborted through `signal`).
   */
  execute(command: string, args?: Record<string, unknown>, opts: QmpExecuteOptions = {}): Promise<unknown> {
    return this.send(command, args, 'command', opts);
  }

  /**
   * Resolves with the next event named `name` (and matching `filter`, if given).
   * Rejects with 'timeout' after timeoutMs (default: no limit) or 'closed' if the connection ends first.
   */
  nextEvent(name: string, opts: { timeoutMs?: number; filter?: (e: QmpEvent) => boolean; signal?: AbortSignal } = {}): Promise<QmpEvent> {
    if (this.closedWith) return Promise.reject(this.closedWith);
    return new Promise((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const cleanup = (): void => {
        clearTimeout(timer);
        this.off('event', onEvent);
        this.off('close', onClose);
        opts.signal?.removeEventListener('abort', onAbort);
      };
      const onEvent = (e: QmpEvent): void => {
        if (e.event !== name || (opts.filter && !opts.filter(e))) return;
        cleanup();
        resolve(e);
      };
      const onClose = (reason: QmpError): void => {
        cleanup();
        reject(reason);
      };
      const onAbort = (): void => {
        cleanup();
        reject(new QmpError('closed', `waiting for QMP event ${name} aborted`, { cause: opts.signal?.reason }));
      };
      if (opts.timeoutMs !== undefined) {
        timer = setTimeout(() => {
          cleanup();
          reject(new QmpError('timeout', `no QMP event ${name} within ${opts.timeoutMs} ms`));
        }, opts.timeoutMs);
      }
      this.on('event', onEvent);
      this.on('close', onClose);
      if (opts.signal?.aborted) onAbort();
      else opts.signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Ends the connection. Pending calls reject with kind 'closed'. Idempotent. */
  close(): void {
    this.teardown(new QmpError('closed', 'QMP connection closed by the client'));
  }

  private readGreeting(): Promise<QmpGreeting> {
    return new Promise((resolve, reject) => {
      this.greetingWaiter = { resolve, reject };
    });
  }

  private send(command: string, args: Record<string, unknown> | undefined, phase: QmpPhase, opts: QmpExecuteOptions | undefined): Promise<unknown> {
    if (this.closedWith) {
      return Promise.reject(new QmpError('closed', `cannot run ${command}: ${this.closedWith.message}`, { command, phase, cause: this.closedWith }));
    }
    if (opts?.signal?.aborted) {
      return Promise.reject(new QmpError('closed', `${command} aborted`, { command, phase, cause: opts.signal.reason }));
    }
    const id = `vlab-${this.nextId++}`;
    const timeoutMs = opts?.timeoutMs ?? this.commandTimeoutMs;
    return new Promise<unknown>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const onAbort = (): void => {
        done();
        reject(new QmpError('closed', `${command} aborted`, { command, phase, cause: opts?.signal?.reason }));
      };
      const done = (): void => {
        clearTimeout(timer);
        this.pending.delete(id);
        opts?.signal?.removeEventListener('abort', onAbort);
      };
      this.pending.set(id, {
        command,
        phase,
        resolve: (v) => { done(); resolve(v); },
        reject: (e) => { done(); reject(e); },
      });
      timer = setTimeout(() => {
        done();
        reject(new QmpError('timeout', `QMP ${command} got no reply within ${timeoutMs} ms`, { command, phase }));
      }, timeoutMs);
      opts?.signal?.addEventListener('abort', onAbort, { once: true });
      const message: Record<string, unknown> = { execute: command, id };
      if (args !== undefined) message.arguments = args;
      this.socket.write(JSON.stringify(message) + '\n');
    });
  }

  private onData(chunk: Buffer): void {
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(0x0a, start);
      if (nl < 0) break;
      const piece = chunk.subarray(start, nl);
      start = nl + 1;
      if (this.bufferedBytes + piece.length > this.maxLineBytes) return this.lineTooLong();
      const line = this.chunks.length === 0 ? piece : Buffer.concat([...this.chunks, piece]);
      this.chunks = [];
      this.bufferedBytes = 0;
      this.onLine(line.toString('utf8'));
      if (this.closedWith) return;
    }
    if (start < chunk.length) {
      const rest = chunk.subarray(start);
      if (this.bufferedBytes + rest.length > this.maxLineBytes) return this.lineTooLong();
      this.chunks.push(rest);
      this.bufferedBytes += rest.length;
    }
  }

  private lineTooLong(): void {
    this.teardown(new QmpError('protocol', `QMP line longer than ${this.maxLineBytes} bytes; connection dropped`));
  }

  private onLine(line: string): void {
    if (line.trim() === '') return;
    let msg: unknown;
    try {
      msg = JSON.parse(line);
    } catch (err) {
      return this.teardown(new QmpError('protocol', `QMP sent invalid JSON: ${line.slice(0, 200)}`, { cause: err }));
    }
    if (!isRecord(msg)) return this.teardown(new QmpError('protocol', `QMP sent a non-object: ${line.slice(0, 200)}`));

    if (this.greetingWaiter) {
      const waiter = this.greetingWaiter;
      this.greetingWaiter = undefined;
      const greeting = parseGreeting(msg);
      if (!greeting) {
        const err = new QmpError('greeting', `expected a QMP greeting, got: ${line.slice(0, 200)}`, { phase: 'greeting' });
        waiter.reject(err);
        return this.teardown(err);
      }
      return waiter.resolve(greeting);
    }

    if (typeof msg.event === 'string') {
      this.emit('event', toEvent(msg));
      return;
    }
    // Replies without an id or with an id we no longer wait for (timed out, aborted) are dropped.
    const id = msg.id;
    if (typeof id !== 'string') return;
    const call = this.pending.get(id);
    if (!call) return;
    if ('return' in msg) return call.resolve(msg.return);
    if (isRecord(msg.error)) {
      const qmpClass = typeof msg.error.class === 'string' ? msg.error.class : 'UnknownError';
      const qmpDesc = typeof msg.error.desc === 'string' ? msg.error.desc : '(no description)';
      return call.reject(new QmpError('command', `QMP ${call.command} failed: ${qmpClass}: ${qmpDesc}`, {
        qmpClass, qmpDesc, command: call.command, phase: call.phase,
      }));
    }
    call.reject(new QmpError('protocol', `QMP reply to ${call.command} has neither return nor error`, { command: call.command, phase: call.phase }));
  }

  private teardown(reason: QmpError): void {
    if (this.closedWith) return;
    this.closedWith = reason;
    this.socket.destroy();
    this.chunks = [];
    this.bufferedBytes = 0;
    if (this.greetingWaiter) {
      const waiter = this.greetingWaiter;
      this.greetingWaiter = undefined;
      waiter.reject(reason.kind === 'closed'
        ? new QmpError('greeting', `QMP connection ended before the greeting: ${reason.message}`, { phase: 'greeting', cause: reason })
        : reason);
    }
    for (const call of [...this.pending.values()]) {
      call.reject(new QmpError(reason.kind === 'protocol' ? 'protocol' : 'closed', `QMP ${call.command} not answered: ${reason.message}`, {
        command: call.command, phase: call.phase, cause: reason,
      }));
    }
    this.pending.clear();
    this.emit('close', reason);
  }
}

function parseGreeting(msg: Record<string, unknown>): QmpGreeting | undefined {
  const qmp = msg.QMP;
  if (!isRecord(qmp) || !isRecord(qmp.version) || !Array.isArray(qmp.capabilities)) return undefined;
  const qemu = qmp.version.qemu;
  if (!isRecord(qemu)) return undefined;
  const num = (v: unknown): number => (typeof v === 'number' ? v : 0);
  return {
    version: {
      qemu: { major: num(qemu.major), minor: num(qemu.minor), micro: num(qemu.micro) },
      package: typeof qmp.version.package === 'string' ? qmp.version.package : '',
    },
    capabilities: qmp.capabilities.filter((c): c is string => typeof c === 'string'),
  };
}

function toEvent(msg: Record<string, unknown>): QmpEvent {
  const ts = isRecord(msg.timestamp) ? msg.timestamp : {};
  const event: QmpEvent = {
    event: msg.event as string,
    timestamp: {
      seconds: typeof ts.seconds === 'number' ? ts.seconds : 0,
      microseconds: typeof ts.microseconds === 'number' ? ts.microseconds : 0,
    },
  };
  if (isRecord(msg.data)) event.data = msg.data;
  return event;
}
