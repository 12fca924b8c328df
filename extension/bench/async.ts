/**
 * `vlab bench e2e --async DEPTH`: one guest process with DEPTH operations in flight through the
 * asynchronous /dev/crypto API (CIOCASYNCCRYPT / poll / CIOCASYNCFETCH, test/guest/async_test.c),
 * against the same run's synchronous CIOCCRYPT rates with 1 and with 8 processes (the guest tool's
 * `bench dev`), AES-256-CBC. The three are measured in interleaved rounds per size so that a load
 * change on the host shifts all of them; the ratios are of the medians over the rounds.
 *
 * Issue #22's targets (ts backend, one process): 64 B async >= 2.5x the 1-process synchronous rate;
 * 16 KiB async >= the 8-process synchronous rate.
 */
import { readFileSync } from 'node:fs';
import { type BenchGuestsOptions, type BenchBoot, eachBenchGuest } from './guests';
import { GUEST_ASYNC_TOOL_PATH, GUEST_TOOL_PATH, MODULE_NAME } from '../lab/driver/driver';
import { throwIfAborted } from '../lab/common/errors';
import type { BackendKind } from '../lab/state';

export const ASYNC_SIZES = [64, 16 * 1024] as const;
export const ASYNC_ROUNDS = 3;
export const ASYNC_WARMUP_MS = 500;

export type AsyncMode = 'sync1' | 'sync8' | 'async';

export interface AsyncRound {
  readonly backend: BackendKind;
  readonly size: number;
  readonly round: number;
  readonly mode: AsyncMode;
  readonly ops: number;
  readonly seconds: number;
  readonly opsPerSec: number;
}

export interface AsyncSummary {
  readonly backend: BackendKind;
  readonly size: number;
  /** Median ops/s over the rounds. */
  readonly sync1: number;
  readonly sync8: number;
  readonly async: number;
  /** async / sync1 and async / sync8, of the medians. */
  readonly overSync1: number;
  readonly overSync8: number;
}

export interface AsyncTarget {
  readonly id: 'async-64-vs-sync1' | 'async-16k-vs-sync8';
  readonly text: string;
  readonly want: number;
  /** undefined: not measured (no ts backend or not that size). */
  readonly ratio?: number;
  readonly met?: boolean;
}

export interface AsyncReport {
  readonly mode: 'async';
  readonly depth: number;
  readonly durationMs: number;
  readonly accel: string;
  readonly boots: readonly BenchBoot[];
  /** /proc/loadavg of the host before each backend's measuring. */
  readonly hostLoad: readonly string[];
  readonly rounds: readonly AsyncRound[];
  readonly summary: readonly AsyncSummary[];
  readonly targets: readonly AsyncTarget[];
  readonly totalSec: number;
}

export interface AsyncOptions extends BenchGuestsOptions {
  readonly depth: number;
  readonly durationMs: number;
  readonly sizes?: readonly number[];
  readonly rounds?: number;
  /** The host's load average line (default: /proc/loadavg). */
  readonly hostLoad?: () => string;
}

interface ToolLine {
  ops: number;
  seconds: number;
  opsPerSec: number;
}

export function parseToolJson(stdout: string): ToolLine {
  const line = stdout.trim().split('\n').at(-1) ?? '';
  let v: Partial<ToolLine> & { error?: string };
  try {
    v = JSON.parse(line) as Partial<ToolLine> & { error?: string };
  } catch {
    throw new Error(`bench tool: not JSON: ${line.slice(0, 200)}`);
  }
  if (v.error || typeof v.ops !== 'number' || typeof v.seconds !== 'number' || !(v.seconds > 0)) throw new Error(`bench tool: ${line}`);
  return { ops: v.ops, seconds: v.seconds, opsPerSec: v.ops / v.seconds };
}

