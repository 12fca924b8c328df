/** Option parsing shared by `vlab bench e2e` (driver.ts) and `vlab bench latency`. */
import { UsageError } from '../command';
import type { BackendKind } from '../../lab/state';

/** A comma-separated list of integers within [min, max], duplicates dropped; `dflt` when absent. */
export function intList(v: string | undefined, flag: string, min: number, max: number, dflt: readonly number[]): number[] {
  if (v === undefined) return [...dflt];
  const out = v.split(',').map((s) => s.trim());
  for (const s of out) {
    const n = Number(s);
    if (!/^\d+$/.test(s) || n < min || n > max) throw new UsageError(`${flag} takes integers from ${min} to ${max} (got "${s}")`);
  }
  return [...new Set(out.map(Number))];
}

/** One integer within [min, max]; `dflt` when absent. */
export function oneInt(v: string | undefined, flag: string, dflt: number, min: number, max: number): number {
  const [n] = intList(v, flag, min, max, [dflt]);
  if (v?.includes(',')) throw new UsageError(`${flag} takes one integer`);
  return n!;
}

/** `--backend`: a comma-separated list of builtin and/or ts, duplicates dropped. */
export function backendList(v: string | undefined, dflt: string): BackendKind[] {
  const backends = [...new Set((v ?? dflt).split(',').map((s) => s.trim()))];
  for (const b of backends) if (b !== 'builtin' && b !== 'ts') throw new UsageError(`--backend takes builtin and/or ts (got "${b}")`);
  return backends as BackendKind[];
}
