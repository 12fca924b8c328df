/**
 * `vlab dump [FILE]`: a crash dump of the running lab on request. The guest's symbols are read first
 * (it still answers), so the dump opens with the right kernel and module addresses even without
 * nokaslr; a guest that does not answer (halted in gdb) gets the lab's last snapshot of this boot.
 */
import { isAbsolute, resolve } from 'node:path';
import { LabError, errorMessage } from '../common/errors';
import { findExecutable } from '../host/host';
import type { Lab } from '../lab';
import { readState } from '../state';
import { type CrashDump, defaultDumpPath, writeCrashDump } from './crash-dump';
import { type GuestSymbolsRead, readGuestSymbols, readSnapshot, writeSnapshot } from './guest-symbols';
import { debugDir } from './panic';
import { findVmlinux } from './vmlinux';

export interface LabDump extends CrashDump {
  /** Where the saved symbols came from. */
  readonly symbolsFrom: 'guest' | 'snapshot' | 'none';
  /** How to open it, one command per line. */
  readonly howToOpen: readonly string[];
}

const SSH_TIMEOUT_MS = 8_000;

async function symbolsNow(lab: Lab, release: string, boot: string, signal?: AbortSignal): Promise<{ read?: GuestSymbolsRead; from: LabDump['symbolsFrom'] }> {
  try {
    const session = await lab.ssh({ timeoutMs: SSH_TIMEOUT_MS, signal });
    try {
      const read = await readGuestSymbols(session, { modulesOnly: findVmlinux(release) !== undefined, boot, timeoutMs: 30_000 });
      writeSnapshot(debugDir(lab.paths), read);
      return { read, from: 'guest' };
    } finally {
      session.close();
    }
  } catch {
    const snap = readSnapshot(debugDir(lab.paths));
    return snap && snap.info.boot === boot ? { read: snap, from: 'snapshot' } : { from: 'none' };
  }
}

/** Writes a dump of the running lab's guest to `file` (default .vlab/dumps/dump-<time>.elf). */
export async function dumpLab(lab: Lab, file?: string, signal?: AbortSignal): Promise<LabDump> {
  const state = readState(lab.paths);
  const status = await lab.status({ device: false, telemetry: false });
  if (status.crashDump) throw new LabError('not-running', `the guest panicked and its dump was already written: ${status.crashDump}`, `vlab gdb --core ${status.crashDump}`);
  if (status.state !== 'running' || !state) throw new LabError('not-running', `the lab is not running (${status.state})`, 'vlab up');
  const target = file === undefined ? defaultDumpPath(lab.paths.stateDir) : isAbsolute(file) ? file : resolve(lab.paths.workspace, file);
  const { read, from } = await symbolsNow(lab, state.kernelVersion, state.startedAt, signal);
  const qmp = await lab.qmp({ timeoutMs: 5_000 });
  let dump: CrashDump;
  try {
    dump = await writeCrashDump(qmp, { file: target, reason: 'manual', release: state.kernelVersion, consoleLog: lab.paths.consoleLog, symbols: read });
  } catch (err) {
    const exists = (err as NodeJS.ErrnoException).code === 'EEXIST';
    throw new LabError('qmp', exists ? `${target} already exists` : `dump-guest-memory failed: ${errorMessage(err)}`);
  } finally {
    qmp.close();
  }
  return { ...dump, symbolsFrom: from, howToOpen: howToOpen(dump.file, state.kernelVersion, lab.host.pathEnv) };
}

/** `vlab gdb --core FILE`, and `crash` when it is installed (it needs the vmlinux with DWARF). */
export function howToOpen(file: string, release: string, pathEnv: string): string[] {
  const lines = [`vlab gdb --core ${file}`];
  const vmlinux = findVmlinux(release);
  if (findExecutable('crash', pathEnv) && vmlinux) lines.push(`crash ${vmlinux} ${file}`);
  return lines;
}
