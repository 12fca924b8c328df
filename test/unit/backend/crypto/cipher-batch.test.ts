/**
 * One native crossing per drain pass (docs/backend.md): the batch path against the per-request path
 * on the same random request mixes through the harness front-end (same used entries in the same
 * order, the same bytes), one engine call per pass, and the native side's own row checks.
 */
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { evp, EVP_BATCH_FIELDS, EVP_ROW_OK, EVP_ROW_REFUSED } from '../../../../addon/lib/evp';
import * as S from '../../../../backend/crypto/spec';
import { spawnBackend } from '../../../../backend/harness/bench-process';
import type { TestFrontend } from '../../../../backend/harness/frontend';
import type { CipherRequestSpec } from '../../../../backend/harness/request-layout';
import { VIRTQ_DESC_F_INDIRECT } from '../../../../backend/virtio/virtqueue';
import { type Fixture, startBackend } from '../helpers';

const RUNS = Number(process.env.VLAB_BATCH_RUNS ?? 40);
const SLOT = 16 * 1024;
const ENC = S.VIRTIO_CRYPTO_CIPHER_ENCRYPT;
const DEC = S.VIRTIO_CRYPTO_CIPHER_DECRYPT;

/** What one posted request is. */
type Kind =
  | { k: 'cbc'; enc: boolean; blocks: number }
  | { k: 'ctr'; len: number }
  | { k: 'ecb'; blocks: number }
  | { k: 'xts'; len: number }
  | { k: 'split'; blocks: number; at: number; parts: 'src' | 'dst' | 'both' }
  | { k: 'hmac'; len: number }
  | { k: 'cbc-hmac'; blocks: number }
  | { k: 'bad-iv' }
  | { k: 'unknown-session' }
  | { k: 'rejected' };

const kindArb: fc.Arbitrary<Kind> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ k: fc.constant('cbc' as const), enc: fc.boolean(), blocks: fc.integer({ min: 1, max: 64 }) }) },
  { weight: 3, arbitrary: fc.record({ k: fc.constant('ctr' as const), len: fc.integer({ min: 1, max: 1500 }) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('ecb' as const), blocks: fc.integer({ min: 1, max: 8 }) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('xts' as const), len: fc.integer({ min: 16, max: 700 }) }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('split' as const), blocks: fc.integer({ min: 2, max: 16 }), at: fc.integer({ min: 1, max: 31 }), parts: fc.constantFrom('src' as const, 'dst' as const, 'both' as const) }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('hmac' as const), len: fc.integer({ min: 0, max: 900 }) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('cbc-hmac' as const), blocks: fc.integer({ min: 1, max: 8 }) }) },
  { weight: 1, arbitrary: fc.constant({ k: 'bad-iv' as const }) },
  { weight: 1, arbitrary: fc.constant({ k: 'unknown-session' as const }) },
  { weight: 1, arbitrary: fc.constant({ k: 'rejected' as const }) },
);

interface Sessions {
  cbcEnc: bigint;
  cbcDec: bigint;
  ctr: bigint;
  ecb: bigint;
  xts: bigint;
  hmac: bigint;
  cbcHmac: bigint;
}

async function openSessions(fe: TestFrontend): Promise<Sessions> {
  const key = Buffer.alloc(32, 0x5a);
  return {
    cbcEnc: await fe.cipherSession(S.VIRTIO_CRYPTO_CIPHER_AES_CBC, key, true),
    cbcDec: await fe.cipherSession(S.VIRTIO_CRYPTO_CIPHER_AES_CBC, key, false),
    ctr: await fe.cipherSession(S.VIRTIO_CRYPTO_CIPHER_AES_CTR, Buffer.alloc(16, 3), true),
    ecb: await fe.cipherSession(S.VIRTIO_CRYPTO_CIPHER_AES_ECB, Buffer.alloc(24, 7), true),
    xts: await fe.cipherSession(S.VIRTIO_CRYPTO_CIPHER_AES_XTS, Buffer.concat([Buffer.alloc(32, 1), Buffer.alloc(32, 2)]), true),
    hmac: await fe.chainSession({ hashMode: S.VIRTIO_CRYPTO_SYM_HASH_MODE_AUTH, hashAlg: S.VIRTIO_CRYPTO_MAC_HMAC_SHA_256, authKey: Buffer.alloc(20, 9), hashResultLen: 32 }),
    cbcHmac: await fe.chainSession({ cipherAlg: S.VIRTIO_CRYPTO_CIPHER_AES_CBC, key, hashMode: S.VIRTIO_CRYPTO_SYM_HASH_MODE_AUTH, hashAlg: S.VIRTIO_CRYPTO_MAC_HMAC_SHA_256, authKey: Buffer.alloc(20, 9), hashResultLen: 32 }),
  };
}

