/**
 * `vlab bench e2e`: AES-256-CBC from guest userspace through /dev/crypto (our driver -> virtio -> backend),
 * per backend, with the guest's own OpenSSL as the no-offload baseline. One VM per backend, each in its own
 * temporary state folder so a lab the user has running is left alone.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GUEST_TOOL_PATH, buildDriver, pushGuestTool } from './driver';
import { errorMessage, throwIfAborted } from './errors';
import { Lab } from './lab';
import type { BackendKind } from './state';

export const E2E_SIZES = [64, 1024, 16 * 1024, 64 * 1024] as const;
export const E2E_PROCS = [1, 8] as const;

export type E2eSource = BackendKind | 'software';

export interface E2ePoint {
  readonly source: E2eSource;
  readonly size: number;
  readonly procs: number;
  readonly ops: number;
  readonly seconds: number;
  readonly opsPerSec: number;
  readonly MBps: number;
}

export interface E2eRatio {
  readonly size: number;
  readonly procs: number;
  /** ts ops/s over builtin ops/s (absent unless both ran). */
  readonly tsOverBuiltin?: number;
  /** Each backend's ops/s over the guest's software AES. */
  readonly builtinOverSoftware?: number;
  readonly tsOverSoftware?: number;
}

/** One guest boot the benchmark did: QEMU start to SSH, as `vlab status` reports it. */
export interface E2eBoot {
  readonly backend: BackendKind;
  readonly bootSec: number;
}

export interface E2eReport {
  readonly schema: 1;
  readonly accel: string;
  /** Why that accelerator (the lab's own sentence). */
  readonly accelWhy?: string;
  /** The boots this run did, one per backend. */
  readonly boots?: readonly E2eBoot[];
  readonly durationMs: number;
  readonly points: readonly E2ePoint[];
  readonly ratios: readonly E2eRatio[];
}

export interface E2eOptions {
  readonly workspace: string;
  readonly backends: readonly BackendKind[];
  readonly durationMs: number;
  readonly env?: NodeJS.ProcessEnv;
  readonly signal?: AbortSignal;
  readonly onProgress?: (message: string) => void;
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

function ratio(a: number | undefined, b: number | undefined): number | undefined {
  return a !== undefined && b ? Math.round((a / b) * 100) / 100 : undefined;
}

export function computeRatios(points: readonly E2ePoint[]): E2eRatio[] {
  const find = (source: E2eSource, size: number, procs: number): number | undefined =>
    points.find((p) => p.source === source && p.size === size && p.procs === procs)?.opsPerSec;
  const out: E2eRatio[] = [];
  for (const size of E2E_SIZES) {
    for (const procs of E2E_PROCS) {
      const b = find('builtin', size, procs);
      const t = find('ts', size, procs);
      const s = find('software', size, procs);
      out.push({ size, procs, tsOverBuiltin: ratio(t, b), builtinOverSoftware: ratio(b, s), tsOverSoftware: ratio(t, s) });
    }
  }
  return out;
}

export async function benchE2e(opts: E2eOptions): Promise<E2eReport> {
  const points: E2ePoint[] = [];
  let accel = 'unknown';
  let accelWhy: string | undefined;
  const boots: E2eBoot[] = [];
  const say = (m: string): void => opts.onProgress?.(m);
  for (const [i, backend] of opts.backends.entries()) {
    throwIfAborted(opts.signal);
    const stateDir = mkdtempSync(join(tmpdir(), 'vlab-e2e-'));
    const lab = Lab.forWorkspace(opts.workspace, { stateDir, env: opts.env });
    try {
      say(`booting a guest with the ${backend} backend`);
      const { status } = await lab.up({ backend, guestDriver: 'lab' }, { signal: opts.signal });
      accel = status.accel?.kind ?? accel;
      accelWhy = status.accel?.why ?? accelWhy;
      if (status.bootSec !== undefined) boots.push({ backend, bootSec: status.bootSec });
      const build = await buildDriver(lab, { signal: opts.signal });
      const session = await lab.ssh({ signal: opts.signal });
      try {
        await pushGuestTool(session, build);
        const modes: Array<['dev' | 'sw', E2eSource]> = [['dev', backend]];
        if (i === 0) modes.push(['sw', 'software']);
        for (const [mode, source] of modes) {
          for (const size of E2E_SIZES) {
            for (const procs of E2E_PROCS) {
              throwIfAborted(opts.signal);
              const r = await session.run([GUEST_TOOL_PATH, 'bench', mode, String(size), String(procs), String(opts.durationMs)], {
                timeoutMs: opts.durationMs + 60_000,
              });
              if (r.code !== 0) throw new Error(`bench ${mode} ${size} B x${procs} failed: ${r.stdout}${r.stderr}`);
              const t = parseToolLine(r.stdout);
              points.push({ source, size, procs, ...t });
              say(`${source.padEnd(8)} ${String(size).padStart(6)} B x${procs}: ${t.opsPerSec.toFixed(0)} ops/s, ${t.MBps.toFixed(2)} MB/s`);
            }
          }
        }
      } finally {
        session.close();
      }
    } catch (err) {
      throw new Error(`bench e2e (${backend}): ${errorMessage(err)}`);
    } finally {
      await lab.down().catch(() => undefined);
      rmSync(stateDir, { recursive: true, force: true });
    }
  }
  return { schema: 1, accel, ...(accelWhy ? { accelWhy } : {}), boots, durationMs: opts.durationMs, points, ratios: computeRatios(points) };
}

export function formatE2eTable(report: E2eReport): string {
  const lines = [`AES-256-CBC through /dev/crypto in the guest (accel ${report.accel}, ${report.durationMs} ms per point), ops/s (MB/s)`];
  const sources: E2eSource[] = ['builtin', 'ts', 'software'];
  const present = sources.filter((s) => report.points.some((p) => p.source === s));
  lines.push(['size', 'procs', ...present, 'ts/builtin', 'builtin/sw', 'ts/sw'].map((h, i) => (i < 2 ? h.padStart(6) : h.padStart(20))).join(' '));
  for (const r of report.ratios) {
    const cells = present.map((s) => {
      const p = report.points.find((x) => x.source === s && x.size === r.size && x.procs === r.procs);
      return (p ? `${p.opsPerSec.toFixed(0)} (${p.MBps.toFixed(1)})` : '-').padStart(20);
    });
    const fmt = (v: number | undefined): string => (v === undefined ? '-' : `${v.toFixed(2)}x`).padStart(20);
    lines.push([String(r.size).padStart(6), String(r.procs).padStart(6), ...cells, fmt(r.tsOverBuiltin), fmt(r.builtinOverSoftware), fmt(r.tsOverSoftware)].join(' '));
  }
  return lines.join('\n');
}
