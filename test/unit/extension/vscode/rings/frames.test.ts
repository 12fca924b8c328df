import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { VirtioDeviceStatus } from '../../../../../extension/lab/qemu/qmp-virtio';
import { frameFromSnapshot, withAvailRing } from '../../../../../extension/vscode/rings/frames';
import { MAX_RECENT, MAX_SLOTS, parseFromWebview, parsePanelState } from '../../../../../extension/vscode/rings/messages';

/** Shaped like the backend's snapshot (backend/telemetry/schema.ts BackendSnapshot). */
function snapshot(over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    type: 'snapshot', schema: 2, pid: 1234, uptimeMs: 5000,
    engine: { name: 'openssl', reason: 'auto' },
    counters: { requests: 10, bytesIn: 4096, bytesOut: 4096, kicks: 7, interrupts: 6 },
    queues: [
      { index: 0, size: 8, availIdx: 70000, usedIdx: 65535, lastAvailIdx: 3, usedEvent: 65534, availEvent: 3, availFlags: 0, usedFlags: 0, inFlight: 1, slots: '.adu.adu',
        recent: [{ id: 9, head: 0, opcode: 'CIPHER_ENCRYPT', sessionId: '7', srcLen: 64, dstLen: 64, status: 'OK', latencyUs: 120, atMs: 1, descriptors: 1, indirect: true, rejected: null, fault: null }] },
      { index: 1, size: 0, availIdx: null, usedIdx: null, lastAvailIdx: null, inFlight: 0, slots: '', recent: [] },
    ],
    ...over,
  };
}

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
    assert.equal(q.availIdx, 70000 & 0xffff, 'indexes are u16');
    assert.equal(q.usedIdx, 65535);
    assert.equal(q.usedEvent, 65534);
    assert.equal(f.kicks, 7);
    assert.deepEqual(q.recent[0], { id: 9, head: 0, opcode: 'CIPHER_ENCRYPT', session: '7', srcLen: 64, dstLen: 64, status: 'OK', latencyUs: 120, rejected: '', fault: '' });
  });

  it("accepts only the schema's slot states: any other character (old aliases included) shows as free", () => {
    const q = frameFromSnapshot(snapshot({ queues: [{ index: 0, size: 8, slots: 'fbiXu<a.' }] }), 1, 1).queues[0]!;
    assert.equal(q.slots, '....u.a.');
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
    assert.equal(withAvailRing(qmp, { type: 'avail', addr: 0x7f000, flags: 0, idx: 70000 }).availIdx, null, 'not a u16');
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

  it('caps hostile input: slot count, recent list, text length; garbage gives an empty frame', () => {
    const huge = snapshot({
      engine: { name: 'x'.repeat(10_000) },
      queues: [{ index: 0, size: 100_000, slots: 'u'.repeat(5000), recent: Array.from({ length: 500 }, () => ({ opcode: 'y'.repeat(999) })) }],
    });
    const q = frameFromSnapshot(huge, 1, 1).queues[0]!;
    assert.equal(q.size, MAX_SLOTS);
    assert.equal(q.slots.length, MAX_SLOTS);
    assert.equal(q.recent.length, MAX_RECENT);
    assert.ok(q.recent[0]!.opcode.length <= 48);
    assert.ok(frameFromSnapshot(huge, 1, 1).engine.length <= 48);
    for (const junk of [null, 42, 'text', [], { queues: 'no' }, { queues: [null, 1, 'x'] }]) {
      assert.deepEqual(frameFromSnapshot(junk, 2, 3).queues, []);
    }
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
