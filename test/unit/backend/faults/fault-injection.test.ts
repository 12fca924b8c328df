/**
 * Fault injection through a real back-end over a real socket, driven by the harness front-end:
 * each action's effect on the used ring, the status byte, the data and the call eventfd.
 */
import assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import { afterEach, beforeEach, describe, it } from 'node:test';
import * as S from '../../../../backend/crypto/spec';
import { CryptoStatus } from '../../../../backend/crypto/spec';
import { TestFrontend } from '../../../../backend/harness/frontend';
import type { CipherRequestSpec } from '../../../../backend/harness/request-layout';
import * as W from '../../../../backend/vhost-user/wire';
import { Request } from '../../../../backend/vhost-user/wire';
import { type Fixture, startBackend } from '../helpers';

const KEY = crypto.randomBytes(16);
const IV = crypto.randomBytes(16);

function cbc(encrypt: boolean, data: Buffer): Buffer {
  const c = encrypt ? crypto.createCipheriv('aes-128-cbc', KEY, IV) : crypto.createDecipheriv('aes-128-cbc', KEY, IV);
  c.setAutoPadding(false);
  return Buffer.concat([c.update(data), c.final()]);
}

async function until(what: string, cond: () => boolean, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('fault injection on the data queue', () => {
  let fx: Fixture;
  let fe: TestFrontend;
  let enc: bigint;
  let dec: bigint;
  const slot = TestFrontend.slotBytes(4096);

  beforeEach(async () => {
    fx = startBackend();
    fe = await fx.connect();
    enc = await fe.cipherSession(S.VIRTIO_CRYPTO_CIPHER_AES_CBC, KEY, true);
    dec = await fe.cipherSession(S.VIRTIO_CRYPTO_CIPHER_AES_CBC, KEY, false);
  });
  afterEach(() => fx.close());

  const encReq = (src: Buffer): CipherRequestSpec => ({ opcode: S.VIRTIO_CRYPTO_CIPHER_ENCRYPT, sessionId: enc, iv: IV, src });
  const decReq = (src: Buffer): CipherRequestSpec => ({ opcode: S.VIRTIO_CRYPTO_CIPHER_DECRYPT, sessionId: dec, iv: IV, src });

  /** Posts requests at heads 0..n-1 in one batch, kicks once, returns their layouts. */
  function post(reqs: readonly CipherRequestSpec[]): ReturnType<TestFrontend['postRequest']>[] {
    const layouts = reqs.map((r, k) => fe.postRequest(k, fe.heapGpa + k * slot, r));
    fe.publishAvail();
    fe.kick();
    return layouts;
  }

  async function runAll(reqs: readonly CipherRequestSpec[]): Promise<{ status: number; dst: Buffer; usedLen: number }[]> {
    const layouts = post(reqs);
    const used = await fe.waitUsed(reqs.length);
    return layouts.map((l, k) => {
      const u = used.find((e) => e.id === k);
      assert.ok(u, `completion for head ${k}`);
      return fe.readResult(l, u.len);
    });
  }

  it('status=...: completes with that status byte, used length 1, no crypto done (dst untouched)', async () => {
    for (const [name, status] of [['err', CryptoStatus.ERR], ['badmsg', CryptoStatus.BADMSG], ['notsupp', CryptoStatus.NOTSUPP], ['invsess', CryptoStatus.INVSESS]] as const) {
      const [rule] = fx.backend.addFaults([`status=${name},count=1`]);
      const [faulted, normal] = await runAll([encReq(crypto.randomBytes(64)), encReq(Buffer.alloc(64, 7))]);
      assert.equal(faulted.status, status, name);
      assert.equal(faulted.usedLen, 1);
      assert.deepEqual(faulted.dst, Buffer.alloc(64), 'dst left as the driver cleared it');
      assert.equal(normal.status, CryptoStatus.OK, 'count=1: the next request is served');
      assert.deepEqual(normal.dst, cbc(true, Buffer.alloc(64, 7)));
      fx.backend.clearFaults(rule.id);
    }
    const snap = fx.backend.snapshot();
    assert.deepEqual([snap.counters.statusErr, snap.counters.statusBadmsg, snap.counters.statusNotsupp, snap.counters.statusInvsess], [1, 1, 1, 1]);
    assert.equal(snap.faults.injected, 4);
    assert.equal(snap.faults.byAction.status, 4);
  });

  it('every=N with opcode=: only every Nth decrypt fails; encrypts are not counted', async () => {
    const [rule] = fx.backend.addFaults(['status=badmsg,every=2,opcode=decrypt']);
    const plain = Buffer.alloc(32, 1);
    const ct = cbc(true, plain);
    const results = await runAll([encReq(plain), decReq(ct), encReq(plain), decReq(ct), decReq(ct), encReq(plain)]);
    assert.deepEqual(results.map((r) => r.status), [0, 0, 0, CryptoStatus.BADMSG, 0, 0]);
    assert.deepEqual(results[4].dst, plain);
    const view = fx.backend.faultsSnapshot().rules.find((r) => r.id === rule.id);
    assert.deepEqual([view?.seen, view?.hits], [3, 1]);
  });

  it('session=: only that session is affected; the affected request is marked with the rule id', async () => {
    const [rule] = fx.backend.addFaults([`status=err,session=${dec}`]);
    const plain = Buffer.alloc(32, 3);
    const [a, b] = await runAll([encReq(plain), decReq(cbc(true, plain))]);
    assert.deepEqual([a.status, b.status], [CryptoStatus.OK, CryptoStatus.ERR]);
    const recent = fx.backend.snapshot().queues[0].recent;
    const marked = recent.filter((r) => r.fault);
    assert.equal(marked.length, 1);
    assert.deepEqual([marked[0].opcode, marked[0].status, marked[0].fault], ['CIPHER_DECRYPT', 'ERR', `#${rule.id} status=err,session=${dec}`]);
  });

  it('delay=MS: the crypto is done but the used entry appears only after the delay', async () => {
    fx.backend.addFaults(['delay=300,count=1']);
    const plain = Buffer.alloc(48, 9);
    const [layout] = post([encReq(plain)]);
    await until('the delayed completion to be pending', () => fx.backend.faultsSnapshot().delayedInFlight === 1);
    assert.equal(fe.usedIdx(), 0, 'nothing in the used ring yet');
    assert.equal(fx.backend.snapshot().queues[0].inFlight, 1);
    const [u] = await fe.waitUsed(1, 5000);
    const r = fe.readResult(layout, u.len);
    assert.equal(r.status, CryptoStatus.OK);
    assert.deepEqual(r.dst, cbc(true, plain));
    assert.equal(r.usedLen, 48 + 1);
    const rec = fx.backend.snapshot().queues[0].recent[0];
    // A lower bound set by the rule itself, not a performance measurement.
    assert.ok(rec.latencyUs >= 295_000, `latency ${rec.latencyUs} µs covers the 300 ms delay`);
    assert.equal(fx.backend.faultsSnapshot().delayedInFlight, 0);
  });

  it('delay: a GET_VRING_BASE (QEMU stopping the device) delivers the delayed completion first', async () => {
    fx.backend.addFaults(['delay=60000']);
    post([encReq(Buffer.alloc(16))]);
    await until('the delayed completion to be pending', () => fx.backend.faultsSnapshot().delayedInFlight === 1);
    const r = await fe.call(Request.GET_VRING_BASE, W.encodeVringState({ index: 0, num: 0 }));
    assert.equal(W.decodeVringState(Request.GET_VRING_BASE, r.payload).num, 1);
    assert.equal(fe.usedIdx(), 1, 'the taken request was answered before the ring stopped');
    assert.equal(fx.backend.faultsSnapshot().delayedInFlight, 0);
  });

  it('stall: requests stay on the avail ring, protocol messages are still answered, clear serves them', async () => {
    const [rule] = fx.backend.addFaults(['stall']);
    const plain = Buffer.alloc(32, 5);
    const layouts = post([encReq(plain), encReq(plain), encReq(plain)]);
    await until('the stall', () => fx.backend.faultsSnapshot().stalledBy === rule.id);
    // The device keeps answering QEMU's synchronous messages while the queue is held.
    const extra = await fe.cipherSession(S.VIRTIO_CRYPTO_CIPHER_AES_CBC, KEY, true);
    assert.ok(extra > dec);
    fe.kick();
    await new Promise((r) => setTimeout(r, 50));
    const snap = fx.backend.snapshot();
    assert.deepEqual([snap.queues[0].lastAvailIdx, snap.queues[0].usedIdx, snap.queues[0].inFlight, snap.faults.heldRequests], [0, 0, 0, 3]);
    assert.equal(fe.usedIdx(), 0);
    fx.backend.clearFaults(rule.id);
    const used = await fe.waitUsed(3);
    for (const u of used) {
      const r = fe.readResult(layouts[u.id], u.len);
      assert.equal(r.status, CryptoStatus.OK);
      assert.deepEqual(r.dst, cbc(true, plain));
    }
    assert.equal(fx.backend.faultsSnapshot().stalledBy, null);
    assert.equal(fx.backend.faultsSnapshot().byAction.stall, 1);
  });

  it('stall: GET_VRING_BASE answers with the consumed index (held requests not taken); a restarted ring serves them', async () => {
    const [rule] = fx.backend.addFaults(['stall,opcode=decrypt']);
    const plain = Buffer.alloc(32, 2);
    post([encReq(plain), decReq(cbc(true, plain)), encReq(plain)]);
    await until('the stall', () => fx.backend.faultsSnapshot().stalledBy === rule.id);
    await fe.waitUsed(1);
    const r = await fe.call(Request.GET_VRING_BASE, W.encodeVringState({ index: 0, num: 0 }));
    assert.equal(W.decodeVringState(Request.GET_VRING_BASE, r.payload).num, 1, 'only the encrypt before the decrypt was consumed');
    // Restart at that base (as QEMU does on resume) and release the stall: the two held requests run.
    fe.send(Request.SET_VRING_BASE, W.encodeVringState({ index: 0, num: 1 }));
    fe.send(Request.SET_VRING_KICK, W.encodeU64(0n), [fe.kickFd]);
    // Messages are handled in order: once this is answered the ring is live again, and still held.
    await fe.call(Request.GET_FEATURES);
    fe.kick();
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(fe.usedIdx(), 1, 'the restarted ring is still stalled');
    assert.equal(fx.backend.faultsSnapshot().heldRequests, 2);
    fx.backend.clearFaults();
    const used = await fe.waitUsed(2);
    assert.deepEqual(used.map((u) => u.id).sort(), [1, 2]);
  });

  it('irq=withhold: the completion is in the used ring but the call eventfd is not written', async () => {
    fx.backend.addFaults(['irq=withhold,count=1']);
    const before = fe.signals;
    const [layout] = post([encReq(Buffer.alloc(16, 1))]);
    await until('the completion', () => fe.usedIdx() === 1);
    assert.equal(fe.readResult(layout, 0).status, CryptoStatus.OK);
    fe.collectUsed();
    await runAll([encReq(Buffer.alloc(16, 2))]);
    assert.equal(fe.signals - before, 1, 'one write for two completions: the first was withheld');
    const f = fx.backend.faultsSnapshot();
    assert.deepEqual([f.interruptsWithheld, f.byAction.irq], [1, 1]);
  });

  it('irq=duplicate: the call eventfd is written twice for one completion', async () => {
    fx.backend.addFaults(['irq=duplicate,count=1']);
    const before = fe.signals;
    const interruptsBefore = fx.backend.counters.interrupts;
    await runAll([encReq(Buffer.alloc(16, 1))]);
    await until('the second signal', () => fe.signals - before >= 2);
    await new Promise((r) => setTimeout(r, 30));
    assert.equal(fe.signals - before, 2);
    assert.equal(fx.backend.counters.interrupts - interruptsBefore, 2);
    assert.equal(fx.backend.faultsSnapshot().interruptsDuplicated, 1);
  });

  it('short-used=BYTES: the used length is BYTES smaller, clamped at 0; data and status unchanged', async () => {
    const [rule] = fx.backend.addFaults(['short-used=10']);
    const plain = Buffer.alloc(64, 4);
    const [r] = await runAll([encReq(plain)]);
    assert.equal(r.usedLen, 64 + 1 - 10);
    assert.equal(r.status, CryptoStatus.OK);
    assert.deepEqual(r.dst, cbc(true, plain));
    fx.backend.clearFaults(rule.id);
    fx.backend.addFaults(['short-used=1000']);
    const [z] = await runAll([encReq(plain)]);
    assert.equal(z.usedLen, 0);
  });

  it('flip-dst: the output bytes are inverted, status OK', async () => {
    fx.backend.addFaults(['flip-dst']);
    const plain = crypto.randomBytes(80);
    const [r] = await runAll([encReq(plain)]);
    assert.equal(r.status, CryptoStatus.OK);
    assert.equal(r.usedLen, 81);
    assert.deepEqual(r.dst, Buffer.from(cbc(true, plain).map((b) => b ^ 0xff)));
  });

  it('the plan outlives a front-end: a new connection meets the same rules and counters', async () => {
    const [rule] = fx.backend.addFaults(['status=invsess,every=2']);
    assert.equal((await runAll([encReq(Buffer.alloc(16))]))[0].status, CryptoStatus.OK);
    const gone = fx.nextDisconnect();
    fe.close();
    await gone;
    fe = await fx.connect();
    enc = await fe.cipherSession(S.VIRTIO_CRYPTO_CIPHER_AES_CBC, KEY, true);
    assert.equal((await runAll([encReq(Buffer.alloc(16))]))[0].status, CryptoStatus.INVSESS, 'the second matching request overall');
    assert.deepEqual(fx.backend.faultsSnapshot().rules.map((r) => [r.id, r.seen, r.hits]), [[rule.id, 2, 1]]);
  });

  it('a fault plan given at construction is active from the first request', async () => {
    await fx.close();
    fx = startBackend({ faults: ['status=notsupp,count=1'] });
    fe = await fx.connect();
    enc = await fe.cipherSession(S.VIRTIO_CRYPTO_CIPHER_AES_CBC, KEY, true);
    const [a, b] = await runAll([encReq(Buffer.alloc(16)), encReq(Buffer.alloc(16))]);
    assert.deepEqual([a.status, b.status], [CryptoStatus.NOTSUPP, CryptoStatus.OK]);
    assert.ok(fx.logs.some((l) => /fault rule #1 set: status=notsupp,count=1/.test(l)));
    assert.ok(fx.logs.some((l) => /fault injected by #1 status=notsupp,count=1: head 0 CIPHER_ENCRYPT/.test(l)));
  });
});
