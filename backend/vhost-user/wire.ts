/**
 * vhost-user wire definitions (QEMU docs/interop/vhost-user.rst): request codes spelled as in the
 * spec, header layout, feature bits and payload codecs. No I/O here; every decoder checks the exact
 * size first and returns a typed value or a {@link WireError} naming what was wrong.
 */

/** Front-end → back-end request codes (the spec's VHOST_USER_* names without the prefix). */
export enum Request {
  GET_FEATURES = 1,
  SET_FEATURES = 2,
  SET_OWNER = 3,
  RESET_OWNER = 4,
  SET_MEM_TABLE = 5,
  SET_LOG_BASE = 6,
  SET_LOG_FD = 7,
  SET_VRING_NUM = 8,
  SET_VRING_ADDR = 9,
  SET_VRING_BASE = 10,
  GET_VRING_BASE = 11,
  SET_VRING_KICK = 12,
  SET_VRING_CALL = 13,
  SET_VRING_ERR = 14,
  GET_PROTOCOL_FEATURES = 15,
  SET_PROTOCOL_FEATURES = 16,
  GET_QUEUE_NUM = 17,
  SET_VRING_ENABLE = 18,
  SEND_RARP = 19,
  NET_SET_MTU = 20,
  SET_BACKEND_REQ_FD = 21,
  IOTLB_MSG = 22,
  SET_VRING_ENDIAN = 23,
  GET_CONFIG = 24,
  SET_CONFIG = 25,
  CREATE_CRYPTO_SESSION = 26,
  CLOSE_CRYPTO_SESSION = 27,
  POSTCOPY_ADVISE = 28,
  POSTCOPY_LISTEN = 29,
  POSTCOPY_END = 30,
  GET_INFLIGHT_FD = 31,
  SET_INFLIGHT_FD = 32,
  GPU_SET_SOCKET = 33,
  RESET_DEVICE = 34,
  VRING_KICK = 35,
  GET_MAX_MEM_SLOTS = 36,
  ADD_MEM_REG = 37,
  REM_MEM_REG = 38,
  SET_STATUS = 39,
  GET_STATUS = 40,
}

export function requestName(code: number): string {
  const name = (Request as unknown as Record<number, string | undefined>)[code];
  return name ? `VHOST_USER_${name}` : `unknown request ${code}`;
}

/** Header: u32 request, u32 flags, u32 size (of the payload that follows). */
export const HEADER_SIZE = 12;
/** Flags: bits 0-1 version (must be 1), bit 2 reply, bit 3 need-reply; the rest are reserved. */
export const FLAG_VERSION_MASK = 0x3;
export const FLAG_VERSION = 0x1;
export const FLAG_REPLY = 0x4;
export const FLAG_NEED_REPLY = 0x8;
const FLAG_KNOWN = FLAG_VERSION_MASK | FLAG_REPLY | FLAG_NEED_REPLY;

/** Largest payload any request we accept can carry (the 1072-byte crypto session of QEMU ≥ 8.1). */
export const MAX_PAYLOAD = 4096;
/** VHOST_MEMORY_BASELINE_NREGIONS: SET_MEM_TABLE carries at most 8 regions (one fd each). */
export const MAX_MEM_REGIONS = 8;

/** Virtio feature bits offered in GET_FEATURES. */
export const VIRTIO_RING_F_INDIRECT_DESC = 28n;
export const VIRTIO_RING_F_EVENT_IDX = 29n;
/** VHOST_USER_F_PROTOCOL_FEATURES: without it QEMU never asks for protocol features (notes §3). */
export const VHOST_USER_F_PROTOCOL_FEATURES = 30n;
export const VIRTIO_F_VERSION_1 = 32n;

/** Protocol feature bits (VHOST_USER_PROTOCOL_F_*). CONFIG (9) is deliberately never offered. */
export enum ProtocolFeature {
  MQ = 0,
  LOG_SHMFD = 1,
  RARP = 2,
  REPLY_ACK = 3,
  MTU = 4,
  BACKEND_REQ = 5,
  CROSS_ENDIAN = 6,
  CRYPTO_SESSION = 7,
  PAGEFAULT = 8,
  CONFIG = 9,
}

export interface Header {
  readonly request: number;
  readonly flags: number;
  readonly size: number;
}

export class WireError extends Error {
  constructor(
    readonly request: number,
    message: string,
    /** Header flags of the refused message when known (a NEED_REPLY message gets a NACK). */
    readonly flags?: number,
  ) {
    super(`${requestName(request)}: ${message}`);
    this.name = 'WireError';
  }

