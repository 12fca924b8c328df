/**
 * `vlab bench e2e`: AES-256-CBC, SHA-256 and HMAC-SHA256 from guest userspace through /dev/crypto (our
 * driver -> virtio -> backend, or the guest kernel where the driver falls back), per backend, with two
 * no-offload baselines measured in the same guest: the guest tool's own OpenSSL EVP loop and
 * `openssl speed`. One VM per backend, each in its own temporary state folder so a lab the user has
 * running is left alone. `--speed` instead runs the guest tool's cryptodev-linux-style speed mode.
 */
import { type BenchBoot, type BenchGuestsOptions, eachBenchGuest } from './guests';
import { GUEST_TOOL_PATH } from '../lab/driver/driver';
import { throwIfAborted } from '../lab/common/errors';
import { E2E_ALGS, type E2eAlg, type SpeedLine, opensslSpeedArgs, parseOpensslSpeed, parseSpeedLines, pointAlg } from './openssl-speed';
import type { BackendKind } from '../lab/state';

export { E2E_ALGS, type E2eAlg } from './openssl-speed';
export { E2E_ALG_LABELS, isE2eAlg, pointAlg } from './openssl-speed';

export const E2E_SIZES = [64, 1024, 16 * 1024, 64 * 1024] as const;
export const E2E_PROCS = [1, 8] as const;
/** The report format `--json` writes. 1: AES-256-CBC only, no openssl speed; 2: `alg`, openssl speed, targets. */
export const E2E_SCHEMA = 2;
/** Untimed /dev/crypto traffic per algorithm before a backend's first point. */
export const E2E_WARMUP_MS = 500;

/** Where a point was measured: through /dev/crypto on a backend, the tool's OpenSSL loop, `openssl speed`. */
export type E2eSource = BackendKind | 'software' | 'openssl-speed';

export interface E2ePoint {
  /** Absent in schema 1 reports, which measured AES-256-CBC only. */
  readonly alg?: E2eAlg;
  readonly source: E2eSource;
  readonly size: number;
  readonly procs: number;
  readonly ops: number;
  readonly seconds: number;
  readonly opsPerSec: number;
  readonly MBps: number;
}

export interface E2eRatio {
  /** Absent in schema 1 reports (AES-256-CBC). */
  readonly alg?: E2eAlg;
  readonly size: number;
  readonly procs: number;
  /** ts ops/s over builtin ops/s (absent unless both ran). */
  readonly tsOverBuiltin?: number;
  /** Each backend's ops/s over the guest tool's software loop. */
  readonly builtinOverSoftware?: number;
  readonly tsOverSoftware?: number;
  /** Each backend's ops/s over the guest's `openssl speed` (schema 2). */
  readonly builtinOverSpeed?: number;
  readonly tsOverSpeed?: number;
}

/** One of issue #11's performance targets, judged on this run's AES-256-CBC points. */
export interface E2eTarget {
  readonly id: 'ts-speed-64k' | 'ts-speed-16k' | 'ts-ge-builtin';
  readonly text: string;
  /** undefined: a point it needs was not measured. */
  readonly met?: boolean;
  readonly detail: string;
}

/** One guest boot the benchmark did: QEMU start to SSH, as `vlab status` reports it. */
export type E2eBoot = BenchBoot;

export interface E2eReport {
  readonly schema: 1 | 2;
  readonly accel: string;
  /** Why that accelerator (the lab's own sentence). */
  readonly accelWhy?: string;
  /** The boots this run did, one per backend. */
  readonly boots?: readonly E2eBoot[];
  /** Measuring time per point of the guest tool, ms. */
  readonly durationMs: number;
  /** Schema 2: the algorithms measured. */
  readonly algs?: readonly E2eAlg[];
  /** Schema 2: the `openssl speed` baseline (`openssl version` in the guest, -seconds per point). */
  readonly opensslSpeed?: { readonly version: string; readonly seconds: number };
  /** Schema 2: the whole run's wall-clock time, boots and builds included. */
  readonly totalSec?: number;
  readonly points: readonly E2ePoint[];
  readonly ratios: readonly E2eRatio[];
  /** Schema 2. */
  readonly targets?: readonly E2eTarget[];
}

/** `vlab bench e2e --speed`: the guest tool's speed mode per backend and algorithm. */
export interface E2eSpeedRun {
  readonly backend: BackendKind;
  readonly alg: E2eAlg;
  readonly lines: readonly SpeedLine[];
  /** The tool's output as printed. */
  readonly text: string;
}

export interface E2eSpeedReport {
  readonly schema: 2;
  readonly mode: 'speed';
  readonly accel: string;
  readonly accelWhy?: string;
  readonly boots: readonly E2eBoot[];
  readonly secondsPerSize: number;
  readonly totalSec: number;
  readonly runs: readonly E2eSpeedRun[];
}

export interface E2eOptions extends BenchGuestsOptions {
  readonly durationMs: number;
  /** Default: all of E2E_ALGS. */
  readonly algs?: readonly E2eAlg[];
  /** Default: all of E2E_SIZES. */
  readonly sizes?: readonly number[];
  /** Default: all of E2E_PROCS. */
  readonly procs?: readonly number[];
  /** Skip the `openssl speed` baseline. */
  readonly noOpensslSpeed?: boolean;
}

