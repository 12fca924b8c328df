/**
 * The F5 configuration's data, free of `vscode`: the launch.json shape of a "vlab-kernel" debug
 * configuration, and the attach arguments of cdt-gdb-adapter's target adapter built from a GdbPlan
 * (extension/lab/debug/plan.ts), so the editor runs the same gdb commands as `vlab gdb`:
 *
 *   preConnectCommands: the plan's settings and symbol files (vmlinux or the kallsyms ELF, the
 *     module at the guest's section addresses), then `set substitute-path` from the driver's build
 *     copy (where the .ko's DWARF says the sources are) to the sources the user edits, so a
 *     breakpoint clicked in guest/driver/vc_chardev.c binds;
 *   target: `target remote 127.0.0.1:PORT` (the lab's gdbstub), or `core-file DUMP` for a crash dump.
 *
 * It also builds the commands that move the module's symbols after a driver reload.
 */
import type { GdbPlan } from '../../lab/debug/plan';

export const DEBUG_TYPE = 'vlab-kernel';
export const CONFIGURATION_NAME = 'VirtIO Crypto Lab: debug the guest kernel';

/** What a user writes in launch.json (every field optional but type/request/name). */
export interface KernelDebugConfiguration {
  readonly type: typeof DEBUG_TYPE;
  readonly request: 'attach';
  readonly name: string;
  /** An out-of-tree module (.ko) to load symbols for instead of ours; null: none. */
  readonly module?: string | null;
  /** Another vmlinux with DWARF. */
  readonly vmlinux?: string;
  /** Open this crash dump instead of attaching to the running lab. */
  readonly core?: string;
  /** Start the lab (with --gdb) when it is not running (default true). */
  readonly startLab?: boolean;
  /** Set the driver's timeout_ms to 0 while attached, restore it on detach (default true). */
  readonly holdDriverTimeout?: boolean;
}

/** The configuration the extension offers for launch.json (initialConfigurations, snippets). */
export function defaultConfiguration(): KernelDebugConfiguration {
  return { type: DEBUG_TYPE, request: 'attach', name: CONFIGURATION_NAME };
}

/** cdt-gdb-adapter's TargetAttachRequestArguments, the fields we use. */
export interface CdtAttachArguments {
  readonly type: string;
  readonly request: 'attach';
  readonly name: string;
  readonly gdb: string;
  readonly gdbAsync: boolean;
  readonly preConnectCommands: readonly string[];
  readonly target: { readonly type: 'remote'; readonly parameters: readonly string[] } | { readonly connectCommands: readonly string[] };
  readonly initCommands: readonly string[];
  readonly verbose: boolean;
  readonly logFile?: string;
  /** Ours, read back by the session tracker. */
  readonly vlab: {
    readonly kind: 'live' | 'core';
    readonly moduleText?: string;
    readonly holdDriverTimeout: boolean;
    readonly sourceMap: readonly SourceMap[];
    /** What planGdb was given (planned again after a driver reload). */
    readonly planOptions: { readonly module?: string | null; readonly vmlinux?: string };
  };
}

/** A path prefix as gdb reads it from DWARF (`from`) and where the sources are for the user (`to`). */
export interface SourceMap {
  readonly from: string;
  readonly to: string;
}

/** `set substitute-path FROM TO` (gdb quotes as it splits this command's two arguments). */
export function substitutePathCommand(map: SourceMap): string {
  for (const p of [map.from, map.to]) {
    if (/[\0\n\r"]/.test(p)) throw new TypeError(`a source path for gdb cannot hold a NUL, newline or double quote: ${JSON.stringify(p)}`);
  }
  return `set substitute-path "${map.from}" "${map.to}"`;
}

export interface AttachOptions {
  readonly name: string;
  readonly sourceMap: readonly SourceMap[];
  readonly holdDriverTimeout: boolean;
  readonly planOptions: CdtAttachArguments['vlab']['planOptions'];
  /** cdt-gdb-adapter's own log (verbose). */
  readonly logFile?: string;
}

export function cdtAttachArguments(plan: GdbPlan, opts: AttachOptions): CdtAttachArguments {
  const live = plan.target.kind === 'gdbstub';
  return {
    type: DEBUG_TYPE,
    request: 'attach',
    name: opts.name,
    gdb: plan.gdb,
    // gdb's async mode: Pause works while the guest runs, and the breakpoints can be set at any time.
    gdbAsync: live,
    preConnectCommands: [...plan.setupCommands, ...opts.sourceMap.map(substitutePathCommand)],
    target: plan.target.kind === 'gdbstub'
      ? { type: 'remote', parameters: [`${plan.target.host}:${plan.target.port}`] }
      : { connectCommands: [plan.attachCommand] },
    initCommands: [],
    verbose: opts.logFile !== undefined,
    ...(opts.logFile ? { logFile: opts.logFile } : {}),
    vlab: { kind: live ? 'live' : 'core', ...(plan.module?.sections['.text'] ? { moduleText: plan.module.sections['.text'] } : {}), holdDriverTimeout: live && opts.holdDriverTimeout, sourceMap: opts.sourceMap, planOptions: opts.planOptions },
  };
}

/**
 * After the module was loaded again (maybe elsewhere): drop the old module symbols, add them at the new
 * addresses. gdb re-sets every breakpoint on a symbol change, so the user's breakpoints in
 * guest/driver go pending with the first command and bind at the new addresses with the second.
 */
export function rebindCommands(oldText: string | undefined, plan: GdbPlan): string[] {
  // planGdb puts the module's add-symbol-file last among its setup commands.
  const add = plan.module ? plan.setupCommands[plan.setupCommands.length - 1] : undefined;
  if (!add?.startsWith('add-symbol-file ')) throw new Error(`the new plan has no module symbols to load (${plan.notes.join('; ') || 'no module'})`);
  return [...(oldText ? [`remove-symbol-file -a ${oldText}`] : []), add];
}
