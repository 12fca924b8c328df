/**
 * The oracle is proven able to fail, virtio-crypto side (§5.9): one bad request per rule, each
 * breaking exactly that rule, through the harness front-end; the status the device answers, and the
 * rule, clause, queue, head and values the oracle reports. The device's own limits are counted as
 * refusals, never as the driver's violations.
 */
import assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import { afterEach, beforeEach, describe, it } from 'node:test';
import * as S from '../../../../backend/crypto/spec';
import type { CipherRequestSpec } from '../../../../backend/harness/request-layout';
import { Request } from '../../../../backend/vhost-user/wire';
import { VIRTQ_DESC_F_WRITE } from '../../../../backend/virtio/virtqueue';
import { type RefereeFixture, expose, onlyViolation, refereeBackend, writeChain } from './fixture';

const ENC = S.VIRTIO_CRYPTO_CIPHER_ENCRYPT;

describe('conformance oracle, virtio-crypto rules: one bad request each (harness front-end, no VM)', () => {
  let fx: RefereeFixture;
  let cbc: bigint;
  beforeEach(async () => {
    fx = await refereeBackend();
    cbc = await fx.fe.cipherSession(S.VIRTIO_CRYPTO_CIPHER_AES_CBC, crypto.randomBytes(16), true);
  });
  afterEach(() => fx.close());

  const cipher = (over: Partial<CipherRequestSpec> = {}): CipherRequestSpec => ({ opcode: ENC, sessionId: cbc, iv: crypto.randomBytes(16), src: crypto.randomBytes(32), ...over });
  const hmacSession = (): Promise<bigint> => fx.fe.chainSession({
    cipherAlg: S.VIRTIO_CRYPTO_CIPHER_AES_CBC, key: crypto.randomBytes(16), hashMode: S.VIRTIO_CRYPTO_SYM_HASH_MODE_AUTH,
    hashAlg: S.VIRTIO_CRYPTO_MAC_HMAC_SHA_256, authKey: crypto.randomBytes(32), hashResultLen: 32,
  });
  const chainFields = { aad: Buffer.alloc(0), cipherStart: 0, lenToCipher: 32, hashStart: 0, lenToHash: 32, hashResultLen: 32 };
  /** Runs `req`, checks the status, returns the one violation of `rule` (queue 0, head 0). */
  const broke = async (req: CipherRequestSpec, status: S.CryptoStatus, rule: string) => {
    const r = await fx.fe.run(req);
    assert.equal(r.status, status, `status ${S.CryptoStatus[r.status]}`);
    const v = onlyViolation(fx.conformance(), rule);
    assert.deepEqual([v.queue, v.head], [0, 0]);
    return v;
  };

  it('crypto.header (§5.9.7.3): a device-readable part of 40 bytes, shorter than the 72-byte header', async () => {
    const h = fx.fe.heapGpa;
    writeChain(fx.fe, 0, [[h, 40, 0], [h + 64, 1, VIRTQ_DESC_F_WRITE]]);
    expose(fx.fe, 0);
    const [u] = await fx.fe.waitUsed(1);
    assert.deepEqual([u!.len, fx.fe.mem[h + 64]], [1, S.CryptoStatus.ERR]);
    const v = onlyViolation(fx.conformance(), 'crypto.header');
    assert.equal(v.detail, 'readable part is 40 bytes, header needs 72');
  });

  it('crypto.status-room (§5.9.7.3): a chain without a device-writable byte for the status', async () => {
    writeChain(fx.fe, 0, [[fx.fe.heapGpa, 72 + 16 + 32, 0]]);
    expose(fx.fe, 0);
    const [u] = await fx.fe.waitUsed(1);
    assert.equal(u!.len, 0);
    assert.equal(onlyViolation(fx.conformance(), 'crypto.status-room').detail, 'the chain has no device-writable byte for the status');
  });

  it('crypto.status-room (§5.9.7.3): dst_len 33 fills the writable part, no byte left for the status', async () => {
    const v = await broke(cipher({ dstLen: 32, override: [[S.SYM_DST_LEN, 33]] }), S.CryptoStatus.ERR, 'crypto.status-room');
    assert.equal(v.detail, 'dst 33 + hash 0 + status exceed the writable 33 bytes');
  });

  it('crypto.opcode-unknown (§5.9.7.3): opcode 0x999', async () => {
    const v = await broke(cipher({ opcode: 0x999 }), S.CryptoStatus.NOTSUPP, 'crypto.opcode-unknown');
    assert.match(v.detail, /^opcode 0x999 is not defined/);
  });

  it('crypto.opcode-session (§5.9.7.6.1): opcode HASH on a symmetric (cipher) session', async () => {
    const v = await broke(cipher({ opcode: S.VIRTIO_CRYPTO_HASH }), S.CryptoStatus.NOTSUPP, 'crypto.opcode-session');
    assert.equal(v.detail, `opcode 0x100 on symmetric session ${cbc}`);
  });

  it('crypto.session-unknown (§5.9.7.6.1): a session id the device never created', async () => {
    const v = await broke(cipher({ sessionId: 999n }), S.CryptoStatus.INVSESS, 'crypto.session-unknown');
    assert.equal(v.detail, 'session 999 was never created');
  });

  it('crypto.session-unknown (§5.9.7.6.1): a session used after it was destroyed', async () => {
    await fx.fe.closeSession(cbc);
    const v = await broke(cipher(), S.CryptoStatus.INVSESS, 'crypto.session-unknown');
    assert.equal(v.detail, `session ${cbc} was destroyed`);
  });

  it('crypto.close-unknown (§5.9.7.2.1.8): destroying a session the device never created', async () => {
    await fx.fe.closeSession(999n);
    await fx.fe.call(Request.GET_QUEUE_NUM);
    const v = onlyViolation(fx.conformance(), 'crypto.close-unknown');
    assert.deepEqual([v.queue, v.head, v.detail], [null, null, 'destroy of session 999, which was never created']);
  });

  it('crypto.op-type (§5.9.7.6.1): op_type ALGORITHM_CHAINING on a cipher session', async () => {
    const v = await broke(cipher({ override: [[S.SYM_OP_TYPE, S.VIRTIO_CRYPTO_SYM_OP_ALGORITHM_CHAINING]] }), S.CryptoStatus.ERR, 'crypto.op-type');
    assert.equal(v.detail, "op_type 2 does not match the session's 1");
  });

  it('crypto.iv-length (§5.9.7.6): an 8-byte IV for AES-CBC', async () => {
    const v = await broke(cipher({ iv: Buffer.alloc(8) }), S.CryptoStatus.ERR, 'crypto.iv-length');
    assert.deepEqual([v.clause, v.detail], ['§5.9.7.6', 'iv_len 8, mode needs 16']);
  });

  it('crypto.readable-length (§5.9.7.6): src_data_len 64 with 32 readable bytes of source', async () => {
    const v = await broke(cipher({ override: [[S.SYM_SRC_LEN, 64]] }), S.CryptoStatus.ERR, 'crypto.readable-length');
    assert.equal(v.detail, 'iv 16 + aad 0 + src 64 exceed the readable 48 bytes');
  });

  it('crypto.writable-length (§5.9.7.6): dst_data_len 64 with 33 writable bytes', async () => {
    const v = await broke(cipher({ override: [[S.SYM_DST_LEN, 64]] }), S.CryptoStatus.ERR, 'crypto.writable-length');
    assert.equal(v.detail, 'dst 64 + hash 0 + status exceed the writable 33 bytes');
  });

  it('crypto.chain-ranges (§5.9.7.6): a cipher range 16+32 outside src_data_len 32', async () => {
    const id = await hmacSession();
    const v = await broke(cipher({ sessionId: id, chain: { ...chainFields, cipherStart: 16 } }), S.CryptoStatus.ERR, 'crypto.chain-ranges');
    assert.equal(v.detail, 'cipher range 16+32 outside src_len 32');
  });

  // ---- this device's limits: refused, counted as refusals ------------------------------------

  const limit = async (req: CipherRequestSpec, rule: string, detail: RegExp): Promise<void> => {
    const v = await broke(req, S.CryptoStatus.ERR, rule);
    assert.equal(v.kind, 'device');
    assert.match(v.detail, detail);
    const c = fx.conformance();
    assert.deepEqual([c.violations, c.refusals], [0, 1], 'a device limit is no violation of the driver');
    const bad = fx.backend.snapshot().queues[0]!.recent[0]!.badRequest ?? '';
    assert.ok(bad.endsWith(`[device limit ${rule}, ${v.clause}]`), `the refusal names the limit: ${bad}`);
  };

  it('device.max-size (§5.9.5): src_data_len 2 MiB, above this device\'s 1 MiB', () =>
    limit(cipher({ override: [[S.SYM_SRC_LEN, 2 << 20], [S.SYM_DST_LEN, 2 << 20]] }), 'device.max-size', /exceed max_size 1048576/));

  it('device.aad-limit (§5.9.7.6): aad_len 100000', async () =>
    limit(cipher({ sessionId: await hmacSession(), chain: chainFields, override: [[S.CHAIN_AAD_LEN, 100_000]] }), 'device.aad-limit', /aad_len 100000 exceeds 65536/));

  it('device.iv-limit (§5.9.7.6): a 32-byte IV for AES-ECB', async () => {
    const ecb = await fx.fe.cipherSession(S.VIRTIO_CRYPTO_CIPHER_AES_ECB, crypto.randomBytes(16), true);
    await limit(cipher({ sessionId: ecb, iv: Buffer.alloc(32) }), 'device.iv-limit', /iv_len 32, mode needs 0/);
  });

  it('device.dst-length (§5.9.7.6): dst_data_len 16 for 32 bytes of AES-CBC', () =>
    limit(cipher({ dstLen: 16 }), 'device.dst-length', /dst_len 16 differs from src_len 32/));

  it('device.empty-source (§5.9.7.6): a cipher request of 0 bytes', () =>
    limit(cipher({ src: Buffer.alloc(0) }), 'device.empty-source', /src_len is 0/));

  it('device.hash-length (§5.9.7.6): hash_result_len 16 on a session created with 32', async () =>
    limit(cipher({ sessionId: await hmacSession(), chain: { ...chainFields, hashResultLen: 16 } }), 'device.hash-length', /hash_result_len 16 differs from the session's 32/));

  it('device.no-cipher-length (§5.9.7.6): len_to_cipher 16 on a hash-only session', async () => {
    const sha = await fx.fe.chainSession({ hashMode: S.VIRTIO_CRYPTO_SYM_HASH_MODE_PLAIN, hashAlg: S.VIRTIO_CRYPTO_HASH_SHA_256, hashResultLen: 32 });
    await limit(cipher({ sessionId: sha, iv: Buffer.alloc(0), dstLen: 0, chain: { ...chainFields, lenToCipher: 16 } }), 'device.no-cipher-length', /len_to_cipher 16 on a NO_CIPHER session/);
  });

  it('device.blocks (§5.9.7.6): 15 bytes of AES-CBC', () =>
    limit(cipher({ src: crypto.randomBytes(15) }), 'device.blocks', /src_len 15 is not a multiple of the AES block/));
});
