/**
 * virtio-crypto device semantics (virtio 1.2 §5.9) for the data queue: sessions created/closed by
 * the front-end's vhost-user messages, and symmetric data requests in the legacy 72-byte layout.
 *
 * Request shape (§5.9.7.2, legacy): readable = header(72) | iv(iv_len) | [aad(aad_len)] | src(src_len);
 * writable = dst(dst_len) | [hash_result(hash_result_len)] | status(1). Linux 6.1 repeats
 * scatter-gather entries, so the chain can be longer than that: we read exactly src_len bytes after
 * the header and IV, write exactly dst_len bytes from the start of the writable area and put the
 * status byte at the last writable byte (QEMU's convention). Nothing else is written.
 *
 * A failed operation is the guest's status byte; only chains we cannot answer at all (no writable
 * byte) are counted as unanswerable.
 */
import { EngineUnsupportedError, type CipherMode, type CryptoEngine, type HmacHash, type PreparedCipher, type PreparedMac, DIGEST_BYTES } from './engine';
import * as S from './spec';
import { CryptoStatus } from './spec';
import type { CreateSessionRequest, SymSessionInfo } from '../wire';
import type { FaultDecision } from '../faults';
import type { Segment } from '../memory';
import type { Counters } from '../stats';

const MODES: Readonly<Record<number, CipherMode>> = {
  [S.VIRTIO_CRYPTO_CIPHER_AES_CBC]: 'cbc',
  [S.VIRTIO_CRYPTO_CIPHER_AES_CTR]: 'ctr',
  [S.VIRTIO_CRYPTO_CIPHER_AES_ECB]: 'ecb',
  [S.VIRTIO_CRYPTO_CIPHER_AES_XTS]: 'xts',
};
const HMACS: Readonly<Record<number, HmacHash>> = {
  [S.VIRTIO_CRYPTO_MAC_HMAC_SHA1]: 'sha1',
  [S.VIRTIO_CRYPTO_MAC_HMAC_SHA_256]: 'sha256',
  [S.VIRTIO_CRYPTO_MAC_HMAC_SHA_512]: 'sha512',
};
const IV_LEN: Readonly<Record<CipherMode, number>> = { cbc: 16, ctr: 16, ecb: 0, xts: 16 };
const BLOCK_ALIGNED: Readonly<Record<CipherMode, boolean>> = { cbc: true, ctr: false, ecb: true, xts: false };

export interface CryptoSession {
  readonly id: bigint;
  readonly mode: CipherMode;
  readonly keyBits: number;
  readonly opType: number;
  readonly direction: number;
  readonly chain?: { readonly hash: HmacHash; readonly order: number; readonly resultLen: number };
  readonly createdAtMs: number;
  requests: number;
  cipher: PreparedCipher;
  mac?: PreparedMac;
}

export interface SessionSummary {
  readonly id: string;
  readonly algorithm: string;
  readonly direction: 'encrypt' | 'decrypt' | 'unknown';
  readonly requests: number;
  readonly createdAtMs: number;
}

export type CreateSessionResult = { readonly ok: true; readonly id: bigint } | { readonly ok: false; readonly reason: string };

export interface RequestOutcome {
  /** Bytes reported in the used ring entry. */
  readonly written: number;
  readonly status: CryptoStatus | -1;
  readonly opcode: number;
  readonly sessionId: bigint;
  readonly srcLen: number;
  readonly dstLen: number;
  /** Fault injection: the rules that fired on this request (null: none). */
  readonly fault: FaultDecision | null;
}

/** Fault injection hook: asked once per decodable request (backend/faults.ts). */
export type FaultGate = (opcode: number, sessionId: bigint) => FaultDecision | null;

class BadRequest extends Error {}

/** Copies `len` bytes starting `offset` bytes into the segment list (zero-copy when contiguous). */
export function gather(segs: readonly Segment[], offset: number, len: number): Buffer {
  let i = 0;
  let skip = offset;
  while (i < segs.length && skip >= segs[i].length) {
    skip -= segs[i].length;
    i++;
  }
  if (len === 0) return Buffer.alloc(0);
  if (i < segs.length && skip + len <= segs[i].length) {
    const s = segs[i];
    return Buffer.from(s.buffer, s.byteOffset + skip, len);
  }
  const out = Buffer.allocUnsafe(len);
  let done = 0;
  while (done < len && i < segs.length) {
    const s = segs[i];
    const n = Math.min(s.length - skip, len - done);
    out.set(s.subarray(skip, skip + n), done);
    done += n;
    skip = 0;
    i++;
  }
  if (done !== len) throw new BadRequest(`need ${len} bytes at ${offset}, chain has fewer`);
  return out;
}

