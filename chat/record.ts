/**
 * The record layer: how READY / MESSAGE / BYE bodies are sealed and opened.
 *
 * Sealed (encrypt-then-MAC):  body = seq(u64 BE) ‖ IV(16) ‖ AES-256-CBC(enc_key, IV, PKCS#7(payload)) ‖ tag(32)
 *                             tag  = HMAC-SHA256(mac_key, header(8) ‖ seq ‖ IV ‖ ciphertext)
 * Plain (--crypto none):      body = seq(u64 BE) ‖ payload
 *
 * The header (which carries type and length) is inside the MAC, so neither can be changed. The tag
 * is checked (in constant time) before anything is decrypted; the sequence number is checked after
 * the tag, so a replayed frame is reported as a replay, not as a forgery.
 */
import * as crypto from 'node:crypto';
import { BLOCK_BYTES, type BlockCipher, type CryptoProvider, MAC_BYTES, type Mac } from './provider';
import { encodeHeader, type FrameTypeId, HEADER_BYTES, MAX_BODY_BYTES } from './wire';
import type { DirectionKeys } from './keys';

export const SEQ_BYTES = 8;
const SEALED_OVERHEAD = SEQ_BYTES + BLOCK_BYTES + MAC_BYTES;
/** Largest payload that still fits one frame once padded and sealed (and in plain mode). */
export const MAX_PAYLOAD_BYTES = Math.floor((MAX_BODY_BYTES - SEALED_OVERHEAD) / BLOCK_BYTES) * BLOCK_BYTES - 1;

export type RecordErrorCode = 'auth' | 'replay' | 'malformed' | 'oversize';
export class RecordError extends Error {
  constructor(
    readonly code: RecordErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'RecordError';
  }
}

export function pkcs7Pad(data: Buffer): Buffer {
  const n = BLOCK_BYTES - (data.length % BLOCK_BYTES);
  return Buffer.concat([data, Buffer.alloc(n, n)]);
}

export function pkcs7Unpad(data: Buffer): Buffer {
  const n = data[data.length - 1] ?? 0;
  if (n < 1 || n > BLOCK_BYTES || n > data.length) throw new RecordError('malformed', 'bad padding in an authenticated record');
  for (let i = data.length - n; i < data.length; i++) {
    if (data[i] !== n) throw new RecordError('malformed', 'bad padding in an authenticated record');
  }
  return data.subarray(0, data.length - n);
}

function seqBytes(seq: bigint): Buffer {
  const b = Buffer.alloc(SEQ_BYTES);
  b.writeBigUInt64BE(seq);
  return b;
}

/** One direction's record state: its keys (or none) and its sequence counter. */
export interface RecordCodec {
  /** Returns the whole frame (header + body) for `payload` and advances the sequence number. */
  seal(type: FrameTypeId, payload: Buffer): Buffer;
  /** Verifies and opens a received body; advances the expected sequence number. */
  open(header: Buffer, body: Buffer): Buffer;
  close(): void;
}

export class PlainCodec implements RecordCodec {
  private seq = 0n;
  seal(type: FrameTypeId, payload: Buffer): Buffer {
    if (payload.length > MAX_PAYLOAD_BYTES) throw new RecordError('oversize', `message of ${payload.length} bytes exceeds ${MAX_PAYLOAD_BYTES}`);
    const s = seqBytes(this.seq++);
    return Buffer.concat([encodeHeader(type, SEQ_BYTES + payload.length), s, payload]);
  }
  open(_header: Buffer, body: Buffer): Buffer {
    if (body.length < SEQ_BYTES) throw new RecordError('malformed', `record body of ${body.length} bytes is shorter than its sequence number`);
    const seq = body.readBigUInt64BE(0);
    if (seq !== this.seq) throw new RecordError('replay', `replayed or reordered frame (sequence ${seq}, expected ${this.seq})`);
    this.seq++;
    return body.subarray(SEQ_BYTES);
  }
  close(): void {}
}

export class SealedCodec implements RecordCodec {
  private seq: bigint;
  private readonly cipher: BlockCipher;
  private readonly mac: Mac;

  constructor(
    provider: CryptoProvider,
    keys: DirectionKeys,
    /** Source of IVs; tests pass a fixed one to compare providers and known answers. */
    private readonly randomIv: () => Buffer = () => crypto.randomBytes(BLOCK_BYTES),
    /** First sequence number (a codec taking over after the handshake's READY starts at 1). */
    startSeq = 0n,
  ) {
    this.seq = startSeq;
    this.cipher = provider.cipher(keys.enc);
    try {
      this.mac = provider.mac(keys.mac);
    } catch (err) {
      this.cipher.close();
      throw err;
    }
  }

  seal(type: FrameTypeId, payload: Buffer): Buffer {
    if (payload.length > MAX_PAYLOAD_BYTES) throw new RecordError('oversize', `message of ${payload.length} bytes exceeds ${MAX_PAYLOAD_BYTES}`);
    const iv = this.randomIv();
    if (iv.length !== BLOCK_BYTES) throw new RangeError('IV source must give 16 bytes');
    const ct = this.cipher.encrypt(iv, pkcs7Pad(payload));
    const header = encodeHeader(type, SEALED_OVERHEAD + ct.length);
    const s = seqBytes(this.seq++);
    const tag = this.mac.compute([header, s, iv, ct]);
    return Buffer.concat([header, s, iv, ct, tag]);
  }

  open(header: Buffer, body: Buffer): Buffer {
    const ctLen = body.length - SEALED_OVERHEAD;
    if (ctLen < BLOCK_BYTES || ctLen % BLOCK_BYTES !== 0) {
      throw new RecordError('malformed', `sealed record of ${body.length} bytes has no whole ciphertext blocks (is the peer using --crypto none?)`);
    }
    const s = body.subarray(0, SEQ_BYTES);
    const iv = body.subarray(SEQ_BYTES, SEQ_BYTES + BLOCK_BYTES);
    const ct = body.subarray(SEQ_BYTES + BLOCK_BYTES, SEQ_BYTES + BLOCK_BYTES + ctLen);
    const tag = body.subarray(body.length - MAC_BYTES);
    const want = this.mac.compute([header.subarray(0, HEADER_BYTES), s, iv, ct]);
    if (!crypto.timingSafeEqual(want, tag)) throw new RecordError('auth', 'authentication failed (wrong key, or the frame was altered)');
    const seq = s.readBigUInt64BE(0);
    if (seq !== this.seq) throw new RecordError('replay', `replayed or reordered frame (sequence ${seq}, expected ${this.seq})`);
    this.seq++;
    return pkcs7Unpad(this.cipher.decrypt(Buffer.from(iv), ct));
  }

  close(): void {
    this.cipher.close();
    this.mac.close();
  }
}
