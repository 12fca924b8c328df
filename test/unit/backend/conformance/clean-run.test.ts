/**
 * The other half of "proven able to fail": requests laid out as our driver and Linux 6.1 lay them out
 * (harness front-end, every service the device offers, one at a time and 64 deep, with and without
 * EVENT_IDX, with the guest's features told or not) give 0 violations and 0 refusals. Also: the
 * snapshot's conformance section survives the telemetry reader, and the off switch checks nothing.
 */
import assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import { afterEach, describe, it } from 'node:test';
import * as S from '../../../../backend/crypto/spec';
import { TestFrontend } from '../../../../backend/harness/frontend';
import type { CipherRequestSpec } from '../../../../backend/harness/request-layout';
import * as W from '../../../../backend/vhost-user/wire';
import { Request } from '../../../../backend/vhost-user/wire';
import { type RefereeFixture, onlyViolation, refereeBackend, until } from './fixture';

const ENC = S.VIRTIO_CRYPTO_CIPHER_ENCRYPT;
const DEC = S.VIRTIO_CRYPTO_CIPHER_DECRYPT;

/** Every kind of request the device serves, as our driver sends it. */
async function normalTraffic(fe: TestFrontend): Promise<number> {
  const reqs: CipherRequestSpec[] = [];
  for (const [alg, keyLen, iv, len] of [
    [S.VIRTIO_CRYPTO_CIPHER_AES_CBC, 16, 16, 64], [S.VIRTIO_CRYPTO_CIPHER_AES_CTR, 32, 16, 61],
    [S.VIRTIO_CRYPTO_CIPHER_AES_ECB, 24, 0, 48], [S.VIRTIO_CRYPTO_CIPHER_AES_XTS, 64, 16, 40],
  ] as const) {
    const key = crypto.randomBytes(keyLen);
    for (const encrypt of [true, false]) {
      const id = await fe.cipherSession(alg, key, encrypt);
      reqs.push({ opcode: encrypt ? ENC : DEC, sessionId: id, iv: crypto.randomBytes(iv), src: crypto.randomBytes(len), splitAt: encrypt ? undefined : 7 });
    }
  }
  const sha = await fe.chainSession({ hashMode: S.VIRTIO_CRYPTO_SYM_HASH_MODE_PLAIN, hashAlg: S.VIRTIO_CRYPTO_HASH_SHA_256, hashResultLen: 32 });
  const hmac = await fe.chainSession({ hashMode: S.VIRTIO_CRYPTO_SYM_HASH_MODE_AUTH, hashAlg: S.VIRTIO_CRYPTO_MAC_HMAC_SHA1, authKey: crypto.randomBytes(20), hashResultLen: 20 });
  const digest = { aad: Buffer.alloc(0), cipherStart: 0, lenToCipher: 0, hashStart: 0, lenToHash: 100 };
  reqs.push({ opcode: ENC, sessionId: sha, iv: Buffer.alloc(0), src: crypto.randomBytes(100), dstLen: 0, chain: { ...digest, hashResultLen: 32 } });
  reqs.push({ opcode: ENC, sessionId: hmac, iv: Buffer.alloc(0), src: crypto.randomBytes(100), dstLen: 0, chain: { ...digest, hashResultLen: 20 } });
  for (const order of [S.VIRTIO_CRYPTO_SYM_ALG_CHAIN_ORDER_HASH_THEN_CIPHER, S.VIRTIO_CRYPTO_SYM_ALG_CHAIN_ORDER_CIPHER_THEN_HASH]) {
    const id = await fe.chainSession({
      cipherAlg: S.VIRTIO_CRYPTO_CIPHER_AES_CBC, key: crypto.randomBytes(16), hashMode: S.VIRTIO_CRYPTO_SYM_HASH_MODE_AUTH,
      hashAlg: S.VIRTIO_CRYPTO_MAC_HMAC_SHA_256, authKey: crypto.randomBytes(32), hashResultLen: 32, order,
      encrypt: order === S.VIRTIO_CRYPTO_SYM_ALG_CHAIN_ORDER_HASH_THEN_CIPHER,
    });
    reqs.push({ opcode: ENC, sessionId: id, iv: crypto.randomBytes(16), src: crypto.randomBytes(64), chain: { aad: Buffer.alloc(0), cipherStart: 0, lenToCipher: 64, hashStart: 0, lenToHash: 64, hashResultLen: 32 } });
  }
  // One at a time (each reuses head 0 once the previous one came back) ...
  for (const r of reqs) assert.equal((await fe.run(r)).status, S.CryptoStatus.OK);
  // ... then 64 in flight at once, heads 0..63, several rounds (heads reused after their used entries).
  const slot = TestFrontend.slotBytes(128);
  for (let round = 0; round < 3; round++) {
    const layouts = Array.from({ length: 64 }, (_, k) => fe.postRequest(k, fe.heapGpa + k * slot, reqs[k % reqs.length]!));
    fe.publishAndKickIfNeeded() || fe.kick();
    const used = await fe.waitUsed(64, 5000);
    for (const u of used) assert.equal(fe.readResult(layouts[u.id]!, u.len).status, S.CryptoStatus.OK);
  }
  for (const r of reqs) await fe.closeSession(r.sessionId).catch(() => undefined);
  await fe.call(Request.GET_QUEUE_NUM);
  return reqs.length + 3 * 64;
}

