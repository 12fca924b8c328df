/**
 * Typed facade for the cryptodev-linux `/dev/crypto` API (native part: addon/src/cryptodev.cc).
 *
 * Everything is validated here before it reaches C++: algorithm ids, key sizes, buffer lengths and
 * alignment. Failed syscalls throw {@link CryptodevError} (`errno`, `code` such as 'EINVAL',
 * `syscall` such as 'CIOCGSESSION'). An ioctl on /dev/crypto completes the operation before it
 * returns (on a virtio device, after the device answers): `encrypt`/`decrypt` block the calling
 * thread for that long; `encryptAsync`/`decryptAsync` run the ioctl on a libuv worker thread.
 *
 * ```ts
 * const dev = CryptodevDevice.open();                 // throws CryptodevError{code:'ENOENT', syscall:'open'} when absent
 * const ses = dev.createSession({ cipher: CryptodevAlg.AES_CBC, key });
 * const iv = Buffer.from(ivBytes);                     // with writeIv, iv holds the chaining IV afterwards
 * const ct = ses.encrypt(plaintext, iv, { writeIv: true });
 * console.log(ses.info().cipherDriver);               // e.g. "virtio_crypto_aes_cbc" or "cbc-aes-aesni"
 * ses.close(); dev.close();
 * ```
 */
import * as fs from 'node:fs';
import { nativeFunction } from './native';

/** Algorithm ids of cryptodev-linux (crypto/cryptodev.h `enum cryptodev_crypto_op_t`). */
export const CryptodevAlg = {
  MD5_HMAC: 6,
  SHA1_HMAC: 7,
  AES_CBC: 11,
  MD5: 13,
  SHA1: 14,
  SHA2_256_HMAC: 18,
  SHA2_384_HMAC: 19,
  SHA2_512_HMAC: 20,
  AES_CTR: 21,
  AES_XTS: 22,
  AES_ECB: 23,
  SHA2_224: 103,
  SHA2_256: 104,
  SHA2_384: 105,
  SHA2_512: 106,
  SHA2_224_HMAC: 107,
} as const;
export type CryptodevAlgId = (typeof CryptodevAlg)[keyof typeof CryptodevAlg];

const CIPHERS: ReadonlySet<number> = new Set([CryptodevAlg.AES_CBC, CryptodevAlg.AES_CTR, CryptodevAlg.AES_XTS, CryptodevAlg.AES_ECB]);
const MACS: ReadonlySet<number> = new Set([
  CryptodevAlg.MD5_HMAC, CryptodevAlg.SHA1_HMAC, CryptodevAlg.SHA2_224_HMAC, CryptodevAlg.SHA2_256_HMAC, CryptodevAlg.SHA2_384_HMAC, CryptodevAlg.SHA2_512_HMAC,
]);
const HASHES: ReadonlySet<number> = new Set([CryptodevAlg.MD5, CryptodevAlg.SHA1, CryptodevAlg.SHA2_224, CryptodevAlg.SHA2_256, CryptodevAlg.SHA2_384, CryptodevAlg.SHA2_512]);
const DIGEST_BYTES: Readonly<Record<number, number>> = {
  [CryptodevAlg.MD5_HMAC]: 16,
  [CryptodevAlg.MD5]: 16,
  [CryptodevAlg.SHA1_HMAC]: 20,
  [CryptodevAlg.SHA1]: 20,
  [CryptodevAlg.SHA2_224_HMAC]: 28,
  [CryptodevAlg.SHA2_224]: 28,
  [CryptodevAlg.SHA2_256_HMAC]: 32,
  [CryptodevAlg.SHA2_256]: 32,
  [CryptodevAlg.SHA2_384_HMAC]: 48,
  [CryptodevAlg.SHA2_384]: 48,
  [CryptodevAlg.SHA2_512_HMAC]: 64,
  [CryptodevAlg.SHA2_512]: 64,
};

/** COP_FLAG_* bits of crypt_op.flags. */
export const CopFlag = { UPDATE: 1, FINAL: 2, WRITE_IV: 4, NO_ZC: 8 } as const;
/** session_info_op.flags: the driver is a hardware/kernel-only implementation. */
export const SIOP_FLAG_KERNEL_DRIVER_ONLY = 1;

const AES_BLOCK = 16;
const MAX_CIPHER_KEY = 64;
const MAX_MAC_KEY = 512;
/** The kernel writes at most AALG_MAX_RESULT_LEN bytes of digest. */
const MAC_BUFFER = 64;
const MAX_OP_BYTES = 0xffffffff;

