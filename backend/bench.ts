/**
 * `vlab bench backend`: AES-256-CBC, SHA-256 and HMAC-SHA-256 through the real back-end process,
 * driven by the TypeScript front-end harness, against raw OpenSSL EVP (the addon's native loop:
 * one context reused, in place on the same buffers, no JavaScript in between — the host limit)
 * measured in the same run, in alternating slices.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { evp } from '../addon/lib/evp';
import type { EngineName } from './crypto/engine';
import * as S from './crypto/spec';
import { type CipherRequestSpec, TestFrontend } from './harness/frontend';

export const BENCH_SIZES = [64, 1024, 16 * 1024, 64 * 1024] as const;
export const BENCH_DEPTHS = [1, 64] as const;

export interface BenchRow {
  size: number;
  depth: number;
  ops: number;
  opsPerSec: number;
  mbPerSec: number;
  meanLatencyUs: number;
  p99LatencyUs: number;
  /** Raw OpenSSL EVP (native loop, context reuse, in place on the same buffers), same run. */
  rawEngineMbPerSec: number;
  /** backend ÷ raw EVP: the median over pairs of adjacent slices (robust to changing machine load) */
  ratio: number;
  /**
   * Requests whose status and output (ciphertext or digest) were compared with node:crypto after the
   * case: all `depth` of them (a wrong one fails the bench instead of producing a row).
   */
  outputChecked: number;
}

/** A hash or HMAC row: a NO_CIPHER chain session (hash mode PLAIN or AUTH) at depth 64. */
export interface DigestBenchRow extends BenchRow {
  algorithm: 'SHA-256' | 'HMAC-SHA-256';
}

/** The targets, checked on the AES-256-CBC rows of this run. */
export interface BenchTargets {
  /** 64 B at depth 64: ops/s, target ≥ 500 000. */
  smallOpsPerSec: number;
  smallMet: boolean;
  /** 16 KiB at depth 64: backend ÷ raw EVP, target ≥ 0.95. */
  largeRatio: number;
  largeMet: boolean;
}

/** The data path with and without a telemetry subscriber (the rings view's feed), same run, alternating. */
export interface TelemetryCost {
  size: number;
  depth: number;
  /** The subscriber's interval (the rings view default is 50 ms). */
  intervalMs: number;
  opsPerSecWithout: number;
  opsPerSecWith: number;
  /** with ÷ without: 1.0 = no cost */
  ratio: number;
  /** Snapshot lines the subscriber received and parsed while measured. */
  snapshots: number;
}

export interface BenchReport {
  engine: EngineName;
  cipher: 'AES-256-CBC';
  /** What rawEngineMbPerSec measures. */
  reference: 'raw OpenSSL EVP, one context reused, in place';
  secondsPerCase: number;
  node: string;
  rows: BenchRow[];
  digestRows: DigestBenchRow[];
  /** Digest cases the engine could not serve, with the reason. */
  digestSkipped: string[];
  targets: BenchTargets;
  telemetryCost: TelemetryCost;
}

export const SMALL_OPS_TARGET = 500_000;
export const LARGE_RATIO_TARGET = 0.95;
const DIGEST_SIZES = [64, 16 * 1024] as const;

/** Telemetry cost is measured on small requests at full depth: the case most sensitive to event-loop stalls. */
const TELEMETRY_COST_CASE = { size: 1024, depth: 64, intervalMs: 50 } as const;

/**
 * A subscriber in its own process (like the extension host), switched on and off through stdin so the
 * back-end is measured with and without it in alternating slices. Every line is parsed, as the view does.
 */
const SUBSCRIBER_SOURCE = `
const net = require('node:net');
const [socketPath, intervalMs] = process.argv.slice(1);
let sock; let lines = 0; let buf = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (cmd) => {
  for (const c of cmd.split('\\n').filter(Boolean)) {
    if (c === 'on' && !sock) {
      sock = net.connect(socketPath, () => sock.write(JSON.stringify({ type: 'subscribe', intervalMs: Number(intervalMs) }) + '\\n'));
      sock.setEncoding('utf8');
      sock.on('data', (d) => { buf += d; let i; while ((i = buf.indexOf('\\n')) >= 0) { JSON.parse(buf.slice(0, i)); buf = buf.slice(i + 1); lines++; } });
      sock.on('error', (e) => { process.stderr.write(String(e)); process.exit(1); });
    } else if (c === 'off' && sock) { sock.destroy(); sock = undefined; buf = ''; }
    else if (c === 'count') process.stdout.write(lines + '\\n');
  }
});
process.stdin.on('end', () => process.exit(0));
`;

