/**
 * Pre-shared keys and the version-2 key schedule.
 *
 * A key file holds either one 256-bit pre-shared key (PSK) as 64 hex digits, or a passphrase
 * (`passphrase TEXT`), which each server stretches with scrypt under its own random salt (sent in
 * the clear in its HELLO). Lines starting with '#' are comments.
 *
 * Per connection each side makes an ephemeral X25519 key pair; the session keys are
 *   HKDF-SHA256(ikm = PSK ‖ X25519(eph_mine, eph_peer), salt = SHA-256(HELLO_i ‖ HELLO_r), info = label)
 * for the labels "vlab-chat/2 {i2r,r2i} {enc,mac}". The PSK authenticates (a wrong one fails the
 * READY), the X25519 secret gives forward secrecy (the PSK alone no longer opens recorded traffic),
 * and the transcript hash binds every HELLO byte (modes, roles, public keys, salt).
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';

export const PSK_BYTES = 32;
export const X25519_BYTES = 32;
export const SALT_BYTES = 16;
const KEY_FILE_MAX_BYTES = 4096;
/** N=2^17, r=8 (OWASP's minimum): 128 MiB and ~0.55 s per derivation here; run once per salt and cached. */
export const SCRYPT = { N: 1 << 17, r: 8, p: 1, maxmem: 256 * 1024 * 1024 } as const;
/** DER prefixes that wrap a raw 32-byte X25519 key (RFC 8410) so node:crypto can import it. */
const X25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex');
const X25519_SPKI_PREFIX = Buffer.from('302a300506032b656e032100', 'hex');

export class KeyFileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'KeyFileError';
  }
}

export function generatePsk(): Buffer {
  return crypto.randomBytes(PSK_BYTES);
}

/** scrypt(passphrase, salt) → PSK. Each server draws its own random salt. */
export function pskFromPassphrase(passphrase: string, salt: Buffer): Buffer {
  checkPassphrase(passphrase);
  if (salt.length !== SALT_BYTES) throw new RangeError(`passphrase salt must be ${SALT_BYTES} bytes`);
  return crypto.scryptSync(passphrase.normalize('NFC'), salt, PSK_BYTES, SCRYPT);
}

function checkPassphrase(passphrase: string): void {
  if (passphrase.length < 8) throw new KeyFileError('passphrase must be at least 8 characters');
  if (passphrase.length > 1024 || /[\r\n]/.test(passphrase)) throw new KeyFileError('passphrase must be one line of at most 1024 characters');
}

/**
 * Where a connection's PSK comes from. The responder (listener, server) announces `salt` in its
 * HELLO; the initiator asks `pskFor(that salt)`. Key files ignore the salt (all zero on the wire).
 */
export interface KeySource {
  readonly kind: 'file' | 'passphrase';
  /** What this side announces when it is the responder. */
  readonly salt: Buffer;
  pskFor(salt: Buffer): Buffer;
}

export function keyFileSource(psk: Buffer): KeySource {
  if (psk.length !== PSK_BYTES) throw new RangeError(`pre-shared key must be ${PSK_BYTES} bytes`);
  const k = Buffer.from(psk);
  return { kind: 'file', salt: Buffer.alloc(SALT_BYTES), pskFor: () => k };
}

/** A passphrase; `salt` (random unless given) is the one announced when this side serves. Derivations are cached per salt. */
export function passphraseSource(passphrase: string, salt: Buffer = crypto.randomBytes(SALT_BYTES)): KeySource {
  checkPassphrase(passphrase);
  const cache = new Map<string, Buffer>();
  const pskFor = (s: Buffer): Buffer => {
    const id = s.toString('hex');
    let k = cache.get(id);
    if (!k) {
      k = pskFromPassphrase(passphrase, s);
      if (cache.size >= 4) cache.clear();
      cache.set(id, k);
    }
    return k;
  };
  return { kind: 'passphrase', salt: Buffer.from(salt), pskFor };
}

export function formatKeyFile(psk: Buffer): string {
  return `# vlab chat pre-shared key (keep secret; both peers need the same file)\n${psk.toString('hex')}\n`;
}

export function formatPassphraseFile(passphrase: string): string {
  checkPassphrase(passphrase);
  return `# vlab chat passphrase (keep secret; each server salts it with scrypt, see docs/chat-protocol.md)\npassphrase ${passphrase}\n`;
}

export function parseKeyFile(text: string, source = 'key file'): KeySource {
  const lines = text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l.length > 0 && !l.startsWith('#'));
  if (lines.length === 1 && lines[0]!.startsWith('passphrase ')) {
    try {
      return passphraseSource(lines[0]!.slice('passphrase '.length));
    } catch (err) {
      throw new KeyFileError(`${source}: ${(err as Error).message}`);
    }
  }
  if (lines.length !== 1 || !/^[0-9a-fA-F]{64}$/.test(lines[0]!)) {
    throw new KeyFileError(`${source}: expected one line of 64 hex digits (a 256-bit key) or "passphrase TEXT"; make one with: vlab chat keygen FILE`);
  }
  return keyFileSource(Buffer.from(lines[0]!, 'hex'));
}

