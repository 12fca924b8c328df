/**
 * Split virtqueue (virtio 1.2 §2.7), device side. Every ring field is guest-controlled: each check
 * cites the clause it enforces. The device code sees descriptor chains (readable and writable
 * segments of guest memory), never ring indexes.
 *
 * Memory ordering: the rings are shared with the guest. Loads of avail->idx and stores of used->idx
 * and used->avail_event go through Atomics (sequentially consistent: xchg on x86, a full fence), so
 * descriptor reads happen after the index read and used entries are visible before the index.
 */
import { Conformance } from '../conformance/oracle';
import type { QueueReferee, RingState } from '../conformance/queue-referee';
import { R, named } from '../conformance/rules';
import { type FrontendVa, GuestMemory, type Segment, type ViewRef } from './memory';

/** §2.7.5 descriptor flags: the chain continues at `next`; device-writable; `addr` is an indirect table. */
export const VIRTQ_DESC_F_NEXT = 1;
export const VIRTQ_DESC_F_WRITE = 2;
export const VIRTQ_DESC_F_INDIRECT = 4;
const VIRTQ_AVAIL_F_NO_INTERRUPT = 1;
const DESC_SIZE = 16;
/** §2.7.4.2: a chain's total length must not exceed 2^32 bytes. */
const MAX_CHAIN_BYTES = 2 ** 32;

export interface RingAddresses {
  readonly desc: FrontendVa;
  readonly avail: FrontendVa;
  readonly used: FrontendVa;
}

export interface DescriptorChain {
  readonly head: number;
  /** Device-readable bytes, in chain order. */
  readonly readable: Segment[];
  readonly readableLength: number;
  /** Device-writable bytes, in chain order. */
  readonly writable: Segment[];
  readonly writableLength: number;
  readonly descriptorCount: number;
  readonly indirect: boolean;
  /** Strict mode: the rule (conformance/rules.ts) it broke when taken; the device answers ERR instead of serving it. 0: none. */
  violation: number;
}

/** A chain whose head is valid but whose descriptors break a rule: it is returned with len 0. */
export interface RejectedChain {
  readonly head: number;
  /** The rule it broke (conformance/rules.ts); `reason` names it too. */
  readonly rule: number;
  readonly reason: string;
}

function reject(head: number, rule: number, text: string): RejectedChain {
  return { head, rule, reason: named(rule, text) };
}

export class QueueSetupError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'QueueSetupError';
  }
}

/**
 * What the device did with the chain at each head (indexed by descriptor-table slot of the chain
 * head). Not telemetry's SlotState (free/posted/device/returned, schema.ts), which inspect.ts derives
 * from the rings and this.
 */
export const enum HeadState {
  Idle = 0,
  InFlight = 1,
  Done = 2,
  Rejected = 3,
}

export class SplitQueue implements RingState {
  /** Next avail ring position to consume (free-running u16). */
  lastAvailIdx = 0;
  /** Our shadow of used->idx (free-running u16). */
  usedIdx = 0;
  /** used->idx at the last interrupt decision, for EVENT_IDX. */
  private signalledUsedIdx = 0;
  /** Set when the ring is unrecoverable (e.g. avail idx jumped by more than size): stop touching it. */
  broken: string | undefined;
  readonly slots: Uint8Array;

  private readonly desc: DataView;
  /** Where the current chain's indirect table is (reused: no object per chain). */
  private readonly indirectRef: ViewRef = { view: new DataView(new ArrayBuffer(0)), offset: 0 };
  private readonly avail: Uint16Array;
  private readonly usedHead: Uint16Array;
  private readonly usedRing: Uint32Array;

