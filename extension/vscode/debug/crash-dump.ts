/**
 * "Open crash dump": a `vlab-kernel` debug session on an ELF core the lab wrote (after a guest panic,
 * `vlab status` names it as `crashDump`; or `vlab dump FILE`). planGdb opens it with the kernel's and
 * the driver's symbols; the Call Stack shows the threads' backtraces. After a panic the extension
 * offers it once per dump.
 */
import { basename } from 'node:path';
import * as vscode from 'vscode';
import type { LabStatus } from '../../lab/lab';
import { CommandId } from '../command-ids';
import { CONFIGURATION_NAME, DEBUG_TYPE } from './adapter-args';

export class CrashDumpOffer {
  private offered: string | undefined;

  /** Called with every status: a new crash dump gets one notification with "Open crash dump". */
  seen(status: LabStatus | undefined): void {
    const file = status?.crashDump;
    if (!file || file === this.offered) return;
    this.offered = file;
    void vscode.window.showErrorMessage(`VirtIO Lab: the guest kernel panicked; crash dump ${file}`, 'Open crash dump').then((pick) => {
      if (pick) void vscode.commands.executeCommand(CommandId.openCrashDump, file);
    });
  }
}

/** Starts the debug session on `file` (default: the lab's last crash dump, else asks for one). */
export async function openCrashDump(arg: unknown, lastDump: string | undefined): Promise<boolean> {
  const file = typeof arg === 'string' && arg !== '' ? arg : lastDump ?? (await vscode.window.showOpenDialog({ title: 'Open crash dump', filters: { 'ELF core': ['elf', 'core'] }, canSelectMany: false }))?.[0]?.fsPath;
  if (!file) return false;
  const folder = vscode.workspace.workspaceFolders?.[0];
  return vscode.debug.startDebugging(folder, { type: DEBUG_TYPE, request: 'attach', name: `${CONFIGURATION_NAME} (crash dump ${basename(file)})`, core: file });
}
