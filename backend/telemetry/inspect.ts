/**
 * Telemetry's view of a live split virtqueue, built only when a client asks (never on the data
 * path): the state of every descriptor slot as a string, and one head's chain decoded (each
 * descriptor, the virtio-crypto header, IV, the first bytes of source and destination, the status).
 * Everything here reads guest-controlled memory: every walk is bounded by the queue size, every
 * length is capped before it is read, and a read outside guest memory ends the walk with an error.
 */
import * as S from '../crypto/spec';
import { type GuestMemory, gpa } from '../virtio/memory';
import {
  PREVIEW_BYTES, SLOT_CHAR,
  type AvailRingHeader, type ChainDescriptor, type ChainDetail, type DecodedHeader, type RecentRequest, type SessionSummary, type SlotState,
} from './schema';
import { HeadState, type RawDescriptor, type SplitQueue, VIRTQ_DESC_F_INDIRECT, VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE } from '../virtio/virtqueue';

/** Descriptors listed per chain; a longer chain is summarised by its lengths. */
const MAX_LISTED = 64;
/** Bytes read from the readable part: header + IV + AAD window + preview. */
const MAX_READ = S.DATA_REQ_HEADER_SIZE + S.MAX_IV_LEN + 64 + PREVIEW_BYTES;

/**
 * The avail ring header (le16 flags, le16 idx; virtio 1.2 §2.7.6) at guest-physical `addr`, as the
 * guest wrote it now. Used for a ring the backend does not serve (the control queue, which QEMU
 * services): `addr` comes from QMP, is checked to be 2-byte aligned and wholly inside guest memory.
 */
export function availRingHeader(memory: GuestMemory | undefined, addr: number): AvailRingHeader | { type: 'error'; message: string } {
  if (!memory) return { type: 'error', message: 'no guest memory mapped yet' };
  if (!Number.isSafeInteger(addr) || addr < 0 || addr % 2 !== 0) return { type: 'error', message: `avail ring address ${addr} is not an even guest-physical address` };
  const bytes = memory.rangeAtGpa(gpa(BigInt(addr)), 4);
  if (!bytes) return { type: 'error', message: `avail ring address 0x${addr.toString(16)} is outside guest memory` };
  const b = new Uint8Array(4);
  let k = 0;
  for (const seg of bytes) for (const x of seg) b[k++] = x;
  return { type: 'avail', addr, flags: b[0]! | (b[1]! << 8), idx: b[2]! | (b[3]! << 8) };
}

export function flagText(flags: number): string {
  return `${flags & VIRTQ_DESC_F_NEXT ? 'N' : ''}${flags & VIRTQ_DESC_F_WRITE ? 'W' : ''}${flags & VIRTQ_DESC_F_INDIRECT ? 'I' : ''}`;
}

let slotDescriptorReads = 0;

/** Descriptors read by slotStates() so far in this process (tests check the work is linear in the queue size). */
export function slotStateDescriptorReads(): number {
  return slotDescriptorReads;
}

/**
 * Marks a direct chain from `head` (NEXT links in the ring's table), stopping at a slot this window
 * already marked: the walk from there is the one already done (the links are the same), so each slot
 * is read at most once per window, whatever cycles or shared tails the guest wrote.
 */
function markChain(q: SplitQueue, out: string[], seen: Uint8Array, head: number, ch: string): void {
  let i = head;
  while (!seen[i]) {
    seen[i] = 1;
    out[i] = ch;
    slotDescriptorReads++;
    const d = q.readDescriptor(i);
    if (d.flags & VIRTQ_DESC_F_INDIRECT || !(d.flags & VIRTQ_DESC_F_NEXT) || d.next >= q.size) return;
    i = d.next;
  }
}

/**
 * One SLOT_CHAR per slot. Posted: the avail entries in [last_avail_idx, avail->idx). Held: heads
 * the device took and has not returned. Returned: the used entries in [used_event, used->idx) — the
 * driver writes used_event = its last_used_idx while it wants interrupts (EVENT_IDX), so these are
 * the chains it has not reclaimed yet. Windows longer than the queue (a driver with interrupts off
 * writes 0 there) are not trusted and show nothing. Work is linear in the queue size: each window
 * reads every descriptor at most once (at most 2 × size descriptor reads per call).
 */
