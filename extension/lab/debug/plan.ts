/**
 * The one entry point for debugging the guest kernel: `planGdb(lab, { module?, core? })` works out
 * everything a gdb session needs and returns it as data, so the CLI (`vlab gdb`) and a Debug Adapter
 * (the VS Code F5 configuration) run the same commands:
 *
 *   - `gdb`: the host's gdb; `target`: the lab's gdbstub (127.0.0.1:PORT of a `vlab up --gdb` lab) or a
 *     crash dump (`core`);
 *   - `kernel`/`symbolFile`: Debian's vmlinux with DWARF (linux-image-<release>-dbg) when installed,
 *     with its KASLR offset; else an ELF symbol file generated from the guest's /proc/kallsyms
 *     (functions and data by name, no types or lines);
 *   - `module`: our driver's .ko as `vlab driver build` made it (or the `module` path given), placed with
 *     add-symbol-file at the section addresses the guest reports now (/sys/module/NAME/sections) — so
 *     planning again after `vlab driver reload` follows the module; its build-id is checked against
 *     the loaded one;
 *   - `commands`: `setupCommands` (settings, symbol files) then `attachCommand` (`target remote ...`
 *     or `core-file ...`), in the order to run them; `notes`: what the user should know (no DWARF,
 *     stale module addresses in a dump).
 *
 * A live plan also refreshes the lab's symbol snapshot (what an automatic dump after a panic keeps).
 * Errors are LabErrors with a fix: lab not running, not booted with --gdb, gdb missing, module not
 * loaded or not the loaded build, no symbols for a dump.
 */
import { existsSync, mkdirSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { LabError, errorMessage } from '../common/errors';
import { findExecutable } from '../host/host';
import { MODULE_NAME, driverBuildDir } from '../driver/driver';
import type { Lab } from '../lab';
import { readState } from '../state';
import { readCoreVirtual } from './core-vaddr';
import { readDumpSidecar } from './crash-dump';
import { ElfError, type ModuleFileInfo, fileBuildId, readModuleFile, vmlinuxTextAddress } from './elf-read';
import { addSymbolFileCommand, gdbQuote, symbolFileCommand } from './gdb-commands';
import { gdbstubAddress, GDBSTUB_HOST } from './gdbstub';
import { type GuestModule, type GuestSymbolsRead, guestModule, readGuestSymbols, writeSnapshot } from './guest-symbols';
import { parseKallsyms } from './kallsyms';
import { debugDir } from './panic';
import { writeSymbolElf } from './symbol-elf';
import { debugPackageFor, findVmlinux } from './vmlinux';

export interface GdbPlanOptions {
  /** A kernel module (.ko) to load symbols for; default our driver's build; null: none. */
  readonly module?: string | null;
  /** Plan for this crash dump (written by `vlab dump` or after a panic) instead of the live gdbstub. */
  readonly core?: string;
  /** The kernel's vmlinux with DWARF (default: the -dbg package's, when installed). */
  readonly vmlinux?: string;
  readonly signal?: AbortSignal;
}

export type GdbTarget = { readonly kind: 'gdbstub'; readonly host: typeof GDBSTUB_HOST; readonly port: number } | { readonly kind: 'core'; readonly file: string };

export interface GdbPlan {
  readonly gdb: string;
  readonly target: GdbTarget;
  readonly kernel: { readonly kind: 'vmlinux'; readonly file: string; readonly offset: string } | { readonly kind: 'kallsyms'; readonly file: string };
  /** What `symbol-file` loads (kernel.file). */
  readonly symbolFile: string;
  readonly module?: { readonly name: string; readonly file: string; readonly sections: Readonly<Record<string, string>> };
  readonly setupCommands: readonly string[];
  readonly attachCommand: string;
  /** setupCommands + attachCommand. */
  readonly commands: readonly string[];
  readonly notes: readonly string[];
}

const STRUCT_MODULE_NAME_OFFSET = 24;

function requireGdb(lab: Lab): string {
  const gdb = findExecutable('gdb', lab.host.pathEnv);
  if (!gdb) throw new LabError('missing-tool', 'gdb is not installed on this host', 'sudo apt-get install -y gdb');
  return gdb;
}

function writeAtomic(path: string, data: Buffer): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, data, { mode: 0o600 });
  renameSync(tmp, path);
}

function moduleInfo(path: string): ModuleFileInfo {
  try {
    return readModuleFile(path);
  } catch (err) {
    throw new LabError('bad-option', err instanceof ElfError ? err.message : `cannot read ${path}: ${errorMessage(err)}`);
  }
}

/** The .ko to load: the one given, or our driver's build (undefined when that was never built). */
function chooseModule(lab: Lab, module: string | null | undefined): { path: string; given: boolean } | undefined {
  if (module === null) return undefined;
  if (module !== undefined) {
    const path = resolve(lab.paths.workspace, module);
    if (!existsSync(path)) throw new LabError('bad-option', `module file ${path} does not exist`);
    return { path, given: true };
  }
  const path = join(driverBuildDir(lab), `${MODULE_NAME}.ko`);
  return existsSync(path) ? { path, given: false } : undefined;
}

