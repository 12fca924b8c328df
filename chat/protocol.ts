/**
 * The chat connection as a pure state machine (no sockets, no timers): bytes in through `parse`,
 * bytes out through the `write` callback, events through callbacks. Both peers run the same code;
 * only the role (who connected) differs.
 *
 *   start() ──HELLO──▶            each side sends HELLO {mode, role, nonce}
 *   peer HELLO ─▶ derive keys ──READY(seq 0)──▶
 *   peer READY verified ─▶ 'open' (onReady)    MESSAGE records both ways; BYE ends it
 *
 * Any fatal error sends an ALERT (best effort), reports once through onError and leaves the
 * instance 'failed'; it refuses further use.
 */
import * as crypto from 'node:crypto';
import { deriveSessionKeys, NONCE_BYTES, PSK_BYTES, type Role } from './keys';
import type { CryptoProvider } from './provider';
import { PlainCodec, type RecordCodec, RecordError, SealedCodec } from './record';
import { encodeFrame, type Frame, FrameDecoder, FrameType, type FrameTypeId, frameTypeName, WireError } from './wire';

export type ChatMode = 'none' | 'sealed';
export type ChatErrorCode = 'auth' | 'replay' | 'malformed' | 'oversize' | 'truncated' | 'version' | 'mode' | 'state' | 'closed';

export class ChatError extends Error {
  constructor(
    readonly code: ChatErrorCode,
    message: string,
    /** True when the peer reported the error in an ALERT rather than this side detecting it. */
    readonly remote = false,
  ) {
    super(message);
    this.name = 'ChatError';
  }
}

const MODE_BYTE: Readonly<Record<ChatMode, number>> = { none: 0, sealed: 1 };
const MODE_DESC: Readonly<Record<number, string>> = { 0: 'no encryption (--crypto none)', 1: 'AES-256-CBC + HMAC-SHA256' };
const ROLE_BYTE: Readonly<Record<Role, number>> = { initiator: 1, responder: 2 };
const HELLO_BYTES = 2 + NONCE_BYTES;
const ALERT_CODES: readonly ChatErrorCode[] = ['auth', 'replay', 'malformed', 'oversize', 'truncated', 'version', 'mode', 'state', 'closed'];
const MAX_ALERT_REASON = 200;

export type ProtocolState = 'new' | 'hello-sent' | 'keyed' | 'open' | 'closing' | 'closed' | 'failed';

export interface ProtocolOptions {
  readonly role: Role;
  readonly mode: ChatMode;
  /** Required for mode 'sealed'. */
  readonly psk?: Buffer;
  readonly provider?: CryptoProvider;
  /** Opaque payload of our READY record (the application's hello: nick, role). */
  readonly readyPayload: Buffer;
  write(bytes: Buffer): void;
  onReady(peerReadyPayload: Buffer): void;
  onMessage(payload: Buffer): void;
  /** The peer ended the conversation in order (BYE). */
  onBye(): void;
  /** Fatal; called at most once. */
  onError(err: ChatError): void;
  /** Randomness for nonces and IVs; tests inject fixed bytes. */
  readonly random?: (bytes: number) => Buffer;
}

export class ChatProtocol {
  private stateValue: ProtocolState = 'new';
  private readonly decoder = new FrameDecoder();
  private readonly random: (bytes: number) => Buffer;
  private readonly nonce: Buffer;
  private sendCodec: RecordCodec | undefined;
  private receiveCodec: RecordCodec | undefined;
  /** Messages queued by send() before the keys exist. */
  private readonly queued: Buffer[] = [];

  constructor(private readonly opts: ProtocolOptions) {
    if (opts.mode === 'sealed') {
      if (!opts.psk || opts.psk.length !== PSK_BYTES) throw new TypeError(`mode 'sealed' needs a ${PSK_BYTES}-byte pre-shared key`);
      if (!opts.provider) throw new TypeError("mode 'sealed' needs a crypto provider");
    }
    this.random = opts.random ?? ((n) => crypto.randomBytes(n));
    this.nonce = this.random(NONCE_BYTES);
  }

