/**
 * The narrow interface between the virtio-crypto device and whatever does the arithmetic (the
 * factory that picks an implementation by name is engines.ts). Engines know nothing about virtio: they get
 * byte views (for the data path usually straight into mapped guest memory) and write into the
 * views they are given, so an engine that can work in place never copies or allocates per request.
 */
export type CipherMode = 'cbc' | 'ctr' | 'ecb' | 'xts';
/** Hash functions, for plain hashes and for HMAC. */
export type HashAlg = 'md5' | 'sha1' | 'sha224' | 'sha256' | 'sha384' | 'sha512';
/** `openssl`: native OpenSSL EVP in the addon; `node`: node:crypto; `cryptodev`: host /dev/crypto. */
export type EngineName = 'openssl' | 'node' | 'cryptodev';
export type EngineChoice = EngineName | 'auto';
export const ENGINE_NAMES: readonly EngineName[] = ['openssl', 'node', 'cryptodev'];

export const DIGEST_BYTES: Readonly<Record<HashAlg, number>> = { md5: 16, sha1: 20, sha224: 28, sha256: 32, sha384: 48, sha512: 64 };
/** Largest digest any {@link HashAlg} produces. */
export const MAX_DIGEST_BYTES = 64;
/** IV bytes each mode takes (ECB none). */
export const IV_BYTES: Readonly<Record<CipherMode, number>> = { cbc: 16, ctr: 16, ecb: 0, xts: 16 };
/** Modes whose input must be a whole number of 16-byte AES blocks. */
export const BLOCK_ALIGNED: Readonly<Record<CipherMode, boolean>> = { cbc: true, ctr: false, ecb: true, xts: false };

/** A cipher with its key bound, for the lifetime of one session. */
export interface PreparedCipher {
  /**
   * One whole operation: `src.length` bytes of `src` transformed into `dst` (same length; `dst`
   * may be the very same memory as `src`). The caller checked lengths and the IV against the mode.
   */
  crypt(encrypt: boolean, iv: Uint8Array | null, src: Uint8Array, dst: Uint8Array): void;
  /** Forgets the key (wipes what the engine holds). */
  dispose(): void;
}

/** A hash, or an HMAC with its key bound, for the lifetime of one session. */
export interface PreparedDigest {
  /**
   * Digest of the concatenation of `parts`; writes its first min(out.length, digest size) bytes
   * into `out` (a shorter `out` is a truncated MAC). Nothing past `out.length` is written.
   */
  digest(parts: readonly Uint8Array[], out: Uint8Array): void;
  dispose(): void;
}

export interface CryptoEngine {
  readonly name: EngineName;
  /**
   * Throws {@link EngineUnsupportedError} for modes or key sizes it cannot do. The key buffer is
   * only borrowed for the call: the engine copies what it keeps, the caller wipes it afterwards.
   */
  prepareCipher(mode: CipherMode, key: Buffer): PreparedCipher;
  /** A plain hash (`key` null) or an HMAC (any key length, 0 included). Same key rule as above. */
  prepareDigest(hash: HashAlg, key: Buffer | null): PreparedDigest;
  close(): void;
}

/** The engine cannot do this algorithm/key: the guest gets NOTSUPP, nothing else is wrong. */
export class EngineUnsupportedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'EngineUnsupportedError';
  }
}

/** The requested engine cannot run on this machine at all. */
export class EngineUnavailableError extends Error {
  constructor(
    readonly engine: EngineName,
    readonly reason: string,
  ) {
    super(`engine ${engine} unavailable: ${reason}`);
    this.name = 'EngineUnavailableError';
  }
}

export function validCipherKey(mode: CipherMode, keyLength: number): boolean {
  return mode === 'xts' ? keyLength === 32 || keyLength === 64 : keyLength === 16 || keyLength === 24 || keyLength === 32;
}

/**
 * The key checks every engine shares; throws {@link EngineUnsupportedError}. OpenSSL refuses XTS
 * with identical key halves (IEEE 1619 forbids them), so no engine accepts them.
 */
export function checkCipherKey(mode: CipherMode, key: Uint8Array): void {
  if (!validCipherKey(mode, key.length)) throw new EngineUnsupportedError(`AES-${mode.toUpperCase()} with a ${key.length}-byte key`);
  if (mode === 'xts' && Buffer.from(key.buffer, key.byteOffset, key.length / 2).equals(Buffer.from(key.buffer, key.byteOffset + key.length / 2, key.length / 2))) {
    throw new EngineUnsupportedError('AES-XTS with identical key halves');
  }
}

/** OpenSSL's name of an AES mode for a key length (XTS keys are two AES keys). */
export function opensslCipherName(mode: CipherMode, keyLength: number): string {
  const bits = mode === 'xts' ? keyLength * 4 : keyLength * 8;
  return `aes-${bits}-${mode}`;
}
