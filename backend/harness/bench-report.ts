/**
 * What `vlab bench backend` reports (docs/backend.md): the row, target and telemetry-cost types its
 * JSON carries (extension/report reads them back), the targets, and the text lines the command
 * prints. Pure: no measurement, no processes.
 */
import type { EngineName } from '../crypto/engine';

export interface BenchRow {
  size: number;
  depth: number;
  /** Completions in the measured windows (each slice's, after its first batch). */
  ops: number;
  /** Every completion in the measured slices, first batches included. */
  completions: number;
  /** The measured windows' total (the time `ops` took), in seconds. */
  measuredSeconds: number;
  /** Slices that ran past their share of --seconds because a request outlasted the slice. */
  extendedSlices: number;
  /** Says so when slices were extended; null otherwise. */
  note: string | null;
  /** All requests ÷ all back-end slice time. */
  opsPerSec: number;
  /** The median of the back-end slices' own rates: robust to bursts of load from other processes. */
  medianSliceOpsPerSec: number;
  mbPerSec: number;
  meanLatencyUs: number;
  p99LatencyUs: number;
  /** Raw OpenSSL EVP (native loop, context reuse, in place on the same buffers), same run. */
  rawEngineMbPerSec: number;
  /** backend ÷ raw EVP: the median over pairs of adjacent slices (robust to changing machine load) */
  ratio: number;
  /** 25th and 75th percentile of the per-pair ratios (the spread the median is taken from). */
  ratioQuartiles: [number, number];
  /** Back-end / raw-EVP slice pairs measured. */
  pairs: number;
  /** The machine's 1-minute load average at the end of the case. */
  loadAverage: number;
  /** CPU time from the scheduler (/proc/PID/schedstat), null where unavailable. */
  cpu: CaseCpu | null;
  /** Interrupts (call eventfd wake-ups the harness saw) per 1000 requests in the measured slices. */
  interruptsPerKOps: number;
  /** Kicks the harness made per 1000 requests in the measured slices. */
  kicksPerKOps: number;
  /**
   * Requests whose status and output (ciphertext or digest) were compared with node:crypto after the
   * case: all `depth` of them (a wrong one fails the bench instead of producing a row).
   */
  outputChecked: number;
}

/**
 * Where the back-end slices' time went, from the scheduler's own accounting of the back-end's main
 * thread (/proc/PID/schedstat: time running, time runnable but waiting for a CPU). CPU time per
 * request hardly depends on other load, so `ratio` is the load-robust companion of the wall-clock ratio.
 */
export interface CaseCpu {
  /** Back-end main-thread CPU time per request (µs). */
  backendUsPerOp: number;
  /** The harness's (the guest's) CPU time per request, in the same slices (µs). */
  harnessUsPerOp: number;
  /** Raw EVP CPU time per operation (µs). */
  rawUsPerOp: number;
  /** rawUsPerOp ÷ backendUsPerOp: what the wall-clock ratio would be with a CPU to itself and no idle gaps. */
  ratio: number;
  /** 1 ÷ backendUsPerOp: the requests per second the back-end would serve with a CPU to itself. */
  opsPerCpuSecond: number;
  /** Times the back-end was switched onto a CPU (it slept or was preempted before each) per 1000 requests. */
  switchesPerKOps: number;
  /** Fractions of the back-end slices' wall time the back-end ran, and was runnable but waiting for a CPU; the rest it slept (waited for the guest). */
  backendRunning: number;
  backendWaitingForCpu: number;
}

/** A hash or HMAC row: a NO_CIPHER chain session (hash mode PLAIN or AUTH) at depth 64. */
export interface DigestBenchRow extends BenchRow {
  algorithm: 'SHA-256' | 'HMAC-SHA-256';
}