export function median(xs: readonly number[]): number {
  if (!xs.length) return 0;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Medians per backend and size, and their ratios. */
export function summarize(rounds: readonly AsyncRound[]): AsyncSummary[] {
  const out: AsyncSummary[] = [];
  const keys = [...new Set(rounds.map((r) => `${r.backend}/${r.size}`))];
  for (const key of keys) {
    const [backend, size] = [key.split('/')[0] as BackendKind, Number(key.split('/')[1])];
    const of = (mode: AsyncMode): number => median(rounds.filter((r) => r.backend === backend && r.size === size && r.mode === mode).map((r) => r.opsPerSec));
    const [s1, s8, a] = [of('sync1'), of('sync8'), of('async')];
    out.push({ backend, size, sync1: s1, sync8: s8, async: a, overSync1: s1 ? a / s1 : 0, overSync8: s8 ? a / s8 : 0 });
  }
  return out;
}

export function judgeAsync(summary: readonly AsyncSummary[]): AsyncTarget[] {
  const ts = (size: number): AsyncSummary | undefined => summary.find((s) => s.backend === 'ts' && s.size === size);
  const t64 = ts(64);
  const t16 = ts(16 * 1024);
  return [
    { id: 'async-64-vs-sync1', text: 'ts, 64 B: async (1 process) >= 2.5x sync 1 process', want: 2.5, ...(t64 ? { ratio: t64.overSync1, met: t64.overSync1 >= 2.5 } : {}) },
    { id: 'async-16k-vs-sync8', text: 'ts, 16 KiB: async (1 process) >= 1.0x sync 8 processes', want: 1, ...(t16 ? { ratio: t16.overSync8, met: t16.overSync8 >= 1 } : {}) },
  ];
}

export function formatAsyncReport(r: AsyncReport): string {
  const lines = [`bench e2e --async ${r.depth}: AES-256-CBC, ${r.durationMs} ms per point, ${r.rounds.length ? Math.max(...r.rounds.map((x) => x.round)) + 1 : 0} interleaved round(s), accel ${r.accel}`];
  for (const l of r.hostLoad) lines.push(`host load: ${l}`);
  lines.push('backend  size      sync 1 proc   sync 8 procs   async 1 proc   async/sync1  async/sync8');
  for (const s of r.summary) {
    lines.push(
      `${s.backend.padEnd(8)} ${String(s.size).padStart(6)} B ${s.sync1.toFixed(0).padStart(11)}/s ${s.sync8.toFixed(0).padStart(12)}/s ${s.async.toFixed(0).padStart(12)}/s ${s.overSync1.toFixed(2).padStart(11)}x ${s.overSync8.toFixed(2).padStart(11)}x`,
    );
  }
  for (const t of r.targets) {
    lines.push(`target ${t.text}: ${t.ratio === undefined ? 'not measured' : `${t.ratio.toFixed(2)}x ${t.met ? 'met' : 'NOT met'}`}`);
  }
  return lines.join('\n');
}

export async function benchE2eAsync(opts: AsyncOptions): Promise<AsyncReport> {
  const t0 = Date.now();
  const sizes = opts.sizes ?? ASYNC_SIZES;
  const nRounds = opts.rounds ?? ASYNC_ROUNDS;
  const rounds: AsyncRound[] = [];
  const hostLoad: string[] = [];
  const load = opts.hostLoad ?? ((): string => readFileSync('/proc/loadavg', 'utf8').trim());
  const say = (m: string): void => opts.onProgress?.(m);
  const ms = String(opts.durationMs);
  const guests = await eachBenchGuest('bench e2e --async', opts, async (backend, { session }) => {
    const run = async (argv: string[]): Promise<ToolLine> => {
      throwIfAborted(opts.signal);
      const r = await session.run(argv, { timeoutMs: opts.durationMs + 90_000, signal: opts.signal });
      if (r.code !== 0) throw new Error(`${argv.slice(1).join(' ')} failed (exit ${r.code}): ${r.stdout}${r.stderr}`);
      return parseToolJson(r.stdout);
    };
    const param = await session.run({ shell: `echo ${opts.depth} > /sys/module/${MODULE_NAME}/parameters/async_depth` }, { timeoutMs: 30_000, signal: opts.signal });
    if (param.code !== 0) throw new Error(`setting async_depth failed: ${param.stderr}`);
    await run([GUEST_TOOL_PATH, 'bench', 'dev', '1024', '1', String(ASYNC_WARMUP_MS)]);
    await run([GUEST_ASYNC_TOOL_PATH, 'bench', '1024', String(opts.depth), String(ASYNC_WARMUP_MS)]);
    hostLoad.push(`${backend}: ${load()}`);
    for (const size of sizes) {
      for (let round = 0; round < nRounds; round++) {
        const modes: Array<[AsyncMode, string[]]> = [
          ['sync1', [GUEST_TOOL_PATH, 'bench', 'dev', String(size), '1', ms]],
          ['sync8', [GUEST_TOOL_PATH, 'bench', 'dev', String(size), '8', ms]],
          ['async', [GUEST_ASYNC_TOOL_PATH, 'bench', String(size), String(opts.depth), ms]],
        ];
        for (const [mode, argv] of modes) {
          const p = await run(argv);
          rounds.push({ backend, size, round, mode, ...p });
          say(`${backend} ${size} B round ${round + 1} ${mode}: ${p.opsPerSec.toFixed(0)} ops/s`);
        }
      }
    }
    hostLoad.push(`${backend} (after): ${load()}`);
  });
  const summary = summarize(rounds);
  return {
    mode: 'async',
    depth: opts.depth,
    durationMs: opts.durationMs,
    accel: guests.accel,
    boots: guests.boots,
    hostLoad,
    rounds,
    summary,
    targets: judgeAsync(summary),
    totalSec: Math.round((Date.now() - t0) / 100) / 10,
  };
}