export function slotStates(q: SplitQueue): string {
  const out = new Array<string>(q.size).fill(SLOT_CHAR.free);
  const usedIdx = q.usedIdx;
  const returned = (usedIdx - q.usedEvent()) & 0xffff;
  if (returned <= q.size) {
    const seen = new Uint8Array(q.size);
    for (let k = 0; k < returned; k++) markChain(q, out, seen, q.usedEntry((usedIdx - 1 - k) & 0xffff) % q.size, SLOT_CHAR.returned);
  }
  const availIdx = q.availIdx();
  const posted = (availIdx - q.lastAvailIdx) & 0xffff;
  if (posted <= q.size) {
    const seen = new Uint8Array(q.size);
    for (let k = 0; k < posted; k++) markChain(q, out, seen, q.availEntry((q.lastAvailIdx + k) & 0xffff) % q.size, SLOT_CHAR.posted);
  }
  for (let i = 0; i < q.size; i++) if (q.slots[i] === HeadState.InFlight) out[i] = SLOT_CHAR.device;
  return out.join('');
}

interface Segment { addr: bigint; len: number }

/** Copies up to `max` bytes starting `offset` bytes into the segment list; undefined if memory is missing. */
function gather(memory: GuestMemory, segs: readonly Segment[], offset: number, max: number): Uint8Array | undefined {
  const out: number[] = [];
  let skip = offset;
  for (const s of segs) {
    if (out.length >= max) break;
    if (skip >= s.len) {
      skip -= s.len;
      continue;
    }
    const n = Math.min(s.len - skip, max - out.length);
    const bytes = memory.atGpa(gpa(s.addr + BigInt(skip)), n);
    if (!bytes) return undefined;
    for (const b of bytes) out.push(b);
    skip = 0;
  }
  return Uint8Array.from(out);
}

const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');

function emptyDetail(queue: number, head: number, state: SlotState, request: RecentRequest | null): ChainDetail {
  return {
    type: 'chain', queue, head, state, descriptors: [], readableLength: 0, writableLength: 0, header: null, iv: null,
    srcPreview: null, dstPreview: null, status: null, request, match: 'unknown', rejected: request?.rejected ?? null, fault: request?.fault ?? null, error: null,
  };
}

export function stateAt(slots: string, head: number): SlotState {
  const ch = slots[head];
  return ch === SLOT_CHAR.posted ? 'posted' : ch === SLOT_CHAR.device ? 'device' : ch === SLOT_CHAR.returned ? 'returned' : 'free';
}

