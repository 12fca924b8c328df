/**
 * Requests laid out like Linux 6.1's virtio_crypto driver does (the harness front-end's guest
 * side): an indirect table [header, iv, (aad), src, dst, (hash), status] in one slot of guest
 * memory, the legacy 72-byte header, and reading the result back. Pure memory layout: putting the
 * table's descriptor on the ring is the front-end's (frontend.ts).
 */
import * as S from '../crypto/spec';
import { VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE } from '../virtio/virtqueue';

export interface CipherRequestSpec {
  readonly opcode: number;
  readonly sessionId: bigint;
  readonly iv: Uint8Array;
  readonly src: Uint8Array;
  /** Defaults to src.length. */
  readonly dstLen?: number;
  /** Algorithm chaining fields (op_type CHAIN). */
  readonly chain?: ChainRequestFields;
  /** Adversarial tests: u32 header fields written last, [offset in the 72-byte header, value]. */
  readonly override?: readonly (readonly [number, number])[];
  /** Splits src and dst each into two descriptors at this byte (ranges spanning descriptors). */
  readonly splitAt?: number;
}

export interface ChainRequestFields {
  readonly aad: Uint8Array;
  readonly cipherStart: number;
  readonly lenToCipher: number;
  readonly hashStart: number;
  readonly lenToHash: number;
  readonly hashResultLen: number;
}

export interface CipherResult {
  readonly status: number;
  readonly dst: Buffer;
  readonly hash: Buffer;
  readonly usedLen: number;
}

/** Where a posted request's writable parts are (guest-physical addresses in the harness memory). */
export interface RequestLayout {
  readonly dstGpa: number;
  readonly hashGpa: number;
  readonly statusGpa: number;
  readonly dstLen: number;
  readonly hashLen: number;
}

/** Bytes one request slot needs for a given payload size. */
export function slotBytes(maxData: number): number {
  return align(16 * 10 + 72 + 16 + 64 * 1024 + 2 * maxData + 64 + 16, 64);
}

/** One 16-byte descriptor at index `i` of the table at `tableGpa` (§2.7.5). */
export function writeDesc(view: DataView, tableGpa: number, i: number, addr: bigint | number, len: number, flags: number, next: number): void {
  const o = tableGpa + 16 * i;
  view.setBigUint64(o, BigInt(addr), true);
  view.setUint32(o + 8, len >>> 0, true);
  view.setUint16(o + 12, flags, true);
  view.setUint16(o + 14, next, true);
}

/**
 * Lays out one cipher/chain request in slot memory at `slotGpa` (`mem` and `view` over the same guest
 * memory): the indirect table at the start of the slot, the parts after it. Returns the GPAs of the writable parts and the table's length.
 */
export function layOutRequest(mem: Uint8Array, view: DataView, slotGpa: number, req: CipherRequestSpec, opts: { clearDst?: boolean } = {}): { layout: RequestLayout; tableBytes: number } {
  const table = slotGpa;
  let p = slotGpa + 16 * 10;
  const hdrGpa = p;
  mem.fill(0, hdrGpa, hdrGpa + 72);
  view.setUint32(hdrGpa + S.HDR_OPCODE, req.opcode, true);
  view.setBigUint64(hdrGpa + S.HDR_SESSION_ID, req.sessionId, true);
  const dstLen = req.dstLen ?? req.src.length;
  view.setUint32(hdrGpa + S.SYM_IV_LEN, req.iv.length, true);
  view.setUint32(hdrGpa + S.SYM_SRC_LEN, req.src.length, true);
  view.setUint32(hdrGpa + S.SYM_DST_LEN, dstLen, true);
  const c = req.chain;
  if (c) {
    view.setUint32(hdrGpa + S.CHAIN_CIPHER_START, c.cipherStart, true);
    view.setUint32(hdrGpa + S.CHAIN_LEN_TO_CIPHER, c.lenToCipher, true);
    view.setUint32(hdrGpa + S.CHAIN_HASH_START, c.hashStart, true);
    view.setUint32(hdrGpa + S.CHAIN_LEN_TO_HASH, c.lenToHash, true);
    view.setUint32(hdrGpa + S.CHAIN_AAD_LEN, c.aad.length, true);
    view.setUint32(hdrGpa + S.CHAIN_HASH_RESULT_LEN, c.hashResultLen, true);
  }
  view.setUint32(hdrGpa + S.SYM_OP_TYPE, c ? S.VIRTIO_CRYPTO_SYM_OP_ALGORITHM_CHAINING : S.VIRTIO_CRYPTO_SYM_OP_CIPHER, true);
  for (const [at, value] of req.override ?? []) view.setUint32(hdrGpa + at, value >>> 0, true);
  p += 72;
  const parts: [number, number, number][] = [[hdrGpa, 72, 0]];
  // One descriptor per part, or two when a split point falls inside it.
  const pushSplit = (addr: number, len: number, flags: number): void => {
    const at = req.splitAt;
    if (at !== undefined && at > 0 && at < len) {
      parts.push([addr, at, flags], [addr + at, len - at, flags]);
    } else parts.push([addr, len, flags]);
  };
  const put = (data: Uint8Array, split = false): void => {
    if (data.length === 0) return;
    mem.set(data, p);
    if (split) pushSplit(p, data.length, 0);
    else parts.push([p, data.length, 0]);
    p += data.length;
  };
  put(req.iv);
  if (c) put(c.aad);
  put(req.src, true);
  const dstGpa = p;
  // A fresh output buffer: tests can tell what the back-end wrote.
  if (opts.clearDst !== false) mem.fill(0, dstGpa, dstGpa + dstLen + (req.chain ? req.chain.hashResultLen : 0));
  if (dstLen > 0) pushSplit(dstGpa, dstLen, VIRTQ_DESC_F_WRITE);
  p += dstLen;
  const hashLen = c ? c.hashResultLen : 0;
  const hashGpa = p;
  if (hashLen > 0) parts.push([hashGpa, hashLen, VIRTQ_DESC_F_WRITE]);
  p += hashLen;
  const statusGpa = p;
  mem[statusGpa] = 0xee;
  parts.push([statusGpa, 1, VIRTQ_DESC_F_WRITE]);
  parts.forEach(([addr, len, flags], i) => writeDesc(view, table, i, addr, len, flags | (i < parts.length - 1 ? VIRTQ_DESC_F_NEXT : 0), i + 1));
  return { layout: { dstGpa, hashGpa, statusGpa, dstLen, hashLen }, tableBytes: 16 * parts.length };
}

export function readResult(mem: Uint8Array, layout: RequestLayout, usedLen: number): CipherResult {
  return {
    status: mem[layout.statusGpa],
    dst: Buffer.from(mem.subarray(layout.dstGpa, layout.dstGpa + layout.dstLen)),
    hash: Buffer.from(mem.subarray(layout.hashGpa, layout.hashGpa + layout.hashLen)),
    usedLen,
  };
}

export function align(v: number, a: number): number {
  return Math.ceil(v / a) * a;
}
