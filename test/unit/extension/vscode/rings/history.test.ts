/**
 * The rings panel's frame history (extension/vscode/rings/history.ts) and motion gate (motion.ts),
 * in plain Node: the cursor follows the newest frame live, stays on its frame while paused (also
 * when the oldest frame goes), seeks within bounds, and a replay plays to the end and pauses; only
 * snapshots that moved become frames, and the feed's rate drops after 10 unchanged ones.
 */
import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FrameHistory, type HistoryEntry } from '../../../../../extension/vscode/rings/history';
import { MAX_HISTORY, type RingsFrame } from '../../../../../extension/vscode/rings/messages';
import { IDLE_MS, MotionGate } from '../../../../../extension/vscode/rings/motion';
import type { BackendSnapshot } from '../../../../../backend/telemetry/schema';
import { backendSnapshot, queueSnapshot } from '../../../backend/telemetry/snapshot-fixture';

function entry(seq: number, atMs = seq * 100): HistoryEntry {
  const frame: RingsFrame = { seq, timeMs: atMs, engine: 'openssl', backendPid: 1, bytes: 0, requests: seq, kicks: 0, interrupts: 0, queues: [] };
  return { frame, snapshot: backendSnapshot(), control: undefined, atMs };
}

describe('rings frame history', () => {
  it('follows the newest frame live, keeps its frame paused, seeks within bounds', () => {
    const h = new FrameHistory();
    assert.equal(h.position, -1);
    assert.equal(h.add(entry(1)), true);
    assert.equal(h.add(entry(2)), true);
    assert.deepEqual(h.cursor(false), { pos: 1, count: 2, live: true });
    h.setPaused(true);
    assert.equal(h.add(entry(3)), false);
    assert.equal(h.shown()?.frame.seq, 2);
    assert.deepEqual(h.cursor(false), { pos: 1, count: 3, live: false });
    h.seek(99);
    assert.equal(h.position, 2);
    h.seek(-5);
    assert.equal(h.position, 0);
    h.toNewest();
    assert.equal(h.shown()?.frame.seq, 3);
    assert.equal(h.cursor(true).live, false, 'a replay is never live');
  });

  it('keeps MAX_HISTORY frames; a paused cursor stays on its frame when the oldest goes', () => {
    const h = new FrameHistory();
    for (let i = 1; i <= MAX_HISTORY; i++) h.add(entry(i));
    h.setPaused(true);
    h.seek(10);
    const held = h.shown()?.frame.seq;
    h.add(entry(MAX_HISTORY + 1));
    assert.equal(h.length, MAX_HISTORY);
    assert.equal(h.shown()?.frame.seq, held);
    assert.equal(h.frames()[0]?.seq, 2);
  });

  it('plays a replay at its recorded pace to the end, then pauses', async () => {
    const h = new FrameHistory();
    h.replace([entry(1, 0), entry(2, 30), entry(3, 60)]);
    assert.equal(h.isPaused, true);
    const shown: number[] = [];
    h.setPaused(false);
    h.play(() => shown.push(h.shown()!.frame.seq));
    for (let waited = 0; !h.isPaused && waited < 5000; waited += 20) await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(shown, [1, 2, 3, 3]);
    assert.equal(h.isPaused, true);
    h.clear();
    assert.deepEqual([h.position, h.length, h.isPaused], [-1, 0, false]);
  });
});

describe('rings motion gate', () => {
  const snapshot = (used: number): BackendSnapshot => backendSnapshot({
    counters: { ...backendSnapshot().counters, requests: used },
    queues: [queueSnapshot({ index: 0, size: 8, availIdx: used, usedIdx: used, lastAvailIdx: used, slots: '........' })],
  });

  it('numbers the frames that moved, skips the rest, drops the rate after 10 unchanged snapshots', () => {
    const rates: number[] = [];
    const gate = new MotionGate({ setInterval: (ms: number) => { rates.push(ms); } }, 200, () => true);
    assert.equal(gate.next(snapshot(1), undefined)?.seq, 1);
    for (let i = 0; i < 10; i++) assert.equal(gate.next(snapshot(1), undefined), undefined);
    assert.equal(gate.skipped, 10);
    assert.equal(rates.at(-1), IDLE_MS);
    assert.equal(gate.next(snapshot(2), undefined)?.seq, 2);
    assert.equal(rates.at(-1), 200);
    assert.equal(gate.lastSeq, 2);
    gate.forget();
    assert.equal(gate.next(snapshot(2), undefined)?.seq, 3, 'after forget() the next snapshot is a frame');
  });
});
