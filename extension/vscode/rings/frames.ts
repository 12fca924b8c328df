/**
 * Turns one backend telemetry snapshot (docs/telemetry.md, JSON from a socket) plus the control
 * queue's QMP status into the compact RingsFrame the webview draws. The snapshot is parsed as
 * untrusted input: every list and string is capped, unknown slot states count as free.
 * No vscode import: unit-tested in plain Node.
 */
import type { VirtioDeviceStatus } from '../../core/qmp-virtio';
import { MAX_QUEUES, MAX_RECENT, MAX_SLOTS, SLOT_CODE, type QueueFrame, type RecentRequest, type RingsFrame, type SlotState } from './messages';

const MAX_TEXT = 48;

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function int(v: unknown, fallback = 0): number {
  return typeof v === 'number' && Number.isFinite(v) ? Math.trunc(v) : fallback;
}

function u16(v: unknown): number {
  return int(v) & 0xffff;
}

function text(v: unknown, fallback = ''): string {
  if (typeof v === 'string') return v.slice(0, MAX_TEXT);
  if (typeof v === 'number' && Number.isFinite(v)) return String(v);
  return fallback;
}

const SLOT_ALIASES: Readonly<Record<string, SlotState>> = {
  free: 'free', f: 'free', idle: 'free',
  avail: 'avail', a: 'avail', posted: 'avail', driver: 'avail', available: 'avail',
  backend: 'backend', b: 'backend', device: 'backend', inflight: 'backend', 'in-flight': 'backend', busy: 'backend',
  used: 'used', u: 'used', completed: 'used', done: 'used', rejected: 'used',
};

function slotCode(v: unknown): string {
  const state = typeof v === 'string' ? SLOT_ALIASES[v.toLowerCase()] : isRecord(v) ? SLOT_ALIASES[String(v.state ?? '').toLowerCase()] : undefined;
  return SLOT_CODE[state ?? 'free'];
}

function slots(v: unknown, size: number): string {
  const n = Math.min(size, MAX_SLOTS);
  if (typeof v === 'string') return [...v.slice(0, n)].map(slotCode).join('');
  if (Array.isArray(v)) return v.slice(0, n).map(slotCode).join('');
  return '';
}

function recent(v: unknown): RecentRequest[] {
  if (!Array.isArray(v)) return [];
  return v.slice(-MAX_RECENT).filter(isRecord).map((r) => ({
    opcode: text(r.opcode ?? r.op, '?'),
    session: text(r.session ?? r.sessionId, '-'),
    srcLen: Math.max(0, int(r.srcLen ?? r.inLen)),
    dstLen: Math.max(0, int(r.dstLen ?? r.outLen)),
    status: text(r.status, '?'),
    latencyUs: Math.max(0, int(r.latencyUs)),
  }));
}

function backendQueue(q: Record<string, unknown>, position: number): QueueFrame {
  const size = Math.min(Math.max(0, int(q.size)), MAX_SLOTS);
  return {
    index: int(q.index, position),
    label: text(q.name ?? q.label, `dataq${int(q.index, position)}`),
    source: 'backend',
    size,
    availIdx: u16(q.availIdx),
    usedIdx: u16(q.usedIdx),
    lastAvailIdx: u16(q.lastAvailIdx),
    inFlight: Math.max(0, int(q.inFlight)),
    slots: slots(q.descriptors ?? q.slots, size),
    recent: recent(q.recent),
  };
}

/** Control queue (the last queue, virtio 1.2 §5.9.2) as QEMU reports it, when QEMU services it. */
function controlQueue(device: VirtioDeviceStatus | null | undefined): QueueFrame | undefined {
  const q = device?.queues.at(-1);
  if (!q || q.owner !== 'qemu') return undefined;
  return {
    index: q.index, label: 'controlq', source: 'qmp', size: Math.min(q.size, MAX_SLOTS),
    availIdx: q.shadowAvailIdx & 0xffff, usedIdx: q.usedIdx & 0xffff, lastAvailIdx: q.lastAvailIdx & 0xffff,
    inFlight: q.inUse, slots: '', recent: [],
  };
}

function bytesOf(counters: unknown): number {
  if (!isRecord(counters)) return 0;
  if (typeof counters.bytes === 'number') return int(counters.bytes);
  return Math.max(0, int(counters.bytesIn)) + Math.max(0, int(counters.bytesOut));
}

export function frameFromSnapshot(snapshot: unknown, seq: number, timeMs: number, device?: VirtioDeviceStatus | null): RingsFrame {
  const s = isRecord(snapshot) ? snapshot : {};
  const engine = isRecord(s.engine) ? text(s.engine.name, '?') : text(s.engine, '?');
  // Queues the driver has not set up yet (size 0) have nothing to draw.
  const queues = (Array.isArray(s.queues) ? s.queues : []).slice(0, MAX_QUEUES - 1).filter(isRecord).map(backendQueue).filter((q) => q.size > 0);
  const control = controlQueue(device);
  if (control && !queues.some((q) => q.index === control.index)) queues.push(control);
  const pid = int(s.pid, -1);
  return { seq, timeMs, engine, backendPid: pid > 0 ? pid : null, bytes: bytesOf(s.counters), queues };
}
