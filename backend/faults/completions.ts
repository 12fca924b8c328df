/**
 * Fault injection's owner on the data path (docs/fault-injection.md). Holds the FaultPlan and the
 * gate the device asks once per request (the device applies status and flip-dst behind it); then,
 * for a request a rule fired on, everything that happens after the device answered: held back on
 * the avail ring (stall: the one SplitQueue.unpop), completed later (delay), with a shorter used
 * length (short-used), with its interrupt withheld or doubled (irq); the counters of all that;
 * delivering pending delayed completions when a ring stops; and the FaultsSnapshot. The pump calls
 * {@link FaultedCompletions.onPopped} once per request and never looks at the decision itself.
 */
// The module's binding, not the global getter (as on the rest of the data path).
import { performance } from 'node:perf_hooks';
import type { FaultGate, RequestOutcome } from '../crypto/device';
import { opcodeName } from '../crypto/spec';
import type { RateLimitedLog } from '../log';
import type { Counters, FaultsSnapshot } from '../telemetry/schema';
import type { DescriptorChain, SplitQueue } from '../virtio/virtqueue';
import type { Vring } from '../virtio/vring';
import { FaultPlan, type FaultRuleView, type IrqFault } from './plan';

/** Gap before the second signal of irq=duplicate: the guest sees two interrupts, not one merged. */
export const DUPLICATE_IRQ_GAP_MS = 10;

/** What became of a request once the device answered it (the pump's one question to this module). */
export const enum Popped {
  /** No rule fired: the pump completes it as usual. */
  Plain = 0,
  /** A rule fired: it is completed (altered) or will be (delay). */
  Taken = 1,
  /** A stall: it is back on the avail ring, untouched; the pass ends. */
  Held = 2,
}

interface DelayedCompletion {
  readonly vring: Vring;
  readonly head: number;
  readonly written: number;
  readonly outcome: RequestOutcome;
  readonly t0: number;
  readonly descriptors: number;
  readonly indirect: boolean;
  timer?: NodeJS.Timeout;
}

export class FaultedCompletions {
  private readonly plan = new FaultPlan();
  private readonly decide: FaultGate = (opcode, sessionId) => this.plan.decide(opcode, sessionId);
  private readonly delayed = new Set<DelayedCompletion>();
  /** Per ring: the irq fault of a completion since the ring's last publish (taken at the next one). */
  private readonly pendingIrq: (IrqFault | undefined)[] = [];
  private interruptsWithheld = 0;
  private interruptsDuplicated = 0;

  constructor(
    private readonly counters: Counters,
    private readonly log: (line: string) => void,
    private readonly guestLog: RateLimitedLog,
    /** performance.now() when the back-end started: recent-request times count from here. */
    private readonly startedAt: number,
  ) {}

  /** The device's gate for this pass; undefined while no rule is set (the data path pays nothing). */
  get gate(): FaultGate | undefined {
    return this.plan.empty ? undefined : this.decide;
  }

  /** A stall rule holds the queues: no request is taken until it is cleared. */
  get stalled(): boolean {
    return this.plan.stalledBy !== null;
  }

  /** Adds rules (all or none; FaultRuleError names the bad part). */
  add(rules: readonly string[]): FaultRuleView[] {
    const added = this.plan.addRules(rules);
    for (const r of added) this.log(`fault rule #${r.id} set: ${r.rule}`);
    return added;
  }

