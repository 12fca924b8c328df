/**
 * The narrow interface between the virtio-crypto device and whatever does the arithmetic, plus
 * the factory that picks an implementation by name. Engines know nothing about virtio.
 */
export type CipherMode = 'cbc' | 'ctr' | 'ecb' | 'xts';
export type HmacHash = 'sha1' | 'sha256' | 'sha512';
export type EngineName = 'openssl' | 'cryptodev';
export type EngineChoice = EngineName | 'auto';

export const DIGEST_BYTES: Readonly<Record<HmacHash, number>> = { sha1: 20, sha256: 32, sha512: 64 };

/** A cipher with its key bound, for the lifetime of one session. */
export interface PreparedCipher {
  /** Runs one whole operation; input length already checked against the mode by the caller. */
  crypt(encrypt: boolean, iv: Uint8Array | null, input: Uint8Array): Buffer;
  /** Forgets the key (wipes what the engine holds). */
  dispose(): void;
}

export interface PreparedMac {
  /** HMAC over the concatenation of parts. */
  compute(parts: readonly Uint8Array[]): Buffer;
  dispose(): void;
}

export interface CryptoEngine {
  readonly name: EngineName;
  /**
   * Throws {@link EngineUnsupportedError} for modes or key sizes it cannot do. The key buffer is
   * only borrowed for the call: the engine copies what it keeps, the caller wipes it afterwards.
   */
  prepareCipher(mode: CipherMode, key: Buffer): PreparedCipher;
  /** Same key rule as {@link prepareCipher}. */
  prepareHmac(hash: HmacHash, key: Buffer): PreparedMac;
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