  get state(): ProtocolState {
    return this.stateValue;
  }

  /** Sends our HELLO. */
  start(): void {
    if (this.stateValue !== 'new') throw new ChatError('state', 'start() called twice');
    this.stateValue = 'hello-sent';
    const body = Buffer.concat([Buffer.from([MODE_BYTE[this.opts.mode], ROLE_BYTE[this.opts.role]]), this.nonce]);
    this.opts.write(encodeFrame(FrameType.HELLO, body));
  }

  /** Feeds received bytes (any chunking). */
  parse(chunk: Buffer): void {
    if (this.stateValue === 'failed' || this.stateValue === 'closed') return;
    let frames: Frame[];
    try {
      frames = this.decoder.push(chunk);
    } catch (err) {
      this.fail(err instanceof WireError ? new ChatError(err.code, err.message) : new ChatError('malformed', String(err)));
      return;
    }
    for (const frame of frames) {
      if (this.finished()) return;
      try {
        this.handle(frame);
      } catch (err) {
        this.fail(toChatError(err));
      }
    }
  }

  /** The transport reached end of stream. */
  end(): void {
    if (this.stateValue === 'failed' || this.stateValue === 'closed') return;
    try {
      this.decoder.end();
    } catch (err) {
      this.fail(toChatError(err));
      return;
    }
    this.fail(new ChatError('closed', this.stateValue === 'open' || this.stateValue === 'closing' ? 'connection lost (the peer went away without /quit)' : 'connection closed during the handshake'), false);
  }

  /** Queues or sends one application message. */
  send(payload: Buffer): void {
    if (this.stateValue === 'failed' || this.stateValue === 'closed' || this.stateValue === 'closing') {
      throw new ChatError('state', `cannot send: connection is ${this.stateValue}`);
    }
    if (!this.sendCodec) {
      this.queued.push(Buffer.from(payload));
      return;
    }
    this.opts.write(this.sendCodec.seal(FrameType.MESSAGE, payload));
  }

  /** Orderly close: BYE, after which nothing more is sent. */
  bye(): void {
    if (this.stateValue !== 'keyed' && this.stateValue !== 'open') return;
    this.flushQueue();
    this.opts.write(this.sendCodec!.seal(FrameType.BYE, Buffer.alloc(0)));
    this.stateValue = 'closing';
  }

  /** Releases provider sessions. */
  dispose(): void {
    this.sendCodec?.close();
    this.receiveCodec?.close();
    this.sendCodec = this.receiveCodec = undefined;
    if (this.stateValue !== 'failed') this.stateValue = 'closed';
  }

  private finished(): boolean {
    return this.stateValue === 'failed' || this.stateValue === 'closed';
  }

  private handle(frame: Frame): void {
    switch (frame.type) {
      case FrameType.ALERT:
        return this.onAlert(frame.body);
      case FrameType.HELLO:
        return this.onHello(frame.body);
      default:
        return this.onRecord(frame);
    }
  }

