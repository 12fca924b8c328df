/**
 * Turns one backend telemetry snapshot (backend/telemetry/schema.ts, JSON from a socket or a trace
 * file) plus the control queue's QMP status into the compact RingsFrame the webview draws. The
 * snapshot is parsed as untrusted input: every list and string is capped, a slot character that is
 * not one of the schema's states shows as free. No vscode import: unit-tested in plain Node.
 */
import { SLOT_CHAR, slotStateOf, type ChainDetail } from '../../../backend/telemetry/schema';
import type { VirtioDeviceStatus } from '../../lab/qemu/qmp-virtio';
import { MAX_QUEUES, MAX_RECENT, MAX_SLOTS, type QueueFrame, type RecentRequest, type RingsFrame } from './messages';

const MAX_TEXT = 48;
const MAX_REASON = 200;

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function int(v: unknown, fallback = 0): number {
  return typeof v === 'number' && Number.isFinite(v) ? Math.trunc(v) : fallback;
}

function u16(v: unknown): number {
  return int(v) & 0xffff;
}

function u16OrNull(v: unknown): number | null {
  return typeof v === 'number' && Number.isFinite(v) ? Math.trunc(v) & 0xffff : null;
}

function text(v: unknown, fallback = '', max = MAX_TEXT): string {
  if (typeof v === 'string') return v.slice(0, max);
  if (typeof v === 'number' && Number.isFinite(v)) return String(v);
  return fallback;
}

function slots(v: unknown, size: number): string {
  if (typeof v !== 'string') return '';
  let out = '';
  for (const ch of v.slice(0, Math.min(size, MAX_SLOTS))) out += slotStateOf(ch) ? ch : SLOT_CHAR.free;
  return out;
}

function recent(v: unknown): RecentRequest[] {
  if (!Array.isArray(v)) return [];
  return v.slice(0, MAX_RECENT).filter(isRecord).map((r) => ({
    id: Math.max(0, int(r.id)),
    head: Math.max(0, Math.min(MAX_SLOTS - 1, int(r.head))),
    opcode: text(r.opcode, '?'),
    session: text(r.sessionId, '-'),
    srcLen: Math.max(0, int(r.srcLen)),
    dstLen: Math.max(0, int(r.dstLen)),
    status: text(r.status, '?'),
    latencyUs: Math.max(0, int(r.latencyUs)),
    rejected: text(r.rejected, '', MAX_REASON),
    fault: text(r.fault, ''),
  }));
}

function backendQueue(q: Record<string, unknown>, position: number): QueueFrame {
  const size = Math.min(Math.max(0, int(q.size)), MAX_SLOTS);
  return {
    index: int(q.index, position),
    label: `dataq${int(q.index, position)}`,
    source: 'backend',
    size,
    availIdx: u16(q.availIdx),
    usedIdx: u16(q.usedIdx),
    lastAvailIdx: u16(q.lastAvailIdx),
    usedEvent: u16OrNull(q.usedEvent),
    availEvent: u16OrNull(q.availEvent),
    availFlags: u16OrNull(q.availFlags),
    usedFlags: u16OrNull(q.usedFlags),
    inFlight: Math.max(0, int(q.inFlight)),
    slots: slots(q.slots, size),
    recent: recent(q.recent),
  };
}

/** Control queue (the last queue, virtio 1.2 §5.9.2) as QEMU reports it, when QEMU services it. */
export function controlQueue(device: VirtioDeviceStatus | null | undefined): QueueFrame | undefined {
  const q = device?.queues.at(-1);
  if (!q || q.owner !== 'qemu') return undefined;
  return {
    index: q.index, label: 'controlq', source: 'qmp', size: Math.min(q.size, MAX_SLOTS),
    availIdx: q.availIdx === null ? null : q.availIdx & 0xffff, usedIdx: q.usedIdx & 0xffff,
    lastAvailIdx: (q.lastAvailIdx ?? q.usedIdx) & 0xffff,
    usedEvent: null, availEvent: null, availFlags: null, usedFlags: null,
    inFlight: q.inUse, slots: '', recent: [],
  };
}

/**
 * The control queue with the avail index the backend read from the guest's avail ring (telemetry
 * "avail" request at QMP's vring-avail address), when QEMU did not report one. A reply for another
 * address (the ring moved: driver reset) or a malformed one leaves the queue as QEMU reported it.
 */
export function withAvailRing<Q extends { availAddr: number; availIdx: number | null }>(q: Q, reply: unknown): Q {
  if (q.availIdx !== null || !isRecord(reply) || reply.type !== 'avail' || reply.addr !== q.availAddr || q.availAddr <= 0) return q;
  const idx = reply.idx;
  if (typeof idx !== 'number' || !Number.isInteger(idx) || idx < 0 || idx > 0xffff) return q;
  return { ...q, availIdx: idx };
}

