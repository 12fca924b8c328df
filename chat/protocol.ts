/**
 * The chat connection as a pure state machine (no sockets, no timers): bytes in through `parse`,
 * bytes out through the `write` callback, events through callbacks. Both peers run the same code;
 * only the role (who connected) differs.
 *
 *   start() ──HELLO──▶            each side sends HELLO {mode, role, key kind, X25519 public key, salt}
 *   peer HELLO ─▶ X25519 + HKDF ──READY(seq 0)──▶   (sealed in software: no provider session yet)
 *   peer READY verified ─▶ provider sessions opened ─▶ 'open' (onReady)
 *                                                    MESSAGE records both ways; BYE ends it
 *
 * Until the peer's READY verifies the connection costs only this object, the 8-byte header buffer
 * and at most MAX_HANDSHAKE_BODY bytes of frame body: the handshake records are sealed and opened
 * with node:crypto, and the chosen provider (/dev/crypto) is asked for sessions only afterwards.
 *
 * Any fatal error sends an ALERT (best effort), reports once through onError and leaves the
 * instance 'failed'; it refuses further use.
 */
import * as crypto from 'node:crypto';
import { deriveSessionKeys, type DirectionKeys, type EphemeralKey, ephemeralKey, keyFileSource, type KeySource, PSK_BYTES, type Role, SALT_BYTES, transcriptHash, X25519_BYTES } from './keys';
import { type CryptoProvider, softwareProvider } from './provider';
import { PlainCodec, type RecordCodec, RecordError, SealedCodec } from './record';
import { encodeFrame, encodeHeader, type Frame, FrameDecoder, FrameType, type FrameTypeId, frameTypeName, MAX_BODY_BYTES, WireError } from './wire';

export type ChatMode = 'none' | 'sealed';
export type ChatErrorCode = 'auth' | 'replay' | 'malformed' | 'oversize' | 'truncated' | 'version' | 'mode' | 'state' | 'closed' | 'busy' | 'timeout' | 'device';

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
const KIND_BYTE: Readonly<Record<KeySource['kind'], number>> = { file: 0, passphrase: 1 };
const KIND_DESC: Readonly<Record<number, string>> = { 0: 'a key file', 1: 'a passphrase' };
/** mode, role, key kind, X25519 public key, passphrase salt. */
export const HELLO_BYTES = 3 + X25519_BYTES + SALT_BYTES;
/** Codes 1-9 are version 1's; an old peer shows the reason of a newer code under 'malformed'. */
const ALERT_CODES: readonly ChatErrorCode[] = ['auth', 'replay', 'malformed', 'oversize', 'truncated', 'version', 'mode', 'state', 'closed', 'busy', 'timeout', 'device'];
const MAX_ALERT_REASON = 200;
/** Largest frame body before the peer's READY verifies: HELLO, READY (a short JSON hello), ALERT. */
export const MAX_HANDSHAKE_BODY = 512;

/** An ALERT frame by itself (e.g. a server refusing a connection before any protocol object exists). */
export function encodeAlert(code: ChatErrorCode, reason: string, version?: number): Buffer {
  const body = Buffer.concat([Buffer.from([ALERT_CODES.indexOf(code) + 1]), Buffer.from(reason, 'utf8').subarray(0, MAX_ALERT_REASON)]);
  return Buffer.concat([encodeHeader(FrameType.ALERT, body.length, version), body]);
}

export type ProtocolState = 'new' | 'hello-sent' | 'keyed' | 'open' | 'closing' | 'closed' | 'failed';

