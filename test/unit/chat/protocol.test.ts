import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import { ChatError, ChatProtocol, type ChatMode, sanitize } from '../../../chat/protocol';
import { type CryptoProvider, cryptodevProvider, softwareProvider } from '../../../chat/provider';
import { probeCryptodev } from '../../../addon/lib/cryptodev';

interface Side {
  p: ChatProtocol;
  out: Buffer[];
  ready: Buffer[];
  messages: string[];
  byes: number;
  errors: ChatError[];
}

function side(role: 'initiator' | 'responder', mode: ChatMode, psk: Buffer | undefined, provider: CryptoProvider | undefined, random?: (n: number) => Buffer): Side {
  const s = { out: [], ready: [], messages: [], byes: 0, errors: [] } as unknown as Side;
  s.p = new ChatProtocol({
    role, mode, ...(psk ? { psk } : {}), ...(provider ? { provider } : {}), readyPayload: Buffer.from(role), ...(random ? { random } : {}),
    write: (b) => s.out.push(b),
    onReady: (b) => s.ready.push(b),
    onMessage: (b) => s.messages.push(b.toString()),
    onBye: () => s.byes++,
    onError: (e) => s.errors.push(e),
  });
  return s;
}

/** Delivers queued output both ways until quiet; returns every byte each side sent. */
function pump(a: Side, b: Side, tap?: (from: 'a' | 'b', bytes: Buffer) => Buffer | undefined): void {
  for (let guard = 0; guard < 1000 && (a.out.length || b.out.length); guard++) {
    for (const [from, to, name] of [[a, b, 'a'], [b, a, 'b']] as const) {
      const chunks = from.out.splice(0);
      for (const c of chunks) {
        const bytes = tap ? tap(name, c) : c;
        if (bytes) to.p.parse(bytes);
      }
    }
  }
}

function pair(pskA = crypto.randomBytes(32), pskB = pskA, provA = softwareProvider(), provB = softwareProvider()): [Side, Side] {
  const a = side('initiator', 'sealed', pskA, provA);
  const b = side('responder', 'sealed', pskB, provB);
  a.p.start();
  b.p.start();
  return [a, b];
}

test('software ↔ software: handshake, messages both ways, BYE', () => {
  const [a, b] = pair();
  a.p.send(Buffer.from('queued before the handshake'));
  pump(a, b);
  assert.equal(a.p.state, 'open');
  assert.equal(b.p.state, 'open');
  assert.deepEqual(a.ready.map(String), ['responder']);
  assert.deepEqual(b.ready.map(String), ['initiator']);
  b.p.send(Buffer.from('hello a'));
  a.p.send(Buffer.from('hello b'));
  pump(a, b);
  assert.deepEqual(a.messages, ['hello a']);
  assert.deepEqual(b.messages, ['queued before the handshake', 'hello b']);
  a.p.bye();
  pump(a, b);
  assert.equal(b.byes, 1);
  assert.throws(() => a.p.send(Buffer.from('x')), /closing/);
  assert.deepEqual([...a.errors, ...b.errors], []);
});

test('wrong key: both sides report authentication failed and deliver nothing', () => {
  const [a, b] = pair(crypto.randomBytes(32), crypto.randomBytes(32));
  a.p.send(Buffer.from('secret'));
  pump(a, b);
  for (const s of [a, b]) {
    assert.equal(s.errors.length, 1);
    assert.equal(s.errors[0]!.code, 'auth');
    assert.match(s.errors[0]!.message, /authentication failed/);
    assert.deepEqual(s.messages, []);
    assert.deepEqual(s.ready, []);
    assert.equal(s.p.state, 'failed');
  }
});

test('a replayed frame is rejected as a replay', () => {
  const [a, b] = pair();
  pump(a, b);
  a.p.send(Buffer.from('once'));
  const frame = a.out[0]!;
  pump(a, b);
  b.p.parse(frame);
  assert.equal(b.errors[0]?.code, 'replay');
  assert.match(b.errors[0]!.message, /replayed or reordered frame \(sequence 1, expected 2\)/);
  assert.deepEqual(b.messages, ['once']);
});

test('reordered frames are rejected', () => {
  const [a, b] = pair();
  pump(a, b);
  a.p.send(Buffer.from('first'));
  a.p.send(Buffer.from('second'));
  const [f1, f2] = a.out.splice(0);
  b.p.parse(f2!);
  assert.equal(b.errors[0]?.code, 'replay');
  assert.ok(f1);
  assert.deepEqual(b.messages, []);
});

test('a frame from another connection with the same key does not verify (fresh keys per connection)', () => {
  const psk = crypto.randomBytes(32);
  const [a1, b1] = pair(psk, psk);
  pump(a1, b1);
  a1.p.send(Buffer.from('recorded'));
  const recorded = a1.out[0]!;
  const [a2, b2] = pair(psk, psk);
  pump(a2, b2);
  b2.p.parse(recorded);
  assert.equal(b2.errors[0]?.code, 'auth');
});

