/**
 * What the guest's serial console log (console.log) tells about how the guest ended. The text is written
 * by the guest, so it only ever labels the guest's own failure: bounded, control characters removed,
 * never used to decide what to signal.
 */
import { tailFile } from '../common/files';

/** Printed by Linux's panic() before the stack dump (kernel/panic.c); with panic=-1 a reboot follows. */
const PANIC_MARKER = 'Kernel panic - not syncing:';
/** How much of the console end is searched for a panic (a stack dump is ~30–60 lines). */
const SCAN_LINES = 400;
const SCAN_BYTES = 64 * 1024;
/** Lines kept before the panic line (what led to it) and in total. */
const CONTEXT_BEFORE = 8;
const MAX_TAIL_LINES = 60;
const MAX_PANIC_LINE = 200;
/** The console tail of a failure without a panic. */
const DEFAULT_TAIL_LINES = 25;

export interface GuestPanic {
  /** "Kernel panic - not syncing: <why>", cleaned and capped. */
  readonly line: string;
  /** Console lines from just before the panic line on (capped). */
  readonly tail: string;
}

function printable(s: string): string {
  return s.replace(/[\x00-\x08\x0b-\x1f\x7f]/g, '');
}

/** The last kernel panic in `consoleText` (already a bounded tail), or undefined. */
export function findGuestPanic(consoleText: string): GuestPanic | undefined {
  const lines = consoleText.split('\n');
  for (let i = lines.length - 1; i >= 0; i--) {
    const at = lines[i]!.indexOf(PANIC_MARKER);
    if (at < 0) continue;
    const line = printable(lines[i]!.slice(at)).trim().slice(0, MAX_PANIC_LINE);
    const from = Math.max(0, i - CONTEXT_BEFORE);
    const tail = lines.slice(from, from + MAX_TAIL_LINES).map(printable).join('\n');
    return { line, tail };
  }
  return undefined;
}

/** How the console log of a guest that is gone ends: its panic if it panicked, and the lines to show. */
export function readGuestEnd(consoleLog: string): { panic?: GuestPanic; tail: string } {
  const panic = findGuestPanic(tailFile(consoleLog, SCAN_LINES, SCAN_BYTES));
  if (panic) return { panic, tail: panic.tail };
  return { tail: tailFile(consoleLog, DEFAULT_TAIL_LINES).split('\n').map(printable).join('\n') };
}
