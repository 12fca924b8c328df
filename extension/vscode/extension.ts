/**
 * VS Code entry. activate() only wires: the lab controller (over the vscode-free core), the view,
 * the status bar, and the commands (commands.ts).
 */
import { performance } from 'node:perf_hooks';
import * as vscode from 'vscode';
import { BenchmarkPanel } from './benchmark/panel';
import type { CaptureResult } from './capture';
import { ChatManager } from './chat-manager';
import { GradeTreeProvider } from './check/grade-view';
import { VlabCli } from './cli-runner';
import { type ExtensionState, registerCommands, ringsSource } from './commands';
import { CrashDumpOffer } from './debug/crash-dump';
import { registerKernelDebug } from './debug/kernel-debug';
import { KernelDebugSessions } from './debug/sessions';
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
  /** the "Driver Check" view (Check Driver) */
  readonly grades: GradeTreeProvider;
  readonly chats: ChatManager | undefined;
  readonly guestTerminals: readonly GuestTerminal[];
  readonly rings: () => RingsPanel | undefined;
  readonly benchmark: () => BenchmarkPanel | undefined;
  readonly lastCapture: () => CaptureResult | undefined;
  readonly debugSessions: KernelDebugSessions | undefined;
  readonly statusBarText: () => string;
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
  const grades = new GradeTreeProvider();
  const statusBar = new LabStatusBar();
  const workspace = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
  const lab = createLab(workspace, context.extensionPath, log);
  const cli = new VlabCli(context.extensionPath, workspace ?? context.extensionPath, () => readSettings().env);
  const chats = lab ? new ChatManager(lab, cli, context.extensionPath, () => readSettings().chatCrypto) : undefined;
  const driverProblems = lab ? new DriverProblems(lab.workspace, () => lab.lab, log, () => readSettings().driverBuildOnSave) : undefined;
  const debugSessions = lab ? new KernelDebugSessions(() => lab.lab, log) : undefined;
  const crashDumps = new CrashDumpOffer();
  const state: ExtensionState = { context, log, lab, chats, driverProblems, cli, guestTerminals: [], grades, debugSessions, lastCapture: undefined };
  context.subscriptions.push(log, tree, statusBar, vscode.window.createTreeView('vlab.lab', { treeDataProvider: tree, showCollapseAll: true }));
  context.subscriptions.push(grades, vscode.window.createTreeView(GradeTreeProvider.viewId, { treeDataProvider: grades, showCollapseAll: true }));
  if (lab) context.subscriptions.push(lab);
  if (chats) context.subscriptions.push(chats);
  if (driverProblems) context.subscriptions.push(driverProblems);
  if (debugSessions) context.subscriptions.push(debugSessions);
  if (debugSessions) registerKernelDebug(context, lab, debugSessions, log);

  const refreshViews = (): void => {
    tree.update(lab?.status, chats?.list() ?? []);
    statusBar.update(lab?.status, lab?.busy, debugSessions?.haltedText);
    crashDumps.seen(lab?.status);
  };
  if (lab) context.subscriptions.push(lab.onDidChangeStatus(refreshViews));
  if (chats) context.subscriptions.push(chats.onDidChange(refreshViews));
  // Halted or running again: the status bar now, the rings view with the status it re-reads.
  if (debugSessions) context.subscriptions.push(debugSessions.onDidChange(() => { refreshViews(); lab?.refresh().catch(() => undefined); }));

  registerCommands(state);
  if (lab) {
    // Restores an open rings view (and a replay) after a window reload.
    context.subscriptions.push(vscode.window.registerWebviewPanelSerializer(RingsPanel.viewType, {
      deserializeWebviewPanel: async (panel, saved: unknown) => {
        RingsPanel.revive(panel, context.extensionUri, ringsSource(lab, () => debugSessions?.haltedText), readSettings().ringsRefreshMs, saved);
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
    activationMs, lab, tree, grades, chats, guestTerminals: state.guestTerminals,
    rings: () => RingsPanel.instance,
    benchmark: () => BenchmarkPanel.instance,
    lastCapture: () => state.lastCapture,
    debugSessions,
    statusBarText: () => statusBar.text,
  };
}

/** Stops what this window started (chats, and the VM if the setting allows). */
export async function deactivate(): Promise<void> {
  await shutdown?.();
}