export function frameFromSnapshot(snapshot: unknown, seq: number, timeMs: number, device?: VirtioDeviceStatus | null): RingsFrame {
  const s = isRecord(snapshot) ? snapshot : {};
  const engine = isRecord(s.engine) ? text(s.engine.name, '?') : '?';
  // Queues the driver has not set up yet (size 0) have nothing to draw.
  const queues = (Array.isArray(s.queues) ? s.queues : []).slice(0, MAX_QUEUES - 1).filter(isRecord).map(backendQueue).filter((q) => q.size > 0);
  const control = controlQueue(device);
  if (control && !queues.some((q) => q.index === control.index)) queues.push(control);
  const pid = int(s.pid, -1);
  const c = isRecord(s.counters) ? s.counters : {};
  return {
    seq, timeMs, engine, backendPid: pid > 0 ? pid : null,
    bytes: Math.max(0, int(c.bytesIn)) + Math.max(0, int(c.bytesOut)),
    requests: Math.max(0, int(c.requests)), kicks: Math.max(0, int(c.kicks)), interrupts: Math.max(0, int(c.interrupts)),
    queues,
  };
}

/** True when nothing the view draws changed between two frames (same indexes, slots, newest request). */
export function sameMotion(a: RingsFrame | undefined, b: RingsFrame): boolean {
  if (!a || a.requests !== b.requests || a.kicks !== b.kicks || a.interrupts !== b.interrupts || a.queues.length !== b.queues.length) return false;
  return a.queues.every((q, i) => {
    const r = b.queues[i]!;
    return q.index === r.index && q.availIdx === r.availIdx && q.usedIdx === r.usedIdx && q.lastAvailIdx === r.lastAvailIdx &&
      q.usedEvent === r.usedEvent && q.slots === r.slots && q.inFlight === r.inFlight && q.recent[0]?.id === r.recent[0]?.id;
  });
}

/** Caps a chain detail reply (from the telemetry socket) before it reaches the webview. */
export function chainFromReply(reply: unknown): ChainDetail | undefined {
  if (!isRecord(reply) || reply.type !== 'chain') return undefined;
  const str = (v: unknown, max = 64): string | null => (typeof v === 'string' ? v.slice(0, max) : null);
  const h = isRecord(reply.header) ? reply.header : null;
  const r = isRecord(reply.request) ? recent([reply.request])[0] : undefined;
  const state = slotStateOf(SLOT_CHAR[reply.state as keyof typeof SLOT_CHAR] ?? '') ?? 'free';
  const match = reply.match === 'served' || reply.match === 'stale' || reply.match === 'pending' ? reply.match : 'unknown';
  return {
    type: 'chain', queue: Math.max(0, int(reply.queue)), head: Math.max(0, int(reply.head)), state,
    descriptors: (Array.isArray(reply.descriptors) ? reply.descriptors : []).slice(0, 64).filter(isRecord).map((d) => ({
      table: d.table === 'indirect' ? 'indirect' : 'ring', i: Math.max(0, int(d.i)), addr: str(d.addr, 20) ?? '?', len: Math.max(0, int(d.len)), flags: str(d.flags, 3) ?? '', next: Math.max(0, int(d.next)),
    })),
    readableLength: Math.max(0, int(reply.readableLength)), writableLength: Math.max(0, int(reply.writableLength)),
    header: h ? {
      opcode: str(h.opcode, MAX_TEXT) ?? '?', algo: int(h.algo), sessionId: str(h.sessionId, 24) ?? '?', algorithm: str(h.algorithm, MAX_TEXT),
      flag: int(h.flag), ivLen: Math.max(0, int(h.ivLen)), srcLen: Math.max(0, int(h.srcLen)), dstLen: Math.max(0, int(h.dstLen)), opType: int(h.opType),
    } : null,
    iv: str(reply.iv), srcPreview: str(reply.srcPreview), dstPreview: str(reply.dstPreview), status: str(reply.status, 16),
    request: r ? {
      id: r.id, head: r.head, opcode: r.opcode, sessionId: r.session, srcLen: r.srcLen, dstLen: r.dstLen, status: r.status, latencyUs: r.latencyUs,
      atMs: 0, descriptors: 0, indirect: false, rejected: r.rejected || null, fault: r.fault || null,
    } : null,
    match, rejected: str(reply.rejected, MAX_REASON), fault: str(reply.fault), error: str(reply.error, MAX_REASON),
  };
}
