/**
 * The chat server under hostile clients (issue 10): bounded frame assembly, nothing costly before
 * the peer's READY verifies, handshake timeout and pending-handshake caps, per-recipient isolation
 * of seal() failures, and a flooding client that cannot starve the others. Real sockets on
 * 127.0.0.1, the real server; the only stand-in is a provider wrapper that counts sessions and can
 * make one recipient's cipher fail the way /dev/crypto does after device removal (ENODEV).
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import type * as net from 'node:net';
import type { ChatMessage } from '../../../chat/messages';
import { connectTo } from '../../../chat/peer';
import { type BlockCipher, type CryptoProvider, softwareProvider } from '../../../chat/provider';
import { ChatServer, type ServerOptions } from '../../../chat/server';
import { FrameDecoder, PROTOCOL_VERSION } from '../../../chat/wire';
import { type TestClient, chatClient } from './helpers';
import * as v8 from 'node:v8';
import * as vm from 'node:vm';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

interface TrackedCipher {
  broken: boolean;
  closed: boolean;
}

/** softwareProvider() plus a record of every cipher session it opened and a switch to break one. */
function trackingProvider(): CryptoProvider & { readonly ciphers: TrackedCipher[]; readonly macs: number[] } {
  const base = softwareProvider();
  const ciphers: TrackedCipher[] = [];
  const macs: number[] = [];
  return {
    name: base.name,
    description: base.description,
    ciphers,
    macs,
    cipher(key): BlockCipher {
      const inner = base.cipher(key);
      const t: TrackedCipher = { broken: false, closed: false };
      ciphers.push(t);
      const check = (): void => {
        if (t.broken) throw Object.assign(new Error('CIOCCRYPT: No such device (ENODEV)'), { code: 'ENODEV' });
      };
      return {
        encrypt: (iv, p) => (check(), inner.encrypt(iv, p)),
        decrypt: (iv, c) => (check(), inner.decrypt(iv, c)),
        close: () => ((t.closed = true), inner.close()),
      };
    },
    mac(key) {
      macs.push(1);
      return base.mac(key);
    },
    openSessions: () => ciphers.filter((c) => !c.closed).length,
    close: () => undefined,
  };
}

type Client = TestClient;

const client = (port: number, nick: string, psk: Buffer): Promise<Client> => chatClient(port, nick, 'sealed', psk);

const notice = (re: RegExp) => (m: ChatMessage): boolean => m.t === 'notice' && re.test(m.text);

/** Resolves with how many of `sockets` the server closed within `ms`. */
function closedWithin(sockets: readonly net.Socket[], ms: number, enough = sockets.length): Promise<number> {
  return new Promise((resolve) => {
    let closed = 0;
    const timer = setTimeout(() => resolve(closed), ms);
    for (const s of sockets) {
      s.on('error', () => undefined);
      s.once('close', () => {
        if (++closed >= enough) {
          clearTimeout(timer);
          resolve(closed);
        }
      });
      s.resume();
    }
  });
}

test('item 1: the frame decoder keeps no socket chunk alive (a frame fed one byte at a time)', async () => {
  const d = new FrameDecoder();
  // A 1-byte read from a socket is a view of a much larger allocation; the old decoder kept every
  // such view (and so every backing store) until the frame completed.
  const body = crypto.randomBytes(2000);
  const header = Buffer.from([PROTOCOL_VERSION, 4, 0, 0, 0, 0, 0, 0]);
  header.writeUInt32BE(body.length, 4);
  const frame = Buffer.concat([header, body]);
  let finalized = 0;
  const registry = new FinalizationRegistry<number>(() => finalized++);
  let out: ReturnType<FrameDecoder['push']> = [];
  for (let i = 0; i < frame.length; i++) {
    const backing = Buffer.allocUnsafeSlow(16 * 1024);
    backing[0] = frame[i]!;
    if (i < frame.length - 1) registry.register(backing.buffer, i);
    out = d.push(backing.subarray(0, 1));
    backing.fill(0xee); // the socket layer may reuse its buffer after 'data' returns
    if (i === frame.length - 2) {
      for (let k = 0; k < 5 && finalized < frame.length - 1; k++) {
        gc();
        await new Promise((r) => setImmediate(r));
      }
      // With the frame still incomplete, every earlier chunk must already be collectable.
      assert.ok(finalized >= (frame.length - 1) * 0.9, `only ${finalized} of ${frame.length - 1} chunk buffers were collected: the decoder keeps the rest alive`);
    }
  }
  assert.equal(out.length, 1);
  assert.deepEqual(out[0]!.body, body, 'the frame was assembled from copies, not from views of reused socket buffers');
});

test('item 2: a client with the wrong key never makes the server open a provider session', async () => {
  const psk = crypto.randomBytes(32);
  const provider = trackingProvider();
  const server = new ChatServer({ port: 0, mode: 'sealed', psk, provider });
  const { port } = await server.listen();
  try {
    const intruders = await Promise.all([1, 2, 3, 4].map((i) => client(port, `x${i}`, crypto.randomBytes(32))));
    for (const x of intruders) assert.match(await x.ended, /authentication failed/);
    assert.equal(provider.ciphers.length, 0, `${provider.ciphers.length} cipher sessions opened for unauthenticated peers`);
    assert.equal(provider.macs.length, 0);
    const ok = await client(port, 'ok', psk);
    await ok.waitFor(notice(/^welcome ok/));
    assert.equal(provider.ciphers.length, 2, 'an authenticated client gets its two cipher sessions');
    ok.conn.quit();
  } finally {
    await server.close();
  }
});

