import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { readSnapshot } from '../../../../../backend/telemetry/readers';
import type { VirtioDeviceStatus } from '../../../../../extension/lab/qemu/qmp-virtio';
import { frameFromSnapshot, withAvailRing } from '../../../../../extension/vscode/rings/frames';
import { MAX_QUEUES, MAX_RECENT, MAX_SLOTS, parseFromWebview, parsePanelState } from '../../../../../extension/vscode/rings/messages';
import { backendSnapshot, queueSnapshot, recentRequest } from '../../../backend/telemetry/snapshot-fixture';

const snapshot = () => backendSnapshot({
  queues: [
    queueSnapshot({ size: 8, availIdx: 70000 & 0xffff, usedIdx: 65535, lastAvailIdx: 3, usedEvent: 65534, slots: '.adu.adu' }),
    queueSnapshot({ index: 1, size: 0, ready: false, availIdx: null, usedIdx: null, lastAvailIdx: null, inFlight: 0, slots: '', recent: [] }),
  ],
});

const device = {
  queues: [{ index: 0, owner: 'backend' }, { index: 1, owner: 'qemu', size: 1024, descAddr: 0, availAddr: 0, usedAddr: 0, lastAvailIdx: 5, shadowAvailIdx: 6, availIdx: 6, usedIdx: 5, signalledUsed: 5, signalledUsedValid: true, inUse: 1 }],
} as unknown as VirtioDeviceStatus;

describe('rings frames from telemetry', () => {
  it('maps the backend snapshot: slot states, u16 indexes, recent requests, bytes', () => {
    const f = frameFromSnapshot(snapshot(), 1, 1000);
    assert.equal(f.engine, 'openssl');
    assert.equal(f.backendPid, 1234);
    assert.equal(f.bytes, 8192);
    assert.equal(f.queues.length, 1, 'queues the driver has not set up (size 0) are left out');
    const q = f.queues[0]!;
    assert.equal(q.slots, '.adu.adu', "the schema's slot characters pass through unchanged");
    assert.equal(q.availIdx, 70000 & 0xffff);
    assert.equal(q.usedIdx, 65535);
    assert.equal(q.usedEvent, 65534);
    assert.equal(f.kicks, 7);
    assert.deepEqual(q.recent[0], { id: 9, head: 0, opcode: 'CIPHER_ENCRYPT', session: '7', srcLen: 64, dstLen: 64, status: 'OK', latencyUs: 120, rejected: '', fault: '' });
  });

  it('the control queue shows an unknown avail index as unknown, never as 0', () => {
    const dev = { queues: [{ index: 0, owner: 'backend' }, { index: 1, owner: 'qemu', size: 1024, lastAvailIdx: null, shadowAvailIdx: null, availIdx: null, usedIdx: 324, inUse: 0 }] } as unknown as VirtioDeviceStatus;
    const control = frameFromSnapshot(snapshot(), 1, 1, dev).queues.find((q) => q.source === 'qmp')!;
    assert.equal(control.availIdx, null);
    assert.equal(control.usedIdx, 324);
  });

  it("the control queue's avail index is the one the backend read from the guest's avail ring when QMP leaves it out", () => {
    const qmp = { index: 1, owner: 'qemu' as const, size: 1024, availAddr: 0x7f000, lastAvailIdx: null, shadowAvailIdx: null, availIdx: null, usedIdx: 324, inUse: 0 };
    const read = withAvailRing(qmp, { type: 'avail', addr: 0x7f000, flags: 1, idx: 324 });
    const control = frameFromSnapshot(snapshot(), 1, 1, { queues: [{ index: 0, owner: 'backend' }, read] } as unknown as VirtioDeviceStatus).queues.find((q) => q.source === 'qmp')!;
    assert.equal(control.availIdx, 324);
    assert.equal(withAvailRing(qmp, { type: 'avail', addr: 0x80000, flags: 0, idx: 5 }).availIdx, null, 'a reply for another ring address is ignored');
    assert.equal(withAvailRing(qmp, { type: 'error', message: 'x' }).availIdx, null);
    assert.equal(withAvailRing(qmp, undefined).availIdx, null, 'no reply (yet)');
    assert.equal(withAvailRing({ ...qmp, availIdx: 9 }, { type: 'avail', addr: 0x7f000, flags: 0, idx: 5 }).availIdx, 9, 'what QEMU reports stays');
  });

  it('adds the control queue from QMP when QEMU services it', () => {
    const f = frameFromSnapshot(snapshot(), 1, 1000, device);
    const control = f.queues.find((q) => q.source === 'qmp');
    assert.ok(control);
    assert.equal(control.label, 'controlq');
    assert.equal(control.availIdx, 6);
    assert.equal(control.inFlight, 1);
  });

  it("keeps within the frame's limits: slots, queues, recent requests, label lengths (the reader's caps are wider)", () => {
    const big = backendSnapshot({
      engine: { name: 'x'.repeat(200), reason: '' },
      queues: Array.from({ length: 40 }, (_, i) => queueSnapshot({ index: i, size: 32768, slots: 'u'.repeat(32768), recent: Array.from({ length: 16 }, () => recentRequest({ head: 30000, opcode: 'y'.repeat(200), fault: 'z'.repeat(5000), rejected: 'r'.repeat(3000) })) })),
    });
    const f = frameFromSnapshot(big, 1, 1);
    assert.equal(f.queues.length, MAX_QUEUES - 1);
    const q = f.queues[0]!;
    assert.equal(q.size, MAX_SLOTS);
    assert.equal(q.slots.length, MAX_SLOTS);
    assert.equal(q.recent.length, MAX_RECENT);
    assert.equal(q.recent[0]!.head, MAX_SLOTS - 1, 'a head the webview may ask about');
    assert.ok(q.recent[0]!.opcode.length <= 48 && q.recent[0]!.fault.length <= 48 && q.recent[0]!.rejected.length <= 200);
    assert.ok(f.engine.length <= 48);
  });

  it('no snapshot (builtin backend, or a line the reader refused) gives a frame of the QMP queues only', () => {
    for (const junk of [null, 42, 'text', [], { queues: 'no' }, { type: 'snapshot', schema: 1, queues: [] }]) {
      const f = frameFromSnapshot(readSnapshot(junk), 2, 3);
      assert.deepEqual([f.queues, f.backendPid, f.engine, f.requests], [[], null, '?', 0]);
    }
    assert.deepEqual(frameFromSnapshot(undefined, 1, 1, device).queues.map((q) => q.label), ['controlq']);
  });
});

