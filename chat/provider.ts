/**
 * Crypto providers: the two primitives the record layer needs (AES-256-CBC without padding, and
 * HMAC-SHA256), behind one interface so a cryptodev peer and a software peer are byte-identical on
 * the wire. Padding (PKCS#7) lives in the record layer, above the provider, because /dev/crypto
 * ciphers whole blocks only.
 *
 * Why CBC: it is the mode QEMU's virtio-crypto device advertises and the one Linux's virtio_crypto
 * driver registers (cbc(aes)), so it is the mode that exercises the device end to end.
 */
import * as crypto from 'node:crypto';
import { CryptodevAlg, CryptodevDevice, probeCryptodev, type SessionInfo } from '../addon/lib/cryptodev';

export const AES_KEY_BYTES = 32;
export const BLOCK_BYTES = 16;
export const MAC_BYTES = 32;

export type ProviderChoice = 'cryptodev' | 'software' | 'auto';
export type ProviderName = 'cryptodev' | 'software';

/** AES-256-CBC with one fixed key; inputs are whole blocks. */
export interface BlockCipher {
  encrypt(iv: Buffer, plaintext: Buffer): Buffer;
  decrypt(iv: Buffer, ciphertext: Buffer): Buffer;
  close(): void;
}

/** HMAC-SHA256 with one fixed key over the concatenation of `parts`. */
export interface Mac {
  compute(parts: readonly Buffer[]): Buffer;
  close(): void;
}

export interface CryptoProvider {
  readonly name: ProviderName;
  /** The start-up line: who does the cipher and who does the MAC, and why. */
  readonly description: string;
  cipher(key: Buffer): BlockCipher;
  mac(key: Buffer): Mac;
  /** Device sessions this provider holds open right now (0 for software). */
  openSessions(): number;
  close(): void;
}

function checkKey(key: Buffer): void {
  if (key.length !== AES_KEY_BYTES) throw new RangeError(`AES-256 key must be ${AES_KEY_BYTES} bytes, got ${key.length}`);
}
function checkBlocks(iv: Buffer, data: Buffer): void {
  if (iv.length !== BLOCK_BYTES) throw new RangeError(`IV must be ${BLOCK_BYTES} bytes`);
  if (data.length === 0 || data.length % BLOCK_BYTES !== 0) throw new RangeError(`CBC input must be whole ${BLOCK_BYTES}-byte blocks`);
}

function softwareCipher(key: Buffer): BlockCipher {
  checkKey(key);
  const k = Buffer.from(key);
  const run = (decipher: boolean, iv: Buffer, data: Buffer): Buffer => {
    checkBlocks(iv, data);
    const c = decipher ? crypto.createDecipheriv('aes-256-cbc', k, iv) : crypto.createCipheriv('aes-256-cbc', k, iv);
    c.setAutoPadding(false);
    return Buffer.concat([c.update(data), c.final()]);
  };
  return { encrypt: (iv, p) => run(false, iv, p), decrypt: (iv, c) => run(true, iv, c), close: () => k.fill(0) };
}

function softwareMac(key: Buffer): Mac {
  const k = Buffer.from(key);
  return {
    compute(parts) {
      const h = crypto.createHmac('sha256', k);
      for (const p of parts) h.update(p);
      return h.digest();
    },
    close: () => k.fill(0),
  };
}

export function softwareProvider(why = ''): CryptoProvider {
  return {
    name: 'software',
    description: `cipher: software (node:crypto / OpenSSL AES-256-CBC), MAC: software (node:crypto HMAC-SHA256)${why ? ` — ${why}` : ''}`,
    cipher: softwareCipher,
    mac: softwareMac,
    openSessions: () => 0,
    close: () => undefined,
  };
}

/** Where a /dev/crypto session's work runs: SIOP_FLAG_KERNEL_DRIVER_ONLY is set only when the device does it. */
function where(info: SessionInfo, driver: string): string {
  return `driver ${driver || 'unknown'}, ${info.kernelDriverOnly ? 'device' : 'guest kernel'}`;
}

/**
 * AES-256-CBC and HMAC-SHA256 through /dev/crypto: one CIOCGSESSION per key (cipher-only and
 * HMAC-only sessions), CIOCCRYPT per message. Sessions are opened only when the record layer asks
 * (after the peer's READY verifies) and closed with the connection. When the probe cannot open an
 * hmac(sha256) session the MAC is computed with node:crypto instead, and the start-up line says so;
 * the bytes on the wire are the same either way.
 */
export function cryptodevProvider(path?: string): CryptoProvider {
  const device = CryptodevDevice.open(path);
  try {
    // Probe once with throwaway keys at start-up: learn the serving drivers, and whether the MAC can
    // go through /dev/crypto. Both probe sessions are closed before any connection exists.
    const probe = device.createSession({ cipher: CryptodevAlg.AES_CBC, key: crypto.randomBytes(AES_KEY_BYTES) });
    let cipherPath: string;
    try {
      const info = probe.info();
      cipherPath = where(info, info.cipherDriver);
    } finally {
      probe.close();
    }
    let macPath: string | undefined;
    let macWhy = '';
    try {
      const m = device.createSession({ mac: CryptodevAlg.SHA2_256_HMAC, macKey: crypto.randomBytes(MAC_BYTES) });
      try {
        const info = m.info();
        macPath = where(info, info.hashDriver);
      } finally {
        m.close();
      }
    } catch (err) {
      macWhy = `/dev/crypto cannot open hmac(sha256): ${(err as Error).message}`;
    }
    const description =
      `cipher: /dev/crypto (${cipherPath}), ` + (macPath ? `MAC: /dev/crypto (${macPath})` : `MAC: software (node:crypto HMAC-SHA256 — ${macWhy})`);
    return {
      name: 'cryptodev',
      description,
      cipher(key) {
        checkKey(key);
        const ses = device.createSession({ cipher: CryptodevAlg.AES_CBC, key });
        return {
          encrypt: (iv, p) => (checkBlocks(iv, p), ses.encrypt(p, Buffer.from(iv))),
          decrypt: (iv, c) => (checkBlocks(iv, c), ses.decrypt(c, Buffer.from(iv))),
          close: () => ses.close(),
        };
      },
      mac(key) {
        if (!macPath) return softwareMac(key);
        const ses = device.createSession({ mac: CryptodevAlg.SHA2_256_HMAC, macKey: key });
        return { compute: (parts) => ses.digest(Buffer.concat(parts)), close: () => ses.close() };
      },
      openSessions: () => device.sessionCount,
      close: () => device.close(),
    };
  } catch (err) {
    device.close();
    throw err;
  }
}

/** 'auto' picks cryptodev when /dev/crypto opens, else software, and says which and why. */
export function createProvider(choice: ProviderChoice, path?: string): CryptoProvider {
  if (choice === 'software') return softwareProvider();
  if (choice === 'cryptodev') return cryptodevProvider(path);
  const probe = probeCryptodev(path);
  if (!probe.ok) return softwareProvider(`auto: ${probe.reason}`);
  try {
    return cryptodevProvider(path);
  } catch (err) {
    return softwareProvider(`auto: /dev/crypto failed: ${(err as Error).message}`);
  }
}
