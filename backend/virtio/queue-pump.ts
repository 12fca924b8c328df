/**
 * The data path: serves each ring's available chains to the device when the guest kicks, in
 * bounded passes (MAX_CHAINS_PER_PASS / MAX_BYTES_PER_PASS, the rest resumed with setImmediate),
 * publishes used->idx (also mid-pass every PUBLISH_BYTES), re-arms avail_event for EVENT_IDX's
 * race-free idle check and interrupts the guest. It also keeps the guest memory map and the rings'
 * configuration for the vhost-user protocol, which reaches them only through its VringHost. Fault
 * injection is one call per request into FaultedCompletions; nothing here reads a fault decision.
 */
// The module's binding, not the global getter: the data path reads the clock once per request.
import { performance } from 'node:perf_hooks';
import * as vhost from '../../addon/lib/vhost';
import type { Conformance } from '../conformance/oracle';
import type { CryptoDevice } from '../crypto/device';
import { MAX_DATA_LEN, opcodeName } from '../crypto/spec';
import { type FaultedCompletions, Popped } from '../faults/completions';
import type { RateLimitedLog } from '../log';
import type { Counters } from '../telemetry/schema';
import { RecentRing } from '../telemetry/stats';
import type { VringHost } from '../vhost-user/protocol';
import type { MemRegionDesc, VringAddr } from '../vhost-user/wire';
import { GuestMemory, frontendVa } from './memory';
import type { SplitQueue } from './virtqueue';
import { Vring } from './vring';

/**
 * Chains served per pass over a ring before yielding to the event loop (setImmediate), so that a
 * guest that never stops posting cannot starve QEMU's synchronous messages (CREATE_CRYPTO_SESSION,
 * GET_VRING_BASE). A pass also ends after MAX_BYTES_PER_PASS bytes of request data.
 */
export const MAX_CHAINS_PER_PASS = 64;
export const MAX_BYTES_PER_PASS = 4 * MAX_DATA_LEN;
/**
 * Inside a pass, used->idx is published (and the interrupt decided by the usual rules) every time
 * this much request data has completed since the last publish, so a guest with many large requests
 * outstanding can refill the ring while the rest of the pass runs instead of waiting for its end.
 * Small requests never reach it within a pass: they keep one publish (and at most one interrupt) per pass.
 */
export const PUBLISH_BYTES = 512 * 1024;

export interface PumpDeps {
  readonly queues: number;
  readonly device: CryptoDevice;
  readonly faults: FaultedCompletions;
  readonly counters: Counters;
  readonly log: (line: string) => void;
  /** Lines a guest can trigger (per-reason rate limit, see log.ts). */
  readonly guestLog: RateLimitedLog;
  /** performance.now() when the back-end started: recent-request times count from here. */
  readonly startedAt: number;
  /** The conformance oracle (docs/checking.md): every ring reports to it. */
  readonly conformance: Conformance;
}

export class QueuePump implements VringHost {
  readonly count: number;
  private vrings: Vring[];
  private mem: GuestMemory | undefined;
  private readonly device: CryptoDevice;
  private readonly faults: FaultedCompletions;
  private readonly counters: Counters;
  private readonly log: (line: string) => void;
  private readonly guestLog: RateLimitedLog;
  private readonly startedAt: number;
  private readonly conformance: Conformance;

  constructor(deps: PumpDeps) {
    this.count = deps.queues;
    this.device = deps.device;
    this.faults = deps.faults;
    this.counters = deps.counters;
    this.log = deps.log;
    this.guestLog = deps.guestLog;
    this.startedAt = deps.startedAt;
    this.conformance = deps.conformance;
    this.vrings = Array.from({ length: this.count }, (_, i) => new Vring(i, new RecentRing(), this.conformance));
  }

  /** The rings as they are now (telemetry; replaced at each reset). */
  get rings(): readonly Vring[] {
    return this.vrings;
  }

