import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { VirtioDeviceStatus } from '../../../extension/core/qmp-virtio';
import { frameFromSnapshot } from '../../../extension/vscode/rings/frames';
import { MAX_RECENT, MAX_SLOTS, parseFromWebview } from '../../../extension/vscode/rings/messages';

/** Shaped like the backend's snapshot (backend/vhost-user-backend.ts BackendSnapshot). */
function snapshot(over: Record<string, unknown> = {}): Record<string, unknown> {
  const descriptors = Array.from({ length: 8 }, (_, i) => ({ i, state: ['idle', 'in-flight', 'done', 'rejected'][i % 4], addr: '0x0', len: 0, flags: '', next: 0 }));
  return {
    type: 'snapshot', schema: 1, pid: 1234, uptimeMs: 5000,
    engine: { name: 'openssl', reason: 'auto' },
    counters: { requests: 10, bytesIn: 4096, bytesOut: 4096 },
    queues: [
      { index: 0, size: 8, availIdx: 70000, usedIdx: 65535, lastAvailIdx: 3, inFlight: 1, descriptors,
        recent: [{ head: 0, opcode: 'CIPHER_ENCRYPT', sessionId: '7', srcLen: 64, dstLen: 64, status: 'OK', latencyUs: 120, atMs: 1 }] },
      { index: 1, size: 0, availIdx: null, usedIdx: null, lastAvailIdx: null, inFlight: 0, descriptors: [], recent: [] },
    ],
    ...over,
  };
}

const device = {
  queues: [{ index: 0, owner: 'backend' }, { index: 1, owner: 'qemu', size: 1024, descAddr: 0, availAddr: 0, usedAddr: 0, lastAvailIdx: 5, shadowAvailIdx: 6, usedIdx: 5, signalledUsed: 5, signalledUsedValid: true, inUse: 1 }],
} as unknown as VirtioDeviceStatus;

describe('rings frames from telemetry', () => {
  it('maps the backend snapshot: slot states, u16 indexes, recent requests, bytes', () => {
    const f = frameFromSnapshot(snapshot(), 1, 1000);
    assert.equal(f.engine, 'openssl');
    assert.equal(f.backendPid, 1234);
    assert.equal(f.bytes, 8192);
    assert.equal(f.queues.length, 1, 'queues the driver has not set up (size 0) are left out');
    const q = f.queues[0]!;
    assert.equal(q.slots, 'fbuufbuu');
    assert.equal(q.availIdx, 70000 & 0xffff, 'indexes are u16');
    assert.equal(q.usedIdx, 65535);
    assert.deepEqual(q.recent[0], { opcode: 'CIPHER_ENCRYPT', session: '7', srcLen: 64, dstLen: 64, status: 'OK', latencyUs: 120 });
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
      queues: [{ index: 0, size: 100_000, descriptors: Array.from({ length: 5000 }, () => 'in-flight'), recent: Array.from({ length: 500 }, () => ({ opcode: 'y'.repeat(999) })) }],
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
    assert.deepEqual(parseFromWebview({ type: 'drawn', seq: 3, queues: 2, slotsDrawn: 100 }), { type: 'drawn', seq: 3, queues: 2, slotsDrawn: 100 });
  });

  it('rejects unknown types, wrong field types, negative and oversized counts', () => {
    for (const bad of [null, 'ready', [], {}, { type: 'eval' }, { type: 'drawn', seq: -1, queues: 1, slotsDrawn: 1 },
      { type: 'drawn', seq: 1.5, queues: 1, slotsDrawn: 1 }, { type: 'drawn', seq: 1, queues: 99, slotsDrawn: 1 },
      { type: 'drawn', seq: 1, queues: 1, slotsDrawn: 1e9 }, { type: 'drawn', seq: '1', queues: 1, slotsDrawn: 1 }]) {
      assert.equal(parseFromWebview(bad), undefined, JSON.stringify(bad));
    }
  });
});
