import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import type { ChatMessage } from '../../../chat/messages';
import { softwareProvider } from '../../../chat/provider';
import { ChatServer } from '../../../chat/server';
import { type TestClient, chatClient as client } from './helpers';

const text = (m: ChatMessage): string => ('text' in m ? m.text : '');
const notice = (re: RegExp) => (m: ChatMessage): boolean => m.t === 'notice' && re.test(m.text);

test('nicknames, rooms, /join /part /list /who /msg /nick and leave notices', async () => {
  const psk = crypto.randomBytes(32);
  const server = new ChatServer({ port: 0, mode: 'sealed', psk, provider: softwareProvider() });
  const { port } = await server.listen();
  try {
    const alice = await client(port, 'alice', 'sealed', psk);
    await alice.waitFor(notice(/^welcome alice/));
    const bob = await client(port, 'bob', 'sealed', psk);
    await alice.waitFor(notice(/bob joined #lobby/));
    const alice2 = await client(port, 'alice', 'sealed', psk);
    await alice2.waitFor(notice(/^welcome alice2/));

    bob.say('/join #dev');
    alice.say('/join #dev');
    await bob.waitFor(notice(/alice joined #dev/));
    alice.say('only for #dev');
    const m = await bob.waitFor((x) => x.t === 'msg' && x.to === '#dev');
    assert.deepEqual(m, { t: 'msg', from: 'alice', to: '#dev', text: 'only for #dev' });
    alice2.say('/who #dev');
    await alice2.waitFor(notice(/^#dev: alice bob$/));
    alice2.say('/list');
    await alice2.waitFor(notice(/^rooms: #dev \(2\), #lobby \(3\)$/));
    alice2.say('/msg BOB psst');
    assert.deepEqual(await bob.waitFor((x) => x.t === 'msg' && x.to === 'bob'), { t: 'msg', from: 'alice2', to: 'bob', text: 'psst' });
    alice2.say('/msg nobody hi');
    await alice2.waitFor((x) => x.t === 'error' && /no such nick nobody/.test(x.text));
    bob.say('/nick robert');
    await alice.waitFor(notice(/bob is now known as robert/));
    bob.say('/nick alice');
    await bob.waitFor((x) => x.t === 'error' && /nick alice is taken/.test(x.text));
    bob.say('/part #dev');
    await alice.waitFor(notice(/robert left #dev$/));
    bob.say('/frobnicate');
    await bob.waitFor((x) => x.t === 'error' && /unknown command \/frobnicate/.test(x.text));
    assert.equal(alice2.got.filter((x) => text(x) === 'only for #dev').length, 0, 'a room message stays in its room');

    bob.conn.quit();
    await alice.waitFor(notice(/robert left #lobby \(quit\)/));
    alice2.conn.abort('test: pulled the cable');
    await alice.waitFor(notice(/alice2 left #lobby \(connection lost/));
    alice.conn.quit();
    assert.equal(await alice.ended, 'quit');
  } finally {
    await server.close();
  }
});

test('a client with the wrong key is refused; everybody else carries on', async () => {
  const psk = crypto.randomBytes(32);
  const server = new ChatServer({ port: 0, mode: 'sealed', psk, provider: softwareProvider() });
  const { port } = await server.listen();
  try {
    const good = await client(port, 'good', 'sealed', psk);
    await good.waitFor(notice(/^welcome/));
    const bad = await client(port, 'bad', 'sealed', crypto.randomBytes(32));
    assert.match(await bad.ended, /authentication failed/);
    good.say('/who');
    await good.waitFor(notice(/^#lobby: good$/));
    good.conn.quit();
  } finally {
    await server.close();
  }
});

test('50 clients, one never reads: the others keep chatting, its queue stays bounded, it is dropped', async () => {
  const maxQueue = 256 * 1024;
  const psk = crypto.randomBytes(32);
  // No rate limit here: this test is about the output queue, so the sender must outrun a reader.
  const server = new ChatServer({ port: 0, mode: 'sealed', psk, provider: softwareProvider(), maxQueuedBytes: maxQueue, ratePerSecond: 0 });
  const { port } = await server.listen();
  try {
    const clients: TestClient[] = [];
    for (let i = 0; i < 50; i++) {
      const c = await client(port, `c${i}`, 'sealed', psk);
      await c.waitFor(notice(/^welcome/));
      clients.push(c);
    }
    const [sender, r1, r2] = clients as [TestClient, TestClient, TestClient];
    const stuck = clients[49]!;
    for (const c of [sender, r1, r2, stuck]) {
      c.say('/join #flood');
      await c.waitFor(notice(/^c\d+ joined #flood$|now talking/));
    }
    await r1.waitFor(notice(/c49 joined #flood/));
    stuck.conn.socket.pause(); // never reads again: the kernel buffers fill, then the server's queue
    // More than the ~4 MB the kernel buffers on loopback for a socket that is not read.
    const N = 1500;
    const filler = 'x'.repeat(3900);
    // Sent in batches paced by the readers: they share this process's event loop with the server,
    // so an unpaced burst could overrun a reader that does read (flaky under CPU load), while the
    // stuck client's backlog grows the same either way.
    for (let i = 0; i < N; i++) {
      sender.say(`${i} ${filler}`);
      if ((i + 1) % 100 === 0) for (const r of [r1, r2]) await r.waitFor((m) => m.t === 'msg' && m.text.startsWith(`${i} `), 60_000);
    }
    // Meanwhile everyone in #lobby (which the stuck client is in too) keeps talking.
    const lobby = clients.slice(3, 49);
    lobby.forEach((c, i) => c.say(`lobby line ${i}`));
    for (const r of [r1, r2]) await r.waitFor((m) => m.t === 'msg' && m.text.startsWith(`${N - 1} `), 60_000);
    for (const r of [r1, r2]) assert.equal(r.got.filter((m) => m.t === 'msg' && m.to === '#flood').length, N, 'every flood message, none lost');
    await Promise.all(lobby.map((c) => c.waitFor(() => c.got.filter((m) => m.t === 'msg' && m.to === '#lobby').length === lobby.length - 1, 30_000)));
    await r1.waitFor(notice(/c49 left #flood \(output queue over 262144 bytes/), 30_000);
    const stats = server.getStats();
    assert.equal(stats.droppedSlow, 1, 'only the client that never reads is dropped');
    assert.ok(stats.maxQueuedSeen <= maxQueue + 64 * 1024, `queue peaked at ${stats.maxQueuedSeen}`);
    assert.equal(stats.clients, 49);
    for (const c of clients.slice(0, 49)) c.conn.quit();
  } finally {
    await server.close();
  }
});

test('50 encrypted clients all hear each other', async () => {
  const psk = crypto.randomBytes(32);
  const server = new ChatServer({ port: 0, mode: 'sealed', psk, provider: softwareProvider() });
  const { port } = await server.listen();
  try {
    const clients = await Promise.all(Array.from({ length: 50 }, (_, i) => client(port, `n${i}`, 'sealed', psk)));
    await Promise.all(clients.map((c) => c.waitFor(notice(/^welcome/))));
    await clients[0]!.waitFor(notice(/n49 joined|joined #lobby/));
    // Wait until the room is complete before talking, so everyone is there to hear everyone.
    for (;;) {
      clients[0]!.say('/who');
      const who = await clients[0]!.waitFor(notice(/^#lobby: /));
      if (who.t === 'notice' && who.text.split(' ').length === 51) break;
      clients[0]!.got.length = 0;
      await new Promise((r) => setTimeout(r, 50));
    }
    clients.forEach((c, i) => c.say(`hello from ${i}`));
    await Promise.all(clients.map((c) => c.waitFor(() => c.got.filter((m) => m.t === 'msg').length === 49)));
    for (const c of clients) c.conn.quit();
  } finally {
    await server.close();
  }
});
