import assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import { describe, it } from 'node:test';
import { DIGEST_BYTES, EngineUnavailableError, EngineUnsupportedError, type HashAlg } from '../../../../backend/crypto/engine';
import { createEngine } from '../../../../backend/crypto/engines';
import { EvpEngine } from '../../../../backend/crypto/evp-engine';
import { NodeEngine } from '../../../../backend/crypto/node-engine';
import { testEngines } from './engine-matrix';

const HASHES: readonly HashAlg[] = ['md5', 'sha1', 'sha224', 'sha256', 'sha384', 'sha512'];

describe('crypto engines', () => {
  it('auto picks cryptodev when /dev/crypto opens, else the native openssl engine, and says why', () => {
    const sel = createEngine('auto', { cryptodevPath: '/nonexistent/crypto' });
    assert.equal(sel.engine.name, 'openssl');
    assert.match(sel.reason, /auto: openssl because \/nonexistent\/crypto does not exist/);
    if (!fs.existsSync('/dev/crypto')) assert.equal(createEngine('auto').engine.name, 'openssl');
    assert.equal(createEngine('node').engine.name, 'node');
    assert.equal(createEngine('openssl').engine.name, 'openssl');
  });
  it('cryptodev without the device is a typed "unavailable" error', () => {
    assert.throws(() => createEngine('cryptodev', { cryptodevPath: '/nonexistent/crypto' }), (err: unknown) =>
      err instanceof EngineUnavailableError && err.engine === 'cryptodev' && /unavailable: \/nonexistent\/crypto does not exist/.test(err.message));
  });
  for (const { name, make, skip } of testEngines()) {
    describe(`engine ${name}`, { skip }, () => {
      it('refuses unsupported keys with EngineUnsupportedError (→ NOTSUPP / refused session)', () => {
        const e = make();
        assert.throws(() => e.prepareCipher('cbc', Buffer.alloc(20)), EngineUnsupportedError);
        assert.throws(() => e.prepareCipher('xts', Buffer.alloc(24)), EngineUnsupportedError);
        assert.throws(() => e.prepareCipher('xts', Buffer.alloc(32, 1)), /identical key halves/);
      });
      it('ciphers like node:crypto into the given dst, also in place (dst === src)', () => {
        const e = make();
        // /dev/crypto (cryptodev-linux and our driver) refuses XTS with a partial last block (EINVAL):
        // whole blocks there, ciphertext stealing (40 bytes) on the others.
        const xtsLen = name === 'cryptodev' ? 48 : 40;
        for (const [mode, keyLen, len, ossl] of [['cbc', 32, 64, 'aes-256-cbc'], ['ctr', 16, 61, 'aes-128-ctr'], ['ecb', 24, 48, 'aes-192-ecb'], ['xts', 64, xtsLen, 'aes-256-xts']] as const) {
          const key = crypto.randomBytes(keyLen);
          const iv = mode === 'ecb' ? null : crypto.randomBytes(16);
          const src = crypto.randomBytes(len);
          const ref = crypto.createCipheriv(ossl, key, iv).setAutoPadding(false);
          const want = Buffer.concat([ref.update(src), ref.final()]);
          const c = e.prepareCipher(mode, key);
          const dst = Buffer.alloc(len);
          c.crypt(true, iv, src, dst);
          assert.deepEqual(dst, want, `${mode} encrypt`);
          const back = Buffer.from(dst);
          c.crypt(false, iv, back, back);
          assert.deepEqual(back, src, `${mode} decrypt in place`);
          // The IV is per request: the same context serves a second IV correctly.
          const iv2 = mode === 'ecb' ? null : crypto.randomBytes(16);
          const ref2 = crypto.createCipheriv(ossl, key, iv2).setAutoPadding(false);
          c.crypt(true, iv2, src, dst);
          assert.deepEqual(dst, Buffer.concat([ref2.update(src), ref2.final()]), `${mode} second IV`);
          c.dispose();
        }
      });
      it('hashes and HMACs (any key length, 0 included) like node:crypto, truncating into a short out', () => {
        const e = make();
        for (const h of HASHES) {
          const data = [crypto.randomBytes(13), crypto.randomBytes(200)];
          const out = Buffer.alloc(DIGEST_BYTES[h]);
          const d = e.prepareDigest(h, null);
          d.digest(data, out);
          assert.deepEqual(out, crypto.createHash(h).update(data[0]).update(data[1]).digest(), h);
          d.digest([], out);
          assert.deepEqual(out, crypto.createHash(h).digest(), `${h} of nothing`);
          for (const keyLen of [0, 1, 64, 200, 512]) {
            const key = crypto.randomBytes(keyLen);
            const m = e.prepareDigest(h, key);
            m.digest(data, out);
            assert.deepEqual(out, crypto.createHmac(h, key).update(Buffer.concat(data)).digest(), `HMAC-${h} key ${keyLen}`);
            const short = Buffer.alloc(10, 0xaa);
            const guard = Buffer.alloc(12, 0xbb);
            m.digest(data, short);
            assert.deepEqual(short, out.subarray(0, 10), 'truncated');
            assert.ok(guard.every((b) => b === 0xbb));
            m.dispose();
          }
        }
      });
      it('a disposed cipher or digest cannot be used (keys are gone with the session)', () => {
        const e = make();
        const c = e.prepareCipher('ctr', crypto.randomBytes(16));
        c.crypt(true, Buffer.alloc(16), Buffer.alloc(5), Buffer.alloc(5));
        c.dispose();
        assert.throws(() => c.crypt(true, Buffer.alloc(16), Buffer.alloc(5), Buffer.alloc(5)), /after dispose/);
        const m = e.prepareDigest('sha256', Buffer.from('k'));
        m.dispose();
        assert.throws(() => m.digest([], Buffer.alloc(32)), /after dispose/);
      });
    });
  }
  it('the native engine refuses wrong shapes instead of touching memory it was not given', () => {
    const c = EvpEngine.open().prepareCipher('cbc', crypto.randomBytes(16));
    assert.throws(() => c.crypt(true, Buffer.alloc(16), Buffer.alloc(32), Buffer.alloc(16)), /dst must have src's length/);
    assert.throws(() => c.crypt(true, Buffer.alloc(8), Buffer.alloc(16), Buffer.alloc(16)), /iv must be 16 bytes/);
    assert.throws(() => c.crypt(true, Buffer.alloc(16), Buffer.alloc(15), Buffer.alloc(15)), /whole number of blocks/);
  });
  it('partially overlapping src and dst (aliasing guest descriptors) give some output or an error, never a crash', () => {
    for (const make of [() => EvpEngine.open(), () => new NodeEngine()]) {
      const e = make();
      for (const mode of ['cbc', 'ctr', 'ecb', 'xts'] as const) {
        const c = e.prepareCipher(mode, crypto.randomBytes(32));
        const buf = Buffer.alloc(4096, 7);
        for (const shift of [1, 5, 16, 17, 1000]) {
          for (const encrypt of [true, false]) {
            try {
              c.crypt(encrypt, mode === 'ecb' ? null : Buffer.alloc(16), buf.subarray(0, 1024), buf.subarray(shift, shift + 1024));
            } catch (err) {
              assert.ok(err instanceof Error);
            }
          }
        }
        assert.ok(buf.subarray(2048).every((b) => b === 7), `${e.name} ${mode}: nothing written past dst`);
        c.dispose();
      }
    }
  });
});
