/** Engine on the host's /dev/crypto (cryptodev-linux) through addon/lib/cryptodev.ts. */
import { CryptodevAlg, type CryptodevAlgId, CryptodevDevice, type CryptodevSession, DEFAULT_CRYPTODEV_PATH, probeCryptodev } from '../../addon/lib/cryptodev';
import { type CipherMode, type CryptoEngine, EngineUnavailableError, EngineUnsupportedError, type HmacHash, type PreparedCipher, type PreparedMac, validCipherKey } from './engine';

const CIPHER_ALG: Readonly<Record<CipherMode, CryptodevAlgId>> = {
  cbc: CryptodevAlg.AES_CBC,
  ctr: CryptodevAlg.AES_CTR,
  ecb: CryptodevAlg.AES_ECB,
  xts: CryptodevAlg.AES_XTS,
};
const MAC_ALG: Readonly<Record<HmacHash, CryptodevAlgId>> = {
  sha1: CryptodevAlg.SHA1_HMAC,
  sha256: CryptodevAlg.SHA2_256_HMAC,
  sha512: CryptodevAlg.SHA2_512_HMAC,
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
    if (!validCipherKey(mode, key.length)) throw new EngineUnsupportedError(`AES-${mode.toUpperCase()} with a ${key.length}-byte key`);
    const ses = this.session(() => this.device.createSession({ cipher: CIPHER_ALG[mode], key }), `AES-${mode.toUpperCase()}`);
    return {
      crypt(encrypt, iv, input) {
        const ivBuf = mode === 'ecb' || !iv ? null : Buffer.from(iv);
        return encrypt ? ses.encrypt(input, ivBuf) : ses.decrypt(input, ivBuf);
      },
      dispose: () => ses.close(),
    };
  }

  prepareHmac(hash: HmacHash, key: Buffer): PreparedMac {
    const ses = this.session(() => this.device.createSession({ mac: MAC_ALG[hash], macKey: key }), `HMAC-${hash}`);
    return {
      compute(parts) {
        return ses.digest(parts.length === 1 ? parts[0] : Buffer.concat(parts));
      },
      dispose: () => ses.close(),
    };
  }

  close(): void {
    this.device.close();
  }
}