/** Writes a new key file (a PSK, or a passphrase line) with mode 0600; refuses to overwrite unless asked. */
export function writeKeyFile(file: string, key: Buffer | string, overwrite = false): void {
  const text = typeof key === 'string' ? formatPassphraseFile(key) : formatKeyFile(key);
  const fd = fs.openSync(file, overwrite ? 'w' : 'wx', 0o600);
  try {
    fs.fchmodSync(fd, 0o600); // mode is ignored when the file already existed
    fs.writeSync(fd, text);
  } finally {
    fs.closeSync(fd);
  }
}

export function readKeyFile(file: string): KeySource {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(file);
  } catch (err) {
    throw new KeyFileError(`cannot read key file ${file}: ${(err as Error).message}`);
  }
  if (!stat.isFile()) throw new KeyFileError(`key file ${file} is not a regular file`);
  if (stat.size > KEY_FILE_MAX_BYTES) throw new KeyFileError(`key file ${file} is ${stat.size} bytes; a key file is under ${KEY_FILE_MAX_BYTES}`);
  return parseKeyFile(fs.readFileSync(file, 'utf8'), file);
}

export interface DirectionKeys {
  readonly enc: Buffer;
  readonly mac: Buffer;
}
export interface SessionKeys {
  /** Keys for frames this side sends. */
  readonly send: DirectionKeys;
  /** Keys for frames this side receives. */
  readonly receive: DirectionKeys;
}

export type Role = 'initiator' | 'responder';

export function hkdfKey(ikm: Buffer, salt: Buffer, label: string): Buffer {
  return Buffer.from(crypto.hkdfSync('sha256', ikm, salt, Buffer.from(label, 'ascii'), 32));
}

/** An ephemeral X25519 key pair from 32 random bytes (RFC 7748 clamping is done by OpenSSL). */
export interface EphemeralKey {
  readonly publicKey: Buffer;
  /** X25519(mine, peer); refuses a peer key that gives the all-zero secret (a low-order point). */
  agree(peerPublic: Buffer): Buffer;
}

export function ephemeralKey(privateBytes: Buffer): EphemeralKey {
  if (privateBytes.length !== X25519_BYTES) throw new RangeError(`X25519 private key must be ${X25519_BYTES} bytes`);
  const privateKey = crypto.createPrivateKey({ key: Buffer.concat([X25519_PKCS8_PREFIX, privateBytes]), format: 'der', type: 'pkcs8' });
  const spki = crypto.createPublicKey(privateKey).export({ format: 'der', type: 'spki' });
  return {
    publicKey: Buffer.from(spki.subarray(spki.length - X25519_BYTES)),
    agree(peerPublic) {
      if (peerPublic.length !== X25519_BYTES) throw new RangeError(`X25519 public key must be ${X25519_BYTES} bytes`);
      const publicKey = crypto.createPublicKey({ key: Buffer.concat([X25519_SPKI_PREFIX, peerPublic]), format: 'der', type: 'spki' });
      let shared: Buffer;
      try {
        shared = crypto.diffieHellman({ privateKey, publicKey });
      } catch {
        shared = Buffer.alloc(X25519_BYTES); // OpenSSL 3 refuses the all-zero result itself
      }
      if (shared.every((b) => b === 0)) throw new RangeError('the peer sent a low-order X25519 public key (all-zero shared secret)');
      return shared;
    },
  };
}

/** SHA-256 over both HELLO frames (header and body), initiator's first. */
export function transcriptHash(helloInitiator: Buffer, helloResponder: Buffer): Buffer {
  return crypto.createHash('sha256').update(helloInitiator).update(helloResponder).digest();
}

/** The version-2 schedule: HKDF-SHA256(ikm = PSK ‖ DH, salt = transcript hash), one label per key. */
export function deriveSessionKeys(psk: Buffer, dh: Buffer, transcript: Buffer, role: Role): SessionKeys {
  if (psk.length !== PSK_BYTES) throw new RangeError(`pre-shared key must be ${PSK_BYTES} bytes`);
  if (dh.length !== X25519_BYTES) throw new RangeError(`X25519 secret must be ${X25519_BYTES} bytes`);
  const ikm = Buffer.concat([psk, dh]);
  const dir = (d: 'i2r' | 'r2i'): DirectionKeys => ({
    enc: hkdfKey(ikm, transcript, `vlab-chat/2 ${d} enc`),
    mac: hkdfKey(ikm, transcript, `vlab-chat/2 ${d} mac`),
  });
  const i2r = dir('i2r');
  const r2i = dir('r2i');
  ikm.fill(0);
  return role === 'initiator' ? { send: i2r, receive: r2i } : { send: r2i, receive: i2r };
}
