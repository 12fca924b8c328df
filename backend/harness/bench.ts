/**
 * `vlab bench backend`: AES-256-CBC, SHA-256 and HMAC-SHA-256 through the real back-end process,
 * driven by the TypeScript front-end harness, against raw OpenSSL EVP (the addon's native loop:
 * one context reused, in place on the same buffers, no JavaScript in between — the host limit)
 * measured in the same run, in alternating slices. The back-end and subscriber processes are
 * bench-process.ts; the report's types and text, bench-report.ts.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { evp } from '../../addon/lib/evp';
import type { EngineName } from '../crypto/engine';
import * as S from '../crypto/spec';
import { schedstat, spawnBackend, spawnTelemetrySubscriber } from './bench-process';
import {
  LARGE_RATIO_TARGET, SMALL_OPS_TARGET, formatRow, formatSummary,
  type BenchReport, type BenchRow, type BenchTargets, type DigestBenchRow, type TelemetryCost,
} from './bench-report';
import { TestFrontend } from './frontend';
import type { CipherRequestSpec } from './request-layout';

export const BENCH_SIZES = [64, 1024, 16 * 1024, 64 * 1024] as const;
export const BENCH_DEPTHS = [1, 64] as const;
const DIGEST_SIZES = [64, 16 * 1024] as const;

/** Telemetry cost is measured on small requests at full depth: the case most sensitive to event-loop stalls. */
const TELEMETRY_COST_CASE = { size: 1024, depth: 64, intervalMs: 50 } as const;

