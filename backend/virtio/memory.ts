/**
 * Guest memory as the back-end sees it: the regions of SET_MEM_TABLE, each mapped once. Two address
 * spaces are distinct types (branded bigints) so they cannot be mixed: guest-physical addresses
 * (descriptors) and front-end virtual addresses (SET_VRING_ADDR). Translation returns `undefined`
 * for anything outside a region — it never clamps or throws on guest input. A map is immutable:
 * SET_MEM_TABLE builds a new one and swaps it in whole.
 */
import * as vhost from '../../addon/lib/vhost';
import { guestMemoryFdProblem } from '../vhost-user/fd-policy';
import type { MemRegionDesc } from '../vhost-user/wire';

export type Gpa = bigint & { readonly __brand: 'Gpa' };
export type FrontendVa = bigint & { readonly __brand: 'FrontendVa' };

export const gpa = (v: bigint): Gpa => v as Gpa;
export const frontendVa = (v: bigint): FrontendVa => v as FrontendVa;

const U64_END = 1n << 64n;
/** Guest-physical addresses below this are exact as JavaScript numbers (the data path's fast path). */
const NUMBER_EXACT_END = 2 ** 53;

export interface MappedRegion {
  readonly gpa: Gpa;
  readonly va: FrontendVa;
  readonly size: bigint;
  /** The region's bytes (length === size). */
  readonly bytes: Uint8Array;
}

export class MemoryTableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MemoryTableError';
  }
}

/** A DataView and a byte offset into it, filled in by {@link GuestMemory.viewAtGpaParts}. */
export interface ViewRef {
  view: DataView;
  offset: number;
}

/** A contiguous piece of guest memory resolved to host bytes. */
export type Segment = Uint8Array;

export class GuestMemory {
  /** Sorted by gpa, validated non-overlapping. */
  private readonly byGpa: readonly MappedRegion[];
  /** Same regions sorted by front-end VA. */
  private readonly byVa: readonly MappedRegion[];
  /** byGpa's bounds and bytes as numbers, for the data path (no BigInt per descriptor). */
  private readonly numStart: Float64Array;
  private readonly numEnd: Float64Array;
  private readonly numBytes: readonly Uint8Array[];
  /** One DataView per region (byGpa order), made once: descriptor tables are read through them. */
  private readonly numViews: readonly DataView[];
  /** Every region ends below 2^53: numeric translation is exact for all of them. */
  private readonly numericExact: boolean;
  /** Index (in byGpa) of the region the last numeric lookup hit: descriptors cluster. A hint only. */
  private lastHit = 0;

  constructor(
    regions: readonly MappedRegion[],
    private readonly release: () => void = () => undefined,
  ) {
    if (regions.length === 0) throw new MemoryTableError('memory table is empty');
    for (const r of regions) {
      if (r.size <= 0n) throw new MemoryTableError(`region at gpa 0x${r.gpa.toString(16)} has size 0`);
      if (BigInt(r.bytes.length) !== r.size) throw new MemoryTableError('region mapping length differs from its size');
      if (r.gpa + r.size > U64_END) throw new MemoryTableError(`region at gpa 0x${r.gpa.toString(16)} wraps around 2^64`);
      if (r.va + r.size > U64_END) throw new MemoryTableError(`region at va 0x${r.va.toString(16)} wraps around 2^64`);
    }
    this.byGpa = [...regions].sort((a, b) => (a.gpa < b.gpa ? -1 : a.gpa > b.gpa ? 1 : 0));
    this.byVa = [...regions].sort((a, b) => (a.va < b.va ? -1 : a.va > b.va ? 1 : 0));
    for (let i = 1; i < this.byGpa.length; i++) {
      const prev = this.byGpa[i - 1];
      if (prev.gpa + prev.size > this.byGpa[i].gpa) throw new MemoryTableError(`regions overlap at gpa 0x${this.byGpa[i].gpa.toString(16)}`);
    }
    for (let i = 1; i < this.byVa.length; i++) {
      const prev = this.byVa[i - 1];
      if (prev.va + prev.size > this.byVa[i].va) throw new MemoryTableError(`regions overlap at va 0x${this.byVa[i].va.toString(16)}`);
    }
    this.numericExact = this.byGpa.every((r) => r.gpa + r.size <= BigInt(NUMBER_EXACT_END));
    this.numStart = Float64Array.from(this.byGpa, (r) => Number(r.gpa));
    this.numEnd = Float64Array.from(this.byGpa, (r) => Number(r.gpa + r.size));
    this.numBytes = this.byGpa.map((r) => r.bytes);
    this.numViews = this.byGpa.map((r) => new DataView(r.bytes.buffer, r.bytes.byteOffset, r.bytes.byteLength));
  }

