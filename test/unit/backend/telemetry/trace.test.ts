import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { MAX_TRACE_FILE_BYTES, readTraceFile } from '../../../../backend/telemetry/trace-file';
import { TRACE_VERSION, TraceRecorder, parseTrace, rleSlots, unRleSlots } from '../../../../backend/telemetry/trace';
import { readSnapshot } from '../../../../backend/telemetry/readers';
import { frameFromSnapshot } from '../../../../extension/vscode/rings/frames';

function snap(requests: number, usedIdx: number): Record<string, unknown> {
  return {
    type: 'snapshot', schema: 2, pid: 1, counters: { requests, kicks: requests, interrupts: requests, bytesIn: 64 * requests, bytesOut: 64 * requests },
    queues: [{ index: 0, size: 8, availIdx: usedIdx, usedIdx, lastAvailIdx: usedIdx, usedEvent: usedIdx, slots: '..u.....',
      // Like the backend: the newest requests, newest first (a sliding window).
      recent: Array.from({ length: Math.min(16, requests) }, (_, k) => ({ id: requests - k, head: 2, opcode: 'CIPHER_ENCRYPT', sessionId: '3', srcLen: 64, dstLen: 64, status: 'OK', latencyUs: 5 })) }],
  };
}

describe('rings traces', () => {
  it('writes a versioned header and only snapshots that moved; replays to the same frames', () => {
    let text = '';
    const rec = new TraceRecorder((t) => { text += t; }, 'test', 1000);
    const snaps = [snap(1, 1), snap(1, 1), snap(2, 2), snap(2, 2), snap(5, 5)];
    snaps.forEach((s, i) => rec.add(s, 1000 + 50 * i));
    assert.equal(rec.frames, 3, 'unchanged snapshots are not written');
    assert.equal(rec.bytes, Buffer.byteLength(text));
    const header = JSON.parse(text.split('\n')[0]!) as Record<string, unknown>;
    assert.equal(header.type, 'vlab-rings-trace');
    assert.equal(header.version, TRACE_VERSION);
    assert.equal(header.telemetrySchema, 2);
    const parsed = parseTrace(text);
    assert.deepEqual(parsed.entries.map((e) => e.t), [0, 100, 200]);
    const live = [snaps[0], snaps[2], snaps[4]].map((s, i) => frameFromSnapshot(readSnapshot(s), i + 1, 0));
    const replayed = parsed.entries.map((e, i) => frameFromSnapshot(readSnapshot(e.snapshot), i + 1, 0));
    assert.deepEqual(replayed, live);
    assert.deepEqual(parsed.entries.map((e) => e.snapshot), [snaps[0], snaps[2], snaps[4]], 'the delta lines decode to the full snapshots');
    const second = JSON.parse(text.split('\n')[2]!) as { delta?: boolean; snapshot: { queues: Record<string, unknown>[] } };
    assert.equal(second.delta, true);
    assert.equal('slots' in second.snapshot.queues[0]! || 'slotsRle' in second.snapshot.queues[0]!, false, 'unchanged slots are left out');
    const first = JSON.parse(text.split('\n')[1]!) as { snapshot: { queues: Record<string, unknown>[] } };
    assert.equal(first.snapshot.queues[0]!.slotsRle, '2.1u5.', 'slots are run-length encoded');
  });

  it('a backend restart (new pid) writes a full snapshot again', () => {
    let text = '';
    const rec = new TraceRecorder((t) => { text += t; }, 'test', 0);
    rec.add(snap(5, 5), 0);
    rec.add({ ...snap(1, 1), pid: 2 }, 10);
    const lines = text.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.equal(lines[2]!.delta, undefined);
    assert.equal(parseTrace(text).entries[1]!.snapshot.pid, 2);
    assert.deepEqual((parseTrace(text).entries[1]!.snapshot.queues as { recent: unknown[] }[])[0]!.recent, (snap(1, 1).queues as { recent: unknown[] }[])[0]!.recent);
  });

  it('run-length slot encoding round-trips and refuses absurd sizes', () => {
    for (const slots of ['', '.', '....aadu', 'u'.repeat(1024), '.a'.repeat(300)]) assert.equal(unRleSlots(rleSlots(slots)), slots);
    assert.equal(unRleSlots('99999.99999.'), undefined);
  });

  it('refuses files that are not traces or of another version; skips junk lines', () => {
    assert.throws(() => parseTrace('{"type":"snapshot"}\n'), /not a vlab rings trace/);
    assert.throws(() => parseTrace('{"type":"vlab-rings-trace","version":99}\n'), /version 99/);
    assert.throws(() => parseTrace(''), /empty trace/);
    const p = parseTrace('{"type":"vlab-rings-trace","version":1}\nnot json\n{"t":"x"}\n{"t":1,"snapshot":{"type":"snapshot"}}\n');
    assert.equal(p.entries.length, 1);
    assert.equal(p.skipped, 2);
  });

  // A replayed file is untrusted and may be huge: it is read in bounded chunks, never whole, and
  // reading stops at the caps (frames, bytes). A sparse file costs nothing on disk.
  it('replays a huge (sparse) trace file: the frames before the hole, read within the byte cap', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vlab-trace-big-'));
    try {
      const file = path.join(dir, 'big.jsonl');
      let text = '';
      const rec = new TraceRecorder((t) => { text += t; }, 'test', 1000);
      [snap(1, 1), snap(2, 2), snap(5, 5)].forEach((s, i) => rec.add(s, 1000 + 50 * i));
      fs.writeFileSync(file, text);
      fs.truncateSync(file, 3 * 2 ** 30);
      const parsed = readTraceFile(file);
      assert.deepEqual(parsed.entries.map((e) => e.t), [0, 50, 100], 'the frames written before the hole');
      assert.ok(parsed.bytesRead <= MAX_TRACE_FILE_BYTES, `read ${parsed.bytesRead} bytes, at most ${MAX_TRACE_FILE_BYTES}`);
      assert.equal(parsed.truncated, true, 'says it stopped before the end of the file');
      // A trace that fits is read whole and not marked truncated; its frames are parseTrace's.
      fs.writeFileSync(file, `${text}not json\n`);
      const small = readTraceFile(file);
      assert.equal(small.truncated, false);
      assert.equal(small.skipped, 1);
      assert.deepEqual(small.entries, parseTrace(text).entries);
      // A line longer than MAX_TRACE_LINE is skipped without being kept whole.
      fs.writeFileSync(file, `${text.split('\n')[0]}\n${'x'.repeat(3 << 20)}\n${text.split('\n').slice(1).join('\n')}`);
      const long = readTraceFile(file);
      assert.equal(long.entries.length, 3);
      assert.equal(long.skipped, 1);
      fs.mkdirSync(path.join(dir, 'd'));
      assert.throws(() => readTraceFile(path.join(dir, 'd')), /not a regular file/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