describe('messages from the webview are validated', () => {
  it('accepts the declared shapes only', () => {
    assert.deepEqual(parseFromWebview({ type: 'ready' }), { type: 'ready' });
    assert.deepEqual(parseFromWebview({ type: 'pause', extra: 1 }), { type: 'pause' });
    assert.deepEqual(parseFromWebview({ type: 'drawn', seq: 3, queues: 2, slotsDrawn: 100, frames: 4 }), { type: 'drawn', seq: 3, queues: 2, slotsDrawn: 100, frames: 4 });
    assert.deepEqual(parseFromWebview({ type: 'chain', queue: 0, head: 17 }), { type: 'chain', queue: 0, head: 17 });
    assert.deepEqual(parseFromWebview({ type: 'seek', pos: 4 }), { type: 'seek', pos: 4 });
    assert.deepEqual(parseFromWebview({ type: 'record', on: true }), { type: 'record', on: true });
  });

  it('rejects unknown types, wrong field types, negative and oversized counts', () => {
    for (const bad of [null, 'ready', [], {}, { type: 'eval' }, { type: 'drawn', seq: -1, queues: 1, slotsDrawn: 1, frames: 1 }, { type: 'drawn', seq: 1, queues: 1, slotsDrawn: 1, frames: 0 }, { type: 'drawn', seq: 1, queues: 1, slotsDrawn: 1 },
      { type: 'drawn', seq: 1.5, queues: 1, slotsDrawn: 1 }, { type: 'drawn', seq: 1, queues: 99, slotsDrawn: 1 },
      { type: 'drawn', seq: 1, queues: 1, slotsDrawn: 1e9 }, { type: 'drawn', seq: '1', queues: 1, slotsDrawn: 1 },
      { type: 'chain', queue: 0, head: 1024 }, { type: 'chain', queue: 0, head: -1 }, { type: 'seek', pos: 'x' }, { type: 'record', on: 1 }, { type: 'step' }]) {
      assert.equal(parseFromWebview(bad), undefined, JSON.stringify(bad));
    }
  });

  it('the saved panel state (serializer) keeps only a trace path, live pause and a selected slot in range', () => {
    assert.deepEqual(parsePanelState({ trace: '/tmp/a.jsonl', paused: true, selected: { queue: 0, head: 5 }, extra: 1 }), { trace: '/tmp/a.jsonl', paused: true, selected: { queue: 0, head: 5 } });
    assert.deepEqual(parsePanelState({ paused: 'yes', selected: { queue: 0, head: MAX_SLOTS }, trace: 7 }), {});
    assert.deepEqual(parsePanelState(null), {});
    assert.deepEqual(parsePanelState({ trace: 'x'.repeat(5000) }), {});
  });
});
