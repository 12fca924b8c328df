/**
 * Byte ranges of a descriptor chain's segment list (the readable or the writable views of guest
 * memory a SplitQueue hands out): a view where a range lies in one segment, copies where it spans
 * several. No allocation unless asked for: the device's data path runs through here per request.
 */
import type { Segment } from './memory';

/** Index of the segment holding byte `offset` of the list and the offset inside it. */
function locate(segs: readonly Segment[], offset: number): [number, number] {
  let i = 0;
  let skip = offset;
  while (i < segs.length && skip >= segs[i].length) {
    skip -= segs[i].length;
    i++;
  }
  return [i, skip];
}

/** A view of `len` (> 0) bytes at `offset` of the segment list when they lie in one segment, else null. */
export function viewAt(segs: readonly Segment[], offset: number, len: number): Uint8Array | null {
  const [i, skip] = locate(segs, offset);
  if (i >= segs.length || skip + len > segs[i].length) return null;
  const s = segs[i];
  // The usual case (one descriptor per part) needs no new view object at all.
  if (skip === 0 && len === s.length) return s;
  return new Uint8Array(s.buffer, s.byteOffset + skip, len);
}

/** Copies `len` bytes at `offset` of the segment list to the start of `into`; false when the list holds fewer. */
export function gatherInto(segs: readonly Segment[], offset: number, len: number, into: Uint8Array): boolean {
  let [i, skip] = locate(segs, offset);
  let done = 0;
  while (done < len && i < segs.length) {
    const s = segs[i];
    const n = Math.min(s.length - skip, len - done);
    into.set(s.subarray(skip, skip + n), done);
    done += n;
    skip = 0;
    i++;
  }
  return done === len;
}

/** Writes data at `offset` into the segment list; the caller checked it fits. */
export function scatter(segs: readonly Segment[], offset: number, data: Uint8Array): void {
  let i = 0;
  let skip = offset;
  while (i < segs.length && skip >= segs[i].length) {
    skip -= segs[i].length;
    i++;
  }
  let done = 0;
  while (done < data.length && i < segs.length) {
    const s = segs[i];
    const n = Math.min(s.length - skip, data.length - done);
    s.set(data.subarray(done, done + n), skip);
    done += n;
    skip = 0;
    i++;
  }
}
