/**
 * Where a boot's time goes, from real events: QEMU's spawn and its QMP socket appearing (host clock),
 * the guest init's own markers on the serial console (`vlab-init: t=UPTIME STAGE`, guest clock since
 * the kernel started), the host seeing the `ready` marker (which ties the two clocks together) and the
 * first pinned-key SSH login (host clock). docs/lab.md § Boot timings.
 *
 * The console is guest-written: markers are parsed defensively (bounded numbers, first one of each
 * stage, in order); a phase whose events are missing or out of order is null, never a guess.
 */
import { existsSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

export interface BootTimings {
  /** QEMU spawned → its QMP socket exists (QEMU initialised its devices). */
  readonly qemuSec: number | null;
  /** → the guest kernel's clock starts (firmware, option ROMs, kernel and initramfs loading, decompression). */
  readonly firmwareSec: number | null;
  /** kernel clock 0 → the initramfs init runs (kernel boot, initramfs unpacking). */
  readonly kernelSec: number | null;
  /** init stage 1: modules, the 9p root and workspace, overlays, switch_root. */
  readonly stage1Sec: number | null;
  /** init stage 2: network, ACPI, sshd, until the ready line. */
  readonly stage2Sec: number | null;
  /** ready line → the first SSH login succeeded (host). */
  readonly sshSec: number | null;
  /** QEMU spawned → first SSH login (the lab's bootSec). */
  readonly totalSec: number;
  /** Starting the SSH mux after the login (extension/lab/mux). */
  readonly muxSec?: number;
  /** The guest-driver step (build if needed + load), for guest driver 'lab'. */
  readonly driverSec?: number;
}

/** Host times (Date.now() ms) of a boot's events. */
export interface BootEvents {
  readonly spawnAt: number;
  readonly qmpAt?: number;
  readonly readySeenAt?: number;
  readonly loginAt: number;
}

export const INIT_STAGES = ['init', 'switch', 'ready'] as const;
export type InitStage = (typeof INIT_STAGES)[number];

const MARKER = /^vlab-(?:init|floor): t=(\d{1,6}\.\d{1,6}) ([a-z]{1,16})\s*$/;

/** The first `t=` marker of each known stage, in seconds of guest uptime. */
export function parseInitMarkers(consoleText: string): Partial<Record<string, number>> {
  const found: Partial<Record<string, number>> = {};
  for (const raw of consoleText.split('\n')) {
    const m = MARKER.exec(raw.replace(/\r$/, ''));
    if (!m) continue;
    const stage = m[2]!;
    if (found[stage] === undefined) found[stage] = Number(m[1]);
  }
  return found;
}

const round = (sec: number): number => Math.round(sec * 100) / 100;
const span = (from: number | undefined, to: number | undefined): number | null =>
  from === undefined || to === undefined || to < from ? null : round(to - from);

/** The breakdown of one lab boot (times in seconds, 10 ms resolution). */
export function computeBootTimings(events: BootEvents, markers: Partial<Record<string, number>>): BootTimings {
  const { spawnAt, qmpAt, readySeenAt, loginAt } = events;
  const tInit = markers.init;
  const tSwitch = markers.switch;
  const tReady = markers.ready;
  // The kernel's clock 0 on the host clock: the host saw the ready line tReady seconds after it.
  const kernelAt = readySeenAt !== undefined && tReady !== undefined ? readySeenAt - tReady * 1000 : undefined;
  const ordered = tInit !== undefined && tSwitch !== undefined && tReady !== undefined && tInit <= tSwitch && tSwitch <= tReady;
  return {
    qemuSec: qmpAt === undefined ? null : span(spawnAt / 1000, qmpAt / 1000),
    firmwareSec: qmpAt === undefined || kernelAt === undefined ? null : span(qmpAt / 1000, kernelAt / 1000),
    kernelSec: ordered ? round(tInit) : null,
    stage1Sec: ordered ? span(tInit, tSwitch) : null,
    stage2Sec: ordered ? span(tSwitch, tReady) : null,
    sshSec: readySeenAt === undefined ? null : span(readySeenAt / 1000, loginAt / 1000),
    totalSec: round((loginAt - spawnAt) / 1000),
  };
}

/** One line per phase, for `vlab up --timings` and `vlab bench boot`. */
export function formatBootTimings(t: BootTimings): string {
  const v = (x: number | null | undefined): string => (x === null || x === undefined ? '?' : `${x.toFixed(2)} s`);
  const rows: [string, number | null | undefined][] = [
    ['qemu start', t.qemuSec],
    ['firmware', t.firmwareSec],
    ['kernel', t.kernelSec],
    ['init stage 1', t.stage1Sec],
    ['init stage 2', t.stage2Sec],
    ['ssh login', t.sshSec],
    ['total (boot)', t.totalSec],
  ];
  if (t.muxSec !== undefined) rows.push(['ssh mux', t.muxSec]);
  if (t.driverSec !== undefined) rows.push(['driver', t.driverSec]);
  return rows.map(([k, x]) => `  ${k.padEnd(13)} ${v(x)}`).join('\n');
}

/**
 * Resolves with the host time at which `path` first exists (polled every 10 ms), or undefined when
 * `until` settles first (the process that would create it exited) or after 60 s.
 */
export async function whenFileExists(path: string, until: Promise<unknown>, intervalMs = 10): Promise<number | undefined> {
  let over = false;
  void until.then(() => {
    over = true;
  });
  const deadline = Date.now() + 60_000;
  while (!over && Date.now() < deadline) {
    if (existsSync(path)) return Date.now();
    await sleep(intervalMs);
  }
  return undefined;
}
