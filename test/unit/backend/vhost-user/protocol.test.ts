import assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import { afterEach, beforeEach, describe, it } from 'node:test';
import * as vhost from '../../../../addon/lib/vhost';
import * as S from '../../../../backend/crypto/spec';
import { TestFrontend } from '../../../../backend/harness/frontend';
import * as W from '../../../../backend/vhost-user/wire';
import { Request } from '../../../../backend/vhost-user/wire';
import { type Fixture, openFdCount, startBackend } from '../helpers';

describe('vhost-user protocol handling', () => {
  let fx: Fixture;
  beforeEach(() => {
    fx = startBackend();
  });
  afterEach(() => fx.close());

  async function expectClosedThenUsable(send: (fe: TestFrontend) => void, logPattern: RegExp): Promise<void> {
    const fe = TestFrontend.raw(fx.socket);
    const gone = fx.nextDisconnect();
    send(fe);
    await gone;
    await fe.waitDisconnected();
    fe.close();
    assert.ok(fx.logs.some((l) => logPattern.test(l)), `log mentions ${logPattern}: ${fx.logs.join(' | ')}`);
    // The process lives and serves the next front-end.
    const next = await fx.connect();
    const id = await next.cipherSession(S.VIRTIO_CRYPTO_CIPHER_AES_CBC, crypto.randomBytes(16), true);
    const r = await next.run({ opcode: 0, sessionId: id, iv: Buffer.alloc(16), src: Buffer.alloc(32) });
    assert.equal(r.status, S.CryptoStatus.OK);
  }

  it('closes on an unknown request code, naming it', () =>
    expectClosedThenUsable((fe) => fe.send(77, Buffer.alloc(0)), /malformed unknown request 77/));
  it('closes on a bad version', () =>
    expectClosedThenUsable((fe) => fe.send(Request.GET_FEATURES, Buffer.alloc(0), [], 2), /malformed VHOST_USER_GET_FEATURES: .*version/));
  it('closes on an oversized size field without reading it', () =>
    expectClosedThenUsable((fe) => {
      const b = Buffer.alloc(12);
      b.writeUInt32LE(Request.SET_MEM_TABLE, 0);
      b.writeUInt32LE(1, 4);
      b.writeUInt32LE(0x7fffffff, 8);
      fe.sendBytes(b);
    }, /malformed VHOST_USER_SET_MEM_TABLE: .*exceeds/));
  it('closes on a wrong payload size', () =>
    expectClosedThenUsable((fe) => fe.send(Request.SET_FEATURES, Buffer.alloc(4)), /VHOST_USER_SET_FEATURES: payload is 4 bytes/));
  it('closes on unoffered features', () =>
    expectClosedThenUsable((fe) => fe.send(Request.SET_FEATURES, W.encodeU64(1n << 40n)), /unoffered features/));
  it('closes on a crypto session before CRYPTO_SESSION was negotiated', () =>
    expectClosedThenUsable((fe) => fe.send(Request.CREATE_CRYPTO_SESSION, Buffer.alloc(632)), /CRYPTO_SESSION protocol feature not negotiated/));
  it('closes on a feature it never offers (GET_CONFIG)', () =>
    expectClosedThenUsable((fe) => fe.send(Request.GET_CONFIG, Buffer.alloc(12)), /VHOST_USER_GET_CONFIG: not supported/));
  it('closes on a memory table with fewer fds than regions, closing the fds it got', async () => {
    const before = openFdCount();
    const fd = vhost.memfdCreate('x', 4096);
    const table = W.encodeMemTable([
      { guestPhysAddr: 0n, memorySize: 4096n, userspaceAddr: 0n, mmapOffset: 0n },
      { guestPhysAddr: 4096n, memorySize: 4096n, userspaceAddr: 4096n, mmapOffset: 0n },
    ]);
    const fe = TestFrontend.raw(fx.socket);
    const gone = fx.nextDisconnect();
    fe.send(Request.SET_MEM_TABLE, table, [fd]);
    await gone;
    fe.close();
    vhost.closeFd(fd);
    assert.ok(fx.logs.some((l) => /2 regions but 1 fds/.test(l)));
    // Every fd the back-end received with the rejected message is closed again.
    assert.equal(openFdCount(), before);
  });
  it('closes on fds attached to a request that takes none', async () => {
    const efd = vhost.eventfdCreate();
    await expectClosedThenUsable((fe) => fe.send(Request.SET_OWNER, Buffer.alloc(0), [efd]), /carries 1 fds, expected 0/);
    vhost.closeFd(efd);
  });
  it('closes on ring addresses outside the memory table', async () => {
    await expectClosedThenUsable((fe) => {
      void (async () => {
        await fe.call(Request.GET_FEATURES);
        fe.send(Request.SET_MEM_TABLE, W.encodeMemTable([{ guestPhysAddr: 0n, memorySize: 65536n, userspaceAddr: 0x1000000n, mmapOffset: 0n }]), [vhost.memfdCreate('m', 65536)]);
        fe.send(Request.SET_VRING_NUM, W.encodeVringState({ index: 0, num: 8 }));
        fe.send(Request.SET_VRING_ADDR, W.encodeVringAddr({ index: 0, flags: 0, descUser: 0x9000000n, usedUser: 0n, availUser: 0n, logGuest: 0n }));
        fe.send(Request.SET_VRING_KICK, W.encodeU64(0n), [fe.kickFd]);
      })();
    }, /ring addresses are not inside/);
  });

  it('closes on a kick fd that is not an eventfd (a memfd), closing it', async () => {
    const memfd = vhost.memfdCreate('not-a-notifier', 4096);
    await expectClosedThenUsable((fe) => fe.send(Request.SET_VRING_KICK, W.encodeU64(0n), [memfd]), /SET_VRING_KICK: queue 0: fd is \/memfd:not-a-notifier .*not an eventfd/);
    vhost.closeFd(memfd);
  });

  it('a new memory table the running ring does not fit in is refused, and the old and new maps are both unmapped', async () => {
    const memfdMaps = (): number => fs.readFileSync('/proc/self/maps', 'latin1').split('\n').filter((l) => l.includes('/memfd:')).length;
    const before = memfdMaps();
    const fe = await fx.connect();
    const small = vhost.memfdCreate('vlab-elsewhere', 4096);
    const gone = fx.nextDisconnect();
    fe.send(Request.SET_MEM_TABLE, W.encodeMemTable([{ guestPhysAddr: 0x10000n, memorySize: 4096n, userspaceAddr: 0n, mmapOffset: 0n }]), [small]);
    await gone;
    fe.close();
    vhost.closeFd(small);
    assert.ok(fx.logs.some((l) => /SET_MEM_TABLE.*ring addresses are not inside/.test(l)), fx.logs.join(' | '));
    assert.equal(memfdMaps(), before, 'a guest-memory mapping outlived the connection');
  });

  it('serves one front-end at a time', async () => {
    const first = await fx.connect();
    const second = TestFrontend.raw(fx.socket);
    await second.waitDisconnected();
    second.close();
    assert.ok(fx.logs.some((l) => /refusing a second front-end/.test(l)));
    const id = await first.cipherSession(S.VIRTIO_CRYPTO_CIPHER_AES_CBC, crypto.randomBytes(16), true);
    assert.ok(id > 0n);
  });

  it('acks with REPLY_ACK when asked', async () => {
    const fe = await fx.connect({ replyAck: true });
    const id = await fe.cipherSession(S.VIRTIO_CRYPTO_CIPHER_AES_CBC, crypto.randomBytes(32), true);
    await fe.closeSession(id); // waits for the ack (0)
    assert.equal(fx.backend.snapshot().frontend.protocolFeatures, '0x89');
  });

  it('GET_VRING_BASE stops the ring and returns the next avail index; the ring restarts at it', async () => {
    const fe = await fx.connect();
    const id = await fe.cipherSession(S.VIRTIO_CRYPTO_CIPHER_AES_CBC, crypto.randomBytes(16), true);
    for (let k = 0; k < 3; k++) await fe.run({ opcode: 0, sessionId: id, iv: Buffer.alloc(16), src: Buffer.alloc(16) });
    const r = await fe.call(Request.GET_VRING_BASE, W.encodeVringState({ index: 0, num: 0 }));
    assert.deepEqual(W.decodeVringState(0, r.payload), { index: 0, num: 3 });
    assert.equal(fx.backend.snapshot().queues[0].ready, false);
    // Restart like QEMU after a reset: base 3, new kick fd.
    fe.send(Request.SET_VRING_BASE, W.encodeVringState({ index: 0, num: 3 }));
    const kick = vhost.eventfdCreate();
    fe.send(Request.SET_VRING_KICK, W.encodeU64(0n), [kick]);
    vhost.closeFd(kick);
    await new Promise((res) => setTimeout(res, 20));
    assert.equal(fx.backend.snapshot().queues[0].lastAvailIdx, 3);
  });

  it('replaces the memory table while the ring runs', async () => {
    const fe = await fx.connect();
    const id = await fe.cipherSession(S.VIRTIO_CRYPTO_CIPHER_AES_CTR, crypto.randomBytes(16), true);
    await fe.handshake(); // resends SET_MEM_TABLE and the ring setup: the ring is rebuilt on the new map
    const r = await fe.run({ opcode: 0, sessionId: id, iv: Buffer.alloc(16), src: Buffer.alloc(5) });
    assert.equal(r.status, S.CryptoStatus.OK);
  });

  it('drops sessions (and their keys) when the front-end disconnects', async () => {
    const fe = await fx.connect();
    await fe.cipherSession(S.VIRTIO_CRYPTO_CIPHER_AES_CBC, crypto.randomBytes(16), true);
    assert.equal(fx.backend.snapshot().sessions.length, 1);
    const gone = fx.nextDisconnect();
    fe.close();
    await gone;
    assert.equal(fx.backend.snapshot().sessions.length, 0);
    assert.equal(fx.backend.snapshot().frontend.connected, false);
  });
});
