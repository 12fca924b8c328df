/**
 * Known-answer tests: the expected keys and frames are built here from the OpenSSL command-line tool
 * (X25519 via pkeyutl -derive, SHA-256, HKDF, AES-256-CBC, HMAC-SHA256) and hand-written header
 * bytes, independently of node:crypto and of the encoder under test. A second path recomputes the
 * schedule step by step with raw node:crypto primitives (HMAC as HKDF-Extract/Expand, RFC 5869).
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as nodeCrypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { deriveSessionKeys, ephemeralKey, pskFromPassphrase, transcriptHash } from '../../../chat/keys';
import { PlainCodec, SealedCodec } from '../../../chat/record';
import { softwareProvider } from '../../../chat/provider';
import { ChatProtocol } from '../../../chat/protocol';
import { FrameType } from '../../../chat/wire';

const PSK = Buffer.from('000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f', 'hex');
// RFC 7748 section 6.1: Alice's and Bob's X25519 private keys.
const PRIV_I = Buffer.from('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a', 'hex');
const PRIV_R = Buffer.from('5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb', 'hex');
const IV = Buffer.alloc(16, 0x33);

function openssl(args: string[], input?: Buffer): Buffer {
  return execFileSync('openssl', args, { input: input ?? Buffer.alloc(0), maxBuffer: 1 << 20 });
}
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vlab-kat-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));
function derFile(name: string, prefixHex: string, raw: Buffer): string {
  const f = path.join(tmp, name);
  fs.writeFileSync(f, Buffer.concat([Buffer.from(prefixHex, 'hex'), raw]));
  return f;
}
/** openssl's own X25519: public key from the private one, and the shared secret. */
function opensslPublic(priv: Buffer): Buffer {
  const der = openssl(['pkey', '-inform', 'DER', '-in', derFile('p.der', '302e020100300506032b656e04220420', priv), '-pubout', '-outform', 'DER']);
  return der.subarray(der.length - 32);
}
function opensslX25519(priv: Buffer, peerPub: Buffer): Buffer {
  return openssl(['pkeyutl', '-derive', '-keyform', 'DER', '-inkey', derFile('a.der', '302e020100300506032b656e04220420', priv),
    '-peerform', 'DER', '-peerkey', derFile('b.der', '302a300506032b656e032100', peerPub)]);
}
function opensslHkdf(ikm: Buffer, salt: Buffer, label: string): Buffer {
  return openssl(['kdf', '-binary', '-keylen', '32', '-kdfopt', 'digest:SHA256', '-kdfopt', `hexkey:${ikm.toString('hex')}`,
    '-kdfopt', `hexsalt:${salt.toString('hex')}`, '-kdfopt', `info:${label}`, 'HKDF']);
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
  const header = Buffer.from([2, type, 0, 0, bodyLen >>> 24, (bodyLen >>> 16) & 0xff, (bodyLen >>> 8) & 0xff, bodyLen & 0xff]);
  const seqBytes = Buffer.from([0, 0, 0, 0, 0, 0, 0, seq]);
  return Buffer.concat([header, seqBytes, IV, ct, hmac(macKey, Buffer.concat([header, seqBytes, IV, ct]))]);
}
/** HELLO frame by hand: header (ver 2, type 1, length 51), mode 1, role, key kind 0, public key, salt. */
function helloFrame(role: number, pub: Buffer, salt = Buffer.alloc(16)): Buffer {
  return Buffer.concat([Buffer.from('0201000000000033', 'hex'), Buffer.from([1, role, 0]), pub, salt]);
}

const PUB_I = opensslPublic(PRIV_I);
const PUB_R = opensslPublic(PRIV_R);
const HELLO_I = helloFrame(1, PUB_I);
const HELLO_R = helloFrame(2, PUB_R);
const TH = openssl(['dgst', '-sha256', '-binary'], Buffer.concat([HELLO_I, HELLO_R]));
const DH = opensslX25519(PRIV_I, PUB_R);
const label = (d: string): Buffer => opensslHkdf(Buffer.concat([PSK, DH]), TH, `vlab-chat/2 ${d}`);

test('X25519 agrees with openssl and with RFC 7748 section 6.1 (public keys and shared secret)', () => {
  assert.equal(PUB_I.toString('hex'), '8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a');
  assert.equal(PUB_R.toString('hex'), 'de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f');
  assert.equal(DH.toString('hex'), '4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742');
  const i = ephemeralKey(PRIV_I);
  const r = ephemeralKey(PRIV_R);
  assert.deepEqual(i.publicKey, PUB_I);
  assert.deepEqual(r.publicKey, PUB_R);
  assert.deepEqual(i.agree(PUB_R), DH);
  assert.deepEqual(r.agree(PUB_I), DH);
  assert.throws(() => i.agree(Buffer.alloc(32)), /low-order/, 'the all-zero point is refused');
});

