/**
 * Crash dumps of the guest: an ELF core of guest memory written by QEMU (QMP `dump-guest-memory`,
 * paging=false, ELF), made readable by gdb (core-vaddr.ts), with what is needed to open it later next
 * to it: FILE.console.txt (the console's last lines), FILE.symbols.json + FILE.symbols.kallsyms.txt
 * (where the kernel and the modules were, when known) and FILE.vlab.json (this description).
 *
 * The dump folder is inside the state folder, which the guest can write (the workspace share): the
 * guest is stopped before the file is created (O_EXCL, 0600) and handed to QEMU, so it cannot swap a
 * symlink in; it is resumed afterwards only if it was running.
 */
import { chmodSync, closeSync, mkdirSync, openSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { QmpClient } from '../qemu/qmp';
import { tailFile } from '../common/files';
import { addVirtualIndex } from './core-vaddr';
import { type GuestSymbolsRead, readSnapshot, writeSnapshot } from './guest-symbols';

export type DumpReason = 'manual' | 'panic';

/** FILE.vlab.json. */
export interface CrashDumpInfo {
  readonly schema: 1;
  readonly createdAt: string;
  readonly reason: DumpReason;
  /** The guest kernel release the lab booted. */
  readonly release: string;
  /** "Kernel panic - not syncing: ..." when reason is panic. */
  readonly panicLine?: string;
  /** Kernel virtual mappings indexed for gdb (0 when indexing failed; see indexError). */
  readonly virtualSegments: number;
  readonly indexError?: string;
  /** When the saved symbol snapshot was read from the guest (absent: none saved with the dump). */
  readonly symbolsTakenAt?: string;
}

export interface CrashDump {
  readonly file: string;
  readonly consoleFile: string;
  readonly info: CrashDumpInfo;
  readonly seconds: number;
}

const DUMP_TIMEOUT_MS = 10 * 60_000;
const CONSOLE_LINES = 400;

export function dumpsDir(stateDir: string): string {
  return join(stateDir, 'dumps');
}

/** .vlab/dumps/dump-20261204-023300.elf (local time). */
export function defaultDumpPath(stateDir: string, now = new Date()): string {
  const p = (n: number): string => String(n).padStart(2, '0');
  const stamp = `${now.getFullYear()}${p(now.getMonth() + 1)}${p(now.getDate())}-${p(now.getHours())}${p(now.getMinutes())}${p(now.getSeconds())}`;
  return join(dumpsDir(stateDir), `dump-${stamp}.elf`);
}

export const sideFiles = (file: string): { console: string; info: string; symbolsBase: string } => ({
  console: `${file}.console.txt`,
  info: `${file}.vlab.json`,
  symbolsBase: `${basename(file)}.symbols`,
});

export interface WriteDumpOptions {
  readonly file: string;
  readonly reason: DumpReason;
  readonly release: string;
  readonly consoleLog: string;
  readonly panicLine?: string;
  /** Where the kernel and modules were (read just before, or the last snapshot). */
  readonly symbols?: GuestSymbolsRead;
  readonly timeoutMs?: number;
}

function runState(v: unknown): string {
  return typeof v === 'object' && v !== null && typeof (v as { status?: unknown }).status === 'string' ? (v as { status: string }).status : 'unknown';
}

/** Writes the dump and its side files. Throws when QEMU refuses or the file exists. */
export async function writeCrashDump(qmp: QmpClient, opts: WriteDumpOptions): Promise<CrashDump> {
  const t0 = Date.now();
  mkdirSync(dirname(opts.file), { recursive: true, mode: 0o700 });
  const before = runState(await qmp.execute('query-status'));
  if (before === 'running') await qmp.execute('stop');
  try {
    closeSync(openSync(opts.file, 'wx', 0o600));
    // QEMU opens the file itself (O_TRUNC keeps our mode) and writes all of guest RAM; it blocks this
    // monitor until done.
    await qmp.execute('dump-guest-memory', { paging: false, protocol: `file:${opts.file}`, format: 'elf' }, { timeoutMs: opts.timeoutMs ?? DUMP_TIMEOUT_MS });
  } finally {
    if (before === 'running') await qmp.execute('cont').catch(() => undefined);
  }
  chmodSync(opts.file, 0o600);
  let virtualSegments = 0;
  let indexError: string | undefined;
  try {
    virtualSegments = addVirtualIndex(opts.file).added;
  } catch (err) {
    indexError = err instanceof Error ? err.message : String(err);
  }
  const side = sideFiles(opts.file);
  writeFileSync(side.console, `${tailFile(opts.consoleLog, CONSOLE_LINES, 256 * 1024)}\n`, { mode: 0o600 });
  if (opts.symbols) writeSnapshot(dirname(opts.file), opts.symbols, side.symbolsBase);
  const info: CrashDumpInfo = {
    schema: 1,
    createdAt: new Date().toISOString(),
    reason: opts.reason,
    release: opts.release,
    ...(opts.panicLine ? { panicLine: opts.panicLine } : {}),
    virtualSegments,
    ...(indexError ? { indexError } : {}),
    ...(opts.symbols ? { symbolsTakenAt: opts.symbols.info.takenAt } : {}),
  };
  const tmp = `${side.info}.tmp-${process.pid}`;
  writeFileSync(tmp, `${JSON.stringify(info, null, 2)}\n`, { mode: 0o600 });
  renameSync(tmp, side.info);
  return { file: opts.file, consoleFile: side.console, info, seconds: Math.round((Date.now() - t0) / 100) / 10 };
}

/** What was saved with a dump: its description and symbol snapshot (each undefined when missing or bad). */
export function readDumpSidecar(file: string): { info?: CrashDumpInfo; symbols?: GuestSymbolsRead } {
  const side = sideFiles(file);
  let info: CrashDumpInfo | undefined;
  try {
    const text = readFileSync(side.info, 'utf8');
    const o = text.length < 1 << 20 ? (JSON.parse(text) as Partial<CrashDumpInfo>) : undefined;
    if (o && o.schema === 1 && typeof o.release === 'string' && typeof o.createdAt === 'string') info = o as CrashDumpInfo;
  } catch {
    // no description: a dump from elsewhere
  }
  return { info, symbols: readSnapshot(dirname(file), side.symbolsBase) };
}

/** The QEMU run state ("running", "paused", "guest-panicked", "debug", ...). */
export async function queryRunState(qmp: QmpClient): Promise<string> {
  return runState(await qmp.execute('query-status'));
}
