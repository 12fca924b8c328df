/**
 * The committed benchmark results the report's figures are drawn from (docs/report/data/*.json):
 * each file is one benchmark command's own --json output, unchanged, with its provenance and the exact
 * command that produced it. Readers check the shape they use and nothing else.
 */
import type { BenchReport } from '../../backend/harness/bench-report';
import type { BenchRow as ChatBenchRow } from '../../chat/bench';
import type { E2eReport } from '../bench/driver';
import type { Provenance } from './provenance';

export interface Recorded<K extends string, R> {
  readonly kind: K;
  readonly provenance: Provenance;
  /** argv after `vlab`, exactly as run. */
  readonly command: readonly string[];
  readonly result: R;
}

export type E2eData = Recorded<'e2e', E2eReport>;
export type BackendData = Recorded<'backend', BenchReport>;
/** One `vlab chat bench --json` run per client count. */
export type ChatData = Recorded<'chat', ReadonlyArray<{ readonly command: readonly string[]; readonly rows: readonly ChatBenchRow[] }>>;
export interface BootSample {
  readonly backend: string;
  readonly bootSec: number;
  readonly guestKernel?: string;
  /** 1-minute load average just before this boot (boots are minutes apart on a shared machine). */
  readonly load1?: number;
}
/** `vlab up` then `vlab status --json` (its bootSec: QEMU start to SSH), then `vlab down`, repeated. */
export type BootData = Recorded<'boot', readonly BootSample[]>;

export const DATA_FILES = { e2e: 'e2e.json', backend: 'backend.json', chat: 'chat.json', boot: 'boot.json' } as const;
export type DataKind = keyof typeof DATA_FILES;

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function checkEnvelope(v: unknown, kind: string, file: string): Record<string, unknown> {
  if (!isObject(v) || v['kind'] !== kind || !isObject(v['provenance']) || !Array.isArray(v['command'])) {
    throw new Error(`${file}: not a recorded ${kind} result (kind, provenance, command, result)`);
  }
  return v;
}

export function parseE2e(v: unknown, file: string): E2eData {
  const o = checkEnvelope(v, 'e2e', file);
  const r = o['result'];
  if (!isObject(r) || !Array.isArray(r['points'])) throw new Error(`${file}: result.points missing`);
  // Schema 1: AES-256-CBC only; schema 2 adds points' alg, openssl speed points, targets.
  if (r['schema'] !== 1 && r['schema'] !== 2) throw new Error(`${file}: e2e result schema ${String(r['schema'])} (this reader knows 1 and 2)`);
  return o as unknown as E2eData;
}

export function parseBackend(v: unknown, file: string): BackendData {
  const o = checkEnvelope(v, 'backend', file);
  const r = o['result'];
  if (!isObject(r) || !Array.isArray(r['rows'])) throw new Error(`${file}: result.rows missing`);
  return o as unknown as BackendData;
}

export function parseChat(v: unknown, file: string): ChatData {
  const o = checkEnvelope(v, 'chat', file);
  const r = o['result'];
  if (!Array.isArray(r) || !r.every((x) => isObject(x) && Array.isArray(x['rows']))) throw new Error(`${file}: result must be a list of runs with rows`);
  return o as unknown as ChatData;
}

export function parseBoot(v: unknown, file: string): BootData {
  const o = checkEnvelope(v, 'boot', file);
  const r = o['result'];
  if (!Array.isArray(r) || !r.every((x) => isObject(x) && typeof x['bootSec'] === 'number')) throw new Error(`${file}: result must be a list of boots`);
  return o as unknown as BootData;
}
