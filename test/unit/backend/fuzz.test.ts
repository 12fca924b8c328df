/**
 * Fuzzer: random and adversarial descriptor chains, random request headers and malformed
 * vhost-user messages against a real back-end. Asserts: the back-end never crashes, never writes
 * a byte outside the device-writable buffers it was given (or the used ring), answers every chain
 * whose head is valid, and keeps serving afterwards.
 *
 * Runs VLAB_FUZZ_RUNS cases per property (default 200 in CI); VLAB_FUZZ_SEED + VLAB_FUZZ_PATH replay a failure. For a long run:
 *   VLAB_FUZZ_RUNS=1000000 node --test out/test/unit/backend/fuzz.test.js
 */
import assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import * as S from '../../../backend/crypto/spec';
import { DESC_F_INDIRECT, DESC_F_NEXT, DESC_F_WRITE, TestFrontend } from '../../../backend/harness/frontend';
import { Request } from '../../../backend/wire';
import { type Fixture, startBackend } from './helpers';

const RUNS = Math.max(1, Number(process.env.VLAB_FUZZ_RUNS ?? 200) || 200);
/** Replays a reported failure: VLAB_FUZZ_SEED=<seed> VLAB_FUZZ_PATH=<path> (from the report). */
const REPLAY = process.env.VLAB_FUZZ_SEED ? { seed: Number(process.env.VLAB_FUZZ_SEED), path: process.env.VLAB_FUZZ_PATH } : {};
const PARAMS = { includeErrorInReport: true, ...REPLAY };
const MEM = 256 * 1024;
const QSIZE = 16;
const HEAP = 0x4000;
const INDIRECT_AREA = 0x3000; // 4 tables of 16 entries (256 B each)

interface RawDesc {
  addr: bigint;
  len: number;
  flags: number;
  next: number;
}

const addrArb = fc.oneof(
  { weight: 6, arbitrary: fc.integer({ min: HEAP, max: MEM - 1 }).map(BigInt) },
  { weight: 2, arbitrary: fc.integer({ min: MEM / 2 - 64, max: MEM / 2 + 64 }).map(BigInt) }, // across the region split
  { weight: 1, arbitrary: fc.bigInt({ min: BigInt(MEM), max: (1n << 64n) - 1n }) },
  { weight: 1, arbitrary: fc.constantFrom(0n, (1n << 64n) - 1n, (1n << 64n) - 16n, BigInt(MEM - 1), BigInt(MEM)) },
);
const lenArb = fc.oneof(
  { weight: 6, arbitrary: fc.integer({ min: 0, max: 512 }) },
  { weight: 1, arbitrary: fc.constantFrom(0, 1, 71, 72, 73, 0xffff, 0x7fffffff, 0xffffffff) },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: 0xffffffff }) },
);
const descArb: fc.Arbitrary<RawDesc> = fc.record({
  addr: addrArb,
  len: lenArb,
  flags: fc.oneof({ weight: 4, arbitrary: fc.constantFrom(0, DESC_F_NEXT, DESC_F_WRITE, DESC_F_NEXT | DESC_F_WRITE) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 0xffff }) }),
  next: fc.oneof({ weight: 4, arbitrary: fc.integer({ min: 0, max: QSIZE - 1 }) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 0xffff }) }),
});
/** Optionally an indirect table (its descriptors may themselves be INDIRECT: nesting is adversarial). */
const chainCaseArb = fc.record({
  table: fc.array(descArb, { minLength: QSIZE, maxLength: QSIZE }),
  indirect: fc.array(fc.array(descArb, { minLength: 1, maxLength: 16 }), { maxLength: 4 }),
  /** For each head: which desc table slot, and whether to turn it into an indirect pointer. */
  heads: fc.array(fc.record({ slot: fc.integer({ min: 0, max: QSIZE - 1 }), makeIndirect: fc.option(fc.record({ table: fc.integer({ min: 0, max: 3 }), lenDelta: fc.integer({ min: -20, max: 20 }) })) }), { minLength: 1, maxLength: 4 }),
});

