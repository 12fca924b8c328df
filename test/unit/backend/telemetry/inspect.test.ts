import assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import * as S from '../../../../backend/crypto/spec';
import { slotStateDescriptorReads } from '../../../../backend/telemetry/inspect';
import { SLOT_CHAR } from '../../../../backend/telemetry/schema';
import { type Fixture, startBackend } from '../helpers';

describe('telemetry ring inspection (slot states, chain detail)', () => {
  let fx: Fixture;
  before(() => {
    fx = startBackend();
  });
  after(() => fx.close());

  it('a posted chain shows as posted on every descriptor; used_event bounds the returned window', async () => {
    const fe = await fx.connect({ queueSize: 64 });
    const id = await fe.cipherSession(S.VIRTIO_CRYPTO_CIPHER_AES_CBC, crypto.randomBytes(16), true);
    await fe.run({ opcode: 0, sessionId: id, iv: Buffer.alloc(16), src: Buffer.alloc(32) });
    // The driver reclaimed everything: used_event = used idx → nothing is "returned, not reclaimed".
    fe.setUsedEvent(fe.usedIdx());
    let q = fx.backend.snapshot().queues[0]!;
    assert.equal(q.slots, SLOT_CHAR.free.repeat(64));
    // A direct chain 5 → 6 → 7, posted without a kick: the device has not taken it.
    fe.writeDesc(fe.descGpa, 5, fe.heapGpa, 16, 1, 6);
    fe.writeDesc(fe.descGpa, 6, fe.heapGpa + 64, 16, 1, 7);
    fe.writeDesc(fe.descGpa, 7, fe.heapGpa + 128, 16, 2, 0);
    fe.pushAvail(5);
    fe.publishAvail();
    q = fx.backend.snapshot().queues[0]!;
    assert.equal(q.slots.slice(4, 9), `${SLOT_CHAR.free}${SLOT_CHAR.posted.repeat(3)}${SLOT_CHAR.free}`);
    assert.equal((q.availIdx! - q.lastAvailIdx!) & 0xffff, 1);
    const pending = fx.backend.chain(0, 5);
    assert.ok(pending.type === 'chain');
    assert.equal(pending.state, 'posted');
    assert.equal(pending.match, 'pending');
    assert.deepEqual(pending.descriptors.map((d) => [d.i, d.len, d.flags]), [[5, 16, 'N'], [6, 16, 'N'], [7, 16, 'W']]);
    // Served (a 48-byte readable part is too short for a header: BADMSG chain, not a rejected one).
    fe.kick();
    await fe.waitUsed(1);
    q = fx.backend.snapshot().queues[0]!;
    assert.equal(q.slots.slice(5, 8), SLOT_CHAR.returned.repeat(3), 'returned, and the driver has not moved used_event');
    fe.setUsedEvent(fe.usedIdx());
    assert.equal(fx.backend.snapshot().queues[0]!.slots.slice(5, 8), SLOT_CHAR.free.repeat(3));
    const gone = fx.nextDisconnect();
    fe.close();
    await gone;
  });

  // Review F7: a hostile guest links the whole table into one NEXT cycle, rewinds used_event by the
  // queue size (every used entry "returned") and advances avail idx by the size without a kick (every
  // entry "posted"). Each snapshot used to walk size chains of size steps, twice: O(size²).
  it('a linked table with a rewound used_event and a full posted window costs a snapshot linear work', async (t) => {
    const size = 1024;
    const fe = await fx.connect({ queueSize: size });
    const id = await fe.cipherSession(S.VIRTIO_CRYPTO_CIPHER_AES_CBC, crypto.randomBytes(16), true);
    await fe.run({ opcode: 0, sessionId: id, iv: Buffer.alloc(16), src: Buffer.alloc(32) });
    for (let i = 0; i < size; i++) fe.writeDesc(fe.descGpa, i, fe.heapGpa, 16, 1, (i + 1) % size);
    for (let k = 0; k < size; k++) fe.pushAvail((k * 7) % size);
    fe.publishAvail();
    fe.setUsedEvent((fe.usedIdx() - size) & 0xffff);
    const r0 = slotStateDescriptorReads();
    const q = fx.backend.snapshot().queues[0]!;
    const reads = slotStateDescriptorReads() - r0;
    // A measurement, not an assertion (wall-clock limits do not hold on a loaded machine).
    const n = 20;
    const t0 = performance.now();
    for (let k = 0; k < n; k++) fx.backend.snapshot();
    t.diagnostic(`snapshot of the hostile ${size}-slot ring: ${((performance.now() - t0) / n).toFixed(2)} ms, ${reads} descriptor reads`);
    assert.equal(q.slots, SLOT_CHAR.posted.repeat(size), 'every slot is on a posted chain (the posted window wins over returned)');
    assert.ok(reads <= 2 * size, `descriptor reads per snapshot ${reads} ≤ 2 × ${size} (each slot once per window)`);
    const gone = fx.nextDisconnect();
    fe.close();
    await gone;
  });

  it('a chain that breaks a ring rule is recorded with its reason', async () => {
    const fe = await fx.connect({ queueSize: 64 });
    // Readable after writable (virtio 1.2 §2.7.4.2).
    fe.writeDesc(fe.descGpa, 9, fe.heapGpa, 16, 2 | 1, 10);
    fe.writeDesc(fe.descGpa, 10, fe.heapGpa + 64, 16, 0, 0);
    fe.pushAvail(9);
    fe.publishAvail();
    fe.kick();
    await fe.waitUsed(1);
    const r = fx.backend.snapshot().queues[0]!.recent[0]!;
    assert.equal(r.opcode, 'REJECTED');
    assert.equal(r.head, 9);
    assert.match(r.rejected ?? '', /readable descriptor after a writable one/);
    const c = fx.backend.chain(0, 9);
    assert.ok(c.type === 'chain');
    assert.match(c.rejected ?? '', /readable descriptor after a writable one/);
  });

  it('refuses heads outside the queue and queues that do not run', () => {
    assert.equal(fx.backend.chain(0, 64).type, 'error');
    assert.equal(fx.backend.chain(3, 0).type, 'error');
  });
});
