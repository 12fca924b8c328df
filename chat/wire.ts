/**
 * Chat wire format, version 1 (docs/chat-protocol.md): every frame is an 8-byte header followed by
 * a body of at most MAX_BODY bytes.
 *
 *   0      1      2      4                8
 *   +------+------+------+----------------+-------------------+
 *   | ver  | type | flags (must be 0)     | body length (u32) | body ...
 *
 * This module only frames bytes; it never interprets bodies and does no I/O.
 */

export const PROTOCOL_VERSION = 1;
export const HEADER_BYTES = 8;
/** Hard cap on a whole frame: header + body never exceed 64 KiB. */
export const MAX_FRAME_BYTES = 64 * 1024;
export const MAX_BODY_BYTES = MAX_FRAME_BYTES - HEADER_BYTES;

export const FrameType = {
  /** Plain: mode, role, 32-byte nonce. First frame each side sends. */
  HELLO: 1,
  /** Plain: a fatal error reason, sent just before closing. */
  ALERT: 2,
  /** Record: proves the keys (first record of each direction, sequence 0). */
  READY: 3,
  /** Record: one application message. */
  MESSAGE: 4,
  /** Record: orderly close (/quit, Ctrl-D). */
  BYE: 5,
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

export function encodeHeader(type: FrameTypeId, bodyLength: number): Buffer {
  if (!Number.isInteger(bodyLength) || bodyLength < 0 || bodyLength > MAX_BODY_BYTES) {
    throw new WireError('oversize', `frame body of ${bodyLength} bytes exceeds the ${MAX_BODY_BYTES}-byte limit`);
  }
  const header = Buffer.alloc(HEADER_BYTES);
  header[0] = PROTOCOL_VERSION;
  header[1] = type;
  header.writeUInt16BE(0, 2);
  header.writeUInt32BE(bodyLength, 4);
  return header;
}

export function encodeFrame(type: FrameTypeId, body: Buffer): Buffer {
  return Buffer.concat([encodeHeader(type, body.length), body]);
}

/** Validates a header before any body byte is awaited: the length is capped before use. */
function checkHeader(header: Buffer): { type: FrameTypeId; length: number } {
  if (header[0] !== PROTOCOL_VERSION) {
    throw new WireError('version', `peer speaks chat protocol version ${header[0]}; this side speaks ${PROTOCOL_VERSION} (or it is not a vlab chat peer)`);
  }
  const type = header[1]!;
  if (!KNOWN_TYPES.has(type)) throw new WireError('malformed', `unknown frame type ${type}`);
  if (header.readUInt16BE(2) !== 0) throw new WireError('malformed', 'reserved header flags are not zero');
  const length = header.readUInt32BE(4);
  if (length > MAX_BODY_BYTES) {
    throw new WireError('oversize', `peer announced a ${length}-byte frame body; the limit is ${MAX_BODY_BYTES}`);
  }
  return { type: type as FrameTypeId, length };
}

/**
 * Incremental frame splitter. `push` accepts any chunking (1-byte writes, many frames coalesced in
 * one read) and returns every complete frame; partial input waits for more. After an error the
 * decoder stays failed.
 */
export class FrameDecoder {
  // Unconsumed input kept as a chunk list and joined only once a whole frame is present, so a
  // 64 KiB frame arriving one byte at a time costs O(n), not O(n^2).
  private chunks: Buffer[] = [];
  private buffered = 0;
  /** Length of the frame being waited for, once its header has been validated. */
  private awaiting: number | undefined;
  private failed: WireError | undefined;

  push(chunk: Buffer): Frame[] {
    if (this.failed) throw this.failed;
    if (chunk.length === 0) return [];
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    const frames: Frame[] = [];
    try {
      for (;;) {
        if (this.awaiting === undefined) {
          if (this.buffered < HEADER_BYTES) break;
          this.awaiting = HEADER_BYTES + checkHeader(this.peek(HEADER_BYTES)).length;
        }
        if (this.buffered < this.awaiting) break;
        const bytes = this.take(this.awaiting);
        this.awaiting = undefined;
        frames.push({ type: bytes[1] as FrameTypeId, header: bytes.subarray(0, HEADER_BYTES), body: bytes.subarray(HEADER_BYTES) });
      }
    } catch (err) {
      this.failed = err as WireError;
      this.chunks = [];
      this.buffered = 0;
      throw err;
    }
    return frames;
  }

  /** Bytes received that do not yet form a whole frame. */
  get bufferedBytes(): number {
    return this.buffered;
  }

  /** Call at end of stream: throws 'truncated' when a frame was cut off. */
  end(): void {
    if (this.failed || this.buffered === 0) return;
    const expected = this.awaiting ?? HEADER_BYTES;
    this.failed = new WireError('truncated', `connection closed in the middle of a frame (${this.buffered} of ${expected} bytes received)`);
    throw this.failed;
  }

  private peek(n: number): Buffer {
    if (this.chunks[0]!.length >= n) return this.chunks[0]!.subarray(0, n);
    const joined = Buffer.concat(this.chunks);
    this.chunks = [joined];
    return joined.subarray(0, n);
  }

  /** Removes and returns the first n bytes as a fresh copy (frames never alias socket buffers). */
  private take(n: number): Buffer {
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    while (filled < n) {
      const head = this.chunks[0]!;
      const want = n - filled;
      if (head.length <= want) {
        head.copy(out, filled);
        filled += head.length;
        this.chunks.shift();
      } else {
        head.copy(out, filled, 0, want);
        this.chunks[0] = head.subarray(want);
        filled += want;
      }
    }
    this.buffered -= n;
    return out;
  }
}
