/**
 * Hostile fds from the front-end (issue 9, item 7), against the back-end in a child process so a
 * SIGBUS or a blocked event loop shows as a dead or silent child instead of killing the test:
 * - a guest-memory memfd that can shrink is refused (truncating it after mmap would be SIGBUS);
 * - kick/call/err fds must be non-blocking eventfds (a full blocking pipe as call fd froze the
 *   event loop at the first interrupt);
 * - with REPLY_ACK negotiated, a refused message gets a non-zero ack before the connection closes.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import * as vhost from '../../../../addon/lib/vhost';
import * as S from '../../../../backend/crypto/spec';
import { TestFrontend } from '../../../../backend/harness/frontend';
import * as W from '../../../../backend/vhost-user/wire';
import { FLAG_NEED_REPLY, FLAG_VERSION, Request } from '../../../../backend/vhost-user/wire';
import { type ChildBackend, startChildBackend } from '../child-backend';

const REPLY_ACK_AND_SESSIONS = (1n << 3n) | (1n << 7n);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The u64 ack of a NEED_REPLY message, or a string saying why there is none. */
async function ackOf(fe: TestFrontend, request: number, payload: Uint8Array, fds: readonly number[]): Promise<bigint | string> {
  fe.send(request, payload, fds, FLAG_VERSION | FLAG_NEED_REPLY);
  try {
    const r = await fe.nextReply(2000);
    return r.request === request ? W.decodeU64(request, r.payload) : `reply to ${r.request}`;
  } catch (err) {
    return (err as Error).message;
  }
}

/** Start of QEMU's sequence with REPLY_ACK negotiated. */
async function negotiate(fe: TestFrontend): Promise<void> {
  await fe.call(Request.GET_FEATURES);
  await fe.call(Request.GET_PROTOCOL_FEATURES);
  fe.send(Request.SET_PROTOCOL_FEATURES, W.encodeU64(REPLY_ACK_AND_SESSIONS));
  assert.equal(await ackOf(fe, Request.SET_OWNER, Buffer.alloc(0), []), 0n);
  assert.equal(await ackOf(fe, Request.SET_FEATURES, W.encodeU64(1n << W.VHOST_USER_F_PROTOCOL_FEATURES), []), 0n);
}

describe('hostile fds from the front-end (back-end in a child process)', { timeout: 60_000 }, () => {
  let be: ChildBackend;
  beforeEach(async () => {
    be = await startChildBackend();
  });
  afterEach(() => be.close());

  it('a guest-memory memfd truncated after SET_MEM_TABLE: no crash; the unsealed memfd is refused with a NACK', async () => {
    const memfd = vhost.memfdCreate('vlab-shrinkable', 65536, { seal: false });
    const kick = vhost.eventfdCreate();
    const fe = TestFrontend.raw(be.socket, { memoryBytes: 65536, queueSize: 8 });
    let memAck: bigint | string;
    try {
      await negotiate(fe);
      memAck = await ackOf(fe, Request.SET_MEM_TABLE, W.encodeMemTable([{ guestPhysAddr: 0n, memorySize: 65536n, userspaceAddr: 0x10000n, mmapOffset: 0n }]), [memfd]);
      try {
        fe.send(Request.SET_VRING_NUM, W.encodeVringState({ index: 0, num: 8 }));
        fe.send(Request.SET_VRING_ADDR, W.encodeVringAddr({ index: 0, flags: 0, descUser: 0x11000n, availUser: 0x12000n, usedUser: 0x13000n, logGuest: 0n }));
        // The front-end shrinks guest memory under the back-end's mapping, then starts the ring.
        fs.ftruncateSync(memfd, 0);
        fe.send(Request.SET_VRING_KICK, W.encodeU64(0n), [kick]);
      } catch {
        // EPIPE: the back-end refused the memory table and closed the connection.
      }
      await sleep(300);
    } finally {
      fe.close();
      vhost.closeFd(memfd);
      vhost.closeFd(kick);
    }
    assert.equal(be.ended(), null, `the back-end died: ${be.ended()}`);
    assert.equal(typeof memAck, 'bigint', `no ack for SET_MEM_TABLE: ${String(memAck)}`);
    assert.notEqual(memAck, 0n, 'an unsealed memfd was acked as guest memory');
    assert.match(be.log(), /SET_MEM_TABLE: .*F_SEAL_SHRINK/);
    assert.ok(await be.answers(), 'the back-end serves the next front-end');
  });

  it('a full blocking pipe as call fd: refused with a NACK, and the event loop is not blocked', async () => {
    const fifo = path.join(path.dirname(be.socket), 'call.fifo');
    execFileSync('mkfifo', [fifo]);
    // Fill the pipe through a non-blocking description, then hand over a blocking one.
    const filler = fs.openSync(fifo, fs.constants.O_RDWR | fs.constants.O_NONBLOCK);
    const chunk = Buffer.alloc(4096);
    for (;;) {
      try {
        fs.writeSync(filler, chunk);
      } catch {
        break; // EAGAIN: full
      }
    }
    const blocking = fs.openSync(fifo, fs.constants.O_RDWR);
    const fe = await TestFrontend.connect(be.socket, { replyAck: true });
    let callAck: bigint | string;
    let servedAfter = false;
    try {
      const id = await fe.cipherSession(S.VIRTIO_CRYPTO_CIPHER_AES_CBC, crypto.randomBytes(16), true);
      callAck = await ackOf(fe, Request.SET_VRING_CALL, W.encodeU64(0n), [blocking]);
      if (!fe.disconnected) {
        // The request's completion raises an interrupt: a write to the full blocking pipe.
        await Promise.race([fe.run({ opcode: 0, sessionId: id, iv: Buffer.alloc(16), src: Buffer.alloc(16) }).catch(() => undefined), sleep(1000)]);
      }
    } finally {
      fe.close();
      fs.closeSync(blocking);
      fs.closeSync(filler);
    }
    servedAfter = await be.answers(3000);
    assert.equal(be.ended(), null, `the back-end died: ${be.ended()}`);
    assert.ok(servedAfter, 'the back-end\'s event loop is blocked: a new front-end gets no answer');
    assert.equal(typeof callAck, 'bigint', `no ack for SET_VRING_CALL: ${String(callAck)}`);
    assert.notEqual(callAck, 0n, 'a pipe was acked as call fd');
    assert.match(be.log(), /SET_VRING_CALL: .*eventfd/);
  });
});
