/**
 * Chat wire format, version 2 (docs/chat-protocol.md): every frame is an 8-byte header followed by
 * a body of at most MAX_BODY bytes.
 *
 *   0      1      2      4                8
 *   +------+------+------+----------------+-------------------+
 *   | ver  | type | flags (must be 0)     | body length (u32) | body ...
 *
 * This module only frames bytes; it never interprets bodies and does no I/O.
 */

export const PROTOCOL_VERSION = 2;
export const HEADER_BYTES = 8;
/** Hard cap on a whole frame: header + body never exceed 64 KiB. */
export const MAX_FRAME_BYTES = 64 * 1024;
export const MAX_BODY_BYTES = MAX_FRAME_BYTES - HEADER_BYTES;

export const FrameType = {
  /** Plain: mode, role, key kind, ephemeral X25519 public key, passphrase salt. First frame each side sends. */
  HELLO: 1,
  /** Plain: a fatal error reason, sent just before closing. */
  ALERT: 2,
  /** Record: proves the keys (first record of each direction, sequence 0). */
  READY: 3,
  /** Record: one application message. */
  MESSAGE: 4,
  /** Record: orderly close (/quit, Ctrl-D). */
  BYE: 5,
  /**
   * Record, empty payload: keepalive. A client sends it when it has sent nothing for the interval
   * the server announced in its READY (`keepaliveMs`); it counts for the server's idle timer and
   * costs one rate-limit token. Never sent to a peer that did not announce it: a version-2 peer
   * from before the keepalive reads type 6 as "unknown frame type 6" (malformed) and closes.
   */
  PING: 6,
} as const;
export type FrameTypeId = (typeof FrameType)[keyof typeof FrameType];
const KNOWN_TYPES: ReadonlySet<number> = new Set(Object.values(FrameType));

export function frameTypeName(type: number): string {
  const entry = Object.entries(FrameType).find(([, v]) => v === type);
  return entry ? entry[0] : `type ${type}`;
}

export type WireErrorCode = 'version' | 'oversize' | 'malformed' | 'truncated';

export class WireError extends Error {
  constructor(
    readonly code: WireErrorCode,
    message: string,
    /** For 'version': the version byte the peer sent. */
    readonly peerVersion?: number,
  ) {
    super(message);
    this.name = 'WireError';
  }
}

export interface Frame {
  readonly type: FrameTypeId;
  /** The 8 header bytes exactly as received (the MAC covers them). */
  readonly header: Buffer;
  readonly body: Buffer;
}

export function encodeHeader(type: FrameTypeId, bodyLength: number, version = PROTOCOL_VERSION): Buffer {
  if (!Number.isInteger(bodyLength) || bodyLength < 0 || bodyLength > MAX_BODY_BYTES) {
    throw new WireError('oversize', `frame body of ${bodyLength} bytes exceeds the ${MAX_BODY_BYTES}-byte limit`);
  }
  const header = Buffer.alloc(HEADER_BYTES);
  header[0] = version;
  header[1] = type;
  header.writeUInt16BE(0, 2);
  header.writeUInt32BE(bodyLength, 4);
  return header;
}

export function encodeFrame(type: FrameTypeId, body: Buffer): Buffer {
  return Buffer.concat([encodeHeader(type, body.length), body]);
}

/** Validates a header before any body byte is awaited: the length is capped before use. */
function checkHeader(header: Buffer, maxBody: number): { type: FrameTypeId; length: number } {
  if (header[0] !== PROTOCOL_VERSION) {
    throw new WireError('version', `peer speaks chat protocol version ${header[0]}; this side speaks ${PROTOCOL_VERSION} (or it is not a vlab chat peer)`, header[0]);
  }
  const type = header[1]!;
  if (!KNOWN_TYPES.has(type)) throw new WireError('malformed', `unknown frame type ${type}`);
  if (header.readUInt16BE(2) !== 0) throw new WireError('malformed', 'reserved header flags are not zero');
  const length = header.readUInt32BE(4);
  if (length > maxBody) {
    const when = maxBody < MAX_BODY_BYTES ? ' before the handshake completes' : '';
    throw new WireError('oversize', `peer announced a ${length}-byte frame body; the limit${when} is ${maxBody}`);
  }
  return { type: type as FrameTypeId, length };
}