async function measureTelemetryCost(fe: TestFrontend, session: bigint, telemetrySocket: string, seconds: number): Promise<TelemetryCost> {
  const { size, depth, intervalMs } = TELEMETRY_COST_CASE;
  await layOut(fe, Array.from({ length: depth }, () => cbcRequest(session, size)));
  const slice = sliceRunner(fe, depth, []);
  const sub = spawnTelemetrySubscriber(telemetrySocket, intervalMs);
  const send = (cmd: string): void => void sub.stdin!.write(`${cmd}\n`);
  try {
    await slice(50, false);
    const slices = Math.max(2, Math.round(seconds * 5));
    const sliceMs = (seconds * 1000) / slices;
    const without = { ops: 0, sec: 0 };
    const withSub = { ops: 0, sec: 0 };
    for (let i = 0; i < slices; i++) {
      const off = await slice(sliceMs, false);
      without.ops += off.ops;
      without.sec += off.sec;
      send('on');
      // Let the subscription start streaming before the measured slice.
      await new Promise((r) => setTimeout(r, intervalMs * 2));
      const on = await slice(sliceMs, false);
      withSub.ops += on.ops;
      withSub.sec += on.sec;
      send('off');
    }
    const snapshots = await new Promise<number>((resolve, reject) => {
      sub.stdout!.once('data', (d: Buffer) => resolve(Number(d.toString().trim())));
      sub.once('exit', (code) => reject(new Error(`telemetry subscriber exited (${String(code)})`)));
      send('count');
    });
    const opsWithout = without.ops / without.sec;
    const opsWith = withSub.ops / withSub.sec;
    return { size, depth, intervalMs, opsPerSecWithout: Math.round(opsWithout), opsPerSecWith: Math.round(opsWith), ratio: round2(opsWith / opsWithout), snapshots };
  } finally {
    sub.stdin!.end();
    sub.kill();
  }
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

function cbcRequest(sessionId: bigint, size: number): CipherRequestSpec {
  return { opcode: S.VIRTIO_CRYPTO_CIPHER_ENCRYPT, sessionId, iv: crypto.randomBytes(16), src: crypto.randomBytes(size) };
}

function digestRequest(sessionId: bigint, size: number): CipherRequestSpec {
  return {
    opcode: S.VIRTIO_CRYPTO_CIPHER_ENCRYPT, sessionId, iv: Buffer.alloc(0), src: crypto.randomBytes(size), dstLen: 0,
    chain: { aad: Buffer.alloc(0), cipherStart: 0, lenToCipher: 0, hashStart: 0, lenToHash: size, hashResultLen: 32 },
  };
}

/**
 * Lays out one request per spec at ids 0..n-1 (one slot each) and runs them once, so that later
 * rounds only re-offer them, as a guest reusing its buffers would.
 */
type RequestLayout = ReturnType<TestFrontend['postRequest']>;

async function layOut(fe: TestFrontend, reqs: readonly CipherRequestSpec[]): Promise<RequestLayout[]> {
  const slot = TestFrontend.slotBytes(Math.max(...BENCH_SIZES));
  const layouts = reqs.map((r, k) => fe.postRequest(k, fe.heapGpa + k * slot, r, { clearDst: false }));
  fe.publishAvail();
  fe.kick();
  const used = await fe.waitUsed(reqs.length, 10_000);
  if (used.length !== reqs.length) throw new Error('lay-out round incomplete');
  return layouts;
}

/** What request k must leave in guest memory: the ciphertext (in dst) or the digest (in the hash area). */
type Expected = (k: number) => { dst?: Buffer; hash?: Buffer };

/** Every request's last result against node:crypto; throws on the first wrong status or byte. */
function checkOutputs(fe: TestFrontend, layouts: readonly RequestLayout[], expected: Expected): number {
  layouts.forEach((l, k) => {
    const status = fe.mem[l.statusGpa];
    if (status !== S.CryptoStatus.OK) throw new Error(`request ${k}: status ${status}, expected OK`);
    const want = expected(k);
    if (want.dst && !Buffer.from(fe.mem.subarray(l.dstGpa, l.dstGpa + l.dstLen)).equals(want.dst)) throw new Error(`request ${k}: wrong ciphertext`);
    if (want.hash && !Buffer.from(fe.mem.subarray(l.hashGpa, l.hashGpa + l.hashLen)).equals(want.hash)) throw new Error(`request ${k}: wrong digest`);
  });
  return layouts.length;
}

/**
 * A raw-EVP slice runner over the requests' own source bytes (copies, worked on in place): each
 * call runs about `ms` of native loop over the `depth` buffers, calibrated from the last call.
 */
function rawSliceRunner(loop: (k: number, iterations: number) => number, depth: number, size: number): (ms: number) => { ops: number; sec: number } {
  // First guess ~1 GB/s plus a fixed cost; corrected after every call.
  let perOpSec = 5e-7 + size * 1e-9;
  return (ms) => {
    const per = Math.max(1, Math.round(ms / 1000 / perOpSec / depth));
    let sec = 0;
    for (let k = 0; k < depth; k++) sec += loop(k, per);
    perOpSec = sec / (per * depth);
    return { ops: per * depth, sec };
  };
}

/** A slice's measured window holds at least this many completions (and at least `depth`)… */
export const MIN_SLICE_COMPLETIONS = 4;
/** …and spans at least this many mean request latencies, whichever is longer, on top of the slice time. */
export const MIN_SLICE_LATENCIES = 3;

export interface SliceResult {
  /** Completions in the measured window (after the first batch). */
  ops: number;
  /** The measured window: first to last completion. */
  sec: number;
  /** Every completion the slice saw, the first batch included. */
  completions: number;
  /** Wall time of the slice from its first post (ms). */
  wallMs: number;
  /** The slice ran past its `ms` because a request outlasted it (too few completions or too few latencies). */
  extended: boolean;
}

/**
 * Drives `depth` chains already laid out at ids 0..depth-1. Depth N means N requests always outstanding:
 * every completion is re-offered at once (kicks suppressed through avail_event as Linux does), so the
 * back-end never waits for a batch. Latencies (µs) are recorded when `record` is set.
 * A slice lasts `ms` and then as long as it takes for its measured window to hold
 * max(MIN_SLICE_COMPLETIONS, depth) completions and MIN_SLICE_LATENCIES mean latencies: a request
 * slower than the slice (a loaded TCG guest's /dev/crypto) still gives a rate, never 0.
 */
function sliceRunner(frontend: TestFrontend, depth: number, latencies: number[]): (ms: number, record: boolean) => Promise<SliceResult> {
  const postedAt = new Float64Array(depth);
  const minOps = Math.max(MIN_SLICE_COMPLETIONS, depth);
  return async (ms, record) => {
    const s0 = performance.now();
    for (let k = 0; k < depth; k++) {
      frontend.pushAvail(k);
      postedAt[k] = s0;
    }
    frontend.publishAvail();
    frontend.kick();
    // The window opens at the first completions (the pipeline is then running; the back-end's
    // wake-up from idle is not what is measured) and closes at the last completions received before
    // the slice is up: completions counted are those after the first batch, so both ends are
    // completion events and the rate is the steady state's.
    let first = -1;
    let last = s0;
    let n = 0;
    let seen = 0;
    let latencySum = 0;
    let extended = false;
    const enough = (): boolean => n >= minOps && last - first >= MIN_SLICE_LATENCIES * (latencySum / Math.max(1, seen));
    for (;;) {
      if (performance.now() - s0 >= ms) {
        if (first >= 0 && enough()) break;
        extended = true;
      }
      const used = await frontend.waitUsed(1, 10_000);
      const t = performance.now();
      for (const u of used) {
        const lat = t - postedAt[u.id];
        latencySum += lat;
        if (record) latencies.push(lat * 1000);
        frontend.pushAvail(u.id);
        postedAt[u.id] = t;
      }
      seen += used.length;
      if (first < 0) first = t;
      else n += used.length;
      last = t;
      frontend.publishAndKickIfNeeded();
    }
    const wallMs = performance.now() - s0;
    // Let the outstanding requests finish outside the measured time.
    await frontend.waitUsed(depth, 10_000);
    return { ops: n, sec: Math.max(1e-9, (last - first) / 1000), completions: seen, wallMs, extended };
  };
}

/** A row's measurements, before the case's size and depth are attached. */
type CaseResult = Omit<BenchRow, 'size' | 'depth'>;

/** One case: back-end slices and raw-EVP slices alternating, so machine load hits both alike. */
async function measureCase(fe: TestFrontend, backendPid: number | undefined, reqs: readonly CipherRequestSpec[], size: number, seconds: number, raw: (ms: number) => { ops: number; sec: number }, expected: Expected): Promise<CaseResult> {
  const depth = reqs.length;
  const latencies: number[] = [];
  // Requests are laid out once; each round re-offers the same chains (as a guest reusing
  // its buffers would), so the front-end's own copying is not what gets measured.
  const layouts = await layOut(fe, reqs);
  const backendSlice = sliceRunner(fe, depth, latencies);
  // Warm up both paths (JIT, caches, calibration).
  await backendSlice(50, false);
  raw(20);
  raw(20);
  // 100 ms back-end slices paired with 50 ms of raw EVP, the order alternating (B R, R B, …) so a
  // load that rises or falls through the case hits both sides alike. The ratio is the median of the
  // per-pair ratios: load from other processes changes within a second, a pair sees the same load.
  const slices = Math.max(2, Math.round(seconds * 10));
  const sliceMs = (seconds * 1000) / slices;
  let ops = 0;
  let elapsed = 0;
  let irqs = 0;
  let kicks = 0;
  let rawOps = 0;
  let rawElapsed = 0;
  let completions = 0;
  let extendedSlices = 0;
  let lastBackendMs = sliceMs;
  const pairRatios: number[] = [];
  const sliceRates: number[] = [];
  const cpu = { backendRun: 0, backendWait: 0, backendSlices: 0, harnessRun: 0, rawRun: 0, backendOps: 0, wallMs: 0 };
  const timedRaw = (ms: number): { ops: number; sec: number } => {
    const s0 = schedstat('self');
    const r = raw(ms);
    const s1 = schedstat('self');
    if (s0 && s1) cpu.rawRun += s1.runNs - s0.runNs;
    return r;
  };
  for (let i = 0; i < slices; i++) {
    // The raw half of a pair lasts half the back-end slice (the last one's, if it was extended).
    const rawMs = Math.max(sliceMs, lastBackendMs) / 2;
    const r0 = i % 2 === 1 ? timedRaw(rawMs) : undefined;
    const irq0 = fe.interrupts;
    const kick0 = fe.kicks;
    const b0 = backendPid ? schedstat(backendPid) : undefined;
    const h0 = schedstat('self');
    const served0 = fe.completions;
    const w0 = performance.now();
    const b = await backendSlice(sliceMs, true);
    const sliceServed = { n: fe.completions - served0, wallMs: performance.now() - w0 };
    const b1 = backendPid ? schedstat(backendPid) : undefined;
    const h1 = schedstat('self');
    if (b0 && b1 && h0 && h1) {
      cpu.backendOps += sliceServed.n;
      cpu.wallMs += sliceServed.wallMs;
      cpu.backendRun += b1.runNs - b0.runNs;
      cpu.backendWait += b1.waitNs - b0.waitNs;
      cpu.backendSlices += b1.timeslices - b0.timeslices;
      cpu.harnessRun += h1.runNs - h0.runNs;
    }
    irqs += fe.interrupts - irq0;
    kicks += fe.kicks - kick0;
    ops += b.ops;
    elapsed += b.sec;
    completions += b.completions;
    if (b.extended) extendedSlices++;
    lastBackendMs = b.wallMs;
    const r = r0 ?? timedRaw(Math.max(sliceMs, lastBackendMs) / 2);
    rawOps += r.ops;
    rawElapsed += r.sec;
    sliceRates.push(b.ops / b.sec);
    pairRatios.push(b.ops / b.sec / (r.ops / r.sec));
  }
  latencies.sort((a, b) => a - b);
  pairRatios.sort((a, b) => a - b);
  sliceRates.sort((a, b) => a - b);
  const mbPerSec = (ops * size) / elapsed / 1e6;
  const rawMb = (rawOps * size) / rawElapsed / 1e6;
  return {
    ops, completions, measuredSeconds: round3(elapsed), extendedSlices,
    note: extendedSlices > 0
      ? `${extendedSlices} of ${slices} slices extended past ${round2(sliceMs)} ms (a request outlasted the slice): each measured ≥ ${Math.max(MIN_SLICE_COMPLETIONS, depth)} completions and ≥ ${MIN_SLICE_LATENCIES} mean latencies`
      : null,
    opsPerSec: roundNonZero(ops / elapsed, 0), medianSliceOpsPerSec: roundNonZero(percentile(sliceRates, 50), 0), mbPerSec: roundNonZero(mbPerSec, 2),
    meanLatencyUs: round2(latencies.reduce((a, b) => a + b, 0) / Math.max(1, latencies.length)), p99LatencyUs: round2(percentile(latencies, 99)),
    rawEngineMbPerSec: round2(rawMb), ratio: roundNonZero(percentile(pairRatios, 50), 3),
    ratioQuartiles: [roundNonZero(percentile(pairRatios, 25), 3), roundNonZero(percentile(pairRatios, 75), 3)], pairs: pairRatios.length,
    loadAverage: round2(os.loadavg()[0]),
    cpu: cpu.backendRun > 0 && cpu.rawRun > 0 ? {
      backendUsPerOp: round3(cpu.backendRun / 1000 / cpu.backendOps), harnessUsPerOp: round3(cpu.harnessRun / 1000 / cpu.backendOps), rawUsPerOp: round3(cpu.rawRun / 1000 / rawOps),
      ratio: roundNonZero(cpu.rawRun / rawOps / (cpu.backendRun / cpu.backendOps), 3),
      opsPerCpuSecond: Math.round(cpu.backendOps / (cpu.backendRun / 1e9)),
      switchesPerKOps: round2((1000 * cpu.backendSlices) / cpu.backendOps),
      backendRunning: round3(cpu.backendRun / 1e6 / cpu.wallMs), backendWaitingForCpu: round3(cpu.backendWait / 1e6 / cpu.wallMs),
    } : null,
    interruptsPerKOps: round2((1000 * irqs) / Math.max(1, ops)), kicksPerKOps: round2((1000 * kicks) / Math.max(1, ops)),
    // Every round re-offered the same requests, so each one's last output is its only right answer.
    outputChecked: checkOutputs(fe, layouts, expected),
  };
}

/** A subset of the AES cases (profiling, quick checks): no digest rows, no telemetry pair. */
export interface BenchCaseFilter {
  readonly cases: readonly { readonly size: number; readonly depth: number }[];
}

/** Only the given AES-256-CBC cases, in one back-end process (profiling, quick checks). */
export async function runBenchCases(engineName: EngineName, seconds: number, only: BenchCaseFilter, onRow?: (row: BenchRow) => void, backendArgs: readonly string[] = []): Promise<BenchRow[]> {
  return (await benchRun(engineName, seconds, onRow, only, backendArgs)).rows;
}

export async function runBench(engineName: EngineName, seconds: number, onRow?: (row: BenchRow | DigestBenchRow) => void): Promise<BenchReport> {
  const { rows, digestRows, digestSkipped, telemetryCost } = await benchRun(engineName, seconds, onRow);
  if (!telemetryCost) throw new Error('telemetry cost was not measured');
  const small = rows.find((r) => r.size === 64 && r.depth === 64);
  const large = rows.find((r) => r.size === 16 * 1024 && r.depth === 64);
  const targets: BenchTargets = {
    smallOpsPerSec: small?.medianSliceOpsPerSec ?? 0, smallMet: (small?.medianSliceOpsPerSec ?? 0) >= SMALL_OPS_TARGET,
    largeRatio: large?.ratio ?? 0, largeMet: (large?.ratio ?? 0) >= LARGE_RATIO_TARGET,
    smallOpsPerCpuSecond: small?.cpu?.opsPerCpuSecond ?? null, largeCpuRatio: large?.cpu?.ratio ?? null,
  };
  return { engine: engineName, cipher: 'AES-256-CBC', reference: 'raw OpenSSL EVP, one context reused, in place', secondsPerCase: seconds, node: process.version, rows, digestRows, digestSkipped, targets, telemetryCost };
}

async function benchRun(engineName: EngineName, seconds: number, onRow?: (row: BenchRow | DigestBenchRow) => void, only?: BenchCaseFilter, backendArgs: readonly string[] = []): Promise<{ rows: BenchRow[]; digestRows: DigestBenchRow[]; digestSkipped: string[]; telemetryCost?: TelemetryCost }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vlab-bench-'));
  const be = await spawnBackend(engineName, dir, backendArgs);
  const native = evp();
  let fe: TestFrontend | undefined;
  const rows: BenchRow[] = [];
  const digestRows: DigestBenchRow[] = [];
  const digestSkipped: string[] = [];
  let telemetryCost: TelemetryCost | undefined;
  const key = crypto.randomBytes(32);
  const authKey = crypto.randomBytes(32);
  const rawCipher = native.evpCipherCreate('aes-256-cbc', key);
  const rawHash = native.evpDigestCreate('sha256', null);
  const rawHmac = native.evpDigestCreate('sha256', authKey);
  try {
    fe = await TestFrontend.connect(be.socket, { memoryBytes: 64 << 20, queueSize: 256 });
    const session = await fe.cipherSession(S.VIRTIO_CRYPTO_CIPHER_AES_CBC, key, true);
    for (const size of BENCH_SIZES) {
      for (const depth of BENCH_DEPTHS) {
        if (only && !only.cases.some((c) => c.size === size && c.depth === depth)) continue;
        const reqs = Array.from({ length: depth }, () => cbcRequest(session, size));
        const bufs = reqs.map((r) => Buffer.from(r.src));
        const raw = rawSliceRunner((k, n) => native.evpCipherLoop(rawCipher, true, reqs[k].iv, bufs[k], n), depth, size);
        const expected: Expected = (k) => {
          const c = crypto.createCipheriv('aes-256-cbc', key, reqs[k].iv).setAutoPadding(false);
          return { dst: Buffer.concat([c.update(reqs[k].src), c.final()]) };
        };
        const row: BenchRow = { size, depth, ...(await measureCase(fe, be.child.pid, reqs, size, seconds, raw, expected)) };
        rows.push(row);
        onRow?.(row);
      }
    }
    if (only) return { rows, digestRows, digestSkipped };
    const hashSession = await fe.chainSession({ hashMode: S.VIRTIO_CRYPTO_SYM_HASH_MODE_PLAIN, hashAlg: S.VIRTIO_CRYPTO_HASH_SHA_256, hashResultLen: 32 });
    const hmacSession = await fe.chainSession({ hashMode: S.VIRTIO_CRYPTO_SYM_HASH_MODE_AUTH, hashAlg: S.VIRTIO_CRYPTO_MAC_HMAC_SHA_256, authKey, hashResultLen: 32 });
    for (const [algorithm, sessionId, handle] of [['SHA-256', hashSession, rawHash], ['HMAC-SHA-256', hmacSession, rawHmac]] as const) {
      // An engine without this digest (e.g. a cryptodev without it) refuses the session: no rows.
      if (sessionId < 0n) {
        digestSkipped.push(`${algorithm}: engine ${engineName} refused the session`);
        continue;
      }
      for (const size of DIGEST_SIZES) {
        const depth = 64;
        const reqs = Array.from({ length: depth }, () => digestRequest(sessionId, size));
        const raw = rawSliceRunner((k, n) => native.evpDigestLoop(handle, reqs[k].src, n), depth, size);
        const expected: Expected = (k) => ({
          hash: (algorithm === 'SHA-256' ? crypto.createHash('sha256') : crypto.createHmac('sha256', authKey)).update(reqs[k].src).digest(),
        });
        const row: DigestBenchRow = { algorithm, size, depth, ...(await measureCase(fe, be.child.pid, reqs, size, seconds, raw, expected)) };
        digestRows.push(row);
        onRow?.(row);
      }
    }
    telemetryCost = await measureTelemetryCost(fe, session, be.telemetry, seconds);
  } finally {
    native.evpCipherFree(rawCipher);
    native.evpDigestFree(rawHash);
    native.evpDigestFree(rawHmac);
    fe?.close();
    await be.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
  return { rows, digestRows, digestSkipped, telemetryCost };
}

/** What `vlab bench backend` needs from its caller: somewhere to print. */
export interface BenchIo {
  readonly stdout: NodeJS.WritableStream;
}

export async function runBenchCommand(opts: { engine: EngineName; seconds: number; json: boolean; io: BenchIo }): Promise<number> {
  const { io } = opts;
  if (!opts.json) io.stdout.write(`Through the vhost-user back-end (engine ${opts.engine}) vs raw OpenSSL EVP (context reuse, in place) in the same run, ${opts.seconds} s per case\n`);
  const report = await runBench(opts.engine, opts.seconds, (row) => {
    if (!opts.json) io.stdout.write(`${formatRow(row)}\n`);
  });
  io.stdout.write(opts.json ? `${JSON.stringify(report)}\n` : formatSummary(report));
  return 0;
}

function round2(v: number): number {
  return Math.round(v * 100) / 100;
}

function round3(v: number): number {
  return Math.round(v * 1000) / 1000;
}

/** Rounded to `decimals`, except a small non-zero value keeps 3 significant digits (completed work never shows as 0). */
function roundNonZero(v: number, decimals: number): number {
  const r = Math.round(v * 10 ** decimals) / 10 ** decimals;
  return r === 0 && v !== 0 && Number.isFinite(v) ? Number(v.toPrecision(3)) : r;
}
