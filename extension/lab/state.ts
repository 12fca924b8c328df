/**
 * state.json (what is running, recorded by `up`, read by everyone) and the lab lock (one `up`/`down` at a
 * time per state folder). Both survive the process that wrote them: the VM outlives `vlab up`.
 */
import { closeSync, mkdirSync, openSync, readFileSync, renameSync, statSync, writeFileSync, writeSync } from 'node:fs';
import type { AccelChoice } from './host/accel';
import { LabError } from './common/errors';
import { removeQuietly } from './common/files';
import type { LabPaths } from './common/paths';
import { type ProcessRecord, isAlive, processStartTime } from './host/proc';

export type LabState = 'stopped' | 'booting' | 'running' | 'stopping' | 'failed';
export type BackendKind = 'builtin' | 'ts';
export type EngineChoice = 'auto' | 'openssl' | 'node' | 'cryptodev';
export type GuestDriver = 'upstream' | 'none' | 'lab';

export interface UpOptions {
  readonly backend: BackendKind;
  readonly engine: EngineChoice;
  readonly accel: 'auto' | 'kvm' | 'tcg';
  readonly memoryMb: number;
  readonly cpus: number;
  readonly guestDriver: GuestDriver;
  /** How long `up` waits for SSH after QEMU starts. */
  readonly bootTimeoutMs: number;
  /** Fault-injection rules the ts backend starts with (docs/fault-injection.md). */
  readonly faults?: readonly string[];
  /** Extra guest kernel command-line arguments, appended after the lab's own (validated: `checkKernelAppend`). */
  readonly append?: string;
  /**
   * Debugging: QEMU's gdbstub on a free loopback port (`vlab gdb`), `nokaslr` on the kernel command line,
   * and a crash dump when the guest panics (extension/lab/debug).
   */
  readonly gdb?: boolean;
}

export interface StateFile {
  readonly schema: 1;
  readonly state: LabState;
  readonly reason?: string;
  readonly options: UpOptions;
  readonly accel: AccelChoice;
  readonly kernelVersion: string;
  /** The `vlab up` process that is booting the VM (meaningful while state is 'booting'). */
  readonly upPid: number;
  readonly qemu?: ProcessRecord;
  readonly backend?: ProcessRecord;
  readonly sshPort?: number;
  /** QEMU's gdbstub port on 127.0.0.1 (labs booted with the gdb option). */
  readonly gdbPort?: number;
  /** The crash dump written after the guest panicked (state 'failed'). */
  readonly crashDump?: string;
  /** ISO times. */
  readonly startedAt: string;
  readonly runningSince?: string;
  readonly bootSec?: number;
}

/** state.json is small; anything bigger was not written by us (the guest can write the workspace). */
const MAX_STATE_BYTES = 64 * 1024;
const STATES: readonly string[] = ['stopped', 'booting', 'running', 'stopping', 'failed'];

function validRecord(rec: unknown): boolean {
  if (rec === undefined) return true;
  const r = rec as Partial<ProcessRecord>;
  return typeof r === 'object' && r !== null && Number.isInteger(r.pid) && typeof r.startTime === 'string' && typeof r.marker === 'string' && r.marker.length > 0;
}

export function readState(paths: LabPaths): StateFile | undefined {
  let text: string;
  try {
    if (statSync(paths.stateFile).size > MAX_STATE_BYTES) return undefined;
    text = readFileSync(paths.stateFile, 'utf8');
  } catch {
    return undefined;
  }
  try {
    const parsed = JSON.parse(text) as Partial<StateFile>;
    if (parsed.schema !== 1 || typeof parsed.state !== 'string' || !STATES.includes(parsed.state)) return undefined;
    if (typeof parsed.options !== 'object' || parsed.options === null || typeof parsed.accel !== 'object' || parsed.accel === null) return undefined;
    if (!validRecord(parsed.qemu) || !validRecord(parsed.backend) || !Number.isInteger(parsed.upPid)) return undefined;
    if (parsed.sshPort !== undefined && !(Number.isInteger(parsed.sshPort) && parsed.sshPort > 0 && parsed.sshPort < 65536)) return undefined;
    if (parsed.gdbPort !== undefined && !(Number.isInteger(parsed.gdbPort) && parsed.gdbPort > 0 && parsed.gdbPort < 65536)) return undefined;
    if (parsed.crashDump !== undefined && typeof parsed.crashDump !== 'string') return undefined;
    return parsed as StateFile;
  } catch {
    return undefined;
  }
}

export function writeState(paths: LabPaths, state: StateFile): void {
  mkdirSync(paths.stateDir, { recursive: true, mode: 0o700 });
  const tmp = `${paths.stateFile}.tmp-${process.pid}`;
  writeFileSync(tmp, `${JSON.stringify(state, null, 2)}\n`);
  renameSync(tmp, paths.stateFile);
}

export function clearState(paths: LabPaths): void {
  removeQuietly(paths.stateFile);
}

/**
 * Takes the lab lock (an O_EXCL file holding our pid). A lock left by a dead process is taken over.
 * Returns the release function.
 */
export function acquireLock(paths: LabPaths, what: string): () => void {
  mkdirSync(paths.stateDir, { recursive: true, mode: 0o700 });
  const me = `${process.pid}\n${processStartTime(process.pid) ?? ''}\n${what}\n`;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fd = openSync(paths.lockFile, 'wx', 0o600);
      writeSync(fd, me);
      closeSync(fd);
      return () => removeQuietly(paths.lockFile);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    let holder: { pid: number; startTime: string; what: string };
    try {
      const [pid, startTime, holderWhat] = readFileSync(paths.lockFile, 'utf8').split('\n');
      holder = { pid: Number(pid), startTime: startTime ?? '', what: holderWhat ?? '' };
    } catch {
      continue; // released meanwhile
    }
    // The holder is identified by pid + start time, so a recycled pid does not keep a dead lock alive.
    if (Number.isInteger(holder.pid) && holder.pid > 0 && isAlive(holder.pid) && processStartTime(holder.pid) === holder.startTime) {
      throw new LabError('busy', `another vlab command (pid ${holder.pid}${holder.what ? `, ${holder.what}` : ''}) is working on this lab; wait for it to finish`);
    }
    removeQuietly(paths.lockFile);
  }
  throw new LabError('busy', `cannot take the lab lock ${paths.lockFile}`);
}