  constructor(
    readonly index: number,
    readonly size: number,
    private readonly memory: GuestMemory,
    addrs: RingAddresses,
    base: number,
    /** VIRTIO_RING_F_EVENT_IDX acked by the front-end: honour used_event when deciding interrupts. */
    private readonly eventIdx: boolean,
    /** The conformance oracle's view of this ring (one call per site below). */
    private readonly referee: QueueReferee = Conformance.detached().queueReferee(index, size, base),
  ) {
    // §2.7: Queue Size is a power of 2, at most 32768.
    if (size < 1 || size > 32768 || (size & (size - 1)) !== 0) throw new QueueSetupError(`queue size ${size} is not a power of 2 in 1..32768`);
    const descBytes = memory.atVa(addrs.desc, DESC_SIZE * size);
    const availBytes = memory.atVa(addrs.avail, 6 + 2 * size);
    const usedBytes = memory.atVa(addrs.used, 6 + 8 * size);
    if (!descBytes || !availBytes || !usedBytes) throw new QueueSetupError(`queue ${index}: ring addresses are not inside one mapped region each`);
    // §2.7.2 alignment: descriptor table 16, available ring 2, used ring 4.
    if (descBytes.byteOffset % 16 !== 0 || availBytes.byteOffset % 2 !== 0 || usedBytes.byteOffset % 4 !== 0) {
      throw new QueueSetupError(this.referee.setupRefused(R.RingAlignment, `queue ${index}: misaligned ring addresses (desc 0x${addrs.desc.toString(16)}, avail 0x${addrs.avail.toString(16)}, used 0x${addrs.used.toString(16)})`));
    }
    this.desc = new DataView(descBytes.buffer, descBytes.byteOffset, descBytes.byteLength);
    this.avail = new Uint16Array(availBytes.buffer, availBytes.byteOffset, 3 + size);
    this.usedHead = new Uint16Array(usedBytes.buffer, usedBytes.byteOffset, (6 + 8 * size) / 2);
    this.usedRing = new Uint32Array(usedBytes.buffer, usedBytes.byteOffset + 4, 2 * size);
    this.lastAvailIdx = base & 0xffff;
    this.usedIdx = base & 0xffff;
    this.signalledUsedIdx = this.usedIdx;
    this.slots = new Uint8Array(size);
    this.referee.attach(this);
  }

  /** avail->idx as the guest last published it. */
  availIdx(): number {
    return Atomics.load(this.avail, 1);
  }

  /** Chains the guest made available that we have not consumed yet. */
  pending(): number {
    return (this.availIdx() - this.lastAvailIdx) & 0xffff;
  }

  /**
   * Takes the next available chain: a chain, a rejected chain (complete it with len 0), or
   * undefined when there is nothing new or the queue is broken.
   */
  pop(): DescriptorChain | RejectedChain | undefined {
    if (this.broken) return undefined;
    const availIdx = Atomics.load(this.avail, 1);
    this.referee.availRead(availIdx);
    const pending = (availIdx - this.lastAvailIdx) & 0xffff;
    if (pending === 0) return undefined;
    // §2.7, §2.7.13: the driver never has more than Queue Size buffers outstanding (or it decremented idx, §2.7.6.1).
    if (pending > this.size) {
      this.broken = this.referee.ringBroken(R.AvailAhead, `avail idx ${availIdx} is ${pending} ahead of last seen ${this.lastAvailIdx} (queue size ${this.size})`);
      return undefined;
    }
    const head = this.avail[2 + (this.lastAvailIdx % this.size)];
    // §2.7.6: ring entries are descriptor-table indexes, so they are < Queue Size.
    if (head >= this.size) {
      this.broken = this.referee.ringBroken(R.AvailHeadRange, `avail ring entry ${this.lastAvailIdx % this.size} names descriptor ${head} ≥ queue size ${this.size}`);
      return undefined;
    }
    this.lastAvailIdx = (this.lastAvailIdx + 1) & 0xffff;
    const chain = this.referee.took(this.walk(head));
    this.slots[head] = 'reason' in chain ? HeadState.Rejected : HeadState.InFlight;
    return chain;
  }

