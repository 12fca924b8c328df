/**
 * `vlab bench latency`: where the time of one 64 B CIOCCRYPT goes. One VM per backend (each in its own
 * temporary state folder, like `vlab bench e2e`), the guest driver's per-stage statistics (stats=1, read
 * from /sys/bus/virtio/devices/virtioN/latency) around N operations of one process, for each poll_us
 * value asked, alternating the values over several rounds so the host's load hits every one alike.
 * For the ts backend, the backend's own service time per request (its telemetry) is shown inside the
 * device span.
 */
import { type BenchBoot, type BenchGuestsOptions, eachBenchGuest } from './guests';
import { GUEST_TOOL_PATH, MODULE_NAME } from '../lab/driver/driver';
import { throwIfAborted } from '../lab/common/errors';
import type { Lab } from '../lab/lab';
import type { SshSession } from '../lab/guest/ssh';
import type { BackendKind } from '../lab/state';
import { readSnapshotOrNull } from '../../backend/telemetry/client';
import type { BackendSnapshot } from '../../backend/telemetry/schema';

/** The driver's stages, in the order of its latency file. */
export const DRIVER_STAGES = ['submit', 'kick', 'device', 'wakeup', 'return'] as const;
export type DriverStage = (typeof DRIVER_STAGES)[number];
/** The table's stages: the driver's, with user space <-> ioctl (the syscall) in front. */
export const STAGES = ['syscall', ...DRIVER_STAGES] as const;
export type Stage = (typeof STAGES)[number];

export const STAGE_LABEL: Readonly<Record<Stage, string>> = {
  syscall: 'syscall (user space <-> ioctl)',
  submit: 'driver before kick (copy-in, lookup, pin, add)',
  kick: 'kick (notify write, trapped)',
  device: 'device + transport (kick -> interrupt)',
  wakeup: 'interrupt -> wake-up',
  return: 'wake-up -> ioctl return',
};

/** One stage of the driver's latency file: summed and largest span, ns. */
export interface StageSum {
  readonly sumNs: number;
  readonly maxNs: number;
}

/** The driver's latency file, parsed. */
export interface DriverLatencyStats {
  readonly requests: number;
  readonly polled: number;
  readonly stages: Readonly<Record<DriverStage, StageSum>>;
}

const MAX_STATS_TEXT = 4096;

/** Parses the driver's latency file; throws on anything that is not exactly that format. */
export function parseLatencyStats(text: string): DriverLatencyStats {
  if (text.length > MAX_STATS_TEXT) throw new Error(`latency file: ${text.length} bytes, expected a few lines`);
  const values = new Map<string, number[]>();
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line) continue;
    const parts = line.split(/\s+/);
    const name = parts[0]!;
    const nums = parts.slice(1).map((p) => (/^\d{1,19}$/.test(p) ? Number(p) : Number.NaN));
    if (nums.some((n) => !Number.isSafeInteger(n))) throw new Error(`latency file: bad line "${line}"`);
    if (values.has(name)) throw new Error(`latency file: "${name}" twice`);
    values.set(name, nums);
  }
  const one = (name: string): number => {
    const v = values.get(name);
    if (!v || v.length !== 1) throw new Error(`latency file: no "${name} N" line`);
    return v[0]!;
  };
  const stages = {} as Record<DriverStage, StageSum>;
  for (const s of DRIVER_STAGES) {
    const v = values.get(s);
    if (!v || v.length !== 2) throw new Error(`latency file: no "${s} SUM_NS MAX_NS" line`);
    stages[s] = { sumNs: v[0]!, maxNs: v[1]! };
  }
  const requests = one('requests');
  const polled = one('polled');
  if (polled > requests) throw new Error(`latency file: polled ${polled} > requests ${requests}`);
  return { requests, polled, stages };
}

