/**
 * Processes the lab started, identified by PID *and* start time *and* a marker in their command line,
 * so a recycled PID is never mistaken for our QEMU and never signalled.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, constants, openSync, readFileSync } from 'node:fs';
import { removeQuietly } from '../common/files';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export interface ProcessRecord {
  readonly pid: number;
  /** Field 22 of /proc/PID/stat (clock ticks since boot): with the pid, unique for the machine's uptime. */
  readonly startTime: string;
  /** A string our process has in its command line (a socket path inside the state folder). */
  readonly marker: string;
}

/** What the lab reads from /proc/PID/stat. */
export interface ProcStat {
  /** field 3: R, S, D, Z, T, … */
  readonly state: string;
  /** field 4 */
  readonly ppid: number;
  /** fields 14 + 15 (utime + stime), in clock ticks */
  readonly cpuTicks: number;
  /** field 22 (clock ticks since boot) */
  readonly startTime: string;
}

/** /proc/PID/stat parsed, or undefined when the process does not exist (or exited meanwhile). */
export function readProcStat(pid: number, procRoot = '/proc'): ProcStat | undefined {
  let text: string;
  try {
    text = readFileSync(join(procRoot, String(pid), 'stat'), 'utf8');
  } catch {
    return undefined;
  }
  // comm (field 2) is in parentheses and may itself contain spaces and ')': split after the last ')'.
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // rest[0] is field 3 (state), rest[k] field k + 3.
  const state = rest[0];
  const startTime = rest[19];
  if (!state || !startTime) return undefined;
  return { state, ppid: Number(rest[1]), cpuTicks: Number(rest[11]) + Number(rest[12]), startTime };
}

export function processStartTime(pid: number, procRoot = '/proc'): string | undefined {
  return readProcStat(pid, procRoot)?.startTime;
}

/** Alive = exists and is not a zombie (a zombie has exited; only its parent has not reaped it yet). */
export function isAlive(pid: number, procRoot = '/proc'): boolean {
  const stat = readProcStat(pid, procRoot);
  return stat !== undefined && stat.state !== 'Z' && stat.state !== 'X';
}

export function readCmdline(pid: number, procRoot = '/proc'): string[] | undefined {
  try {
    return readFileSync(join(procRoot, String(pid), 'cmdline'), 'utf8').split('\0').filter(Boolean);
  } catch {
    return undefined;
  }
}

/** True only while the recorded process is alive and still the one we started. */
export function isOurProcess(rec: ProcessRecord, procRoot = '/proc'): boolean {
  if (!Number.isInteger(rec.pid) || rec.pid <= 1) return false;
  const stat = readProcStat(rec.pid, procRoot);
  if (!stat || stat.state === 'Z' || stat.state === 'X' || stat.startTime !== rec.startTime) return false;
  return (readCmdline(rec.pid, procRoot) ?? []).some((arg) => arg.includes(rec.marker));
}

export function recordProcess(pid: number, marker: string, procRoot = '/proc'): ProcessRecord {
  return { pid, startTime: processStartTime(pid, procRoot) ?? '', marker };
}

/** Sends a signal; false when the process is already gone. Never throws for ESRCH. */
export function signalProcess(pid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(pid, signal);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return false;
    throw err;
  }
}

/** Polls until the process is gone (or a zombie); true if it went within the time. */
export async function waitForExit(rec: ProcessRecord, timeoutMs: number, procRoot = '/proc'): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (isOurProcess(rec, procRoot)) {
    if (Date.now() >= deadline) return false;
    await sleep(50);
  }
  return true;
}

/** SIGTERM, bounded wait, SIGKILL, bounded wait. Only ever signals the recorded process. */
export async function terminate(rec: ProcessRecord, termWaitMs: number, procRoot = '/proc'): Promise<'gone' | 'terminated' | 'killed' | 'stuck'> {
  if (!isOurProcess(rec, procRoot)) return 'gone';
  signalProcess(rec.pid, 'SIGTERM');
  if (await waitForExit(rec, termWaitMs, procRoot)) return 'terminated';
  if (isOurProcess(rec, procRoot)) signalProcess(rec.pid, 'SIGKILL');
  return (await waitForExit(rec, 5000, procRoot)) ? 'killed' : 'stuck';
}

export interface DetachedProcess {
  readonly child: ChildProcess;
  readonly record: ProcessRecord;
  /** Resolves when the process exits (only observable in the process that spawned it). */
  readonly exited: Promise<string>;
}

function describeExit(code: number | null, signal: NodeJS.Signals | null): string {
  return signal ? `killed by ${signal}` : `exit ${code ?? '?'}`;
}

/** Spawns a detached process (own process group, no tie to our terminal) with its output in `logFile`. */
export function spawnDetached(binary: string, args: readonly string[], logFile: string, marker: string, env: NodeJS.ProcessEnv = process.env): DetachedProcess {
  // The state folder is inside the workspace, which the guest can write: never follow a planted symlink.
  removeQuietly(logFile);
  // O_APPEND: a child that caps its own log by truncating it in place (the backend) keeps this fd coherent.
  const fd = openSync(logFile, constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o644);
  let child: ChildProcess;
  try {
    child = spawn(binary, args, { detached: true, stdio: ['ignore', fd, fd], env });
  } finally {
    closeSync(fd);
  }
  const exited = new Promise<string>((resolveExit) => {
    child.once('exit', (code, signal) => resolveExit(describeExit(code, signal)));
    child.once('error', (err) => resolveExit(`failed to start: ${err.message}`));
  });
  child.unref();
  const pid = child.pid;
  if (pid === undefined) {
    // spawn reports ENOENT asynchronously; give the caller a record that is never "ours".
    return { child, record: { pid: -1, startTime: '', marker }, exited };
  }
  return { child, record: recordProcess(pid, marker), exited };
}
