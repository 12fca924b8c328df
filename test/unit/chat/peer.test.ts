import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import { softwareProvider } from '../../../chat/provider';
import { encodeFrame, FrameType, MAX_BODY_BYTES } from '../../../chat/wire';
import { PassThrough } from 'node:stream';
import { acceptOne, connectTo, runChatSession } from '../../../chat/peer';
import { capture, peerAgainstRaw, startPair } from './helpers';

const sw = softwareProvider();
const sealed = (psk: Buffer, nick: string) => ({ mode: 'sealed' as const, psk, provider: sw, nick });
const LINE = /^\[\d\d:\d\d:\d\d\] <(\w+)> (.*)$/m;

test('two peers chat both ways; Ctrl-D (end of input) ends both cleanly', async () => {
  const psk = crypto.randomBytes(32);
  const { host, guest } = await startPair(sealed(psk, 'alice'), sealed(psk, 'bob'));
  guest.stdin.write('hello alice\n');
  await host.stdout.waitFor(/<bob> hello alice/);
  host.stdin.write('hi bob, ünïcödé ✓\n');
  await guest.stdout.waitFor(/<alice> hi bob, ünïcödé ✓/);
  assert.match(host.stdout.text(), LINE);
  guest.stdin.end();
  assert.equal(await guest.exit, 0);
  assert.equal(await host.exit, 0);
  assert.match(host.stderr.text(), /bob left the chat/);
});

test('/quit on one side ends both sides with exit 0', async () => {
  const psk = crypto.randomBytes(32);
  const { host, guest } = await startPair(sealed(psk, 'alice'), sealed(psk, 'bob'));
  host.stdin.write('before quitting\n/quit\n');
  assert.equal(await host.exit, 0);
  assert.equal(await guest.exit, 0);
  assert.match(guest.stdout.text(), /<alice> before quitting/);
  assert.match(guest.stderr.text(), /alice left the chat/);
});

test('lines typed before the handshake finishes are delivered, then Ctrl-D', async () => {
  const { host, guest } = await startPair({ mode: 'none', nick: 'alice' }, { mode: 'none', nick: 'bob' });
  guest.stdin.end('one\ntwo\nthree\n');
  assert.equal(await guest.exit, 0);
  assert.equal(await host.exit, 0);
  assert.deepEqual(host.stdout.text().trim().split('\n').map((l) => l.replace(/^\[[^\]]+\] /, '')), ['<bob> one', '<bob> two', '<bob> three']);
});

test('wrong key: both sides say "authentication failed", print nothing and exit 1', async () => {
  const { host, guest } = await startPair(sealed(crypto.randomBytes(32), 'alice'), sealed(crypto.randomBytes(32), 'bob'));
  guest.stdin.write('this must never be shown\n');
  assert.equal(await host.exit, 1);
  assert.equal(await guest.exit, 1);
  for (const side of [host, guest]) {
    assert.match(side.stderr.text(), /authentication failed/);
    assert.equal(side.stdout.text(), '');
  }
});

test('abrupt disconnect (no /quit) is reported as connection lost', async () => {
  const psk = crypto.randomBytes(32);
  const { host, guest } = await startPair(sealed(psk, 'alice'), sealed(psk, 'bob'));
  await guest.stderr.waitFor(/connected to alice/);
  host.socket.destroy();
  assert.equal(await guest.exit, 1);
  assert.match(guest.stderr.text(), /connection lost/);
  await host.exit;
});

test('a truncated frame closes the connection with a clear error', async () => {
  const { peer, raw } = await peerAgainstRaw({ mode: 'none', nick: 'alice' });
  raw.end(encodeFrame(FrameType.HELLO, Buffer.alloc(34)).subarray(0, 20));
  assert.equal(await peer.exit, 1);
  assert.match(peer.stderr.text(), /closed in the middle of a frame \(20 of 42 bytes received\)/);
});

test('an oversize frame header is refused before its body is read', async () => {
  const { peer, raw } = await peerAgainstRaw({ mode: 'none', nick: 'alice' });
  const header = Buffer.from([2, 1, 0, 0, 0, 0, 0, 0]);
  header.writeUInt32BE(MAX_BODY_BYTES + 1, 4);
  raw.write(header);
  assert.equal(await peer.exit, 1);
  assert.match(peer.stderr.text(), /65529-byte frame body; the limit before the handshake completes is 512/);
  raw.destroy();
});

test('a non-chat client (HTTP) is told off, not crashed on', async () => {
  const { peer, raw } = await peerAgainstRaw({ mode: 'none', nick: 'alice' });
  raw.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
  assert.equal(await peer.exit, 1);
  assert.match(peer.stderr.text(), /protocol version 71/);
  raw.destroy();
});

test('peer text with terminal escapes is printed defused', async () => {
  const { host, guest } = await startPair({ mode: 'none', nick: 'alice' }, { mode: 'none', nick: 'bob' });
  guest.stdin.end('evil \u001b[2J\u001b]0;title\u0007 text\n');
  assert.equal(await host.exit, 0);
  assert.doesNotMatch(host.stdout.text(), /\u001b|\u0007/);
  assert.match(host.stdout.text(), /<bob> evil \uFFFD\[2J\uFFFD\]0;title\uFFFD text/);
});

test('interactive (TTY) mode: prompt, own lines re-shown with time and nick, incoming lines above the prompt', async () => {
  let port = 0;
  const accepted = acceptOne('127.0.0.1', 0, (a) => (port = a.port));
  while (port === 0) await new Promise((r) => setImmediate(r));
  const client = await connectTo('127.0.0.1', port);
  const server = await accepted;
  const ttyIn = new PassThrough();
  const ttyOut = capture();
  const fixed = (): Date => new Date(2026, 0, 1, 12, 34, 56);
  const tty = runChatSession(server, { role: 'responder', mode: 'none', nick: 'alice', as: 'peer', now: fixed }, { stdin: ttyIn, stdout: ttyOut.stream, stderr: capture().stream, interactive: true });
  const pipeIn = new PassThrough();
  const pipeOut = capture();
  const pipe = runChatSession(client, { role: 'initiator', mode: 'none', nick: 'bob', as: 'client' }, { stdin: pipeIn, stdout: pipeOut.stream, stderr: capture().stream, interactive: false });
  await ttyOut.waitFor(/connected to bob/);
  pipeIn.write('from the pipe\n');
  await ttyOut.waitFor(/\[12:34:56\] <bob> from the pipe/);
  ttyIn.write('typed at the tty\r');
  await ttyOut.waitFor(/\[12:34:56\] <alice> typed at the tty/);
  await pipeOut.waitFor(/<alice> typed at the tty/);
  assert.match(ttyOut.text(), /> /, 'a prompt is shown');
  ttyIn.write('/quit\r');
  assert.equal(await tty, 0);
  assert.equal(await pipe, 0);
});