/** What `vlab-cryptodev-test lat` prints. */
export interface ToolLatency {
  readonly ops: number;
  readonly size: number;
  /** Sum of the per-operation wall times. */
  readonly totalNs: number;
  /** Median and shortest single operation. */
  readonly p50Ns: number;
  readonly minNs: number;
}

export function parseToolLatency(stdout: string): ToolLatency {
  const line = stdout.trim().split('\n').at(-1) ?? '';
  let v: Partial<ToolLatency> & { error?: string };
  try {
    v = JSON.parse(line) as Partial<ToolLatency> & { error?: string };
  } catch {
    throw new Error(`lat tool: not a JSON line: ${line.slice(0, 200)}`);
  }
  if (v.error) throw new Error(`lat tool: ${v.error}`);
  const nums = [v.ops, v.size, v.totalNs, v.p50Ns, v.minNs];
  if (!nums.every((n) => typeof n === 'number' && Number.isFinite(n) && n >= 0) || v.ops! < 1) throw new Error(`lat tool: ${line.slice(0, 200)}`);
  return { ops: v.ops!, size: v.size!, totalNs: v.totalNs!, p50Ns: v.p50Ns!, minNs: v.minNs! };
}

/** One (backend, poll_us) point: its median round as means per operation, and every round's totals. */
export interface LatencyPoint {
  readonly backend: BackendKind;
  readonly pollUs: number;
  readonly size: number;
  /** Operations of the round shown (the median round). */
  readonly ops: number;
  /** Of those, completed by the poll rather than the interrupt. */
  readonly polled: number;
  /** Mean per operation seen from user space, stats on (the median round). */
  readonly totalUs: number;
  /** The same loop with stats off, median of the rounds (the stamps' own cost is the difference). */
  readonly totalStatsOffUs: number;
  /** Median single operation (user space), stats off / on, median of the rounds: what a busy host's bursts do not move. */
  readonly p50StatsOffUs: number;
  readonly p50Us: number;
  /** Mean µs per operation for each stage; syscall = user-space total - the driver's stages. */
  readonly stagesUs: Readonly<Record<Stage, number>>;
  /** Share of totalUs, 0..1. */
  readonly share: Readonly<Record<Stage, number>>;
  /** Largest single span the driver saw, µs. */
  readonly maxUs: Readonly<Record<DriverStage, number>>;
  /** ts: the backend's mean service time of the last requests (inside the device span), µs. */
  readonly backendServiceUs?: number;
  /** User-space mean of each round, stats on then off, µs (how noisy the host was). */
  readonly rounds: readonly { readonly totalUs: number; readonly totalStatsOffUs: number; readonly p50Us: number; readonly p50StatsOffUs: number }[];
}

export interface LatencyRound {
  readonly tool: ToolLatency;
  readonly toolStatsOff: ToolLatency;
  readonly stats: DriverLatencyStats;
  readonly backendServiceUs?: number;
}

const r1 = (n: number): number => Math.round(n * 10) / 10;

/** One round's means per operation. */
interface RoundMeans {
  readonly totalUs: number;
  readonly totalStatsOffUs: number;
  readonly stagesUs: Record<Stage, number>;
  readonly polled: number;
  readonly ops: number;
  readonly p50Us: number;
  readonly p50StatsOffUs: number;
}

