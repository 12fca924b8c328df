/**
 * Binds a ChatProtocol to a socket: bytes both ways, JSON messages in and out, an orderly or
 * abrupt end reported exactly once. The output queue can be bounded (the server does), so a peer
 * that stops reading is cut off instead of growing memory without limit.
 */
import type * as net from 'node:net';
import type { Role } from './keys';
import { type ChatMessage, decodeMessage, decodeReady, encodeMessage, encodeReady, type ReadyInfo } from './messages';
import { ChatError, type ChatMode, ChatProtocol } from './protocol';
import type { CryptoProvider } from './provider';

export interface ConnectionOptions {
  readonly role: Role;
  readonly mode: ChatMode;
  readonly psk?: Buffer;
  readonly provider?: CryptoProvider;
  readonly hello: ReadyInfo;
  /** Bytes the socket may hold unsent before the connection is dropped (default: unbounded). */
  readonly maxQueuedBytes?: number;
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

export class ChatConnection {
  private readonly protocol: ChatProtocol;
  private outcome: Outcome | undefined;
  private ended = false;
  peer: ReadyInfo | undefined;

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
      ...(opts.provider ? { provider: opts.provider } : {}),
      readyPayload: encodeReady(opts.hello),
      write: (bytes) => this.write(bytes),
      onReady: (payload) => {
        this.peer = decodeReady(payload);
        this.handlers.onReady?.(this.peer);
      },
      onMessage: (payload) => this.handlers.onMessage?.(decodeMessage(payload)),
      onBye: () => this.finish({ kind: 'bye' }),
      onError: (error) => this.finish({ kind: 'error', error }),
    });
    socket.on('data', (chunk: Buffer) => this.protocol.parse(chunk));
    socket.on('end', () => this.protocol.end());
    socket.on('error', (err) => {
      if (!this.outcome) this.outcome = { kind: 'error', error: new ChatError('closed', `connection lost: ${err.message}`) };
    });
    socket.on('close', () => {
      this.protocol.end();
      this.protocol.dispose();
      this.ended = true;
      this.handlers.onEnd?.(this.outcome ?? { kind: 'error', error: new ChatError('closed', 'connection lost') });
    });
    this.protocol.start();
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

  /** send() for a payload already produced by encodeMessage (a broadcast encodes once for all). */
  sendEncoded(payload: Buffer): boolean {
    if (this.outcome || this.ended) return false;
    try {
      this.protocol.send(payload);
      return true;
    } catch (err) {
      if (err instanceof ChatError && err.code === 'state') return false;
      throw err;
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
    this.socket.write(bytes);
    const cap = this.opts.maxQueuedBytes;
    if (cap !== undefined && this.socket.writableLength > cap) {
      this.abort(`output queue over ${cap} bytes (the peer is not reading)`);
    }
  }

  private finish(outcome: Outcome): void {
    if (this.outcome) return;
    this.outcome = outcome;
    // end() flushes what is queued (BYE or ALERT) then sends FIN; a peer that never reads must not
    // keep the socket forever.
    this.socket.end();
    setTimeout(() => this.socket.destroy(), LINGER_MS).unref();
  }
}
