/**
 * virtio-crypto device semantics (virtio 1.2 §5.9) for the data queue: sessions created/closed by
 * the front-end's vhost-user messages, and symmetric data requests in the legacy 72-byte layout.
 *
 * Request shape (§5.9.7.2, legacy): readable = header(72) | iv(iv_len) | [aad(aad_len)] | src(src_len)
 * (aad before src, the order QEMU's own virtio-crypto device reads a chain request in);
 * writable = dst(dst_len) | [hash_result(hash_result_len)] | status(1). Linux 6.1 repeats
 * scatter-gather entries, so the chain can be longer than that: we read exactly src_len bytes after
 * the header and IV, write exactly dst_len bytes from the start of the writable area and put the
 * status byte at the last writable byte (QEMU's convention). Nothing else is written.
 *
 * A failed operation is the guest's status byte; only chains we cannot answer at all (no writable
 * byte) are counted as unanswerable. A malformed request's reason (expected and found values) is
 * returned in its outcome (`badRequest`) for the log and telemetry.
 *
 * Sessions: op_type CIPHER (AES modes) and ALGORITHM_CHAINING — a cipher (or NO_CIPHER) with a
 * plain hash (hash_mode PLAIN) or an HMAC (hash_mode AUTH). The engine works on views of guest
 * memory: src is read and dst written where they are when each is contiguous; only a range that
 * spans descriptors goes through the device's scratch buffers (allocated once, reused).
 */
import { BLOCK_ALIGNED, EngineUnsupportedError, type CipherMode, type CryptoEngine, type HashAlg, IV_BYTES, MAX_DIGEST_BYTES, type PreparedCipher, type PreparedDigest, DIGEST_BYTES } from './engine';
import * as S from './spec';
import { CryptoStatus } from './spec';
import type { CreateSessionRequest, SymSessionInfo } from '../vhost-user/wire';
import type { FaultDecision } from '../faults/plan';
import type { Segment } from '../virtio/memory';
import { gatherInto, scatter, viewAt } from '../virtio/segments';
import type { Counters, SessionSummary } from '../telemetry/schema';
import { Conformance, R } from '../conformance/oracle';

const MODES: Readonly<Record<number, CipherMode>> = {
  [S.VIRTIO_CRYPTO_CIPHER_AES_CBC]: 'cbc',
  [S.VIRTIO_CRYPTO_CIPHER_AES_CTR]: 'ctr',
  [S.VIRTIO_CRYPTO_CIPHER_AES_ECB]: 'ecb',
  [S.VIRTIO_CRYPTO_CIPHER_AES_XTS]: 'xts',
};
/** hash_mode PLAIN: hash_alg is a VIRTIO_CRYPTO_HASH_* number. */
const HASHES: Readonly<Record<number, HashAlg>> = {
  [S.VIRTIO_CRYPTO_HASH_MD5]: 'md5',
  [S.VIRTIO_CRYPTO_HASH_SHA1]: 'sha1',
  [S.VIRTIO_CRYPTO_HASH_SHA_224]: 'sha224',
  [S.VIRTIO_CRYPTO_HASH_SHA_256]: 'sha256',
  [S.VIRTIO_CRYPTO_HASH_SHA_384]: 'sha384',
  [S.VIRTIO_CRYPTO_HASH_SHA_512]: 'sha512',
};
/** hash_mode AUTH: hash_alg is a VIRTIO_CRYPTO_MAC_* number. */
const HMACS: Readonly<Record<number, HashAlg>> = {
  [S.VIRTIO_CRYPTO_MAC_HMAC_MD5]: 'md5',
  [S.VIRTIO_CRYPTO_MAC_HMAC_SHA1]: 'sha1',
  [S.VIRTIO_CRYPTO_MAC_HMAC_SHA_224]: 'sha224',
  [S.VIRTIO_CRYPTO_MAC_HMAC_SHA_256]: 'sha256',
  [S.VIRTIO_CRYPTO_MAC_HMAC_SHA_384]: 'sha384',
  [S.VIRTIO_CRYPTO_MAC_HMAC_SHA_512]: 'sha512',
};

