/**
 * Known-answer tests: the expected frames are built here from the OpenSSL command-line tool (HKDF,
 * AES-256-CBC, HMAC-SHA256) and hand-written header bytes, independently of node:crypto and of the
 * encoder under test.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { deriveSessionKeys } from '../../../chat/keys';
import { PlainCodec, SealedCodec } from '../../../chat/record';
import { softwareProvider } from '../../../chat/provider';
import { ChatProtocol } from '../../../chat/protocol';
import { FrameType } from '../../../chat/wire';

const PSK = Buffer.from('000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f', 'hex');
const NONCE_I = Buffer.alloc(32, 0x11);
const NONCE_R = Buffer.alloc(32, 0x22);
const IV = Buffer.alloc(16, 0x33);

function openssl(args: string[], input?: Buffer): Buffer {
  return execFileSync('openssl', args, { input: input ?? Buffer.alloc(0), maxBuffer: 1 << 20 });
}
function hkdf(label: string): Buffer {
  return openssl(['kdf', '-binary', '-keylen', '32', '-kdfopt', 'digest:SHA256', '-kdfopt', `hexkey:${PSK.toString('hex')}`,
    '-kdfopt', `hexsalt:${Buffer.concat([NONCE_I, NONCE_R]).toString('hex')}`, '-kdfopt', `info:${label}`, 'HKDF']);
}
function aesCbc(key: Buffer, iv: Buffer, plain: Buffer): Buffer {
  return openssl(['enc', '-aes-256-cbc', '-K', key.toString('hex'), '-iv', iv.toString('hex')], plain); // PKCS#7 padding is openssl's default
}
function hmac(key: Buffer, data: Buffer): Buffer {
  return openssl(['dgst', '-sha256', '-mac', 'HMAC', '-macopt', `hexkey:${key.toString('hex')}`, '-binary'], data);
}
/** header ‖ seq ‖ IV ‖ AES-CBC ‖ HMAC, assembled by hand. */
function expectedSealed(type: number, seq: number, encKey: Buffer, macKey: Buffer, payload: Buffer): Buffer {
  const ct = aesCbc(encKey, IV, payload);
  const bodyLen = 8 + 16 + ct.length + 32;
  const header = Buffer.from([1, type, 0, 0, bodyLen >>> 24, (bodyLen >>> 16) & 0xff, (bodyLen >>> 8) & 0xff, bodyLen & 0xff]);
  const seqBytes = Buffer.from([0, 0, 0, 0, 0, 0, 0, seq]);
  return Buffer.concat([header, seqBytes, IV, ct, hmac(macKey, Buffer.concat([header, seqBytes, IV, ct]))]);
}

test('session keys equal OpenSSL HKDF-SHA256 with the documented labels', () => {
  const k = deriveSessionKeys(PSK, 'initiator', NONCE_I, NONCE_R);
  assert.deepEqual(k.send.enc, hkdf('vlab-chat/1 i2r enc'));
  assert.deepEqual(k.send.mac, hkdf('vlab-chat/1 i2r mac'));
  assert.deepEqual(k.receive.enc, hkdf('vlab-chat/1 r2i enc'));
  assert.deepEqual(k.receive.mac, hkdf('vlab-chat/1 r2i mac'));
  const r = deriveSessionKeys(PSK, 'responder', NONCE_I, NONCE_R);
  assert.deepEqual(r.send, k.receive);
});

test('sealed records equal openssl enc + dgst output, for 0, 15, 16 and 1000-byte payloads', () => {
  const enc = hkdf('vlab-chat/1 i2r enc');
  const mac = hkdf('vlab-chat/1 i2r mac');
  const codec = new SealedCodec(softwareProvider(), { enc, mac }, () => Buffer.from(IV));
  [0, 15, 16, 1000].forEach((n, seq) => {
    const payload = Buffer.alloc(n, 0x41 + seq);
    assert.deepEqual(codec.seal(FrameType.MESSAGE, payload), expectedSealed(4, seq, enc, mac, payload), `${n}-byte payload`);
  });
});

test('plain records are header ‖ seq ‖ payload (hand-computed bytes)', () => {
  const c = new PlainCodec();
  assert.deepEqual(c.seal(FrameType.MESSAGE, Buffer.from('hi')), Buffer.from('01040000' + '0000000a' + '0000000000000000' + '6869', 'hex'));
  assert.deepEqual(c.seal(FrameType.BYE, Buffer.alloc(0)), Buffer.from('01050000' + '00000008' + '0000000000000001', 'hex'));
});

test('the protocol emits HELLO then a READY equal to the OpenSSL-computed frame', () => {
  const out: Buffer[] = [];
  const randoms = [NONCE_I];
  const p = new ChatProtocol({
    role: 'initiator', mode: 'sealed', psk: PSK, provider: softwareProvider(), readyPayload: Buffer.from('{"ready":1}'),
    random: (n) => (n === 32 ? randoms.shift()! : Buffer.from(IV)),
    write: (b) => out.push(b), onReady: () => undefined, onMessage: () => undefined, onBye: () => undefined,
    onError: (e) => assert.fail(e),
  });
  p.start();
  assert.deepEqual(out[0], Buffer.concat([Buffer.from('0101000000000022' + '0101', 'hex'), NONCE_I]));
  // The responder's HELLO: mode 1 (sealed), role 2, its nonce.
  p.parse(Buffer.concat([Buffer.from('0101000000000022' + '0102', 'hex'), NONCE_R]));
  assert.deepEqual(out[1], expectedSealed(3, 0, hkdf('vlab-chat/1 i2r enc'), hkdf('vlab-chat/1 i2r mac'), Buffer.from('{"ready":1}')));
});
