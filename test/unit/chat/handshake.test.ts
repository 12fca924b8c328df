/**
 * The version-2 handshake (issue 10, item 3): forward secrecy against a holder of the PSK, and a
 * clear "version" alert for a version-1 peer.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import { deriveSessionKeys, ephemeralKey, transcriptHash } from '../../../chat/keys';
import { ChatError, ChatProtocol } from '../../../chat/protocol';
import { softwareProvider } from '../../../chat/provider';
import { SealedCodec } from '../../../chat/record';
import { type Frame, FrameDecoder } from '../../../chat/wire';

const PSK = crypto.randomBytes(32);

interface Recorded {
  /** Every byte each side wrote, in order. */
  readonly i2r: Buffer[];
  readonly r2i: Buffer[];
  readonly secrets: string[];
  /** The X25519 private keys the two sides drew (initiator's first): what only the endpoints know. */
  readonly privates: Buffer[];
}

/** Two protocol instances wired back to back in memory; returns the wire recording. */
function converse(lines: readonly string[]): Recorded {
  const rec: Recorded = { i2r: [], r2i: [], secrets: [], privates: [] };
  const random = (n: number): Buffer => {
    const b = crypto.randomBytes(n);
    if (n === 32) rec.privates.push(b);
    return b;
  };
  const toR: Buffer[] = [];
  const toI: Buffer[] = [];
  const common = { mode: 'sealed' as const, psk: PSK, random, provider: softwareProvider(), onBye: () => undefined, onError: (e: ChatError) => assert.fail(e) };
  const ini = new ChatProtocol({
    ...common,
    role: 'initiator',
    readyPayload: Buffer.from('{"v":1,"nick":"alice","role":"client"}'),
    write: (b) => void (rec.i2r.push(b), toR.push(b)),
    onReady: () => undefined,
    onMessage: () => undefined,
  });
  const res = new ChatProtocol({
    ...common,
    role: 'responder',
    readyPayload: Buffer.from('{"v":1,"nick":"bob","role":"peer"}'),
    write: (b) => void (rec.r2i.push(b), toI.push(b)),
    onReady: () => undefined,
    onMessage: (p) => rec.secrets.push(p.toString()),
  });
  ini.start();
  res.start();
  for (const l of lines) ini.send(Buffer.from(l));
  // Deliver until quiet (passphrase mode and READY are answered from inside parse()).
  for (let turns = 0; (toR.length > 0 || toI.length > 0) && turns < 100; turns++) {
    for (const b of toR.splice(0)) res.parse(b);
    for (const b of toI.splice(0)) ini.parse(b);
  }
  return rec;
}

function frames(chunks: readonly Buffer[]): Frame[] {
  const d = new FrameDecoder();
  return chunks.flatMap((c) => d.push(c));
}

test('a recorded handshake plus the PSK does not open the recorded messages', () => {
  const secret = 'the private /msg nobody else may read';
  const rec = converse([secret]);
  assert.deepEqual(rec.secrets, [secret], 'the conversation itself worked');
  const sent = frames(rec.i2r);
  const helloI = sent[0]!.body;
  const helloR = frames(rec.r2i)[0]!.body;
  const message = sent.find((f) => f.type === 4)!;
  assert.ok(message, 'a MESSAGE frame was recorded');
  // The eavesdropper knows the PSK and every byte on the wire.
  const v1 = (label: string): Buffer => Buffer.from(crypto.hkdfSync('sha256', PSK, Buffer.concat([helloI.subarray(2, 34), helloR.subarray(2, 34)]), label, 32));
  const helloFrameI = Buffer.concat([sent[0]!.header, helloI]);
  const helloFrameR = Buffer.concat([frames(rec.r2i)[0]!.header, helloR]);
  const th = transcriptHash(helloFrameI, helloFrameR);
  const pubI = helloI.subarray(3, 35);
  const pubR = helloR.subarray(3, 35);
  const guess = (dh: Buffer): [Buffer, Buffer] => {
    const k = deriveSessionKeys(PSK, dh, th, 'initiator');
    return [k.send.enc, k.send.mac];
  };
  const attempts: Array<[string, Buffer, Buffer]> = [
    ['the version-1 schedule (HKDF(PSK, nonces))', v1('vlab-chat/1 i2r enc'), v1('vlab-chat/1 i2r mac')],
    ['the version-2 schedule with an all-zero DH share', ...guess(Buffer.alloc(32))],
    ['the version-2 schedule with a public key as the DH share', ...guess(Buffer.from(pubI))],
    ['the version-2 schedule with the other public key', ...guess(Buffer.from(pubR))],
    ['the version-2 schedule with the eavesdropper\'s own X25519 against the initiator', ...guess(ephemeralKey(crypto.randomBytes(32)).agree(pubI))],
  ];
  const tryOpen = (enc: Buffer, mac: Buffer): string | undefined => {
    const codec = new SealedCodec(softwareProvider(), { enc, mac });
    const ready = sent.find((f) => f.type === 3)!;
    try {
      codec.open(ready.header, ready.body);
      return codec.open(message.header, message.body).toString();
    } catch {
      return undefined;
    }
  };
  for (const [what, enc, mac] of attempts) assert.equal(tryOpen(enc, mac), undefined, `${what} opened the recorded message`);
  // Control: with an endpoint's ephemeral private key (which is never stored or sent) it opens.
  const dh = ephemeralKey(rec.privates[0]!).agree(pubR);
  assert.equal(tryOpen(...guess(dh)), secret, 'the transcript really holds the message under the DH-derived keys');
});

test('a version-1 peer gets a "version" error and an ALERT it can read (version-1 header)', () => {
  const out: Buffer[] = [];
  let error: ChatError | undefined;
  const p = new ChatProtocol({
    role: 'responder', mode: 'sealed', psk: PSK, provider: softwareProvider(), readyPayload: Buffer.from('{}'),
    write: (b) => out.push(b), onReady: () => undefined, onMessage: () => undefined, onBye: () => undefined,
    onError: (e) => (error = e),
  });
  p.start();
  // A version-1 HELLO: header (ver 1, type 1, flags 0, length 34), mode 1, role 1, 32-byte nonce.
  p.parse(Buffer.concat([Buffer.from('0101000000000022' + '0101', 'hex'), crypto.randomBytes(32)]));
  assert.ok(error, 'the version-1 HELLO was refused');
  assert.equal(error.code, 'version');
  assert.match(error.message, /version 1\b.*speaks 2/);
  const alert = out[out.length - 1]!;
  assert.equal(alert[0], 1, 'the ALERT carries a version-1 header so the old peer can read it');
  assert.equal(alert[1], 2, 'frame type ALERT');
  assert.equal(alert[8], 6, 'alert code 6 (version)');
  assert.match(alert.subarray(9).toString(), /version 1; this side speaks 2/);
});
