/**
 * Runs the project's `vlab` CLI (bin/vlab.js) as a child process: the extension reuses the CLI's
 * process-level contracts (doctor, driver, chat, bench) instead of duplicating their logic.
 * In desktop VS Code process.execPath is Electron, so ELECTRON_RUN_AS_NODE makes it plain Node.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';

export interface VlabRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

const MAX_CAPTURE = 4 * 1024 * 1024;

export class VlabCli {
  constructor(private readonly extensionPath: string, private readonly cwd: string, private readonly env: () => Record<string, string>) {}

  get script(): string {
    return join(this.extensionPath, 'bin', 'vlab.js');
  }

  /** argv for a terminal or spawn: [command, ...args] */
  command(args: readonly string[]): { command: string; args: string[]; env: NodeJS.ProcessEnv; cwd: string } {
    return { command: process.execPath, args: [this.script, ...args], env: { ...process.env, ...this.env(), ELECTRON_RUN_AS_NODE: '1' }, cwd: this.cwd };
  }

  spawn(args: readonly string[]): ChildProcess {
    const c = this.command(args);
    return spawn(c.command, c.args, { cwd: c.cwd, env: c.env, stdio: ['ignore', 'pipe', 'pipe'] });
  }

  /** Runs to completion; onOutput sees the output as it comes; abort sends SIGTERM. */
  run(args: readonly string[], opts: { signal?: AbortSignal; onOutput?: (text: string) => void } = {}): Promise<VlabRun> {
    return new Promise((resolve, reject) => {
      const child = this.spawn(args);
      let stdout = '';
      let stderr = '';
      child.stdout?.setEncoding('utf8').on('data', (s: string) => { if (stdout.length < MAX_CAPTURE) stdout += s; opts.onOutput?.(s); });
      child.stderr?.setEncoding('utf8').on('data', (s: string) => { if (stderr.length < MAX_CAPTURE) stderr += s; opts.onOutput?.(s); });
      const onAbort = (): void => { child.kill('SIGTERM'); };
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      child.once('error', reject);
      child.once('close', (code) => {
        opts.signal?.removeEventListener('abort', onAbort);
        resolve({ code, stdout, stderr });
      });
    });
  }
}