function spec(kind: Exclude<Kind, { k: 'rejected' }>, s: Sessions, rnd: (n: number) => Buffer): CipherRequestSpec {
  const iv = rnd(16);
  switch (kind.k) {
    case 'cbc': return { opcode: kind.enc ? ENC : DEC, sessionId: kind.enc ? s.cbcEnc : s.cbcDec, iv, src: rnd(16 * kind.blocks) };
    case 'ctr': return { opcode: ENC, sessionId: s.ctr, iv, src: rnd(kind.len) };
    case 'ecb': return { opcode: ENC, sessionId: s.ecb, iv: Buffer.alloc(0), src: rnd(16 * kind.blocks) };
    case 'xts': return { opcode: ENC, sessionId: s.xts, iv, src: rnd(kind.len) };
    case 'split': return { opcode: ENC, sessionId: s.cbcEnc, iv, src: rnd(16 * kind.blocks), splitAt: kind.at, splitParts: kind.parts };
    case 'hmac': return { opcode: ENC, sessionId: s.hmac, iv: Buffer.alloc(0), src: rnd(kind.len), dstLen: 0, chain: { aad: Buffer.alloc(0), cipherStart: 0, lenToCipher: 0, hashStart: 0, lenToHash: kind.len, hashResultLen: 32 } };
    case 'cbc-hmac': {
      const len = 16 * kind.blocks;
      return { opcode: ENC, sessionId: s.cbcHmac, iv, src: rnd(len), chain: { aad: Buffer.alloc(0), cipherStart: 0, lenToCipher: len, hashStart: 0, lenToHash: len, hashResultLen: 32 } };
    }
    case 'bad-iv': return { opcode: ENC, sessionId: s.cbcEnc, iv: rnd(8), src: rnd(32) };
    case 'unknown-session': return { opcode: ENC, sessionId: 999_999n, iv, src: rnd(32) };
  }
}

interface Outcome {
  readonly used: readonly { id: number; len: number }[];
  readonly results: readonly { status: number; dst: string; hash: string }[];
}

/** Posts the mix on one front-end (heads 0..n−1, one slot each), kicks once, waits for every answer. */
async function runMix(fe: TestFrontend, s: Sessions, kinds: readonly Kind[], seed: number): Promise<Outcome> {
  let counter = 0;
  // Deterministic bytes, the same for both back-ends.
  const rnd = (n: number): Buffer => {
    const out = Buffer.alloc(n);
    for (let o = 0; o < n; o += 64) crypto.createHash('sha512').update(`${seed}:${counter++}`).digest().copy(out, o);
    return out;
  };
  const layouts = kinds.map((kind, head) => {
    const slot = fe.heapGpa + head * SLOT;
    if (kind.k === 'rejected') {
      // An indirect table whose length is not a multiple of 16: returned with length 0.
      fe.writeDesc(fe.descGpa, head, slot, 17, VIRTQ_DESC_F_INDIRECT, 0);
      fe.pushAvail(head);
      return undefined;
    }
    return fe.postRequest(head, slot, spec(kind, s, rnd));
  });
  fe.publishAvail();
  fe.kick();
  const used = await fe.waitUsed(kinds.length, 20_000);
  const byHead = new Map(used.map((u) => [u.id, u.len]));
  const results = layouts.map((l, head) => {
    if (!l) return { status: -1, dst: '', hash: '' };
    const r = fe.readResult(l, byHead.get(head) ?? -1);
    return { status: r.status, dst: r.dst.toString('hex'), hash: r.hash.toString('hex') };
  });
  return { used, results };
}

