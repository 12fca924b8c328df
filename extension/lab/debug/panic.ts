/**
 * The lab's side of crash dumps on panic, for labs booted with `--gdb`. QEMU gets a pvpanic device and
 * `-action panic=pause` (qemu/args.ts): when the guest kernel panics, its pvpanic notifier tells QEMU,
 * which pauses the VM in the 'guest-panicked' run state instead of letting `panic=-1` + `-no-reboot`
 * end it. The lab then (at its next status/up/down) writes the dump and only afterwards tears QEMU
 * down. Here: arming the guest after boot (pvpanic driver, first symbol snapshot), telling a panicked
 * guest from a running one, and writing its dump once (a lock file keeps two `vlab` commands from
 * both dumping).
 */
import { closeSync, mkdirSync, openSync, readFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { removeQuietly } from '../common/files';
import type { LabPaths } from '../common/paths';
import { isAlive } from '../host/proc';
import { QmpClient } from '../qemu/qmp';
import type { SshSession } from '../guest/ssh';
import { defaultDumpPath, dumpsDir, queryRunState, writeCrashDump } from './crash-dump';
import { readGuestSymbols, readSnapshot, writeSnapshot } from './guest-symbols';
import { findVmlinux } from './vmlinux';

const QMP_TIMEOUT_MS = 3_000;

/** The folder of the lab's debug files (symbol snapshot, generated symbol files). */
export function debugDir(paths: LabPaths): string {
  return join(paths.stateDir, 'debug');
}

/**
 * Reads the guest's symbols and keeps them as the lab's snapshot (what a dump after a panic gets).
 * Full kallsyms only when no vmlinux is installed (module lines otherwise).
 */
export async function refreshSymbolSnapshot(session: SshSession, paths: LabPaths, boot: string, release: string): Promise<void> {
  const read = await readGuestSymbols(session, { modulesOnly: findVmlinux(release) !== undefined, boot });
  writeSnapshot(debugDir(paths), read);
}

/**
 * After a `--gdb` boot: loads the guest's pvpanic driver (so a panic pauses QEMU) and takes the first
 * symbol snapshot. Returns what did not work (the lab still runs; only automatic dumps are affected).
 */
export async function armGuestForDumps(session: SshSession, paths: LabPaths, boot: string, release: string): Promise<string[]> {
  const problems: string[] = [];
  // pvpanic-mmio drives QEMU's ISA pvpanic (ACPI QEMU0001); on kernels where it is built in modprobe is a no-op.
  const r = await session.run({ shell: 'modprobe pvpanic_mmio 2>&1 || modprobe pvpanic 2>&1; ls /sys/bus/platform/drivers/ 2>/dev/null | grep -q pvpanic' }, { timeoutMs: 20_000 });
  if (r.code !== 0) problems.push(`the guest's pvpanic driver did not load (${r.stdout.trim().slice(0, 120) || `exit ${r.code}`}): a panic will end QEMU without a dump`);
  try {
    await refreshSymbolSnapshot(session, paths, boot, release);
  } catch (err) {
    problems.push(`reading the guest's symbols failed: ${err instanceof Error ? err.message : String(err)}`);
  }
  return problems;
}

/** True when QEMU holds the guest paused after a panic; undefined when QMP does not answer. */
export async function guestPanicked(qmpSocket: string): Promise<boolean | undefined> {
  let qmp: QmpClient | undefined;
  try {
    qmp = await QmpClient.connect(qmpSocket, { timeoutMs: QMP_TIMEOUT_MS });
    return (await queryRunState(qmp)) === 'guest-panicked';
  } catch {
    return undefined;
  } finally {
    qmp?.close();
  }
}

function takeLock(path: string): boolean {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(path, 'wx', 0o600);
      writeSync(fd, `${process.pid}\n`);
      closeSync(fd);
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const pid = Number(readFileSync(path, 'utf8').trim());
    if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && isAlive(pid)) return false;
    removeQuietly(path);
  }
  return false;
}

export type PanicDumpResult =
  | { readonly kind: 'written'; readonly file: string; readonly seconds: number }
  | { readonly kind: 'busy' }
  | { readonly kind: 'failed'; readonly error: string };

export interface PanickedLab {
  readonly paths: LabPaths;
  /** state.json's startedAt: the snapshot must be of this boot. */
  readonly boot: string;
  readonly release: string;
  readonly panicLine?: string;
}

/** Writes the dump of a panicked guest (once: another process already at it gives 'busy'). */
export async function dumpPanickedGuest(lab: PanickedLab): Promise<PanicDumpResult> {
  const dir = dumpsDir(lab.paths.stateDir);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const lock = join(dir, '.panic-dump.lock');
  if (!takeLock(lock)) return { kind: 'busy' };
  let qmp: QmpClient | undefined;
  try {
    qmp = await QmpClient.connect(lab.paths.qmpSocket, { timeoutMs: QMP_TIMEOUT_MS });
    const snapshot = readSnapshot(debugDir(lab.paths));
    const dump = await writeCrashDump(qmp, {
      file: defaultDumpPath(lab.paths.stateDir),
      reason: 'panic',
      release: lab.release,
      consoleLog: lab.paths.consoleLog,
      panicLine: lab.panicLine,
      symbols: snapshot && snapshot.info.boot === lab.boot ? snapshot : undefined,
    });
    return { kind: 'written', file: dump.file, seconds: dump.seconds };
  } catch (err) {
    return { kind: 'failed', error: err instanceof Error ? err.message : String(err) };
  } finally {
    qmp?.close();
    removeQuietly(lock);
  }
}