/** Decodes the chain whose head is `head` as it is in guest memory now. */
export function chainDetail(q: SplitQueue, memory: GuestMemory, queueIndex: number, head: number, request: RecentRequest | null, sessions: readonly SessionSummary[]): ChainDetail {
  const state = stateAt(slotStates(q), head);
  const detail = emptyDetail(queueIndex, head, state, request);
  if (head >= q.size) return { ...detail, error: `head ${head} is outside a queue of ${q.size}` };
  const readable: Segment[] = [];
  const writable: Segment[] = [];
  const descriptors: ChainDescriptor[] = [];
  let readableLength = 0;
  let writableLength = 0;
  let read: (i: number) => RawDescriptor = (i) => q.readDescriptor(i);
  let table: ChainDescriptor['table'] = 'ring';
  let tableSize = q.size;
  let i = head;
  let error: string | null = null;
  for (let steps = 0; ; steps++) {
    if (steps > q.size) {
      error = `chain longer than the queue size ${q.size} (loop?)`;
      break;
    }
    const d = read(i);
    if (descriptors.length < MAX_LISTED) descriptors.push({ table, i, addr: `0x${d.addr.toString(16)}`, len: d.len, flags: flagText(d.flags), next: d.next });
    if (d.flags & VIRTQ_DESC_F_INDIRECT) {
      if (table === 'indirect') {
        error = 'indirect descriptor inside an indirect table';
        break;
      }
      const n = Math.floor(d.len / 16);
      const bytes = n > 0 && n <= q.size ? memory.atGpa(gpa(d.addr), n * 16) : undefined;
      if (!bytes) {
        error = `indirect table at 0x${d.addr.toString(16)}+${d.len} is not readable guest memory`;
        break;
      }
      const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      read = (k) => ({ addr: view.getBigUint64(k * 16, true), len: view.getUint32(k * 16 + 8, true), flags: view.getUint16(k * 16 + 12, true), next: view.getUint16(k * 16 + 14, true) });
      table = 'indirect';
      tableSize = n;
      i = 0;
      continue;
    }
    if (d.len > 0) {
      (d.flags & VIRTQ_DESC_F_WRITE ? writable : readable).push({ addr: d.addr, len: d.len });
      if (d.flags & VIRTQ_DESC_F_WRITE) writableLength += d.len;
      else readableLength += d.len;
    }
    if (!(d.flags & VIRTQ_DESC_F_NEXT)) break;
    if (d.next >= tableSize) {
      error = `next ${d.next} outside a table of ${tableSize}`;
      break;
    }
    i = d.next;
  }
  const out: ChainDetail = { ...detail, descriptors, readableLength, writableLength, error };
  if (error) return out;

  const bytes = gather(memory, readable, 0, MAX_READ);
  if (!bytes) return { ...out, error: 'a readable buffer is outside guest memory' };
  if (bytes.length >= S.DATA_REQ_HEADER_SIZE) {
    const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const sessionId = v.getBigUint64(S.HDR_SESSION_ID, true).toString();
    const opType = v.getUint32(S.SYM_OP_TYPE, true);
    const ivLen = v.getUint32(S.SYM_IV_LEN, true);
    const header: DecodedHeader = {
      opcode: S.opcodeName(v.getUint32(S.HDR_OPCODE, true)),
      algo: v.getUint32(S.HDR_ALGO, true),
      sessionId,
      algorithm: sessions.find((s) => s.id === sessionId)?.algorithm ?? null,
      flag: v.getUint32(S.HDR_FLAG, true),
      ivLen,
      srcLen: v.getUint32(S.SYM_SRC_LEN, true),
      dstLen: v.getUint32(S.SYM_DST_LEN, true),
      opType,
    };
    out.header = header;
    const iv = Math.min(ivLen, S.MAX_IV_LEN);
    out.iv = iv > 0 ? hex(bytes.subarray(S.DATA_REQ_HEADER_SIZE, S.DATA_REQ_HEADER_SIZE + iv)) : null;
    const aad = opType === S.VIRTIO_CRYPTO_SYM_OP_ALGORITHM_CHAINING ? Math.min(v.getUint32(S.CHAIN_AAD_LEN, true), 64) : 0;
    const srcAt = S.DATA_REQ_HEADER_SIZE + ivLen + aad;
    if (ivLen <= S.MAX_IV_LEN && srcAt < bytes.length) out.srcPreview = hex(bytes.subarray(srcAt, srcAt + Math.min(PREVIEW_BYTES, header.srcLen)));
    const dst = gather(memory, writable, 0, Math.min(PREVIEW_BYTES, header.dstLen, Math.max(0, writableLength - 1)));
    if (dst) out.dstPreview = hex(dst);
    if (writableLength > 0) {
      const status = gather(memory, writable, writableLength - 1, 1);
      if (status && status.length === 1) out.status = S.CryptoStatus[status[0]!] ?? String(status[0]);
    }
    if (state === 'posted') out.match = 'pending';
    else if (request && request.rejected === null) {
      const same = request.opcode === header.opcode && request.sessionId === sessionId && request.srcLen === header.srcLen && request.dstLen === header.dstLen;
      out.match = same ? 'served' : 'stale';
    }
  } else if (state === 'posted') out.match = 'pending';
  return out;
}
