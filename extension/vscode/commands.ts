/**
 * Every command of the extension, registered through one helper that records the disposable and
 * turns failures into notifications (errors.ts). Handlers only call the lab controller, the chat
 * manager, the panels or the `vlab` CLI.
 */
import * as vscode from 'vscode';
import { BenchmarkPanel } from './benchmark/panel';
import { runBenchmark } from './benchmark/run';
import { captureChat, type CaptureResult } from './capture';
import type { Chat, ChatManager } from './chat-manager';
import type { VlabCli } from './cli-runner';
import { CommandId, type CommandIdValue } from './command-ids';
import type { DriverProblems } from './driver-problems';
import { reportError } from './errors';
import type { LabController } from './lab-controller';
import { RingsPanel, type RingsSource } from './rings/panel';
import { readSettings } from './settings';
import { nextActions } from './status-bar';
import { GuestTerminal } from './terminals/guest-terminal';

/** What the command handlers work with (made once by activate()). */
export interface ExtensionState {
  readonly context: vscode.ExtensionContext;
  readonly log: vscode.OutputChannel;
  /** undefined without a workspace folder */
  readonly lab: LabController | undefined;
  readonly chats: ChatManager | undefined;
  /** undefined without a workspace folder */
  readonly driverProblems: DriverProblems | undefined;
  readonly cli: VlabCli;
  readonly guestTerminals: GuestTerminal[];
  lastCapture: CaptureResult | undefined;
}

/** What the rings view reads from the lab (also used by the serializer after a window reload). */
export function ringsSource(l: LabController): RingsSource {
  return {
    telemetrySocket: () => l.telemetrySocket,
    device: () => l.status?.device,
    devices: () => l.lab.virtioDevices(),
    onDidChangeStatus: l.onDidChangeStatus,
  };
}