  /** The front-end's guest memory map (telemetry reads chains and rings through it). */
  get memory(): GuestMemory | undefined {
    return this.mem;
  }

  // ---- VringHost ----------------------------------------------------------------------------

  setMemTable(regions: readonly MemRegionDesc[], fds: readonly number[], eventIdx: boolean): void {
    const next = GuestMemory.map(regions, fds);
    const old = this.mem;
    this.mem = next;
    // Running rings hold views of the old map: rebuild them on the new one, then unmap the old
    // — also when a ring does not fit the new map (the refusal closes the connection, which
    // unmaps only the current map: the old one would stay mapped for good).
    try {
      for (const v of this.vrings) if (v.queue) v.build(next, eventIdx);
    } finally {
      old?.close();
    }
  }

  setNum(index: number, num: number): void {
    this.vrings[index].num = num;
  }

  setBase(index: number, base: number): void {
    this.vrings[index].base = base;
  }

  setAddr(index: number, a: VringAddr): void {
    this.vrings[index].addrs = { desc: frontendVa(a.descUser), avail: frontendVa(a.availUser), used: frontendVa(a.usedUser) };
  }

  setKick(index: number, fd: number | undefined, eventIdx: boolean): void {
    const v = this.vrings[index];
    const memory = this.mem;
    this.halt(v, false);
    v.kickFd = fd;
    v.enabled = true;
    if (v.kickFd === undefined || !v.addrs || !memory || v.num === 0) {
      this.log(`queue ${index}: kick fd arrived before memory/size/addresses; ring stays stopped`);
      return;
    }
    v.build(memory, eventIdx);
    v.poll = vhost.pollStart(v.kickFd, (status) => {
      if (status < 0) {
        this.guestLog.line('kick fd error', `queue ${index}: kick fd error ${status}`);
        return;
      }
      this.counters.kicks++;
      this.serve(v);
    }, { drainEventfd: true });
    // Buffers made available before the kick fd arrived must not wait for the next kick.
    this.pass(v);
  }

  setCall(index: number, fd: number | undefined): void {
    this.vrings[index].setCallFd(fd);
  }

  setErr(index: number, fd: number | undefined): void {
    this.vrings[index].setErrFd(fd);
  }

  setEnabled(index: number, enabled: boolean): void {
    const v = this.vrings[index];
    v.enabled = enabled;
    if (v.enabled && v.queue) this.pass(v);
  }

  lastAvail(index: number): number {
    return this.vrings[index].lastAvail();
  }

  stop(index: number): void {
    this.halt(this.vrings[index], false);
  }

  reset(): void {
    for (const v of this.vrings) this.halt(v, true);
    this.vrings = this.vrings.map((v) => new Vring(v.index, v.recent, this.conformance));
    this.mem?.close();
    this.mem = undefined;
  }

  // ---- serving --------------------------------------------------------------------------------

  /** Serves every ring now (a stall was released). */
  serveAll(): void {
    for (const v of this.vrings) this.serve(v);
  }

  private halt(v: Vring, closeAll: boolean): void {
    if (v.resume) clearImmediate(v.resume);
    v.resume = undefined;
    // Fault injection: delayed completions are delivered now, so every taken request is answered.
    this.faults.flush(v);
    v.halt(closeAll);
  }

  /** One pass over the ring; a bug on the data path abandons the ring instead of killing the process. */
  private serve(v: Vring): void {
    try {
      this.pass(v);
    } catch (err) {
      // Not reachable with a sane engine; still, a bug on the data path must not kill the process
      // (QEMU 7.2 cannot survive that): the ring is abandoned and says why in telemetry.
      const q = v.queue;
      if (q) q.broken = `internal error: ${(err as Error).message}`;
      this.log(`queue ${v.index}: internal error, ring abandoned: ${(err as Error).stack ?? String(err)}`);
    }
  }

