/**
 * The device against a hostile guest, at the device seam (real OpenSSL engine behind a recording
 * wrapper, guest memory as plain or shared byte arrays): data length cap, session cap, key wiping,
 * header read once.
 */
import assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import { describe, it } from 'node:test';
import { Worker } from 'node:worker_threads';
import { CryptoDevice, MAX_SESSIONS } from '../../../../backend/crypto/device';
import { EvpEngine } from '../../../../backend/crypto/evp-engine';
import * as S from '../../../../backend/crypto/spec';
import { newCounters } from '../../../../backend/telemetry/stats';
import * as W from '../../../../backend/vhost-user/wire';
import { RecordingEngine } from '../helpers';

function cipherRequest(cipherAlg: number, key: Buffer, authKey: Buffer = Buffer.alloc(0), hashAlg = 0): W.CreateSessionRequest {
  const chaining = authKey.length > 0;
  return W.decodeCreateSession(W.Request.CREATE_CRYPTO_SESSION, W.encodeCreateSession('qemu7', {
    cipherAlg, hashAlg, hashResultLen: chaining ? 32 : 0, addLen: 0,
    opType: chaining ? S.VIRTIO_CRYPTO_SYM_OP_ALGORITHM_CHAINING : S.VIRTIO_CRYPTO_SYM_OP_CIPHER, direction: S.VIRTIO_CRYPTO_OP_ENCRYPT,
    hashMode: chaining ? S.VIRTIO_CRYPTO_SYM_HASH_MODE_AUTH : 0, algChainOrder: chaining ? S.VIRTIO_CRYPTO_SYM_ALG_CHAIN_ORDER_CIPHER_THEN_HASH : 0, key, authKey,
  }));
}

function header(sessionId: bigint, srcLen: number, dstLen = srcLen): Buffer {
  const h = Buffer.alloc(S.DATA_REQ_HEADER_SIZE);
  h.writeUInt32LE(S.VIRTIO_CRYPTO_CIPHER_ENCRYPT, S.HDR_OPCODE);
  h.writeBigUInt64LE(sessionId, S.HDR_SESSION_ID);
  h.writeUInt32LE(16, S.SYM_IV_LEN);
  h.writeUInt32LE(srcLen >>> 0, S.SYM_SRC_LEN);
  h.writeUInt32LE(dstLen >>> 0, S.SYM_DST_LEN);
  h.writeUInt32LE(S.VIRTIO_CRYPTO_SYM_OP_CIPHER, S.SYM_OP_TYPE);
  return h;
}

const sum = (segs: readonly Uint8Array[]): number => segs.reduce((n, s) => n + s.length, 0);

