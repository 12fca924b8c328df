import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as W from '../../../../backend/vhost-user/wire';

const hdr = (request: number, flags: number, size: number): W.Header => ({ request, flags, size });

describe('vhost-user wire definitions', () => {
  it('accepts a well-formed header', () => {
    assert.doesNotThrow(() => W.validateHeader(hdr(W.Request.GET_FEATURES, 1, 0)));
    assert.doesNotThrow(() => W.validateHeader(hdr(W.Request.SET_MEM_TABLE, 1 | W.FLAG_NEED_REPLY, 40)));
  });
  it('rejects an unknown request code, naming it', () => {
    assert.throws(() => W.validateHeader(hdr(999, 1, 0)), /unknown request 999: unknown request code/);
  });
  it('rejects a wrong version', () => {
    assert.throws(() => W.validateHeader(hdr(1, 2, 0)), /VHOST_USER_GET_FEATURES: unsupported version 2/);
  });
  it('rejects reserved flag bits', () => {
    assert.throws(() => W.validateHeader(hdr(1, 1 | 0x100, 0)), /reserved flag bits/);
  });
  it('rejects the reply flag on a request', () => {
    assert.throws(() => W.validateHeader(hdr(1, 1 | W.FLAG_REPLY, 0)), /reply flag/);
  });
  it('caps the payload size before anything is read', () => {
    assert.throws(() => W.validateHeader(hdr(W.Request.SET_MEM_TABLE, 1, W.MAX_PAYLOAD + 1)), /exceeds/);
    assert.throws(() => W.validateHeader(hdr(W.Request.SET_MEM_TABLE, 1, 0xffffffff)), /exceeds/);
  });
  it('checks fd counts per request, honouring the NOFD bit', () => {
    const kick = W.encodeU64(0n);
    assert.doesNotThrow(() => W.validateFds(hdr(W.Request.SET_VRING_KICK, 1, 8), kick, 1));
    assert.throws(() => W.validateFds(hdr(W.Request.SET_VRING_KICK, 1, 8), kick, 0), /carries 0 fds, expected 1/);
    assert.doesNotThrow(() => W.validateFds(hdr(W.Request.SET_VRING_KICK, 1, 8), W.encodeU64(0x100n), 0));
    assert.throws(() => W.validateFds(hdr(W.Request.GET_FEATURES, 1, 0), Buffer.alloc(0), 1), /carries 1 fds, expected 0/);
    assert.throws(() => W.validateFds(hdr(W.Request.SET_MEM_TABLE, 1, 40), Buffer.alloc(40), 0), /expected 1\.\.8/);
  });
  it('decodes payloads only at their exact size', () => {
    assert.throws(() => W.decodeU64(W.Request.SET_FEATURES, Buffer.alloc(7)), /payload is 7 bytes, expected 8/);
    assert.throws(() => W.decodeVringAddr(W.Request.SET_VRING_ADDR, Buffer.alloc(39)), /expected 40/);
    assert.throws(() => W.decodeVringFile(W.Request.SET_VRING_CALL, W.encodeU64(0x200n)), /reserved bits/);
  });
  it('round-trips the memory table and bounds nregions', () => {
    const regions = [{ guestPhysAddr: 0n, memorySize: 4096n, userspaceAddr: 0x7f00n << 32n, mmapOffset: 0n }];
    assert.deepEqual(W.decodeMemTable(W.Request.SET_MEM_TABLE, W.encodeMemTable(regions)), regions);
    const zero = Buffer.alloc(8);
    assert.throws(() => W.decodeMemTable(W.Request.SET_MEM_TABLE, zero), /nregions 0/);
    const nine = Buffer.alloc(8 + 9 * 32);
    nine.writeUInt32LE(9, 0);
    assert.throws(() => W.decodeMemTable(W.Request.SET_MEM_TABLE, nine), /nregions 9/);
    const short = W.encodeMemTable(regions).subarray(0, 30);
    assert.throws(() => W.decodeMemTable(W.Request.SET_MEM_TABLE, short), /for 1 regions/);
  });
  it('decodes both crypto session layouts and replies in the same size', () => {
    const info = { cipherAlg: 3, hashAlg: 0, hashResultLen: 0, addLen: 0, opType: 1, direction: 1, hashMode: 0, algChainOrder: 0, key: Buffer.alloc(32, 7), authKey: Buffer.alloc(0) };
    for (const layout of ['qemu7', 'qemu8.1'] as const) {
      const payload = W.encodeCreateSession(layout, info);
      assert.equal(payload.length, layout === 'qemu7' ? 632 : 1072);
      const req = W.decodeCreateSession(W.Request.CREATE_CRYPTO_SESSION, payload);
      assert.equal(req.layout, layout);
      assert.equal(req.info.cipherAlg, 3);
      assert.equal(req.info.keyLen, 32);
      assert.deepEqual(req.info.key, Buffer.alloc(32, 7));
      const reply = W.encodeCreateSessionReply(payload, 42n);
      assert.equal(reply.length, payload.length);
      assert.equal(W.decodeCreateSessionReplyId(reply), 42n);
      assert.ok(reply.subarray(56, 120).every((b) => b === 0), 'keys are not echoed back');
    }
    assert.throws(() => W.decodeCreateSession(W.Request.CREATE_CRYPTO_SESSION, Buffer.alloc(700)), /expected 632 or 1072/);
    const bigKey = W.encodeCreateSession('qemu7', info);
    bigKey.writeUInt32LE(65, 12);
    assert.throws(() => W.decodeCreateSession(W.Request.CREATE_CRYPTO_SESSION, bigKey), /key_len 65 exceeds 64/);
  });
});