  /**
   * Serves available chains, at most MAX_CHAINS_PER_PASS (or MAX_BYTES_PER_PASS of data) per pass.
   * When the ring runs dry, avail_event is re-armed and avail idx re-read until nothing new arrived
   * (EVENT_IDX's race-free idle check). Each pass publishes used->idx once and interrupts at most
   * once; a pass that ended on its budget schedules the next one with setImmediate, so the socket
   * (and every other fd) is served in between.
   */
  private pass(v: Vring): void {
    const q = v.queue;
    if (!q || !v.enabled) return;
    // A kick while a continuation is pending changes nothing: the continuation will see the work.
    if (v.resume) return;
    const faults = this.faults;
    if (faults.stalled) return;
    const gate = faults.gate;
    const recent = v.recent;
    let chains = 0;
    let bytes = 0;
    let unpublishedBytes = 0;
    let budgetLeft = true;
    // One clock read per request: a request's recorded latency runs from the previous request's
    // completion in this pass (or the pass start) to its own, so it covers its descriptor walk too.
    let tPrev = performance.now();
    do {
      for (let chain = q.pop(); chain; chain = q.pop()) {
        if ('reason' in chain) {
          this.counters.rejectedChains++;
          this.guestLog.line('rejected chain', `queue ${v.index}: rejected chain at head ${chain.head}: ${chain.reason}`);
          q.pushUsed(chain.head, 0);
          tPrev = performance.now();
          recent.recordRejected(chain.head, chain.reason, tPrev - this.startedAt);
        } else {
          const t0 = tPrev;
          const r = this.device.handle(chain.readable, chain.readableLength, chain.writable, chain.writableLength, gate, chain.violation);
          if (r.badRequest !== null) this.guestLog.line('bad request', `queue ${v.index}: bad request at head ${chain.head} (${opcodeName(r.opcode)} session ${r.sessionId}): ${r.badRequest}`);
          const fate = faults.onPopped(v, q, chain, r, t0);
          if (fate === Popped.Held) break;
          this.counters.requests++;
          if (fate === Popped.Plain) {
            const t1 = performance.now();
            tPrev = t1;
            q.pushUsed(chain.head, r.written);
            recent.recordServed(chain.head, r, t1 - t0, t1 - this.startedAt, chain.descriptorCount, chain.indirect);
          } else {
            tPrev = performance.now();
          }
          if (r.status === 0) {
            bytes += r.srcLen;
            unpublishedBytes += r.srcLen;
            if (unpublishedBytes >= PUBLISH_BYTES) {
              unpublishedBytes = 0;
              this.publish(v, q);
            }
          }
        }
        if (++chains >= MAX_CHAINS_PER_PASS || bytes >= MAX_BYTES_PER_PASS) {
          budgetLeft = false;
          break;
        }
      }
    } while (budgetLeft && !faults.stalled && q.armNotification() && !q.broken);
    if (q.broken) this.guestLog.line('queue broken', `queue ${v.index} is broken: ${q.broken}; no more requests are served on it`);
    this.publish(v, q);
    if (!budgetLeft && !q.broken && !faults.stalled) {
      v.resume = setImmediate(() => {
        v.resume = undefined;
        // The ring may have been stopped or rebuilt meanwhile: serve whatever is live now.
        if (this.vrings[v.index] === v) this.serve(v);
      });
    }
  }

  /** Publishes used->idx and interrupts the guest if the ring's rules (EVENT_IDX or NO_INTERRUPT) ask for it. */
  private publish(v: Vring, q: SplitQueue): void {
    // An irq fault on a completion since the last publish changes how this one interrupts.
    const irq = this.faults.takeIrq(v);
    if (!q.publish()) return;
    if (irq === undefined) this.signalGuest(v);
    else this.faults.interrupt(v, irq);
  }

  /** One call-eventfd write. */
  private signalGuest(v: Vring): void {
    if (v.signal()) this.counters.interrupts++;
  }
}