export interface ProtocolOptions {
  readonly role: Role;
  readonly mode: ChatMode;
  /** Mode 'sealed' needs a key: `psk` (a key file's 32 bytes) or `key` (which also covers passphrases). */
  readonly psk?: Buffer;
  readonly key?: KeySource;
  readonly provider?: CryptoProvider;
  /** Opaque payload of our READY record (the application's hello: nick, role). */
  readonly readyPayload: Buffer;
  write(bytes: Buffer): void;
  onReady(peerReadyPayload: Buffer): void;
  onMessage(payload: Buffer): void;
  /** The peer sent a keepalive (PING); nothing is answered. */
  onPing?(): void;
  /** The peer ended the conversation in order (BYE). */
  onBye(): void;
  /** Fatal; called at most once. */
  onError(err: ChatError): void;
  /**
   * Asked after each frame: true makes parse() stop at that frame boundary and keep the rest of the
   * input (≤ one read) until the next parse() call (the connection's rate limit).
   */
  readonly paused?: () => boolean;
  /** Randomness for the ephemeral X25519 key and IVs; tests inject fixed bytes. */
  readonly random?: (bytes: number) => Buffer;
}

export class ChatProtocol {
  private stateValue: ProtocolState = 'new';
  private readonly decoder = new FrameDecoder(MAX_HANDSHAKE_BODY);
  private readonly random: (bytes: number) => Buffer;
  private readonly key: KeySource | undefined;
  private ephemeral: EphemeralKey | undefined;
  private ourHello: Buffer | undefined;
  /** Session keys between our HELLO and the peer's READY; handed to the provider, then dropped. */
  private pending: { send: DirectionKeys; receive: DirectionKeys } | undefined;
  private sendCodec: RecordCodec | undefined;
  private receiveCodec: RecordCodec | undefined;
  /** Messages queued by send() before the connection is open. */
  private readonly queued: Buffer[] = [];
  /** Input not yet decoded because `paused()` said stop (starts at a frame boundary). */
  private held: Buffer | undefined;

  constructor(private readonly opts: ProtocolOptions) {
    if (opts.mode === 'sealed') {
      if (opts.key) this.key = opts.key;
      else if (opts.psk && opts.psk.length === PSK_BYTES) this.key = keyFileSource(opts.psk);
      else throw new TypeError(`mode 'sealed' needs a ${PSK_BYTES}-byte pre-shared key or a key source`);
      if (!opts.provider) throw new TypeError("mode 'sealed' needs a crypto provider");
    }
    this.random = opts.random ?? ((n) => crypto.randomBytes(n));
  }

  get state(): ProtocolState {
    return this.stateValue;
  }

  /** Bytes held for the frame being received (bounded by the handshake or the frame limit). */
  get heldBytes(): number {
    return this.decoder.heldBytes;
  }

  /** Sends our HELLO. */
  start(): void {
    if (this.stateValue !== 'new') throw new ChatError('state', 'start() called twice');
    this.stateValue = 'hello-sent';
    const sealed = this.opts.mode === 'sealed';
    if (sealed) this.ephemeral = ephemeralKey(this.random(X25519_BYTES));
    const salt = sealed && this.opts.role === 'responder' ? this.key!.salt : Buffer.alloc(SALT_BYTES);
    const body = Buffer.concat([
      Buffer.from([MODE_BYTE[this.opts.mode], ROLE_BYTE[this.opts.role], sealed ? KIND_BYTE[this.key!.kind] : 0]),
      this.ephemeral?.publicKey ?? Buffer.alloc(X25519_BYTES),
      salt,
    ]);
    this.ourHello = encodeFrame(FrameType.HELLO, body);
    this.opts.write(this.ourHello);
  }

