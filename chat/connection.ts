/**
 * Binds a ChatProtocol to a socket: bytes both ways, JSON messages in and out, an orderly or
 * abrupt end reported exactly once. What the server needs against hostile peers lives here too,
 * each optional: a bounded output queue (a peer that stops reading is cut off), a handshake
 * timeout, an idle timeout, and a per-connection rate limit that stops reading the socket while
 * the peer is over its budget (TCP then slows the sender; nothing is dropped).
 */
import type * as net from 'node:net';
import type { KeySource, Role } from './keys';
import { type ChatMessage, decodeMessage, decodeReady, encodeMessage, encodeReady, type ReadyInfo } from './messages';
import { ChatError, type ChatMode, ChatProtocol } from './protocol';
import type { CryptoProvider } from './provider';

export interface ConnectionOptions {
  readonly role: Role;
  readonly mode: ChatMode;
  readonly psk?: Buffer;
  readonly key?: KeySource;
  readonly provider?: CryptoProvider;
  readonly hello: ReadyInfo;
  /** Bytes the socket may hold unsent before the connection is dropped (default: unbounded). */
  readonly maxQueuedBytes?: number;
  /** The peer's READY must verify within this many ms of the connection (default: no limit). */
  readonly handshakeTimeoutMs?: number;
  /** The peer's whole HELLO must arrive within this many ms of the connection (default: no limit). */
  readonly helloTimeoutMs?: number;
  /** Close an open connection after this many ms without a whole record from the peer (default: no limit). */
  readonly idleTimeoutMs?: number;
  /** Token bucket for received messages: `perSecond` refill, `burst` capacity (default: unlimited). */
  readonly rate?: { readonly perSecond: number; readonly burst: number };
  /**
   * Send a PING whenever nothing was sent for the interval the peer announced in its READY
   * (default true; a peer that announced none never gets one). false: a program without keepalive.
   */
  readonly keepalive?: boolean;
}

/** How a connection ended. */
export type Outcome =
  | { readonly kind: 'bye' } // the peer sent BYE
  | { readonly kind: 'quit' } // we sent BYE
  | { readonly kind: 'error'; readonly error: ChatError };

export interface ConnectionHandlers {
  onReady?(peer: ReadyInfo): void;
  onMessage?(message: ChatMessage): void;
  /** Exactly once, after the socket is closed. */
  onEnd?(outcome: Outcome): void;
}

const LINGER_MS = 2000;
/** A message costs one token plus one per started KiB beyond the first. */
export function messageCost(payloadBytes: number): number {
  return 1 + Math.floor(payloadBytes / 1024);
}

export class ChatConnection {
  private readonly protocol: ChatProtocol;
  private outcome: Outcome | undefined;
  private ended = false;
  private timer: NodeJS.Timeout | undefined;
  private helloTimer: NodeJS.Timeout | undefined;
  private keepaliveTimer: NodeJS.Timeout | undefined;
  /** Keepalive PINGs sent so far. */
  pingsSent = 0;
  /** When we last wrote a frame (keepalive). */
  private lastSent = Date.now();
  /** When the last whole record arrived (idle timeout). */
  private lastHeard = Date.now();
  private tokens = 0;
  private tokensAt = Date.now();
  private pausedUntil = 0;
  /** In debt with the rate limit: input is held (protocol) and the socket is not read. */
  private throttled = false;
  peer: ReadyInfo | undefined;
  /** Why the connection was closed by one of its limits ('handshake timeout', 'idle timeout'), if it was. */
  limitHit: 'handshake timeout' | 'idle timeout' | 'evicted' | undefined;

