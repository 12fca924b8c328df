import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { encodeFrame, FrameDecoder, FrameType, MAX_BODY_BYTES, MAX_FRAME_BYTES, WireError } from '../../../chat/wire';

function frames(n: number, size: number): Buffer[] {
  return Array.from({ length: n }, (_, i) => encodeFrame(FrameType.MESSAGE, Buffer.alloc(size, i & 0xff)));
}

test('header layout: version, type, zero flags, big-endian body length', () => {
  assert.deepEqual(encodeFrame(FrameType.BYE, Buffer.from('ab')), Buffer.from([2, 5, 0, 0, 0, 0, 0, 2, 0x61, 0x62]));
});

test('1-byte writes reassemble every frame, including a maximum-size one', () => {
  const input = [...frames(3, 10), encodeFrame(FrameType.MESSAGE, Buffer.alloc(MAX_BODY_BYTES, 7)), ...frames(2, 0)];
  const all = Buffer.concat(input);
  const d = new FrameDecoder();
  const got = [];
  for (let i = 0; i < all.length; i++) got.push(...d.push(all.subarray(i, i + 1)));
  assert.equal(got.length, input.length);
  assert.equal(got[3]!.body.length, MAX_BODY_BYTES);
  assert.ok(got[3]!.body.every((b) => b === 7));
  assert.equal(d.bufferedBytes, 0);
  d.end();
});

test('one giant coalesced read of many frames splits exactly', () => {
  const input = frames(5000, 100);
  const d = new FrameDecoder();
  const got = d.push(Buffer.concat(input));
  assert.equal(got.length, 5000);
  got.forEach((f, i) => {
    assert.equal(f.type, FrameType.MESSAGE);
    assert.deepEqual(Buffer.concat([f.header, f.body]), input[i]);
  });
});

test('reads split at arbitrary points (header split, body split) give the same frames', () => {
  const input = frames(50, 37);
  const all = Buffer.concat(input);
  for (const step of [3, 7, 8, 9, 45, 46, 1000]) {
    const d = new FrameDecoder();
    const got = [];
    for (let i = 0; i < all.length; i += step) got.push(...d.push(all.subarray(i, i + step)));
    assert.equal(got.length, 50, `step ${step}`);
  }
});

test('an oversize length is refused from the header alone, before the body arrives', () => {
  const header = Buffer.from([2, 4, 0, 0, 0, 0, 0, 0]);
  header.writeUInt32BE(MAX_BODY_BYTES + 1, 4);
  const d = new FrameDecoder();
  assert.throws(() => d.push(header), (e: unknown) => e instanceof WireError && e.code === 'oversize' && /limit is 65528/.test(e.message));
  assert.throws(() => d.push(Buffer.alloc(1)), WireError, 'stays failed');
  assert.throws(() => encodeFrame(FrameType.MESSAGE, Buffer.alloc(MAX_FRAME_BYTES)), (e: unknown) => (e as WireError).code === 'oversize');
});

test('truncated frame at end of stream is reported with byte counts', () => {
  const d = new FrameDecoder();
  const f = encodeFrame(FrameType.MESSAGE, Buffer.alloc(100));
  assert.deepEqual(d.push(f.subarray(0, 50)), []);
  assert.throws(() => d.end(), (e: unknown) => e instanceof WireError && e.code === 'truncated' && /50 of 108 bytes/.test(e.message));
  const d2 = new FrameDecoder();
  d2.push(Buffer.from([2, 4]));
  assert.throws(() => d2.end(), /2 of 8 bytes/);
});

test('wrong version, unknown type and non-zero flags are malformed', () => {
  assert.throws(() => new FrameDecoder().push(Buffer.from('GET / HTTP/1.1\r\n')), (e: unknown) => (e as WireError).code === 'version');
  assert.throws(() => new FrameDecoder().push(Buffer.from([2, 99, 0, 0, 0, 0, 0, 0])), /unknown frame type 99/);
  assert.throws(() => new FrameDecoder().push(Buffer.from([2, 4, 0, 1, 0, 0, 0, 0])), /reserved header flags/);
});

test('a lowered body limit (before authentication) refuses larger frames from the header alone', () => {
  const d = new FrameDecoder(512);
  const header = Buffer.from([2, 4, 0, 0, 0, 0, 0, 0]);
  header.writeUInt32BE(513, 4);
  assert.throws(() => d.push(header), /513-byte frame body; the limit before the handshake completes is 512/);
  const ok = new FrameDecoder(512);
  assert.equal(ok.push(encodeFrame(FrameType.MESSAGE, Buffer.alloc(512))).length, 1);
  ok.maxBody = MAX_BODY_BYTES;
  assert.equal(ok.push(encodeFrame(FrameType.MESSAGE, Buffer.alloc(MAX_BODY_BYTES))).length, 1);
});

test('a trickled maximum-size frame holds one buffer of the announced size, nothing per chunk', () => {
  const d = new FrameDecoder();
  const f = encodeFrame(FrameType.MESSAGE, Buffer.alloc(MAX_BODY_BYTES, 3));
  for (let i = 0; i < 1000; i++) d.push(f.subarray(i, i + 1));
  assert.equal(d.heldBytes, MAX_FRAME_BYTES);
  assert.equal(d.bufferedBytes, 1000);
});
