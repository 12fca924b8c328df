/**
 * The adapter for a crash dump session: cdt-gdb-adapter's process, with two messages of the protocol
 * answered here. cdt-gdb-adapter 1.7.0 treats every attach as a live target: its configurationDone
 * continues the target, which for a core file fails ("The program is not being run."), and no
 * `stopped` event ever comes, so VS Code would show no Call Stack. For a dump, configurationDone is
 * answered as done and a `stopped` event (every thread) follows; everything else goes to the process.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import * as vscode from 'vscode';

interface DapMessage {
  readonly type: string;
  readonly seq: number;
  readonly command?: string;
}

export class CoreDumpAdapter implements vscode.DebugAdapter {
  private readonly sent = new vscode.EventEmitter<vscode.DebugProtocolMessage>();
  readonly onDidSendMessage = this.sent.event;
  private readonly child: ChildProcess;
  private pending = Buffer.alloc(0);
  /** Our own messages' seq numbers, far from the adapter's. */
  private seq = 1_000_000;

  constructor(command: string, args: readonly string[], env: NodeJS.ProcessEnv) {
    this.child = spawn(command, [...args], { env, stdio: ['pipe', 'pipe', 'ignore'] });
    this.child.stdout!.on('data', (chunk: Buffer) => this.read(chunk));
    this.child.on('exit', () => this.fire({ type: 'event', event: 'terminated' }));
  }

  private fire(message: Record<string, unknown>): void {
    this.sent.fire({ seq: this.seq++, ...message } as vscode.DebugProtocolMessage);
  }

  /** Content-Length framed JSON from the adapter's stdout. */
  private read(chunk: Buffer): void {
    this.pending = Buffer.concat([this.pending, chunk]);
    for (;;) {
      const end = this.pending.indexOf('\r\n\r\n');
      if (end < 0) return;
      const length = Number(/Content-Length: *(\d+)/i.exec(this.pending.subarray(0, end).toString('latin1'))?.[1]);
      if (!Number.isInteger(length)) {
        this.pending = Buffer.alloc(0);
        return;
      }
      if (this.pending.length < end + 4 + length) return;
      const body = this.pending.subarray(end + 4, end + 4 + length).toString('utf8');
      this.pending = this.pending.subarray(end + 4 + length);
      this.sent.fire(JSON.parse(body) as vscode.DebugProtocolMessage);
    }
  }

  handleMessage(message: vscode.DebugProtocolMessage): void {
    const m = message as DapMessage;
    if (m.type === 'request' && m.command === 'configurationDone') {
      this.fire({ type: 'response', request_seq: m.seq, success: true, command: 'configurationDone' });
      this.fire({ type: 'event', event: 'stopped', body: { reason: 'exception', description: 'crash dump', text: 'the state the dump was written in', threadId: 1, allThreadsStopped: true } });
      return;
    }
    const json = JSON.stringify(message);
    this.child.stdin?.write(`Content-Length: ${Buffer.byteLength(json)}\r\n\r\n${json}`);
  }

  dispose(): void {
    this.child.stdin?.end();
    if (this.child.exitCode === null) this.child.kill();
    this.sent.dispose();
  }
}