interface KernelChoice {
  readonly kernel: GdbPlan['kernel'];
  /** symbol-file, then (with a vmlinux) add-symbol-file of the other modules' kallsyms symbols. */
  readonly commands: string[];
  readonly notes: string[];
}

/** vmlinux (checked against the guest's build-id, offset by KASLR) or a kallsyms symbol file at `elfPath`. */
function kernelSymbols(read: GuestSymbolsRead | undefined, release: string, vmlinuxGiven: string | undefined, elfPath: string, leaveOut: ReadonlySet<string>): KernelChoice {
  const vmlinux = vmlinuxGiven ?? findVmlinux(release);
  if (vmlinux) {
    const id = fileBuildId(vmlinux);
    if (read?.info.kernelBuildId && id && id !== read.info.kernelBuildId) {
      throw new LabError('bad-option', `${vmlinux} is not the guest's kernel (build-id ${id}, the guest runs ${read.info.kernelBuildId})`, vmlinuxGiven ? undefined : `sudo apt-get install -y ${debugPackageFor(release)}`);
    }
    const text = read?.info.textAddress ? BigInt(read.info.textAddress) : undefined;
    let offset = 0n;
    try {
      if (text !== undefined) offset = text - vmlinuxTextAddress(vmlinux);
    } catch (err) {
      throw new LabError('bad-option', `${vmlinux}: ${errorMessage(err)}`);
    }
    const notes = text === undefined ? ['the kernel\'s load address is unknown: vmlinux is used at its link address (right for a nokaslr boot)'] : [];
    const commands = [symbolFileCommand(vmlinux, offset)];
    // The other loaded modules (virtio_ring, pvpanic, ...) by name, from their kallsyms lines.
    const modules = read && read.kallsyms.length > 0 ? parseKallsyms(read.kallsyms, { allowEmpty: true }).symbols.filter((s) => s.module !== undefined && !leaveOut.has(s.module)) : [];
    if (modules.length > 0) {
      writeAtomic(elfPath, writeSymbolElf(modules));
      commands.push(`add-symbol-file ${gdbQuote(elfPath)}`);
    }
    return { kernel: { kind: 'vmlinux', file: vmlinux, offset: `0x${offset.toString(16)}` }, commands, notes };
  }
  if (!read || read.kallsyms.length === 0) {
    throw new LabError('missing-tool', `no symbols for kernel ${release}: no vmlinux with DWARF and no kallsyms saved`, `sudo apt-get install -y ${debugPackageFor(release)}`);
  }
  const parsed = parseKallsyms(read.kallsyms);
  if (!parsed.symbols.some((s) => s.module === undefined)) {
    throw new LabError('missing-tool', `no kernel symbols for ${release}: only module lines of kallsyms were saved and no vmlinux is installed`, `sudo apt-get install -y ${debugPackageFor(release)}`);
  }
  writeAtomic(elfPath, writeSymbolElf(parsed.symbols, leaveOut));
  return {
    kernel: { kind: 'kallsyms', file: elfPath },
    commands: [symbolFileCommand(elfPath)],
    notes: [`kernel symbols come from /proc/kallsyms (names only: no kernel types, lines or locals, and kernel frames may not unwind); for DWARF: sudo apt-get install -y ${debugPackageFor(release)}`],
  };
}

/** Checks a module the guest reports against the .ko, and says why it cannot be used (or undefined). */
function moduleMismatch(info: ModuleFileInfo, path: string, loaded: GuestModule | undefined): string | undefined {
  if (!loaded) return `${info.name} is not loaded in the guest`;
  if (info.buildId && loaded.buildId && info.buildId !== loaded.buildId) {
    return `${path} is not the ${info.name} loaded in the guest (build-id ${info.buildId.slice(0, 12)}…, loaded ${loaded.buildId.slice(0, 12)}…)`;
  }
  return undefined;
}

function assemble(gdb: string, target: GdbTarget, kernel: KernelChoice, module: GdbPlan['module'] | undefined, moduleCommand: string | undefined, notes: string[]): GdbPlan {
  const setupCommands = ['set pagination off', 'set confirm off', 'set print pretty on', ...kernel.commands, ...(moduleCommand ? [moduleCommand] : [])];
  const attachCommand = target.kind === 'gdbstub' ? `target remote ${gdbstubAddress(target.port)}` : `core-file ${target.file}`;
  return {
    gdb,
    target,
    kernel: kernel.kernel,
    symbolFile: kernel.kernel.file,
    ...(module ? { module } : {}),
    setupCommands,
    attachCommand,
    commands: [...setupCommands, attachCommand],
    notes: [...kernel.notes, ...notes],
  };
}

