/**
 * Runs the project's benchmark (`vlab bench backend --json`: the backend through its test
 * front-end, with the reference engine measured in the same run) and turns its JSON into chart
 * groups. The JSON is read defensively: unknown shapes give an empty chart plus the raw output.
 */
import type { VlabCli } from '../cli-runner';
import type { BenchGroup } from './chart';

export interface BenchRun {
  title: string;
  groups: BenchGroup[];
  raw: string;
}

const MAX_GROUPS = 32;
const MAX_BARS = 12;

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const RATE_KEY = /(per_?s(ec)?|ps$|throughput|mib|mb|ops|rate)/i;
const REF_KEY = /(ref|reference|baseline|direct)/i;

/** A result row: its string fields name it, its rate-like numeric fields become bars. */
function groupFromRow(row: Record<string, unknown>): BenchGroup | undefined {
  const name = Object.entries(row).filter(([, v]) => typeof v === 'string' || (typeof v === 'number' && !Number.isNaN(v) && false)).map(([, v]) => String(v)).join(' · ');
  const numeric = Object.entries(row).filter((e): e is [string, number] => typeof e[1] === 'number' && Number.isFinite(e[1]));
  const rates = numeric.filter(([k]) => RATE_KEY.test(k));
  const context = numeric.filter(([k]) => !RATE_KEY.test(k)).map(([k, v]) => `${k} ${v}`).join(', ');
  if (rates.length === 0) return undefined;
  const unitMatch = rates[0]![0].match(/(mib|mb|ops|req)/i);
  const unit = unitMatch ? `${unitMatch[1]}/s` : rates[0]![0];
  return {
    label: [name, context].filter(Boolean).join(' · ') || 'result',
    unit,
    bars: rates.slice(0, MAX_BARS).map(([k, v]) => ({ label: k, value: v, reference: REF_KEY.test(k) })),
  };
}

function collectRows(v: unknown, out: Record<string, unknown>[], depth = 0): void {
  if (depth > 4 || out.length >= MAX_GROUPS) return;
  if (Array.isArray(v)) {
    for (const x of v) collectRows(x, out, depth + 1);
  } else if (isRecord(v)) {
    const hasRate = Object.entries(v).some(([k, x]) => typeof x === 'number' && RATE_KEY.test(k));
    if (hasRate) out.push(v);
    else for (const x of Object.values(v)) collectRows(x, out, depth + 1);
  }
}

/**
 * `vlab bench backend --json`: { engine, cipher, rows: [{ size, depth, mbPerSec, rawEngineMbPerSec, ... }] },
 * where the raw engine is the reference measured in the same run (docs/backend.md).
 */
function groupsFromBackendBench(json: Record<string, unknown>): BenchGroup[] | undefined {
  if (!Array.isArray(json.rows)) return undefined;
  const cipher = typeof json.cipher === 'string' ? json.cipher.slice(0, 40) : 'cipher';
  const engine = typeof json.engine === 'string' ? json.engine.slice(0, 40) : 'engine';
  const groups: BenchGroup[] = [];
  for (const row of json.rows.slice(0, MAX_GROUPS)) {
    if (!isRecord(row) || typeof row.mbPerSec !== 'number' || typeof row.rawEngineMbPerSec !== 'number') return undefined;
    groups.push({
      label: `${cipher} ${String(row.size)} B, queue depth ${String(row.depth)}`,
      unit: 'MB/s',
      bars: [
        { label: 'backend via vhost-user', value: row.mbPerSec },
        { label: `${engine} alone (reference)`, value: row.rawEngineMbPerSec, reference: true },
      ],
    });
  }
  return groups;
}

export function groupsFromBenchJson(json: unknown): BenchGroup[] {
  const known = isRecord(json) ? groupsFromBackendBench(json) : undefined;
  if (known) return known;
  const rows: Record<string, unknown>[] = [];
  collectRows(json, rows);
  return rows.map(groupFromRow).filter((g): g is BenchGroup => g !== undefined).slice(0, MAX_GROUPS);
}

export async function runBenchmark(cli: VlabCli, secondsPerCase: number, opts: { signal?: AbortSignal; onOutput?: (s: string) => void; onStep?: (m: string) => void }): Promise<BenchRun> {
  opts.onStep?.('backend: AES-256-CBC through the vhost-user test front-end');
  const r = await cli.run(['bench', 'backend', '--json', '--engine', 'openssl', '--seconds', String(secondsPerCase)], opts);
  if (r.code !== 0) throw new Error(`vlab bench backend exited ${r.code}: ${(r.stderr || r.stdout).trim().split('\n').slice(-3).join(' ')}`);
  const start = r.stdout.indexOf('{');
  let json: unknown;
  try {
    json = JSON.parse(r.stdout.slice(Math.max(0, start)));
  } catch {
    throw new Error('vlab bench backend --json did not print JSON');
  }
  return { title: 'Backend benchmark (reference measured in the same run)', groups: groupsFromBenchJson(json), raw: r.stdout };
}
