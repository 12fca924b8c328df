/** Engine on node:crypto (OpenSSL inside Node). Keys live in KeyObjects owned by the session. */
import * as crypto from 'node:crypto';
import { type CipherMode, type CryptoEngine, EngineUnsupportedError, type HmacHash, type PreparedCipher, type PreparedMac, validCipherKey } from './engine';

function cipherName(mode: CipherMode, keyLength: number): string {
  // XTS keys are two AES keys: a 32-byte XTS key is AES-128.
  const bits = mode === 'xts' ? keyLength * 4 : keyLength * 8;
  return `aes-${bits}-${mode}`;
}

export class OpensslEngine implements CryptoEngine {
  readonly name = 'openssl' as const;

  prepareCipher(mode: CipherMode, key: Buffer): PreparedCipher {
    if (!validCipherKey(mode, key.length)) throw new EngineUnsupportedError(`AES-${mode.toUpperCase()} with a ${key.length}-byte key`);
    const name = cipherName(mode, key.length);
    if (mode === 'xts' && key.subarray(0, key.length / 2).equals(key.subarray(key.length / 2))) {
      // OpenSSL refuses XTS with identical key halves; the session is unusable.
      throw new EngineUnsupportedError('AES-XTS with identical key halves');
    }
    let keyObject: crypto.KeyObject | undefined = crypto.createSecretKey(key);
    return {
      crypt(encrypt, iv, input) {
        if (!keyObject) throw new Error('cipher used after dispose');
        const c = encrypt ? crypto.createCipheriv(name, keyObject, mode === 'ecb' ? null : iv) : crypto.createDecipheriv(name, keyObject, mode === 'ecb' ? null : iv);
        c.setAutoPadding(false);
        const out = c.update(input);
        const tail = c.final();
        return tail.length === 0 ? out : Buffer.concat([out, tail]);
      },
      dispose() {
        keyObject = undefined;
      },
    };
  }

  prepareHmac(hash: HmacHash, key: Buffer): PreparedMac {
    let keyObject: crypto.KeyObject | undefined = crypto.createSecretKey(key.length > 0 ? key : Buffer.alloc(0));
    return {
      compute(parts) {
        if (!keyObject) throw new Error('mac used after dispose');
        const h = crypto.createHmac(hash, keyObject);
        for (const p of parts) h.update(p);
        return h.digest();
      },
      dispose() {
        keyObject = undefined;
      },
    };
  }

  close(): void {}
}
