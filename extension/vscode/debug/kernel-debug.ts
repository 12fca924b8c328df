/**
 * The F5 configuration "VirtIO Crypto Lab: debug the guest kernel" (debug type `vlab-kernel`):
 *
 *   - the configuration provider offers it for launch.json and fills it in when F5 has none;
 *   - resolving it makes the lab debuggable: starts it with `--gdb` when it is not running, offers a
 *     restart when it runs without the gdbstub, plans the session with planGdb (the symbols `vlab gdb`
 *     loads), holds the driver's timeout_ms at 0 (sessions.ts) and maps the driver's build copy to
 *     the sources in guest/driver;
 *   - the adapter is cdt-gdb-adapter's target adapter (npm, pinned in package.json), run by Node as
 *     its own process: gdb's MI behind the Debug Adapter Protocol.
 */
import { existsSync, realpathSync } from 'node:fs';
import { join } from 'node:path';
import * as vscode from 'vscode';
import { type GdbPlanOptions, planGdb } from '../../lab/debug/plan';
import { driverBuildDir, driverSourceDir } from '../../lab/driver/driver';
import { describeError } from '../errors';
import type { LabController } from '../lab-controller';
import { type CdtAttachArguments, CONFIGURATION_NAME, DEBUG_TYPE, type KernelDebugConfiguration, type SourceMap, cdtAttachArguments, defaultConfiguration } from './adapter-args';
import { CoreDumpAdapter } from './core-adapter';
import type { KernelDebugSessions } from './sessions';

/** The adapter's entry inside the extension (its node_modules ship in the .vsix). */
export function adapterEntry(extensionPath: string): string {
  return join(extensionPath, 'node_modules', 'cdt-gdb-adapter', 'dist', 'debugTargetAdapter.js');
}

type Resolved = vscode.DebugConfiguration & CdtAttachArguments;

function realOrSame(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return path;
  }
}

/** The .ko's DWARF names the build copy (kbuild M=): point gdb at the sources the user edits. */
function sourceMap(controller: LabController): SourceMap[] {
  const from = driverBuildDir(controller.lab);
  const to = driverSourceDir();
  const maps = [{ from, to }];
  const real = realOrSame(from);
  if (real !== from) maps.push({ from: real, to });
  return maps;
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}

export class KernelDebugProvider implements vscode.DebugConfigurationProvider {
  constructor(private readonly lab: LabController | undefined, private readonly sessions: KernelDebugSessions, private readonly log: vscode.OutputChannel) {}

  provideDebugConfigurations(): vscode.DebugConfiguration[] {
    return [{ ...defaultConfiguration() }];
  }

  /** F5 without a launch.json (or an empty configuration): ours. */
  resolveDebugConfiguration(_folder: vscode.WorkspaceFolder | undefined, config: vscode.DebugConfiguration): vscode.DebugConfiguration {
    if (!config.type && !config.request && !config.name) return { ...defaultConfiguration() };
    return config;
  }

  async resolveDebugConfigurationWithSubstitutedVariables(_folder: vscode.WorkspaceFolder | undefined, config: vscode.DebugConfiguration): Promise<vscode.DebugConfiguration | undefined> {
    try {
      return await this.resolve(config as vscode.DebugConfiguration & Partial<KernelDebugConfiguration>);
    } catch (err) {
      void vscode.window.showErrorMessage(`VirtIO Lab: cannot debug the guest kernel: ${describeError(err)}`);
      return undefined;
    }
  }

  private async resolve(config: vscode.DebugConfiguration & Partial<KernelDebugConfiguration>): Promise<Resolved | undefined> {
    const controller = this.lab;
    if (!controller) throw new Error('open a folder first: the lab keeps its state in the workspace (.vlab/)');
    const planOptions: GdbPlanOptions & CdtAttachArguments['vlab']['planOptions'] = {
      ...(config.module === null ? { module: null } : str(config.module) ? { module: str(config.module) } : {}),
      ...(str(config.vmlinux) ? { vmlinux: str(config.vmlinux) } : {}),
    };
    const core = str(config.core);
    if (!core && !(await this.ensureLab(controller, config.startLab !== false))) return undefined;
    const hold = !core && config.holdDriverTimeout !== false;
    if (hold) await this.sessions.holdDriverTimeout();
    const plan = await planGdb(controller.lab, { ...planOptions, ...(core ? { core } : {}) });
    for (const note of plan.notes) this.log.appendLine(`debugger: ${note}`);
    const logFile = str(config.adapterLog);
    const args = cdtAttachArguments(plan, { name: str(config.name) ?? CONFIGURATION_NAME, sourceMap: sourceMap(controller), holdDriverTimeout: hold, planOptions, ...(logFile ? { logFile } : {}) });
    this.log.appendLine(`debugger: ${plan.commands.join(' ; ')}`);
    return { ...args, type: DEBUG_TYPE, request: 'attach', name: args.name };
  }

  /** The lab running with its gdbstub; false when the user declined. */
  private async ensureLab(controller: LabController, start: boolean): Promise<boolean> {
    let status = await controller.refresh();
    if (controller.busy) throw new Error(`the lab is busy (${controller.busy}); try again when that has finished`);
    if (status.state !== 'running') {
      if (!start) throw new Error(`the lab is ${status.state}: start it with its gdbstub (vlab up --gdb)`);
      this.log.appendLine('debugger: starting the lab with its gdbstub (vlab up --gdb)');
      status = await controller.start({ gdb: true });
    } else if (!status.gdb) {
      const restart = 'Restart with gdbstub';
      const pick = await vscode.window.showWarningMessage('VirtIO Lab: the VM runs without its gdbstub (it was not started with --gdb). Restart it with the gdbstub to debug the guest kernel?', { modal: true }, restart);
      if (pick !== restart) return false;
      status = await controller.restart({ gdb: true });
    }
    if (status.state !== 'running' || !status.gdb) throw new Error(`the lab did not start with its gdbstub (${status.state}${status.reason ? `: ${status.reason}` : ''})`);
    return true;
  }
}

export class KernelDebugAdapterFactory implements vscode.DebugAdapterDescriptorFactory {
  constructor(private readonly extensionPath: string) {}

  createDebugAdapterDescriptor(session: vscode.DebugSession): vscode.DebugAdapterDescriptor {
    const entry = adapterEntry(this.extensionPath);
    if (!existsSync(entry)) throw new Error(`the debug adapter (cdt-gdb-adapter) is not installed at ${entry}: run npm ci`);
    // In desktop VS Code process.execPath is Electron: ELECTRON_RUN_AS_NODE makes it plain Node.
    const env = { ELECTRON_RUN_AS_NODE: '1' };
    if ((session.configuration as Partial<CdtAttachArguments>).vlab?.kind === 'core') {
      return new vscode.DebugAdapterInlineImplementation(new CoreDumpAdapter(process.execPath, [entry], { ...process.env, ...env }));
    }
    return new vscode.DebugAdapterExecutable(process.execPath, [entry], { env });
  }
}

/** Registers the provider (initial configurations and F5 without launch.json) and the adapter. */
export function registerKernelDebug(context: vscode.ExtensionContext, lab: LabController | undefined, sessions: KernelDebugSessions, log: vscode.OutputChannel): void {
  const provider = new KernelDebugProvider(lab, sessions, log);
  context.subscriptions.push(
    vscode.debug.registerDebugConfigurationProvider(DEBUG_TYPE, provider, vscode.DebugConfigurationProviderTriggerKind.Initial),
    vscode.debug.registerDebugAdapterDescriptorFactory(DEBUG_TYPE, new KernelDebugAdapterFactory(context.extensionPath)),
  );
}