interface ToolResult {
  ops: number;
  seconds: number;
  opsPerSec: number;
  MBps: number;
}

function parseToolLine(stdout: string): ToolResult {
  const line = stdout.trim().split('\n').at(-1) ?? '';
  const v = JSON.parse(line) as Partial<ToolResult> & { error?: string };
  if (v.error || typeof v.ops !== 'number' || typeof v.seconds !== 'number') throw new Error(`bench tool: ${line}`);
  return { ops: v.ops, seconds: v.seconds, opsPerSec: v.opsPerSec ?? 0, MBps: v.MBps ?? 0 };
}

/** a / b, two decimals; four below 0.1 so a small ratio (0.0034) does not read as 0. */
function ratio(a: number | undefined, b: number | undefined): number | undefined {
  if (a === undefined || !b) return undefined;
  const r = a / b;
  return r < 0.1 ? Math.round(r * 10_000) / 10_000 : Math.round(r * 100) / 100;
}

/** Ratios per algorithm present, size and process count (E2E_SIZES x E2E_PROCS for each). */
export function computeRatios(points: readonly E2ePoint[]): E2eRatio[] {
  const algs = E2E_ALGS.filter((a) => points.some((p) => pointAlg(p) === a));
  const tagged = points.some((p) => p.alg !== undefined);
  const out: E2eRatio[] = [];
  for (const alg of algs) {
    const find = (source: E2eSource, size: number, procs: number): number | undefined =>
      points.find((p) => pointAlg(p) === alg && p.source === source && p.size === size && p.procs === procs)?.opsPerSec;
    for (const size of E2E_SIZES) {
      for (const procs of E2E_PROCS) {
        const b = find('builtin', size, procs);
        const t = find('ts', size, procs);
        const s = find('software', size, procs);
        const o = find('openssl-speed', size, procs);
        out.push({
          ...(tagged ? { alg } : {}),
          size,
          procs,
          tsOverBuiltin: ratio(t, b),
          builtinOverSoftware: ratio(b, s),
          tsOverSoftware: ratio(t, s),
          ...(o !== undefined ? { builtinOverSpeed: ratio(b, o), tsOverSpeed: ratio(t, o) } : {}),
        });
      }
    }
  }
  return out;
}

/**
 * Issue #11's targets (TCG, same guest), judged on AES-256-CBC: ts >= 2x `openssl speed -evp` at 64 KiB
 * and >= 1.0x at 16 KiB with 1 process; ts >= builtin at every size with 1 and 8 processes.
 * Ratios are from the unrounded points.
 */
export function judgeTargets(points: readonly E2ePoint[]): E2eTarget[] {
  const ops = (source: E2eSource, size: number, procs: number): number | undefined =>
    points.find((p) => pointAlg(p) === 'aes-256-cbc' && p.source === source && p.size === size && p.procs === procs)?.opsPerSec;
  const vsSpeed = (id: 'ts-speed-64k' | 'ts-speed-16k', size: number, want: number): E2eTarget => {
    const t = ops('ts', size, 1);
    const o = ops('openssl-speed', size, 1);
    const text = `ts >= ${want.toFixed(1)}x openssl speed at ${size / 1024} KiB, 1 process`;
    if (t === undefined || !o) return { id, text, detail: 'not measured' };
    const r = t / o;
    return { id, text, met: r >= want, detail: `${r.toFixed(2)}x` };
  };
  const pairs: string[] = [];
  let missing = false;
  let allMet = true;
  for (const size of E2E_SIZES) {
    for (const procs of E2E_PROCS) {
      const t = ops('ts', size, procs);
      const b = ops('builtin', size, procs);
      if (t === undefined || !b) {
        missing = true;
        continue;
      }
      if (t < b) {
        allMet = false;
        pairs.push(`${sizeLabel(size)} x${procs}: ${(t / b).toFixed(2)}x`);
      }
    }
  }
  const geText = 'ts >= builtin at every size, 1 and 8 processes';
  const ge: E2eTarget = missing
    ? { id: 'ts-ge-builtin', text: geText, detail: 'not measured (needs both backends at every point)' }
    : { id: 'ts-ge-builtin', text: geText, met: allMet, detail: allMet ? 'every point' : `below at ${pairs.join(', ')}` };
  return [vsSpeed('ts-speed-64k', 64 * 1024, 2), vsSpeed('ts-speed-16k', 16 * 1024, 1), ge];
}

function sizeLabel(b: number): string {
  return b >= 1024 ? `${b / 1024} KiB` : `${b} B`;
}

/** `openssl speed -seconds` for a --ms: whole seconds, at least 1. */
export function opensslSecondsFor(durationMs: number): number {
  return Math.max(1, Math.round(durationMs / 1000));
}

