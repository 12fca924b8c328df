/**
 * Telemetry's answers, built only when a client asks (the data path never pays for them): the
 * snapshot, one head's decoded chain, and avail ring headers at guest-physical addresses (the
 * rings this back-end serves and those the lab registered). Each part is read from its owner.
 */
import { performance } from 'node:perf_hooks';
import type { ConformanceSnapshot } from '../conformance/report';
import type { EngineSelection } from '../crypto/engines';
import { MAX_SESSIONS } from '../crypto/device';
import { MAX_DATA_LEN } from '../crypto/spec';
import type { FrontendState } from '../vhost-user/protocol';
import type { GuestMemory } from '../virtio/memory';
import { MAX_CHAINS_PER_PASS } from '../virtio/queue-pump';
import { HeadState } from '../virtio/virtqueue';
import type { Vring } from '../virtio/vring';
import { availRingHeader, chainDetail, slotStates } from './inspect';
import {
  SNAPSHOT_RECENT, TELEMETRY_SCHEMA,
  type AvailRingHeader, type BackendSnapshot, type ChainDetail, type Counters, type FaultsSnapshot, type QueueSnapshot, type SessionSummary, type TelemetryError,
} from './schema';

/** Where each part of a snapshot comes from. */
export interface SnapshotParts {
  readonly socketPath: string;
  /** performance.now() when the back-end started. */
  readonly startedAt: number;
  readonly engine: EngineSelection;
  readonly counters: Counters;
  readonly device: { sessionSummaries(): SessionSummary[] };
  readonly server: { readonly connected: boolean };
  readonly protocol: FrontendState;
  readonly pump: { readonly rings: readonly Vring[]; readonly memory: GuestMemory | undefined };
  faults(): FaultsSnapshot;
  /** The conformance oracle (docs/checking.md). */
  readonly conformance: { snapshot(): ConformanceSnapshot };
}

export function buildSnapshot(p: SnapshotParts): BackendSnapshot {
  const queues = p.pump.rings.map((v, index): QueueSnapshot => {
    const q = v.queue;
    let inFlight = 0;
    if (q) for (let i = 0; i < q.size; i++) if (q.slots[i] === HeadState.InFlight) inFlight++;
    return {
      index, size: v.num, ready: q !== undefined, enabled: v.enabled, broken: q?.broken ?? null,
      availIdx: q ? q.availIdx() : null, usedIdx: q ? q.usedIdx : null, lastAvailIdx: q ? q.lastAvailIdx : null,
      availFlags: q ? q.availFlags() : null, usedFlags: q ? q.usedFlags() : null,
      usedEvent: q ? q.usedEvent() : null, availEvent: q ? q.availEvent() : null,
      inFlight, slots: q ? slotStates(q) : '', recent: v.recent.snapshot(SNAPSHOT_RECENT),
    };
  });
  const fe = p.protocol;
  return {
    type: 'snapshot', schema: TELEMETRY_SCHEMA, pid: process.pid, uptimeMs: Math.round(performance.now() - p.startedAt), socket: p.socketPath,
    frontend: {
      connected: p.server.connected, owner: fe.owner, features: `0x${fe.ackedFeatures.toString(16)}`,
      protocolFeatures: `0x${fe.ackedProtocolFeatures.toString(16)}`, memoryRegions: p.pump.memory?.regions.length ?? 0,
    },
    engine: { name: p.engine.engine.name, reason: p.engine.reason },
    limits: { maxDataLen: MAX_DATA_LEN, maxSessions: MAX_SESSIONS, maxChainsPerPass: MAX_CHAINS_PER_PASS },
    sessions: p.device.sessionSummaries(),
    counters: { ...p.counters },
    queues,
    faults: p.faults(),
    conformance: p.conformance.snapshot(),
  };
}

/** One head's descriptor chain, decoded from guest memory now (telemetry "chain" request). */
export function chain(p: SnapshotParts, queue: number, head: number): ChainDetail | TelemetryError {
  const v = p.pump.rings[queue];
  const memory = p.pump.memory;
  if (!v?.queue || !memory) return { type: 'error', message: `queue ${queue} is not running` };
  if (head >= v.queue.size) return { type: 'error', message: `head ${head} is outside queue ${queue} of size ${v.queue.size}` };
  return chainDetail(v.queue, memory, queue, head, v.recent.newestAt(head), p.device.sessionSummaries());
}

/** Ring addresses the lab may register for avail reads (control queues of a device or two). */
const MAX_ALLOWED_AVAIL = 4;

/** Avail ring headers telemetry may read: the rings this back-end serves and those the lab registered. */
export class AvailReads {
  /** Ring addresses the lab registered (the control queue's, from QMP). */
  private readonly allowed: number[] = [];

  /** The avail ring header at a guest-physical address (telemetry "avail": the control queue QEMU serves). */
  read(p: SnapshotParts, addr: number): AvailRingHeader | TelemetryError {
    if (!this.allowed.includes(addr) && !ownAvailGpas(p).includes(addr)) {
      return { type: 'error', message: `0x${addr.toString(16)} is not a ring address: avail reads only the rings this back-end serves and those the lab registered (avail-allow)` };
    }
    return availRingHeader(p.pump.memory, addr);
  }

  /**
   * The lab registers a ring address it resolved itself (QMP's vring-avail of the control queue),
   * then reads it. At most MAX_ALLOWED_AVAIL are kept, the oldest dropped; only readable ones count.
   */
  allow(p: SnapshotParts, addr: number): AvailRingHeader | TelemetryError {
    const header = availRingHeader(p.pump.memory, addr);
    if (header.type !== 'avail') return header;
    if (!this.allowed.includes(addr)) {
      this.allowed.push(addr);
      if (this.allowed.length > MAX_ALLOWED_AVAIL) this.allowed.shift();
    }
    return header;
  }
}

/** Guest-physical addresses of the avail rings of the queues this back-end serves. */
function ownAvailGpas(p: SnapshotParts): number[] {
  const out: number[] = [];
  const regions = p.pump.memory?.regions ?? [];
  for (const v of p.pump.rings) {
    if (!v.queue || !v.addrs) continue;
    const va = v.addrs.avail;
    const r = regions.find((m) => va >= m.va && va < m.va + m.size);
    if (r) out.push(Number(r.gpa + (va - r.va)));
  }
  return out;
}