/** Writes data at `offset` into the segment list; the caller checked it fits. */
export function scatter(segs: readonly Segment[], offset: number, data: Uint8Array): void {
  let i = 0;
  let skip = offset;
  while (i < segs.length && skip >= segs[i].length) {
    skip -= segs[i].length;
    i++;
  }
  let done = 0;
  while (done < data.length && i < segs.length) {
    const s = segs[i];
    const n = Math.min(s.length - skip, data.length - done);
    s.set(data.subarray(done, done + n), skip);
    done += n;
    skip = 0;
    i++;
  }
}

/** XORs the first `len` writable bytes with 0xff (the caller checked they exist). */
function flipBytes(writable: readonly Segment[], len: number): void {
  let left = len;
  for (const s of writable) {
    const n = Math.min(left, s.length);
    for (let i = 0; i < n; i++) s[i] ^= 0xff;
    left -= n;
    if (left === 0) return;
  }
}

function writeStatus(writable: readonly Segment[], status: number): void {
  const last = writable[writable.length - 1];
  last[last.length - 1] = status;
}

export class CryptoDevice {
  private readonly sessions = new Map<bigint, CryptoSession>();
  private nextSessionId = 1n;
  private readonly started = performance.now();

  constructor(
    readonly engine: CryptoEngine,
    private readonly counters: Counters,
    private readonly log: (line: string) => void = () => undefined,
  ) {}

  // ---- sessions (VHOST_USER_CREATE/CLOSE_CRYPTO_SESSION) ----------------------------------------

  createSession(req: CreateSessionRequest): CreateSessionResult {
    const result = this.tryCreate(req);
    if (result.ok) this.counters.sessionsCreated++;
    else this.counters.sessionCreateFailures++;
    // Keys were copied out of the message by the decoder; wipe our copies once used.
    req.info.key.fill(0);
    req.info.authKey.fill(0);
    return result;
  }

  private tryCreate(req: CreateSessionRequest): CreateSessionResult {
    if (req.opCode !== undefined && req.opCode !== S.VIRTIO_CRYPTO_CIPHER_CREATE_SESSION) {
      return { ok: false, reason: `op_code 0x${req.opCode.toString(16)} is not CIPHER_CREATE_SESSION` };
    }
    const info: SymSessionInfo = req.info;
    if (info.opType !== S.VIRTIO_CRYPTO_SYM_OP_CIPHER && info.opType !== S.VIRTIO_CRYPTO_SYM_OP_ALGORITHM_CHAINING) {
      return { ok: false, reason: `sym op_type ${info.opType} not supported` };
    }
    const mode = MODES[info.cipherAlg];
    if (!mode) return { ok: false, reason: `cipher algorithm ${info.cipherAlg} not supported` };
    let chain: CryptoSession['chain'];
    if (info.opType === S.VIRTIO_CRYPTO_SYM_OP_ALGORITHM_CHAINING) {
      if (info.hashMode !== S.VIRTIO_CRYPTO_SYM_HASH_MODE_AUTH) return { ok: false, reason: `hash mode ${info.hashMode} not supported (only AUTH/HMAC)` };
      const hash = HMACS[info.hashAlg];
      if (!hash) return { ok: false, reason: `MAC algorithm ${info.hashAlg} not supported` };
      if (info.algChainOrder !== S.VIRTIO_CRYPTO_SYM_ALG_CHAIN_ORDER_HASH_THEN_CIPHER && info.algChainOrder !== S.VIRTIO_CRYPTO_SYM_ALG_CHAIN_ORDER_CIPHER_THEN_HASH) {
        return { ok: false, reason: `chain order ${info.algChainOrder} unknown` };
      }
      if (info.hashResultLen < 1 || info.hashResultLen > DIGEST_BYTES[hash]) return { ok: false, reason: `hash_result_len ${info.hashResultLen} not in 1..${DIGEST_BYTES[hash]}` };
      chain = { hash, order: info.algChainOrder, resultLen: info.hashResultLen };
    }
    let cipher: PreparedCipher | undefined;
    let mac: PreparedMac | undefined;
    try {
      cipher = this.engine.prepareCipher(mode, Buffer.from(info.key));
      if (chain) mac = this.engine.prepareHmac(chain.hash, Buffer.from(info.authKey));
    } catch (err) {
      cipher?.dispose();
      if (err instanceof EngineUnsupportedError) return { ok: false, reason: err.message };
      throw err;
    }
    const id = this.nextSessionId++;
    this.sessions.set(id, {
      id, mode, keyBits: (mode === 'xts' ? info.keyLen / 2 : info.keyLen) * 8, opType: info.opType, direction: info.direction, chain,
      createdAtMs: performance.now() - this.started, requests: 0, cipher, mac,
    });
    return { ok: true, id };
  }

