/**
 * Chat pairs and chat servers as VS Code terminals. All chat logic is the `vlab chat` CLI's: the
 * host side runs it as a host process, the guest side runs it in the guest through ssh (the host
 * root is mounted read-only at / in the guest, so the same node and bin/vlab.js work there; the
 * guest reaches the host's 127.0.0.1 as 10.0.2.2 through QEMU user networking).
 * One key per lab (<state>/chat.key), created on first use with `vlab chat keygen`.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import * as vscode from 'vscode';
import { pickFreeLoopbackPort } from '../lab/host/ports';
import { quoteForShell } from '../lab/guest/ssh';
import type { VlabCli } from './cli-runner';
import type { LabController } from './lab-controller';
import { guestChatPath, hostChatPath, type ChatCrypto, type ChatPath } from './chat-path';
import type { ChatInfo } from './lab-tree';
import { GuestTerminal } from './terminals/guest-terminal';
import { ProcessTerminal } from './terminals/process-terminal';

const GUEST_HOST_ADDRESS = '10.0.2.2'; // QEMU user-net alias of the host's loopback

export interface ChatEnd {
  side: 'host' | 'guest';
  /** which path encrypts this peer (also the first line of its terminal) */
  path: ChatPath;
  terminal: vscode.Terminal;
  pty: ProcessTerminal | GuestTerminal;
}

export interface Chat extends ChatInfo {
  kind: 'pair' | 'server';
  port: number;
  ends: ChatEnd[];
}

/** Node binary usable both on the host and (through the read-only host root) in the guest. */
function nodeBinary(): string {
  return process.versions.electron ? 'node' : process.execPath;
}

export class ChatManager implements vscode.Disposable {
  private readonly chats: Chat[] = [];
  private nextId = 1;
  private readonly changed = new vscode.EventEmitter<void>();
  readonly onDidChange = this.changed.event;
  private readonly subscriptions: vscode.Disposable[] = [];

  constructor(
    private readonly lab: LabController,
    private readonly cli: VlabCli,
    private readonly extensionPath: string,
    /** `--crypto` for new chats: none (Z1, plain text), auto, cryptodev, software */
    private readonly crypto: () => ChatCrypto,
  ) {
    this.subscriptions.push(vscode.window.onDidCloseTerminal((t) => this.onTerminalClosed(t)));
  }

  list(): readonly Chat[] {
    return this.chats;
  }

  private get keyFile(): string {
    return join(this.lab.lab.paths.stateDir, 'chat.key');
  }

  private async ensureKey(): Promise<void> {
    if (existsSync(this.keyFile)) return;
    const r = await this.cli.run(['chat', 'keygen', this.keyFile]);
    if (r.code !== 0) throw new Error(`could not create the chat key: ${r.stderr.trim() || r.stdout.trim()}`);
  }

  private hostEnd(title: string, args: string[]): ChatEnd {
    const c = this.cli.command(args);
    const path = hostChatPath(this.crypto());
    const pty = new ProcessTerminal({ command: c.command, args: c.args, cwd: c.cwd, env: c.env, banner: `host: vlab ${args.join(' ')}\r\n${path.header}` });
    const terminal = vscode.window.createTerminal({ name: title, pty, iconPath: new vscode.ThemeIcon('comment-discussion') });
    return { side: 'host', terminal, pty, path };
  }

  /** @param ready resolves when the guest may start (e.g. the host peer listens) */
  private guestEnd(title: string, args: string[], parent?: vscode.Terminal, ready?: Promise<void>): ChatEnd {
    // The lab shares the extension's folder into the guest at the same path when the guest's root share
    // cannot show it (an extension installed under /root or /tmp), so its bin/vlab.js runs there as is.
    const command = quoteForShell([nodeBinary(), join(this.extensionPath, 'bin', 'vlab.js'), ...args]);
    const path = guestChatPath(this.crypto(), this.lab.status?.guestDriver);
    const pty = new GuestTerminal(async () => {
      await ready;
      return this.lab.ssh();
    }, `exec ${command}`, `guest: vlab ${args.join(' ')}\r\n${path.header}`);
    const terminal = vscode.window.createTerminal({
      name: `${title} (${path.short})`, pty, iconPath: new vscode.ThemeIcon('vm'),
      ...(parent ? { location: { parentTerminal: parent } } : {}),
    });
    return { side: 'guest', terminal, pty, path };
  }

  private cryptoArgs(): string[] {
    const crypto = this.crypto();
    return crypto === 'none' ? ['--crypto', 'none'] : ['--crypto', crypto, '--key-file', this.keyFile];
  }

