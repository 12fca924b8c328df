/**
 * The table of a drain pass's cipher operations, run by the engine in one call (docs/backend.md,
 * "One native crossing per pass"). The device adds a row only for a request it has fully
 * validated (every rule stays in device.ts, written once) whose IV, src and dst are each one view of
 * guest memory; a row is (cipher id, encrypt, then buffer index and offset of IV, src and dst, and
 * the length), the buffers being the ArrayBuffers those views live in (the mapped guest regions).
 * The engine re-checks every row against the buffers as they are when it runs (defence in depth).
 *
 * `flush` runs the rows in the order they were added, writes each request's status byte (OK, or ERR
 * when the engine refused or failed the row) and hands the results to the owner (the queue pump),
 * which completes the requests on the ring in the same order. Whoever is about to touch guest memory
 * or the used ring for a request that is not in the table flushes first, so the guest sees the same
 * order of effects as with one engine call per request.
 */
import { CIPHER_BATCH_MAX_BUFFERS, CIPHER_ROW_FIELDS, type CipherBatchRunner, ROW_FAILED, ROW_OK } from './engine';
import { CryptoStatus } from './spec';
import type { Segment } from '../virtio/memory';

/** The owner's completion of the rows just run: `results[i]` is ROW_OK or why row i failed. */
export type BatchCompletion = (rows: number, results: Uint8Array) => void;

export class CipherBatch {
  private readonly table: Float64Array;
  private readonly results: Uint8Array;
  private readonly buffers: ArrayBufferLike[] = [];
  /** Per row: the segment whose last byte is the request's status. */
  private readonly statusSegs: (Segment | undefined)[];
  private count = 0;
  /** Rows ever added (the owner tells a deferred request by this moving). */
  added = 0;
  /** Engine calls made (one per flush with rows). */
  calls = 0;

  constructor(
    private readonly runner: CipherBatchRunner,
    readonly capacity: number,
    private readonly complete: BatchCompletion,
  ) {
    this.table = new Float64Array(capacity * CIPHER_ROW_FIELDS);
    this.results = new Uint8Array(capacity);
    this.statusSegs = new Array<Segment | undefined>(capacity);
  }

  /** Rows waiting for the next flush. */
  get rows(): number {
    return this.count;
  }

  /**
   * Adds one validated operation (iv null: the mode takes none; src and dst of the same length).
   * A full table, or one whose buffer list is full, is flushed first.
   */
  add(id: number, encrypt: boolean, iv: Uint8Array | null, src: Uint8Array, dst: Uint8Array, status: Segment): void {
    if (this.count === this.capacity || !this.roomFor(iv, src, dst)) this.flush();
    const t = this.table;
    const b = this.count * CIPHER_ROW_FIELDS;
    t[b] = id;
    t[b + 1] = encrypt ? 1 : 0;
    if (iv) {
      t[b + 2] = this.bufferIndex(iv.buffer);
      t[b + 3] = iv.byteOffset;
    } else {
      t[b + 2] = -1;
      t[b + 3] = 0;
    }
    t[b + 4] = this.bufferIndex(src.buffer);
    t[b + 5] = src.byteOffset;
    t[b + 6] = this.bufferIndex(dst.buffer);
    t[b + 7] = dst.byteOffset;
    t[b + 8] = src.length;
    this.statusSegs[this.count] = status;
    this.count++;
    this.added++;
  }

  /** Runs the rows, writes their status bytes, completes them with the owner; a no-op when empty. */
  flush(): void {
    const n = this.count;
    if (n === 0) return;
    this.count = 0;
    this.calls++;
    const results = this.results;
    try {
      this.runner.run(this.buffers, this.table, n, results);
    } catch {
      // Not reachable with the addon's runner (it reports per row); every row is then failed.
      results.fill(ROW_FAILED, 0, n);
    }
    this.buffers.length = 0;
    for (let i = 0; i < n; i++) {
      const s = this.statusSegs[i] as Segment;
      s[s.length - 1] = results[i] === ROW_OK ? CryptoStatus.OK : CryptoStatus.ERR;
      this.statusSegs[i] = undefined;
    }
    this.complete(n, results);
  }

  /** Forgets the rows without running them (the ring they came from was abandoned). */
  discard(): void {
    this.statusSegs.fill(undefined, 0, this.count);
    this.count = 0;
    this.buffers.length = 0;
  }

  private roomFor(iv: Uint8Array | null, src: Uint8Array, dst: Uint8Array): boolean {
    const bufs = this.buffers;
    if (bufs.length + 3 <= CIPHER_BATCH_MAX_BUFFERS) return true;
    let fresh = 0;
    if (iv && !bufs.includes(iv.buffer)) fresh++;
    if (!bufs.includes(src.buffer)) fresh++;
    if (dst.buffer !== src.buffer && !bufs.includes(dst.buffer)) fresh++;
    return bufs.length + fresh <= CIPHER_BATCH_MAX_BUFFERS;
  }

  private bufferIndex(buf: ArrayBufferLike): number {
    const bufs = this.buffers;
    for (let i = 0; i < bufs.length; i++) if (bufs[i] === buf) return i;
    bufs.push(buf);
    return bufs.length - 1;
  }
}