  constructor(
    readonly socket: net.Socket,
    private readonly opts: ConnectionOptions,
    private readonly handlers: ConnectionHandlers = {},
  ) {
    socket.setNoDelay(true);
    this.protocol = new ChatProtocol({
      role: opts.role,
      mode: opts.mode,
      ...(opts.psk ? { psk: opts.psk } : {}),
      ...(opts.key ? { key: opts.key } : {}),
      ...(opts.provider ? { provider: opts.provider } : {}),
      readyPayload: encodeReady(opts.hello),
      paused: () => this.throttled,
      write: (bytes) => this.write(bytes),
      onReady: (payload) => {
        this.peer = decodeReady(payload);
        this.lastHeard = Date.now();
        if (this.helloTimer) clearTimeout(this.helloTimer);
        this.armIdle();
        if (opts.keepalive !== false && this.peer.keepaliveMs !== undefined) this.armKeepalive(this.peer.keepaliveMs);
        this.handlers.onReady?.(this.peer);
      },
      onMessage: (payload) => {
        this.lastHeard = Date.now();
        this.charge(messageCost(payload.length));
        this.handlers.onMessage?.(decodeMessage(payload));
      },
      onPing: () => {
        this.lastHeard = Date.now();
        this.charge(1);
      },
      onBye: () => this.finish({ kind: 'bye' }),
      onError: (error) => this.finish({ kind: 'error', error }),
    });
    socket.on('data', (chunk: Buffer) => {
      if (!this.outcome) this.protocol.parse(chunk); // after the end is decided, input is only drained
    });
    socket.on('end', () => this.protocol.end());
    socket.on('error', (err) => {
      if (!this.outcome) this.outcome = { kind: 'error', error: new ChatError('closed', `connection lost: ${err.message}`) };
    });
    socket.on('close', () => {
      if (this.timer) clearTimeout(this.timer);
      if (this.helloTimer) clearTimeout(this.helloTimer);
      if (this.keepaliveTimer) clearTimeout(this.keepaliveTimer);
      this.protocol.end();
      this.protocol.dispose();
      this.ended = true;
      this.handlers.onEnd?.(this.outcome ?? { kind: 'error', error: new ChatError('closed', 'connection lost') });
    });
    if (opts.rate) this.tokens = opts.rate.burst;
    if (opts.handshakeTimeoutMs !== undefined) {
      const ms = opts.handshakeTimeoutMs;
      this.timer = setTimeout(() => this.limit('handshake timeout', 'timeout', `handshake not completed within ${ms} ms`), ms);
      this.timer.unref();
    }
    if (opts.helloTimeoutMs !== undefined) {
      const ms = opts.helloTimeoutMs;
      // Like the idle check: look again after this turn's socket reads before deciding.
      const check = (): void =>
        void setImmediate(() => {
          if (this.protocol.state === 'hello-sent') this.limit('handshake timeout', 'timeout', `handshake not completed within ${ms} ms (no HELLO)`);
        });
      (this.helloTimer = setTimeout(check, ms)).unref();
    }
    this.protocol.start();
  }

  /** The end is decided (error, BYE, quit, timeout); the socket may still be lingering. */
  get over(): boolean {
    return this.outcome !== undefined || this.ended;
  }

  /** Still waiting for the peer's HELLO (nothing but bytes received yet). */
  get awaitingHello(): boolean {
    return this.protocol.state === 'hello-sent';
  }

  /** Ends a connection still in its handshake to make room for a newer one (ALERT busy). */
  evict(reason: string): boolean {
    if (this.outcome || this.ended || this.protocol.state === 'failed') return false;
    this.limitHit = 'evicted';
    this.protocol.abort('busy', reason);
    return true;
  }

  /**
   * Charges `cost` more tokens for the last message (the server: for the records its fan-out
   * sealed). In debt, reading stops like for any message.
   */
  chargeExtra(cost: number): void {
    if (cost > 0 && !this.outcome && !this.ended) this.charge(cost);
  }

  /** Keepalive: a PING whenever nothing was written for `ms`. */
  private armKeepalive(ms: number): void {
    const check = (): void => {
      this.keepaliveTimer = undefined;
      if (this.outcome || this.ended || !this.isOpen) return;
      const quiet = Date.now() - this.lastSent;
      if (quiet >= ms) {
        this.protocol.ping();
        this.pingsSent++;
        (this.keepaliveTimer = setTimeout(check, ms)).unref();
      } else {
        (this.keepaliveTimer = setTimeout(check, ms - quiet)).unref();
      }
    };
    (this.keepaliveTimer = setTimeout(check, ms)).unref();
  }

  /** Bytes held for the frame being received. */
  get heldBytes(): number {
    return this.protocol.heldBytes;
  }

  private limit(which: 'handshake timeout' | 'idle timeout', code: 'timeout', message: string): void {
    if (this.outcome || this.ended) return;
    this.limitHit = which;
    this.protocol.abort(code, message);
  }