  private walk(head: number): DescriptorChain | RejectedChain {
    const readable: Segment[] = [];
    const writable: Segment[] = [];
    let readableLength = 0;
    let writableLength = 0;
    let count = 0;
    let indirect = false;

    let table = this.desc;
    let tableBase = 0;
    let tableSize = this.size;
    let i = head;
    let seenWritable = false;
    for (;;) {
      const base = tableBase + i * DESC_SIZE;
      // The address as two u32 halves: no BigInt per descriptor (memory.ts translates them).
      const addrLo = table.getUint32(base, true);
      const addrHi = table.getUint32(base + 4, true);
      const len = table.getUint32(base + 8, true);
      const flags = table.getUint16(base + 12, true);
      const next = table.getUint16(base + 14, true);
      count++;
      // §2.7.5.2, §2.7.5.3.1: no loops, never longer than the Queue Size (this is also the loop TTL).
      if (count > this.size) return reject(head, R.ChainLoop, `chain longer than queue size ${this.size} (loop?)`);

      if (flags & VIRTQ_DESC_F_INDIRECT) {
        // §2.7.5.3.1: no indirect descriptor inside an indirect table.
        if (indirect) return reject(head, R.IndirectNested, `indirect descriptor inside an indirect table (descriptor ${i})`);
        // §2.7.5.3.1: INDIRECT and NEXT are never set together.
        if (flags & VIRTQ_DESC_F_NEXT) return reject(head, R.IndirectNext, `descriptor has both INDIRECT and NEXT (descriptor ${i}, flags 0x${flags.toString(16)})`);
        // §2.7.5.3: the table is an array of 16-byte descriptors; not empty; at most Queue Size of them.
        if (len === 0 || len % DESC_SIZE !== 0) return reject(head, R.IndirectLength, `indirect table length ${len} is not a non-zero multiple of 16`);
        if (len / DESC_SIZE > this.size) return reject(head, R.IndirectTableSize, `indirect table of ${len / DESC_SIZE} entries exceeds queue size ${this.size}`);
        if (count !== 1 || readable.length + writable.length !== 0) {
          // Linux only uses indirect as the sole descriptor; a table after buffers is legal but we keep it simple.
          return reject(head, R.IndirectNotFirst, `indirect descriptor is not the first of its chain (descriptor ${i}, number ${count} of the chain)`);
        }
        const ref = this.indirectRef;
        if (!this.memory.viewAtGpaParts(addrLo, addrHi, len, ref)) {
          // Inside guest memory but across a region boundary is this device's limit; outside it, the driver's error.
          const rule = this.memory.rangeAtGpaParts(addrLo, addrHi, len, []) ? R.IndirectTableRegions : R.DescAddress;
          return reject(head, rule, `indirect table at ${hexAddr(addrLo, addrHi)}+${len} is not inside one memory region`);
        }
        table = ref.view;
        tableBase = ref.offset;
        tableSize = len / DESC_SIZE;
        indirect = true;
        count = 0;
        i = 0;
        continue;
      }

      const isWrite = (flags & VIRTQ_DESC_F_WRITE) !== 0;
      // §2.7.4.2: device-writable descriptors come after all device-readable ones.
      if (!isWrite && seenWritable) return reject(head, R.ChainOrder, `readable descriptor after a writable one (descriptor ${i})`);
      seenWritable ||= isWrite;
      if (len > 0) {
        if (readableLength + writableLength + len > MAX_CHAIN_BYTES) return reject(head, R.ChainBytes, `chain longer than 2^32 bytes (${readableLength + writableLength + len} at descriptor ${i})`);
        const segs = isWrite ? writable : readable;
        if (!this.memory.rangeAtGpaParts(addrLo, addrHi, len, segs)) return reject(head, R.DescAddress, `buffer ${hexAddr(addrLo, addrHi)}+${len} is outside guest memory (descriptor ${i})`);
        if (isWrite) writableLength += len;
        else readableLength += len;
      }
      if (!(flags & VIRTQ_DESC_F_NEXT)) break;
      // §2.7.5: next is an index into the same table.
      if (next >= tableSize) return reject(head, R.DescNextRange, `next ${next} outside a table of ${tableSize} (descriptor ${i})`);
      i = next;
    }
    return { head, readable, readableLength, writable, writableLength, descriptorCount: count, indirect, violation: 0 };
  }

