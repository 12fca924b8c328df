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
