/**
 * The checks of `vlab check driver` (docs/checking.md): id, section, title and points of each, in the
 * order they run and print. Data only; the sections (api.ts, concurrency.ts, robustness.ts,
 * hygiene.ts, conformance.ts) decide pass or fail and the result builder (results.ts) fills in the rest.
 */
import type { GradeSectionId } from './grade-report';

export interface CheckSpec {
  readonly id: string;
  readonly section: GradeSectionId;
  readonly title: string;
  readonly points: number;
}

const spec = (id: string, title: string, points: number): CheckSpec => ({
  id, section: id.slice(0, id.indexOf('.')) as GradeSectionId, title, points,
});

export const CHECKS = {
  // API: what a cryptodev-linux client sees (known answers, host OpenSSL, errno, documented behaviour).
  apiKat: spec('api.kat', 'known answers: NIST SP 800-38A AES (CBC, CTR, ECB; 128/192/256) and RFC 4231 HMAC', 8),
  apiAlgs: spec('api.algs', 'every algorithm family: hashes, HMAC, NULL, 3DES, XTS, GCM, TLS, SRTP, CIOCGSESSINFO', 6),
  apiRandom: spec('api.random', 'random keys, IVs and lengths (16 B .. 64 KiB) against the host\'s OpenSSL', 6),
  apiErrors: spec('api.errors', 'errno on bad input: bad session, bad lengths, unaligned, too large, unmapped (near-NULL) and read-only pointers', 6),
  apiDocumented: spec('api.documented', 'cryptodev-linux documented behaviour: CBC in-place next IV, CIOCCPHASH hash state copy', 4),
  // Concurrency.
  concProcesses: spec('concurrency.processes', 'processes on many sessions of every kind, each operation checked', 5),
  concThreads: spec('concurrency.threads', 'threads on one session (explicit IV), large requests in parallel', 5),
  concImplicitIv: spec('concurrency.implicit-iv', 'threads sharing one session\'s implicit IV (CTR): one sequential keystream', 5),
  // Robustness: one check per fault class of `vlab fault` (docs/fault-injection.md).
  robStatus: spec('robustness.status', 'device status ERR / BADMSG / NOTSUPP / INVSESS reach the caller as EIO / EBADMSG / EOPNOTSUPP / EINVAL', 5),
  robDelay: spec('robustness.delay', 'a late completion (delay=300) still succeeds', 2),
  robIrq: spec('robustness.irq', 'a withheld and a duplicated interrupt: both requests complete, errno 0', 3),
  robFlip: spec('robustness.flip-dst', 'flipped output (undetectable by a driver) returns, with the device\'s bytes', 1),
  robShortUsed: spec('robustness.short-used', 'a short used length is EIO and no stale kernel memory reaches the caller\'s buffer', 4),
  robStallKill: spec('robustness.no-d-state', 'no process left in D state: kill -9 ends a waiter on a stalled queue', 2),
  robStallRmmod: spec('robustness.stall-rmmod', 'rmmod works while the device is stalled', 3),
  robStallTimeout: spec('robustness.stall-timeout', 'a request on a stalled queue ends (ETIMEDOUT) instead of waiting forever', 3),
  robRecovers: spec('robustness.recovers', 'after fault clear and insmod the driver passes its known answers again', 2),
  // Hygiene.
  hygSessions: spec('hygiene.sessions', 'no session left in the device after CIOCFSESSION, close and process exit', 5),
  hygPages: spec('hygiene.pages', 'no leaked pages: MemFree after 256 x 64 KiB bounce-buffer requests within 4 MiB of before', 4),
  hygUnload: spec('hygiene.unload', 'rmmod is clean (module gone, device node gone) and insmod works again', 3),
  hygDmesg: spec('hygiene.dmesg', 'dmesg of the whole run without WARNING, BUG, Oops, hung task or refcount splats', 3),
  // Conformance: the back-end's oracle over the whole run (one check per violated rule when it fails).
  conformance: spec('conformance.oracle', '0 violations of virtio 1.2 driver rules over the whole run (the back-end\'s oracle)', 15),
} as const satisfies Record<string, CheckSpec>;

export type CheckKey = keyof typeof CHECKS;

/** Every check in run order (the conformance one may become one check per violated rule). */
export const ALL_CHECKS: readonly CheckSpec[] = Object.values(CHECKS);

/**
 * The checks of `vlab check driver --afalg`: upstream Linux `virtio_crypto` graded through AF_ALG
 * (kernel crypto API, no /dev/crypto). Only what applies to a kernel-crypto-API driver that offers
 * AES-CBC alone is listed (docs/checking.md, "Grading the upstream driver through AF_ALG").
 */
export const AFALG_CHECKS = {
  apiRouting: spec('api.routing', 'AF_ALG bound to the driver by name reaches the device: /proc/crypto names it (self-test passed), the back-end\'s request counter moves', 4),
  apiKat: spec('api.kat', 'known answers: NIST SP 800-38A AES-CBC 128/192/256, encrypt and decrypt', 8),
  apiRandom: spec('api.random', 'random keys, IVs and lengths (16 B .. 32 KiB) against the host\'s OpenSSL, decrypted back', 6),
  apiErrors: spec('api.errors', 'errno on bad input: a 15-byte key is EINVAL at setkey, 17 bytes is EINVAL at read', 4),
  concProcesses: spec('concurrency.processes', 'processes at once, each on its own transforms, every operation checked against libcrypto', 6),
  robStatus: spec('robustness.status', 'device status ERR / BADMSG / NOTSUPP / INVSESS reach the AF_ALG read as EINVAL / EBADMSG / EIO / EINVAL', 4),
  robStallClear: spec('robustness.stall-clear', 'a request on a stalled queue completes after fault clear; no process left in D state', 4),
  hygSessions: spec('hygiene.sessions', 'the device\'s sessions back to where they were once the sockets are closed', 5),
  hygUnload: spec('hygiene.unload', 'rmmod virtio_crypto is clean (the algorithm gone from /proc/crypto) and modprobe brings it back, known answers again', 3),
  hygDmesg: spec('hygiene.dmesg', 'dmesg of the whole run without WARNING, BUG, Oops, hung task or refcount splats', 3),
  conformance: CHECKS.conformance,
} as const satisfies Record<string, CheckSpec>;

export const ALL_AFALG_CHECKS: readonly CheckSpec[] = Object.values(AFALG_CHECKS);
