import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import {
  C_HELLO, C_OPEN, C_STDIN, FrameDecoder, FrameError, MAX_DATA_BYTES, MAX_JSON_BYTES, S_EXIT,
  encodeData, encodeFrame, encodeJson, parseExit, parseOpen, parseResize,
} from '../../../../../extension/lab/mux/frames';

test('frames round-trip through the decoder, fed a byte at a time', () => {
  const wire = Buffer.concat([encodeFrame(C_HELLO), encodeJson(C_OPEN, { kind: 'exec', command: 'true' }), ...encodeData(C_STDIN, Buffer.from('abc'))]);
  const d = new FrameDecoder();
  const frames = [];
  for (const byte of wire) frames.push(...d.feed(Buffer.from([byte])));
  assert.deepEqual(frames.map((f) => f.type), [C_HELLO, C_OPEN, C_STDIN]);
  assert.deepEqual(parseOpen(frames[1]!.payload), { kind: 'exec', command: 'true' });
  assert.equal(frames[2]!.payload.toString(), 'abc');
});

test('long data is split into frames of at most MAX_DATA_BYTES', () => {
  const frames = encodeData(C_STDIN, Buffer.alloc(MAX_DATA_BYTES * 2 + 5));
  assert.equal(frames.length, 3);
  assert.equal(frames[2]!.length, 5 + 5);
});

test('an oversized length is refused from the header, before the payload arrives', () => {
  const header = Buffer.alloc(5);
  header.writeUInt8(C_STDIN, 0);
  header.writeUInt32BE(MAX_DATA_BYTES + 1, 1);
  assert.throws(() => new FrameDecoder().feed(header), FrameError);
  const json = Buffer.alloc(5);
  json.writeUInt8(C_OPEN, 0);
  json.writeUInt32BE(MAX_JSON_BYTES + 1, 1);
  assert.throws(() => new FrameDecoder().feed(json), FrameError);
  const hello = Buffer.alloc(5);
  hello.writeUInt8(C_HELLO, 0);
  hello.writeUInt32BE(1, 1);
  assert.throws(() => new FrameDecoder().feed(hello), /limit 0/);
});

test('unknown frame types are refused', () => {
  assert.throws(() => new FrameDecoder().feed(Buffer.from([0x7f, 0, 0, 0, 0])), /unknown frame type/);
  assert.throws(() => encodeFrame(0x7f), FrameError);
});

test('open, resize and exit payloads are validated', () => {
  const bad = (o: unknown): Buffer => Buffer.from(JSON.stringify(o));
  assert.throws(() => parseOpen(Buffer.from('{')), /not JSON/);
  assert.throws(() => parseOpen(bad([1])), /not an object/);
  assert.throws(() => parseOpen(bad({ kind: 'exec', command: '' })), /bad command/);
  assert.throws(() => parseOpen(bad({ kind: 'exec', command: 'a\0b' })), /bad command/);
  assert.throws(() => parseOpen(bad({ kind: 'shell' })), /pty/);
  assert.throws(() => parseOpen(bad({ kind: 'shell', pty: { cols: 0, rows: 5 } })), /pty size/);
  assert.throws(() => parseOpen(bad({ kind: 'shell', pty: { cols: 80, rows: 24, term: 'x y' } })), /terminal/);
  assert.throws(() => parseOpen(bad({ kind: 'subsystem' })), /unknown kind/);
  assert.deepEqual(parseOpen(bad({ kind: 'shell', pty: { cols: 80, rows: 24 } })), { kind: 'shell', pty: { cols: 80, rows: 24, term: 'xterm-256color' } });
  assert.throws(() => parseResize(bad({ rows: 1e9, cols: 1 })), /bad size/);
  assert.deepEqual(parseExit(encodeJson(S_EXIT, { code: 3 }).subarray(5)), { code: 3 });
  assert.deepEqual(parseExit(bad({ signal: 'SIGTERM' })), { signal: 'SIGTERM' });
  assert.throws(() => parseExit(bad({ code: 256 })), /neither/);
  assert.throws(() => parseExit(bad({ signal: 'rm -rf' })), /neither/);
});
