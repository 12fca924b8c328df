/** Status-bar item with the VM state; clicking it offers the likely next actions. */
import * as vscode from 'vscode';
import type { LabStatus } from '../lab/lab';
import { CommandId } from './command-ids';

const ICON: Record<string, string> = { running: '$(vm-running)', booting: '$(loading~spin)', stopping: '$(loading~spin)', failed: '$(error)', stopped: '$(vm-outline)' };

export class LabStatusBar implements vscode.Disposable {
  private readonly item = vscode.window.createStatusBarItem('vlab.status', vscode.StatusBarAlignment.Left, 50);

  constructor() {
    this.item.name = 'VirtIO Lab';
    this.item.command = CommandId.statusActions;
    this.update(undefined, undefined);
    this.item.show();
  }

  update(status: LabStatus | undefined, busy: string | undefined): void {
    const state = busy ?? status?.state ?? 'stopped';
    this.item.text = `${ICON[busy ? 'booting' : state] ?? ''} VirtIO Lab: ${state}`;
    this.item.tooltip = status?.reason ?? (status?.state === 'running' ? `${status.accel?.kind ?? ''} · backend ${status.backend.kind} · ssh port ${status.ssh.port ?? '?'}` : 'Click for actions');
    this.item.backgroundColor = status?.state === 'failed' ? new vscode.ThemeColor('statusBarItem.errorBackground') : undefined;
  }

  dispose(): void {
    this.item.dispose();
  }
}

/** The likely next actions for a state, for the status-bar quick pick. */
export function nextActions(state: string): { label: string; command: string }[] {
  switch (state) {
    case 'running':
      return [
        { label: '$(terminal) Open Guest Terminal', command: CommandId.openTerminal },
        { label: '$(pulse) Show Virtqueue Rings', command: CommandId.showRings },
        { label: '$(comment-discussion) Launch Chat Pair', command: CommandId.launchChatPair },
        { label: '$(graph) Run Benchmark', command: CommandId.runBenchmark },
        { label: '$(debug-restart) Restart VM', command: CommandId.restartVm },
        { label: '$(debug-stop) Stop VM', command: CommandId.stopVm },
      ];
    case 'failed':
      return [
        { label: '$(output) Show Logs', command: CommandId.showLogs },
        { label: '$(checklist) Check Host', command: CommandId.checkHost },
        { label: '$(play) Start VM', command: CommandId.startVm },
        { label: '$(debug-stop) Stop VM (clean up)', command: CommandId.stopVm },
      ];
    case 'booting':
    case 'stopping':
      return [{ label: '$(output) Show Logs', command: CommandId.showLogs }];
    default:
      return [
        { label: '$(play) Start VM', command: CommandId.startVm },
        { label: '$(package) Build Guest', command: CommandId.buildGuest },
        { label: '$(checklist) Check Host', command: CommandId.checkHost },
      ];
  }
}