  /** The same error, now knowing the refused message's header flags. */
  withFlags(flags: number): WireError {
    if (this.flags !== undefined) return this;
    const e = new WireError(this.request, '', flags);
    e.message = this.message;
    return e;
  }
}

/** Requests answered with their own reply: REPLY_ACK does not apply to them (spec). */
export const REQUESTS_WITH_REPLY: ReadonlySet<number> = new Set([
  Request.GET_FEATURES, Request.GET_PROTOCOL_FEATURES, Request.GET_VRING_BASE, Request.GET_QUEUE_NUM, Request.GET_CONFIG,
  Request.CREATE_CRYPTO_SESSION, Request.GET_INFLIGHT_FD, Request.GET_MAX_MEM_SLOTS, Request.GET_STATUS,
]);

export function decodeHeader(bytes: Uint8Array): Header {
  const view = new DataView(bytes.buffer, bytes.byteOffset, HEADER_SIZE);
  return { request: view.getUint32(0, true), flags: view.getUint32(4, true), size: view.getUint32(8, true) };
}

/** How many fds a request may carry: [min, max]. Everything else carries none. */
function fdRange(request: number, payload?: Uint8Array): [number, number] {
  switch (request) {
    case Request.SET_MEM_TABLE:
      return [1, MAX_MEM_REGIONS];
    case Request.SET_VRING_KICK:
    case Request.SET_VRING_CALL:
    case Request.SET_VRING_ERR: {
      // Bit 8 of the u64 payload (VHOST_USER_VRING_NOFD_MASK) says "no fd follows".
      const nofd = payload && payload.length >= 8 ? (payload[1] & 1) === 1 : false;
      return nofd ? [0, 0] : [1, 1];
    }
    default:
      return [0, 0];
  }
}

/** Syntactic checks on a header alone, before any payload is read. */
export function validateHeader(h: Header): void {
  if (!(Request as unknown as Record<number, string | undefined>)[h.request]) throw new WireError(h.request, 'unknown request code');
  if ((h.flags & FLAG_VERSION_MASK) !== FLAG_VERSION) throw new WireError(h.request, `unsupported version ${h.flags & FLAG_VERSION_MASK}`);
  if ((h.flags & ~FLAG_KNOWN) !== 0) throw new WireError(h.request, `reserved flag bits set (0x${h.flags.toString(16)})`);
  if ((h.flags & FLAG_REPLY) !== 0) throw new WireError(h.request, 'reply flag set on a request');
  if (h.size > MAX_PAYLOAD) throw new WireError(h.request, `payload size ${h.size} exceeds ${MAX_PAYLOAD}`);
}

/** Checks the fd count once the payload is known (the NOFD bit lives in it). */
export function validateFds(h: Header, payload: Uint8Array, fdCount: number): void {
  const [min, max] = fdRange(h.request, payload);
  if (fdCount < min || fdCount > max) {
    throw new WireError(h.request, `carries ${fdCount} fds, expected ${min === max ? min : `${min}..${max}`}`);
  }
}

export function encodeMessage(request: number, flags: number, payload: Uint8Array): Buffer {
  const out = Buffer.alloc(HEADER_SIZE + payload.length);
  out.writeUInt32LE(request, 0);
  out.writeUInt32LE(flags, 4);
  out.writeUInt32LE(payload.length, 8);
  out.set(payload, HEADER_SIZE);
  return out;
}

function expectSize(request: number, payload: Uint8Array, sizes: readonly number[]): DataView {
  if (!sizes.includes(payload.length)) {
    throw new WireError(request, `payload is ${payload.length} bytes, expected ${sizes.join(' or ')}`);
  }
  return new DataView(payload.buffer, payload.byteOffset, payload.length);
}

// ---- payload codecs --------------------------------------------------------------------------

export function decodeU64(request: number, payload: Uint8Array): bigint {
  return expectSize(request, payload, [8]).getBigUint64(0, true);
}

export function encodeU64(value: bigint): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(value);
  return b;
}

/** struct vhost_vring_state { unsigned int index; unsigned int num; } */
export interface VringState {
  readonly index: number;
  readonly num: number;
}

export function decodeVringState(request: number, payload: Uint8Array): VringState {
  const v = expectSize(request, payload, [8]);
  return { index: v.getUint32(0, true), num: v.getUint32(4, true) };
}

export function encodeVringState(s: VringState): Buffer {
  const b = Buffer.alloc(8);
  b.writeUInt32LE(s.index, 0);
  b.writeUInt32LE(s.num, 4);
  return b;
}

