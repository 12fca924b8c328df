import assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import * as S from '../../../backend/crypto/spec';
import { SLOT_CHAR } from '../../../backend/telemetry-schema';
import { type Fixture, startBackend } from './helpers';

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