  /** Returns false if the id is unknown. The engine forgets the keys now. */
  closeSession(id: bigint): boolean {
    const s = this.sessions.get(id);
    if (!s) return false;
    this.sessions.delete(id);
    s.cipher.dispose();
    s.mac?.dispose();
    this.counters.sessionsClosed++;
    return true;
  }

  closeAll(): void {
    for (const id of [...this.sessions.keys()]) this.closeSession(id);
  }

  sessionSummaries(): SessionSummary[] {
    return [...this.sessions.values()].map((s) => ({
      id: s.id.toString(),
      algorithm: `AES-${s.keyBits}-${s.mode.toUpperCase()}${s.chain ? ` + HMAC-${s.chain.hash.toUpperCase()} (${s.chain.order === S.VIRTIO_CRYPTO_SYM_ALG_CHAIN_ORDER_HASH_THEN_CIPHER ? 'hash then cipher' : 'cipher then hash'})` : ''}`,
      direction: s.direction === S.VIRTIO_CRYPTO_OP_ENCRYPT ? 'encrypt' : s.direction === S.VIRTIO_CRYPTO_OP_DECRYPT ? 'decrypt' : 'unknown',
      requests: s.requests,
      createdAtMs: Math.round(s.createdAtMs),
    }));
  }

  // ---- data requests ------------------------------------------------------------------------

  /**
   * Serves one chain. status −1: no writable byte, nothing could be written. With a fault gate, a
   * firing stall rule returns `fault.stall` having touched nothing (the caller puts the chain back).
   */
  handle(readable: readonly Segment[], readableLength: number, writable: readonly Segment[], writableLength: number, gate?: FaultGate): RequestOutcome {
    if (writableLength < 1) {
      this.counters.unanswerable++;
      return { written: 0, status: -1, opcode: 0, sessionId: 0n, srcLen: 0, dstLen: 0, fault: null };
    }
    let fault: FaultDecision | null = null;
    let opcode = 0;
    let sessionId = 0n;
    let srcLen = 0;
    let dstLen = 0;
    let status: CryptoStatus;
    let written = 1;
    try {
      // §5.9.7.2: the request starts with the fixed-size header; without it nothing can be decoded.
      if (readableLength < S.DATA_REQ_HEADER_SIZE) throw new BadRequest(`readable part is ${readableLength} bytes, header needs ${S.DATA_REQ_HEADER_SIZE}`);
      const hdr = gather(readable, 0, S.DATA_REQ_HEADER_SIZE);
      opcode = hdr.readUInt32LE(S.HDR_OPCODE);
      sessionId = hdr.readBigUInt64LE(S.HDR_SESSION_ID);
      srcLen = hdr.readUInt32LE(S.SYM_SRC_LEN);
      dstLen = hdr.readUInt32LE(S.SYM_DST_LEN);
      // Fault injection (docs/fault-injection.md): a firing rule may answer instead of the device.
      fault = gate ? gate(opcode, sessionId) : null;
      if (fault?.stall) return { written: 0, status: -1, opcode, sessionId, srcLen, dstLen, fault };
      if (fault?.status !== undefined) {
        status = fault.status;
      } else if (opcode !== S.VIRTIO_CRYPTO_CIPHER_ENCRYPT && opcode !== S.VIRTIO_CRYPTO_CIPHER_DECRYPT) {
        // HASH, MAC, AEAD and asymmetric services are not offered.
        status = CryptoStatus.NOTSUPP;
      } else {
        const session = this.sessions.get(sessionId);
        if (!session) status = CryptoStatus.INVSESS;
        else {
          session.requests++;
          written = this.symRequest(session, opcode === S.VIRTIO_CRYPTO_CIPHER_ENCRYPT, hdr, readable, readableLength, writable, writableLength);
          status = CryptoStatus.OK;
        }
      }
    } catch (err) {
      if (!(err instanceof BadRequest)) this.log(`crypto request failed in the engine: ${(err as Error).message}`);
      status = CryptoStatus.ERR;
      written = 1;
    }
    // Fault injection: flip-dst inverts the output the guest gets, status stays OK.
    if (fault?.flipDst && status === CryptoStatus.OK) flipBytes(writable, dstLen);
    writeStatus(writable, status);
    switch (status) {
      case CryptoStatus.OK: this.counters.statusOk++; break;
      case CryptoStatus.BADMSG: this.counters.statusBadmsg++; break;
      case CryptoStatus.NOTSUPP: this.counters.statusNotsupp++; break;
      case CryptoStatus.INVSESS: this.counters.statusInvsess++; break;
      default: this.counters.statusErr++;
    }
    if (status === CryptoStatus.OK) {
      this.counters.bytesIn += srcLen;
      this.counters.bytesOut += dstLen;
    }
    return { written, status, opcode, sessionId, srcLen, dstLen, fault };
  }

