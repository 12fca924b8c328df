/**
 * The oracle's view of one split virtqueue (virtio 1.2 §2.7), fed by the SplitQueue it belongs to
 * through one direct call per site: the avail idx read, a chain taken, a chain put back, a used
 * entry, a publish of used->idx, the ring's set-up and its refusals. It keeps what the rules need
 * (the avail idx last seen, which heads the device holds) in preallocated arrays: the data path pays
 * a compare per pop and a store per chain; everything else runs only when something moved or broke.
 */
import { R, named } from './rules';

/** What the referee reads of its ring, only when the avail idx moved or the ring was set up (SplitQueue implements it). */
export interface RingState {
  /** used->idx as published in guest memory: what the driver has seen. */
  usedIdxPublished(): number;
  availFlags(): number;
  usedFlags(): number;
}

/** A chain the device took (virtqueue.ts DescriptorChain). */
export interface TakenChain {
  readonly head: number;
  readonly indirect: boolean;
  /** Strict mode: the rule it broke, so the device answers ERR instead of serving it (0: none). */
  violation: number;
}

/** A chain refused for a ring rule (virtqueue.ts RejectedChain). */
export interface RefusedChain {
  readonly head: number;
  readonly rule: number;
  readonly reason: string;
}

/** What a referee asks of the oracle it reports to (conformance/oracle.ts). */
export interface RefereeOwner {
  readonly strict: boolean;
  /** VIRTIO_F_EVENT_IDX is known to be negotiated (avail flags must then be 0). */
  readonly eventIdxAcked: boolean;
  /** VIRTIO_F_INDIRECT_DESC negotiated, or offered while the front-end does not tell (see oracle.ts). */
  readonly indirectAllowed: boolean;
  /** Negotiated features as text for a violation's values. */
  readonly featuresText: string;
  /** The chain being served now: device-side violations are reported against it. */
  at(queue: number, head: number): void;
  /** Counts one violation; returns `rule`. `logged`: the caller logs it already. */
  record(rule: number, queue: number | null, head: number | null, detail: string, logged?: boolean): number;
}

export class QueueReferee {
  /** avail->idx as the device last read it. */
  private seenAvail: number;
  /** The rule the last avail idx read broke, charged to the next chain taken (strict mode refuses it). */
  private availRule = 0;
  /** 1 while the device holds the head: taken, its used entry not yet published. */
  private readonly held: Uint8Array;
  /** Heads whose used entries the next publish makes visible. */
  private readonly toRelease: Uint16Array;
  private releaseCount = 0;
  private ring: RingState | undefined;

  constructor(
    private readonly owner: RefereeOwner,
    readonly index: number,
    readonly size: number,
    base: number,
  ) {
    this.seenAvail = base & 0xffff;
    this.held = new Uint8Array(size);
    this.toRelease = new Uint16Array(size);
  }

  /** The ring is set up (its constructor ran): §2.7.10.1, the driver initialised used->flags to 0. */
  attach(ring: RingState): void {
    this.ring = ring;
    const flags = ring.usedFlags();
    if (flags !== 0) this.owner.record(R.UsedFlagsInit, this.index, null, `used flags 0x${flags.toString(16)} when the ring was set up`);
  }

  /** The ring cannot be set up: the refusal's text names the rule, which is counted. */
  setupRefused(rule: number, text: string): string {
    this.owner.record(rule, this.index, null, text, true);
    return named(rule, text);
  }

  /** Every avail idx read of pop(): nothing to do unless it moved. */
  availRead(idx: number): void {
    if (idx !== this.seenAvail) this.availMoved(idx);
  }

  private availMoved(idx: number): void {
    const seen = this.seenAvail;
    this.seenAvail = idx;
    const ring = this.ring;
    if (!ring) return;
    const q = this.index;
    // §2.7.6.1: a move "back" by less than half the index space is a decrement (a legal move is ≤ Queue Size forward).
    const back = (seen - idx) & 0xffff;
    if (back !== 0 && back < 0x8000) {
      this.availRule = this.owner.record(R.AvailDecrement, q, null, `avail idx went from ${seen} to ${idx}`);
      return;
    }
    const used = ring.usedIdxPublished();
    const ahead = (idx - used) & 0xffff;
    if (ahead > this.size) this.availRule = this.owner.record(R.AvailAhead, q, null, `avail idx ${idx} is ${ahead} ahead of used idx ${used} (queue size ${this.size})`);
    const flags = ring.availFlags();
    if (flags !== 0 && ((flags & ~1) !== 0 || this.owner.eventIdxAcked)) {
      this.availRule = this.owner.record(R.AvailFlags, q, null, `avail flags 0x${flags.toString(16)}, ${this.owner.eventIdxAcked ? 'must be 0 with VIRTIO_F_EVENT_IDX' : 'must be 0 or 1'}`);
    }
  }

  /** pop() stops serving the ring for a rule its avail ring broke; the text names the rule (counted once). */
  ringBroken(rule: number, text: string): string {
    const broke = rule === R.AvailAhead && this.availRule === R.AvailDecrement ? R.AvailDecrement : rule;
    if (broke !== this.availRule) this.owner.record(broke, this.index, null, text, true);
    this.availRule = 0;
    return named(broke, text);
  }

  /** Every chain pop() takes, refused or not; returns it (strict mode marks what it broke). */
  took<C extends TakenChain | RefusedChain>(chain: C): C {
    const head = chain.head;
    const q = this.index;
    this.owner.at(q, head);
    let broke = this.availRule;
    this.availRule = 0;
    if (this.held[head] !== 0) broke = this.owner.record(R.AvailHeadInUse, q, head, `head ${head} made available again while the device still holds it (taken, its used entry not yet published)`);
    this.held[head] = 1;
    if ('reason' in chain) {
      this.owner.record(chain.rule, q, head, chain.reason, true);
      return chain;
    }
    if (chain.indirect && !this.owner.indirectAllowed) broke = this.owner.record(R.IndirectFeature, q, head, `INDIRECT descriptor at head ${head}; acked features ${this.owner.featuresText}`);
    if (broke !== 0 && this.owner.strict) chain.violation = broke;
    return chain;
  }

  /** A taken chain goes back on the available ring untouched (fault injection's stall). */
  untook(head: number): void {
    this.held[head] = 0;
  }

  /** A used entry for `head`; the device holds the head until the next publish. */
  used(head: number): void {
    if (this.releaseCount < this.toRelease.length) this.toRelease[this.releaseCount++] = head;
    else this.held[head] = 0;
  }

  /** used->idx was published: the driver may reuse every head returned since the last publish. */
  published(): void {
    const n = this.releaseCount;
    for (let k = 0; k < n; k++) this.held[this.toRelease[k]] = 0;
    this.releaseCount = 0;
  }
}

/** The referee with the oracle switched off (measurement only): names refusals, checks and counts nothing. */
export class IdleReferee extends QueueReferee {
  override attach(): void {}
  override setupRefused(rule: number, text: string): string {
    return named(rule, text);
  }
  override availRead(): void {}
  override ringBroken(rule: number, text: string): string {
    return named(rule, text);
  }
  override took<C extends TakenChain | RefusedChain>(chain: C): C {
    return chain;
  }
  override untook(): void {}
  override used(): void {}
  override published(): void {}
}
