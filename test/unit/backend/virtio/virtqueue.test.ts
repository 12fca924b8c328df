import assert from 'node:assert/strict';
import { after, beforeEach, describe, it } from 'node:test';
import * as vhost from '../../../../addon/lib/vhost';
import { GuestMemory, frontendVa } from '../../../../backend/virtio/memory';
import { type DescriptorChain, type RejectedChain, SplitQueue, VIRTQ_DESC_F_INDIRECT, VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE } from '../../../../backend/virtio/virtqueue';

const SIZE = 8;
const MEM = 2 * 65536;
const DESC = 0x1000;
const AVAIL = 0x2000;
const USED = 0x3000;
// Short names for the descriptor tables below (the flags are virtqueue.ts's).
const N = VIRTQ_DESC_F_NEXT;
const W = VIRTQ_DESC_F_WRITE;
const I = VIRTQ_DESC_F_INDIRECT;

/** A split ring in real shared memory: two regions (GPA 0 and 0x10000), VA = GPA + VA_OFF. */
describe('split virtqueue', () => {
  const fd = vhost.memfdCreate('vlab-vq-test', MEM);
  const raw = new DataView(vhost.mmap(fd, 0, MEM, true));
  const VA_OFF = 0x5555_0000_0000n;
  const memory = GuestMemory.map(
    [
      { guestPhysAddr: 0n, memorySize: 65536n, userspaceAddr: VA_OFF, mmapOffset: 0n },
      { guestPhysAddr: 65536n, memorySize: 65536n, userspaceAddr: VA_OFF + 65536n, mmapOffset: 65536n },
    ],
    [fd, fd],
  );
  after(() => {
    memory.close();
    vhost.closeFd(fd);
  });
  let availIdx = 0;
  const queue = (eventIdx = false): SplitQueue =>
    new SplitQueue(0, SIZE, memory, { desc: frontendVa(VA_OFF + BigInt(DESC)), avail: frontendVa(VA_OFF + BigInt(AVAIL)), used: frontendVa(VA_OFF + BigInt(USED)) }, 0, eventIdx);
  const desc = (table: number, i: number, addr: bigint | number, len: number, flags: number, next = 0): void => {
    raw.setBigUint64(table + 16 * i, BigInt(addr), true);
    raw.setUint32(table + 16 * i + 8, len, true);
    raw.setUint16(table + 16 * i + 12, flags, true);
    raw.setUint16(table + 16 * i + 14, next, true);
  };
  const offer = (head: number): void => {
    raw.setUint16(AVAIL + 4 + 2 * (availIdx % SIZE), head, true);
    availIdx++;
    raw.setUint16(AVAIL + 2, availIdx, true);
  };
  const rejected = (c: DescriptorChain | RejectedChain | undefined): string => {
    assert.ok(c && 'reason' in c, `expected a rejected chain, got ${JSON.stringify(c)}`);
    return c.reason;
  };
  beforeEach(() => {
    new Uint8Array(raw.buffer).fill(0, 0, 0x4000);
    availIdx = 0;
  });

  it('walks a direct chain across two regions: readable then writable segments', () => {
    const q = queue();
    desc(DESC, 0, 0xfff0, 32, N, 1); // crosses the region boundary at 0x10000
    desc(DESC, 1, 0x8000, 100, W);
    offer(0);
    const c = q.pop() as DescriptorChain;
    assert.equal(c.head, 0);
    assert.deepEqual(c.readable.map((s) => s.length), [16, 16]);
    assert.equal(c.readableLength, 32);
    assert.equal(c.writableLength, 100);
    assert.equal(q.pop(), undefined);
  });

  it('walks an indirect table', () => {
    const q = queue();
    desc(0x4000, 0, 0x8000, 72, N, 1);
    desc(0x4000, 1, 0x9000, 16, W);
    desc(DESC, 3, 0x4000, 32, I);
    offer(3);
    const c = q.pop() as DescriptorChain;
    assert.equal(c.indirect, true);
    assert.equal(c.head, 3);
    assert.equal(c.readableLength, 72);
    assert.equal(c.writableLength, 16);
  });

  it('§2.7.4.2 rejects a loop (chain longer than the queue)', () => {
    const q = queue();
    desc(DESC, 0, 0x8000, 1, N, 0);
    offer(0);
    assert.match(rejected(q.pop()), /longer than queue size/);
  });
  it('§2.7.5 rejects next outside the table', () => {
    const q = queue();
    desc(DESC, 0, 0x8000, 1, N, SIZE);
    offer(0);
    assert.match(rejected(q.pop()), /next 8 outside/);
  });
  it('§2.7.5.3.1 rejects an indirect descriptor inside an indirect table', () => {
    const q = queue();
    desc(0x4000, 0, 0x4000, 16, I);
    desc(DESC, 0, 0x4000, 16, I);
    offer(0);
    assert.match(rejected(q.pop()), /inside an indirect table/);
  });
  it('§2.7.5.3.1 rejects INDIRECT together with NEXT', () => {
    const q = queue();
    desc(DESC, 0, 0x4000, 16, I | N, 1);
    offer(0);
    assert.match(rejected(q.pop()), /both INDIRECT and NEXT/);
  });
  it('§2.7.5.3 rejects an indirect table length that is 0 or not a multiple of 16', () => {
    const q = queue();
    desc(DESC, 0, 0x4000, 24, I);
    desc(DESC, 1, 0x4000, 0, I);
    offer(0);
    offer(1);
    assert.match(rejected(q.pop()), /not a non-zero multiple of 16/);
    assert.match(rejected(q.pop()), /not a non-zero multiple of 16/);
  });
  it('rejects an indirect table with more entries than the queue size', () => {
    const q = queue();
    desc(DESC, 0, 0x4000, 16 * (SIZE + 1), I);
    offer(0);
    assert.match(rejected(q.pop()), /exceeds queue size/);
  });
  it('rejects an indirect table outside guest memory', () => {
    const q = queue();
    desc(DESC, 0, 0x1_0000_0000n, 32, I);
    offer(0);
    assert.match(rejected(q.pop()), /not inside one memory region/);
  });
  it('§2.7.4.2 rejects a readable descriptor after a writable one', () => {
    const q = queue();
    desc(DESC, 0, 0x8000, 4, W | N, 1);
    desc(DESC, 1, 0x8000, 4, 0);
    offer(0);
    assert.match(rejected(q.pop()), /readable descriptor after a writable/);
  });
  it('rejects buffers outside memory, running off its end, or wrapping 2^64', () => {
    const q = queue();
    desc(DESC, 0, 0x2_0000n, 4, 0);
    desc(DESC, 1, MEM - 2, 4, 0);
    desc(DESC, 2, 0xffff_ffff_ffff_fff0n, 0x20, 0);
    offer(0);
    offer(1);
    offer(2);
    for (let k = 0; k < 3; k++) assert.match(rejected(q.pop()), /outside guest memory/);
  });
  it('§2.7.4.2 rejects chains over 2^32 bytes before translating them', () => {
    const q = queue();
    desc(DESC, 0, 0x8000, 0xffff_ffff, N, 1);
    desc(DESC, 1, 0x8000, 2, 0);
    offer(0);
    assert.match(rejected(q.pop()), /outside guest memory|2\^32/);
  });
  it('§2.7.6 marks the queue broken for a head ≥ queue size, and stops', () => {
    const q = queue();
    offer(SIZE);
    assert.equal(q.pop(), undefined);
    assert.match(q.broken ?? '', /names descriptor 8/);
  });
  it('marks the queue broken when avail idx runs more than size ahead', () => {
    const q = queue();
    raw.setUint16(AVAIL + 2, SIZE + 1, true);
    assert.equal(q.pop(), undefined);
    assert.match(q.broken ?? '', /ahead of last seen/);
  });
  it('publishes used entries, then used idx; always writes avail_event', () => {
    const q = queue();
    desc(DESC, 2, 0x8000, 4, W);
    offer(2);
    const c = q.pop() as DescriptorChain;
    q.pushUsed(c.head, 4);
    assert.equal(raw.getUint16(USED + 2, true), 0, 'not visible before publish');
    assert.equal(q.armNotification(), false);
    assert.equal(raw.getUint16(USED + 4 + 8 * SIZE, true), 1, 'avail_event = next avail index');
    assert.equal(q.publish(), true, 'no suppression: interrupt');
    assert.equal(raw.getUint16(USED + 2, true), 1);
    assert.equal(raw.getUint32(USED + 4, true), 2);
    assert.equal(raw.getUint32(USED + 8, true), 4);
  });
  it('honours VIRTQ_AVAIL_F_NO_INTERRUPT without EVENT_IDX', () => {
    const q = queue(false);
    raw.setUint16(AVAIL, 1, true);
    desc(DESC, 0, 0x8000, 4, W);
    offer(0);
    q.pushUsed((q.pop() as DescriptorChain).head, 1);
    assert.equal(q.publish(), false);
  });
  it('§2.7.10 with EVENT_IDX interrupts only when used_event is crossed', () => {
    const q = queue(true);
    raw.setUint16(AVAIL + 4 + 2 * SIZE, 1, true); // driver wants an interrupt after the 2nd entry
    for (let k = 0; k < 2; k++) {
      desc(DESC, k, 0x8000, 4, W);
      offer(k);
    }
    q.pushUsed((q.pop() as DescriptorChain).head, 1);
    assert.equal(q.publish(), false, 'used idx 1 does not pass used_event 1');
    q.pushUsed((q.pop() as DescriptorChain).head, 1);
    assert.equal(q.publish(), true, 'used idx 2 passes used_event 1');
  });
  it('armNotification reports work that arrived meanwhile', () => {
    const q = queue();
    desc(DESC, 0, 0x8000, 4, W);
    offer(0);
    assert.equal(q.armNotification(), true);
  });
});