  /** Returns bytes written (dst + hash + status). Throws BadRequest for an inconsistent request. */
  private symRequest(s: CryptoSession, encrypt: boolean, hdr: Buffer, readable: readonly Segment[], readableLength: number, writable: readonly Segment[], writableLength: number): number {
    const opType = hdr.readUInt32LE(S.SYM_OP_TYPE);
    if (opType !== s.opType) throw new BadRequest(`op_type ${opType} does not match the session's ${s.opType}`);
    const ivLen = hdr.readUInt32LE(S.SYM_IV_LEN);
    const srcLen = hdr.readUInt32LE(S.SYM_SRC_LEN);
    const dstLen = hdr.readUInt32LE(S.SYM_DST_LEN);
    const wantIv = IV_LEN[s.mode];
    // ECB takes no IV but Linux-style drivers may still send one: accept and ignore.
    if (ivLen > S.MAX_IV_LEN || (wantIv > 0 && ivLen !== wantIv)) throw new BadRequest(`iv_len ${ivLen}, mode needs ${wantIv}`);
    const aadLen = s.chain ? hdr.readUInt32LE(S.CHAIN_AAD_LEN) : 0;
    if (aadLen > S.MAX_AAD_LEN) throw new BadRequest(`aad_len ${aadLen} too large`);
    const hashLen = s.chain ? hdr.readUInt32LE(S.CHAIN_HASH_RESULT_LEN) : 0;
    // Every length is checked against what the chain really holds before anything is read.
    if (S.DATA_REQ_HEADER_SIZE + ivLen + aadLen + srcLen > readableLength) throw new BadRequest(`iv ${ivLen} + aad ${aadLen} + src ${srcLen} exceed the readable ${readableLength - S.DATA_REQ_HEADER_SIZE} bytes`);
    if (dstLen + hashLen + 1 > writableLength) throw new BadRequest(`dst ${dstLen} + hash ${hashLen} + status exceed the writable ${writableLength} bytes`);
    if (dstLen !== srcLen) throw new BadRequest(`dst_len ${dstLen} differs from src_len ${srcLen} for a cipher`);
    if (srcLen === 0) throw new BadRequest('src_len is 0');
    let off = S.DATA_REQ_HEADER_SIZE;
    const iv = wantIv > 0 ? gather(readable, off, ivLen) : null;
    off += ivLen;
    const aad = aadLen > 0 ? gather(readable, off, aadLen) : null;
    off += aadLen;
    const src = gather(readable, off, srcLen);

    if (!s.chain) {
      if (BLOCK_ALIGNED[s.mode] && srcLen % 16 !== 0) throw new BadRequest(`src_len ${srcLen} is not a multiple of the AES block`);
      scatter(writable, 0, s.cipher.crypt(encrypt, iv, src));
      return dstLen + 1;
    }

    const cipherStart = hdr.readUInt32LE(S.CHAIN_CIPHER_START);
    const cipherLen = hdr.readUInt32LE(S.CHAIN_LEN_TO_CIPHER);
    const hashStart = hdr.readUInt32LE(S.CHAIN_HASH_START);
    const hashRange = hdr.readUInt32LE(S.CHAIN_LEN_TO_HASH);
    if (cipherStart + cipherLen > srcLen || hashStart + hashRange > srcLen) throw new BadRequest('cipher/hash range outside src');
    if (hashLen < 1 || hashLen > DIGEST_BYTES[s.chain.hash]) throw new BadRequest(`hash_result_len ${hashLen}`);
    if (BLOCK_ALIGNED[s.mode] && cipherLen % 16 !== 0) throw new BadRequest(`len_to_cipher ${cipherLen} is not a multiple of the AES block`);
    const mac = s.mac;
    if (!mac) throw new Error('chain session without a MAC');
    const hashOf = (data: Buffer): Buffer => mac.compute(aad ? [aad, data.subarray(hashStart, hashStart + hashRange)] : [data.subarray(hashStart, hashStart + hashRange)]);
    // dst is src with the cipher range transformed; the MAC covers aad + the hash range of the
    // input (hash then cipher) or of the output (cipher then hash).
    const out = Buffer.from(src);
    let digest: Buffer | undefined;
    if (s.chain.order === S.VIRTIO_CRYPTO_SYM_ALG_CHAIN_ORDER_HASH_THEN_CIPHER) digest = hashOf(src);
    if (cipherLen > 0) out.set(s.cipher.crypt(encrypt, iv, src.subarray(cipherStart, cipherStart + cipherLen)), cipherStart);
    if (s.chain.order === S.VIRTIO_CRYPTO_SYM_ALG_CHAIN_ORDER_CIPHER_THEN_HASH) digest = hashOf(out);
    scatter(writable, 0, out);
    scatter(writable, dstLen, (digest as Buffer).subarray(0, hashLen));
    return dstLen + hashLen + 1;
  }
}