export function registerCommands(s: ExtensionState): void {
  const needLab = (): LabController => {
    if (!s.lab) throw new Error('open a folder first: the lab keeps its state in the workspace (.vlab/)');
    return s.lab;
  };
  const needChats = (): ChatManager => {
    if (!s.chats) throw new Error('open a folder first');
    return s.chats;
  };
  /** The chat a command is for: given by id (tests, other commands) or as the tree node clicked, else asked. */
  const pickChat = async (kind?: Chat['kind'], arg?: unknown): Promise<Chat | undefined> => {
    const list = needChats().list().filter((c) => !kind || c.kind === kind);
    const wanted = typeof arg === 'number' ? arg : typeof arg === 'object' && arg !== null && typeof (arg as { id?: unknown }).id === 'string'
      ? Number(/^chat\.(\d+)$/.exec((arg as { id: string }).id)?.[1]) : undefined;
    if (wanted !== undefined && Number.isInteger(wanted)) {
      const chat = list.find((c) => c.id === wanted);
      if (!chat) throw new Error(`chat ${wanted} is not running`);
      return chat;
    }
    if (list.length === 0) throw new Error(kind === 'server' ? 'no chat server is running: use Start Chat Server' : 'no chat is running: use Launch Chat Pair');
    if (list.length === 1) return list[0];
    const pick = await vscode.window.showQuickPick(list.map((c) => ({ label: c.label, description: c.detail, chat: c })), { placeHolder: 'Which chat?' });
    return pick?.chat;
  };

  /** One place to register: records the disposable and turns failures into notifications. */
  const register = (id: CommandIdValue, what: string, handler: (...args: unknown[]) => unknown): void => {
    s.context.subscriptions.push(vscode.commands.registerCommand(id, async (...args: unknown[]) => {
      try {
        return await handler(...args);
      } catch (err) {
        reportError(what, err, s.log);
        return undefined;
      }
    }));
  };

  register(CommandId.startVm, 'Start VM', () => needLab().start());
  register(CommandId.stopVm, 'Stop VM', async () => {
    s.chats?.closeAll();
    await needLab().stop();
  });
  register(CommandId.restartVm, 'Restart VM', () => needLab().restart());
  register(CommandId.buildGuest, 'Build Guest', () => needLab().buildGuest());
  register(CommandId.refresh, 'Refresh', () => needLab().refresh());
  register(CommandId.reloadDriver, 'Build & Reload Driver', async () => {
    const l = needLab();
    if (l.status?.guestDriver === 'upstream') {
      throw new Error("the guest's upstream virtio_crypto driver holds the device: set vlab.guestDriver to \"lab\" and restart the VM");
    }
    const r = await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: 'VirtIO Lab: building and loading the guest driver', cancellable: true },
      (_p, token) => {
        const ac = new AbortController();
        token.onCancellationRequested(() => ac.abort());
        return s.cli.run(['driver', 'reload'], { signal: ac.signal, onOutput: (text) => s.log.append(text) });
      });
    s.driverProblems?.showCompilerOutput(`${r.stdout}\n${r.stderr}`, l.workspace);
    if (r.code !== 0) throw new Error(`vlab driver reload exited ${r.code}: ${(r.stderr || r.stdout).trim().split('\n').slice(-3).join(' ')}`);
    void vscode.window.showInformationMessage('VirtIO Lab: guest driver reloaded');
    await needLab().refresh();
  });
  register(CommandId.buildDriver, 'Build Driver', async () => {
    if (!s.driverProblems) throw new Error('open a folder first: the driver is built into the workspace\'s .vlab/');
    const r = await s.driverProblems.build();
    if (r.ok) void vscode.window.showInformationMessage(`VirtIO Lab: ${r.message}`);
    else void vscode.window.showErrorMessage(`VirtIO Lab: ${r.message}`, 'Show Problems').then((c) => c && vscode.commands.executeCommand('workbench.actions.view.problems'));
    return r;
  });
  register(CommandId.openTerminal, 'Open Guest Terminal', () => {
    const l = needLab();
    if (l.state !== 'running') throw new Error('the VM is not running: start it first');
    const pty = new GuestTerminal(() => l.ssh());
    s.guestTerminals.push(pty);
    const terminal = vscode.window.createTerminal({ name: `Guest ${s.guestTerminals.length}`, pty, iconPath: new vscode.ThemeIcon('vm') });
    terminal.show();
    return undefined;
  });
  register(CommandId.showRings, 'Show Virtqueue Rings', () => {
    RingsPanel.createOrShow(s.context.extensionUri, ringsSource(needLab()), readSettings().ringsRefreshMs);
  });
  register(CommandId.openRingsTrace, 'Open Rings Trace', async (arg?: unknown) => {
    // Tests pass the trace's path; people pick a file.
    const file = typeof arg === 'string' ? arg : (await vscode.window.showOpenDialog({ title: 'Open rings trace', filters: { 'Rings trace': ['jsonl', 'json'] }, canSelectMany: false }))?.[0]?.fsPath;
    if (!file) return undefined;
    return RingsPanel.createOrShow(s.context.extensionUri, ringsSource(needLab()), readSettings().ringsRefreshMs).openTrace(file);
  });
  register(CommandId.launchChatPair, 'Launch Chat Pair', async (arg?: unknown) => {
    // Tests pass { driver: 'switch' | 'keep' } to answer the "no /dev/crypto in the guest" question.
    const driver = typeof arg === 'object' && arg !== null && 'driver' in arg ? (arg as { driver: unknown }).driver : undefined;
    return (await needChats().launchPair({ driver: driver === 'switch' || driver === 'keep' ? driver : undefined })).id;
  });
  register(CommandId.startChatServer, 'Start Chat Server', async () => {
    const chat = await needChats().startServer();
    // Not awaited: the command finishes when the server runs; the offer stays in the notification.
    void vscode.window.showInformationMessage(`Chat server on 127.0.0.1:${chat.port}. Attach a client?`, 'Guest client', 'Host client').then((more) => {
      if (more) needChats().attachClient(chat, more === 'Guest client' ? 'guest' : 'host');
    });
    return chat.port;
  });
  register(CommandId.attachChatClient, 'Attach Chat Client', async (arg?: unknown) => {
    const chat = await pickChat('server', arg);
    if (!chat) return;
    const side = await vscode.window.showQuickPick(['guest', 'host'], { placeHolder: 'Where should the client run?' });
    if (side === 'guest' || side === 'host') needChats().attachClient(chat, side);
  });
  register(CommandId.captureTraffic, 'Capture Traffic', async (arg?: unknown) => {
    const chat = await pickChat('pair', arg);
    if (!chat) return;
    const result = await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: `VirtIO Lab: capturing ${chat.label}` }, () => captureChat(needLab(), chat));
    s.lastCapture = result;
    s.log.appendLine(`capture ${result.file}: ${result.bytes} bytes, marker ${result.marker} delivered=${result.delivered} plaintextOnWire=${result.plaintextOnWire}`);
    const verdict = result.plaintextOnWire ? 'PLAINTEXT IS VISIBLE on the wire' : 'no plaintext on the wire (encrypted)';
    void vscode.window.showInformationMessage(`${chat.label}: ${verdict}${result.delivered ? '' : ' (the test line did not arrive)'}. Capture: ${result.file}`, 'Open Folder').then((open) => {
      if (open) void vscode.commands.executeCommand('revealFileInOS', vscode.Uri.file(result.file));
    });
    return result;
  });
  register(CommandId.runBenchmark, 'Run Benchmark', async () => {
    const result = await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: 'VirtIO Lab: running the benchmarks', cancellable: true },
      (progress, token) => {
        const ac = new AbortController();
        token.onCancellationRequested(() => ac.abort());
        return runBenchmark(s.cli, readSettings().benchmarkSeconds, { signal: ac.signal, onOutput: (text) => s.log.append(text), onStep: (m) => progress.report({ message: m }) });
      });
    BenchmarkPanel.show(s.context.extensionUri, result.title, result.groups, result.raw);
  });
  register(CommandId.showLogs, 'Show Logs', async (which?: unknown) => {
    const choices: (vscode.QuickPickItem & { log: string })[] = [
      { label: 'Extension output', log: 'extension' },
      ...(s.lab ? (['console', 'qemu', 'backend'] as const).map((k) => ({ label: `${k} log`, description: s.lab!.lab.logPath(k), log: k })) : []),
    ];
    const chosen = typeof which === 'string' ? choices.find((c) => c.log === which) : await vscode.window.showQuickPick(choices, { placeHolder: 'Which log?' });
    if (!chosen) return;
    if (chosen.log === 'extension' || !s.lab) {
      s.log.show();
      return;
    }
    const doc = await vscode.workspace.openTextDocument(vscode.Uri.file(s.lab.lab.logPath(chosen.log as 'console' | 'qemu' | 'backend')));
    await vscode.window.showTextDocument(doc, { preview: true });
  });
  register(CommandId.checkHost, 'Check Host', async () => {
    s.log.show(true);
    s.log.appendLine('== vlab doctor');
    const r = await s.cli.run(['doctor'], { onOutput: (text) => s.log.append(text) });
    if (r.code === 0) void vscode.window.showInformationMessage('VirtIO Lab: the host has everything the lab needs.');
    else void vscode.window.showWarningMessage('VirtIO Lab: the host check found problems (see the VirtIO Lab output).');
    return r.code;
  });
  register(CommandId.statusActions, 'Status actions', async () => {
    const pick = await vscode.window.showQuickPick(nextActions(s.lab?.busy ? 'booting' : s.lab?.state ?? 'stopped'), { placeHolder: `VirtIO Lab is ${s.lab?.state ?? 'not available'}` });
    if (pick) await vscode.commands.executeCommand(pick.command);
  });

}
