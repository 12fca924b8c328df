/**
 * A VS Code terminal running a host process with pipes (no pty, so it works the same in desktop
 * VS Code and code-server). A small line discipline stands in for the tty: local echo, backspace,
 * Enter sends the line, Ctrl-C interrupts, Ctrl-D closes stdin. Used for the host chat peer and
 * server, which read lines.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as vscode from 'vscode';
import { Transcript } from './transcript';

export interface ProcessSpec {
  command: string;
  args: readonly string[];
  cwd: string;
  env?: NodeJS.ProcessEnv;
  /** shown before the process starts */
  banner?: string;
}

const MAX_LINE = 4096;

export class ProcessTerminal implements vscode.Pseudoterminal {
  private readonly writeEmitter = new vscode.EventEmitter<string>();
  private readonly closeEmitter = new vscode.EventEmitter<number | void>();
  readonly onDidWrite = this.writeEmitter.event;
  readonly onDidClose = this.closeEmitter.event;
  readonly transcript = new Transcript();
  private child: ChildProcess | undefined;
  private line = '';
  private hasExited = false;

  constructor(private readonly spec: ProcessSpec) {}

  open(): void {
    if (this.spec.banner) this.write(`\x1b[2m${this.spec.banner}\x1b[0m\r\n`);
    const child = spawn(this.spec.command, [...this.spec.args], { cwd: this.spec.cwd, env: this.spec.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] });
    this.child = child;
    const out = (data: Buffer): void => this.write(data.toString('utf8').replace(/\r?\n/g, '\r\n'));
    child.stdout?.on('data', out);
    child.stderr?.on('data', out);
    child.stdin?.on('error', () => undefined); // EPIPE after exit: reported through 'exit'
    child.on('error', (err) => this.write(`\r\n\x1b[31m${err.message}\x1b[0m\r\n`));
    child.on('exit', (code, signal) => {
      this.hasExited = true;
      this.write(`\r\n\x1b[2m[exited ${signal ?? code}]\x1b[0m\r\n`);
      this.closeEmitter.fire(code ?? 1);
    });
  }

  get exited(): boolean {
    return this.hasExited;
  }

  get pid(): number | undefined {
    return this.hasExited ? undefined : this.child?.pid;
  }

  private write(text: string): void {
    this.transcript.append(text);
    this.writeEmitter.fire(text);
  }

  handleInput(data: string): void {
    for (const ch of data) {
      if (ch === '\r' || ch === '\n') {
        this.writeEmitter.fire('\r\n');
        this.child?.stdin?.write(`${this.line}\n`);
        this.line = '';
      } else if (ch === '\x7f' || ch === '\b') {
        if (this.line.length) {
          this.line = this.line.slice(0, -1);
          this.writeEmitter.fire('\b \b');
        }
      } else if (ch === '\x03') {
        this.child?.kill('SIGINT');
      } else if (ch === '\x04') {
        this.child?.stdin?.end();
      } else if (ch >= ' ' && this.line.length < MAX_LINE) {
        this.line += ch;
        this.writeEmitter.fire(ch);
      }
    }
  }

  close(): void {
    if (!this.hasExited && this.child) this.child.kill('SIGTERM');
  }
}