describe('conformance oracle: our normal requests break no rule', () => {
  let fx: RefereeFixture | undefined;
  afterEach(async () => {
    await fx?.close();
    fx = undefined;
  });

  const clean = (f: RefereeFixture): void => {
    const c = f.conformance();
    assert.deepEqual({ violations: c.violations, refusals: c.refusals, rules: c.rules, recent: c.recent }, { violations: 0, refusals: 0, rules: [], recent: [] });
  };

  it('QEMU 7.2 as the front-end (only bit 30 acked): 0 violations, 0 refusals', async () => {
    fx = await refereeBackend();
    await normalTraffic(fx.fe);
    clean(fx);
    assert.equal(fx.conformance().features, 'offered');
  });

  it('with EVENT_IDX acked (avail_event kicks, used_event interrupts): 0 violations', async () => {
    fx = await refereeBackend({ frontend: { ackEventIdx: true } });
    await normalTraffic(fx.fe);
    clean(fx);
  });

  it("a front-end that tells the guest's features (VERSION_1, INDIRECT_DESC, EVENT_IDX): 0 violations", async () => {
    fx = await refereeBackend({ frontend: { ackEventIdx: true } });
    fx.fe.send(Request.SET_FEATURES, W.encodeU64((1n << 30n) | (1n << 32n) | (1n << 29n) | (1n << 28n)));
    await fx.fe.call(Request.GET_FEATURES);
    await normalTraffic(fx.fe);
    clean(fx);
    assert.equal(fx.conformance().features, 'told');
  });

  it('NO_INTERRUPT in avail flags without EVENT_IDX is allowed (§2.7.7.1)', async () => {
    fx = await refereeBackend();
    fx.fe.setAvailFlags(1);
    const id = await fx.fe.cipherSession(S.VIRTIO_CRYPTO_CIPHER_AES_CBC, crypto.randomBytes(16), true);
    fx.fe.postRequest(0, fx.fe.heapGpa, { opcode: ENC, sessionId: id, iv: crypto.randomBytes(16), src: crypto.randomBytes(16) });
    fx.fe.publishAvail();
    fx.fe.kick();
    const f = fx;
    await until(() => f.fe.usedIdx() === 1, 'the used entry (no interrupt was asked for)');
    clean(fx);
  });

  it('--strict serves conforming requests as usual', async () => {
    fx = await refereeBackend({ strict: true });
    await normalTraffic(fx.fe);
    clean(fx);
    assert.equal(fx.conformance().strict, true);
  });

  it("the conformance section survives the telemetry schema's reader unchanged", async () => {
    fx = await refereeBackend();
    await fx.fe.run({ opcode: ENC, sessionId: 77n, iv: Buffer.alloc(16), src: Buffer.alloc(16) });
    const raw = JSON.parse(JSON.stringify(fx.backend.snapshot())) as { conformance: unknown };
    assert.deepEqual(fx.conformance(), raw.conformance);
    onlyViolation(fx.conformance(), 'crypto.session-unknown');
  });

  it('--conformance off (measurement only): nothing is checked or counted; refusals still name their rule', async () => {
    fx = await refereeBackend({ conformance: false });
    fx.fe.setAvailFlags(2);
    const r = await fx.fe.run({ opcode: ENC, sessionId: 77n, iv: Buffer.alloc(16), src: Buffer.alloc(16) });
    assert.equal(r.status, S.CryptoStatus.INVSESS);
    const c = fx.conformance();
    assert.deepEqual([c.enabled, c.violations, c.rules.length], [false, 0, 0]);
  });
});
