/**
 * Where a benchmark result came from: the machine (CPU model and cores from /proc/cpuinfo, memory,
 * kernel, Node), the accelerator the lab would choose and why, the commit, the date and the load
 * average when the run started. Recorded beside every committed result so a figure can state it.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import * as os from 'node:os';
import { chooseAccel } from '../lab/host/accel';

export interface Machine {
  readonly cpuModel: string;
  /** Logical CPUs the kernel lists in /proc/cpuinfo. */
  readonly cores: number;
  readonly memoryMb: number;
  readonly hostKernel: string;
  readonly node: string;
}

export interface Accelerator {
  readonly kind: 'kvm' | 'tcg';
  readonly why: string;
}

export interface Provenance {
  /** ISO 8601, UTC, when the run started. */
  readonly date: string;
  /** 1, 5 and 15 minute load averages when the run started (the machine is shared: read numbers with them). */
  readonly loadAverage: readonly [number, number, number];
  readonly commit: string;
  /** True when the worktree had uncommitted changes. */
  readonly dirty: boolean;
  readonly machine: Machine;
  readonly accelerator: Accelerator;
}

export function parseCpuinfo(text: string): { cpuModel: string; cores: number } {
  const lines = text.split('\n');
  const model = lines.find((l) => /^model name\s*:/.test(l))?.replace(/^model name\s*:\s*/, '').trim() ?? 'unknown';
  const cores = lines.filter((l) => /^processor\s*:/.test(l)).length;
  return { cpuModel: model, cores };
}

export function machineInfo(): Machine {
  let cpu = { cpuModel: os.cpus()[0]?.model ?? 'unknown', cores: os.cpus().length };
  try {
    cpu = parseCpuinfo(readFileSync('/proc/cpuinfo', 'utf8'));
  } catch {
    // not Linux: os.cpus() is the next best thing
  }
  return { ...cpu, memoryMb: Math.round(os.totalmem() / (1 << 20)), hostKernel: os.release(), node: process.version };
}

function git(cwd: string, args: readonly string[]): string {
  try {
    return execFileSync('git', [...args], { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return '';
  }
}

export function provenance(cwd: string): Provenance {
  const [a, b, c] = os.loadavg();
  const round = (v: number): number => Math.round(v * 100) / 100;
  const accel = chooseAccel('auto', { devKvm: '/dev/kvm', cpuinfo: '/proc/cpuinfo' });
  return {
    date: new Date().toISOString(),
    loadAverage: [round(a), round(b), round(c)],
    commit: git(cwd, ['rev-parse', 'HEAD']) || 'unknown',
    dirty: git(cwd, ['status', '--porcelain', '--untracked-files=no']) !== '',
    machine: machineInfo(),
    accelerator: { kind: accel.kind, why: accel.why },
  };
}
