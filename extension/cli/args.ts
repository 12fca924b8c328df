/**
 * Command-line value parsing every `vlab` command shares: node's parseArgs with its errors as usage
 * errors (exit 2), and the checks for choices, integers, integer lists, backends and engines. Each
 * helper throws UsageError with the wording the commands have always printed.
 */
import { type ParseArgsConfig, parseArgs as nodeParseArgs } from 'node:util';
import type { EngineChoice } from '../../backend/crypto/engine';
import type { BackendKind } from '../lab/state';
import { UsageError } from './command';

/** node:util parseArgs, with its errors (unknown option, missing value) turned into usage errors (exit 2). */
export function parseArgs<T extends ParseArgsConfig>(config: T): ReturnType<typeof nodeParseArgs<T>> {
  try {
    return nodeParseArgs(config);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code?.startsWith('ERR_PARSE_ARGS')) throw new UsageError((err as Error).message.split('\n')[0]!);
    throw err;
  }
}

/** `value` when it is one of `allowed`; undefined when absent. */
export function choice<T extends string>(value: string | undefined, allowed: readonly T[], flag: string): T | undefined {
  if (value === undefined) return undefined;
  if (!(allowed as readonly string[]).includes(value)) throw new UsageError(`${flag} must be one of ${allowed.join(', ')} (got "${value}")`);
  return value as T;
}

/** The one integer rule of the CLI: plain decimal digits, within [min, max]. Undefined when `text` is not such a number. */
export function integerIn(text: string, min: number, max: number): number | undefined {
  const n = Number(text);
  return /^\d+$/.test(text) && Number.isInteger(n) && n >= min && n <= max ? n : undefined;
}

/** An integer option within [min, max]; undefined when absent. */
export function integer(value: string | undefined, flag: string, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  const n = integerIn(value, min, max);
  if (n === undefined) throw new UsageError(`${flag} must be an integer from ${min} to ${max} (got "${value}")`);
  return n;
}

/** A comma-separated list of integers within [min, max], duplicates dropped; `dflt` when absent. */
export function intList(v: string | undefined, flag: string, min: number, max: number, dflt: readonly number[]): number[] {
  if (v === undefined) return [...dflt];
  const out = v.split(',').map((s) => s.trim());
  for (const s of out) if (integerIn(s, min, max) === undefined) throw new UsageError(`${flag} takes integers from ${min} to ${max} (got "${s}")`);
  return [...new Set(out.map(Number))];
}

/** One integer within [min, max] (the list form's wording); `dflt` when absent. */
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

/** `--engine` of the backend commands; auto when absent. */
export function engine(value: string | undefined): EngineChoice {
  const v = value ?? 'auto';
  if (v !== 'auto' && v !== 'openssl' && v !== 'node' && v !== 'cryptodev') throw new UsageError(`--engine must be auto, openssl, node or cryptodev (got "${v}")`);
  return v;
}