  private onHello(body: Buffer): void {
    if (this.stateValue !== 'hello-sent') throw new ChatError('malformed', 'unexpected second HELLO');
    if (body.length !== HELLO_BYTES) throw new ChatError('malformed', `HELLO of ${body.length} bytes (expected ${HELLO_BYTES})`);
    const peerMode = body[0]!;
    const peerRole = body[1]!;
    if (!(peerMode in MODE_DESC)) throw new ChatError('mode', `peer asks for unknown crypto mode ${peerMode}`);
    if (peerMode !== MODE_BYTE[this.opts.mode]) {
      throw new ChatError('mode', `crypto mismatch: the peer uses ${MODE_DESC[peerMode]}, this side ${MODE_DESC[MODE_BYTE[this.opts.mode]]}`);
    }
    if (peerRole === ROLE_BYTE[this.opts.role] || (peerRole !== 1 && peerRole !== 2)) {
      throw new ChatError('malformed', 'peer claims the same role as this side (connected to itself?)');
    }
    const peerNonce = body.subarray(2);
    if (this.opts.mode === 'sealed') {
      const [iNonce, rNonce] = this.opts.role === 'initiator' ? [this.nonce, peerNonce] : [peerNonce, this.nonce];
      const keys = deriveSessionKeys(this.opts.psk!, this.opts.role, iNonce, rNonce);
      const iv = (): Buffer => this.random(16);
      this.sendCodec = new SealedCodec(this.opts.provider!, keys.send, iv);
      this.receiveCodec = new SealedCodec(this.opts.provider!, keys.receive, iv);
    } else {
      this.sendCodec = new PlainCodec();
      this.receiveCodec = new PlainCodec();
    }
    this.stateValue = 'keyed';
    this.opts.write(this.sendCodec.seal(FrameType.READY, this.opts.readyPayload));
    this.flushQueue();
  }

  private onRecord(frame: Frame): void {
    if (!this.receiveCodec) throw new ChatError('malformed', `${frameTypeName(frame.type)} before HELLO`);
    const payload = this.receiveCodec.open(frame.header, frame.body);
    const opened = this.stateValue === 'open' || this.stateValue === 'closing';
    if (frame.type === FrameType.READY) {
      if (opened) throw new ChatError('malformed', 'second READY');
      this.stateValue = 'open';
      this.opts.onReady(payload);
      return;
    }
    if (!opened) throw new ChatError('malformed', `${frameTypeName(frame.type)} before READY`);
    if (frame.type === FrameType.MESSAGE) {
      this.opts.onMessage(payload);
    } else if (frame.type === FrameType.BYE) {
      this.stateValue = 'closed';
      this.opts.onBye();
    }
  }

  private onAlert(body: Buffer): void {
    const code = ALERT_CODES[(body[0] ?? 0) - 1] ?? 'malformed';
    const reason = sanitize(body.subarray(1, 1 + MAX_ALERT_REASON).toString('utf8'));
    const text = code === 'auth' ? 'authentication failed (the peer could not verify our messages: different keys?)' : `the peer closed the connection: ${reason}`;
    this.fail(new ChatError(code, text, true), false);
  }

  private flushQueue(): void {
    while (this.queued.length > 0 && this.sendCodec) this.opts.write(this.sendCodec.seal(FrameType.MESSAGE, this.queued.shift()!));
  }

  private fail(err: ChatError, sendAlert = true): void {
    if (this.stateValue === 'failed' || this.stateValue === 'closed') return;
    this.stateValue = 'failed';
    if (sendAlert && !err.remote && err.code !== 'closed') {
      const reason = Buffer.from(err.message, 'utf8').subarray(0, MAX_ALERT_REASON);
      try {
        this.opts.write(encodeFrame(FrameType.ALERT, Buffer.concat([Buffer.from([ALERT_CODES.indexOf(err.code) + 1]), reason])));
      } catch {
        // Best effort: the transport may already be gone.
      }
    }
    this.sendCodec?.close();
    this.receiveCodec?.close();
    this.sendCodec = this.receiveCodec = undefined;
    this.opts.onError(err);
  }
}

function toChatError(err: unknown): ChatError {
  if (err instanceof ChatError) return err;
  if (err instanceof RecordError || err instanceof WireError) return new ChatError(err.code, err.message);
  return new ChatError('malformed', err instanceof Error ? err.message : String(err));
}

/** Strips control characters (terminal escapes included) from peer-supplied text. */
export function sanitize(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u0008\u000a-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g, '\uFFFD');
}

/** The frame type byte values, re-exported for tests that build frames by hand. */
export type { FrameTypeId };