export const DEFAULT_CRYPTODEV_PATH = '/dev/crypto';

/** A failed open/ioctl/close on the cryptodev device. */
export class CryptodevError extends Error {
  constructor(
    message: string,
    readonly errno: number,
    readonly code: string,
    readonly syscall: string,
  ) {
    super(message);
    this.name = 'CryptodevError';
  }
}

export interface SessionOptions {
  /** Cipher algorithm (e.g. CryptodevAlg.AES_CBC); omit for a hash/MAC-only session. */
  readonly cipher?: CryptodevAlgId;
  readonly key?: Uint8Array;
  /** MAC or hash algorithm (e.g. CryptodevAlg.SHA2_256_HMAC); omit for a cipher-only session. */
  readonly mac?: CryptodevAlgId;
  readonly macKey?: Uint8Array;
}

export interface SessionInfo {
  readonly cipherName: string;
  readonly cipherDriver: string;
  readonly hashName: string;
  readonly hashDriver: string;
  readonly alignmask: number;
  readonly flags: number;
  /** SIOP_FLAG_KERNEL_DRIVER_ONLY is set: the driver is not a plain software implementation. */
  readonly kernelDriverOnly: boolean;
}

export interface CryptOptions {
  /** COP_FLAG_WRITE_IV: the kernel writes the chaining IV (last ciphertext block for CBC) back into `iv`. */
  readonly writeIv?: boolean;
  /** Output buffer (same length as the input); a new one is allocated when omitted. */
  readonly dst?: Buffer;
}

interface RawSessionInfo {
  cipherName: string;
  cipherDriver: string;
  hashName: string;
  hashDriver: string;
  alignmask: number;
  flags: number;
}

interface Native {
  open(path: string): number;
  clone(fd: number): number;
  close(fd: number): void;
  createSession(fd: number, cipher: number, key: Buffer | null, mac: number, macKey: Buffer | null): number;
  freeSession(fd: number, ses: number): void;
  crypt(fd: number, ses: number, op: number, flags: number, src: Buffer, dst: Buffer | null, iv: Buffer | null, mac: Buffer | null): void;
  cryptAsync(fd: number, ses: number, op: number, flags: number, src: Buffer, dst: Buffer | null, iv: Buffer | null, mac: Buffer | null): Promise<void>;
  sessionInfo(fd: number, ses: number): RawSessionInfo;
}

let native: Native | undefined;
function bindings(): Native {
  native ??= {
    open: nativeFunction('cryptodevOpen'),
    clone: nativeFunction('cryptodevClone'),
    close: nativeFunction('cryptodevClose'),
    createSession: nativeFunction('cryptodevCreateSession'),
    freeSession: nativeFunction('cryptodevFreeSession'),
    crypt: nativeFunction('cryptodevCrypt'),
    cryptAsync: nativeFunction('cryptodevCryptAsync'),
    sessionInfo: nativeFunction('cryptodevSessionInfo'),
  };
  return native;
}

function typed(err: unknown): unknown {
  if (err instanceof Error && typeof (err as { errno?: unknown }).errno === 'number') {
    const e = err as Error & { errno: number; code: string; syscall: string };
    return new CryptodevError(e.message, e.errno, e.code, e.syscall);
  }
  return err;
}

/** Re-throws the addon's plain Error (errno/code/syscall properties) as a typed CryptodevError. */
function call<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw typed(err);
  }
}

