/**
 * The oracle is proven able to fail, ring side: one bad driver per rule of initialisation, the
 * available ring and descriptor chains (conformance/rules.ts), each breaking exactly that rule, driven
 * through the harness front-end over a real vhost-user socket and memfds. Each test asserts the rule,
 * its clause, the queue, the head and the offending values the oracle reports.
 */
import assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import { afterEach, describe, it } from 'node:test';
import * as S from '../../../../backend/crypto/spec';
import { TestFrontend } from '../../../../backend/harness/frontend';
import * as W from '../../../../backend/vhost-user/wire';
import { Request } from '../../../../backend/vhost-user/wire';
import { VIRTQ_DESC_F_INDIRECT, VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE } from '../../../../backend/virtio/virtqueue';
import { type RefereeFixture, expose, onlyViolation, refereeBackend, until, writeChain } from './fixture';

const I = VIRTQ_DESC_F_INDIRECT;
const N = VIRTQ_DESC_F_NEXT;
const Wr = VIRTQ_DESC_F_WRITE;

describe('conformance oracle, ring rules: one bad driver each (harness front-end, no VM)', () => {
  let fx: RefereeFixture | undefined;
  afterEach(async () => {
    await fx?.close();
    fx = undefined;
  });

  const session = (fe: TestFrontend): Promise<bigint> => fe.cipherSession(S.VIRTIO_CRYPTO_CIPHER_AES_CBC, crypto.randomBytes(16), true);
  const request = (id: bigint) => ({ opcode: S.VIRTIO_CRYPTO_CIPHER_ENCRYPT, sessionId: id, iv: crypto.randomBytes(16), src: crypto.randomBytes(32) });
  const broken = (f: RefereeFixture): string | null => f.backend.snapshot().queues[0]!.broken;
  /** A chain the ring refuses: its used entry has len 0. */
  const refused = async (f: RefereeFixture, head: number): Promise<void> => {
    expose(f.fe, head);
    const [u] = await f.fe.waitUsed(1);
    assert.deepEqual(u, { id: head, len: 0 });
  };

  // ---- initialisation ------------------------------------------------------------------------

  it('init.features (§2.2.1): SET_FEATURES acks a feature bit that was not offered', async () => {
    fx = await refereeBackend({ raw: true });
    await fx.fe.call(Request.GET_FEATURES);
    fx.fe.send(Request.SET_FEATURES, W.encodeU64((1n << 30n) | (1n << 5n)));
    await fx.fe.waitDisconnected();
    const v = onlyViolation(fx.conformance(), 'init.features');
    assert.equal(v.clause, '§2.2.1');
    assert.equal(v.queue, null);
    assert.match(v.detail, /acked 0x40000020: 0x20 was not offered \(offered 0x1/);
  });

  it('init.protocol-features (vhost-user): SET_PROTOCOL_FEATURES acks STATUS (16), never offered', async () => {
    fx = await refereeBackend({ raw: true });
    await fx.fe.call(Request.GET_FEATURES);
    fx.fe.send(Request.SET_FEATURES, W.encodeU64(1n << 30n));
    await fx.fe.call(Request.GET_PROTOCOL_FEATURES);
    fx.fe.send(Request.SET_PROTOCOL_FEATURES, W.encodeU64((1n << 16n) | 1n));
    await fx.fe.waitDisconnected();
    const v = onlyViolation(fx.conformance(), 'init.protocol-features');
    assert.match(v.detail, /0x10000 was not offered \(offered 0x89\)/);
  });

  it('ring.alignment (§2.7.1): a descriptor table 8 bytes off its 16-byte alignment', async () => {
    fx = await refereeBackend();
    const fe = fx.fe;
    fe.send(Request.SET_VRING_ADDR, W.encodeVringAddr({ index: 0, flags: 0, descUser: fe.va(fe.descGpa + 8), usedUser: fe.va(fe.usedGpa), availUser: fe.va(fe.availGpa), logGuest: 0n }));
    fe.send(Request.SET_VRING_KICK, W.encodeU64(0n), [fe.kickFd]);
    await fe.waitDisconnected();
    const v = onlyViolation(fx.conformance(), 'ring.alignment');
    assert.equal(v.clause, '§2.7.1');
    assert.equal(v.queue, 0);
    assert.match(v.detail, /misaligned ring addresses \(desc 0x7f1200001008/);
  });

  it('ring.used-flags (§2.7.10.1): used->flags not 0 when the ring is set up', async () => {
    fx = await refereeBackend({ raw: true });
    new DataView(fx.fe.mem.buffer).setUint16(fx.fe.usedGpa, 1, true);
    await fx.fe.handshake();
    await fx.fe.call(Request.GET_QUEUE_NUM);
    const v = onlyViolation(fx.conformance(), 'ring.used-flags');
    assert.equal(v.queue, 0);
    assert.equal(v.detail, 'used flags 0x1 when the ring was set up');
  });

  // ---- the available ring ------------------------------------------------------------------

  it('avail.decrement (§2.7.6.1): avail idx set back from 1 to 0', async () => {
    fx = await refereeBackend();
    const f = fx;
    await f.fe.run(request(await session(f.fe)));
    f.fe.setAvailIdxRaw(0);
    f.fe.kick();
    await until(() => broken(f) !== null, 'the ring to break');
    const v = onlyViolation(f.conformance(), 'avail.decrement');
    assert.deepEqual([v.clause, v.queue, v.head, v.detail], ['§2.7.6.1', 0, null, 'avail idx went from 1 to 0']);
    assert.match(broken(f) ?? '', /\[§2\.7\.6\.1 avail\.decrement\]$/, 'the broken ring names the rule');
  });

  it('avail.ahead (§2.7, §2.7.13): avail idx 129 ahead of used idx 0 on a 128-entry queue', async () => {
    fx = await refereeBackend();
    const f = fx;
    f.fe.setAvailIdxRaw(129);
    f.fe.kick();
    await until(() => broken(f) !== null, 'the ring to break');
    const v = onlyViolation(f.conformance(), 'avail.ahead');
    assert.equal(v.detail, 'avail idx 129 is 129 ahead of used idx 0 (queue size 128)');
  });

  it('avail.head-range (§2.7.6): an available ring entry names descriptor 128 of a 128-entry table', async () => {
    fx = await refereeBackend();
    const f = fx;
    expose(f.fe, 128);
    await until(() => broken(f) !== null, 'the ring to break');
    const v = onlyViolation(f.conformance(), 'avail.head-range');
    assert.match(v.detail, /names descriptor 128 ≥ queue size 128/);
  });

  const headTwice = async (f: RefereeFixture): Promise<{ status: number; usedLen: number }[]> => {
    const fe = f.fe;
    const id = await session(fe);
    const first = fe.postRequest(0, fe.heapGpa, request(id));
    fe.publishAvail();
    fe.kick();
    await until(() => f.backend.faultsSnapshot().delayedInFlight === 1, 'the first request to be held by the delay');
    const second = fe.postRequest(0, fe.heapGpa + TestFrontend.slotBytes(64), request(id));
    fe.publishAvail();
    fe.kick();
    const used = await fe.waitUsed(2, 3000);
    return [second, first].map((l, k) => ({ status: fe.readResult(l, used[k]!.len).status, usedLen: used[k]!.len }));
  };

  it('avail.head-in-use (§2.7.13.1): head 0 made available again while the device still holds it', async () => {
    fx = await refereeBackend({ faults: ['delay=300,count=1'] });
    const [second, first] = await headTwice(fx);
    assert.deepEqual([second.status, first.status], [S.CryptoStatus.OK, S.CryptoStatus.OK], 'served anyway without --strict');
    const v = onlyViolation(fx.conformance(), 'avail.head-in-use');
    assert.deepEqual([v.queue, v.head], [0, 0]);
    assert.match(v.detail, /head 0 made available again while the device still holds it/);
  });

  it('avail.head-in-use with --strict: the re-exposed request is answered ERR, not served', async () => {
    fx = await refereeBackend({ faults: ['delay=300,count=1'], strict: true });
    const [second, first] = await headTwice(fx);
    assert.deepEqual(second, { status: S.CryptoStatus.ERR, usedLen: 1 });
    assert.equal(first.status, S.CryptoStatus.OK);
    onlyViolation(fx.conformance(), 'avail.head-in-use');
    const refusal = fx.backend.snapshot().queues[0]!.recent.find((r) => r.badRequest !== undefined);
    assert.match(refusal?.badRequest ?? '', /refused \(--strict\).*\[§2\.7\.13 \+ §2\.7\.13\.1 avail\.head-in-use\]/);
  });

  it('avail.flags (§2.7.7.1): avail flags 0x2 (only 0 or 1 without EVENT_IDX)', async () => {
    fx = await refereeBackend();
    fx.fe.setAvailFlags(2);
    const r = await fx.fe.run(request(await session(fx.fe)));
    assert.equal(r.status, S.CryptoStatus.OK);
    const v = onlyViolation(fx.conformance(), 'avail.flags');
    assert.deepEqual([v.queue, v.head, v.detail], [0, null, 'avail flags 0x2, must be 0 or 1']);
  });

  it('avail.flags (§2.7.7.1): NO_INTERRUPT set although EVENT_IDX was acked (must be 0)', async () => {
    fx = await refereeBackend({ frontend: { ackEventIdx: true } });
    fx.fe.setAvailFlags(1);
    await fx.fe.run(request(await session(fx.fe)));
    const v = onlyViolation(fx.conformance(), 'avail.flags');
    assert.equal(v.detail, 'avail flags 0x1, must be 0 with VIRTIO_F_EVENT_IDX');
  });

  // ---- descriptor chains ----------------------------------------------------------------------

  it('desc.indirect-feature (§2.7.5.3.1): INDIRECT while the front-end told the guest\'s features without INDIRECT_DESC', async () => {
    fx = await refereeBackend();
    fx.fe.send(Request.SET_FEATURES, W.encodeU64((1n << 30n) | (1n << 32n)));
    await fx.fe.call(Request.GET_FEATURES);
    const r = await fx.fe.run(request(await session(fx.fe)));
    assert.equal(r.status, S.CryptoStatus.OK, 'served anyway without --strict');
    const v = onlyViolation(fx.conformance(), 'desc.indirect-feature');
    assert.deepEqual([v.clause, v.queue, v.head], ['§2.7.5.3.1', 0, 0]);
    assert.match(v.detail, /INDIRECT descriptor at head 0; acked features 0x140000000 \(the guest's/);
    assert.equal(fx.conformance().features, 'told');
  });

  it('desc.indirect-feature with --strict: the request is answered ERR', async () => {
    fx = await refereeBackend({ strict: true });
    fx.fe.send(Request.SET_FEATURES, W.encodeU64((1n << 30n) | (1n << 32n)));
    await fx.fe.call(Request.GET_FEATURES);
    const r = await fx.fe.run(request(await session(fx.fe)));
    assert.deepEqual([r.status, r.usedLen], [S.CryptoStatus.ERR, 1]);
    onlyViolation(fx.conformance(), 'desc.indirect-feature');
  });

  it('desc.indirect-nested (§2.7.5.3.1): an INDIRECT descriptor inside an indirect table', async () => {
    fx = await refereeBackend();
    const t = fx.fe.heapGpa;
    fx.fe.writeDesc(t, 0, t + 0x100, 16, I, 0);
    fx.fe.writeDesc(fx.fe.descGpa, 0, t, 16, I, 0);
    await refused(fx, 0);
    const v = onlyViolation(fx.conformance(), 'desc.indirect-nested');
    assert.deepEqual([v.head, v.detail], [0, 'indirect descriptor inside an indirect table (descriptor 0) [§2.7.5.3.1 desc.indirect-nested]']);
  });

  it('desc.indirect-next (§2.7.5.3.1): INDIRECT and NEXT on one descriptor', async () => {
    fx = await refereeBackend();
    fx.fe.writeDesc(fx.fe.descGpa, 3, fx.fe.heapGpa, 16, I | N, 4);
    await refused(fx, 3);
    const v = onlyViolation(fx.conformance(), 'desc.indirect-next');
    assert.equal(v.head, 3);
    assert.match(v.detail, /both INDIRECT and NEXT \(descriptor 3, flags 0x5\)/);
  });

  it('desc.indirect-length (§2.7.5.3): an indirect table of 24 bytes', async () => {
    fx = await refereeBackend();
    fx.fe.writeDesc(fx.fe.descGpa, 0, fx.fe.heapGpa, 24, I, 0);
    await refused(fx, 0);
    assert.match(onlyViolation(fx.conformance(), 'desc.indirect-length').detail, /length 24 is not a non-zero multiple of 16/);
  });

  it('desc.next-range (§2.7.5): next 128 in a 128-entry table', async () => {
    fx = await refereeBackend();
    fx.fe.writeDesc(fx.fe.descGpa, 0, fx.fe.heapGpa, 72, N, 128);
    await refused(fx, 0);
    assert.match(onlyViolation(fx.conformance(), 'desc.next-range').detail, /^next 128 outside a table of 128 \(descriptor 0\)/);
  });

  it('desc.address (§2.7.5): a buffer past the end of guest memory', async () => {
    fx = await refereeBackend();
    writeChain(fx.fe, 0, [[fx.fe.heapGpa, 72, 0], [fx.fe.size + 0x1000, 16, Wr]]);
    await refused(fx, 0);
    assert.match(onlyViolation(fx.conformance(), 'desc.address').detail, /buffer 0x2001000\+16 is outside guest memory \(descriptor 1\)/);
  });

  it('desc.address (§2.7.5): an indirect table past the end of guest memory', async () => {
    fx = await refereeBackend();
    fx.fe.writeDesc(fx.fe.descGpa, 0, fx.fe.size + 0x1000, 32, I, 0);
    await refused(fx, 0);
    assert.match(onlyViolation(fx.conformance(), 'desc.address').detail, /indirect table at 0x2001000\+32 is not inside one memory region/);
  });

  it('chain.loop (§2.7.5.2): descriptor 1 chains back to descriptor 0', async () => {
    fx = await refereeBackend();
    fx.fe.writeDesc(fx.fe.descGpa, 0, fx.fe.heapGpa, 72, N, 1);
    fx.fe.writeDesc(fx.fe.descGpa, 1, fx.fe.heapGpa, 16, N, 0);
    await refused(fx, 0);
    assert.match(onlyViolation(fx.conformance(), 'chain.loop').detail, /chain longer than queue size 128 \(loop\?\)/);
  });

  it('chain.bytes (§2.7.5.2): 257 descriptors of 16 MiB each, more than 2^32 bytes', async () => {
    fx = await refereeBackend({ frontend: { queueSize: 512 } });
    const table = fx.fe.heapGpa;
    writeChain(fx.fe, 0, Array.from({ length: 257 }, () => [0, 16 << 20, 0] as const), table);
    fx.fe.writeDesc(fx.fe.descGpa, 0, table, 16 * 257, I, 0);
    await refused(fx, 0);
    assert.match(onlyViolation(fx.conformance(), 'chain.bytes').detail, /chain longer than 2\^32 bytes \(4311744512 at descriptor 256\)/);
  });

  it('chain.order (§2.7.4.2): a device-readable descriptor after a device-writable one', async () => {
    fx = await refereeBackend();
    writeChain(fx.fe, 0, [[fx.fe.heapGpa, 16, Wr], [fx.fe.heapGpa + 64, 72, 0]]);
    await refused(fx, 0);
    const v = onlyViolation(fx.conformance(), 'chain.order');
    assert.deepEqual([v.clause, v.kind, v.detail], ['§2.7.4.2', 'driver', 'readable descriptor after a writable one (descriptor 1) [§2.7.4.2 chain.order]']);
  });

  // ---- descriptor chains: this device's limits (refusals, not violations) ---------------------

  it('device.indirect-not-first (§2.7.5.3.2): an indirect table after a direct descriptor is refused, counted as the device\'s limit', async () => {
    fx = await refereeBackend();
    fx.fe.writeDesc(fx.fe.heapGpa, 0, fx.fe.heapGpa + 0x100, 72, 0, 0);
    writeChain(fx.fe, 0, [[fx.fe.heapGpa + 0x200, 16, 0], [fx.fe.heapGpa, 16, I]]);
    await refused(fx, 0);
    const c = fx.conformance();
    assert.equal(onlyViolation(c, 'device.indirect-not-first').kind, 'device');
    assert.deepEqual([c.violations, c.refusals], [0, 1], 'a device limit is no violation of the driver');
  });

  it('device.indirect-table-size (§2.7.4.1): an indirect table of 129 entries on a 128-entry queue', async () => {
    fx = await refereeBackend();
    fx.fe.writeDesc(fx.fe.descGpa, 0, fx.fe.heapGpa, 16 * 129, I, 0);
    await refused(fx, 0);
    assert.match(onlyViolation(fx.conformance(), 'device.indirect-table-size').detail, /129 entries exceeds queue size 128/);
  });

  it('device.indirect-table-regions (§2.7.5.3): an indirect table across the boundary of two memory regions', async () => {
    fx = await refereeBackend();
    fx.fe.writeDesc(fx.fe.descGpa, 0, fx.fe.size / 2 - 16, 32, I, 0);
    await refused(fx, 0);
    assert.match(onlyViolation(fx.conformance(), 'device.indirect-table-regions').detail, /at 0xfffff0\+32 is not inside one memory region/);
  });
});
