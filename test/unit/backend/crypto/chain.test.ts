/**
 * Algorithm chaining (virtio 1.2 §5.9) through the real vhost-user socket: hash-only and HMAC-only
 * sessions (VIRTIO_CRYPTO_NO_CIPHER + hash mode PLAIN / AUTH) with FIPS 180-4 / RFC 1321 and
 * RFC 2202 / 4231 known answers, cipher + HMAC chains in cryptodev-linux's order, ranges spanning
 * descriptors, and every offset/length rule of a chain request, on every engine (engine-matrix.ts).
 */
import assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import * as S from '../../../../backend/crypto/spec';
import type { TestFrontend } from '../../../../backend/harness/frontend';
import type { ChainRequestFields } from '../../../../backend/harness/request-layout';
import { testEngines } from './engine-matrix';
import { type Fixture, startBackend } from '../helpers';

const ABC = Buffer.from('abc');
const M448 = Buffer.from('abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq');
const M896 = Buffer.from('abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu');

/** FIPS 180-4 examples (SHA) and RFC 1321 (MD5): [virtio hash alg, name, message, digest]. */
const HASH_KATS: readonly [number, string, Buffer, string][] = [
  [S.VIRTIO_CRYPTO_HASH_MD5, 'MD5', Buffer.alloc(0), 'd41d8cd98f00b204e9800998ecf8427e'],
  [S.VIRTIO_CRYPTO_HASH_MD5, 'MD5', ABC, '900150983cd24fb0d6963f7d28e17f72'],
  [S.VIRTIO_CRYPTO_HASH_SHA1, 'SHA1', ABC, 'a9993e364706816aba3e25717850c26c9cd0d89d'],
  [S.VIRTIO_CRYPTO_HASH_SHA1, 'SHA1', M448, '84983e441c3bd26ebaae4aa1f95129e5e54670f1'],
  [S.VIRTIO_CRYPTO_HASH_SHA_224, 'SHA-224', ABC, '23097d223405d8228642a477bda255b32aadbce4bda0b3f7e36c9da7'],
  [S.VIRTIO_CRYPTO_HASH_SHA_224, 'SHA-224', M448, '75388b16512776cc5dba5da1fd890150b0c6455cb4f58b1952522525'],
  [S.VIRTIO_CRYPTO_HASH_SHA_256, 'SHA-256', Buffer.alloc(0), 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'],
  [S.VIRTIO_CRYPTO_HASH_SHA_256, 'SHA-256', ABC, 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad'],
  [S.VIRTIO_CRYPTO_HASH_SHA_256, 'SHA-256', M448, '248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1'],
  [S.VIRTIO_CRYPTO_HASH_SHA_384, 'SHA-384', ABC, 'cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed8086072ba1e7cc2358baeca134c825a7'],
  [S.VIRTIO_CRYPTO_HASH_SHA_384, 'SHA-384', M896, '09330c33f71147e83d192fc782cd1b4753111b173b3b05d22fa08086e3b0f712fcc7c71a557e2db966c3e9fa91746039'],
  [S.VIRTIO_CRYPTO_HASH_SHA_512, 'SHA-512', ABC, 'ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f'],
  [S.VIRTIO_CRYPTO_HASH_SHA_512, 'SHA-512', M896, '8e959b75dae313da8cf4f72814fc143f8f7779c6eb9f7fa17299aeadb6889018501d289e4900f7e4331b99dec4b5433ac7d329eeb6dd26545e96e55b874be909'],
];

const HI = Buffer.from('Hi There');
const JEFE_MSG = Buffer.from('what do ya want for nothing?');
const BIG_KEY_MSG = Buffer.from('Test Using Larger Than Block-Size Key - Hash Key First');
/** RFC 2202 (HMAC-MD5, HMAC-SHA1) and RFC 4231 (HMAC-SHA-2) test cases 1, 2 and 6. */
const HMAC_KATS: readonly [number, string, Buffer, Buffer, string][] = [
  [S.VIRTIO_CRYPTO_MAC_HMAC_MD5, 'HMAC-MD5 RFC 2202 #1', Buffer.alloc(16, 0x0b), HI, '9294727a3638bb1c13f48ef8158bfc9d'],
  [S.VIRTIO_CRYPTO_MAC_HMAC_MD5, 'HMAC-MD5 RFC 2202 #2', Buffer.from('Jefe'), JEFE_MSG, '750c783e6ab0b503eaa86e310a5db738'],
  [S.VIRTIO_CRYPTO_MAC_HMAC_MD5, 'HMAC-MD5 RFC 2202 #6', Buffer.alloc(80, 0xaa), BIG_KEY_MSG, '6b1ab7fe4bd7bf8f0b62e6ce61b9d0cd'],
  [S.VIRTIO_CRYPTO_MAC_HMAC_SHA1, 'HMAC-SHA1 RFC 2202 #1', Buffer.alloc(20, 0x0b), HI, 'b617318655057264e28bc0b6fb378c8ef146be00'],
  [S.VIRTIO_CRYPTO_MAC_HMAC_SHA1, 'HMAC-SHA1 RFC 2202 #2', Buffer.from('Jefe'), JEFE_MSG, 'effcdf6ae5eb2fa2d27416d5f184df9c259a7c79'],
  [S.VIRTIO_CRYPTO_MAC_HMAC_SHA1, 'HMAC-SHA1 RFC 2202 #6', Buffer.alloc(80, 0xaa), BIG_KEY_MSG, 'aa4ae5e15272d00e95705637ce8a3b55ed402112'],
  [S.VIRTIO_CRYPTO_MAC_HMAC_SHA_224, 'HMAC-SHA-224 RFC 4231 #1', Buffer.alloc(20, 0x0b), HI, '896fb1128abbdf196832107cd49df33f47b4b1169912ba4f53684b22'],
  [S.VIRTIO_CRYPTO_MAC_HMAC_SHA_224, 'HMAC-SHA-224 RFC 4231 #2', Buffer.from('Jefe'), JEFE_MSG, 'a30e01098bc6dbbf45690f3a7e9e6d0f8bbea2a39e6148008fd05e44'],
  [S.VIRTIO_CRYPTO_MAC_HMAC_SHA_256, 'HMAC-SHA-256 RFC 4231 #1', Buffer.alloc(20, 0x0b), HI, 'b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7'],
  [S.VIRTIO_CRYPTO_MAC_HMAC_SHA_256, 'HMAC-SHA-256 RFC 4231 #2', Buffer.from('Jefe'), JEFE_MSG, '5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843'],
  [S.VIRTIO_CRYPTO_MAC_HMAC_SHA_256, 'HMAC-SHA-256 RFC 4231 #6', Buffer.alloc(131, 0xaa), BIG_KEY_MSG, '60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54'],
  [S.VIRTIO_CRYPTO_MAC_HMAC_SHA_384, 'HMAC-SHA-384 RFC 4231 #1', Buffer.alloc(20, 0x0b), HI, 'afd03944d84895626b0825f4ab46907f15f9dadbe4101ec682aa034c7cebc59cfaea9ea9076ede7f4af152e8b2fa9cb6'],
  [S.VIRTIO_CRYPTO_MAC_HMAC_SHA_384, 'HMAC-SHA-384 RFC 4231 #2', Buffer.from('Jefe'), JEFE_MSG, 'af45d2e376484031617f78d2b58a6b1b9c7ef464f5a01b47e42ec3736322445e8e2240ca5e69e2c78b3239ecfab21649'],
  [S.VIRTIO_CRYPTO_MAC_HMAC_SHA_512, 'HMAC-SHA-512 RFC 4231 #1', Buffer.alloc(20, 0x0b), HI, '87aa7cdea5ef619d4ff0b4241a1d6cb02379f4e2ce4ec2787ad0b30545e17cdedaa833b7d6b8a702038b274eaea3f4e4be9d914eeb61f1702e696c203a126854'],
  [S.VIRTIO_CRYPTO_MAC_HMAC_SHA_512, 'HMAC-SHA-512 RFC 4231 #2', Buffer.from('Jefe'), JEFE_MSG, '164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea2505549758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737'],
  [S.VIRTIO_CRYPTO_MAC_HMAC_SHA_512, 'HMAC-SHA-512 RFC 4231 #6', Buffer.alloc(131, 0xaa), BIG_KEY_MSG, '80b24263c7c1a3ebb71493c1dd7be8b49b46d1f41b4aeec1121b013783f8f3526b56d037e05f2598bd0fd2215d6a1e5295e64f73f63f0aec8b915a985d786598'],
];

/** The whole src hashed, nothing ciphered, no AAD. */
function hashAll(len: number, hashResultLen: number): ChainRequestFields {
  return { aad: Buffer.alloc(0), cipherStart: 0, lenToCipher: 0, hashStart: 0, lenToHash: len, hashResultLen };
}

function aesCbc(key: Buffer, iv: Buffer, data: Buffer, encrypt: boolean): Buffer {
  const c = encrypt ? crypto.createCipheriv(`aes-${key.length * 8}-cbc`, key, iv) : crypto.createDecipheriv(`aes-${key.length * 8}-cbc`, key, iv);
  c.setAutoPadding(false);
  return Buffer.concat([c.update(data), c.final()]);
}

const ENCRYPT = S.VIRTIO_CRYPTO_CIPHER_ENCRYPT;

for (const { name: engineName, make: makeEngine, skip } of testEngines()) {
  describe(`algorithm chaining over the vhost-user socket (engine ${engineName})`, { skip }, () => {
    let fx: Fixture;
    let fe: TestFrontend;
    before(async () => {
      fx = startBackend({ engine: makeEngine() });
      fe = await fx.connect();
    });
    after(() => fx.close());

    it('NO_CIPHER + hash mode PLAIN: FIPS 180-4 / RFC 1321 known answers (dst_len 0 and src_len), both session layouts', async () => {
      for (const [alg, name, msg, want] of HASH_KATS) {
        for (const layout of ['qemu7', 'qemu8.1'] as const) {
          const len = want.length / 2;
          const id = await fe.chainSession({ hashMode: S.VIRTIO_CRYPTO_SYM_HASH_MODE_PLAIN, hashAlg: alg, hashResultLen: len }, layout);
          assert.ok(id > 0n, `${name} session (${layout})`);
          const r = await fe.run({ opcode: ENCRYPT, sessionId: id, iv: Buffer.alloc(0), src: msg, dstLen: 0, chain: hashAll(msg.length, len) });
          assert.equal(r.status, S.CryptoStatus.OK, `${name}(${msg.length} B) status`);
          assert.equal(r.hash.toString('hex'), want, `${name}(${JSON.stringify(msg.toString())})`);
          assert.equal(r.usedLen, len + 1);
          if (msg.length > 0) {
            // dst_len = src_len: the data comes back unchanged next to the digest.
            const r2 = await fe.run({ opcode: ENCRYPT, sessionId: id, iv: Buffer.alloc(0), src: msg, chain: hashAll(msg.length, len) });
            assert.deepEqual(r2.dst, msg);
            assert.equal(r2.hash.toString('hex'), want);
            assert.equal(r2.usedLen, msg.length + len + 1);
          }
          await fe.closeSession(id);
        }
      }
    });

    it('NO_CIPHER + hash mode AUTH: RFC 2202 / RFC 4231 HMAC known answers, keys up to 131 bytes', async () => {
      for (const [alg, name, key, msg, want] of HMAC_KATS) {
        const len = want.length / 2;
        const id = await fe.chainSession({ hashMode: S.VIRTIO_CRYPTO_SYM_HASH_MODE_AUTH, hashAlg: alg, authKey: key, hashResultLen: len });
        assert.ok(id > 0n, name);
        const r = await fe.run({ opcode: ENCRYPT, sessionId: id, iv: Buffer.alloc(0), src: msg, dstLen: 0, chain: hashAll(msg.length, len) });
        assert.equal(r.status, S.CryptoStatus.OK, name);
        assert.equal(r.hash.toString('hex'), want, name);
        await fe.closeSession(id);
      }
    });

    it('HMAC with a 512-byte key and with an empty key; truncated result (RFC 4231 #5: 128 bits)', async () => {
      for (const keyLen of [0, 512]) {
        const key = crypto.randomBytes(keyLen);
        const msg = crypto.randomBytes(300);
        const id = await fe.chainSession({ hashMode: S.VIRTIO_CRYPTO_SYM_HASH_MODE_AUTH, hashAlg: S.VIRTIO_CRYPTO_MAC_HMAC_SHA_256, authKey: key, hashResultLen: 32 });
        assert.ok(id > 0n, `key ${keyLen}`);
        const r = await fe.run({ opcode: ENCRYPT, sessionId: id, iv: Buffer.alloc(0), src: msg, dstLen: 0, chain: hashAll(msg.length, 32) });
        assert.deepEqual(r.hash, crypto.createHmac('sha256', key).update(msg).digest(), `key ${keyLen}`);
        await fe.closeSession(id);
      }
      const id = await fe.chainSession({ hashMode: S.VIRTIO_CRYPTO_SYM_HASH_MODE_AUTH, hashAlg: S.VIRTIO_CRYPTO_MAC_HMAC_SHA_256, authKey: Buffer.alloc(20, 0x0c), hashResultLen: 16 });
      const msg = Buffer.from('Test With Truncation');
      const r = await fe.run({ opcode: ENCRYPT, sessionId: id, iv: Buffer.alloc(0), src: msg, dstLen: 0, chain: hashAll(msg.length, 16) });
      assert.equal(r.hash.toString('hex'), 'a3b6167473100ee06e0c796c2955552b');
      assert.equal(r.usedLen, 17);
      await fe.closeSession(id);
    });

    it('hash range and AAD: the digest covers aad || src[hash_start, +len_to_hash]', async () => {
      const key = crypto.randomBytes(64);
      const id = await fe.chainSession({ hashMode: S.VIRTIO_CRYPTO_SYM_HASH_MODE_AUTH, hashAlg: S.VIRTIO_CRYPTO_MAC_HMAC_SHA_384, authKey: key, hashResultLen: 48, aadLen: 13 });
      const aad = crypto.randomBytes(13);
      const src = crypto.randomBytes(100);
      const r = await fe.run({ opcode: ENCRYPT, sessionId: id, iv: Buffer.alloc(0), src, chain: { aad, cipherStart: 0, lenToCipher: 0, hashStart: 7, lenToHash: 50, hashResultLen: 48 } });
      assert.equal(r.status, S.CryptoStatus.OK);
      assert.deepEqual(r.hash, crypto.createHmac('sha384', key).update(aad).update(src.subarray(7, 57)).digest());
      assert.deepEqual(r.dst, src);
      await fe.closeSession(id);
    });

    it("AES-CBC + HMAC in cryptodev-linux's order: encrypt = HASH_THEN_CIPHER (MAC of the plaintext), decrypt = CIPHER_THEN_HASH (MAC of the plaintext)", async () => {
      for (const [alg, hash, len] of [[S.VIRTIO_CRYPTO_MAC_HMAC_SHA1, 'sha1', 20], [S.VIRTIO_CRYPTO_MAC_HMAC_SHA_256, 'sha256', 32], [S.VIRTIO_CRYPTO_MAC_HMAC_SHA_512, 'sha512', 64], [S.VIRTIO_CRYPTO_MAC_HMAC_MD5, 'md5', 16]] as const) {
        const key = crypto.randomBytes(32);
        const authKey = crypto.randomBytes(37);
        const common = { cipherAlg: S.VIRTIO_CRYPTO_CIPHER_AES_CBC, key, hashMode: S.VIRTIO_CRYPTO_SYM_HASH_MODE_AUTH, hashAlg: alg, authKey, hashResultLen: len };
        const enc = await fe.chainSession({ ...common, order: S.VIRTIO_CRYPTO_SYM_ALG_CHAIN_ORDER_HASH_THEN_CIPHER, encrypt: true });
        const dec = await fe.chainSession({ ...common, order: S.VIRTIO_CRYPTO_SYM_ALG_CHAIN_ORDER_CIPHER_THEN_HASH, encrypt: false });
        const iv = crypto.randomBytes(16);
        const plain = crypto.randomBytes(256);
        const whole = (n: number): ChainRequestFields => ({ aad: Buffer.alloc(0), cipherStart: 0, lenToCipher: n, hashStart: 0, lenToHash: n, hashResultLen: len });
        const e = await fe.run({ opcode: ENCRYPT, sessionId: enc, iv, src: plain, chain: whole(256) });
        assert.equal(e.status, S.CryptoStatus.OK);
        assert.deepEqual(e.dst, aesCbc(key, iv, plain, true), `${hash}: ciphertext`);
        const mac = crypto.createHmac(hash, authKey).update(plain).digest();
        assert.deepEqual(e.hash, mac, `${hash}: encrypt MACs the plaintext`);
        const d = await fe.run({ opcode: S.VIRTIO_CRYPTO_CIPHER_DECRYPT, sessionId: dec, iv, src: e.dst, chain: whole(256) });
        assert.equal(d.status, S.CryptoStatus.OK);
        assert.deepEqual(d.dst, plain, `${hash}: plaintext back`);
        assert.deepEqual(d.hash, mac, `${hash}: decrypt MACs the plaintext too`);
        await fe.closeSession(enc);
        await fe.closeSession(dec);
      }
    });

    it('src and dst spanning two descriptors (gather/scatter path) give the same bytes as contiguous ones', async () => {
      const key = crypto.randomBytes(16);
      const authKey = crypto.randomBytes(32);
      const id = await fe.chainSession({ cipherAlg: S.VIRTIO_CRYPTO_CIPHER_AES_CBC, key, hashMode: S.VIRTIO_CRYPTO_SYM_HASH_MODE_AUTH, hashAlg: S.VIRTIO_CRYPTO_MAC_HMAC_SHA_256, authKey, hashResultLen: 32 });
      const iv = crypto.randomBytes(16);
      const src = crypto.randomBytes(4096 + 48);
      const chain: ChainRequestFields = { aad: Buffer.alloc(0), cipherStart: 48, lenToCipher: 4096, hashStart: 0, lenToHash: 4096 + 48, hashResultLen: 32 };
      const one = await fe.run({ opcode: ENCRYPT, sessionId: id, iv, src, chain });
      for (const splitAt of [1, 17, 48, 2000, 4095]) {
        const two = await fe.run({ opcode: ENCRYPT, sessionId: id, iv, src, chain, splitAt });
        assert.equal(two.status, S.CryptoStatus.OK, `split at ${splitAt}`);
        assert.deepEqual(two.dst, one.dst, `split at ${splitAt}: dst`);
        assert.deepEqual(two.hash, one.hash, `split at ${splitAt}: hash`);
      }
      const want = Buffer.from(src);
      aesCbc(key, iv, src.subarray(48), true).copy(want, 48);
      assert.deepEqual(one.dst, want);
      assert.deepEqual(one.hash, crypto.createHmac('sha256', authKey).update(src).digest());
      await fe.closeSession(id);
    });

    it('refuses chain sessions it cannot serve (reply −1), both layouts', async () => {
      const bad: [string, Parameters<TestFrontend['chainSession']>[0]][] = [
        ['NESTED hash mode', { hashMode: S.VIRTIO_CRYPTO_SYM_HASH_MODE_NESTED, hashAlg: S.VIRTIO_CRYPTO_HASH_SHA_256, hashResultLen: 32 }],
        ['hash mode 0', { hashMode: 0, hashAlg: S.VIRTIO_CRYPTO_HASH_SHA_256, hashResultLen: 32 }],
        ['SHA3-224 (not offered)', { hashMode: S.VIRTIO_CRYPTO_SYM_HASH_MODE_PLAIN, hashAlg: 7, hashResultLen: 28 }],
        ['CMAC-AES (not offered)', { hashMode: S.VIRTIO_CRYPTO_SYM_HASH_MODE_AUTH, hashAlg: 26, authKey: Buffer.alloc(16), hashResultLen: 16 }],
        ['hash_result_len 0', { hashMode: S.VIRTIO_CRYPTO_SYM_HASH_MODE_PLAIN, hashAlg: S.VIRTIO_CRYPTO_HASH_SHA1, hashResultLen: 0 }],
        ['hash_result_len above the digest', { hashMode: S.VIRTIO_CRYPTO_SYM_HASH_MODE_PLAIN, hashAlg: S.VIRTIO_CRYPTO_HASH_SHA1, hashResultLen: 21 }],
        ['plain hash with an auth key', { hashMode: S.VIRTIO_CRYPTO_SYM_HASH_MODE_PLAIN, hashAlg: S.VIRTIO_CRYPTO_HASH_SHA1, authKey: Buffer.alloc(8), hashResultLen: 20 }],
        ['NO_CIPHER with a cipher key', { key: Buffer.alloc(16), hashMode: S.VIRTIO_CRYPTO_SYM_HASH_MODE_PLAIN, hashAlg: S.VIRTIO_CRYPTO_HASH_SHA1, hashResultLen: 20 }],
        ['cipher with an unknown chain order', { cipherAlg: S.VIRTIO_CRYPTO_CIPHER_AES_CBC, key: Buffer.alloc(16), hashMode: S.VIRTIO_CRYPTO_SYM_HASH_MODE_AUTH, hashAlg: S.VIRTIO_CRYPTO_MAC_HMAC_SHA1, authKey: Buffer.alloc(20), hashResultLen: 20, order: 3 }],
        ['ARC4 (not offered; the spec has no NULL cipher)', { cipherAlg: 1, key: Buffer.alloc(16), hashMode: S.VIRTIO_CRYPTO_SYM_HASH_MODE_PLAIN, hashAlg: S.VIRTIO_CRYPTO_HASH_SHA1, hashResultLen: 20 }],
      ];
      for (const layout of ['qemu7', 'qemu8.1'] as const) {
        for (const [what, spec] of bad) assert.equal(await fe.chainSession(spec, layout), -1n, `${what} (${layout})`);
      }
    });

    describe('every offset/length rule of a chain request: ERR, nothing but the status written', () => {
      let hmacOnly: bigint;
      let cbcHmac: bigint;
      let xtsHmac: bigint;
      before(async () => {
        hmacOnly = await fe.chainSession({ hashMode: S.VIRTIO_CRYPTO_SYM_HASH_MODE_AUTH, hashAlg: S.VIRTIO_CRYPTO_MAC_HMAC_SHA_256, authKey: Buffer.alloc(32, 1), hashResultLen: 32 });
        cbcHmac = await fe.chainSession({ cipherAlg: S.VIRTIO_CRYPTO_CIPHER_AES_CBC, key: Buffer.alloc(16, 2), hashMode: S.VIRTIO_CRYPTO_SYM_HASH_MODE_AUTH, hashAlg: S.VIRTIO_CRYPTO_MAC_HMAC_SHA_256, authKey: Buffer.alloc(32, 1), hashResultLen: 32 });
        xtsHmac = await fe.chainSession({ cipherAlg: S.VIRTIO_CRYPTO_CIPHER_AES_XTS, key: Buffer.concat([Buffer.alloc(16, 3), Buffer.alloc(16, 4)]), hashMode: S.VIRTIO_CRYPTO_SYM_HASH_MODE_AUTH, hashAlg: S.VIRTIO_CRYPTO_MAC_HMAC_SHA_256, authKey: Buffer.alloc(32, 1), hashResultLen: 32 });
      });
      const src = Buffer.alloc(64, 0x5c);
      const ok: ChainRequestFields = { aad: Buffer.alloc(0), cipherStart: 0, lenToCipher: 64, hashStart: 0, lenToHash: 64, hashResultLen: 32 };
      const cases: [string, () => bigint, Partial<ChainRequestFields> & { iv?: Buffer; dstLen?: number; override?: [number, number][]; srcLen?: number }][] = [
        ['cipher_start + len_to_cipher > src_len', () => cbcHmac, { cipherStart: 16, lenToCipher: 64 }],
        ['cipher_start beyond src_len', () => cbcHmac, { cipherStart: 65, lenToCipher: 0 }],
        ['len_to_cipher 0xffffffff (no wrap-around)', () => cbcHmac, { cipherStart: 16, lenToCipher: 0xfffffff0 }],
        ['hash_start + len_to_hash > src_len', () => cbcHmac, { hashStart: 1, lenToHash: 64 }],
        ['hash_start 0xffffffff', () => cbcHmac, { hashStart: 0xffffffff, lenToHash: 1 }],
        ['len_to_cipher not a multiple of the AES block', () => cbcHmac, { lenToCipher: 40 }],
        ['XTS range under 16 bytes', () => xtsHmac, { lenToCipher: 8 }],
        ['len_to_cipher on a NO_CIPHER session', () => hmacOnly, { lenToCipher: 16, iv: Buffer.alloc(0) }],
        ["hash_result_len above the session's", () => cbcHmac, { override: [[S.CHAIN_HASH_RESULT_LEN, 33]] }],
        ["hash_result_len below the session's", () => cbcHmac, { override: [[S.CHAIN_HASH_RESULT_LEN, 16]] }],
        ['aad_len above MAX_AAD_LEN', () => hmacOnly, { lenToCipher: 0, iv: Buffer.alloc(0), override: [[S.CHAIN_AAD_LEN, S.MAX_AAD_LEN + 1]] }],
        ['aad_len beyond the readable bytes', () => hmacOnly, { lenToCipher: 0, iv: Buffer.alloc(0), override: [[S.CHAIN_AAD_LEN, 4096]] }],
        ['src_len beyond the readable bytes', () => hmacOnly, { lenToCipher: 0, iv: Buffer.alloc(0), dstLen: 0, override: [[S.SYM_SRC_LEN, 4096]] }],
        ['src_len above MAX_DATA_LEN', () => hmacOnly, { lenToCipher: 0, iv: Buffer.alloc(0), dstLen: 0, override: [[S.SYM_SRC_LEN, S.MAX_DATA_LEN + 1]] }],
        ['dst_len + hash beyond the writable bytes', () => hmacOnly, { lenToCipher: 0, iv: Buffer.alloc(0), override: [[S.SYM_DST_LEN, 64 + 100]] }],
        ['dst_len != src_len with a cipher range', () => cbcHmac, { dstLen: 32 }],
        ['dst_len neither 0 nor src_len for a hash only', () => hmacOnly, { lenToCipher: 0, iv: Buffer.alloc(0), dstLen: 10 }],
        ['iv_len not 16 for AES-CBC', () => cbcHmac, { iv: Buffer.alloc(8) }],
        ['iv_len above 16', () => hmacOnly, { lenToCipher: 0, iv: Buffer.alloc(17) }],
        ['op_type CIPHER on a chain session', () => cbcHmac, { override: [[S.SYM_OP_TYPE, S.VIRTIO_CRYPTO_SYM_OP_CIPHER]] }],
      ];
      for (const [what, session, c] of cases) {
        it(what, async () => {
          const { iv, dstLen, override, ...fields } = c;
          const layout = fe.postRequest(0, fe.heapGpa, { opcode: ENCRYPT, sessionId: session(), iv: iv ?? Buffer.alloc(16, 9), src, dstLen, chain: { ...ok, ...fields }, override });
          const writable = layout.dstLen + layout.hashLen + 1;
          fe.mem.fill(0xa5, layout.dstGpa, layout.dstGpa + writable - 1);
          fe.publishAvail();
          fe.kick();
          const [u] = await fe.waitUsed(1);
          assert.equal(fe.mem[layout.statusGpa], S.CryptoStatus.ERR, 'status ERR');
          assert.equal(u.len, 1, 'used length 1');
          assert.ok(fe.mem.subarray(layout.dstGpa, layout.dstGpa + writable - 1).every((b) => b === 0xa5), 'dst and hash untouched');
        });
      }
      it('the same session still serves a good request afterwards', async () => {
        const r = await fe.run({ opcode: ENCRYPT, sessionId: cbcHmac, iv: Buffer.alloc(16, 9), src, chain: ok });
        assert.equal(r.status, S.CryptoStatus.OK);
      });
    });
  });
}