test('any flipped bit in a sealed frame (header, seq, IV, ciphertext, tag) fails authentication', () => {
  for (const offset of [1, 7, 10, 20, 40, 70]) {
    const [a, b] = pair();
    pump(a, b);
    a.p.send(Buffer.from('integrity matters'));
    const f = Buffer.from(a.out.splice(0)[0]!);
    f[offset]! ^= 0x01;
    b.p.parse(f);
    b.p.end(); // a longer announced length waits for bytes that never come
    assert.ok(b.errors.length === 1 && ['auth', 'malformed', 'truncated'].includes(b.errors[0]!.code), `offset ${offset}: ${b.errors[0]?.message}`);
    assert.deepEqual(b.messages, []);
  }
});

test('crypto mode mismatch is refused clearly on both sides', () => {
  const a = side('initiator', 'none', undefined, undefined);
  const b = side('responder', 'sealed', crypto.randomBytes(32), softwareProvider());
  a.p.start();
  b.p.start();
  pump(a, b);
  assert.match(a.errors[0]!.message, /crypto mismatch: the peer uses AES-256-CBC \+ HMAC-SHA256, this side no encryption/);
  assert.match(b.errors[0]!.message, /crypto mismatch/);
});

test('plain mode (--crypto none) carries text in the clear', () => {
  const a = side('initiator', 'none', undefined, undefined);
  const b = side('responder', 'none', undefined, undefined);
  a.p.start();
  b.p.start();
  pump(a, b);
  a.p.send(Buffer.from('visible text'));
  assert.ok(a.out[0]!.includes(Buffer.from('visible text')));
  pump(a, b);
  assert.deepEqual(b.messages, ['visible text']);
});

test('end of stream mid-conversation is "connection lost"; mid-frame is "truncated"', () => {
  const [a, b] = pair();
  pump(a, b);
  b.p.end();
  assert.equal(b.errors[0]?.code, 'closed');
  assert.match(b.errors[0]!.message, /connection lost/);
  const [c, d] = pair();
  pump(c, d);
  c.p.send(Buffer.from('cut'));
  d.p.parse(c.out[0]!.subarray(0, 20));
  d.p.end();
  assert.equal(d.errors[0]?.code, 'truncated');
});

test('identical inputs give byte-identical frames from both providers', { skip: probeCryptodev().ok ? false : `cryptodev provider: ${(probeCryptodev() as { reason: string }).reason}` }, () => {
  const fixed = (n: number): Buffer => Buffer.alloc(n, 0x5a);
  const psk = Buffer.alloc(32, 9);
  // A whole connection against a software peer, so the records after READY (sealed and MACed by
  // the provider under test) are compared too, not only the handshake node:crypto seals.
  const run = (provider: CryptoProvider): Buffer[] => {
    const a = side('initiator', 'sealed', psk, provider, fixed);
    const b = side('responder', 'sealed', psk, softwareProvider(), fixed);
    const sent: Buffer[] = [];
    a.p.start();
    b.p.start();
    pump(a, b, (from, bytes) => (from === 'a' && sent.push(bytes), bytes));
    assert.equal(a.p.state, 'open');
    a.p.send(Buffer.from('the same bytes on the wire'));
    a.p.send(Buffer.alloc(1000, 0x41));
    pump(a, b, (from, bytes) => (from === 'a' && sent.push(bytes), bytes));
    assert.deepEqual(b.messages, ['the same bytes on the wire', 'A'.repeat(1000)]);
    a.p.dispose();
    b.p.dispose();
    return sent;
  };
  const hw = cryptodevProvider();
  try {
    assert.deepEqual(run(hw), run(softwareProvider()));
  } finally {
    hw.close();
  }
});

test('cryptodev ↔ software interoperate', { skip: probeCryptodev().ok ? false : `cryptodev provider: ${(probeCryptodev() as { reason: string }).reason}` }, () => {
  const hw = cryptodevProvider();
  try {
    const psk = crypto.randomBytes(32);
    const [a, b] = pair(psk, psk, hw, softwareProvider());
    pump(a, b);
    a.p.send(Buffer.from('from the device'));
    b.p.send(Buffer.from('from openssl'));
    pump(a, b);
    assert.deepEqual(b.messages, ['from the device']);
    assert.deepEqual(a.messages, ['from openssl']);
  } finally {
    hw.close();
  }
});

test('sanitize strips terminal control sequences from peer text', () => {
  assert.equal(sanitize('ok\u001b[2Jboom\r\n\u0007'), 'ok\uFFFD[2Jboom\uFFFD\uFFFD\uFFFD');
  assert.equal(sanitize('tab\tstays'), 'tab\tstays');
});

test('a READY and a large MESSAGE in one read: the handshake limit is lifted between the two frames', () => {
  const [a, b] = pair(); // a initiator, b responder
  const aHello = a.out.splice(0);
  const bHello = b.out.splice(0);
  for (const x of aHello) b.p.parse(x); // b answers nothing yet: the initiator proves the key first
  assert.deepEqual(b.out, []);
  for (const x of bHello) a.p.parse(x); // a answers with its READY
  for (const x of a.out.splice(0)) b.p.parse(x); // b verifies a's READY, sends its own: open
  assert.equal(b.p.state, 'open');
  b.p.send(Buffer.alloc(3000, 0x61));
  a.p.parse(Buffer.concat(b.out.splice(0))); // b's READY and its 3000-byte MESSAGE, coalesced
  assert.deepEqual(a.errors, []);
  assert.equal(a.p.state, 'open');
  assert.equal(a.messages[0]?.length, 3000);
});