async function planLive(lab: Lab, opts: GdbPlanOptions): Promise<GdbPlan> {
  const status = await lab.status({ device: false, telemetry: false });
  if (status.state !== 'running') throw new LabError('not-running', `the lab is not running (${status.state}${status.reason ? `: ${status.reason}` : ''})`, 'vlab up --gdb');
  if (!status.gdb) throw new LabError('bad-option', 'the lab was not started with --gdb (no gdbstub)', 'vlab down && vlab up --gdb');
  const gdb = requireGdb(lab);
  const release = status.kernelVersion ?? '';
  const ko = chooseModule(lab, opts.module);
  const info = ko ? moduleInfo(ko.path) : undefined;
  const vmlinux = opts.vmlinux ?? findVmlinux(release);
  let read: GuestSymbolsRead;
  const session = await lab.ssh({ signal: opts.signal, timeoutMs: 15_000 }).catch((err: unknown) => {
    throw new LabError('not-running', `cannot reach the guest over SSH to read its symbols (${errorMessage(err)}); is it halted in another debugger?`);
  });
  try {
    read = await readGuestSymbols(session, { modulesOnly: vmlinux !== undefined, boot: readState(lab.paths)?.startedAt });
  } finally {
    session.close();
  }
  const dir = debugDir(lab.paths);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  writeSnapshot(dir, read);
  const notes: string[] = [];
  let module: GdbPlan['module'];
  let moduleCommand: string | undefined;
  if (info && ko) {
    const loaded = guestModule(read.info, info.name);
    const why = moduleMismatch(info, ko.path, loaded);
    if (why) throw new LabError('bad-option', why, loaded ? 'vlab driver reload' : ko.given ? `load it in the guest (insmod), or leave --module out` : 'vlab driver load');
    moduleCommand = addSymbolFileCommand(ko.path, info.allocSections, loaded!);
    module = { name: info.name, file: ko.path, sections: loaded!.sections };
  } else {
    notes.push(`no module symbols: ${MODULE_NAME}.ko is not built (vlab driver build), and no --module was given`);
  }
  const kernel = kernelSymbols(read, release, vmlinux, join(dir, 'kernel-symbols.elf'), new Set(info ? [info.name] : []));
  return assemble(gdb, { kind: 'gdbstub', host: GDBSTUB_HOST, port: status.gdb.port }, kernel, module, moduleCommand, notes);
}

async function planCore(lab: Lab, file: string, opts: GdbPlanOptions): Promise<GdbPlan> {
  const core = resolve(lab.paths.workspace, file);
  if (!existsSync(core) || !statSync(core).isFile()) throw new LabError('bad-option', `crash dump ${core} does not exist`);
  const gdb = requireGdb(lab);
  const { info, symbols } = readDumpSidecar(core);
  const status = info ? undefined : await lab.status({ device: false, telemetry: false });
  const release = info?.release ?? symbols?.info.release ?? status?.kernelVersion;
  if (!release) throw new LabError('bad-option', `${core} has no ${core}.vlab.json beside it and no lab tells which kernel it is of`);
  const notes: string[] = [];
  if (!symbols) notes.push('no symbol snapshot was saved with this dump: module symbols are not loaded');
  const ko = chooseModule(lab, opts.module);
  const modInfo = ko ? moduleInfo(ko.path) : undefined;
  let module: GdbPlan['module'];
  let moduleCommand: string | undefined;
  if (modInfo && ko && symbols) {
    const loaded = guestModule(symbols.info, modInfo.name);
    const why = moduleMismatch(modInfo, ko.path, loaded) ?? staleInCore(core, modInfo.name, loaded!);
    if (why) notes.push(`module symbols not loaded: ${why}`);
    else {
      moduleCommand = addSymbolFileCommand(ko.path, modInfo.allocSections, loaded!);
      module = { name: modInfo.name, file: ko.path, sections: loaded!.sections };
    }
  }
  const kernel = kernelSymbols(symbols, release, opts.vmlinux, `${core}.symbols.elf`, new Set(module ? [module.name] : []));
  return assemble(gdb, { kind: 'core', file: core }, kernel, module, moduleCommand, notes);
}

/**
 * Whether the module really sat at the snapshot's addresses when the dump was written: its
 * `struct module` (the .gnu.linkonce.this_module section) must hold its name. A `vlab driver reload`
 * after the last snapshot moves it.
 */
function staleInCore(core: string, name: string, loaded: GuestModule): string | undefined {
  const at = loaded.sections['.gnu.linkonce.this_module'];
  if (!at) return undefined;
  const bytes = readCoreVirtual(core, BigInt(at) + BigInt(STRUCT_MODULE_NAME_OFFSET), name.length + 1);
  if (bytes && bytes.toString('latin1') === `${name}\0`) return undefined;
  return `the addresses saved for ${name} are stale (it was reloaded after the last snapshot; run vlab gdb once after vlab driver reload to refresh it)`;
}

/** See the module header. Relative paths are relative to the lab's workspace. */
export function planGdb(lab: Lab, opts: GdbPlanOptions = {}): Promise<GdbPlan> {
  let o = opts;
  if (opts.vmlinux !== undefined) {
    const vmlinux = resolve(lab.paths.workspace, opts.vmlinux);
    if (!existsSync(vmlinux)) return Promise.reject(new LabError('bad-option', `vmlinux ${vmlinux} does not exist`));
    o = { ...opts, vmlinux };
  }
  return o.core !== undefined ? planCore(lab, o.core, o) : planLive(lab, o);
}
