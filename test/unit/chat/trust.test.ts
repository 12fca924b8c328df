/**
 * The chat server's trust fixes (reliability review 2026-12-03, F5 F12 F13, and the soaks'
 * "idle" disconnects of honest readers). Real sockets on 127.0.0.1 and the real server; every
 * client and attacker connects from 127.0.0.1, like every host client and the guest through slirp.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import type * as net from 'node:net';
import { ChatConnection, type ConnectionOptions } from '../../../chat/connection';
import { ephemeralKey, SALT_BYTES } from '../../../chat/keys';
import type { ChatMessage } from '../../../chat/messages';
import { connectTo } from '../../../chat/peer';
import { softwareProvider } from '../../../chat/provider';
import { ChatServer, type ServerOptions } from '../../../chat/server';
import { encodeFrame, FrameDecoder, FrameType, frameTypeName } from '../../../chat/wire';
import { type TestClient, chatClient } from './helpers';

const notice = (re: RegExp) => (m: ChatMessage): boolean => m.t === 'notice' && re.test(m.text);
const client = (port: number, nick: string, psk: Buffer): Promise<TestClient> => chatClient(port, nick, 'sealed', psk);

/** Resolves when the socket closes (or rejects after `ms`). */
function closed(sock: net.Socket, ms: number): Promise<void> {
  return new Promise((resolve, reject) => {
    if (sock.destroyed) return resolve();
    const t = setTimeout(() => reject(new Error(`socket still open after ${ms} ms`)), ms);
    sock.once('close', () => {
      clearTimeout(t);
      resolve();
    });
  });
}