/** The issue's targets, checked on the AES-256-CBC rows of this run. */
export interface BenchTargets {
  /** 64 B at depth 64: ops/s (the median slice's rate), target ≥ 500 000. */
  smallOpsPerSec: number;
  smallMet: boolean;
  /** 16 KiB at depth 64: backend ÷ raw EVP, target ≥ 0.95. */
  largeRatio: number;
  largeMet: boolean;
  /** The same two cases by CPU time (what they would be with a CPU to itself), null without schedstat. */
  smallOpsPerCpuSecond: number | null;
  largeCpuRatio: number | null;
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

/** Two decimals; a ratio below 0.01 (a very slow engine) with 2 significant digits instead of 0.00. */
const fmtRatio = (v: number): string => (v !== 0 && Math.abs(v) < 0.01 ? v.toPrecision(2) : v.toFixed(2));

export function formatRow(r: BenchRow | DigestBenchRow): string {
  return `${('algorithm' in r ? r.algorithm : 'AES-256-CBC').padEnd(12)} ${String(r.size).padStart(6)} B  depth ${String(r.depth).padStart(2)}  ${String(r.opsPerSec).padStart(8)} ops/s  ${r.mbPerSec.toFixed(1).padStart(8)} MB/s  mean ${r.meanLatencyUs.toFixed(1).padStart(8)} µs  p99 ${r.p99LatencyUs.toFixed(1).padStart(8)} µs  raw EVP ${r.rawEngineMbPerSec.toFixed(1).padStart(8)} MB/s  ratio ${fmtRatio(r.ratio)} [${r.ratioQuartiles.map(fmtRatio).join('–')}]  median slice ${r.medianSliceOpsPerSec} ops/s${r.cpu ? `  cpu µs/op back-end ${r.cpu.backendUsPerOp.toFixed(2)} harness ${r.cpu.harnessUsPerOp.toFixed(2)} raw ${r.cpu.rawUsPerOp.toFixed(2)} (ratio ${r.cpu.ratio.toFixed(2)}; back-end ran ${(100 * r.cpu.backendRunning).toFixed(0)} %, waited for a CPU ${(100 * r.cpu.backendWaitingForCpu).toFixed(0)} %, ${r.cpu.switchesPerKOps.toFixed(1)} switches/kop)` : ''}  load ${r.loadAverage.toFixed(1)}  irq/kop ${r.interruptsPerKOps.toFixed(1)} kick/kop ${r.kicksPerKOps.toFixed(1)}  measured ${r.measuredSeconds.toFixed(3)} s, ${r.completions} completions${r.note ? `  (${r.note})` : ''}`;
}

/** The lines printed after the rows: skipped digests, the targets, the CPU-time view, the telemetry cost. */
export function formatSummary(report: BenchReport): string {
  const t = report.telemetryCost;
  let out = '';
  for (const skipped of report.digestSkipped) out += `skipped ${skipped}\n`;
  const g = report.targets;
  out += `targets: 64 B depth 64 ${g.smallOpsPerSec} ops/s (≥ ${SMALL_OPS_TARGET}: ${g.smallMet ? 'met' : 'missed'}); ` +
    `16 KiB depth 64 ${g.largeRatio.toFixed(2)}× raw EVP (≥ ${LARGE_RATIO_TARGET}: ${g.largeMet ? 'met' : 'missed'})\n`;
  if (g.smallOpsPerCpuSecond !== null && g.largeCpuRatio !== null) {
    out += `by CPU time (a CPU to itself): 64 B depth 64 ${g.smallOpsPerCpuSecond} requests per CPU-second; 16 KiB depth 64 ${g.largeCpuRatio.toFixed(2)}× raw EVP\n`;
  }
  out += `telemetry subscriber every ${t.intervalMs} ms (${t.snapshots} snapshots parsed), ${t.size} B depth ${t.depth}: ` +
    `${t.opsPerSecWith} ops/s with, ${t.opsPerSecWithout} without — ratio ${t.ratio.toFixed(2)}\n`;
  return out;
}