  /** Clears one rule or all. `released`: the stalling rule went, the caller serves the held requests now. */
  clear(id?: number): { cleared: number[]; released: boolean } {
    const { cleared, released } = this.plan.clear(id);
    if (cleared.length) this.log(`fault rule${cleared.length > 1 ? 's' : ''} cleared: ${cleared.map((c) => `#${c}`).join(' ')}`);
    if (released) this.log('stall released: serving the held requests');
    return { cleared, released };
  }

  /** Called for every request the device answered, just popped from `q` (the queue of `v`). */
  onPopped(v: Vring, q: SplitQueue, chain: DescriptorChain, r: RequestOutcome, t0: number): Popped {
    const f = r.fault;
    if (f === null) return Popped.Plain;
    if (f.stall) {
      // Held back on the ring until the stalling rule is cleared (GET_VRING_BASE reports only what was taken).
      q.unpop(chain.head);
      this.logFault(r, chain.head);
      return Popped.Held;
    }
    this.logFault(r, chain.head);
    const written = Math.max(0, r.written - f.shortUsed);
    const entry: DelayedCompletion = { vring: v, head: chain.head, written, outcome: r, t0, descriptors: chain.descriptorCount, indirect: chain.indirect };
    if (f.delayMs > 0) {
      entry.timer = setTimeout(() => {
        this.delayed.delete(entry);
        this.finishDelayed(entry);
      }, f.delayMs);
      this.delayed.add(entry);
      return Popped.Taken;
    }
    this.push(entry);
    if (f.irq !== undefined) this.pendingIrq[v.index] = f.irq;
    return Popped.Taken;
  }

  /** The irq fault the ring's next publish is to honour (cleared: each publish takes its own). */
  takeIrq(v: Vring): IrqFault | undefined {
    const irq = this.pendingIrq[v.index];
    if (irq !== undefined) this.pendingIrq[v.index] = undefined;
    return irq;
  }

  /** Interrupts the guest as the irq fault says: not at all (withhold), or once now and once a little later (duplicate). */
  interrupt(v: Vring, irq: IrqFault): void {
    const fd = v.callFd;
    if (fd === undefined) return;
    if (irq === 'withhold') {
      this.interruptsWithheld++;
      return;
    }
    v.signal();
    this.counters.interrupts++;
    setTimeout(() => {
      // Only if the same eventfd is still this ring's call fd (not closed or replaced meanwhile).
      if (v.callFd !== fd) return;
      v.signal();
      this.counters.interrupts++;
      this.interruptsDuplicated++;
    }, DUPLICATE_IRQ_GAP_MS).unref();
  }

  /** The ring stops: delayed completions are delivered now, so every taken request is answered. */
  flush(v: Vring): void {
    this.pendingIrq[v.index] = undefined;
    for (const e of [...this.delayed]) {
      if (e.vring !== v) continue;
      clearTimeout(e.timer);
      this.delayed.delete(e);
      this.finishDelayed(e);
    }
  }

  snapshot(rings: readonly Vring[]): FaultsSnapshot {
    const held = this.stalled ? rings.reduce((n, v) => n + (v.queue ? v.queue.pending() : 0), 0) : 0;
    return {
      ...this.plan.snapshot(), heldRequests: held, delayedInFlight: this.delayed.size,
      interruptsWithheld: this.interruptsWithheld, interruptsDuplicated: this.interruptsDuplicated,
    };
  }

  /** "#2 status=err, #5 delay=20": the rules that fired, as telemetry and the log show them. */
  private rulesText(ids: readonly number[]): string {
    return ids.map((id) => `#${id} ${this.plan.ruleText(id) ?? ''}`.trim()).join(', ');
  }

  private logFault(r: RequestOutcome, head: number): void {
    const rules = this.rulesText(r.fault?.rules ?? []);
    this.guestLog.line('fault injected', `fault injected by ${rules}: head ${head} ${opcodeName(r.opcode)} session ${r.sessionId}`);
  }

  private push(e: DelayedCompletion): boolean {
    const q = e.vring.queue;
    if (!q) return false;
    const r = e.outcome;
    q.pushUsed(e.head, e.written);
    const t1 = performance.now();
    e.vring.recent.recordServed(e.head, r, t1 - e.t0, t1 - this.startedAt, e.descriptors, e.indirect);
    if (r.fault) e.vring.recent.markFault(this.rulesText(r.fault.rules));
    return true;
  }

  private finishDelayed(e: DelayedCompletion): void {
    const v = e.vring;
    if (!this.push(e) || !v.queue) return;
    if (!v.queue.publish()) return;
    const irq = e.outcome.fault?.irq;
    if (irq !== undefined) this.interrupt(v, irq);
    else if (v.signal()) this.counters.interrupts++;
  }
}