function asBuffer(data: Uint8Array): Buffer {
  return Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

/**
 * Whether `/dev/crypto` can be used here, with the reason when not (for start-up lines and test
 * skips). Opens and closes the device; never throws.
 */
export function probeCryptodev(path: string = DEFAULT_CRYPTODEV_PATH): { ok: true } | { ok: false; reason: string } {
  if (!fs.existsSync(path)) return { ok: false, reason: `${path} does not exist on this machine` };
  try {
    CryptodevDevice.open(path).close();
    return { ok: true };
  } catch (err) {
    return { ok: false, reason: `${path} cannot be opened: ${(err as Error).message}` };
  }
}

/** One open descriptor on /dev/crypto. Sessions belong to the descriptor that created them. */
export class CryptodevDevice {
  private open_ = true;
  private readonly sessions = new Set<CryptodevSession>();

  private constructor(
    readonly fd: number,
    readonly path: string,
  ) {}

  /** open(path, O_RDWR|O_CLOEXEC). */
  static open(path: string = DEFAULT_CRYPTODEV_PATH): CryptodevDevice {
    if (typeof path !== 'string' || path.length === 0 || path.includes('\0')) throw new TypeError('path must be a non-empty string');
    return new CryptodevDevice(call(() => bindings().open(path)), path);
  }

  get isOpen(): boolean {
    return this.open_;
  }

  /** Sessions created on this descriptor and not yet closed. */
  get sessionCount(): number {
    return this.sessions.size;
  }

  /** CRIOGET: a second descriptor on the same device (the classic BSD cryptodev opening step). */
  clone(): CryptodevDevice {
    this.assertOpen();
    return new CryptodevDevice(call(() => bindings().clone(this.fd)), this.path);
  }

  /** CIOCGSESSION. Key sizes are checked here: cipher keys ≤ 64 bytes, MAC keys ≤ 512. */
  createSession(opts: SessionOptions): CryptodevSession {
    this.assertOpen();
    const cipher = opts.cipher ?? 0;
    const mac = opts.mac ?? 0;
    if (cipher === 0 && mac === 0) throw new TypeError('a session needs a cipher, a mac, or both');
    if (cipher !== 0 && !CIPHERS.has(cipher)) throw new TypeError(`unknown cipher algorithm ${cipher}`);
    if (mac !== 0 && !MACS.has(mac) && !HASHES.has(mac)) throw new TypeError(`unknown mac/hash algorithm ${mac}`);
    const key = opts.key ? asBuffer(opts.key) : null;
    const macKey = opts.macKey ? asBuffer(opts.macKey) : null;
    if (cipher !== 0) {
      if (!key || key.length === 0) throw new TypeError('a cipher session needs a key');
      if (key.length > MAX_CIPHER_KEY) throw new RangeError(`cipher key is ${key.length} bytes; the limit is ${MAX_CIPHER_KEY}`);
      if ((cipher === CryptodevAlg.AES_XTS ? [32, 64] : [16, 24, 32]).indexOf(key.length) < 0) {
        throw new RangeError(`key length ${key.length} is not valid for this AES mode`);
      }
    } else if (key) throw new TypeError('key given without a cipher');
    if (MACS.has(mac)) {
      // Any length up to the limit, 0 included (cryptodev-linux hands it to the kernel's HMAC setkey).
      if (!macKey) throw new TypeError('an HMAC session needs a macKey');
      if (macKey.length > MAX_MAC_KEY) throw new RangeError(`mac key is ${macKey.length} bytes; the limit is ${MAX_MAC_KEY}`);
    } else if (macKey) throw new TypeError('macKey given without an HMAC algorithm');
    const ses = call(() => bindings().createSession(this.fd, cipher, key, mac, macKey));
    const session = new CryptodevSession(this, ses, cipher, mac);
    this.sessions.add(session);
    return session;
  }

  /** Frees every session still open, then closes the descriptor. Idempotent. */
  close(): void {
    if (!this.open_) return;
    if ([...this.sessions].some((s) => s.pending > 0)) throw new Error('cannot close the cryptodev descriptor while operations are in flight');
    for (const s of [...this.sessions]) {
      try {
        s.close();
      } catch {
        // The descriptor is going away; the kernel frees whatever is left with it.
      }
    }
    this.open_ = false;
    call(() => bindings().close(this.fd));
  }

  /** @internal */
  forget(session: CryptodevSession): void {
    this.sessions.delete(session);
  }

  /** @internal */
  assertOpen(): void {
    if (!this.open_) throw new Error(`cryptodev descriptor ${this.fd} is closed`);
  }
}

/** A CIOCGSESSION session: cipher and/or MAC with fixed keys. */
export class CryptodevSession {
  private open_ = true;
  private inFlight = 0;

  /** @internal — use CryptodevDevice.createSession. */
  constructor(
    readonly device: CryptodevDevice,
    readonly id: number,
    readonly cipher: number,
    readonly mac: number,
  ) {}

  get isOpen(): boolean {
    return this.open_;
  }

  /** CIOCCRYPT, COP_ENCRYPT. */
  encrypt(src: Uint8Array, iv: Buffer | null, opts: CryptOptions = {}): Buffer {
    return this.cipherOp(0, src, iv, opts);
  }

  /** CIOCCRYPT, COP_DECRYPT. */
  decrypt(src: Uint8Array, iv: Buffer | null, opts: CryptOptions = {}): Buffer {
    return this.cipherOp(1, src, iv, opts);
  }

  /** encrypt() on a worker thread: the JS thread keeps running while the device works. */
  encryptAsync(src: Uint8Array, iv: Buffer | null, opts: CryptOptions = {}): Promise<Buffer> {
    return this.cipherOpAsync(0, src, iv, opts);
  }

  /** decrypt() on a worker thread. */
  decryptAsync(src: Uint8Array, iv: Buffer | null, opts: CryptOptions = {}): Promise<Buffer> {
    return this.cipherOpAsync(1, src, iv, opts);
  }

  /** Asynchronous operations not yet finished (the session cannot be closed meanwhile). */
  get pending(): number {
    return this.inFlight;
  }

  /** CIOCCRYPT on a MAC/hash-only session: the digest of `data`. */
  digest(data: Uint8Array): Buffer {
    this.assertOpen();
    if (this.cipher !== 0 || this.mac === 0) throw new TypeError('digest() needs a MAC/hash-only session');
    const src = asBuffer(data);
    if (src.length > MAX_OP_BYTES) throw new RangeError('input too long');
    const out = Buffer.alloc(MAC_BUFFER);
    call(() => bindings().crypt(this.device.fd, this.id, 0, 0, src, null, null, out));
    return out.subarray(0, DIGEST_BYTES[this.mac] ?? MAC_BUFFER);
  }

  /** CIOCGSESSINFO: which kernel drivers serve this session. */
  info(): SessionInfo {
    this.assertOpen();
    const raw = call(() => bindings().sessionInfo(this.device.fd, this.id));
    return { ...raw, kernelDriverOnly: (raw.flags & SIOP_FLAG_KERNEL_DRIVER_ONLY) !== 0 };
  }

  /** CIOCFSESSION. Idempotent. */
  close(): void {
    if (!this.open_) return;
    if (this.inFlight > 0) throw new Error(`cryptodev session ${this.id} has ${this.inFlight} operation(s) in flight`);
    this.open_ = false;
    this.device.forget(this);
    if (this.device.isOpen) call(() => bindings().freeSession(this.device.fd, this.id));
  }

  private async cipherOpAsync(op: 0 | 1, data: Uint8Array, iv: Buffer | null, opts: CryptOptions): Promise<Buffer> {
    const { src, dst, flags, ivArg } = this.prepare(data, iv, opts);
    this.inFlight++;
    try {
      await bindings().cryptAsync(this.device.fd, this.id, op, flags, src, dst, ivArg, null);
    } catch (err) {
      throw typed(err);
    } finally {
      this.inFlight--;
    }
    return dst;
  }

  private cipherOp(op: 0 | 1, data: Uint8Array, iv: Buffer | null, opts: CryptOptions): Buffer {
    const { src, dst, flags, ivArg } = this.prepare(data, iv, opts);
    call(() => bindings().crypt(this.device.fd, this.id, op, flags, src, dst, ivArg, null));
    return dst;
  }

  private prepare(data: Uint8Array, iv: Buffer | null, opts: CryptOptions): { src: Buffer; dst: Buffer; flags: number; ivArg: Buffer | null } {
    this.assertOpen();
    if (this.cipher === 0) throw new TypeError('this session has no cipher');
    const src = asBuffer(data);
    if (src.length === 0) throw new RangeError('input is empty');
    if (src.length > MAX_OP_BYTES) throw new RangeError('input too long');
    // XTS too: cryptodev-linux refuses a partial last block (EINVAL), no ciphertext stealing.
    if (this.cipher !== CryptodevAlg.AES_CTR && src.length % AES_BLOCK !== 0) {
      throw new RangeError(`input length ${src.length} is not a multiple of the ${AES_BLOCK}-byte AES block`);
    }
    const needsIv = this.cipher !== CryptodevAlg.AES_ECB;
    if (needsIv && (!iv || iv.length !== AES_BLOCK)) throw new RangeError(`this mode needs a ${AES_BLOCK}-byte IV`);
    if (!needsIv && iv) throw new TypeError('ECB takes no IV');
    if (opts.writeIv && !needsIv) throw new TypeError('writeIv needs a mode with an IV');
    const dst = opts.dst ?? Buffer.alloc(src.length);
    if (dst.length !== src.length) throw new RangeError(`dst is ${dst.length} bytes; expected ${src.length}`);
    const flags = opts.writeIv ? CopFlag.WRITE_IV : 0;
    return { src, dst, flags, ivArg: needsIv ? iv : null };
  }

  private assertOpen(): void {
    if (!this.open_) throw new Error(`cryptodev session ${this.id} is closed`);
    this.device.assertOpen();
  }
}