async function measureTelemetryCost(fe: TestFrontend, session: bigint, telemetrySocket: string, seconds: number): Promise<TelemetryCost> {
  const { size, depth, intervalMs } = TELEMETRY_COST_CASE;
  await layOut(fe, Array.from({ length: depth }, () => cbcRequest(session, size)));
  const slice = sliceRunner(fe, depth, []);
  const sub = spawn(process.execPath, ['-e', SUBSCRIBER_SOURCE, telemetrySocket, String(intervalMs)], { stdio: ['pipe', 'pipe', 'inherit'] });
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

/** Waits for the child's own "telemetry on" line, logged once both sockets listen (a socket file that exists proves nothing). */
async function waitForListening(child: ChildProcess, output: () => string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!/ telemetry on /.test(output())) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`back-end exited with ${child.exitCode ?? child.signalCode} before listening: ${output().trim().split('\n').pop() ?? ''}`);
    if (Date.now() > deadline) throw new Error('back-end did not start listening');
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Spawns `vlab backend` as a child (the way the lab does) and returns it with a cleanup. */
export async function spawnBackend(engine: EngineName | 'auto', dir: string, extraArgs: readonly string[] = []): Promise<{ child: ChildProcess; socket: string; telemetry: string; stop: () => Promise<void>; output: () => string }> {
  const socket = path.join(dir, 'vhost-user.sock');
  const telemetry = path.join(dir, 'telemetry.sock');
  const bin = path.resolve(__dirname, '..', '..', 'bin', 'vlab.js');
  // VLAB_BACKEND_NODE_ARGS (e.g. "--cpu-prof") profiles the back-end under load.
  const nodeArgs = (process.env.VLAB_BACKEND_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const child = spawn(process.execPath, [...nodeArgs, bin, 'backend', '--socket', socket, '--telemetry', telemetry, '--engine', engine, ...extraArgs], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  try {
    // Generous: the whole CLI loads first, which took 12 s in a TCG guest on a loaded host (the driver
    // suite runs this bench there, on the guest's /dev/crypto).
    await waitForListening(child, () => out, 60_000);
  } catch (err) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    throw err;
  }
  const stop = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    child.kill('SIGTERM');
    const t = setTimeout(() => child.kill('SIGKILL'), 3000);
    await exited;
    clearTimeout(t);
  };
  return { child, socket, telemetry, stop, output: () => out };
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

/**
 * Drives `depth` chains already laid out at ids 0..depth-1. Depth N means N requests always outstanding:
 * every completion is re-offered at once (kicks suppressed through avail_event as Linux does), so the
 * back-end never waits for a batch. Latencies (µs) are recorded when `record` is set.
 */
function sliceRunner(frontend: TestFrontend, depth: number, latencies: number[]): (ms: number, record: boolean) => Promise<{ ops: number; sec: number }> {
  const postedAt = new Float64Array(depth);
  return async (ms, record) => {
    let n = 0;
    const s0 = performance.now();
    for (let k = 0; k < depth; k++) {
      frontend.pushAvail(k);
      postedAt[k] = s0;
    }
    frontend.publishAvail();
    frontend.kick();
    let end = s0;
    while ((end = performance.now()) - s0 < ms) {
      const used = await frontend.waitUsed(1, 10_000);
      const t = performance.now();
      for (const u of used) {
        if (record) latencies.push((t - postedAt[u.id]) * 1000);
        frontend.pushAvail(u.id);
        postedAt[u.id] = t;
      }
      n += used.length;
      frontend.publishAndKickIfNeeded();
    }
    // Let the outstanding requests finish outside the measured time.
    await frontend.waitUsed(depth, 10_000);
    return { ops: n, sec: (end - s0) / 1000 };
  };
}

/** A row's measurements, before the case's size and depth are attached. */
type CaseResult = Omit<BenchRow, 'size' | 'depth'>;

/** One case: back-end slices and raw-EVP slices alternating, so machine load hits both alike. */
async function measureCase(fe: TestFrontend, reqs: readonly CipherRequestSpec[], size: number, seconds: number, raw: (ms: number) => { ops: number; sec: number }, expected: Expected): Promise<CaseResult> {
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
  // 100 ms back-end slices, each followed by 50 ms of raw EVP. The ratio is the median of the
  // per-pair ratios: load from other processes changes within a second, a pair sees the same load.
  const slices = Math.max(2, Math.round(seconds * 10));
  const sliceMs = (seconds * 1000) / slices;
  let ops = 0;
  let elapsed = 0;
  let rawOps = 0;
  let rawElapsed = 0;
  const pairRatios: number[] = [];
  for (let i = 0; i < slices; i++) {
    const b = await backendSlice(sliceMs, true);
    ops += b.ops;
    elapsed += b.sec;
    const r = raw(sliceMs / 2);
    rawOps += r.ops;
    rawElapsed += r.sec;
    pairRatios.push(b.ops / b.sec / (r.ops / r.sec));
  }
  latencies.sort((a, b) => a - b);
  pairRatios.sort((a, b) => a - b);
  const mbPerSec = (ops * size) / elapsed / 1e6;
  const rawMb = (rawOps * size) / rawElapsed / 1e6;
  return {
    ops, opsPerSec: Math.round(ops / elapsed), mbPerSec: round2(mbPerSec),
    meanLatencyUs: round2(latencies.reduce((a, b) => a + b, 0) / Math.max(1, latencies.length)), p99LatencyUs: round2(percentile(latencies, 99)),
    rawEngineMbPerSec: round2(rawMb), ratio: round3(percentile(pairRatios, 50)),
    // Every round re-offered the same requests, so each one's last output is its only right answer.
    outputChecked: checkOutputs(fe, layouts, expected),
  };
}

export async function runBench(engineName: EngineName, seconds: number, onRow?: (row: BenchRow | DigestBenchRow) => void): Promise<BenchReport> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vlab-bench-'));
  const be = await spawnBackend(engineName, dir);
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
        const reqs = Array.from({ length: depth }, () => cbcRequest(session, size));
        const bufs = reqs.map((r) => Buffer.from(r.src));
        const raw = rawSliceRunner((k, n) => native.evpCipherLoop(rawCipher, true, reqs[k].iv, bufs[k], n), depth, size);
        const expected: Expected = (k) => {
          const c = crypto.createCipheriv('aes-256-cbc', key, reqs[k].iv).setAutoPadding(false);
          return { dst: Buffer.concat([c.update(reqs[k].src), c.final()]) };
        };
        const row: BenchRow = { size, depth, ...(await measureCase(fe, reqs, size, seconds, raw, expected)) };
        rows.push(row);
        onRow?.(row);
      }
    }
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
        const row: DigestBenchRow = { algorithm, size, depth, ...(await measureCase(fe, reqs, size, seconds, raw, expected)) };
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
  if (!telemetryCost) throw new Error('telemetry cost was not measured');
  const small = rows.find((r) => r.size === 64 && r.depth === 64);
  const large = rows.find((r) => r.size === 16 * 1024 && r.depth === 64);
  const targets: BenchTargets = {
    smallOpsPerSec: small?.opsPerSec ?? 0, smallMet: (small?.opsPerSec ?? 0) >= SMALL_OPS_TARGET,
    largeRatio: large?.ratio ?? 0, largeMet: (large?.ratio ?? 0) >= LARGE_RATIO_TARGET,
  };
  return { engine: engineName, cipher: 'AES-256-CBC', reference: 'raw OpenSSL EVP, one context reused, in place', secondsPerCase: seconds, node: process.version, rows, digestRows, digestSkipped, targets, telemetryCost };
}

