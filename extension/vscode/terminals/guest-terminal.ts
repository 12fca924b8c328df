/**
 * A VS Code terminal backed by an interactive ssh2 shell in the guest (SshSession.shell with a
 * pty). Keystrokes go to the channel, output comes back as is (colours included), resizes are
 * forwarded with setWindow, and the terminal closes when the remote shell exits.
 */
import * as vscode from 'vscode';
import type { ClientChannel } from 'ssh2';
import type { SshSession } from '../../lab/guest/ssh';
import { Transcript } from './transcript';

export class GuestTerminal implements vscode.Pseudoterminal {
  private readonly writeEmitter = new vscode.EventEmitter<string>();
  private readonly closeEmitter = new vscode.EventEmitter<number | void>();
  readonly onDidWrite = this.writeEmitter.event;
  readonly onDidClose = this.closeEmitter.event;
  /** the newest output, for the status line and tests */
  readonly transcript = new Transcript();
  private channel: ClientChannel | undefined;
  private session: SshSession | undefined;
  private size = { cols: 80, rows: 24 };
  private closed = false;

  /**
   * @param initialCommand typed into the shell once it opens (e.g. "exec node ... chat connect ..."),
   *   so the program runs under the shell's pty with job control and line editing
   */
  constructor(private readonly connect: () => Promise<SshSession>, private readonly initialCommand?: string, private readonly banner?: string) {}

  open(initial: vscode.TerminalDimensions | undefined): void {
    if (initial) this.size = { cols: initial.columns, rows: initial.rows };
    if (this.banner) this.write(`\x1b[2m${this.banner}\x1b[0m\r\n`);
    this.write('\x1b[2mconnecting to the guest…\x1b[0m\r\n');
    void this.start();
  }

  private async start(): Promise<void> {
    try {
      this.session = await this.connect();
      if (this.closed) return this.session.close();
      const channel = await this.session.shell({ cols: this.size.cols, rows: this.size.rows, term: 'xterm-256color' });
      this.channel = channel;
      let typed = false;
      channel.on('data', (data: Buffer) => {
        this.write(data.toString('utf8'));
        // Typed once the shell has printed its prompt, so the pty does not echo it twice.
        if (!typed && this.initialCommand) {
          typed = true;
          channel.write(`${this.initialCommand}\n`);
        }
      });
      channel.stderr.on('data', (data: Buffer) => this.write(data.toString('utf8')));
      channel.on('exit', (code: number | null) => this.finish(typeof code === 'number' ? code : undefined));
      channel.on('close', () => this.finish(undefined));
    } catch (err) {
      this.write(`\r\n\x1b[31mcannot open a guest shell: ${(err as Error).message}\x1b[0m\r\n`);
      this.finish(1);
    }
  }

  private write(text: string): void {
    this.transcript.append(text);
    this.writeEmitter.fire(text);
  }

  handleInput(data: string): void {
    this.channel?.write(data);
  }

  setDimensions(dimensions: vscode.TerminalDimensions): void {
    this.size = { cols: dimensions.columns, rows: dimensions.rows };
    // setWindow(rows, cols, height, width): the pixel sizes are unused by the guest's sshd.
    this.channel?.setWindow(dimensions.rows, dimensions.columns, 0, 0);
  }

  close(): void {
    this.finish(undefined, false);
  }

  private finish(code: number | undefined, fire = true): void {
    if (this.closed) return;
    this.closed = true;
    this.channel?.close();
    this.session?.close();
    if (fire) this.closeEmitter.fire(code);
  }

  get isClosed(): boolean {
    return this.closed;
  }
}