describe('device limits against a hostile guest', () => {
  it('answers ERR for src_len/dst_len above MAX_DATA_LEN on aliased descriptors and hands the engine nothing', () => {
    const engine = new RecordingEngine();
    const counters = newCounters();
    const dev = new CryptoDevice(engine, counters);
    const created = dev.createSession(cipherRequest(S.VIRTIO_CRYPTO_CIPHER_AES_CTR, crypto.randomBytes(16)));
    assert.ok(created.ok);
    // One 16 MiB piece of "guest RAM" named four times on each side: a 64 MiB request the chain holds.
    const ram = new Uint8Array(16 << 20);
    const big = 64 << 20;
    const readable = [header(created.id, big), Buffer.alloc(16), ram, ram, ram, ram];
    const status = new Uint8Array(1).fill(0xee);
    const writable = [ram, ram, ram, ram, status];
    const r = dev.handle(readable, sum(readable), writable, sum(writable));
    assert.equal(r.status, S.CryptoStatus.ERR);
    assert.equal(status[0], S.CryptoStatus.ERR);
    assert.equal(r.written, 1);
    assert.deepEqual(engine.inputLengths, [], 'the engine never saw the oversized request');
    assert.equal(counters.bytesIn, 0);
  });

  it('serves exactly MAX_DATA_LEN and refuses one byte more', () => {
    const engine = new RecordingEngine();
    const dev = new CryptoDevice(engine, newCounters());
    const created = dev.createSession(cipherRequest(S.VIRTIO_CRYPTO_CIPHER_AES_CTR, crypto.randomBytes(16)));
    assert.ok(created.ok);
    for (const [len, want] of [[S.MAX_DATA_LEN, S.CryptoStatus.OK], [S.MAX_DATA_LEN + 1, S.CryptoStatus.ERR]] as const) {
      const readable: Uint8Array[] = [header(created.id, len), Buffer.alloc(16), new Uint8Array(len)];
      const writable: Uint8Array[] = [new Uint8Array(len + 1)];
      assert.equal(dev.handle(readable, sum(readable), writable, sum(writable)).status, want, `src_len ${len}`);
    }
    assert.ok(Math.max(...engine.inputLengths) <= S.MAX_DATA_LEN);
  });

  it('answers ERR for an AAD above MAX_AAD_LEN before reading it', () => {
    const engine = new RecordingEngine();
    const dev = new CryptoDevice(engine, newCounters());
    const r = dev.createSession(cipherRequest(S.VIRTIO_CRYPTO_CIPHER_AES_CBC, crypto.randomBytes(16), crypto.randomBytes(32), S.VIRTIO_CRYPTO_MAC_HMAC_SHA_256));
    assert.ok(r.ok);
    const hdr = header(r.id, 16);
    hdr.writeUInt32LE(S.VIRTIO_CRYPTO_SYM_OP_ALGORITHM_CHAINING, S.SYM_OP_TYPE);
    hdr.writeUInt32LE(S.MAX_AAD_LEN + 1, S.CHAIN_AAD_LEN);
    hdr.writeUInt32LE(32, S.CHAIN_HASH_RESULT_LEN);
    const aadRam = new Uint8Array(S.MAX_AAD_LEN + 1);
    const readable: Uint8Array[] = [hdr, Buffer.alloc(16), aadRam, Buffer.alloc(16)];
    const writable: Uint8Array[] = [new Uint8Array(16 + 32 + 1)];
    assert.equal(dev.handle(readable, sum(readable), writable, sum(writable)).status, S.CryptoStatus.ERR);
    assert.deepEqual(engine.inputLengths, []);
  });

  it(`refuses session ${MAX_SESSIONS + 1} while ${MAX_SESSIONS} are open, counts it, and accepts again after a close`, () => {
    const counters = newCounters();
    const dev = new CryptoDevice(EvpEngine.open(), counters);
    const key = crypto.randomBytes(16);
    const ids: bigint[] = [];
    for (let k = 0; k < MAX_SESSIONS; k++) {
      const r = dev.createSession(cipherRequest(S.VIRTIO_CRYPTO_CIPHER_AES_CBC, Buffer.from(key)));
      assert.ok(r.ok, `session ${k + 1}`);
      ids.push(r.id);
    }
    const refused = dev.createSession(cipherRequest(S.VIRTIO_CRYPTO_CIPHER_AES_CBC, Buffer.from(key)));
    assert.equal(refused.ok, false);
    assert.match(refused.ok ? '' : refused.reason, new RegExp(`limit of ${MAX_SESSIONS} open sessions`));
    assert.equal(counters.sessionsRefusedAtLimit, 1);
    assert.equal(counters.sessionCreateFailures, 1);
    assert.equal(dev.sessionSummaries().length, MAX_SESSIONS);
    assert.ok(dev.closeSession(ids[0]));
    assert.ok(dev.createSession(cipherRequest(S.VIRTIO_CRYPTO_CIPHER_AES_CBC, Buffer.from(key))).ok);
  });

  it('wipes every key buffer it handed to the engine and the request\'s copies once the session exists', () => {
    const engine = new RecordingEngine();
    const dev = new CryptoDevice(engine, newCounters());
    const req = cipherRequest(S.VIRTIO_CRYPTO_CIPHER_AES_CBC, crypto.randomBytes(32), crypto.randomBytes(64), S.VIRTIO_CRYPTO_MAC_HMAC_SHA_256);
    const r = dev.createSession(req);
    assert.ok(r.ok);
    assert.equal(engine.keysSeen.length, 2);
    for (const k of [...engine.keysSeen, req.info.key, req.info.authKey]) {
      assert.ok(k.length > 0 && k.every((b) => b === 0), 'key bytes zeroed');
    }
    // The session still works: the engine kept its own key object.
    const readable = [header(r.id, 16), Buffer.alloc(16), Buffer.alloc(16)];
    readable[0].writeUInt32LE(S.VIRTIO_CRYPTO_SYM_OP_ALGORITHM_CHAINING, S.SYM_OP_TYPE);
    readable[0].writeUInt32LE(16, S.CHAIN_LEN_TO_CIPHER);
    readable[0].writeUInt32LE(16, S.CHAIN_LEN_TO_HASH);
    readable[0].writeUInt32LE(32, S.CHAIN_HASH_RESULT_LEN);
    const writable = [new Uint8Array(16 + 32 + 1)];
    assert.equal(dev.handle(readable, sum(readable), writable, sum(writable)).status, S.CryptoStatus.OK);
    assert.ok(dev.closeSession(r.id));
    assert.equal(engine.disposed, 2, 'cipher and MAC disposed at close');
  });

  it('wipes the keys of a refused session too', () => {
    const engine = new RecordingEngine();
    const dev = new CryptoDevice(engine, newCounters());
    // XTS with identical halves: the engine sees the key and refuses it.
    const half = crypto.randomBytes(16);
    const req = cipherRequest(S.VIRTIO_CRYPTO_CIPHER_AES_XTS, Buffer.concat([half, half]));
    assert.equal(dev.createSession(req).ok, false);
    assert.equal(engine.keysSeen.length, 1);
    for (const k of [...engine.keysSeen, req.info.key]) assert.ok(k.every((b) => b === 0));
  });

  it('reads the 72-byte header once: what is counted is what the engine processed, whatever a racing guest writes', async () => {
    // Guest memory shared with a worker thread that flips src_len/dst_len between 16 and 32 as
    // fast as it can, like a second vCPU rewriting the header while the device works.
    const sab = new SharedArrayBuffer(4096);
    const mem = new Uint8Array(sab);
    const engine = new RecordingEngine();
    const counters = newCounters();
    const dev = new CryptoDevice(engine, counters);
    const created = dev.createSession(cipherRequest(S.VIRTIO_CRYPTO_CIPHER_AES_CTR, crypto.randomBytes(16)));
    assert.ok(created.ok);
    mem.set(header(created.id, 16), 0);
    const readable = [mem.subarray(0, 72), mem.subarray(72, 88), mem.subarray(88, 120)];
    const writable = [mem.subarray(1024, 1024 + 33)];
    const ctl = new Int32Array(sab, 2048, 2);
    const worker = new Worker(`
      const { workerData } = require('node:worker_threads');
      const words = new Int32Array(workerData, 0, 18);
      const ctl = new Int32Array(workerData, 2048, 2);
      Atomics.store(ctl, 1, 1);
      while (Atomics.load(ctl, 0) === 0) {
        Atomics.store(words, ${S.SYM_SRC_LEN / 4}, 32); Atomics.store(words, ${S.SYM_DST_LEN / 4}, 32);
        Atomics.store(words, ${S.SYM_SRC_LEN / 4}, 16); Atomics.store(words, ${S.SYM_DST_LEN / 4}, 16);
      }`, { eval: true, workerData: sab });
    try {
      const started = Date.now();
      while (Atomics.load(ctl, 1) === 0 && Date.now() - started < 10_000) await new Promise((r) => setTimeout(r, 5));
      assert.equal(Atomics.load(ctl, 1), 1, 'racing worker started');
      let ok = 0;
      let mismatches = 0;
      // Bounded by iterations and by time (on a loaded 2-core machine the worker may get few slices).
      for (let k = 0; k < 100_000 && Date.now() - started < 1500; k++) {
        const before = engine.inputLengths.length;
        const r = dev.handle(readable, sum(readable), writable, sum(writable));
        if (r.status !== S.CryptoStatus.OK) continue;
        ok++;
        const processed = engine.inputLengths.slice(before).reduce((a, b) => a + b, 0);
        if (processed !== r.srcLen) mismatches++;
      }
      assert.ok(ok > 0);
      assert.equal(mismatches, 0, `${mismatches} of ${ok} requests processed a different length than counted`);
      assert.equal(counters.bytesIn, engine.inputLengths.reduce((a, b) => a + b, 0));
    } finally {
      Atomics.store(ctl, 0, 1);
      await worker.terminate();
    }
  });
  it('hands the engine views of guest memory (in place, no copy) when src and dst are one descriptor each, scratch only when they span two', () => {
    const engine = new RecordingEngine();
    const dev = new CryptoDevice(engine, newCounters());
    const key = crypto.randomBytes(16);
    const r = dev.createSession(cipherRequest(S.VIRTIO_CRYPTO_CIPHER_AES_CBC, Buffer.from(key)));
    assert.ok(r.ok);
    const guest = new Uint8Array(1 << 16);
    const iv = crypto.randomBytes(16);
    const plain = crypto.randomBytes(64);
    guest.set(header(r.id, 64), 0);
    guest.set(iv, 72);
    guest.set(plain, 88);
    const seg = (at: number, len: number): Uint8Array => guest.subarray(at, at + len);
    const want = crypto.createCipheriv('aes-128-cbc', key, iv).setAutoPadding(false).update(plain);
    // One descriptor each: the engine reads src and writes dst in guest memory itself.
    assert.equal(dev.handle([seg(0, 72), seg(72, 16), seg(88, 64)], 152, [seg(4096, 64), seg(8192, 1)], 65).status, S.CryptoStatus.OK);
    const v = engine.views[0];
    assert.equal(v.src.buffer, guest.buffer, 'src is a view of guest memory');
    assert.equal(v.src.byteOffset, 88);
    assert.equal(v.dst.buffer, guest.buffer, 'dst is a view of guest memory');
    assert.equal(v.dst.byteOffset, 4096);
    assert.deepEqual(Buffer.from(seg(4096, 64)), want);
    // src and dst split over two descriptors each: gathered into / scattered from scratch, same bytes.
    guest.fill(0, 4096, 4096 + 64);
    assert.equal(dev.handle([seg(0, 72), seg(72, 16), seg(88, 20), seg(108, 44)], 152, [seg(4096, 30), seg(6000, 34), seg(8192, 1)], 65).status, S.CryptoStatus.OK);
    const w = engine.views[1];
    assert.notEqual(w.src.buffer, guest.buffer);
    assert.notEqual(w.dst.buffer, guest.buffer);
    assert.deepEqual(Buffer.concat([seg(4096, 30), seg(6000, 34)]), want);
  });
});