  /**
   * Puts the chain the last {@link pop} returned back on the available ring, untouched (fault
   * injection's stall holds requests there, so GET_VRING_BASE reports only what was consumed).
   */
  unpop(head: number): void {
    this.lastAvailIdx = (this.lastAvailIdx - 1) & 0xffff;
    this.slots[head] = HeadState.Idle;
    this.referee.untook(head);
  }

  /** Records a finished chain in the used ring; becomes visible to the guest at {@link publish}. */
  pushUsed(head: number, written: number): void {
    const slot = this.usedIdx % this.size;
    this.usedRing[2 * slot] = head;
    this.usedRing[2 * slot + 1] = written;
    this.usedIdx = (this.usedIdx + 1) & 0xffff;
    if (this.slots[head] === HeadState.InFlight) this.slots[head] = HeadState.Done;
    this.referee.used(head);
  }

  /** Publishes used->idx (after the entries: seq-cst store) and says whether to interrupt the guest. */
  publish(): boolean {
    const old = this.signalledUsedIdx;
    const now = this.usedIdx;
    if (old === now) return false;
    Atomics.store(this.usedHead, 1, now);
    this.signalledUsedIdx = now;
    this.referee.published();
    if (this.eventIdx) {
      // §2.7.10: with EVENT_IDX, interrupt iff used_event lies in [old, now).
      const usedEvent = Atomics.load(this.avail, 2 + this.size);
      return ((now - usedEvent - 1) & 0xffff) < ((now - old) & 0xffff);
    }
    // §2.7.10: without EVENT_IDX the driver may suppress interrupts with VIRTQ_AVAIL_F_NO_INTERRUPT.
    return (Atomics.load(this.avail, 0) & VIRTQ_AVAIL_F_NO_INTERRUPT) === 0;
  }

  /**
   * Tells the driver which avail index we will look at next (used->avail_event). Always written,
   * even when the front-end did not ack EVENT_IDX: QEMU 7.2 negotiates it with the guest without
   * telling us, and a guest using it stalls otherwise (notes §3). Returns true if more work arrived
   * meanwhile (the seq-cst store orders it before the re-read of avail->idx).
   */
  armNotification(): boolean {
    Atomics.store(this.usedHead, 2 + 4 * this.size, this.lastAvailIdx);
    return Atomics.load(this.avail, 1) !== this.lastAvailIdx;
  }

  /** Ring position summary for telemetry. */
  availFlags(): number {
    return Atomics.load(this.avail, 0);
  }

  usedEvent(): number {
    return Atomics.load(this.avail, 2 + this.size);
  }

  usedFlags(): number {
    return Atomics.load(this.usedHead, 0);
  }

  /** used->idx as published in guest memory (what the driver has seen). */
  usedIdxPublished(): number {
    return Atomics.load(this.usedHead, 1);
  }

  /** used->avail_event as we last published it. */
  availEvent(): number {
    return Atomics.load(this.usedHead, 2 + 4 * this.size);
  }

  /** The head the avail ring holds at free-running position `pos` (telemetry; not validated). */
  availEntry(pos: number): number {
    return this.avail[2 + (pos % this.size)];
  }

  /** The head our used ring holds at free-running position `pos`. */
  usedEntry(pos: number): number {
    return this.usedRing[2 * (pos % this.size)];
  }

  /** One raw descriptor of the ring's table (telemetry: read as the guest wrote it, unchecked). */
  readDescriptor(i: number): RawDescriptor {
    const base = (i % this.size) * DESC_SIZE;
    return { addr: this.desc.getBigUint64(base, true), len: this.desc.getUint32(base + 8, true), flags: this.desc.getUint16(base + 12, true), next: this.desc.getUint16(base + 14, true) };
  }
}

/** "0x…" of a 64-bit address given as two u32 halves (messages only). */
function hexAddr(lo: number, hi: number): string {
  return `0x${((BigInt(hi) << 32n) | BigInt(lo)).toString(16)}`;
}

export interface RawDescriptor {
  readonly addr: bigint;
  readonly len: number;
  readonly flags: number;
  readonly next: number;
}