export interface ChainParams {
  readonly hash: HashAlg;
  /** PLAIN (hash) or AUTH (HMAC). */
  readonly hashMode: number;
  /** HASH_THEN_CIPHER: the digest covers the input; CIPHER_THEN_HASH: the output. */
  readonly order: number;
  /** Bytes of digest the guest gets (the session's hash_result_len; may truncate). */
  readonly resultLen: number;
}

export interface CryptoSession {
  readonly id: bigint;
  /** null: VIRTIO_CRYPTO_NO_CIPHER (a hash/HMAC-only chain session). */
  readonly mode: CipherMode | null;
  readonly keyBits: number;
  readonly opType: number;
  readonly direction: number;
  readonly chain?: ChainParams;
  readonly createdAtMs: number;
  requests: number;
  cipher: PreparedCipher | null;
  digest?: PreparedDigest;
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
  /** Why a malformed request was refused (status ERR, nothing processed), e.g. "iv_len 8, mode needs 16"; else null. */
  readonly badRequest: string | null;
}

/** Open sessions per front-end; CREATE_CRYPTO_SESSION past it is refused (reply −1). */
export const MAX_SESSIONS = 1024;

/** Fault injection hook: asked once per decodable request (backend/faults/plan.ts). */
export type FaultGate = (opcode: number, sessionId: bigint) => FaultDecision | null;

/** A request the device cannot make sense of (answered ERR): what was expected and found, the rule it broke (conformance/rules.ts). */
class BadRequest extends Error {
  constructor(readonly rule: number, message: string, readonly counted = false) {
    super(message);
  }
}

const EMPTY = new Uint8Array(0);