test('keepalive: a member who only reads stays through three idle timeouts; a client that sends no keepalive is still closed as idle', { timeout: 60_000 }, async () => {
  const psk = crypto.randomBytes(32);
  const idleTimeoutMs = 1500;
  const server = new ChatServer({ port: 0, mode: 'sealed', psk, provider: softwareProvider(), idleTimeoutMs });
  const { port } = await server.listen();
  try {
    const reader = await client(port, 'reader', psk);
    await reader.waitFor(notice(/^welcome reader/));
    // A client program that sends no keepalive (an old client, or an idle attacker).
    let silentEnd!: (why: string) => void;
    const silentEnded = new Promise<string>((r) => (silentEnd = r));
    const silentSocket = await connectTo('127.0.0.1', port);
    const silentOpts: ConnectionOptions & Record<string, unknown> = { role: 'initiator', mode: 'sealed', psk, provider: softwareProvider(), hello: { nick: 'silent', role: 'client' }, keepalive: false };
    new ChatConnection(silentSocket, silentOpts, { onEnd: (o) => silentEnd(o.kind === 'error' ? o.error.message : o.kind) });
    const t0 = Date.now();
    const why = await silentEnded;
    assert.match(why, /idle for \d+ s \(limit 2 s\)/, 'the silent client is closed by the idle timeout');
    assert.ok(Date.now() - t0 >= idleTimeoutMs - 100, `closed after ${Date.now() - t0} ms`);
    // The reader has not typed a line since its welcome; it must outlive three idle timeouts.
    await new Promise((r) => setTimeout(r, 3 * idleTimeoutMs));
    assert.equal(reader.conn.isOpen, true, `the reader is still connected (it ended: ${await Promise.race([reader.ended, Promise.resolve('no')])})`);
    const talker = await client(port, 'talker', psk);
    await reader.waitFor(notice(/talker joined #lobby/));
    talker.say('still there?');
    await reader.waitFor((m) => m.t === 'msg' && m.text === 'still there?');
    assert.equal(server.getStats().idleTimeouts, 1, 'exactly one idle timeout (the silent client)');
    reader.conn.quit();
    talker.conn.quit();
  } finally {
    await server.close();
  }
});

for (const silent of [16, 64]) {
  test(`F5: ${silent} silent sockets from 127.0.0.1 do not lock out an honest client from 127.0.0.1 (server defaults)`, { timeout: 60_000 }, async () => {
    const psk = crypto.randomBytes(32);
    const server = new ChatServer({ port: 0, mode: 'sealed', psk, provider: softwareProvider() });
    const { port } = await server.listen();
    const sockets: net.Socket[] = [];
    try {
      for (let i = 0; i < silent; i++) {
        const s = await connectTo('127.0.0.1', port);
        s.on('error', () => undefined);
        sockets.push(s);
      }
      // Every silent socket is accepted (a pending handshake) before the honest client comes.
      for (let i = 0; i < 500 && server.getStats().pending < silent; i++) await new Promise((r) => setTimeout(r, 10));
      assert.equal(server.getStats().pending, silent);
      const t0 = Date.now();
      const honest = await client(port, 'honest', psk);
      const why = await Promise.race([honest.waitFor(notice(/^welcome honest/), 3000).then(() => 'welcome'), honest.ended]);
      assert.equal(why, 'welcome', `the honest client got in (it ended: ${why})`);
      const ms = Date.now() - t0;
      assert.ok(ms < 3000, `the honest client was in after ${ms} ms`);
      honest.conn.quit();
    } finally {
      for (const s of sockets) s.destroy();
      await server.close();
    }
  });
}

test('F5: a flood of silent sockets from 127.0.0.1 is bounded: at most max-pending at once, the oldest evicted, an honest client still gets in', { timeout: 60_000 }, async () => {
  const psk = crypto.randomBytes(32);
  const opts: ServerOptions = { port: 0, mode: 'sealed', psk, provider: softwareProvider(), maxPendingHandshakes: 8 };
  const server = new ChatServer(opts);
  const { port } = await server.listen();
  const sockets: net.Socket[] = [];
  try {
    let peak = 0;
    for (let i = 0; i < 40; i++) {
      const s = await connectTo('127.0.0.1', port);
      s.on('error', () => undefined);
      s.resume(); // read (and so see the server's ALERT and FIN), send nothing
      sockets.push(s);
      peak = Math.max(peak, server.getStats().pending);
    }
    assert.ok(peak <= 8, `at most 8 handshakes pending at once (peak ${peak})`);
    const honest = await client(port, 'honest', psk);
    await honest.waitFor(notice(/^welcome honest/), 3000);
    // The first 32 were evicted by newer ones (ALERT busy) at once, long before the HELLO deadline.
    await Promise.all(sockets.slice(0, 32).map((s) => closed(s, 1500)));
    // The rest hit the 2 s HELLO deadline, not the 10 s handshake timeout.
    await Promise.all(sockets.slice(32).map((s) => closed(s, 5000)));
    for (let i = 0; i < 100 && server.getStats().clients > 1; i++) await new Promise((r) => setTimeout(r, 20));
    const st = server.getStats();
    assert.equal(st.evicted, 33, 'the 32 oldest silent sockets made room for newer ones, one more for the honest client');
    assert.equal(st.handshakeTimeouts, 7, 'the other 7 hit the HELLO deadline');
    assert.equal(st.refused, 0);
    honest.conn.quit();
  } finally {
    for (const s of sockets) s.destroy();
    await server.close();
  }
});

test('F12: an unauthenticated HELLO gets no READY from the server (only its HELLO, then the timeout ALERT)', { timeout: 30_000 }, async () => {
  const psk = crypto.randomBytes(32);
  const server = new ChatServer({ port: 0, mode: 'sealed', psk, provider: softwareProvider(), handshakeTimeoutMs: 1500 });
  const { port } = await server.listen();
  try {
    const raw = await connectTo('127.0.0.1', port);
    raw.on('error', () => undefined);
    const decoder = new FrameDecoder();
    const types: string[] = [];
    raw.on('data', (c: Buffer) => {
      for (const f of decoder.push(c)) types.push(frameTypeName(f.type));
    });
    // A well-formed initiator HELLO: sealed, initiator, key file, a real X25519 public key, zero salt.
    const pub = ephemeralKey(crypto.randomBytes(32)).publicKey;
    raw.write(encodeFrame(FrameType.HELLO, Buffer.concat([Buffer.from([1, 1, 0]), pub, Buffer.alloc(SALT_BYTES)])));
    await closed(raw, 10_000);
    assert.deepEqual(types, ['HELLO', 'ALERT'], 'the server sent its HELLO and the timeout ALERT, no READY');
  } finally {
    await server.close();
  }
});

test('F12: with the wrong key both ends say "authentication failed" and close; the right key still gets in', { timeout: 30_000 }, async () => {
  const psk = crypto.randomBytes(32);
  const logs: string[] = [];
  const server = new ChatServer({ port: 0, mode: 'sealed', psk, provider: softwareProvider(), log: (l) => logs.push(l) });
  const { port } = await server.listen();
  try {
    const wrong = await client(port, 'wrong', crypto.randomBytes(32));
    assert.match(await wrong.ended, /authentication failed/);
    for (let i = 0; i < 200 && !logs.some((l) => /gone: .*authentication failed/.test(l)); i++) await new Promise((r) => setTimeout(r, 10));
    assert.ok(logs.some((l) => /client \d+ \(no nick\) gone: .*authentication failed/.test(l)), `server log: ${logs.join('\n')}`);
    assert.equal(server.getStats().handshakeFailures, 1);
    const right = await client(port, 'right', psk);
    await right.waitFor(notice(/^welcome right/));
    right.conn.quit();
  } finally {
    await server.close();
  }
});

test('F13: one member of a room of 100 cannot make the server seal more than 16 records per rate token', { timeout: 120_000 }, async () => {
  const psk = crypto.randomBytes(32);
  const rate = 20;
  const burst = 200;
  const server = new ChatServer({ port: 0, mode: 'sealed', psk, provider: softwareProvider(), ratePerSecond: rate, rateBurst: burst });
  const { port } = await server.listen();
  const members: TestClient[] = [];
  try {
    for (let i = 0; i < 100; i += 10) {
      members.push(...(await Promise.all(Array.from({ length: 10 }, (_, k) => client(port, `m${i + k}`, psk)))));
    }
    const sender = members[0]!;
    await Promise.all(members.map((m) => m.waitFor(notice(/^welcome /), 30_000)));
    await sender.waitFor(notice(/m99 joined #lobby/), 30_000);
    // Let the join notices settle, and the bucket refill, before counting.
    await new Promise((r) => setTimeout(r, (burst / rate) * 1000));
    const before = server.getStats().delivered;
    const t0 = Date.now();
    for (let i = 0; i < 400; i++) sender.say(`burst ${i}`);
    await members[99]!.waitFor((m) => m.t === 'msg' && m.text === 'burst 0', 30_000);
    await new Promise((r) => setTimeout(r, 2000));
    const elapsed = (Date.now() - t0) / 1000;
    const seals = server.getStats().delivered - before;
    // Tokens available: the burst plus the refill; each pays for up to 16 records sealed, plus the
    // one line (99 records) that went into debt.
    const bound = 16 * (burst + rate * elapsed) + 99;
    assert.ok(seals <= bound, `one sender caused ${seals} seals in ${elapsed.toFixed(1)} s (bound ${bound.toFixed(0)})`);
    assert.ok(seals > 0);
  } finally {
    for (const m of members) m.conn.socket.destroy();
    await server.close();
  }
});

test('keepalive: a PING costs a rate-limit token (50 PINGs at once delay the next line by the refill); a server without an idle timeout announces none', { timeout: 30_000 }, async () => {
  const psk = crypto.randomBytes(32);
  const rate = 20;
  const server = new ChatServer({ port: 0, mode: 'sealed', psk, provider: softwareProvider(), ratePerSecond: rate, rateBurst: 5 });
  const { port } = await server.listen();
  try {
    const pinger = await client(port, 'pinger', psk);
    const reader = await client(port, 'reader', psk);
    await pinger.waitFor(notice(/reader joined #lobby/));
    assert.equal(pinger.conn.peer?.keepaliveMs, 200_000, 'the server asks for a keepalive every third of its 600 s idle timeout');
    await new Promise((r) => setTimeout(r, 500)); // the bucket is full again (5 tokens)
    const protocol = (pinger.conn as unknown as { protocol: { ping(): void } }).protocol;
    const t0 = Date.now();
    for (let i = 0; i < 50; i++) protocol.ping();
    pinger.say('after the pings');
    await reader.waitFor((m) => m.t === 'msg' && m.text === 'after the pings');
    const ms = Date.now() - t0;
    // 50 PINGs against 5 tokens: 45 in debt, paid back at 20/s: ≥ 2.25 s (less a little timer slack).
    assert.ok(ms >= ((50 - 5) / rate) * 1000 - 100, `the line after 50 PINGs arrived after ${ms} ms`);
    assert.equal(pinger.conn.isOpen, true, 'PINGs are legal records');
    pinger.conn.quit();
    reader.conn.quit();
  } finally {
    await server.close();
  }
  // Without an idle timeout the server announces nothing; its READY has no "ka" and clients send no PING.
  const quiet = new ChatServer({ port: 0, mode: 'sealed', psk, provider: softwareProvider(), idleTimeoutMs: 0 });
  const q = await quiet.listen();
  try {
    const c = await client(q.port, 'c', psk);
    await c.waitFor(notice(/^welcome c/));
    assert.equal(c.conn.peer?.keepaliveMs, undefined);
    c.conn.quit();
  } finally {
    await quiet.close();
  }
});