  /**
   * Maps each region of a SET_MEM_TABLE through the addon (fd i belongs to region i), after
   * checking that the fd is a memfd sealed against shrinking and large enough (fd-policy.ts: a
   * mapping that can lose its file pages is SIGBUS on access). On any failure the mappings made so
   * far are undone; the fds stay owned by the caller.
   */
  static map(descs: readonly MemRegionDesc[], fds: readonly number[]): GuestMemory {
    if (descs.length !== fds.length) throw new MemoryTableError(`${descs.length} regions but ${fds.length} fds`);
    const buffers: ArrayBuffer[] = [];
    const unmapAll = (): void => {
      for (const b of buffers) vhost.munmap(b);
    };
    try {
      const regions = descs.map((d, i): MappedRegion => {
        if (d.memorySize <= 0n || d.memorySize > BigInt(Number.MAX_SAFE_INTEGER)) throw new MemoryTableError(`region ${i} size ${d.memorySize} not mappable`);
        if (d.mmapOffset > BigInt(Number.MAX_SAFE_INTEGER)) throw new MemoryTableError(`region ${i} mmap_offset ${d.mmapOffset} too large`);
        const problem = guestMemoryFdProblem(fds[i], Number(d.mmapOffset), Number(d.memorySize));
        if (problem) throw new MemoryTableError(`region ${i}: ${problem}`);
        const ab = vhost.mmap(fds[i], Number(d.mmapOffset), Number(d.memorySize), true);
        buffers.push(ab);
        return { gpa: gpa(d.guestPhysAddr), va: frontendVa(d.userspaceAddr), size: d.memorySize, bytes: new Uint8Array(ab) };
      });
      return new GuestMemory(regions, unmapAll);
    } catch (err) {
      unmapAll();
      throw err;
    }
  }

  get regions(): readonly MappedRegion[] {
    return this.byGpa;
  }

  /** Unmaps the regions now; any later translation result must not be used. */
  close(): void {
    this.release();
  }

