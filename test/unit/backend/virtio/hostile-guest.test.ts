/**
 * A hostile guest against the whole back-end over a real vhost-user socket and a real memfd ring
 * (the harness front-end plays QEMU): aliased 1.5 GiB chains, a guest that never stops posting,
 * floods of rejected chains, session floods, and key bytes left in the message buffer.
 */
import assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import { afterEach, describe, it } from 'node:test';
import { Connection } from '../../../../backend/vhost-user/connection';
import { MAX_SESSIONS } from '../../../../backend/crypto/device';
import * as S from '../../../../backend/crypto/spec';
import { type Reply, type TestFrontend } from '../../../../backend/harness/frontend';
import { MAX_CHAINS_PER_PASS } from '../../../../backend/virtio/queue-pump';
import { VIRTQ_DESC_F_INDIRECT, VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE } from '../../../../backend/virtio/virtqueue';
import * as W from '../../../../backend/vhost-user/wire';
import { Request } from '../../../../backend/vhost-user/wire';
import { type Fixture, RecordingEngine, startBackend } from '../helpers';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function sessionPayload(key: Buffer): Buffer {
  return W.encodeCreateSession('qemu7', {
    cipherAlg: S.VIRTIO_CRYPTO_CIPHER_AES_CTR, hashAlg: 0, hashResultLen: 0, addLen: 0, opType: S.VIRTIO_CRYPTO_SYM_OP_CIPHER,
    direction: S.VIRTIO_CRYPTO_OP_ENCRYPT, hashMode: 0, algChainOrder: 0, key, authKey: Buffer.alloc(0),
  });
}