/** struct vhost_vring_addr: ring addresses in the front-end's virtual address space. */
export interface VringAddr {
  readonly index: number;
  readonly flags: number;
  readonly descUser: bigint;
  readonly usedUser: bigint;
  readonly availUser: bigint;
  readonly logGuest: bigint;
}

export function decodeVringAddr(request: number, payload: Uint8Array): VringAddr {
  const v = expectSize(request, payload, [40]);
  return {
    index: v.getUint32(0, true),
    flags: v.getUint32(4, true),
    descUser: v.getBigUint64(8, true),
    usedUser: v.getBigUint64(16, true),
    availUser: v.getBigUint64(24, true),
    logGuest: v.getBigUint64(32, true),
  };
}

export function encodeVringAddr(a: VringAddr): Buffer {
  const b = Buffer.alloc(40);
  b.writeUInt32LE(a.index, 0);
  b.writeUInt32LE(a.flags, 4);
  b.writeBigUInt64LE(a.descUser, 8);
  b.writeBigUInt64LE(a.usedUser, 16);
  b.writeBigUInt64LE(a.availUser, 24);
  b.writeBigUInt64LE(a.logGuest, 32);
  return b;
}

/** SET_VRING_KICK/CALL/ERR payload: bits 0-7 queue index, bit 8 "no fd" (polling mode). */
export interface VringFile {
  readonly index: number;
  readonly noFd: boolean;
}

export function decodeVringFile(request: number, payload: Uint8Array): VringFile {
  const value = decodeU64(request, payload);
  if ((value & ~0x1ffn) !== 0n) throw new WireError(request, `reserved bits set in 0x${value.toString(16)}`);
  return { index: Number(value & 0xffn), noFd: (value & 0x100n) !== 0n };
}

/** VhostUserMemoryRegion: guest_phys_addr, memory_size, userspace_addr, mmap_offset (all u64). */
export interface MemRegionDesc {
  readonly guestPhysAddr: bigint;
  readonly memorySize: bigint;
  readonly userspaceAddr: bigint;
  readonly mmapOffset: bigint;
}

/** VhostUserMemory: u32 nregions, u32 padding, then nregions × 32-byte regions (QEMU sends only those). */
export function decodeMemTable(request: number, payload: Uint8Array): MemRegionDesc[] {
  if (payload.length < 8) throw new WireError(request, `payload is ${payload.length} bytes, expected at least 8`);
  const view = new DataView(payload.buffer, payload.byteOffset, payload.length);
  const n = view.getUint32(0, true);
  if (n < 1 || n > MAX_MEM_REGIONS) throw new WireError(request, `nregions ${n} not in 1..${MAX_MEM_REGIONS}`);
  // QEMU sends only the used regions; the spec's full table (8 regions) is accepted too.
  if (payload.length !== 8 + n * 32 && payload.length !== 8 + MAX_MEM_REGIONS * 32) {
    throw new WireError(request, `payload is ${payload.length} bytes for ${n} regions`);
  }
  const regions: MemRegionDesc[] = [];
  for (let i = 0; i < n; i++) {
    const o = 8 + i * 32;
    regions.push({
      guestPhysAddr: view.getBigUint64(o, true),
      memorySize: view.getBigUint64(o + 8, true),
      userspaceAddr: view.getBigUint64(o + 16, true),
      mmapOffset: view.getBigUint64(o + 24, true),
    });
  }
  return regions;
}

export function encodeMemTable(regions: readonly MemRegionDesc[]): Buffer {
  const b = Buffer.alloc(8 + regions.length * 32);
  b.writeUInt32LE(regions.length, 0);
  regions.forEach((r, i) => {
    const o = 8 + i * 32;
    b.writeBigUInt64LE(r.guestPhysAddr, o);
    b.writeBigUInt64LE(r.memorySize, o + 8);
    b.writeBigUInt64LE(r.userspaceAddr, o + 16);
    b.writeBigUInt64LE(r.mmapOffset, o + 24);
  });
  return b;
}

// ---- crypto sessions (VHOST_USER_CREATE_CRYPTO_SESSION) ----------------------------------------

/** QEMU 7.x VhostUserCryptoSession: i64 session_id @0, sym info @8, key[64] @56, auth_key[512] @120. */
export const CRYPTO_SESSION_SIZE_V7 = 632;
/** QEMU ≥ 8.1: u64 op_code @0, union (sym info @8, key @56, auth_key @120 | asym) , i64 session_id @1064. */
export const CRYPTO_SESSION_SIZE_V81 = 1072;
export const MAX_CIPHER_KEY = 64;
export const MAX_AUTH_KEY = 512;