  private static find(sorted: readonly MappedRegion[], addr: bigint, key: 'gpa' | 'va'): MappedRegion | undefined {
    let lo = 0;
    let hi = sorted.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const r = sorted[mid];
      const start = r[key];
      if (addr < start) hi = mid - 1;
      else if (addr >= start + r.size) lo = mid + 1;
      else return r;
    }
    return undefined;
  }

  /**
   * The longest contiguous host view starting at `addr`, at most `len` bytes (len > 0), or
   * undefined if `addr` is in no region. The result may be shorter than len: callers loop.
   */
  contiguousAtGpa(addr: Gpa, len: number): Segment | undefined {
    const r = GuestMemory.find(this.byGpa, addr, 'gpa');
    if (!r) return undefined;
    const offset = Number(addr - r.gpa); // < size ≤ 2^53: exact
    const avail = r.bytes.length - offset;
    return r.bytes.subarray(offset, offset + Math.min(avail, len));
  }

  /**
   * The range [addr, addr+len) as segments, split where regions end; undefined if any byte is
   * outside guest memory or the range wraps around 2^64. len 0 yields no segments.
   */
  rangeAtGpa(addr: Gpa, len: number, out: Segment[] = []): Segment[] | undefined {
    if (addr + BigInt(len) > U64_END) return undefined;
    let cursor: bigint = addr;
    let left = len;
    while (left > 0) {
      const seg = this.contiguousAtGpa(cursor as Gpa, left);
      if (!seg) return undefined;
      out.push(seg);
      left -= seg.length;
      cursor += BigInt(seg.length);
    }
    return out;
  }

  /**
   * {@link rangeAtGpa} for an address given as its two 32-bit halves (as a descriptor holds it):
   * the same answer, computed with numbers when the address and every region lie below 2^53 (no
   * BigInt on the data path), else through the BigInt path.
   */
  rangeAtGpaParts(lo: number, hi: number, len: number, out: Segment[]): Segment[] | undefined {
    const addr = hi * 0x1_0000_0000 + lo;
    if (!this.numericExact || addr + len > NUMBER_EXACT_END) return this.rangeAtGpa(gpa((BigInt(hi) << 32n) | BigInt(lo)), len, out);
    let cursor = addr;
    let left = len;
    while (left > 0) {
      const i = this.regionIndexAt(cursor);
      if (i < 0) return undefined;
      const bytes = this.numBytes[i];
      const offset = cursor - this.numStart[i];
      const n = Math.min(bytes.length - offset, left);
      out.push(bytes.subarray(offset, offset + n));
      left -= n;
      cursor += n;
    }
    return out;
  }

  /** {@link atGpa} for an address given as its two 32-bit halves. */
  atGpaParts(lo: number, hi: number, len: number): Segment | undefined {
    const addr = hi * 0x1_0000_0000 + lo;
    if (!this.numericExact || addr + len > NUMBER_EXACT_END) return this.atGpa(gpa((BigInt(hi) << 32n) | BigInt(lo)), len);
    const i = this.regionIndexAt(addr);
    if (i < 0) return undefined;
    const offset = addr - this.numStart[i];
    if (offset + len > this.numBytes[i].length) return undefined;
    return this.numBytes[i].subarray(offset, offset + len);
  }

  /**
   * Points `out` at `len` bytes at a guest-physical address (two u32 halves) that must lie inside one
   * region, as a DataView and a byte offset into it (an indirect descriptor table): no view object is
   * made on the numeric path. Returns false when the range is not inside one region.
   */
  viewAtGpaParts(lo: number, hi: number, len: number, out: ViewRef): boolean {
    const addr = hi * 0x1_0000_0000 + lo;
    if (!this.numericExact || addr + len > NUMBER_EXACT_END) {
      const seg = this.atGpa(gpa((BigInt(hi) << 32n) | BigInt(lo)), len);
      if (!seg) return false;
      out.view = new DataView(seg.buffer, seg.byteOffset, seg.byteLength);
      out.offset = 0;
      return true;
    }
    const i = this.regionIndexAt(addr);
    if (i < 0) return false;
    const offset = addr - this.numStart[i];
    if (offset + len > this.numBytes[i].length) return false;
    out.view = this.numViews[i];
    // The region's DataView starts where its bytes start: the offset is relative to the region.
    out.offset = offset;
    return true;
  }

  /** Index in byGpa of the region holding `addr` (an exact number), or −1. */
  private regionIndexAt(addr: number): number {
    const hint = this.lastHit;
    if (addr >= this.numStart[hint] && addr < this.numEnd[hint]) return hint;
    let lo = 0;
    let hi = this.numStart.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (addr < this.numStart[mid]) hi = mid - 1;
      else if (addr >= this.numEnd[mid]) lo = mid + 1;
      else {
        this.lastHit = mid;
        return mid;
      }
    }
    return -1;
  }

  /** A front-end VA range that must lie inside a single region (virtqueue rings). */
  atVa(addr: FrontendVa, len: number): Segment | undefined {
    const r = GuestMemory.find(this.byVa, addr, 'va');
    if (!r) return undefined;
    const offset = Number(addr - r.va);
    if (offset + len > r.bytes.length) return undefined;
    return r.bytes.subarray(offset, offset + len);
  }

  /** A guest-physical range that must lie inside a single region (test frontend ring layout). */
  atGpa(addr: Gpa, len: number): Segment | undefined {
    const seg = this.contiguousAtGpa(addr, len);
    return seg && seg.length === len ? seg : undefined;
  }
}