  /**
   * Feeds received bytes (any chunking; an empty chunk resumes input held while paused). Each frame
   * is handled before the next header is read.
   */
  parse(chunk: Buffer): void {
    if (this.stateValue === 'failed' || this.stateValue === 'closed') return;
    let input = chunk;
    if (this.held) {
      input = chunk.length > 0 ? Buffer.concat([this.held, chunk]) : this.held;
      this.held = undefined;
    }
    if (input.length === 0) return;
    try {
      const used = this.decoder.feed(input, (frame) => {
        if (this.finished()) return false;
        try {
          this.handle(frame);
        } catch (err) {
          this.fail(toChatError(err));
        }
        return !this.finished() && !(this.opts.paused?.() ?? false);
      });
      if (used < input.length && !this.finished()) this.held = Buffer.from(input.subarray(used));
    } catch (err) {
      if (err instanceof WireError && err.code === 'version' && err.peerVersion === 1) {
        // A version-1 peer cannot read our header; answer in its own version so it shows the reason.
        this.fail(new ChatError('version', err.message), 1);
        return;
      }
      this.fail(err instanceof WireError ? new ChatError(err.code, err.message) : new ChatError('malformed', String(err)));
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

  /** Ends the connection with an ALERT from this side (timeouts, limits). */
  abort(code: ChatErrorCode, message: string): void {
    this.fail(new ChatError(code, message));
  }

  /** Queues or sends one application message. */
  send(payload: Buffer): void {
    if (this.stateValue === 'failed' || this.stateValue === 'closed' || this.stateValue === 'closing') {
      throw new ChatError('state', `cannot send: connection is ${this.stateValue}`);
    }
    if (this.stateValue !== 'open') {
      this.queued.push(Buffer.from(payload));
      return;
    }
    this.opts.write(this.sendCodec!.seal(FrameType.MESSAGE, payload));
  }

  /** Keepalive: one empty PING record (only once open; callers send it only to a peer that asked). */
  ping(): void {
    if (this.stateValue !== 'open') return;
    this.opts.write(this.sendCodec!.seal(FrameType.PING, Buffer.alloc(0)));
  }

  /** Orderly close: BYE, after which nothing more is sent. */
  bye(): void {
    if (this.stateValue !== 'keyed' && this.stateValue !== 'open') return;
    // A responder has sent no READY before the connection is open: a BYE would come first.
    if (this.stateValue === 'keyed' && this.opts.role === 'responder') return;
    this.flushQueue();
    this.opts.write(this.sendCodec!.seal(FrameType.BYE, Buffer.alloc(0)));
    this.stateValue = 'closing';
  }

  /** Releases provider sessions. */
  dispose(): void {
    this.closeCodecs();
    if (this.stateValue !== 'failed') this.stateValue = 'closed';
  }

  private closeCodecs(): void {
    this.sendCodec?.close();
    this.receiveCodec?.close();
    this.sendCodec = this.receiveCodec = undefined;
    this.pending = undefined;
    this.ephemeral = undefined;
  }

  private finished(): boolean {
    return this.stateValue === 'failed' || this.stateValue === 'closed';
  }

  private handle(frame: Frame): void {
    switch (frame.type) {
      case FrameType.ALERT:
        return this.onAlert(frame.body);
      case FrameType.HELLO:
        return this.onHello(frame);
      default:
        return this.onRecord(frame);
    }
  }

  private onHello(frame: Frame): void {
    const body = frame.body;
    if (this.stateValue !== 'hello-sent') throw new ChatError('malformed', 'unexpected second HELLO');
    if (body.length !== HELLO_BYTES) throw new ChatError('malformed', `HELLO of ${body.length} bytes (expected ${HELLO_BYTES})`);
    const peerMode = body[0]!;
    const peerRole = body[1]!;
    const peerKind = body[2]!;
    if (!(peerMode in MODE_DESC)) throw new ChatError('mode', `peer asks for unknown crypto mode ${peerMode}`);
    if (peerMode !== MODE_BYTE[this.opts.mode]) {
      throw new ChatError('mode', `crypto mismatch: the peer uses ${MODE_DESC[peerMode]}, this side ${MODE_DESC[MODE_BYTE[this.opts.mode]]}`);
    }
    if (peerRole === ROLE_BYTE[this.opts.role] || (peerRole !== 1 && peerRole !== 2)) {
      throw new ChatError('malformed', 'peer claims the same role as this side (connected to itself?)');
    }
    if (this.opts.mode === 'sealed') {
      if (!(peerKind in KIND_DESC)) throw new ChatError('mode', `peer uses unknown key kind ${peerKind}`);
      if (peerKind !== KIND_BYTE[this.key!.kind]) {
        throw new ChatError('mode', `key mismatch: the peer uses ${KIND_DESC[peerKind]}, this side ${KIND_DESC[KIND_BYTE[this.key!.kind]]}`);
      }
      const peerHello = Buffer.concat([frame.header, body]);
      const [helloI, helloR] = this.opts.role === 'initiator' ? [this.ourHello!, peerHello] : [peerHello, this.ourHello!];
      const salt = helloR.subarray(helloR.length - SALT_BYTES);
      const psk = this.key!.pskFor(salt);
      let dh: Buffer;
      try {
        dh = this.ephemeral!.agree(body.subarray(3, 3 + X25519_BYTES));
      } catch (err) {
        throw new ChatError('malformed', (err as Error).message);
      }
      this.ephemeral = undefined;
      const keys = deriveSessionKeys(psk, dh, transcriptHash(helloI, helloR), this.opts.role);
      dh.fill(0);
      // The handshake records go through node:crypto; the provider is asked only once the peer proved the key.
      const iv = (): Buffer => this.random(16);
      const handshake = softwareProvider();
      this.pending = keys;
      this.sendCodec = new SealedCodec(handshake, keys.send, iv);
      this.receiveCodec = new SealedCodec(handshake, keys.receive, iv);
    } else {
      this.sendCodec = new PlainCodec();
      this.receiveCodec = new PlainCodec();
    }
    this.stateValue = 'keyed';
    // The initiator proves the key first. The responder answers only once that READY verified, so
    // an unauthenticated client never receives a MAC under the key (an offline-guessing verifier
    // in passphrase mode, review F12).
    if (this.opts.role === 'initiator') this.opts.write(this.sendCodec.seal(FrameType.READY, this.opts.readyPayload));
  }

  private onRecord(frame: Frame): void {
    if (!this.receiveCodec) throw new ChatError('malformed', `${frameTypeName(frame.type)} before HELLO`);
    const payload = this.receiveCodec.open(frame.header, frame.body);
    const opened = this.stateValue === 'open' || this.stateValue === 'closing';
    if (frame.type === FrameType.READY) {
      if (opened) throw new ChatError('malformed', 'second READY');
      // Responder: the initiator's READY verified; now ours (sequence 0, still node:crypto).
      if (this.opts.role === 'responder') this.opts.write(this.sendCodec!.seal(FrameType.READY, this.opts.readyPayload));
      this.openSessions();
      this.stateValue = 'open';
      this.decoder.maxBody = MAX_BODY_BYTES;
      this.flushQueue();
      this.opts.onReady(payload);
      return;
    }
    if (!opened) throw new ChatError('malformed', `${frameTypeName(frame.type)} before READY`);
    if (frame.type === FrameType.MESSAGE) {
      this.opts.onMessage(payload);
    } else if (frame.type === FrameType.PING) {
      if (payload.length !== 0) throw new ChatError('malformed', `PING with a ${payload.length}-byte payload`);
      this.opts.onPing?.();
    } else if (frame.type === FrameType.BYE) {
      this.stateValue = 'closed';
      this.opts.onBye();
    }
  }

  /** The peer's READY verified: move both directions onto the chosen provider (sequence 1 onwards). */
  private openSessions(): void {
    const keys = this.pending;
    if (!keys) return; // plain mode
    this.pending = undefined;
    const iv = (): Buffer => this.random(16);
    let send: SealedCodec | undefined;
    try {
      send = new SealedCodec(this.opts.provider!, keys.send, iv, 1n);
      const receive = new SealedCodec(this.opts.provider!, keys.receive, iv, 1n);
      this.sendCodec?.close();
      this.receiveCodec?.close();
      this.sendCodec = send;
      this.receiveCodec = receive;
    } catch (err) {
      send?.close();
      throw new ChatError('device', `cannot open crypto sessions: ${(err as Error).message}`);
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

  /** `alert`: false for none, true for one in our version, or the peer's (older) version number. */
  private fail(err: ChatError, alert: boolean | number = true): void {
    if (this.stateValue === 'failed' || this.stateValue === 'closed') return;
    this.stateValue = 'failed';
    if (alert !== false && !err.remote && err.code !== 'closed') {
      try {
        this.opts.write(encodeAlert(err.code, err.message, typeof alert === 'number' ? alert : undefined));
      } catch {
        // Best effort: the transport may already be gone.
      }
    }
    this.closeCodecs();
    this.queued.length = 0;
    this.held = undefined;
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
