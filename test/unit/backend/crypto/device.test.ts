import assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import * as S from '../../../../backend/crypto/spec';
import type { TestFrontend } from '../../../../backend/harness/frontend';
import { readSnapshot } from '../../../../backend/telemetry/readers';
import { testEngines } from './engine-matrix';
import { type Fixture, startBackend } from '../helpers';

function openssl(name: string, key: Buffer, iv: Buffer | null, data: Buffer, encrypt: boolean): Buffer {
  const c = encrypt ? crypto.createCipheriv(name, key, iv) : crypto.createDecipheriv(name, key, iv);
  c.setAutoPadding(false);
  return Buffer.concat([c.update(data), c.final()]);
}

for (const { name: engineName, make, skip } of testEngines()) describe(`virtio-crypto device through the vhost-user front-end harness (engine ${engineName})`, { skip }, () => {
  let fx: Fixture;
  let fe: TestFrontend;
  before(async () => {
    fx = startBackend({ engine: make() });
    fe = await fx.connect();
  });
  after(() => fx.close());

  const modes = [
    { alg: S.VIRTIO_CRYPTO_CIPHER_AES_CBC, name: (k: number) => `aes-${k * 8}-cbc`, keys: [16, 24, 32], iv: true, len: 64 },
    { alg: S.VIRTIO_CRYPTO_CIPHER_AES_CTR, name: (k: number) => `aes-${k * 8}-ctr`, keys: [16, 32], iv: true, len: 61 },
    { alg: S.VIRTIO_CRYPTO_CIPHER_AES_ECB, name: (k: number) => `aes-${k * 8}-ecb`, keys: [16, 32], iv: false, len: 48 },
    // /dev/crypto refuses XTS with a partial last block (cryptodev-linux's rule): whole blocks there.
    { alg: S.VIRTIO_CRYPTO_CIPHER_AES_XTS, name: (k: number) => `aes-${k * 4}-xts`, keys: [32, 64], iv: true, len: engineName === 'cryptodev' ? 48 : 40 },
  ];
  for (const m of modes) {
    for (const keyLen of m.keys) {
      it(`${m.name(keyLen)} encrypts and decrypts like OpenSSL`, async () => {
        const key = crypto.randomBytes(keyLen);
        const iv = m.iv ? crypto.randomBytes(16) : Buffer.alloc(0);
        const plain = crypto.randomBytes(m.len);
        const enc = await fe.cipherSession(m.alg, key, true);
        const dec = await fe.cipherSession(m.alg, key, false);
        const r1 = await fe.run({ opcode: S.VIRTIO_CRYPTO_CIPHER_ENCRYPT, sessionId: enc, iv, src: plain });
        assert.equal(r1.status, S.CryptoStatus.OK);
        assert.deepEqual(r1.dst, openssl(m.name(keyLen), key, m.iv ? iv : null, plain, true));
        assert.equal(r1.usedLen, plain.length + 1);
        const r2 = await fe.run({ opcode: S.VIRTIO_CRYPTO_CIPHER_DECRYPT, sessionId: dec, iv, src: r1.dst });
        assert.deepEqual(r2.dst, plain);
        await fe.closeSession(enc);
        await fe.closeSession(dec);
      });
    }
  }

  for (const hash of [
    { alg: S.VIRTIO_CRYPTO_MAC_HMAC_SHA1, name: 'sha1', len: 20 },
    { alg: S.VIRTIO_CRYPTO_MAC_HMAC_SHA_256, name: 'sha256', len: 32 },
    { alg: S.VIRTIO_CRYPTO_MAC_HMAC_SHA_512, name: 'sha512', len: 64 },
  ]) {
    for (const order of [S.VIRTIO_CRYPTO_SYM_ALG_CHAIN_ORDER_HASH_THEN_CIPHER, S.VIRTIO_CRYPTO_SYM_ALG_CHAIN_ORDER_CIPHER_THEN_HASH]) {
      const orderName = order === S.VIRTIO_CRYPTO_SYM_ALG_CHAIN_ORDER_HASH_THEN_CIPHER ? 'hash then cipher' : 'cipher then hash';
      it(`AES-CBC + HMAC-${hash.name} chaining, ${orderName}`, async () => {
        const key = crypto.randomBytes(16);
        const authKey = crypto.randomBytes(40);
        const id = await fe.createSession({
          cipherAlg: S.VIRTIO_CRYPTO_CIPHER_AES_CBC, hashAlg: hash.alg, hashResultLen: hash.len, addLen: 8, opType: S.VIRTIO_CRYPTO_SYM_OP_ALGORITHM_CHAINING,
          direction: S.VIRTIO_CRYPTO_OP_ENCRYPT, hashMode: S.VIRTIO_CRYPTO_SYM_HASH_MODE_AUTH, algChainOrder: order, key, authKey,
        });
        assert.ok(id >= 0n);
        const iv = crypto.randomBytes(16);
        const aad = crypto.randomBytes(8);
        const src = crypto.randomBytes(80);
        const r = await fe.run({
          opcode: S.VIRTIO_CRYPTO_CIPHER_ENCRYPT, sessionId: id, iv, src,
          chain: { aad, cipherStart: 16, lenToCipher: 64, hashStart: 0, lenToHash: 80, hashResultLen: hash.len },
        });
        assert.equal(r.status, S.CryptoStatus.OK);
        const expectDst = Buffer.from(src);
        openssl('aes-128-cbc', key, iv, src.subarray(16, 80), true).copy(expectDst, 16);
        assert.deepEqual(r.dst, expectDst);
        const hashed = order === S.VIRTIO_CRYPTO_SYM_ALG_CHAIN_ORDER_HASH_THEN_CIPHER ? src : expectDst;
        assert.deepEqual(r.hash, crypto.createHmac(hash.name, authKey).update(aad).update(hashed).digest());
        assert.equal(r.usedLen, 80 + hash.len + 1);
      });
    }
  }

  it('answers INVSESS for an unknown session', async () => {
    const r = await fe.run({ opcode: S.VIRTIO_CRYPTO_CIPHER_ENCRYPT, sessionId: 999_999n, iv: Buffer.alloc(16), src: Buffer.alloc(16) });
    assert.equal(r.status, S.CryptoStatus.INVSESS);
    assert.ok(r.dst.every((b) => b === 0), 'dst untouched');
  });

  it('answers NOTSUPP for HASH, MAC, AEAD and unknown opcodes', async () => {
    for (const opcode of [S.VIRTIO_CRYPTO_HASH, S.VIRTIO_CRYPTO_MAC, S.VIRTIO_CRYPTO_AEAD_ENCRYPT, S.VIRTIO_CRYPTO_AEAD_DECRYPT, 0x777]) {
      const r = await fe.run({ opcode, sessionId: 1n, iv: Buffer.alloc(16), src: Buffer.alloc(16) });
      assert.equal(r.status, S.CryptoStatus.NOTSUPP, `opcode 0x${opcode.toString(16)}`);
    }
  });

  it('answers ERR for inconsistent lengths and never writes past dst_len', async () => {
    const id = await fe.cipherSession(S.VIRTIO_CRYPTO_CIPHER_AES_CBC, crypto.randomBytes(16), true);
    const bad = [
      { iv: Buffer.alloc(8), src: Buffer.alloc(16) }, // iv_len not 16
      { iv: Buffer.alloc(16), src: Buffer.alloc(15) }, // not a block multiple
      { iv: Buffer.alloc(16), src: Buffer.alloc(32), dstLen: 16 }, // dst_len != src_len
    ];
    for (const b of bad) {
      const r = await fe.run({ opcode: S.VIRTIO_CRYPTO_CIPHER_ENCRYPT, sessionId: id, ...b });
      assert.equal(r.status, S.CryptoStatus.ERR);
      assert.equal(r.usedLen, 1);
    }
  });

  it("a malformed request's reason reaches the back-end log and its recent-request entry (a good one has none)", async () => {
    const id = await fe.cipherSession(S.VIRTIO_CRYPTO_CIPHER_AES_CBC, crypto.randomBytes(16), true);
    const r = await fe.run({ opcode: S.VIRTIO_CRYPTO_CIPHER_ENCRYPT, sessionId: id, iv: Buffer.alloc(8), src: Buffer.alloc(16) });
    assert.equal(r.status, S.CryptoStatus.ERR);
    const reason = 'iv_len 8, mode needs 16 [§5.9.7.6 crypto.iv-length]';
    const bad = fx.backend.snapshot().queues[0].recent[0];
    assert.equal(bad.status, 'ERR');
    assert.equal(bad.badRequest, reason);
    assert.equal(readSnapshot(JSON.parse(JSON.stringify(fx.backend.snapshot())))?.queues[0]?.recent[0]?.badRequest, reason, "the schema's reader keeps it");
    assert.ok(fx.logs.some((l) => l.includes('bad request') && l.includes(`session ${id}`) && l.endsWith(reason)), `no log line names "${reason}"`);
    await fe.run({ opcode: S.VIRTIO_CRYPTO_CIPHER_ENCRYPT, sessionId: id, iv: Buffer.alloc(16), src: Buffer.alloc(16) });
    const good = fx.backend.snapshot().queues[0].recent[0];
    assert.equal(good.status, 'OK');
    assert.ok(!('badRequest' in good), 'a served request carries no badRequest field (the wire is unchanged for it)');
  });

  it('status goes to the last writable byte; bytes between dst_len and it stay untouched (Linux duplicated sg)', async () => {
    const key = crypto.randomBytes(16);
    const id = await fe.cipherSession(S.VIRTIO_CRYPTO_CIPHER_AES_CBC, key, true);
    // dst_len 16, but the writable area is 16 + 32 (gap) + 1 bytes: Linux 6.1's shape.
    const src = crypto.randomBytes(16);
    const iv = crypto.randomBytes(16);
    const layout = fe.postRequest(0, fe.heapGpa, { opcode: 0, sessionId: id, iv, src, dstLen: 16 });
    // Re-point the dst descriptor (entry 3 of the indirect table) at a 48-byte area.
    const table = fe.heapGpa;
    const view = new DataView(fe.mem.buffer);
    view.setUint32(table + 16 * 3 + 8, 48, true);
    const statusGpa = layout.dstGpa + 48;
    view.setBigUint64(table + 16 * 4, BigInt(statusGpa), true);
    fe.mem.fill(0x5a, layout.dstGpa, statusGpa + 1);
    fe.publishAvail();
    fe.kick();
    await fe.waitUsed(1);
    assert.deepEqual(Buffer.from(fe.mem.subarray(layout.dstGpa, layout.dstGpa + 16)), openssl('aes-128-cbc', key, iv, src, true));
    assert.ok(fe.mem.subarray(layout.dstGpa + 16, statusGpa).every((b) => b === 0x5a), 'gap not written');
    assert.equal(fe.mem[statusGpa], S.CryptoStatus.OK);
  });

  it('refuses sessions it cannot serve with id -1 (both layouts) and forgets closed ones', async () => {
    for (const layout of ['qemu7', 'qemu8.1'] as const) {
      const base = { hashAlg: 0, hashResultLen: 0, addLen: 0, opType: 1, direction: 1, hashMode: 0, algChainOrder: 0, authKey: Buffer.alloc(0) };
      assert.equal(await fe.createSession({ ...base, cipherAlg: 99, key: Buffer.alloc(16) }, layout), -1n, 'unknown cipher');
      assert.equal(await fe.createSession({ ...base, cipherAlg: 3, key: Buffer.alloc(17) }, layout), -1n, 'bad key size');
      assert.equal(await fe.createSession({ ...base, opType: 7, cipherAlg: 3, key: Buffer.alloc(16) }, layout), -1n, 'bad op type');
      const id = await fe.createSession({ ...base, cipherAlg: 3, key: Buffer.alloc(16) }, layout);
      assert.ok(id > 0n, `${layout}: session created`);
      await fe.closeSession(id);
      const r = await fe.run({ opcode: 0, sessionId: id, iv: Buffer.alloc(16), src: Buffer.alloc(16) });
      assert.equal(r.status, S.CryptoStatus.INVSESS, 'closed session is gone');
    }
  });

  it('counts requests, statuses, kicks and interrupts; snapshot shows sessions and ring indexes', () => {
    const snap = fx.backend.snapshot();
    assert.ok(snap.counters.requests > 20);
    assert.ok(snap.counters.statusOk > 10);
    assert.ok(snap.counters.statusInvsess >= 1);
    assert.ok(snap.counters.statusNotsupp >= 5);
    assert.ok(snap.counters.statusErr >= 3);
    assert.ok(snap.counters.interrupts > 0 && snap.counters.interrupts <= snap.counters.requests);
    const q = snap.queues[0];
    assert.equal(q.size, 128);
    assert.equal(q.usedIdx, q.lastAvailIdx);
    assert.equal(q.availIdx, q.lastAvailIdx);
    assert.equal(q.slots.length, 128);
    assert.match(q.slots, /^[.adu]+$/);
    assert.ok(q.recent.length > 0);
    assert.equal(snap.engine.name, engineName);
  });
});