  /**
   * When the guest has no /dev/crypto (the upstream driver or none holds the device), a chat's guest
   * peer would encrypt in software and never touch the device: offer to restart the VM with the lab
   * driver. `choice` answers without asking (tests, other commands).
   */
  async ensureDevicePath(choice?: 'switch' | 'keep'): Promise<void> {
    const driver = this.lab.status?.guestDriver;
    if (driver === 'lab' || this.crypto() === 'none' || this.crypto() === 'software') return;
    const SWITCH = 'Switch to the lab driver and restart the VM';
    const KEEP = 'Chat in software';
    const answer = choice ?? (await vscode.window.showWarningMessage(
      `The VM runs with guest driver "${driver ?? 'unknown'}": the guest has no /dev/crypto, so the chat would encrypt in software and never use the virtio-crypto device.`,
      { modal: true }, SWITCH, KEEP) === SWITCH ? 'switch' : 'keep');
    if (answer !== 'switch') return;
    await vscode.workspace.getConfiguration('vlab').update('guestDriver', 'lab', vscode.ConfigurationTarget.Workspace);
    await this.lab.restart();
  }

  /** Host peer listens on a free loopback port; the guest peer connects to it from the guest. */
  async launchPair(opts: { driver?: 'switch' | 'keep' } = {}): Promise<Chat> {
    this.requireRunning();
    await this.ensureDevicePath(opts.driver);
    this.requireRunning();
    await this.ensureKey();
    const port = await pickFreeLoopbackPort();
    const id = this.nextId++;
    const host = this.hostEnd(`Chat ${id}: host`, ['chat', 'listen', '--host', '127.0.0.1', '--port', String(port), '--nick', 'host', ...this.cryptoArgs()]);
    // The guest terminal is created in the same tick as the host one: VS Code resolves a pty
    // terminal's parentTerminal (the split) only while the parent's creation is still pending.
    // The guest side itself waits until the host peer listens.
    const listening = this.waitForListener(host, port);
    const guest = this.guestEnd(`Chat ${id}: guest`, ['chat', 'connect', `${GUEST_HOST_ADDRESS}:${port}`, '--nick', 'guest', ...this.cryptoArgs()], host.terminal, listening);
    host.terminal.show(false);
    await listening;
    const chat: Chat = { id, kind: 'pair', port, label: `chat ${id} (pair)`, detail: `host 127.0.0.1:${port} ↔ guest`, ends: [host, guest] };
    this.chats.push(chat);
    this.changed.fire();
    return chat;
  }

  async startServer(): Promise<Chat> {
    this.requireRunning();
    await this.ensureKey();
    const port = await pickFreeLoopbackPort();
    const id = this.nextId++;
    const server = this.hostEnd(`Chat server ${id}`, ['chat', 'server', '--host', '127.0.0.1', '--port', String(port), ...this.cryptoArgs()]);
    server.terminal.show(false);
    await this.waitForListener(server, port);
    const chat: Chat = { id, kind: 'server', port, label: `chat server ${id}`, detail: `127.0.0.1:${port}`, ends: [server] };
    this.chats.push(chat);
    this.changed.fire();
    return chat;
  }

  /** Adds a client (host or guest) to a running chat server. */
  attachClient(chat: Chat, side: 'host' | 'guest'): ChatEnd {
    const n = chat.ends.length;
    const nick = `${side}${n}`;
    const end = side === 'host'
      ? this.hostEnd(`Chat server ${chat.id}: ${nick}`, ['chat', 'connect', `127.0.0.1:${chat.port}`, '--nick', nick, ...this.cryptoArgs()])
      : this.guestEnd(`Chat server ${chat.id}: ${nick}`, ['chat', 'connect', `${GUEST_HOST_ADDRESS}:${chat.port}`, '--nick', nick, ...this.cryptoArgs()]);
    end.terminal.show(false);
    chat.ends.push(end);
    chat.detail = `127.0.0.1:${chat.port} · ${chat.ends.length - 1} client(s)`;
    this.changed.fire();
    return end;
  }

  private requireRunning(): void {
    if (this.lab.state !== 'running') throw new Error('the VM is not running: start it first (VirtIO Lab: Start VM)');
  }

  /**
   * The guest must not connect before the host side listens. Watch the process's own "listening on"
   * line: probing the port would itself be taken as the one peer `chat listen` waits for.
   */
  private async waitForListener(end: ChatEnd, port: number): Promise<void> {
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline) {
      if (end.pty.transcript.plain().includes(`listening on 127.0.0.1:${port}`)) return;
      if (end.pty instanceof ProcessTerminal && end.pty.exited) throw new Error(`the host chat process exited: ${end.pty.transcript.plain().trim().slice(-300)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`the host chat process did not listen on 127.0.0.1:${port} within 15 s`);
  }

  private onTerminalClosed(t: vscode.Terminal): void {
    for (const chat of [...this.chats]) {
      const i = chat.ends.findIndex((e) => e.terminal === t);
      if (i < 0) continue;
      chat.ends.splice(i, 1);
      if (chat.ends.length === 0 || (chat.kind === 'server' && i === 0)) {
        for (const e of chat.ends) e.terminal.dispose();
        this.chats.splice(this.chats.indexOf(chat), 1);
      }
      this.changed.fire();
    }
  }

  /** Closes every chat terminal this window opened (their processes end with them). */
  closeAll(): void {
    const ends = this.chats.flatMap((c) => c.ends);
    this.chats.length = 0;
    for (const e of ends) e.terminal.dispose();
    this.changed.fire();
  }

  dispose(): void {
    this.closeAll();
    for (const s of this.subscriptions) s.dispose();
    this.changed.dispose();
  }
}