describe('back-end against a hostile guest (real socket, real ring)', () => {
  let fx: Fixture | undefined;
  afterEach(async () => {
    await fx?.close();
    fx = undefined;
  });

  it('answers ERR to a 1.5 GiB request whose descriptors alias the same 64 MiB of guest RAM; the engine sees nothing', async () => {
    const engine = new RecordingEngine();
    fx = startBackend({ engine });
    const fe = await fx.connect({ memoryBytes: 128 << 20 });
    const id = await fe.cipherSession(S.VIRTIO_CRYPTO_CIPHER_AES_CTR, crypto.randomBytes(16), true);
    const ram = 64 << 20;
    const aliases = 24; // 24 × 64 MiB = 1.5 GiB each way, 3 GiB in all: under the 2^32 chain rule
    const len = aliases * ram;
    const table = fe.heapGpa;
    const hdr = table + 16 * 64;
    const status = hdr + 72 + 16;
    fe.mem.fill(0, hdr, hdr + 88);
    const view = new DataView(fe.mem.buffer);
    view.setUint32(hdr + S.HDR_OPCODE, S.VIRTIO_CRYPTO_CIPHER_ENCRYPT, true);
    view.setBigUint64(hdr + S.HDR_SESSION_ID, id, true);
    view.setUint32(hdr + S.SYM_IV_LEN, 16, true);
    view.setUint32(hdr + S.SYM_SRC_LEN, len, true);
    view.setUint32(hdr + S.SYM_DST_LEN, len, true);
    view.setUint32(hdr + S.SYM_OP_TYPE, S.VIRTIO_CRYPTO_SYM_OP_CIPHER, true);
    fe.mem[status] = 0xee;
    const entries: [number, number, number][] = [[hdr, 72, 0], [hdr + 72, 16, 0]];
    for (let k = 0; k < aliases; k++) entries.push([32 << 20, ram, 0]);
    for (let k = 0; k < aliases; k++) entries.push([32 << 20, ram, VIRTQ_DESC_F_WRITE]);
    entries.push([status, 1, VIRTQ_DESC_F_WRITE]);
    entries.forEach(([addr, l, flags], i) => fe.writeDesc(table, i, addr, l, flags | (i < entries.length - 1 ? VIRTQ_DESC_F_NEXT : 0), i + 1));
    fe.writeDesc(fe.descGpa, 0, table, 16 * entries.length, VIRTQ_DESC_F_INDIRECT, 0);
    fe.pushAvail(0);
    fe.publishAvail();
    fe.kick();
    const used = await fe.waitUsed(1, 10_000);
    assert.deepEqual(used, [{ id: 0, len: 1 }]);
    assert.equal(fe.mem[status], S.CryptoStatus.ERR);
    assert.deepEqual(engine.inputLengths, []);
  });

  for (const ackEventIdx of [false, true]) {
    it(`answers CREATE_CRYPTO_SESSION and GET_VRING_BASE while the guest keeps re-posting (EVENT_IDX ${ackEventIdx ? 'acked' : 'not acked'})`, async () => {
      const engine = new RecordingEngine();
      fx = startBackend({ engine });
      const fe: TestFrontend = await fx.connect({ ackEventIdx });
      const id = await fe.cipherSession(S.VIRTIO_CRYPTO_CIPHER_AES_CTR, crypto.randomBytes(16), true);
      // The guest offers head 0 again every time the device finishes a request, up to FLOOD times
      // (the bound only keeps a failing run finite).
      const FLOOD = 20_000;
      let served = 0;
      let createReply: Promise<Reply> | undefined;
      let servedAtCreateReply = -1;
      engine.onCrypt = () => {
        served++;
        if (served < FLOOD) {
          fe.pushAvail(0);
          fe.publishAvail();
        }
        // QEMU's synchronous request arrives while the device is busy.
        if (served === 10) {
          createReply = fe.call(Request.CREATE_CRYPTO_SESSION, sessionPayload(crypto.randomBytes(16)), 30_000).then((r) => {
            servedAtCreateReply = served;
            return r;
          });
        }
      };
      fe.postRequest(0, fe.heapGpa, { opcode: S.VIRTIO_CRYPTO_CIPHER_ENCRYPT, sessionId: id, iv: Buffer.alloc(16), src: Buffer.alloc(64) });
      fe.publishAvail();
      fe.kick();
      for (let k = 0; k < 3000 && !createReply; k++) await sleep(1);
      assert.ok(createReply, 'the device started serving');
      const r = await createReply;
      assert.ok(W.decodeCreateSessionReplyId(r.payload) > 0n, 'session created');
      assert.ok(servedAtCreateReply < FLOOD, `answered only after the flood ended (${servedAtCreateReply} requests served)`);
      assert.ok(servedAtCreateReply - 10 <= 4 * MAX_CHAINS_PER_PASS, `${servedAtCreateReply - 10} requests served before the reply`);
      // QEMU stopping the device: GET_VRING_BASE is answered while the guest still posts, and stops the ring.
      const base = await fe.call(Request.GET_VRING_BASE, W.encodeVringState({ index: 0, num: 0 }), 30_000);
      const servedAtStop = served;
      assert.ok(servedAtStop < FLOOD, 'ring stopped while the guest was still posting');
      assert.equal(W.decodeVringState(0, base.payload).num, servedAtStop & 0xffff, 'base = requests consumed');
      await sleep(30);
      assert.equal(served, servedAtStop, 'nothing served after GET_VRING_BASE');
      assert.equal(fx.backend.snapshot().queues[0].ready, false);
    });
  }

  it('with EVENT_IDX, a batch larger than one pass completes on a single kick', async () => {
    fx = startBackend();
    const fe = await fx.connect({ ackEventIdx: true, queueSize: 256 });
    const id = await fe.cipherSession(S.VIRTIO_CRYPTO_CIPHER_AES_CTR, crypto.randomBytes(16), true);
    const n = 4 * MAX_CHAINS_PER_PASS - 3;
    const slot = 256;
    for (let k = 0; k < n; k++) fe.postRequest(k, fe.heapGpa + k * slot, { opcode: 0, sessionId: id, iv: Buffer.alloc(16), src: Buffer.alloc(16) });
    assert.equal(fe.publishAndKickIfNeeded(), true);
    const used = await fe.waitUsed(n, 10_000);
    assert.equal(used.length, n);
    assert.equal(fe.availEvent(), n, 'avail_event armed at the end of the batch');
  });

  it('100 000 rejected chains write a bounded log that reports how many lines it suppressed', async () => {
    fx = startBackend();
    const fe = await fx.connect();
    const total = 100_000;
    // Every head names a buffer far outside guest memory: each chain is rejected (used len 0).
    for (let i = 0; i < fe.queueSize; i++) fe.writeDesc(fe.descGpa, i, 0xdead00000000n, 64, 0, 0);
    for (let done = 0; done < total; ) {
      const n = Math.min(fe.queueSize, total - done);
      for (let i = 0; i < n; i++) fe.pushAvail(i);
      fe.publishAvail();
      fe.kick();
      await fe.waitUsed(n, 10_000);
      done += n;
    }
    const snap = fx.backend.snapshot();
    assert.equal(snap.counters.rejectedChains, total);
    const rejectedLines = fx.logs.filter((l) => /rejected chain/.test(l)).length;
    assert.ok(rejectedLines <= 20, `${rejectedLines} log lines for ${total} rejected chains`);
    assert.ok(snap.counters.logLinesSuppressed >= total - 20, `suppressed counter ${snap.counters.logLinesSuppressed}`);
    // The summary comes at the end of the window or when the back-end stops.
    const backend = fx.backend;
    const logs = fx.logs;
    await fx.close();
    fx = undefined;
    const summary = logs.find((l) => /rejected chain: \d+ more suppressed/.test(l));
    assert.ok(summary, `summary line in: ${logs.slice(-5).join(' | ')}`);
    assert.equal(Number(/(\d+) more suppressed/.exec(summary)?.[1]), backend.counters.logLinesSuppressed);
  });

  it(`replies −1 to CREATE_CRYPTO_SESSION past ${MAX_SESSIONS} open sessions and reports it`, async () => {
    fx = startBackend();
    const fe = await fx.connect();
    for (let k = 0; k < MAX_SESSIONS; k++) assert.ok((await fe.cipherSession(S.VIRTIO_CRYPTO_CIPHER_AES_CBC, crypto.randomBytes(16), true)) > 0n);
    for (let k = 0; k < 50; k++) assert.equal(await fe.cipherSession(S.VIRTIO_CRYPTO_CIPHER_AES_CBC, crypto.randomBytes(16), true), -1n);
    const snap = fx.backend.snapshot();
    assert.equal(snap.sessions.length, MAX_SESSIONS);
    assert.equal(snap.counters.sessionsRefusedAtLimit, 50);
    assert.equal(snap.limits.maxSessions, MAX_SESSIONS);
    assert.equal(snap.limits.maxDataLen, S.MAX_DATA_LEN);
    const refusedLines = fx.logs.filter((l) => /session refused/.test(l)).length;
    assert.ok(refusedLines >= 1 && refusedLines <= 10, `${refusedLines} "session refused" lines for 50 refusals`);
  });

  it('zeroes the CREATE_CRYPTO_SESSION message buffer (keys) once the session exists', async () => {
    // Watch the real connection's messages as the back-end reads them.
    const payloads: Buffer[] = [];
    const read = Connection.prototype.read;
    Connection.prototype.read = function (this: Connection) {
      const r = read.call(this);
      if (r.kind === 'message' && r.message.header.request === Request.CREATE_CRYPTO_SESSION) payloads.push(r.message.payload);
      return r;
    };
    try {
      fx = startBackend();
      const fe = await fx.connect();
      const key = crypto.randomBytes(32);
      const id = await fe.cipherSession(S.VIRTIO_CRYPTO_CIPHER_AES_CBC, key, true);
      assert.ok(id > 0n);
      assert.equal(payloads.length, 1);
      assert.equal(payloads[0].length, W.CRYPTO_SESSION_SIZE_V7);
      assert.equal(payloads[0].indexOf(key.subarray(0, 8)), -1, 'key bytes gone from the message buffer');
      assert.ok(payloads[0].every((b) => b === 0), 'whole message buffer zeroed');
      const r = await fe.run({ opcode: 0, sessionId: id, iv: Buffer.alloc(16), src: Buffer.alloc(16) });
      assert.equal(r.status, S.CryptoStatus.OK);
    } finally {
      Connection.prototype.read = read;
    }
  });
});
