/**
 * Pre-shared key files and session-key derivation.
 *
 * A key file holds one 256-bit pre-shared key (PSK) as 64 hex digits (lines starting with '#' are
 * comments). Per connection, HKDF-SHA256 (RFC 5869) turns the PSK and both sides' HELLO nonces into
 * four independent 32-byte keys: encryption and MAC, for each direction. Fresh nonces per connection
 * mean a frame recorded from one connection never verifies on another.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';

export const PSK_BYTES = 32;
export const NONCE_BYTES = 32;
const KEY_FILE_MAX_BYTES = 4096;
/** Fixed, public salt: the same passphrase must give the same key on both machines. */
const PASSPHRASE_SALT = 'vlab-chat/1 passphrase';
const SCRYPT = { N: 1 << 15, r: 8, p: 1, maxmem: 64 * 1024 * 1024 } as const;

export class KeyFileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'KeyFileError';
  }
}

export function generatePsk(): Buffer {
  return crypto.randomBytes(PSK_BYTES);
}

/** scrypt(passphrase) → PSK, for people who would rather share a phrase than a file. */
export function pskFromPassphrase(passphrase: string): Buffer {
  if (passphrase.length < 8) throw new KeyFileError('passphrase must be at least 8 characters');
  return crypto.scryptSync(passphrase.normalize('NFC'), PASSPHRASE_SALT, PSK_BYTES, SCRYPT);
}

export function formatKeyFile(psk: Buffer): string {
  return `# vlab chat pre-shared key (keep secret; both peers need the same file)\n${psk.toString('hex')}\n`;
}

export function parseKeyFile(text: string, source = 'key file'): Buffer {
  const lines = text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l.length > 0 && !l.startsWith('#'));
  if (lines.length !== 1 || !/^[0-9a-fA-F]{64}$/.test(lines[0]!)) {
    throw new KeyFileError(`${source}: expected one line of 64 hex digits (a 256-bit key); make one with: vlab chat keygen FILE`);
  }
  return Buffer.from(lines[0]!, 'hex');
}

/** Writes a new key file with mode 0600; refuses to overwrite unless asked. */
export function writeKeyFile(file: string, psk: Buffer, overwrite = false): void {
  const fd = fs.openSync(file, overwrite ? 'w' : 'wx', 0o600);
  try {
    fs.fchmodSync(fd, 0o600); // mode is ignored when the file already existed
    fs.writeSync(fd, formatKeyFile(psk));
  } finally {
    fs.closeSync(fd);
  }
}

export function readKeyFile(file: string): Buffer {
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

/** HKDF-SHA256 with salt = nonce_initiator ‖ nonce_responder and one label per key. */
export function hkdfKey(psk: Buffer, salt: Buffer, label: string): Buffer {
  return Buffer.from(crypto.hkdfSync('sha256', psk, salt, Buffer.from(label, 'ascii'), 32));
}

export function deriveSessionKeys(psk: Buffer, role: Role, initiatorNonce: Buffer, responderNonce: Buffer): SessionKeys {
  if (psk.length !== PSK_BYTES) throw new RangeError(`pre-shared key must be ${PSK_BYTES} bytes`);
  const salt = Buffer.concat([initiatorNonce, responderNonce]);
  const dir = (d: 'i2r' | 'r2i'): DirectionKeys => ({
    enc: hkdfKey(psk, salt, `vlab-chat/1 ${d} enc`),
    mac: hkdfKey(psk, salt, `vlab-chat/1 ${d} mac`),
  });
  const i2r = dir('i2r');
  const r2i = dir('r2i');
  return role === 'initiator' ? { send: i2r, receive: r2i } : { send: r2i, receive: i2r };
}