describe('one native crossing per pass (cipher batch)', () => {
  let batched: Fixture;
  let single: Fixture;
  let feB: TestFrontend;
  let feS: TestFrontend;
  let sB: Sessions;
  let sS: Sessions;

  before(async () => {
    batched = startBackend();
    single = startBackend({ batch: false });
    feB = await batched.connect({ queueSize: 128 });
    feS = await single.connect({ queueSize: 128 });
    await feB.handshake();
    await feS.handshake();
    sB = await openSessions(feB);
    sS = await openSessions(feS);
    assert.deepEqual(sB, sS, 'both back-ends number the sessions alike');
  });
  after(async () => {
    await batched?.close();
    await single?.close();
  });

  it('random mixes (batched, per request, rejected chains, bad requests, a fault) complete in ring order with the same bytes on both paths', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(kindArb, { minLength: 1, maxLength: 100 }), fc.integer(), fc.option(fc.constantFrom('flip-dst,every=3', 'status=badmsg,every=4', 'delay=5,every=5'), { freq: 4 }), async (kinds, seed, fault) => {
        const callsBefore = batched.backend.batchStats.calls;
        if (fault) {
          batched.backend.addFaults([fault]);
          single.backend.addFaults([fault]);
        }
        try {
          const b = await runMix(feB, sB, kinds, seed);
          const p = await runMix(feS, sS, kinds, seed);
          // With a delay fault used entries may come out of order (on both paths alike); else ring order.
          if (!fault?.startsWith('delay')) assert.deepEqual(b.used.map((u) => u.id), kinds.map((_, i) => i), 'used entries in ring order');
          assert.deepEqual([...b.used].sort((x, y) => x.id - y.id), [...p.used].sort((x, y) => x.id - y.id), 'same used lengths');
          if (!fault?.startsWith('delay')) assert.deepEqual(b.used, p.used, 'same used order');
          assert.deepEqual(b.results, p.results, 'same status, dst and hash bytes');
          if (fault) assert.equal(batched.backend.batchStats.calls, callsBefore, 'a pass under a fault rule takes no batch');
        } finally {
          if (fault) {
            batched.backend.clearFaults();
            single.backend.clearFaults();
          }
        }
      }),
      { numRuns: RUNS },
    );
    assert.ok(batched.backend.batchStats.rows > 0, 'the batch path ran');
    assert.equal(single.backend.batchStats.calls, 0, 'batch off: no batch call');
    assert.equal(batched.backend.counters.statusOk, single.backend.counters.statusOk);
    assert.equal(batched.backend.counters.statusErr, single.backend.counters.statusErr);
    assert.equal(batched.backend.counters.bytesIn, single.backend.counters.bytesIn);
    assert.equal(batched.backend.counters.rejectedChains, single.backend.counters.rejectedChains);
  });

  it('64 cipher requests on one kick: one engine call, one interrupt, every answer right', async () => {
    const before = batched.backend.batchStats;
    const irqBefore = feB.interrupts;
    const kinds: Kind[] = Array.from({ length: 64 }, () => ({ k: 'cbc', enc: true, blocks: 4 }));
    const out = await runMix(feB, sB, kinds, 42);
    const after = batched.backend.batchStats;
    assert.equal(after.calls - before.calls, 1, 'one native call for the pass');
    assert.equal(after.rows - before.rows, 64);
    assert.ok(out.results.every((r) => r.status === S.CryptoStatus.OK));
    assert.equal(out.used.length, 64);
    // Give a second interrupt the chance to show up if there were one.
    await new Promise((r) => setImmediate(r));
    assert.equal(feB.interrupts - irqBefore, 1, 'one interrupt for the pass');
    // The bytes are the cipher's: the same requests through node:crypto.
    const mix = await runMix(feS, sS, kinds, 42);
    assert.deepEqual(out.results, mix.results);
  });

  it('requests the batch cannot express (multi-segment ranges, hashes) take the per-request path', async () => {
    const before = batched.backend.batchStats;
    await runMix(feB, sB, [{ k: 'split', blocks: 4, at: 5, parts: 'src' }, { k: 'split', blocks: 4, at: 5, parts: 'dst' }, { k: 'hmac', len: 100 }, { k: 'cbc-hmac', blocks: 2 }], 7);
    assert.deepEqual(batched.backend.batchStats, before);
  });
});

