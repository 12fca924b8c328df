/**
 * Maps one backend telemetry snapshot (backend/telemetry/schema.ts, read and capped by its
 * readSnapshot, from the socket or a trace file) plus the control queue's QMP status to the compact
 * RingsFrame the webview draws, within the frame's own limits (extension/vscode/rings/messages.ts:
 * MAX_SLOTS slots, MAX_RECENT requests, MAX_QUEUES queues, short labels). No vscode import:
 * unit-tested in plain Node.
 */
import type { AvailRingHeader, BackendSnapshot, QueueSnapshot, RecentRequest as SnapshotRequest, TelemetryError } from '../../../backend/telemetry/schema';
import type { VirtioDeviceStatus } from '../../lab/qemu/qmp-virtio';
import { MAX_QUEUES, MAX_RECENT, MAX_SLOTS, type QueueFrame, type RecentRequest, type RingsFrame } from './messages';

/** Characters of a label the frame carries (opcode, session, status, engine, fault). */
const FRAME_TEXT = 48;
/** Characters of a rejection reason the frame carries. */
const FRAME_REASON = 200;

function recentFrame(r: SnapshotRequest): RecentRequest {
  return {
    id: r.id, head: Math.min(r.head, MAX_SLOTS - 1), opcode: r.opcode.slice(0, FRAME_TEXT), session: r.sessionId.slice(0, FRAME_TEXT),
    srcLen: r.srcLen, dstLen: r.dstLen, status: r.status.slice(0, FRAME_TEXT), latencyUs: r.latencyUs,
    rejected: (r.rejected ?? '').slice(0, FRAME_REASON), fault: (r.fault ?? '').slice(0, FRAME_TEXT),
  };
}

function backendQueue(q: QueueSnapshot): QueueFrame {
  const size = Math.min(q.size, MAX_SLOTS);
  return {
    index: q.index, label: `dataq${q.index}`, source: 'backend', size,
    availIdx: q.availIdx ?? 0, usedIdx: q.usedIdx ?? 0, lastAvailIdx: q.lastAvailIdx ?? 0,
    usedEvent: q.usedEvent, availEvent: q.availEvent, availFlags: q.availFlags, usedFlags: q.usedFlags,
    inFlight: q.inFlight, slots: q.slots.slice(0, size), recent: q.recent.slice(0, MAX_RECENT).map(recentFrame),
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
 * address (the ring moved: driver reset), an error or no reply leaves the queue as QEMU reported it.
 */
export function withAvailRing<Q extends { availAddr: number; availIdx: number | null }>(q: Q, reply: AvailRingHeader | TelemetryError | undefined): Q {
  if (q.availIdx !== null || reply?.type !== 'avail' || reply.addr !== q.availAddr || q.availAddr <= 0) return q;
  return { ...q, availIdx: reply.idx };
}

/** The frame for a snapshot (undefined: no backend telemetry, the control queue from QMP only). */
export function frameFromSnapshot(s: BackendSnapshot | undefined, seq: number, timeMs: number, device?: VirtioDeviceStatus | null): RingsFrame {
  // Queues the driver has not set up yet (size 0) have nothing to draw.
  const queues = (s?.queues ?? []).slice(0, MAX_QUEUES - 1).map(backendQueue).filter((q) => q.size > 0);
  const control = controlQueue(device);
  if (control && !queues.some((q) => q.index === control.index)) queues.push(control);
  const c = s?.counters;
  return {
    seq, timeMs, engine: s ? s.engine.name.slice(0, FRAME_TEXT) : '?', backendPid: s && s.pid > 0 ? s.pid : null,
    bytes: c ? c.bytesIn + c.bytesOut : 0, requests: c?.requests ?? 0, kicks: c?.kicks ?? 0, interrupts: c?.interrupts ?? 0,
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
