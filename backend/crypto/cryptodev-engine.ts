/** Engine on the host's /dev/crypto (cryptodev-linux) through addon/lib/cryptodev.ts. */
import { CryptodevAlg, type CryptodevAlgId, CryptodevDevice, type CryptodevSession, DEFAULT_CRYPTODEV_PATH, probeCryptodev } from '../../addon/lib/cryptodev';
import { type CipherMode, type CryptoEngine, checkCipherKey, EngineUnavailableError, EngineUnsupportedError, type HashAlg, type PreparedCipher, type PreparedDigest } from './engine';

const CIPHER_ALG: Readonly<Record<CipherMode, CryptodevAlgId>> = {
  cbc: CryptodevAlg.AES_CBC,
  ctr: CryptodevAlg.AES_CTR,
  ecb: CryptodevAlg.AES_ECB,
  xts: CryptodevAlg.AES_XTS,
};
/** Every hash and HMAC of the engine interface has a cryptodev-linux algorithm id. */
const MAC_ALG: Readonly<Record<HashAlg, CryptodevAlgId>> = {
  md5: CryptodevAlg.MD5_HMAC,
  sha1: CryptodevAlg.SHA1_HMAC,
  sha224: CryptodevAlg.SHA2_224_HMAC,
  sha256: CryptodevAlg.SHA2_256_HMAC,
  sha384: CryptodevAlg.SHA2_384_HMAC,
  sha512: CryptodevAlg.SHA2_512_HMAC,
};
const HASH_ALG: Readonly<Record<HashAlg, CryptodevAlgId>> = {
  md5: CryptodevAlg.MD5,
  sha1: CryptodevAlg.SHA1,
  sha224: CryptodevAlg.SHA2_224,
  sha256: CryptodevAlg.SHA2_256,
  sha384: CryptodevAlg.SHA2_384,
  sha512: CryptodevAlg.SHA2_512,
};

export class CryptodevEngine implements CryptoEngine {
  readonly name = 'cryptodev' as const;

  private constructor(private readonly device: CryptodevDevice) {}

  /** Opens the device or throws {@link EngineUnavailableError} with the reason. */
  static open(path: string = DEFAULT_CRYPTODEV_PATH): CryptodevEngine {
    const probe = probeCryptodev(path);
    if (!probe.ok) throw new EngineUnavailableError('cryptodev', probe.reason);
    return new CryptodevEngine(CryptodevDevice.open(path));
  }

  private session(make: () => CryptodevSession, what: string): CryptodevSession {
    try {
      return make();
    } catch (err) {
      throw new EngineUnsupportedError(`${what}: ${(err as Error).message}`);
    }
  }

  prepareCipher(mode: CipherMode, key: Buffer): PreparedCipher {
    checkCipherKey(mode, key);
    const ses = this.session(() => this.device.createSession({ cipher: CIPHER_ALG[mode], key }), `AES-${mode.toUpperCase()}`);
    return {
      crypt(encrypt, iv, src, dst) {
        if (!ses.isOpen) throw new Error('cipher used after dispose');
        const ivBuf = mode === 'ecb' || !iv ? null : Buffer.from(iv);
        dst.set(encrypt ? ses.encrypt(src, ivBuf) : ses.decrypt(src, ivBuf), 0);
      },
      dispose: () => ses.close(),
    };
  }

  prepareDigest(hash: HashAlg, key: Buffer | null): PreparedDigest {
    const alg = key ? MAC_ALG[hash] : HASH_ALG[hash];
    const what = key ? `HMAC-${hash.toUpperCase()}` : hash.toUpperCase();
    // The device behind /dev/crypto may still refuse it (e.g. a kernel without MD5): EINVAL at
    // CIOCGSESSION becomes EngineUnsupportedError below, so the guest gets NOTSUPP.
    const ses = this.session(() => this.device.createSession(key ? { mac: alg, macKey: key } : { mac: alg }), what);
    return {
      digest(parts, out) {
        if (!ses.isOpen) throw new Error('digest used after dispose');
        const d = ses.digest(parts.length === 1 ? parts[0] : Buffer.concat(parts));
        out.set(d.length > out.length ? d.subarray(0, out.length) : d, 0);
      },
      dispose: () => ses.close(),
    };
  }

  close(): void {
    this.device.close();
  }
}
