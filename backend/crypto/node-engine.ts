/** Engine on node:crypto (OpenSSL inside Node). Keys live in KeyObjects owned by the session. */
import * as crypto from 'node:crypto';
import { type CipherMode, type CryptoEngine, checkCipherKey, type HashAlg, opensslCipherName, type PreparedCipher, type PreparedDigest } from './engine';

export class NodeEngine implements CryptoEngine {
  readonly name = 'node' as const;

  prepareCipher(mode: CipherMode, key: Buffer): PreparedCipher {
    checkCipherKey(mode, key);
    const name = opensslCipherName(mode, key.length);
    let keyObject: crypto.KeyObject | undefined = crypto.createSecretKey(key);
    return {
      crypt(encrypt, iv, src, dst) {
        if (!keyObject) throw new Error('cipher used after dispose');
        // node:crypto needs a new cipher object per IV: its output is a fresh buffer, copied into dst.
        const c = encrypt ? crypto.createCipheriv(name, keyObject, mode === 'ecb' ? null : iv) : crypto.createDecipheriv(name, keyObject, mode === 'ecb' ? null : iv);
        c.setAutoPadding(false);
        const out = c.update(src);
        const tail = c.final();
        dst.set(out, 0);
        if (tail.length > 0) dst.set(tail, out.length);
      },
      dispose() {
        keyObject = undefined;
      },
    };
  }

  prepareDigest(hash: HashAlg, key: Buffer | null): PreparedDigest {
    let keyObject: crypto.KeyObject | undefined = key ? crypto.createSecretKey(key.length > 0 ? key : Buffer.alloc(0)) : undefined;
    let live = true;
    return {
      digest(parts, out) {
        if (!live) throw new Error('digest used after dispose');
        const h = keyObject ? crypto.createHmac(hash, keyObject) : crypto.createHash(hash);
        for (const p of parts) h.update(p);
        const d = h.digest();
        out.set(d.length > out.length ? d.subarray(0, out.length) : d, 0);
      },
      dispose() {
        live = false;
        keyObject = undefined;
      },
    };
  }

  close(): void {}
}