describe('fuzzing the back-end', { timeout: Math.max(30 * 60_000, RUNS * 10) }, () => {
  let fx: Fixture;
  let fe: TestFrontend;
  const view = (): DataView => new DataView(fe.mem.buffer);
  before(async () => {
    fx = startBackend();
    fe = await fx.connect({ memoryBytes: MEM, queueSize: QSIZE });
  });
  after(() => fx.close());

  /** Bytes the back-end may write: every WRITE descriptor's range we laid out, and the used ring. */
  function allowedMask(tables: { at: number; descs: RawDesc[] }[]): Uint8Array {
    const mask = new Uint8Array(MEM);
    for (const t of tables) {
      for (const d of t.descs) {
        if ((d.flags & DESC_F_WRITE) === 0 || d.addr >= BigInt(MEM)) continue;
        const start = Number(d.addr);
        mask.fill(1, start, Math.min(MEM, start + d.len));
      }
    }
    mask.fill(1, fe.usedGpa, fe.usedGpa + 6 + 8 * QSIZE);
    return mask;
  }

  function assertOnlyAllowedWrites(before: Uint8Array, mask: Uint8Array): void {
    const now = fe.mem;
    for (let i = 0; i < MEM; i++) {
      if (now[i] !== before[i] && mask[i] === 0) assert.fail(`back-end wrote byte 0x${i.toString(16)} outside any writable buffer`);
    }
  }

  it(`survives random and adversarial descriptor chains (${RUNS} runs)`, async () => {
    await fc.assert(
      fc.asyncProperty(chainCaseArb, async (c) => {
        const tables: { at: number; descs: RawDesc[] }[] = [{ at: fe.descGpa, descs: c.table }];
        // Stale entries from earlier cases would be descriptors the oracle does not know about (an
        // indirect length may reach past a table's listed entries): start from zeroes.
        fe.mem.fill(0, INDIRECT_AREA, INDIRECT_AREA + 4 * 256);
        c.table.forEach((d, i) => fe.writeDesc(fe.descGpa, i, d.addr, d.len, d.flags & ~DESC_F_INDIRECT, d.next));
        c.indirect.forEach((descs, t) => {
          const at = INDIRECT_AREA + t * 256;
          descs.forEach((d, i) => fe.writeDesc(at, i, d.addr, d.len, d.flags, d.next));
          tables.push({ at, descs });
        });
        const heads = new Set<number>();
        for (const h of c.heads) {
          if (h.makeIndirect && c.indirect.length > 0) {
            const t = h.makeIndirect.table % c.indirect.length;
            const len = Math.max(0, c.indirect[t].length * 16 + h.makeIndirect.lenDelta);
            fe.writeDesc(fe.descGpa, h.slot, INDIRECT_AREA + t * 256, len, DESC_F_INDIRECT, 0);
            c.table[h.slot] = { addr: BigInt(INDIRECT_AREA + t * 256), len, flags: DESC_F_INDIRECT, next: 0 };
          }
          heads.add(h.slot);
        }
        for (const h of heads) fe.pushAvail(h);
        fe.publishAvail();
        // Same thread: the back-end cannot run before the kick below.
        const before = Uint8Array.from(fe.mem);
        const mask = allowedMask(tables);
        fe.kick();
        const used = await fe.waitUsed(heads.size, 5000);
        assert.deepEqual(new Set(used.map((u) => u.id)), heads, 'every valid head is answered exactly once');
        assertOnlyAllowedWrites(before, mask);
      }),
      { numRuns: RUNS, ...PARAMS },
    );
    assert.equal(fx.backend.snapshot().queues[0].broken, null);
  });

  it(`answers every well-formed request with a spec status (${RUNS} runs)`, async () => {
    const key = crypto.randomBytes(16);
    const cbc = await fe.cipherSession(S.VIRTIO_CRYPTO_CIPHER_AES_CBC, key, true);
    const ctr = await fe.cipherSession(S.VIRTIO_CRYPTO_CIPHER_AES_CTR, key, false);
    // Chain sessions: the random chain fields below hit their offset/length rules and success paths.
    const hmacOnly = await fe.chainSession({ hashMode: S.VIRTIO_CRYPTO_SYM_HASH_MODE_AUTH, hashAlg: S.VIRTIO_CRYPTO_MAC_HMAC_SHA1, authKey: key, hashResultLen: 20 });
    const sha512 = await fe.chainSession({ hashMode: S.VIRTIO_CRYPTO_SYM_HASH_MODE_PLAIN, hashAlg: S.VIRTIO_CRYPTO_HASH_SHA_512, hashResultLen: 64 });
    const cbcHmac = await fe.chainSession({ cipherAlg: S.VIRTIO_CRYPTO_CIPHER_AES_CBC, key, hashMode: S.VIRTIO_CRYPTO_SYM_HASH_MODE_AUTH, hashAlg: S.VIRTIO_CRYPTO_MAC_HMAC_SHA_256, authKey: key, hashResultLen: 32, order: S.VIRTIO_CRYPTO_SYM_ALG_CHAIN_ORDER_CIPHER_THEN_HASH });
    let served = 0;
    const statuses = new Set<number>([S.CryptoStatus.OK, S.CryptoStatus.ERR, S.CryptoStatus.NOTSUPP, S.CryptoStatus.INVSESS]);
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          // Biased towards requests that should succeed, so the success path is fuzzed too.
          opcode: fc.oneof({ weight: 4, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.constantFrom(1, 0x100, 0x200, 0x300, 0x301, 0xffffffff) }),
          session: fc.oneof({ weight: 4, arbitrary: fc.constant(cbc) }, { weight: 1, arbitrary: fc.constantFrom(ctr, 0n, 12345n, (1n << 64n) - 1n) }, { weight: 2, arbitrary: fc.constantFrom(hmacOnly, sha512, cbcHmac) }),
          iv: fc.oneof({ weight: 4, arbitrary: fc.uint8Array({ minLength: 16, maxLength: 16 }) }, { weight: 1, arbitrary: fc.uint8Array({ maxLength: 24 }) }),
          src: fc.oneof({ weight: 3, arbitrary: fc.integer({ min: 1, max: 18 }).chain((n) => fc.uint8Array({ minLength: 16 * n, maxLength: 16 * n })) }, { weight: 1, arbitrary: fc.uint8Array({ maxLength: 300 }) }),
          dstDelta: fc.oneof({ weight: 3, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: -16, max: 16 }) }),
          chain: fc.oneof({ weight: 3, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: fc.record({ aad: fc.uint8Array({ maxLength: 16 }), cipherStart: fc.nat(64), lenToCipher: fc.nat(64), hashStart: fc.nat(64), lenToHash: fc.nat(64), hashResultLen: fc.oneof(fc.constantFrom(20, 32, 64), fc.nat(70)) }) }),
          truncateHeaderTo: fc.oneof({ weight: 6, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 71 }) }),
        }),
        async (r) => {
          const dstLen = Math.max(0, r.src.length + r.dstDelta);
          fe.mem.fill(0, HEAP, HEAP + 16 * 8);
          const layout = fe.postRequest(0, HEAP, { opcode: r.opcode, sessionId: r.session, iv: r.iv, src: r.src, dstLen, chain: r.chain ?? undefined });
          if (r.truncateHeaderTo !== null) {
            // Header descriptor shorter than 72 bytes and nothing else readable: a truncated header.
            view().setUint32(HEAP + 8, r.truncateHeaderTo, true);
            view().setUint16(HEAP + 12, DESC_F_NEXT, true);
            view().setUint16(HEAP + 14, 1 + (r.iv.length ? 1 : 0) + (r.chain && r.chain.aad.length ? 1 : 0) + (r.src.length ? 1 : 0), true);
          }
          const tableDescs: RawDesc[] = [];
          for (let i = 0; i < 8; i++) {
            tableDescs.push({ addr: view().getBigUint64(HEAP + 16 * i, true), len: view().getUint32(HEAP + 16 * i + 8, true), flags: view().getUint16(HEAP + 16 * i + 12, true), next: 0 });
          }
          fe.publishAvail();
          const before = Uint8Array.from(fe.mem);
          const mask = allowedMask([{ at: HEAP, descs: tableDescs }]);
          fe.kick();
          const used = await fe.waitUsed(1, 5000);
          assert.equal(used.length, 1);
          assertOnlyAllowedWrites(before, mask);
          const status = fe.mem[layout.statusGpa];
          assert.ok(statuses.has(status) || (r.truncateHeaderTo !== null && status === 0xee), `status ${status}`);
          const sane = r.truncateHeaderTo === null && r.opcode === 0 && r.session === cbc && !r.chain && r.iv.length === 16 && r.src.length > 0 && r.src.length % 16 === 0 && r.dstDelta === 0;
          if (sane) {
            assert.equal(status, S.CryptoStatus.OK);
            const c = crypto.createCipheriv('aes-128-cbc', key, r.iv);
            c.setAutoPadding(false);
            assert.deepEqual(Buffer.from(fe.mem.subarray(layout.dstGpa, layout.dstGpa + dstLen)), c.update(r.src));
            served++;
          }
        },
      ),
      { numRuns: RUNS, ...PARAMS },
    );
    assert.ok(served > RUNS / 10, `only ${served} of ${RUNS} cases exercised the success path`);
  });

  it(`survives malformed message streams and keeps serving (${Math.max(1, Math.floor(RUNS / 10))} runs)`, async () => {
    // This property needs the socket to itself: one front-end at a time.
    const gone = fx.nextDisconnect();
    fe.close();
    await gone;
    const known = Object.values(Request).filter((v): v is number => typeof v === 'number');
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.oneof(
            fc.uint8Array({ minLength: 1, maxLength: 64 }),
            fc.record({ request: fc.oneof(fc.constantFrom(...known), fc.nat()), flags: fc.constantFrom(0, 1, 2, 5, 9, 0x101), size: fc.nat(2048), body: fc.uint8Array({ maxLength: 64 }) }).map((m) => {
              const b = Buffer.alloc(12 + m.body.length);
              b.writeUInt32LE(m.request >>> 0, 0);
              b.writeUInt32LE(m.flags, 4);
              b.writeUInt32LE(m.size >>> 0, 8);
              b.set(m.body, 12);
              return new Uint8Array(b);
            }),
          ),
          { minLength: 1, maxLength: 6 },
        ),
        async (chunks) => {
          const raw = TestFrontend.raw(fx.socket, { memoryBytes: 64 * 1024, queueSize: 8 });
          try {
            for (const chunk of chunks) {
              if (raw.disconnected) break;
              try {
                raw.sendBytes(chunk);
              } catch {
                break; // the back-end already closed: EPIPE
              }
            }
            await new Promise((r) => setTimeout(r, 2));
          } finally {
            raw.close();
          }
          // Wait until the back-end has let go of this front-end, then prove it still serves.
          for (let i = 0; i < 200 && fx.backend.connected; i++) await new Promise((r) => setTimeout(r, 1));
          assert.equal(fx.backend.connected, false);
        },
      ),
      { numRuns: Math.max(1, Math.floor(RUNS / 10)), ...PARAMS },
    );
    const again = await TestFrontend.connect(fx.socket);
    try {
      const id = await again.cipherSession(S.VIRTIO_CRYPTO_CIPHER_AES_CBC, crypto.randomBytes(16), true);
      const r = await again.run({ opcode: 0, sessionId: id, iv: Buffer.alloc(16), src: Buffer.alloc(16) });
      assert.equal(r.status, S.CryptoStatus.OK);
    } finally {
      again.close();
    }
  });
});