/**
 * Incremental frame splitter. `push` accepts any chunking (1-byte writes, many frames coalesced in
 * one read) and returns every complete frame; partial input waits for more. After an error the
 * decoder stays failed.
 *
 * Memory: one 8-byte header buffer and, once a header has been validated, one body buffer of
 * exactly the announced length (≤ `maxBody`). Input chunks are copied and never kept, so a peer
 * that trickles one byte per read costs the announced frame, not one socket buffer per byte.
 */
export class FrameDecoder {
  private readonly header = Buffer.alloc(HEADER_BYTES);
  private headerFill = 0;
  /** Body of the frame being assembled, once its header has been validated. */
  private body: Buffer | undefined;
  private bodyFill = 0;
  private type: FrameTypeId = FrameType.HELLO;
  private failed: WireError | undefined;

  /** Largest body accepted; callers lower it before authentication (see ChatProtocol). */
  constructor(public maxBody: number = MAX_BODY_BYTES) {}

  push(chunk: Buffer): Frame[] {
    const frames: Frame[] = [];
    this.feed(chunk, (f) => void frames.push(f));
    return frames;
  }

  /**
   * Like push, but hands each frame to `onFrame` as soon as it is complete, before the next header
   * is read, so the caller can change `maxBody` in between (the handshake's READY raises it).
   * `onFrame` returning false stops decoding right after that frame; the return value is the number
   * of bytes of `chunk` consumed (the caller keeps the rest, which starts at a frame boundary).
   */
  feed(chunk: Buffer, onFrame: (frame: Frame) => boolean | void): number {
    if (this.failed) throw this.failed;
    let at = 0;
    try {
      while (at < chunk.length) {
        if (!this.body) {
          const n = Math.min(HEADER_BYTES - this.headerFill, chunk.length - at);
          chunk.copy(this.header, this.headerFill, at, at + n);
          this.headerFill += n;
          at += n;
          if (this.headerFill < HEADER_BYTES) break;
          const { type, length } = checkHeader(this.header, Math.min(this.maxBody, MAX_BODY_BYTES));
          this.type = type;
          this.body = Buffer.allocUnsafe(length);
          this.bodyFill = 0;
        }
        const n = Math.min(this.body.length - this.bodyFill, chunk.length - at);
        chunk.copy(this.body, this.bodyFill, at, at + n);
        this.bodyFill += n;
        at += n;
        if (this.bodyFill < this.body.length) break;
        const frame = { type: this.type, header: Buffer.from(this.header), body: this.body };
        this.body = undefined;
        this.bodyFill = 0;
        this.headerFill = 0;
        if (onFrame(frame) === false) return at;
      }
    } catch (err) {
      this.failed = err as WireError;
      this.body = undefined;
      this.bodyFill = 0;
      this.headerFill = 0;
      throw err;
    }
    return chunk.length;
  }

  /** Bytes received that do not yet form a whole frame. */
  get bufferedBytes(): number {
    return this.headerFill + this.bodyFill;
  }

  /** Bytes held for the frame being assembled (header + the announced body). */
  get heldBytes(): number {
    return HEADER_BYTES + (this.body?.length ?? 0);
  }

  /** Call at end of stream: throws 'truncated' when a frame was cut off. */
  end(): void {
    if (this.failed || this.bufferedBytes === 0) return;
    const expected = this.body ? HEADER_BYTES + this.body.length : HEADER_BYTES;
    this.failed = new WireError('truncated', `connection closed in the middle of a frame (${this.bufferedBytes} of ${expected} bytes received)`);
    throw this.failed;
  }
}
