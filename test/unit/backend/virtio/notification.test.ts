/**
 * When the back-end publishes used->idx and when it interrupts the guest (virtio 1.2 §2.7.10):
 * the mid-pass publish rule for large requests (PUBLISH_BYTES) over a real socket and ring, and the
 * EVENT_IDX decision of SplitQueue.publish against a model, across 16-bit index wrap-around.
 */
import assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import { after, afterEach, describe, it } from 'node:test';
import * as vhost from '../../../../addon/lib/vhost';
import * as S from '../../../../backend/crypto/spec';
import { TestFrontend } from '../../../../backend/harness/frontend';
import { GuestMemory, frontendVa } from '../../../../backend/virtio/memory';
import { MAX_CHAINS_PER_PASS, PUBLISH_BYTES } from '../../../../backend/virtio/queue-pump';
import { SplitQueue } from '../../../../backend/virtio/virtqueue';
import { type Fixture, startBackend } from '../helpers';

const LARGE = 64 * 1024;

describe('publishing completions inside a pass (real socket, real ring)', () => {
  let fx: Fixture | undefined;
  afterEach(async () => {
    await fx?.close();
    fx = undefined;
  });

  /** Posts n LARGE-byte AES-CBC requests at once and kicks once; returns the interrupts the pass made. */
  async function onePass(n: number, opts: { ackEventIdx: boolean; usedEvent?: number }): Promise<{ interrupts: number; signals: number; fe: TestFrontend }> {
    fx = startBackend();
    const fe = await fx.connect({ ackEventIdx: opts.ackEventIdx, queueSize: 256, memoryBytes: 64 << 20 });
    const id = await fe.cipherSession(S.VIRTIO_CRYPTO_CIPHER_AES_CBC, crypto.randomBytes(32), true);
    const slot = TestFrontend.slotBytes(LARGE);
    for (let k = 0; k < n; k++) fe.postRequest(k, fe.heapGpa + k * slot, { opcode: S.VIRTIO_CRYPTO_CIPHER_ENCRYPT, sessionId: id, iv: crypto.randomBytes(16), src: crypto.randomBytes(LARGE) });
    if (opts.usedEvent !== undefined) fe.setUsedEvent(opts.usedEvent);
    const before = fx.backend.counters.interrupts;
    fe.publishAvail();
    fe.kick();
    const used = await fe.waitUsed(n, 10_000);
    assert.equal(used.length, n);
    // The back-end served the whole batch in the kick's callback: one pass (n < MAX_CHAINS_PER_PASS).
    return { interrupts: fx.backend.counters.interrupts - before, signals: fe.signals, fe };
  }

  it(`publishes (and, without EVENT_IDX, interrupts) every ${PUBLISH_BYTES / 1024} KiB of completed data, not only at the end of the pass`, async () => {
    const n = 17;
    assert.ok(n < MAX_CHAINS_PER_PASS && n * LARGE * 2 < 64 << 20);
    const publishes = Math.floor((n * LARGE) / PUBLISH_BYTES) + ((n * LARGE) % PUBLISH_BYTES === 0 ? 0 : 1);
    const { interrupts } = await onePass(n, { ackEventIdx: false });
    assert.ok(publishes >= 2, 'the batch spans several publish points');
    assert.equal(interrupts, publishes, 'one interrupt per publish point, the last at the end of the pass');
  });

  for (const usedEvent of [0, 5, 16]) {
    it(`with EVENT_IDX and used_event ${usedEvent}, the mid-pass publishes interrupt exactly once (when used_event is crossed)`, async () => {
      const { interrupts } = await onePass(17, { ackEventIdx: true, usedEvent });
      assert.equal(interrupts, 1);
    });
  }

  it('small requests still publish once per pass: 64 × 64 B on one kick is one interrupt', async () => {
    fx = startBackend();
    const fe = await fx.connect({ queueSize: 256 });
    const id = await fe.cipherSession(S.VIRTIO_CRYPTO_CIPHER_AES_CBC, crypto.randomBytes(32), true);
    const slot = TestFrontend.slotBytes(64);
    for (let k = 0; k < MAX_CHAINS_PER_PASS; k++) fe.postRequest(k, fe.heapGpa + k * slot, { opcode: S.VIRTIO_CRYPTO_CIPHER_ENCRYPT, sessionId: id, iv: crypto.randomBytes(16), src: crypto.randomBytes(64) });
    const before = fx.backend.counters.interrupts;
    fe.publishAvail();
    fe.kick();
    assert.equal((await fe.waitUsed(MAX_CHAINS_PER_PASS, 10_000)).length, MAX_CHAINS_PER_PASS);
    assert.equal(fx.backend.counters.interrupts - before, 1);
  });
});

describe('SplitQueue.publish against the §2.7.10 model (random publish sizes, used_event moves, 16-bit wrap)', () => {
  const SIZE = 256;
  const MEM = 65536;
  const DESC = 0x1000;
  const AVAIL = 0x2000;
  const USED = 0x3000;
  const fd = vhost.memfdCreate('vlab-notify-test', MEM);
  const raw = new DataView(vhost.mmap(fd, 0, MEM, true));
  const VA = 0x5555_0000_0000n;
  const memory = GuestMemory.map([{ guestPhysAddr: 0n, memorySize: BigInt(MEM), userspaceAddr: VA, mmapOffset: 0n }], [fd]);
  after(() => {
    memory.close();
    vhost.closeFd(fd);
  });

  for (const eventIdx of [true, false]) {
    it(`interrupts iff ${eventIdx ? 'used_event lies in [old, new)' : 'VIRTQ_AVAIL_F_NO_INTERRUPT is clear'} (20 000 publishes, EVENT_IDX ${eventIdx ? 'on' : 'off'})`, () => {
      let seed = 7;
      const rnd = (n: number): number => {
        seed = (seed * 1103515245 + 12345) >>> 0;
        return seed % n;
      };
      // Start just below the 16-bit wrap so the run crosses it.
      const base = 65536 - 3000;
      const q = new SplitQueue(0, SIZE, memory, { desc: frontendVa(VA + BigInt(DESC)), avail: frontendVa(VA + BigInt(AVAIL)), used: frontendVa(VA + BigInt(USED)) }, base, eventIdx);
      let signalled = base;
      let used = base;
      for (let k = 0; k < 20_000; k++) {
        const usedEvent = rnd(3) === 0 ? (used + rnd(70) - 5) & 0xffff : rnd(65536);
        const flags = rnd(2);
        raw.setUint16(AVAIL + 4 + 2 * SIZE, usedEvent, true);
        raw.setUint16(AVAIL, flags, true);
        const n = rnd(4) === 0 ? 0 : 1 + rnd(40);
        for (let j = 0; j < n; j++) q.pushUsed(j % SIZE, 1);
        used = (used + n) & 0xffff;
        let want = false;
        if (n > 0) {
          if (eventIdx) for (let x = signalled; x !== used; x = (x + 1) & 0xffff) want ||= x === usedEvent;
          else want = flags === 0;
        }
        assert.equal(q.publish(), want, `publish ${k}: old ${signalled} new ${used} used_event ${usedEvent} flags ${flags}`);
        if (n > 0) assert.equal(raw.getUint16(USED + 2, true), used, 'used idx published');
        signalled = used;
      }
    });
  }
});