function roundMeans(r: LatencyRound): RoundMeans {
  if (r.stats.requests !== r.tool.ops) throw new Error(`the driver timed ${r.stats.requests} requests of the ${r.tool.ops} issued`);
  const totalUs = r.tool.totalNs / r.tool.ops / 1000;
  const stagesUs = {} as Record<Stage, number>;
  let kernelUs = 0;
  for (const s of DRIVER_STAGES) {
    stagesUs[s] = r.stats.stages[s].sumNs / r.stats.requests / 1000;
    kernelUs += stagesUs[s];
  }
  stagesUs.syscall = Math.max(0, totalUs - kernelUs);
  return {
    totalUs, totalStatsOffUs: r.toolStatsOff.totalNs / r.toolStatsOff.ops / 1000, stagesUs, polled: r.stats.polled, ops: r.tool.ops,
    p50Us: r.tool.p50Ns / 1000, p50StatsOffUs: r.toolStatsOff.p50Ns / 1000,
  };
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/**
 * Folds the rounds of one point. A busy host stretches whole rounds, so the point is the round whose
 * total (stats on) is the median one — its stages add up to its total — and the stats-off total is the
 * median of the stats-off runs; every round's totals stay in `rounds`.
 */
export function latencyPoint(backend: BackendKind, pollUs: number, rounds: readonly LatencyRound[]): LatencyPoint {
  if (rounds.length === 0) throw new Error('no rounds');
  const means = rounds.map(roundMeans);
  const byTotal = means.map((m, i) => ({ m, i })).sort((a, b) => a.m.totalUs - b.m.totalUs);
  const mid = byTotal[(byTotal.length - 1) >> 1]!;
  const pick = mid.m;
  const max = Object.fromEntries(DRIVER_STAGES.map((s) => [s, r1(Math.max(...rounds.map((r) => r.stats.stages[s].maxNs)) / 1000)])) as Record<DriverStage, number>;
  const share = {} as Record<Stage, number>;
  const denom = Math.max(pick.totalUs, STAGES.reduce((a, s) => a + (s === 'syscall' ? 0 : pick.stagesUs[s]), 0));
  for (const s of STAGES) share[s] = denom > 0 ? Math.round((pick.stagesUs[s] / denom) * 1000) / 1000 : 0;
  const stagesUs = Object.fromEntries(STAGES.map((s) => [s, r1(pick.stagesUs[s])])) as Record<Stage, number>;
  const service = rounds[mid.i]!.backendServiceUs;
  return {
    backend,
    pollUs,
    size: rounds[0]!.tool.size,
    ops: pick.ops,
    polled: pick.polled,
    totalUs: r1(pick.totalUs),
    totalStatsOffUs: r1(median(means.map((m) => m.totalStatsOffUs))),
    p50Us: r1(median(means.map((m) => m.p50Us))),
    p50StatsOffUs: r1(median(means.map((m) => m.p50StatsOffUs))),
    stagesUs,
    share,
    maxUs: max,
    ...(service !== undefined ? { backendServiceUs: r1(service) } : {}),
    rounds: means.map((m) => ({ totalUs: r1(m.totalUs), totalStatsOffUs: r1(m.totalStatsOffUs), p50Us: r1(m.p50Us), p50StatsOffUs: r1(m.p50StatsOffUs) })),
  };
}

/**
 * The backend's mean service time (µs) of the recent data requests of this size, from a telemetry
 * snapshot (the recent-request ring the backend keeps anyway: no cost added to its data path).
 */
export function backendServiceUs(snapshot: BackendSnapshot | null, size: number): number | undefined {
  const lat = (snapshot?.queues ?? []).flatMap((q) => q.recent).filter((r) => r.opcode === 'CIPHER_ENCRYPT' && r.srcLen === size).map((r) => r.latencyUs);
  return lat.length ? lat.reduce((a, b) => a + b, 0) / lat.length : undefined;
}

export type LatencyBoot = BenchBoot;

export interface LatencyReport {
  readonly schema: 1;
  readonly accel: string;
  readonly accelWhy?: string;
  readonly clocksource?: string;
  readonly boots: readonly LatencyBoot[];
  readonly opsPerRound: number;
  readonly rounds: number;
  readonly size: number;
  readonly durationMs: number;
  readonly points: readonly LatencyPoint[];
}

export interface LatencyOptions extends BenchGuestsOptions {
  readonly pollUs: readonly number[];
  readonly ops: number;
  readonly rounds: number;
  readonly size?: number;
}

const PARAMS = `/sys/module/${MODULE_NAME}/parameters`;

async function sh(session: SshSession, script: string, what: string, timeoutMs = 60_000): Promise<string> {
  const r = await session.run({ shell: script }, { timeoutMs });
  if (r.code !== 0) throw new Error(`${what}: exit ${r.code}: ${(r.stderr || r.stdout).trim().slice(0, 500)}`);
  return r.stdout;
}

/** The guest's latency file of our device (one device). */
export async function latencyFile(session: SshSession): Promise<string> {
  const out = await sh(session, `ls -d /sys/bus/virtio/drivers/${MODULE_NAME}/virtio*/latency`, 'finding the latency file');
  const files = out.trim().split('\n').filter(Boolean);
  if (files.length !== 1) throw new Error(`expected one ${MODULE_NAME} device, found ${files.length}`);
  return files[0]!;
}

/** One timed run of the guest tool (stats on: reset by the tool after its warm-up, read after). */
export async function timedRun(session: SshSession, file: string, ops: number, size: number): Promise<{ tool: ToolLatency; stats: DriverLatencyStats }> {
  const out = await sh(session, `echo 1 > ${PARAMS}/stats && ${GUEST_TOOL_PATH} lat ${ops} ${size} ${file} && cat ${file}; rc=$?; echo 0 > ${PARAMS}/stats; exit $rc`, 'lat (stats on)', 60_000 + ops * 20);
  return parseTimedOutput(out);
}

/** The tool's JSON line followed by the latency file. */
function parseTimedOutput(out: string): { tool: ToolLatency; stats: DriverLatencyStats } {
  const lines = out.trim().split('\n');
  const json = lines.findIndex((l) => l.startsWith('{'));
  if (json < 0) throw new Error(`lat tool printed no result: ${out.slice(0, 300)}`);
  return { tool: parseToolLatency(lines[json]!), stats: parseLatencyStats(lines.slice(json + 1).join('\n')) };
}

const SPLIT = '--- stats on ---';

/**
 * One round of one poll_us value in one SSH call: the loop with stats off, then with stats on (the
 * tool resets the file after its warm-up) and the file.
 */
async function oneRound(session: SshSession, file: string, poll: number, ops: number, size: number): Promise<{ off: ToolLatency; on: { tool: ToolLatency; stats: DriverLatencyStats } }> {
  const tool = `${GUEST_TOOL_PATH} lat ${ops} ${size}`;
  const script = [
    `echo ${poll} > ${PARAMS}/poll_us && echo 0 > ${PARAMS}/stats || exit 1`,
    `${tool} || exit 1`,
    `echo '${SPLIT}'`,
    `echo 1 > ${PARAMS}/stats && ${tool} ${file} && cat ${file}; rc=$?; echo 0 > ${PARAMS}/stats; exit $rc`,
  ].join('\n');
  const out = await sh(session, script, `lat at poll_us=${poll}`, 60_000 + ops * 40);
  const at = out.indexOf(SPLIT);
  if (at < 0) throw new Error(`lat round printed no stats part: ${out.slice(0, 300)}`);
  return { off: parseToolLatency(out.slice(0, at)), on: parseTimedOutput(out.slice(at + SPLIT.length)) };
}

async function pointRounds(session: SshSession, backend: BackendKind, lab: Lab, opts: LatencyOptions, size: number, say: (m: string) => void): Promise<LatencyPoint[]> {
  const file = await latencyFile(session);
  const saved = (await sh(session, `cat ${PARAMS}/poll_us`, 'reading poll_us')).trim();
  const byPoll = new Map<number, LatencyRound[]>();
  try {
    for (let round = 0; round < opts.rounds; round++) {
      for (const poll of opts.pollUs) {
        throwIfAborted(opts.signal);
        const { off, on } = await oneRound(session, file, poll, opts.ops, size);
        const service = backend === 'ts' ? backendServiceUs(await readSnapshotOrNull(lab.paths.telemetrySocket), size) : undefined;
        const r: LatencyRound = { tool: on.tool, toolStatsOff: off, stats: on.stats, ...(service !== undefined ? { backendServiceUs: service } : {}) };
        byPoll.set(poll, [...(byPoll.get(poll) ?? []), r]);
        say(`${backend} poll_us=${poll} round ${round + 1}/${opts.rounds}: median op ${(on.tool.p50Ns / 1000).toFixed(1)} µs, mean ${(on.tool.totalNs / on.tool.ops / 1000).toFixed(1)} (stats off: ${(off.p50Ns / 1000).toFixed(1)}, ${(off.totalNs / off.ops / 1000).toFixed(1)})`);
      }
    }
  } finally {
    await sh(session, `echo ${/^\d+$/.test(saved) ? saved : 0} > ${PARAMS}/poll_us; echo 0 > ${PARAMS}/stats`, 'restoring parameters').catch(() => undefined);
  }
  return opts.pollUs.map((p) => latencyPoint(backend, p, byPoll.get(p) ?? []));
}

export async function benchLatency(opts: LatencyOptions): Promise<LatencyReport> {
  const t0 = Date.now();
  const size = opts.size ?? 64;
  const points: LatencyPoint[] = [];
  let clocksource: string | undefined;
  const say = (m: string): void => opts.onProgress?.(m);
  const guests = await eachBenchGuest('bench latency', opts, async (backend, { lab, session }) => {
    clocksource = (await sh(session, 'cat /sys/devices/system/clocksource/clocksource0/current_clocksource', 'clocksource')).trim() || clocksource;
    points.push(...(await pointRounds(session, backend, lab, opts, size, say)));
  });
  return {
    schema: 1, accel: guests.accel, ...(guests.accelWhy ? { accelWhy: guests.accelWhy } : {}), ...(clocksource ? { clocksource } : {}), boots: guests.boots,
    opsPerRound: opts.ops, rounds: opts.rounds, size, durationMs: Date.now() - t0, points,
  };
}

/** Rows = stages, columns = (backend, poll_us) points: mean µs (share). */
export function formatLatencyTable(report: LatencyReport): string {
  const pts = report.points;
  const head = `${report.size} B AES-256-CBC CIOCCRYPT, one process, ${report.rounds} x ${report.opsPerRound} ops per point, median round (accel ${report.accel}${report.clocksource ? `, guest clocksource ${report.clocksource}` : ''}): mean µs per op (share)`;
  const W = 48;
  const C = 18;
  const cell = (us: number, share?: number): string => `${us.toFixed(1)}${share === undefined ? '' : ` (${Math.round(share * 100)}%)`}`.padStart(C);
  const lines = [head, ['stage'.padEnd(W), ...pts.map((p) => `${p.backend} poll ${p.pollUs}`.padStart(C))].join('')];
  for (const s of STAGES) {
    lines.push([STAGE_LABEL[s].padEnd(W), ...pts.map((p) => cell(p.stagesUs[s], p.share[s]))].join(''));
    if (s === 'device' && pts.some((p) => p.backendServiceUs !== undefined)) {
      lines.push(['  of which the backend serving it'.padEnd(W), ...pts.map((p) => (p.backendServiceUs === undefined ? '-'.padStart(C) : cell(p.backendServiceUs)))].join(''));
    }
  }
  lines.push(['mean per op (user space), stats on'.padEnd(W), ...pts.map((p) => cell(p.totalUs))].join(''));
  lines.push(['mean per op, stats off'.padEnd(W), ...pts.map((p) => cell(p.totalStatsOffUs))].join(''));
  lines.push(['median op, stats on / off'.padEnd(W), ...pts.map((p) => `${p.p50Us.toFixed(1)} / ${p.p50StatsOffUs.toFixed(1)}`.padStart(C))].join(''));
  lines.push(['completed by the poll'.padEnd(W), ...pts.map((p) => `${p.polled}/${p.ops}`.padStart(C))].join(''));
  lines.push(['largest device span (µs)'.padEnd(W), ...pts.map((p) => cell(p.maxUs.device))].join(''));
  return lines.join('\n');
}