  /** Idle timeout: one timer, re-armed lazily from the time of the last record. */
  private armIdle(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const ms = this.opts.idleTimeoutMs;
    if (ms === undefined || this.outcome || this.ended) return;
    const check = (): void => {
      const quiet = Date.now() - Math.max(this.lastHeard, this.pausedUntil); // a rate-limited peer is not idle
      if (quiet < ms) {
        (this.timer = setTimeout(check, ms - quiet)).unref();
        return;
      }
      // Timers run before the event loop polls sockets: when the process was busy, the peer's data may
      // be waiting unread. Look again after this turn's reads before deciding.
      setImmediate(() => {
        const q = Date.now() - Math.max(this.lastHeard, this.pausedUntil);
        if (q >= ms) this.limit('idle timeout', 'timeout', `idle for ${Math.round(q / 1000)} s (limit ${Math.round(ms / 1000)} s)`);
        else (this.timer = setTimeout(check, ms - q)).unref();
      });
    };
    (this.timer = setTimeout(check, ms)).unref();
  }

  /** Takes `cost` tokens; in debt, stops reading the socket until the refill has paid it back. */
  private charge(cost: number): void {
    const rate = this.opts.rate;
    if (!rate) return;
    const now = Date.now();
    this.tokens = Math.min(rate.burst, this.tokens + ((now - this.tokensAt) / 1000) * rate.perSecond);
    this.tokensAt = now;
    this.tokens -= cost;
    if (this.tokens >= 0 || this.throttled) return;
    // In debt: stop right after this message (the protocol keeps the rest of this read) and stop
    // reading the socket until the refill has paid the debt back. Nothing is dropped.
    const waitMs = Math.ceil((-this.tokens / rate.perSecond) * 1000);
    this.throttled = true;
    this.pausedUntil = now + waitMs;
    this.socket.pause();
    setTimeout(() => {
      this.throttled = false;
      this.pausedUntil = 0;
      if (this.outcome || this.ended) return;
      this.protocol.parse(Buffer.alloc(0)); // what was held back
      if (!this.throttled && !this.socket.destroyed) this.socket.resume();
    }, waitMs).unref();
  }

  get isOpen(): boolean {
    return this.protocol.state === 'open';
  }

  get queuedBytes(): number {
    return this.socket.writableLength;
  }

  /** Sends (or, before the handshake ends, queues) a message. Returns false once the connection is over. */
  send(message: ChatMessage): boolean {
    return this.sendEncoded(encodeMessage(message));
  }

  /**
   * send() for a payload already produced by encodeMessage (a broadcast encodes once for all).
   * A failure to seal toward this peer (e.g. ENODEV from /dev/crypto) ends this connection only;
   * it never propagates to the caller, which may be serving another client.
   */
  sendEncoded(payload: Buffer): boolean {
    if (this.outcome || this.ended) return false;
    try {
      this.protocol.send(payload);
      return true;
    } catch (err) {
      if (err instanceof ChatError && err.code === 'state') return false;
      this.abort(`cannot encrypt toward this peer: ${err instanceof Error ? err.message : String(err)}`);
      return false;
    }
  }

  /** /quit, Ctrl-D: BYE then close. */
  quit(): void {
    if (this.outcome || this.ended) return;
    this.protocol.bye();
    this.finish({ kind: 'quit' });
  }

  /** Drops the connection at once (e.g. its output queue overflowed). */
  abort(reason: string): void {
    if (!this.outcome) this.outcome = { kind: 'error', error: new ChatError('closed', reason) };
    this.socket.destroy();
  }

  private write(bytes: Buffer): void {
    if (this.socket.destroyed) return;
    this.lastSent = Date.now();
    this.socket.write(bytes);
    const cap = this.opts.maxQueuedBytes;
    if (cap !== undefined && this.socket.writableLength > cap) {
      this.abort(`output queue over ${cap} bytes (the peer is not reading)`);
    }
  }

  private finish(outcome: Outcome): void {
    if (this.outcome) return;
    this.outcome = outcome;
    this.socket.resume(); // a rate-limited (paused) socket must still see the peer's FIN
    // end() flushes what is queued (BYE or ALERT) then sends FIN; a peer that never reads must not
    // keep the socket forever.
    this.socket.end();
    setTimeout(() => this.socket.destroy(), LINGER_MS).unref();
  }
}
