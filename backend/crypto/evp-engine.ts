/**
 * Engine on OpenSSL EVP through the native addon (addon/lib/evp.ts): one cipher context pair per
 * session with the key scheduled once, only the IV set per request, reading src and writing dst
 * where they are (mapped guest memory on the data path). No per-request allocation or copy here.
 */
import { type EvpCipherHandle, type EvpDigestHandle, evp, probeEvp } from '../../addon/lib/evp';
import { type CipherMode, type CryptoEngine, checkCipherKey, EngineUnavailableError, EngineUnsupportedError, type HashAlg, opensslCipherName, type PreparedCipher, type PreparedDigest } from './engine';

export class EvpEngine implements CryptoEngine {
  readonly name = 'openssl' as const;
  private readonly native = evp();

  private constructor() {}

  /** Loads the addon's EVP engine or throws {@link EngineUnavailableError} with the reason. */
  static open(): EvpEngine {
    const probe = probeEvp();
    if (!probe.ok) throw new EngineUnavailableError('openssl', probe.reason);
    return new EvpEngine();
  }

  prepareCipher(mode: CipherMode, key: Buffer): PreparedCipher {
    checkCipherKey(mode, key);
    const n = this.native;
    let handle: EvpCipherHandle | undefined;
    try {
      handle = n.evpCipherCreate(opensslCipherName(mode, key.length), key);
    } catch (err) {
      throw new EngineUnsupportedError(`AES-${mode.toUpperCase()}: ${(err as Error).message}`);
    }
    const ecb = mode === 'ecb';
    return {
      crypt(encrypt, iv, src, dst) {
        if (!handle) throw new Error('cipher used after dispose');
        n.evpCipherRun(handle, encrypt, ecb ? null : iv, src, dst);
      },
      dispose() {
        if (handle) n.evpCipherFree(handle);
        handle = undefined;
      },
    };
  }

  prepareDigest(hash: HashAlg, key: Buffer | null): PreparedDigest {
    const n = this.native;
    let handle: EvpDigestHandle | undefined;
    try {
      handle = n.evpDigestCreate(hash, key);
    } catch (err) {
      throw new EngineUnsupportedError(`${key ? 'HMAC-' : ''}${hash.toUpperCase()}: ${(err as Error).message}`);
    }
    return {
      digest(parts, out) {
        if (!handle) throw new Error('digest used after dispose');
        // The common shapes without spreading (no array allocation per request).
        switch (parts.length) {
          case 0: n.evpDigestRun(handle, out); break;
          case 1: n.evpDigestRun(handle, out, parts[0]); break;
          case 2: n.evpDigestRun(handle, out, parts[0], parts[1]); break;
          default: n.evpDigestRun(handle, out, ...parts);
        }
      },
      dispose() {
        if (handle) n.evpDigestFree(handle);
        handle = undefined;
      },
    };
  }

  close(): void {}
}

