/**
 * The gdb command lines `vlab gdb` runs, built from data: quoting of file names the way gdb's
 * argument splitter (gdb_buildargv) reads them, `add-symbol-file` of a module at the addresses the
 * guest reports, and the argv of the gdb process (batch or interactive).
 */
import type { GuestModule } from './guest-symbols';
import { isAddress, isSectionName } from './guest-symbols';

/** A file name as one gdb argument: double quotes when needed, `\` and `"` escaped. */
export function gdbQuote(path: string): string {
  if (/[\0\n\r]/.test(path)) throw new TypeError(`a gdb argument cannot hold a NUL or newline: ${JSON.stringify(path)}`);
  return /^[A-Za-z0-9_./+,:@%=-]+$/.test(path) ? path : `"${path.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

/**
 * Every section but .text (the positional address). Init sections are placed too (as the kernel's own
 * lx-symbols does), at the addresses they had before the kernel freed them: left unplaced they would
 * sit at 0, and gdb would print every NULL pointer as `<vc_init>`.
 */
function placeable(name: string): boolean {
  return name !== '.text';
}

/**
 * Where sections the .ko marks loadable but the kernel does not load (.modinfo, __versions) are put:
 * non-canonical x86-64 addresses, one 4 GiB slot each, so no pointer ever matches their symbols (left
 * at 0 they would, and gdb would print a NULL pointer as `<__UNIQUE_ID_license284>`).
 */
export const PARKED_SECTIONS_BASE = 0x2000_0000_0000_0000n;

/**
 * `add-symbol-file FILE TEXTADDR -s SECTION ADDR ...` for a module loaded in the guest: every section
 * the .ko has (SHF_ALLOC) in the .ko's order, at the address the guest reports, or parked.
 */
export function addSymbolFileCommand(koPath: string, allocSections: readonly string[], loaded: GuestModule): string {
  const text = loaded.sections['.text'];
  if (!text || !isAddress(text)) throw new Error(`the guest reports no .text address for ${loaded.name}`);
  const parts = ['add-symbol-file', gdbQuote(koPath), text];
  let parked = 0n;
  for (const name of allocSections) {
    if (!placeable(name) || !isSectionName(name)) continue;
    const addr = loaded.sections[name];
    if (addr !== undefined && isAddress(addr)) parts.push('-s', name, addr);
    else parts.push('-s', name, `0x${(PARKED_SECTIONS_BASE + (parked++ << 32n)).toString(16)}`);
  }
  return parts.join(' ');
}

/** `symbol-file` of the kernel's symbols; `offset` (KASLR slide of a vmlinux) in bytes, may be 0. */
export function symbolFileCommand(path: string, offset = 0n): string {
  if (offset === 0n) return `symbol-file ${gdbQuote(path)}`;
  const hex = offset < 0n ? `-0x${(-offset).toString(16)}` : `0x${offset.toString(16)}`;
  return `symbol-file -o ${hex} ${gdbQuote(path)}`;
}

export interface GdbLaunch {
  /** Run the commands and exit (`-batch`): a live session is detached at the end, the guest keeps running. */
  readonly batch: boolean;
  /** The user's own commands, run after attaching and loading symbols. */
  readonly ex: readonly string[];
  /** A live (gdbstub) session rather than a core file: batch mode then ends with `detach`. */
  readonly live: boolean;
}

/**
 * The gdb argv: `-q`, in batch mode `-nx -batch` (no ~/.gdbinit: the same result for every user),
 * each of `commands` then of the user's as `-ex`, and `detach` last in a live batch run.
 */
export function gdbArgv(commands: readonly string[], launch: GdbLaunch): string[] {
  const argv = ['-q'];
  if (launch.batch) argv.push('-nx', '-batch');
  for (const c of [...commands, ...launch.ex, ...(launch.batch && launch.live ? ['detach'] : [])]) {
    if (/[\n\r]/.test(c)) throw new TypeError(`a gdb command cannot span lines: ${JSON.stringify(c)}`);
    argv.push('-ex', c);
  }
  return argv;
}