export async function benchE2e(opts: E2eOptions): Promise<E2eReport> {
  const t0 = Date.now();
  const algs = opts.algs ?? E2E_ALGS;
  const sizes = opts.sizes ?? E2E_SIZES;
  const procsList = opts.procs ?? E2E_PROCS;
  const points: E2ePoint[] = [];
  const say = (m: string): void => opts.onProgress?.(m);
  const speedSec = opensslSecondsFor(opts.durationMs);
  let opensslVersion: string | undefined;
  const line = (p: E2ePoint): string =>
    `${pointAlg(p).padEnd(11)} ${p.source.padEnd(13)} ${String(p.size).padStart(6)} B x${p.procs}: ${p.opsPerSec.toFixed(0)} ops/s, ${p.MBps.toFixed(2)} MB/s`;
  const guests = await eachBenchGuest('bench e2e', opts, async (backend, { session, first }) => {
    const modes: Array<['dev' | 'sw', E2eSource]> = [['dev', backend]];
    if (first) modes.push(['sw', 'software']);
    // Untimed warm-up per algorithm: in both runs before this, each backend's first point (right after
    // boot) was its slowest whatever the size.
    for (const alg of algs) {
      const w = await session.run([GUEST_TOOL_PATH, 'bench', 'dev', '1024', '1', String(E2E_WARMUP_MS), alg], { timeoutMs: E2E_WARMUP_MS + 60_000, signal: opts.signal });
      if (w.code !== 0) throw new Error(`warm-up ${alg} failed: ${w.stdout}${w.stderr}`);
    }
    say(`${backend}: warmed up (${E2E_WARMUP_MS} ms of 1 KiB per algorithm, not recorded)`);
    for (const alg of algs) {
      for (const [mode, source] of modes) {
        for (const size of sizes) {
          for (const procs of procsList) {
            throwIfAborted(opts.signal);
            const r = await session.run([GUEST_TOOL_PATH, 'bench', mode, String(size), String(procs), String(opts.durationMs), alg], {
              timeoutMs: opts.durationMs + 60_000,
              signal: opts.signal,
            });
            if (r.code !== 0) throw new Error(`bench ${mode} ${alg} ${size} B x${procs} failed: ${r.stdout}${r.stderr}`);
            const p: E2ePoint = { alg, source, size, procs, ...parseToolLine(r.stdout) };
            points.push(p);
            say(line(p));
          }
        }
      }
      if (!first || opts.noOpensslSpeed) continue;
      if (opensslVersion === undefined) {
        const v = await session.run(['openssl', 'version'], { timeoutMs: 30_000, signal: opts.signal });
        if (v.code !== 0) throw new Error(`openssl is not runnable in the guest: ${v.stderr.trim() || v.stdout.trim()}`);
        opensslVersion = v.stdout.trim();
      }
      for (const size of sizes) {
        for (const procs of procsList) {
          throwIfAborted(opts.signal);
          const args = opensslSpeedArgs(alg, size, procs, speedSec);
          const r = await session.run(args, { timeoutMs: speedSec * 1000 + 60_000, signal: opts.signal });
          if (r.code !== 0) throw new Error(`${args.join(' ')} failed (exit ${r.code}): ${(r.stderr || r.stdout).trim().slice(-400)}`);
          const s = parseOpensslSpeed(`${r.stdout}\n${r.stderr}`, size);
          const p: E2ePoint = { alg, source: 'openssl-speed', size, procs, ops: s.ops, seconds: s.seconds, opsPerSec: s.opsPerSec, MBps: s.MBps };
          points.push(p);
          say(line(p));
        }
      }
    }
  });
  return {
    schema: E2E_SCHEMA,
    ...guests,
    durationMs: opts.durationMs,
    algs: [...algs],
    ...(opensslVersion !== undefined ? { opensslSpeed: { version: opensslVersion, seconds: speedSec } } : {}),
    totalSec: Math.round((Date.now() - t0) / 100) / 10,
    points,
    ratios: computeRatios(points),
    targets: judgeTargets(points),
  };
}

/** `--speed`: the guest tool's `speed ALG SECONDS` per backend and algorithm. */
export async function benchE2eSpeed(opts: E2eOptions): Promise<E2eSpeedReport> {
  const t0 = Date.now();
  const algs = opts.algs ?? E2E_ALGS;
  const secs = opts.durationMs / 1000;
  const runs: E2eSpeedRun[] = [];
  const guests = await eachBenchGuest('bench e2e', opts, async (backend, { session }) => {
    for (const alg of algs) {
      throwIfAborted(opts.signal);
      const r = await session.run([GUEST_TOOL_PATH, 'speed', alg, String(secs)], { timeoutMs: secs * 1000 * E2E_SIZES.length + 60_000, signal: opts.signal });
      const text = `${r.stdout}${r.stderr}`;
      if (r.code !== 0) throw new Error(`speed ${alg} failed (exit ${r.code}): ${text.trim().slice(-400)}`);
      const lines = parseSpeedLines(r.stdout);
      runs.push({ backend, alg, lines, text: r.stdout });
      opts.onProgress?.(`${backend} ${alg}: ${lines.length} sizes`);
    }
  });
  return { schema: E2E_SCHEMA, mode: 'speed', ...guests, secondsPerSize: secs, totalSec: Math.round((Date.now() - t0) / 100) / 10, runs };
}
