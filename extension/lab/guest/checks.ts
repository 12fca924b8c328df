/**
 * Checks run inside the guest over SSH that show the virtio-crypto device doing real work: which driver
 * is bound, what /proc/crypto says about the virtio algorithm, and an AES-CBC round trip through the
 * kernel crypto API (kcapi-enc, AF_ALG) compared byte for byte with the host's OpenSSL.
 * Guest output is untrusted: parsed defensively, lengths capped.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import type { SshSession } from './ssh';

/** virtio device ID of crypto devices (virtio 1.2 §5). */
const VIRTIO_ID_CRYPTO = 20;
/** busybox copied into the guest's /run by the init (xxd there makes binary data travel as hex). */
const GUEST_BUSYBOX = '/run/vlab/busybox';
const MAX_ROUND_TRIP_BYTES = 1 << 20;

export interface BoundDriver {
  /** sysfs name of the virtio device, e.g. "virtio3". */
  readonly device: string;
  /** Bound driver name, or null when no driver is bound. */
  readonly driver: string | null;
}

/** Every virtio-crypto device in the guest and the driver bound to it. */
export async function virtioCryptoDrivers(session: SshSession): Promise<BoundDriver[]> {
  const script =
    'for d in /sys/bus/virtio/devices/*; do [ -e "$d/device" ] || continue; ' +
    'printf "%s %s %s\\n" "${d##*/}" "$(cat "$d/device")" "$(basename "$(readlink "$d/driver" 2>/dev/null)" 2>/dev/null)"; done';
  const res = await session.run({ shell: script }, { timeoutMs: 15_000, maxOutputBytes: 64 * 1024 });
  const out: BoundDriver[] = [];
  for (const line of res.stdout.split('\n')) {
    const [device, id, driver] = line.trim().split(/\s+/);
    if (!device || !id || Number.parseInt(id, 16) !== VIRTIO_ID_CRYPTO) continue;
    out.push({ device, driver: driver && driver !== '.' ? driver : null });
  }
  return out;
}

export type ProcCryptoEntry = Readonly<Record<string, string>>;

export function parseProcCrypto(text: string): ProcCryptoEntry[] {
  const entries: ProcCryptoEntry[] = [];
  for (const block of text.split(/\n\s*\n/)) {
    const entry: Record<string, string> = {};
    for (const line of block.split('\n')) {
      const m = /^([a-z0-9_ ]+?)\s*:\s*(.*)$/.exec(line);
      if (m) entry[m[1]!] = m[2]!.trim();
    }
    if (entry.name) entries.push(entry);
  }
  return entries;
}

/** The /proc/crypto entries whose driver is `driver` (e.g. "virtio_crypto_aes_cbc"). */
export async function procCryptoEntries(session: SshSession, driver: string): Promise<ProcCryptoEntry[]> {
  const res = await session.run(['cat', '/proc/crypto'], { timeoutMs: 15_000, maxOutputBytes: 4 * 1024 * 1024 });
  return parseProcCrypto(res.stdout).filter((e) => e.driver === driver);
}

/** Host `openssl enc -aes-N-cbc -nopad` (input must be whole 16-byte blocks). */
export function hostOpensslEncrypt(key: Buffer, iv: Buffer, plaintext: Buffer): Promise<Buffer> {
  const cipher = `-aes-${key.length * 8}-cbc`;
  return new Promise((resolve, reject) => {
    const child = execFile('openssl', ['enc', cipher, '-nopad', '-K', key.toString('hex'), '-iv', iv.toString('hex')], { encoding: 'buffer', maxBuffer: 4 * MAX_ROUND_TRIP_BYTES }, (err, stdout, stderr) => {
      if (err) reject(new Error(`host openssl enc failed: ${err.message} ${stderr.toString('utf8').slice(0, 500)}`));
      else resolve(stdout);
    });
    child.stdin?.end(plaintext);
  });
}

function hexOf(text: string): Buffer {
  const clean = text.replace(/\s+/g, '');
  if (!/^([0-9a-f]{2})*$/i.test(clean)) throw new Error(`guest returned non-hex output: ${clean.slice(0, 80)}`);
  return Buffer.from(clean, 'hex');
}

/** kcapi-enc in the guest with the cipher pinned to one kernel driver; data in and out as bytes. */
async function guestKcapi(session: SshSession, mode: '-e' | '-d', driver: string, key: Buffer, iv: Buffer, input: Buffer): Promise<Buffer> {
  // The key travels as hex on the command line of a guest shell that writes it to a tmpfs file given to
  // kcapi-enc as --keyfd (the key never touches the workspace). Output comes back as hex (busybox xxd).
  const script =
    `umask 077; k=$(mktemp); printf %s ${key.toString('hex')} | ${GUEST_BUSYBOX} xxd -r -p >"$k"; ` +
    `kcapi-enc -q ${mode}${mode === '-d' ? ' --nounpad' : ''} -c ${driver} --iv ${iv.toString('hex')} --keyfd 3 3<"$k" | ${GUEST_BUSYBOX} xxd -p; ` +
    `rc=$?; rm -f "$k"; exit $rc`;
  const res = await session.run({ shell: script }, { stdin: input, timeoutMs: 60_000, maxOutputBytes: 4 * MAX_ROUND_TRIP_BYTES });
  if (res.code !== 0) throw new Error(`kcapi-enc ${mode} failed (exit ${res.code}): ${res.stderr.slice(0, 500)}`);
  return hexOf(res.stdout);
}

export interface RoundTripResult {
  readonly ok: boolean;
  readonly bytes: number;
  readonly keyBits: number;
  /** Guest ciphertext equals the host's `openssl enc` output. */
  readonly matchesOpenssl: boolean;
  /** Guest decryption gives the plaintext back. */
  readonly decrypts: boolean;
  readonly detail: string;
}

/**
 * AES-CBC through `driver` in the guest vs host OpenSSL, on whole blocks without padding (kcapi-enc pads
 * only partial blocks, OpenSSL always adds a block: comparing unpadded whole blocks is exact).
 */
export async function kcapiRoundTrip(
  session: SshSession,
  opts: { driver?: string; bytes?: number; keyBytes?: 16 | 24 | 32 } = {},
): Promise<RoundTripResult> {
  const driver = opts.driver ?? 'virtio_crypto_aes_cbc';
  const bytes = Math.min(Math.max(Math.ceil((opts.bytes ?? 4096) / 16) * 16, 16), MAX_ROUND_TRIP_BYTES);
  const key = randomBytes(opts.keyBytes ?? 16);
  const iv = randomBytes(16);
  const plaintext = randomBytes(bytes);
  const expected = await hostOpensslEncrypt(key, iv, plaintext);
  const ciphertext = await guestKcapi(session, '-e', driver, key, iv, plaintext);
  const matchesOpenssl = ciphertext.equals(expected);
  const decrypted = matchesOpenssl ? await guestKcapi(session, '-d', driver, key, iv, ciphertext) : Buffer.alloc(0);
  const decrypts = decrypted.equals(plaintext);
  const detail = !matchesOpenssl
    ? `ciphertext differs from host openssl (${ciphertext.length} vs ${expected.length} bytes)`
    : !decrypts
      ? 'decryption in the guest did not give the plaintext back'
      : `AES-${key.length * 8}-CBC, ${bytes} bytes: guest ciphertext equals host openssl, decrypts back`;
  return { ok: matchesOpenssl && decrypts, bytes, keyBits: key.length * 8, matchesOpenssl, decrypts, detail };
}