/** The chain holds `len` bytes at `offset` (else the request is refused): copies them into `into`. */
function gather<T extends Uint8Array>(segs: readonly Segment[], offset: number, len: number, into: T): T {
  if (!gatherInto(segs, offset, len, into)) throw new BadRequest(R.CryptoReadableLength, `need ${len} bytes at ${offset}, chain has fewer`);
  return into;
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

function hashName(chain: ChainParams): string {
  const h = chain.hash === 'md5' ? 'MD5' : chain.hash === 'sha1' ? 'SHA1' : `SHA-${chain.hash.slice(3)}`;
  return chain.hashMode === S.VIRTIO_CRYPTO_SYM_HASH_MODE_AUTH ? `HMAC-${h}` : h;
}

/** e.g. "AES-256-CBC", "AES-128-CBC + HMAC-SHA-256 (hash then cipher)", "SHA-256". */
function algorithmName(s: CryptoSession): string {
  const cipher = s.mode ? `AES-${s.keyBits}-${s.mode.toUpperCase()}` : '';
  if (!s.chain) return cipher;
  if (!s.mode) return hashName(s.chain);
  return `${cipher} + ${hashName(s.chain)} (${s.chain.order === S.VIRTIO_CRYPTO_SYM_ALG_CHAIN_ORDER_HASH_THEN_CIPHER ? 'hash then cipher' : 'cipher then hash'})`;
}

function writeStatus(writable: readonly Segment[], status: number): void {
  const last = writable[writable.length - 1];
  last[last.length - 1] = status;
}

export class CryptoDevice {
  private readonly sessions = new Map<bigint, CryptoSession>();
  private nextSessionId = 1n;
  private readonly started = performance.now();
  /** The request header, copied once per request (never a view of guest memory). */
  private readonly hdr = Buffer.alloc(S.DATA_REQ_HEADER_SIZE);
  /** Scratch for ranges that span descriptors, grown on demand up to MAX_DATA_LEN and reused. */
  private readonly scratch: Record<'iv' | 'aad' | 'src' | 'dst' | 'hash', Uint8Array> = {
    iv: new Uint8Array(S.MAX_IV_LEN), aad: EMPTY, src: EMPTY, dst: EMPTY, hash: new Uint8Array(MAX_DIGEST_BYTES),
  };
  /** Digest input lists, reused (no array per request). */
  private readonly parts1: Uint8Array[] = [EMPTY];
  private readonly parts2: Uint8Array[] = [EMPTY, EMPTY];

  constructor(
    readonly engine: CryptoEngine,
    private readonly counters: Counters,
    private readonly log: (line: string) => void = () => undefined,
    /** The conformance oracle: told of every request it refuses and every unknown session. */
    private readonly conformance: Conformance = Conformance.detached(),
  ) {}

  // ---- sessions (VHOST_USER_CREATE/CLOSE_CRYPTO_SESSION) ----------------------------------------

  createSession(req: CreateSessionRequest): CreateSessionResult {
    try {
      const result = this.tryCreate(req);
      if (result.ok) this.counters.sessionsCreated++;
      else this.counters.sessionCreateFailures++;
      return result;
    } finally {
      // The decoder's copies are the only key bytes on our side; the engine took its own key
      // object (engine.ts contract), so they are wiped now, whatever the outcome.
      req.info.key.fill(0);
      req.info.authKey.fill(0);
    }
  }

  private tryCreate(req: CreateSessionRequest): CreateSessionResult {
    if (this.sessions.size >= MAX_SESSIONS) {
      this.counters.sessionsRefusedAtLimit++;
      return { ok: false, reason: `limit of ${MAX_SESSIONS} open sessions reached` };
    }
    if (req.opCode !== undefined && req.opCode !== S.VIRTIO_CRYPTO_CIPHER_CREATE_SESSION) {
      return { ok: false, reason: `op_code 0x${req.opCode.toString(16)} is not CIPHER_CREATE_SESSION` };
    }
    const info: SymSessionInfo = req.info;
    if (info.opType !== S.VIRTIO_CRYPTO_SYM_OP_CIPHER && info.opType !== S.VIRTIO_CRYPTO_SYM_OP_ALGORITHM_CHAINING) {
      return { ok: false, reason: `sym op_type ${info.opType} not supported` };
    }
    const chaining = info.opType === S.VIRTIO_CRYPTO_SYM_OP_ALGORITHM_CHAINING;
    // NO_CIPHER only makes sense in a chain (a hash/HMAC-only session); it takes no key.
    const noCipher = chaining && info.cipherAlg === S.VIRTIO_CRYPTO_NO_CIPHER;
    const mode = noCipher ? null : MODES[info.cipherAlg];
    if (mode === undefined) return { ok: false, reason: `cipher algorithm ${info.cipherAlg} not supported` };
    if (noCipher && info.keyLen !== 0) return { ok: false, reason: `NO_CIPHER with a ${info.keyLen}-byte cipher key` };
    let chain: ChainParams | undefined;
    if (chaining) {
      const table = info.hashMode === S.VIRTIO_CRYPTO_SYM_HASH_MODE_PLAIN ? HASHES : info.hashMode === S.VIRTIO_CRYPTO_SYM_HASH_MODE_AUTH ? HMACS : undefined;
      if (!table) return { ok: false, reason: `hash mode ${info.hashMode} not supported (PLAIN and AUTH are)` };
      const hash = table[info.hashAlg];
      if (!hash) return { ok: false, reason: `${info.hashMode === S.VIRTIO_CRYPTO_SYM_HASH_MODE_PLAIN ? 'hash' : 'MAC'} algorithm ${info.hashAlg} not supported` };
      if (info.hashMode === S.VIRTIO_CRYPTO_SYM_HASH_MODE_PLAIN && info.authKeyLen !== 0) return { ok: false, reason: 'a plain hash takes no auth key' };
      // With a cipher the order says what the digest covers; without one, input and output are the same bytes.
      const orderKnown = info.algChainOrder === S.VIRTIO_CRYPTO_SYM_ALG_CHAIN_ORDER_HASH_THEN_CIPHER || info.algChainOrder === S.VIRTIO_CRYPTO_SYM_ALG_CHAIN_ORDER_CIPHER_THEN_HASH;
      if (!orderKnown && !noCipher) return { ok: false, reason: `chain order ${info.algChainOrder} unknown` };
      if (info.hashResultLen < 1 || info.hashResultLen > DIGEST_BYTES[hash]) return { ok: false, reason: `hash_result_len ${info.hashResultLen} not in 1..${DIGEST_BYTES[hash]}` };
      chain = { hash, hashMode: info.hashMode, order: orderKnown ? info.algChainOrder : S.VIRTIO_CRYPTO_SYM_ALG_CHAIN_ORDER_HASH_THEN_CIPHER, resultLen: info.hashResultLen };
    }
    let cipher: PreparedCipher | null = null;
    let digest: PreparedDigest | undefined;
    try {
      // No copies: the engine keeps what it needs, createSession wipes these buffers afterwards.
      if (mode) cipher = this.engine.prepareCipher(mode, info.key);
      if (chain) digest = this.engine.prepareDigest(chain.hash, chain.hashMode === S.VIRTIO_CRYPTO_SYM_HASH_MODE_AUTH ? info.authKey : null);
    } catch (err) {
      cipher?.dispose();
      if (err instanceof EngineUnsupportedError) return { ok: false, reason: err.message };
      throw err;
    }
    const id = this.nextSessionId++;
    this.sessions.set(id, {
      id, mode, keyBits: mode ? (mode === 'xts' ? info.keyLen / 2 : info.keyLen) * 8 : 0, opType: info.opType, direction: info.direction, chain,
      createdAtMs: performance.now() - this.started, requests: 0, cipher, digest,
    });
    return { ok: true, id };
  }

  /** Returns false if the id is unknown. The engine forgets the keys now. */
  closeSession(id: bigint): boolean {
    const s = this.sessions.get(id);
    if (!s) return this.conformance.unknownClose(id, id < this.nextSessionId);
    this.sessions.delete(id);
    s.cipher?.dispose();
    s.digest?.dispose();
    this.counters.sessionsClosed++;
    return true;
  }

  closeAll(): void {
    for (const id of [...this.sessions.keys()]) this.closeSession(id);
  }

  sessionSummaries(): SessionSummary[] {
    return [...this.sessions.values()].map((s) => ({
      id: s.id.toString(),
      algorithm: algorithmName(s),
      direction: s.direction === S.VIRTIO_CRYPTO_OP_ENCRYPT ? 'encrypt' : s.direction === S.VIRTIO_CRYPTO_OP_DECRYPT ? 'decrypt' : 'unknown',
      requests: s.requests,
      createdAtMs: Math.round(s.createdAtMs),
    }));
  }

  // ---- data requests ------------------------------------------------------------------------

  /**
   * Serves one chain. status −1: no writable byte, nothing could be written. With a fault gate, a
   * firing stall rule returns `fault.stall` having touched nothing (the caller puts the chain back).
   * `violation` (strict mode): the ring rule the chain broke; it is answered ERR, not served.
   */
  handle(readable: readonly Segment[], readableLength: number, writable: readonly Segment[], writableLength: number, gate?: FaultGate, violation = 0): RequestOutcome {
    if (writableLength < 1) {
      this.counters.unanswerable++;
      this.conformance.refusal(R.CryptoStatusRoom, 'the chain has no device-writable byte for the status', false);
      return { written: 0, status: -1, opcode: 0, sessionId: 0n, srcLen: 0, dstLen: 0, fault: null, badRequest: null };
    }
    let fault: FaultDecision | null = null;
    let opcode = 0;
    let sessionId = 0n;
    let srcLen = 0;
    let dstLen = 0;
    let status: CryptoStatus;
    let written = 1;
    let badRequest: string | null = null;
    try {
      // §5.9.7.3: the request starts with the fixed-size header; without it nothing can be decoded.
      if (readableLength < S.DATA_REQ_HEADER_SIZE) throw new BadRequest(R.CryptoHeader, `readable part is ${readableLength} bytes, header needs ${S.DATA_REQ_HEADER_SIZE}`);
      // One copy of the header, parsed from here on: a racing guest cannot make what is counted
      // differ from what is processed (the header lives in memory it keeps writing).
      const first = readable[0];
      const hdr = first.length === S.DATA_REQ_HEADER_SIZE ? (this.hdr.set(first, 0), this.hdr) : gather(readable, 0, S.DATA_REQ_HEADER_SIZE, this.hdr);
      opcode = hdr.readUInt32LE(S.HDR_OPCODE);
      sessionId = hdr.readBigUInt64LE(S.HDR_SESSION_ID);
      srcLen = hdr.readUInt32LE(S.SYM_SRC_LEN);
      dstLen = hdr.readUInt32LE(S.SYM_DST_LEN);
      if (violation !== 0) throw new BadRequest(violation, 'refused (--strict): the chain broke a ring rule when it was taken', true);
      // Fault injection (docs/fault-injection.md): a firing rule may answer instead of the device.
      fault = gate ? gate(opcode, sessionId) : null;
      if (fault?.stall) return { written: 0, status: -1, opcode, sessionId, srcLen, dstLen, fault, badRequest: null };
      if (fault?.status !== undefined) {
        status = fault.status;
      } else if (opcode !== S.VIRTIO_CRYPTO_CIPHER_ENCRYPT && opcode !== S.VIRTIO_CRYPTO_CIPHER_DECRYPT) {
        // HASH, MAC, AEAD and asymmetric services are not offered.
        status = CryptoStatus.NOTSUPP;
        this.conformance.opcodeRefused(opcode, sessionId, this.sessions.has(sessionId));
      } else {
        const session = this.sessions.get(sessionId);
        if (!session) {
          status = CryptoStatus.INVSESS;
          this.conformance.unknownSession(sessionId, sessionId < this.nextSessionId);
        } else {
          session.requests++;
          written = this.symRequest(session, opcode === S.VIRTIO_CRYPTO_CIPHER_ENCRYPT, hdr, readable, readableLength, writable, writableLength);
          status = CryptoStatus.OK;
        }
      }
    } catch (err) {
      // A malformed request's reason goes back to the caller (the pump logs it and telemetry shows it).
      if (err instanceof BadRequest) badRequest = this.conformance.refusal(err.rule, err.message, err.counted);
      else this.log(`crypto request failed in the engine: ${(err as Error).message}`);
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
    return { written, status, opcode, sessionId, srcLen, dstLen, fault, badRequest };
  }

  /** `len` readable bytes at `offset`: a view of guest memory when contiguous, else gathered into scratch. */
  private read(segs: readonly Segment[], offset: number, len: number, kind: 'iv' | 'aad' | 'src'): Uint8Array {
    if (len === 0) return EMPTY;
    return viewAt(segs, offset, len) ?? gather(segs, offset, len, this.scratchOf(kind, len)).subarray(0, len);
  }

  private scratchOf(kind: 'iv' | 'aad' | 'src' | 'dst' | 'hash', len: number): Uint8Array {
    let buf = this.scratch[kind];
    if (buf.length < len) {
      // Callers bounded len by MAX_DATA_LEN / MAX_AAD_LEN already.
      buf = new Uint8Array(Math.max(4096, 2 ** Math.ceil(Math.log2(len))));
      this.scratch[kind] = buf;
    }
    return buf;
  }

  private digestInto(digest: PreparedDigest, aad: Uint8Array | null, data: Uint8Array, out: Uint8Array): void {
    if (aad) {
      this.parts2[0] = aad;
      this.parts2[1] = data;
      digest.digest(this.parts2, out);
      this.parts2[0] = this.parts2[1] = EMPTY;
    } else {
      this.parts1[0] = data;
      digest.digest(this.parts1, out);
      this.parts1[0] = EMPTY;
    }
  }

  /**
   * Returns bytes written (dst + hash + status). Throws BadRequest for an inconsistent request:
   * every length and offset is checked against the session, MAX_DATA_LEN and what the chain holds
   * before a byte of data is read or written.
   */
  private symRequest(s: CryptoSession, encrypt: boolean, hdr: Buffer, readable: readonly Segment[], readableLength: number, writable: readonly Segment[], writableLength: number): number {
    const opType = hdr.readUInt32LE(S.SYM_OP_TYPE);
    if (opType !== s.opType) throw new BadRequest(R.CryptoOpType, `op_type ${opType} does not match the session's ${s.opType}`);
    const ivLen = hdr.readUInt32LE(S.SYM_IV_LEN);
    const srcLen = hdr.readUInt32LE(S.SYM_SRC_LEN);
    const dstLen = hdr.readUInt32LE(S.SYM_DST_LEN);
    const mode = s.mode;
    const wantIv = mode ? IV_BYTES[mode] : 0;
    // ECB (and NO_CIPHER) take no IV but Linux-style drivers may still send one: accept and ignore.
    if (ivLen > S.MAX_IV_LEN || (wantIv > 0 && ivLen !== wantIv)) throw new BadRequest(wantIv > 0 ? R.CryptoIvLength : R.CryptoIvLimit, `iv_len ${ivLen}, mode needs ${wantIv}`);
    const chain = s.chain;
    const aadLen = chain ? hdr.readUInt32LE(S.CHAIN_AAD_LEN) : 0;
    if (aadLen > S.MAX_AAD_LEN) throw new BadRequest(R.CryptoAadLimit, `aad_len ${aadLen} exceeds ${S.MAX_AAD_LEN}`);
    const hashLen = chain ? hdr.readUInt32LE(S.CHAIN_HASH_RESULT_LEN) : 0;
    // The advertised max_size: nothing beyond it is gathered, however many descriptors alias the same RAM.
    if (srcLen > S.MAX_DATA_LEN || dstLen > S.MAX_DATA_LEN) throw new BadRequest(R.CryptoMaxSize, `src_len ${srcLen} / dst_len ${dstLen} exceed max_size ${S.MAX_DATA_LEN}`);
    // Every length is checked against what the chain really holds before anything is read.
    if (S.DATA_REQ_HEADER_SIZE + ivLen + aadLen + srcLen > readableLength) throw new BadRequest(R.CryptoReadableLength, `iv ${ivLen} + aad ${aadLen} + src ${srcLen} exceed the readable ${readableLength - S.DATA_REQ_HEADER_SIZE} bytes`);
    if (dstLen + hashLen + 1 > writableLength) throw new BadRequest(dstLen + hashLen > writableLength ? R.CryptoWritableLength : R.CryptoStatusRoom, `dst ${dstLen} + hash ${hashLen} + status exceed the writable ${writableLength} bytes`);
    let cipherStart = 0;
    let cipherLen = srcLen;
    let hashStart = 0;
    let hashRange = 0;
    if (!chain) {
      if (dstLen !== srcLen) throw new BadRequest(R.CryptoDstLength, `dst_len ${dstLen} differs from src_len ${srcLen} for a cipher`);
      if (srcLen === 0) throw new BadRequest(R.CryptoEmptySource, 'src_len is 0');
    } else {
      cipherStart = hdr.readUInt32LE(S.CHAIN_CIPHER_START);
      cipherLen = hdr.readUInt32LE(S.CHAIN_LEN_TO_CIPHER);
      hashStart = hdr.readUInt32LE(S.CHAIN_HASH_START);
      hashRange = hdr.readUInt32LE(S.CHAIN_LEN_TO_HASH);
      if (hashLen !== chain.resultLen) throw new BadRequest(R.CryptoHashLength, `hash_result_len ${hashLen} differs from the session's ${chain.resultLen}`);
      // u32 + u32 cannot wrap in a JS number.
      if (cipherStart + cipherLen > srcLen) throw new BadRequest(R.CryptoChainRanges, `cipher range ${cipherStart}+${cipherLen} outside src_len ${srcLen}`);
      if (hashStart + hashRange > srcLen) throw new BadRequest(R.CryptoChainRanges, `hash range ${hashStart}+${hashRange} outside src_len ${srcLen}`);
      if (!mode && cipherLen !== 0) throw new BadRequest(R.CryptoNoCipherLength, `len_to_cipher ${cipherLen} on a NO_CIPHER session`);
      // dst is src with the cipher range transformed: all of it, or nothing when only a digest is wanted.
      if (cipherLen > 0 ? dstLen !== srcLen : dstLen !== 0 && dstLen !== srcLen) throw new BadRequest(R.CryptoDstLength, `dst_len ${dstLen} must be src_len ${srcLen}${cipherLen > 0 ? '' : ' or 0'}`);
    }
    if (mode && cipherLen > 0) {
      if (BLOCK_ALIGNED[mode] && cipherLen % 16 !== 0) throw new BadRequest(R.CryptoBlocks, `${chain ? 'len_to_cipher' : 'src_len'} ${cipherLen} is not a multiple of the AES block`);
      if (mode === 'xts' && cipherLen < 16) throw new BadRequest(R.CryptoBlocks, `AES-XTS needs at least 16 bytes, got ${cipherLen}`);
    }

    let off = S.DATA_REQ_HEADER_SIZE;
    const iv = wantIv > 0 ? this.read(readable, off, ivLen, 'iv') : null;
    off += ivLen;
    const aad = aadLen > 0 ? this.read(readable, off, aadLen, 'aad') : null;
    off += aadLen;
    const src = this.read(readable, off, srcLen, 'src');
    // dst straight into guest memory when it is one piece, else scratch scattered at the end.
    const dstDirect = dstLen > 0 ? viewAt(writable, 0, dstLen) : EMPTY;
    const dst = dstDirect ?? this.scratchOf('dst', dstLen).subarray(0, dstLen);
    const hashDirect = hashLen > 0 ? viewAt(writable, dstLen, hashLen) : EMPTY;
    const hashOut = hashDirect ?? this.scratch.hash.subarray(0, hashLen);

    if (!chain) {
      (s.cipher as PreparedCipher).crypt(encrypt, iv, src, dst);
    } else {
      const digest = s.digest as PreparedDigest;
      const hashThenCipher = chain.order === S.VIRTIO_CRYPTO_SYM_ALG_CHAIN_ORDER_HASH_THEN_CIPHER || cipherLen === 0;
      // Hash then cipher: the digest covers the input (cryptodev-linux's encrypt: MAC the plaintext).
      if (hashThenCipher) this.digestInto(digest, aad, src.subarray(hashStart, hashStart + hashRange), hashOut);
      if (dstLen > 0) {
        const inPlace = dst.buffer === src.buffer && dst.byteOffset === src.byteOffset;
        if (!inPlace) {
          if (cipherStart > 0) dst.set(src.subarray(0, cipherStart), 0);
          const tail = cipherStart + cipherLen;
          if (tail < srcLen) dst.set(src.subarray(tail), tail);
        }
        if (cipherLen > 0) (s.cipher as PreparedCipher).crypt(encrypt, iv, src.subarray(cipherStart, cipherStart + cipherLen), dst.subarray(cipherStart, cipherStart + cipherLen));
      }
      // Cipher then hash: the digest covers the output (cryptodev-linux's decrypt: MAC the plaintext).
      if (!hashThenCipher) this.digestInto(digest, aad, dst.subarray(hashStart, hashStart + hashRange), hashOut);
    }
    if (!dstDirect) scatter(writable, 0, dst);
    if (!hashDirect) scatter(writable, dstLen, hashOut);
    return dstLen + hashLen + 1;
  }
}