/** CryptoDevBackendSymSessionInfo as carried on the wire (pointers dropped). */
export interface SymSessionInfo {
  readonly cipherAlg: number;
  readonly keyLen: number;
  readonly hashAlg: number;
  readonly hashResultLen: number;
  readonly authKeyLen: number;
  readonly addLen: number;
  readonly opType: number;
  readonly direction: number;
  readonly hashMode: number;
  readonly algChainOrder: number;
  /** Copies: the caller owns them and wipes them when the session closes. */
  readonly key: Buffer;
  readonly authKey: Buffer;
}

export interface CreateSessionRequest {
  readonly layout: 'qemu7' | 'qemu8.1';
  /** op_code of the ≥ 8.1 layout (virtio-crypto CREATE_SESSION opcode); undefined for 7.x. */
  readonly opCode?: number;
  readonly info: SymSessionInfo;
}

export function decodeCreateSession(request: number, payload: Uint8Array): CreateSessionRequest {
  const v = expectSize(request, payload, [CRYPTO_SESSION_SIZE_V7, CRYPTO_SESSION_SIZE_V81]);
  const layout = payload.length === CRYPTO_SESSION_SIZE_V7 ? 'qemu7' : 'qemu8.1';
  const keyLen = v.getUint32(12, true);
  const authKeyLen = v.getUint32(24, true);
  if (keyLen > MAX_CIPHER_KEY) throw new WireError(request, `key_len ${keyLen} exceeds ${MAX_CIPHER_KEY}`);
  if (authKeyLen > MAX_AUTH_KEY) throw new WireError(request, `auth_key_len ${authKeyLen} exceeds ${MAX_AUTH_KEY}`);
  const info: SymSessionInfo = {
    cipherAlg: v.getUint32(8, true),
    keyLen,
    hashAlg: v.getUint32(16, true),
    hashResultLen: v.getUint32(20, true),
    authKeyLen,
    addLen: v.getUint32(28, true),
    opType: v.getUint8(32),
    direction: v.getUint8(33),
    hashMode: v.getUint8(34),
    algChainOrder: v.getUint8(35),
    key: Buffer.from(payload.subarray(56, 56 + keyLen)),
    authKey: Buffer.from(payload.subarray(120, 120 + authKeyLen)),
  };
  return layout === 'qemu7' ? { layout, info } : { layout, opCode: Number(v.getBigUint64(0, true) & 0xffffffffn), info };
}

/** The reply is the request's own layout with session_id set (≥ 0, or −1 on failure). */
export function encodeCreateSessionReply(requestPayload: Uint8Array, sessionId: bigint): Buffer {
  const out = Buffer.from(requestPayload);
  const at = out.length === CRYPTO_SESSION_SIZE_V7 ? 0 : 1064;
  out.writeBigInt64LE(sessionId, at);
  // Keys do not travel back.
  out.fill(0, 56, 56 + MAX_CIPHER_KEY + MAX_AUTH_KEY);
  return out;
}

/** Builds a request payload (used by the test frontend). */
export function encodeCreateSession(layout: 'qemu7' | 'qemu8.1', info: Omit<SymSessionInfo, 'keyLen' | 'authKeyLen'>, opCode = 0x02): Buffer {
  const out = Buffer.alloc(layout === 'qemu7' ? CRYPTO_SESSION_SIZE_V7 : CRYPTO_SESSION_SIZE_V81);
  if (layout === 'qemu8.1') out.writeBigUInt64LE(BigInt(opCode), 0);
  out.writeUInt32LE(info.cipherAlg, 8);
  out.writeUInt32LE(info.key.length, 12);
  out.writeUInt32LE(info.hashAlg, 16);
  out.writeUInt32LE(info.hashResultLen, 20);
  out.writeUInt32LE(info.authKey.length, 24);
  out.writeUInt32LE(info.addLen, 28);
  out.writeUInt8(info.opType, 32);
  out.writeUInt8(info.direction, 33);
  out.writeUInt8(info.hashMode, 34);
  out.writeUInt8(info.algChainOrder, 35);
  info.key.copy(out, 56);
  info.authKey.copy(out, 120);
  return out;
}

export function decodeCreateSessionReplyId(payload: Uint8Array): bigint {
  const v = new DataView(payload.buffer, payload.byteOffset, payload.length);
  return v.getBigInt64(payload.length === CRYPTO_SESSION_SIZE_V7 ? 0 : 1064, true);
}