function round2(v: number): number {
  return Math.round(v * 100) / 100;
}

export function formatRow(r: BenchRow | DigestBenchRow): string {
  return `${('algorithm' in r ? r.algorithm : 'AES-256-CBC').padEnd(12)} ${String(r.size).padStart(6)} B  depth ${String(r.depth).padStart(2)}  ${String(r.opsPerSec).padStart(8)} ops/s  ${r.mbPerSec.toFixed(1).padStart(8)} MB/s  mean ${r.meanLatencyUs.toFixed(1).padStart(8)} µs  p99 ${r.p99LatencyUs.toFixed(1).padStart(8)} µs  raw EVP ${r.rawEngineMbPerSec.toFixed(1).padStart(8)} MB/s  ratio ${r.ratio.toFixed(2)}`;
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
  const t = report.telemetryCost;
  if (opts.json) io.stdout.write(`${JSON.stringify(report)}\n`);
  else {
    for (const skipped of report.digestSkipped) io.stdout.write(`skipped ${skipped}\n`);
    const g = report.targets;
    io.stdout.write(`targets: 64 B depth 64 ${g.smallOpsPerSec} ops/s (≥ ${SMALL_OPS_TARGET}: ${g.smallMet ? 'met' : 'missed'}); ` +
      `16 KiB depth 64 ${g.largeRatio.toFixed(2)}× raw EVP (≥ ${LARGE_RATIO_TARGET}: ${g.largeMet ? 'met' : 'missed'})\n`);
    io.stdout.write(`telemetry subscriber every ${t.intervalMs} ms (${t.snapshots} snapshots parsed), ${t.size} B depth ${t.depth}: ` +
      `${t.opsPerSecWith} ops/s with, ${t.opsPerSecWithout} without — ratio ${t.ratio.toFixed(2)}\n`);
  }
  return 0;
}

function round3(v: number): number {
  return Math.round(v * 1000) / 1000;
}