describe('evpCipherBatch checks every row natively', () => {
  const n = evp();
  const key = Buffer.alloc(32, 0x11);

  function table(rows: number[][]): Float64Array {
    const t = new Float64Array(rows.length * EVP_BATCH_FIELDS);
    rows.forEach((r, i) => t.set(r, i * EVP_BATCH_FIELDS));
    return t;
  }

  it('runs a good row like evpCipherRun and refuses every bad one without touching memory', () => {
    const h = n.evpCipherCreate('aes-256-cbc', key);
    const id = n.evpCipherId(h);
    assert.ok(id > 0);
    const buf = new ArrayBuffer(4096);
    const mem = new Uint8Array(buf);
    crypto.randomFillSync(mem);
    const ref = Buffer.from(mem);
    const other = new ArrayBuffer(64);
    const detached = new ArrayBuffer(256);
    structuredClone(detached, { transfer: [detached] });
    assert.equal(detached.byteLength, 0);
    const bufs = [buf, other, detached];
    // [id, encrypt, ivBuf, ivOff, srcBuf, srcOff, dstBuf, dstOff, len]
    const bad: number[][] = [
      [id + 1000, 1, 0, 0, 0, 16, 0, 16, 32], // no such cipher
      [0, 1, 0, 0, 0, 16, 0, 16, 32], // id 0
      [id, 1, 0, 0, 0, 4096 - 16, 0, 16, 32], // src past the end
      [id, 1, 0, 0, 0, 16, 0, 4090, 16], // dst past the end
      [id, 1, 0, 4090, 0, 16, 0, 16, 16], // iv past the end
      [id, 1, -1, 0, 0, 16, 0, 16, 16], // iv missing for CBC
      [id, 1, 3, 0, 0, 16, 0, 16, 16], // iv buffer index out of range
      [id, 1, 0, 0, 1, 0, 1, 0, 128], // longer than its buffer (64)
      [id, 1, 0, 0, 2, 0, 2, 0, 16], // detached buffer
      [id, 1, 0, 0, 0, -16, 0, 16, 16], // negative offset
      [id, 1, 0, 0, 0, 16.5, 0, 16, 16], // fractional offset
      [id, 1, 0, 0, 0, Number.NaN, 0, 16, 16], // NaN
      [id, 1, 0, 0, 0, 2 ** 60, 0, 16, 16], // offset beyond 2^53
      [id, 1, 0, 0, 0, 16, 0, 16, 20], // not whole blocks
      [id, 1, 0, 0, 0, 16, 0, 16, -16], // negative length
      [id, 1, 0, 0, 0, 16, 0, 16, 2 ** 31], // length beyond INT32_MAX
    ];
    const results = new Uint8Array(bad.length + 1);
    const failed = n.evpCipherBatch(bufs, table(bad), bad.length, results);
    assert.equal(failed, bad.length);
    assert.deepEqual([...results.subarray(0, bad.length)], bad.map(() => EVP_ROW_REFUSED));
    assert.ok(Buffer.from(mem).equals(ref), 'no byte changed');
    // A good row after the bad ones: the same bytes as the per-request call.
    const good = [[...bad, [id, 1, 0, 0, 0, 64, 0, 1024, 256]]].flat();
    const r2 = new Uint8Array(good.length);
    assert.equal(n.evpCipherBatch(bufs, table(good), good.length, r2), bad.length);
    assert.equal(r2[bad.length], EVP_ROW_OK);
    const expect = crypto.createCipheriv('aes-256-cbc', key, ref.subarray(0, 16)).setAutoPadding(false).update(ref.subarray(64, 320));
    assert.ok(Buffer.from(mem.subarray(1024, 1280)).equals(expect));
    // A freed cipher's id names nothing any more.
    n.evpCipherFree(h);
    assert.equal(n.evpCipherId(h), 0);
    const r3 = new Uint8Array(1);
    assert.equal(n.evpCipherBatch(bufs, table([[id, 1, 0, 0, 0, 64, 0, 1024, 256]]), 1, r3), 1);
    assert.equal(r3[0], EVP_ROW_REFUSED);
  });

  it('refuses malformed calls with TypeError', () => {
    const t = new Float64Array(EVP_BATCH_FIELDS);
    const r = new Uint8Array(1);
    assert.throws(() => n.evpCipherBatch([new ArrayBuffer(8)], t, 2, r), TypeError, 'more rows than the table holds');
    assert.throws(() => n.evpCipherBatch([new ArrayBuffer(8)], t, 1, new Uint8Array(0)), TypeError, 'no room for results');
    assert.throws(() => n.evpCipherBatch(Array.from({ length: 17 }, () => new ArrayBuffer(8)), t, 1, r), TypeError, 'too many buffers');
    assert.throws(() => n.evpCipherBatch([new Uint8Array(8) as unknown as ArrayBuffer], t, 1, r), TypeError, 'a view is not a buffer');
    assert.throws(() => n.evpCipherBatch([], new Uint32Array(9) as unknown as Float64Array, 1, r), TypeError);
    assert.equal(n.evpCipherBatch([], t, 0, r), 0);
  });
});

describe('vlab backend --batch', () => {
  it('--batch off serves per request (and says so); any other value is a usage error', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vlab-batch-cli-'));
    try {
      const be = await spawnBackend('openssl', dir, ['--batch', 'off']);
      try {
        assert.match(be.output(), /batch off: one engine call per request/);
      } finally {
        await be.stop();
      }
      const bin = path.resolve(__dirname, '..', '..', '..', '..', '..', 'bin', 'vlab.js');
      const bad = spawnSync(process.execPath, [bin, 'backend', '--socket', path.join(dir, 's'), '--batch', 'maybe'], { encoding: 'utf8', timeout: 60_000 });
      assert.notEqual(bad.status, 0);
      assert.match(bad.stderr + bad.stdout, /--batch must be on or off/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
