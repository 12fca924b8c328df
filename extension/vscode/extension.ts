/**
 * VS Code entry. activate() only wires: the lab controller (over the vscode-free core), the view,
 * the status bar, and the commands (commands.ts).
 */
import { performance } from 'node:perf_hooks';
import * as vscode from 'vscode';
import { BenchmarkPanel } from './benchmark/panel';
import type { CaptureResult } from './capture';
import { ChatManager } from './chat-manager';
import { VlabCli } from './cli-runner';
import { type ExtensionState, registerCommands, ringsSource } from './commands';
import { DriverProblems } from './driver-problems';
import { describeError } from './errors';
import { LabController } from './lab-controller';
import { LabTreeProvider } from './lab-tree';
import { RingsPanel } from './rings/panel';
import { readSettings, SECTION } from './settings';
import { LabStatusBar } from './status-bar';
import type { GuestTerminal } from './terminals/guest-terminal';

/** What activate() returns: used by the extension-host tests (and other extensions, read-only). */
export interface VlabApi {
  readonly activationMs: number;
  readonly lab: LabController | undefined;
  readonly tree: LabTreeProvider;
  readonly chats: ChatManager | undefined;
  readonly guestTerminals: readonly GuestTerminal[];
  readonly rings: () => RingsPanel | undefined;
  readonly benchmark: () => BenchmarkPanel | undefined;
  readonly lastCapture: () => CaptureResult | undefined;
}

let shutdown: (() => Promise<void>) | undefined;

function createLab(workspace: string | undefined, extensionPath: string, log: vscode.OutputChannel): LabController | undefined {
  if (!workspace) return undefined;
  try {
    return new LabController(workspace, extensionPath, readSettings, log);
  } catch (err) {
    // e.g. a state folder path too long for unix sockets: say so, keep the rest of the UI alive.
    void vscode.window.showErrorMessage(`VirtIO Lab: ${describeError(err)}`);
    return undefined;
  }
}

export function activate(context: vscode.ExtensionContext): VlabApi {
  const t0 = performance.now();
  const log = vscode.window.createOutputChannel('VirtIO Lab');
  const tree = new LabTreeProvider();
  const statusBar = new LabStatusBar();
  const workspace = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
  const lab = createLab(workspace, context.extensionPath, log);
  const cli = new VlabCli(context.extensionPath, workspace ?? context.extensionPath, () => readSettings().env);
  const chats = lab ? new ChatManager(lab, cli, context.extensionPath, () => readSettings().chatCrypto) : undefined;
  const driverProblems = lab ? new DriverProblems(lab.workspace, () => lab.lab, log, () => readSettings().driverBuildOnSave) : undefined;
  const state: ExtensionState = { context, log, lab, chats, driverProblems, cli, guestTerminals: [], lastCapture: undefined };
  context.subscriptions.push(log, tree, statusBar, vscode.window.createTreeView('vlab.lab', { treeDataProvider: tree, showCollapseAll: true }));
  if (lab) context.subscriptions.push(lab);
  if (chats) context.subscriptions.push(chats);
  if (driverProblems) context.subscriptions.push(driverProblems);

  const refreshViews = (): void => {
    tree.update(lab?.status, chats?.list() ?? []);
    statusBar.update(lab?.status, lab?.busy);
  };
  if (lab) context.subscriptions.push(lab.onDidChangeStatus(refreshViews));
  if (chats) context.subscriptions.push(chats.onDidChange(refreshViews));

  registerCommands(state);
  if (lab) {
    // Restores an open rings view (and a replay) after a window reload.
    context.subscriptions.push(vscode.window.registerWebviewPanelSerializer(RingsPanel.viewType, {
      deserializeWebviewPanel: async (panel, saved: unknown) => {
        RingsPanel.revive(panel, context.extensionUri, ringsSource(lab), readSettings().ringsRefreshMs, saved);
      },
    }));
  }

  context.subscriptions.push(vscode.workspace.onDidChangeConfiguration((e) => {
    if (e.affectsConfiguration(SECTION)) lab?.settingsChanged();
  }));

  lab?.startPolling();
  shutdown = async () => {
    chats?.closeAll();
    RingsPanel.instance?.dispose();
    await lab?.shutdown();
  };
  const activationMs = performance.now() - t0;
  log.appendLine(`activated in ${activationMs.toFixed(1)} ms`);
  return {
    activationMs, lab, tree, chats, guestTerminals: state.guestTerminals,
    rings: () => RingsPanel.instance,
    benchmark: () => BenchmarkPanel.instance,
    lastCapture: () => state.lastCapture,
  };
}

/** Stops what this window started (chats, and the VM if the setting allows). */
export async function deactivate(): Promise<void> {
  await shutdown?.();
}