test('session keys equal OpenSSL HKDF-SHA256(PSK ‖ X25519, SHA-256(HELLO_i ‖ HELLO_r)) with the documented labels', () => {
  assert.deepEqual(transcriptHash(HELLO_I, HELLO_R), TH);
  const k = deriveSessionKeys(PSK, DH, TH, 'initiator');
  assert.deepEqual(k.send.enc, label('i2r enc'));
  assert.deepEqual(k.send.mac, label('i2r mac'));
  assert.deepEqual(k.receive.enc, label('r2i enc'));
  assert.deepEqual(k.receive.mac, label('r2i mac'));
  const r = deriveSessionKeys(PSK, DH, TH, 'responder');
  assert.deepEqual(r.send, k.receive);
  assert.deepEqual(r.receive, k.send);
});

test('a second path: RFC 5869 HKDF spelled out with raw HMAC-SHA256 gives the same keys', () => {
  const hmacRaw = (key: Buffer, data: Buffer): Buffer => nodeCrypto.createHmac('sha256', key).update(data).digest();
  const prk = hmacRaw(TH, Buffer.concat([PSK, DH])); // Extract: PRK = HMAC(salt, IKM)
  const okm = (info: string): Buffer => hmacRaw(prk, Buffer.concat([Buffer.from(info), Buffer.from([1])])); // Expand, one block (L = 32)
  const k = deriveSessionKeys(PSK, DH, TH, 'initiator');
  assert.deepEqual(k.send.enc, okm('vlab-chat/2 i2r enc'));
  assert.deepEqual(k.receive.mac, okm('vlab-chat/2 r2i mac'));
});

test('passphrase keys equal openssl scrypt (N=2^17, r=8, p=1) under the announced salt', () => {
  const salt = Buffer.from('00112233445566778899aabbccddeeff', 'hex');
  const want = openssl(['kdf', '-binary', '-keylen', '32', '-kdfopt', 'pass:correct horse battery staple', '-kdfopt', `hexsalt:${salt.toString('hex')}`,
    '-kdfopt', 'n:131072', '-kdfopt', 'r:8', '-kdfopt', 'p:1', '-kdfopt', 'maxmem_bytes:268435456', 'SCRYPT']);
  assert.deepEqual(pskFromPassphrase('correct horse battery staple', salt), want);
});

test('sealed records equal openssl enc + dgst output, for 0, 15, 16 and 1000-byte payloads', () => {
  const enc = label('i2r enc');
  const mac = label('i2r mac');
  const codec = new SealedCodec(softwareProvider(), { enc, mac }, () => Buffer.from(IV));
  [0, 15, 16, 1000].forEach((n, seq) => {
    const payload = Buffer.alloc(n, 0x41 + seq);
    assert.deepEqual(codec.seal(FrameType.MESSAGE, payload), expectedSealed(4, seq, enc, mac, payload), `${n}-byte payload`);
  });
});

test('plain records are header ‖ seq ‖ payload (hand-computed bytes)', () => {
  const c = new PlainCodec();
  assert.deepEqual(c.seal(FrameType.MESSAGE, Buffer.from('hi')), Buffer.from('02040000' + '0000000a' + '0000000000000000' + '6869', 'hex'));
  assert.deepEqual(c.seal(FrameType.BYE, Buffer.alloc(0)), Buffer.from('02050000' + '00000008' + '0000000000000001', 'hex'));
});

test('the protocol emits the hand-built HELLO, then a READY equal to the OpenSSL-computed frame', () => {
  const out: Buffer[] = [];
  const p = new ChatProtocol({
    role: 'initiator', mode: 'sealed', psk: PSK, provider: softwareProvider(), readyPayload: Buffer.from('{"ready":1}'),
    random: (n) => (n === 32 ? Buffer.from(PRIV_I) : Buffer.from(IV)),
    write: (b) => out.push(b), onReady: () => undefined, onMessage: () => undefined, onBye: () => undefined,
    onError: (e) => assert.fail(e),
  });
  p.start();
  assert.deepEqual(out[0], HELLO_I);
  p.parse(HELLO_R);
  assert.deepEqual(out[1], expectedSealed(3, 0, label('i2r enc'), label('i2r mac'), Buffer.from('{"ready":1}')));
});
