/**
 * Fuzzer: random and adversarial descriptor chains, random request headers, malformed byte streams
 * and complete vhost-user messages carrying fds (sealed/unsealed/short memfds, eventfds, pipes,
 * /dev/null, too many) against a real back-end. Asserts: the back-end never crashes or throws past
 * its handlers, never writes a byte outside the device-writable buffers it was given (or the used
 * ring), answers every chain whose head is valid; after every message case it still answers
 * GET_FEATURES correctly or closed the connection saying why, and holds no fd or mapping it got.
 *
 * Runs VLAB_FUZZ_RUNS cases per property (default 200 in CI); VLAB_FUZZ_ONLY=<substring> runs only
 * the properties whose name contains it; VLAB_FUZZ_SEED + VLAB_FUZZ_PATH replay a failure. Long run:
 *   VLAB_FUZZ_RUNS=1000000 node --test out/test/unit/backend/fuzz.test.js
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import * as S from '../../../../backend/crypto/spec';
import { TestFrontend } from '../../../../backend/harness/frontend';
import * as vhost from '../../../../addon/lib/vhost';
import * as W from '../../../../backend/vhost-user/wire';
import { FLAG_NEED_REPLY, FLAG_VERSION, Request } from '../../../../backend/vhost-user/wire';
import { VIRTQ_DESC_F_INDIRECT, VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE } from '../../../../backend/virtio/virtqueue';
import { type Fixture, openFdCount, startBackend } from '../helpers';

const RUNS = Math.max(1, Number(process.env.VLAB_FUZZ_RUNS ?? 200) || 200);
/** Replays a reported failure: VLAB_FUZZ_SEED=<seed> VLAB_FUZZ_PATH=<path> (from the report). */
const REPLAY = process.env.VLAB_FUZZ_SEED ? { seed: Number(process.env.VLAB_FUZZ_SEED), path: process.env.VLAB_FUZZ_PATH } : {};
const PARAMS = { includeErrorInReport: true, ...REPLAY };
const ONLY = process.env.VLAB_FUZZ_ONLY;
const only = (name: string): { skip?: string } => (ONLY && !name.includes(ONLY) ? { skip: `VLAB_FUZZ_ONLY=${ONLY}` } : {});
/** Upper bound on one request's data the device accepts (issue 9 item 1); lengths around and past it are fuzzed. */
const DATA_CAP = S.MAX_DATA_LEN;
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
  { weight: 1, arbitrary: fc.constantFrom(0, 1, 71, 72, 73, 0xffff, DATA_CAP - 1, DATA_CAP, DATA_CAP + 1, 2 * DATA_CAP, 0x7fffffff, 0xffffffff) },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: 0xffffffff }) },
);
const descArb: fc.Arbitrary<RawDesc> = fc.record({
  addr: addrArb,
  len: lenArb,
  flags: fc.oneof({ weight: 4, arbitrary: fc.constantFrom(0, VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 0xffff }) }),
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
        if ((d.flags & VIRTQ_DESC_F_WRITE) === 0 || d.addr >= BigInt(MEM)) continue;
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

  it(`survives random and adversarial descriptor chains (${RUNS} runs)`, only('chains'), async () => {
    await fc.assert(
      fc.asyncProperty(chainCaseArb, async (c) => {
        const tables: { at: number; descs: RawDesc[] }[] = [{ at: fe.descGpa, descs: c.table }];
        // Stale entries from earlier cases would be descriptors the oracle does not know about (an
        // indirect length may reach past a table's listed entries): start from zeroes.
        fe.mem.fill(0, INDIRECT_AREA, INDIRECT_AREA + 4 * 256);
        c.table.forEach((d, i) => fe.writeDesc(fe.descGpa, i, d.addr, d.len, d.flags & ~VIRTQ_DESC_F_INDIRECT, d.next));
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
            fe.writeDesc(fe.descGpa, h.slot, INDIRECT_AREA + t * 256, len, VIRTQ_DESC_F_INDIRECT, 0);
            c.table[h.slot] = { addr: BigInt(INDIRECT_AREA + t * 256), len, flags: VIRTQ_DESC_F_INDIRECT, next: 0 };
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

  it(`answers every well-formed request with a spec status (${RUNS} runs)`, only('requests'), async () => {
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
            view().setUint16(HEAP + 12, VIRTQ_DESC_F_NEXT, true);
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
    // The weights above make a case "sane" with p ≈ 0.8 · 4/7 · 0.8 · 0.75 · 0.76 · 0.75 · 6/7 ≈ 0.13
    // (≈ 27 of 200, σ ≈ 4.8). The old bound (> 10 %, i.e. > 20) failed about one run in ten by
    // chance (seen: 19 of 200); 5 % keeps the check (a generator that stopped producing sane
    // requests gives ~0) at a chance failure rate below 1 in 10 000.
    assert.ok(served >= RUNS / 20, `only ${served} of ${RUNS} cases exercised the success path`);
  });

  it(`survives malformed message streams and keeps serving (${Math.max(1, Math.floor(RUNS / 10))} runs)`, only('streams'), async () => {
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
  it(`complete messages with fds: answers GET_FEATURES or closes saying why, keeps no fd or mapping (${RUNS} runs)`, only('messages'), async () => {
    // Needs the socket to itself (one front-end at a time); the streams property may have run first.
    if (fx.backend.connected) {
      const gone = fx.nextDisconnect();
      fe.close();
      await gone;
    }
    const fifo = path.join(fx.dir, 'fuzz.fifo');
    execFileSync('mkfifo', [fifo]);
    const escaped: unknown[] = [];
    const onEscape = (err: unknown): void => {
      escaped.push(err);
    };
    process.on('uncaughtException', onEscape);
    const known = Object.values(Request).filter((v): v is number => typeof v === 'number');
    const ring = [Request.SET_MEM_TABLE, Request.SET_VRING_NUM, Request.SET_VRING_ADDR, Request.SET_VRING_BASE, Request.GET_VRING_BASE, Request.SET_VRING_KICK, Request.SET_VRING_CALL, Request.SET_VRING_ERR, Request.SET_VRING_ENABLE];
    const VA = 0x7f0000000000n;
    const MEMFD = 65536;
    const offered = W.decodeU64(0, (await (async () => {
      const probe = TestFrontend.raw(fx.socket, { memoryBytes: 4096, queueSize: 8 });
      try {
        return (await probe.call(Request.GET_FEATURES)).payload;
      } finally {
        const gone = fx.nextDisconnect();
        probe.close();
        await gone;
      }
    })()));
    type FdKind = 'memfd' | 'memfd-short' | 'memfd-unsealed' | 'eventfd' | 'pipe' | 'devnull';
    const fdKind = fc.constantFrom<FdKind>('memfd', 'memfd', 'memfd-short', 'memfd-unsealed', 'eventfd', 'eventfd', 'eventfd', 'pipe', 'devnull');
    const u64 = fc.oneof(fc.constantFrom(0n, 1n, (1n << 64n) - 1n, 1n << 63n), fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }));
    const region = fc.record({
      guestPhysAddr: fc.oneof({ weight: 4, arbitrary: fc.constantFrom(0n, BigInt(MEMFD)) }, { weight: 1, arbitrary: u64 }),
      memorySize: fc.oneof({ weight: 4, arbitrary: fc.constantFrom(BigInt(MEMFD), 4096n) }, { weight: 1, arbitrary: fc.constantFrom(0n, BigInt(MEMFD) + 1n, BigInt(DATA_CAP), BigInt(DATA_CAP) + 1n, 1n << 40n) }, { weight: 1, arbitrary: u64 }),
      userspaceAddr: fc.oneof({ weight: 4, arbitrary: fc.constantFrom(VA, VA + BigInt(MEMFD)) }, { weight: 1, arbitrary: u64 }),
      mmapOffset: fc.oneof({ weight: 4, arbitrary: fc.constant(0n) }, { weight: 1, arbitrary: fc.constantFrom(4096n, BigInt(MEMFD), BigInt(MEMFD) - 4096n) }, { weight: 1, arbitrary: u64 }),
    });
    const vaArb = fc.oneof({ weight: 4, arbitrary: fc.integer({ min: 0, max: MEMFD }).map((o) => VA + BigInt(o)) }, { weight: 1, arbitrary: u64 });
    const payloadArb = fc.oneof(
      { weight: 3, arbitrary: fc.array(region, { minLength: 1, maxLength: 3 }).map((r) => W.encodeMemTable(r)) },
      { weight: 1, arbitrary: fc.record({ n: fc.constantFrom(0, 1, 2, 8, 9, 0xffffffff), regions: fc.array(region, { maxLength: 9 }) }).map(({ n, regions }) => { const b = W.encodeMemTable(regions); b.writeUInt32LE(n >>> 0, 0); return b; }) },
      { weight: 3, arbitrary: fc.record({ index: fc.constantFrom(0, 0, 0, 1, 255, 0xffffffff), num: fc.oneof(fc.constantFrom(0, 1, 3, 8, 16, 32768, 65535, 65536), fc.nat()) }).map((v) => W.encodeVringState(v)) },
      { weight: 3, arbitrary: fc.record({ index: fc.constantFrom(0, 0, 1), flags: fc.constantFrom(0, 1), descUser: vaArb, usedUser: vaArb, availUser: vaArb, logGuest: u64 }).map((a) => W.encodeVringAddr(a)) },
      { weight: 3, arbitrary: fc.oneof(fc.constantFrom(0n, 0x100n, 1n, 0x101n, 0x200n, 0xffn), u64).map((v) => W.encodeU64(v)) },
      { weight: 1, arbitrary: fc.constantFrom(W.CRYPTO_SESSION_SIZE_V7, W.CRYPTO_SESSION_SIZE_V81, 0, 4096, 4097).chain((n) => fc.uint8Array({ minLength: n, maxLength: n })) },
      { weight: 2, arbitrary: fc.uint8Array({ maxLength: 64 }) },
    );
    const fdsFor = (kinds: fc.Arbitrary<FdKind[]>): fc.Arbitrary<FdKind[]> => fc.oneof({ weight: 16, arbitrary: kinds }, { weight: 1, arbitrary: fc.array(fdKind, { maxLength: 3 }) }, { weight: 1, arbitrary: fc.array(fdKind, { minLength: 8, maxLength: 12 }) });
    const stateArb = fc.record({ index: fc.oneof({ weight: 8, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.constantFrom(1, 255, 0xffffffff) }), num: fc.oneof({ weight: 6, arbitrary: fc.constantFrom(0, 1, 8, 16, 32768) }, { weight: 1, arbitrary: fc.constantFrom(3, 65535, 65536) }, { weight: 1, arbitrary: fc.nat() }) }).map((v) => W.encodeVringState(v));
    const addrArb = fc.record({ index: fc.constantFrom(0, 0, 0, 0, 1), flags: fc.constantFrom(0, 1), descUser: vaArb, usedUser: vaArb, availUser: vaArb, logGuest: u64 }).map((a) => W.encodeVringAddr(a));
    const sessionArb = fc.record({ key: fc.constantFrom(16, 24, 32, 0, 65).chain((n) => fc.uint8Array({ minLength: n, maxLength: n })), alg: fc.constantFrom(S.VIRTIO_CRYPTO_CIPHER_AES_CBC, S.VIRTIO_CRYPTO_CIPHER_AES_CTR, 0, 999) })
      .map((k) => W.encodeCreateSession('qemu7', { cipherAlg: k.alg, hashAlg: 0, hashResultLen: 0, addLen: 0, opType: S.VIRTIO_CRYPTO_SYM_OP_CIPHER, direction: S.VIRTIO_CRYPTO_OP_ENCRYPT, hashMode: 0, algChainOrder: 0, key: Buffer.from(k.key.subarray(0, 64)), authKey: Buffer.alloc(0) }));
    /** Mostly the payload and fds the request takes (so the handlers, not just the framing, run). */
    const typed = (req: number): fc.Arbitrary<{ payload: Uint8Array; fds: FdKind[] }> => {
      const none = fc.constant<FdKind[]>([]);
      switch (req) {
        case Request.SET_MEM_TABLE:
          return fc.array(region, { minLength: 1, maxLength: 3 }).chain((r) => fc.record({ payload: fc.constant(W.encodeMemTable(r)), fds: fdsFor(fc.array(fc.constantFrom<FdKind>('memfd', 'memfd', 'memfd', 'memfd-short', 'memfd-unsealed', 'eventfd', 'devnull'), { minLength: r.length, maxLength: r.length })) }));
        case Request.SET_VRING_NUM: case Request.SET_VRING_BASE: case Request.GET_VRING_BASE: case Request.SET_VRING_ENABLE:
          return fc.record({ payload: stateArb, fds: fdsFor(none) });
        case Request.SET_VRING_ADDR:
          return fc.record({ payload: addrArb, fds: fdsFor(none) });
        case Request.SET_VRING_KICK: case Request.SET_VRING_CALL: case Request.SET_VRING_ERR:
          return fc.oneof(
            { weight: 4, arbitrary: fc.record({ payload: fc.constantFrom(0n, 0n, 1n).map((v) => W.encodeU64(v)), fds: fdsFor(fc.constantFrom<FdKind>('eventfd', 'eventfd', 'eventfd', 'pipe', 'memfd', 'devnull').map((k) => [k])) }) },
            { weight: 1, arbitrary: fc.record({ payload: fc.constantFrom(0x100n, 0x101n).map((v) => W.encodeU64(v)), fds: fdsFor(none) }) },
          );
        case Request.SET_FEATURES: case Request.SET_PROTOCOL_FEATURES:
          return fc.record({ payload: fc.oneof(fc.constantFrom(0n, 1n << 30n, offered, 0x89n, 0x8n, 0x81n), u64).map((v) => W.encodeU64(v)), fds: fdsFor(none) });
        case Request.CREATE_CRYPTO_SESSION:
          return fc.record({ payload: sessionArb, fds: fdsFor(none) });
        case Request.CLOSE_CRYPTO_SESSION:
          return fc.record({ payload: fc.oneof(fc.constantFrom(0n, 1n, 2n), u64).map((v) => W.encodeU64(v)), fds: fdsFor(none) });
        default:
          return fc.record({ payload: fc.constant(new Uint8Array(0)), fds: fdsFor(none) });
      }
    };
    const messageArb = fc.oneof({ weight: 12, arbitrary: fc.constantFrom(...ring) }, { weight: 2, arbitrary: fc.constantFrom(...known) }, { weight: 1, arbitrary: fc.nat() }).chain((request) =>
      fc.record({
        request: fc.constant(request),
        flags: fc.oneof({ weight: 12, arbitrary: fc.constantFrom(FLAG_VERSION, FLAG_VERSION | FLAG_NEED_REPLY) }, { weight: 1, arbitrary: fc.constantFrom(0, 2, 5, 0x101) }),
        body: fc.oneof({ weight: 8, arbitrary: typed(request) }, { weight: 1, arbitrary: fc.record({ payload: payloadArb, fds: fdsFor(fc.constant<FdKind[]>([])) }) }),
        /** Almost always a complete message; sometimes a size field that lies (short, long, past the caps). */
        size: fc.oneof({ weight: 30, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: fc.oneof(fc.integer({ min: -8, max: 8 }).map((d) => ({ delta: d })), fc.constantFrom(4097, DATA_CAP, DATA_CAP + 1, 0xffffffff).map((abs) => ({ abs }))) }),
      }).map((m) => ({ request: m.request, flags: m.flags, payload: m.body.payload, fds: m.body.fds, size: m.size })),
    );
    const caseArb = fc.record({ setup: fc.boolean(), replyAck: fc.boolean(), messages: fc.array(messageArb, { minLength: 1, maxLength: 4 }) });
    /** Live mappings of this property's memfds (the heap's own mappings come and go). */
    const maps = (): number => fs.readFileSync('/proc/self/maps', 'latin1').split('\n').filter((l) => l.includes('/memfd:fuzz')).length;

    function makeFd(kind: FdKind): number {
      switch (kind) {
        case 'memfd': return vhost.memfdCreate('fuzz', MEMFD);
        case 'memfd-short': return vhost.memfdCreate('fuzz-short', 4096);
        case 'memfd-unsealed': return vhost.memfdCreate('fuzz-unsealed', MEMFD, { seal: false });
        case 'eventfd': return vhost.eventfdCreate();
        case 'pipe': return fs.openSync(fifo, fs.constants.O_RDWR);
        case 'devnull': return fs.openSync('/dev/null', 'r+');
      }
    }

    let answered = 0;
    let closedWithReason = 0;
    try {
      await fc.assert(
        fc.asyncProperty(caseArb, async (c) => {
          const fdsBefore = openFdCount();
          const mapsBefore = maps();
          const logsBefore = fx.logs.length;
          const raw = TestFrontend.raw(fx.socket, { memoryBytes: 4096, queueSize: 8 });
          const mine: number[] = [];
          let complete = true;
          try {
            const send = (request: number, payload: Uint8Array, kinds: readonly FdKind[], flags: number, size: number | null): void => {
              const fds = kinds.map(makeFd);
              mine.push(...fds);
              const bytes = W.encodeMessage(request, flags, payload);
              if (size !== null) bytes.writeUInt32LE(size >>> 0, 8);
              raw.sendBytes(bytes, fds);
            };
            if (c.setup) {
              // A live ring on a sealed memfd first, so what follows also hits a running ring.
              send(Request.GET_FEATURES, Buffer.alloc(0), [], FLAG_VERSION, null);
              send(Request.SET_PROTOCOL_FEATURES, W.encodeU64((1n << 7n) | (c.replyAck ? 1n << 3n : 0n) | 1n), [], FLAG_VERSION, null);
              send(Request.SET_OWNER, Buffer.alloc(0), [], FLAG_VERSION, null);
              send(Request.SET_FEATURES, W.encodeU64(1n << W.VHOST_USER_F_PROTOCOL_FEATURES), [], FLAG_VERSION, null);
              send(Request.SET_MEM_TABLE, W.encodeMemTable([{ guestPhysAddr: 0n, memorySize: BigInt(MEMFD), userspaceAddr: VA, mmapOffset: 0n }]), ['memfd'], FLAG_VERSION, null);
              send(Request.SET_VRING_NUM, W.encodeVringState({ index: 0, num: 8 }), [], FLAG_VERSION, null);
              send(Request.SET_VRING_ADDR, W.encodeVringAddr({ index: 0, flags: 0, descUser: VA + 0x1000n, availUser: VA + 0x2000n, usedUser: VA + 0x3000n, logGuest: 0n }), [], FLAG_VERSION, null);
              send(Request.SET_VRING_KICK, W.encodeU64(0n), ['eventfd'], FLAG_VERSION, null);
              send(Request.SET_VRING_CALL, W.encodeU64(0n), ['eventfd'], FLAG_VERSION, null);
            }
            for (const m of c.messages) {
              if (raw.disconnected) break;
              const size = m.size === null ? null : 'abs' in m.size ? m.size.abs : Math.max(0, m.payload.length + m.size.delta);
              if (size !== null && size !== m.payload.length) complete = false;
              send(m.request, m.payload, m.fds, m.flags, size);
            }
            if (complete && !raw.disconnected) {
              // Property: the back-end answers GET_FEATURES with what it offers, or it closed the connection.
              send(Request.GET_FEATURES, Buffer.alloc(0), [], FLAG_VERSION, null);
              for (;;) {
                let r;
                try {
                  r = await raw.nextReply(5000);
                } catch (err) {
                  assert.ok(raw.disconnected, `no answer to GET_FEATURES and no close: ${(err as Error).message}`);
                  break;
                }
                if (r.request === Request.GET_FEATURES) {
                  assert.equal(r.payload.length, 8);
                  assert.equal(W.decodeU64(0, r.payload), offered, 'GET_FEATURES answered with the offered features');
                  answered++;
                  break;
                }
              }
            }
          } catch (err) {
            // EPIPE/ECONNRESET while sending: the back-end closed; anything else is a test failure.
            if (!vhost.isSyscallError(err) || !['EPIPE', 'ECONNRESET'].includes(err.code)) throw err;
          } finally {
            raw.close();
            for (const fd of mine) vhost.closeFd(fd);
          }
          // The back-end may not even have accepted yet (same event loop): wait for its disconnect line.
          const gone = (): boolean => fx.logs.slice(logsBefore).some((l) => /front-end disconnected: /.test(l));
          if (!gone()) await fx.nextDisconnect().catch(() => undefined); // registered before it can happen: same thread
          const said = fx.logs.slice(logsBefore);
          assert.ok(gone(), `the back-end let go of the front-end, saying why: ${said.join(' | ')}`);
          assert.equal(fx.backend.connected, false);
          if (said.some((l) => /malformed /.test(l))) closedWithReason++;
          assert.deepEqual(escaped, [], 'no exception escaped the back-end');
          assert.equal(openFdCount(), fdsBefore, 'every fd the back-end received is closed again');
          assert.equal(maps(), mapsBefore, 'every guest-memory mapping is unmapped again');
          if (process.env.VLAB_FUZZ_DEBUG) console.log(JSON.stringify(c.messages.map((m) => [m.request, m.size])), complete, answered, said.join(" | "));
          fx.logs.splice(0, fx.logs.length - 50); // bounded memory over 10^6 cases
        }),
        { numRuns: RUNS, ...PARAMS },
      );
    } finally {
      process.off('uncaughtException', onEscape);
    }
    process.stdout.write(`# messages property: ${answered} of ${RUNS} cases answered GET_FEATURES, ${closedWithReason} refused with a reason\n`);
    // The generators must reach both outcomes often, or the property says little.
    assert.ok(answered > RUNS / 20, `only ${answered} of ${RUNS} cases got GET_FEATURES answered`);
    assert.ok(closedWithReason > RUNS / 10, `only ${closedWithReason} of ${RUNS} cases were refused`);
  });
});
