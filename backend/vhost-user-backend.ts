/**
 * The vhost-user back-end for virtio-crypto, put together: the socket server (vhost-user/server.ts)
 * hands messages to the protocol (vhost-user/protocol.ts), which configures the rings of the queue
 * pump (virtio/queue-pump.ts), which serves their chains to the CryptoDevice; fault injection
 * (faults/completions.ts) hooks into the device and the pump. This module only builds and wires
 * them, and answers telemetry (SnapshotSource) and fault control (FaultTarget) from their parts.
 */
// The module's binding, not the global getter (the start time is the data path's clock origin).
import { performance } from 'node:perf_hooks';
import { Conformance } from './conformance/oracle';
import { CryptoDevice } from './crypto/device';
import type { EngineSelection } from './crypto/engines';
import { FaultedCompletions } from './faults/completions';
import type { FaultTarget } from './faults/control';
import type { FaultRuleView } from './faults/plan';
import { RateLimitedLog } from './log';
import type { AvailRingHeader, BackendSnapshot, ChainDetail, Counters, FaultsSnapshot, TelemetryError } from './telemetry/schema';
import type { SnapshotSource } from './telemetry/server';
import { AvailReads, type SnapshotParts, buildSnapshot, chain } from './telemetry/snapshot';
import { newCounters } from './telemetry/stats';
import { VhostUserProtocol } from './vhost-user/protocol';
import { VhostUserServer } from './vhost-user/server';
import { QueuePump } from './virtio/queue-pump';

/** Only the data queue reaches the back-end (QEMU handles the control queue itself, notes §3). */
const NUM_QUEUES = 1;

export interface BackendOptions {
  readonly socketPath: string;
  readonly engine: EngineSelection;
  readonly log?: (line: string) => void;
  /** Fault-injection rules active from the start (docs/fault-injection.md); a bad one throws. */
  readonly faults?: readonly string[];
  /** Answer a request that broke a ring rule with status ERR instead of serving it (docs/checking.md). */
  readonly strict?: boolean;
  /** false: the conformance oracle checks nothing (measurement only). Default true. */
  readonly conformance?: boolean;
}

export class VhostUserBackend implements SnapshotSource, FaultTarget {
  readonly counters: Counters = newCounters();
  readonly device: CryptoDevice;
  /** The conformance oracle (docs/checking.md). */
  readonly conformance: Conformance;
  private readonly log: (line: string) => void;
  /** Lines a guest can trigger go through here (per-reason rate limit, see log.ts). */
  private readonly guestLog: RateLimitedLog;
  private readonly faults: FaultedCompletions;
  private readonly pump: QueuePump;
  private readonly server: VhostUserServer;
  private readonly parts: SnapshotParts;
  private readonly avail = new AvailReads();
  private stopped = false;

  constructor(private readonly opts: BackendOptions) {
    const startedAt = performance.now();
    const counters = this.counters;
    this.log = opts.log ?? (() => undefined);
    this.guestLog = new RateLimitedLog(this.log, { onSuppressed: () => counters.logLinesSuppressed++ });
    const conformance = new Conformance({ enabled: opts.conformance ?? true, strict: opts.strict ?? false, startedAt, log: this.guestLog });
    this.conformance = conformance;
    this.device = new CryptoDevice(opts.engine.engine, counters, (line) => this.guestLog.line('engine error', line), conformance);
    this.faults = new FaultedCompletions(counters, this.log, this.guestLog, startedAt);
    this.pump = new QueuePump({ queues: NUM_QUEUES, device: this.device, faults: this.faults, counters, log: this.log, guestLog: this.guestLog, startedAt, conformance });
    const protocol = new VhostUserProtocol(this.pump, this.device, this.guestLog, conformance);
    this.server = new VhostUserServer(opts.socketPath, protocol, counters, this.log);
    this.parts = {
      socketPath: opts.socketPath, startedAt, engine: opts.engine, counters, device: this.device, server: this.server, protocol, pump: this.pump,
      faults: () => this.faultsSnapshot(), conformance,
    };
    if (opts.faults?.length) this.addFaults(opts.faults);
  }

  /** Listens (see VhostUserServer.start: a live or non-socket path is refused). */
  start(): void {
    this.server.start();
    this.guestLog.startTimer();
    this.log(`listening on ${this.opts.socketPath}; engine ${this.opts.engine.engine.name} (${this.opts.engine.reason})`);
  }

  /** Called whenever a front-end disconnects (tests wait on it). */
  onDisconnect(fn: () => void): void {
    this.server.onDisconnect(fn);
  }

  get connected(): boolean {
    return this.server.connected;
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.server.stop();
    this.device.closeAll();
    this.opts.engine.engine.close();
    this.guestLog.stop();
  }

  // ---- FaultTarget (docs/fault-injection.md) --------------------------------------------------

  /** Adds rules (all or none; FaultRuleError names the bad part). */
  addFaults(rules: readonly string[]): FaultRuleView[] {
    return this.faults.add(rules);
  }

  /** Clears one rule or all; clearing the stalling rule serves the held requests now. */
  clearFaults(id?: number): number[] {
    const { cleared, released } = this.faults.clear(id);
    if (released) this.pump.serveAll();
    return cleared;
  }

  faultsSnapshot(): FaultsSnapshot {
    return this.faults.snapshot(this.pump.rings);
  }

  // ---- SnapshotSource (docs/telemetry.md) -----------------------------------------------------

  snapshot(): BackendSnapshot {
    return buildSnapshot(this.parts);
  }

  chain(queue: number, head: number): ChainDetail | TelemetryError {
    return chain(this.parts, queue, head);
  }

  availRing(addr: number): AvailRingHeader | TelemetryError {
    return this.avail.read(this.parts, addr);
  }

  allowAvailRing(addr: number): AvailRingHeader | TelemetryError {
    return this.avail.allow(this.parts, addr);
  }
}