test('item 2: a peer that never completes the handshake is closed by the handshake timeout', async () => {
  const psk = crypto.randomBytes(32);
  const opts: ServerOptions & Record<string, unknown> = { port: 0, mode: 'sealed', psk, provider: softwareProvider(), handshakeTimeoutMs: 300 };
  const server = new ChatServer(opts);
  const { port } = await server.listen();
  const sockets: net.Socket[] = [];
  try {
    const silent = await connectTo('127.0.0.1', port);
    const trickle = await connectTo('127.0.0.1', port);
    sockets.push(silent, trickle);
    trickle.write(Buffer.from([2])); // one byte of a header, then nothing more
    assert.equal(await closedWithin([silent, trickle], 5000), 2, 'both sockets closed by the server');
    for (let i = 0; i < 100 && server.getStats().clients > 0; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(server.getStats().clients, 0);
    assert.equal(server.getStats().handshakeTimeouts, 2);
  } finally {
    for (const s of sockets) s.destroy();
    await server.close();
  }
});

test('item 2: pending handshakes are capped per server (over the cap the oldest is evicted)', async () => {
  const psk = crypto.randomBytes(32);
  const opts: ServerOptions = { port: 0, mode: 'sealed', psk, provider: softwareProvider(), maxPendingHandshakes: 8 };
  const server = new ChatServer(opts);
  const { port } = await server.listen();
  const sockets: net.Socket[] = [];
  try {
    for (let i = 0; i < 20; i++) sockets.push(await connectTo('127.0.0.1', port));
    const closed = await closedWithin(sockets, 3000, 12);
    assert.ok(closed >= 12, `only ${closed} of 20 silent sockets were closed with a cap of 8 pending handshakes`);
  } finally {
    for (const s of sockets) s.destroy();
    await server.close();
  }
});

test('item 4: a seal() failure toward one recipient drops that recipient only; the sender and the rest of the room carry on', async () => {
  const psk = crypto.randomBytes(32);
  const provider = trackingProvider();
  const server = new ChatServer({ port: 0, mode: 'sealed', psk, provider });
  const { port } = await server.listen();
  try {
    const alice = await client(port, 'alice', psk);
    await alice.waitFor(notice(/^welcome alice/));
    const before = provider.ciphers.length;
    const bob = await client(port, 'bob', psk);
    await bob.waitFor(notice(/^welcome bob/));
    const bobs = provider.ciphers.slice(before);
    const carol = await client(port, 'carol', psk);
    await alice.waitFor(notice(/carol joined/));
    for (const c of bobs) c.broken = true; // bob's /dev/crypto sessions fail from now on
    alice.conn.send({ t: 'say', text: 'first' });
    await carol.waitFor((m) => m.t === 'msg' && m.text === 'first');
    assert.match(await bob.ended, /connection lost|closed|ENODEV/);
    alice.conn.send({ t: 'say', text: 'second' });
    await carol.waitFor((m) => m.t === 'msg' && m.text === 'second');
    assert.equal(alice.conn.isOpen, true, 'the sender is still connected');
    alice.conn.quit();
    carol.conn.quit();
  } finally {
    await server.close();
  }
});

test('item 5: a flooding client does not starve the room (members stay connected, another member is served)', async () => {
  const psk = crypto.randomBytes(32);
  // Default 1 MiB output queues; 20 message tokens a second, bursts of 40.
  const opts: ServerOptions & Record<string, unknown> = { port: 0, mode: 'sealed', psk, provider: softwareProvider(), ratePerSecond: 20, rateBurst: 40 };
  const server = new ChatServer(opts);
  const { port } = await server.listen();
  try {
    const flood = await client(port, 'flood', psk);
    await flood.waitFor(notice(/^welcome flood/));
    const bob = await client(port, 'bob', psk);
    await bob.waitFor(notice(/^welcome bob/));
    const carol = await client(port, 'carol', psk);
    await carol.waitFor(notice(/^welcome carol/));
    const line = 'x'.repeat(3500);
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < 3000; i++) flood.conn.send({ t: 'say', text: `${i} ${line}` });
    bob.conn.send({ t: 'say', text: 'hello from bob' });
    await carol.waitFor((m) => m.t === 'msg' && m.text === 'hello from bob', 20_000);
    const floodSeen = carol.got.filter((m) => m.t === 'msg' && m.from === 'flood').length;
    assert.ok(floodSeen < 1000, `carol saw ${floodSeen} flood lines before bob's one line`);
    assert.equal(server.getStats().droppedSlow, 0, 'no reader was dropped because of the flood');
    assert.equal(carol.conn.isOpen && bob.conn.isOpen, true);
    await new Promise((r) => setTimeout(r, 1000));
    const elapsed = Number(process.hrtime.bigint() - t0) / 1e9;
    const accepted = server.getStats().received - 1;
    // An upper bound only (a slower machine makes it looser): the burst plus the refill, in lines of
    // 4 tokens each (1 + 1 per KiB beyond the first), plus the one line that went into debt.
    const bound = (40 + 20 * elapsed) / 4 + 1;
    assert.ok(accepted <= bound, `the server accepted ${accepted} flood lines in ${elapsed.toFixed(1)} s (bound ${bound.toFixed(0)})`);
    for (const c of [flood, bob, carol]) c.conn.socket.destroy();
  } finally {
    await server.close();
  }
});
