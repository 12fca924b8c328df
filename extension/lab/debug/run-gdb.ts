/**
 * Runs the host's gdb. Interactive: gdb owns the terminal (stdio inherited) and Ctrl-C is gdb's (it
 * stops the guest), so this process ignores SIGINT until gdb exits. Batch: gdb's output is forwarded
 * to the caller's streams (captured by tests), and cancelling ends gdb with SIGTERM (gdb detaches from
 * the gdbstub as it quits, so the guest keeps running).
 */
import { spawn } from 'node:child_process';

export interface GdbIo {
  readonly stdout: NodeJS.WritableStream;
  readonly stderr: NodeJS.WritableStream;
  readonly signal?: AbortSignal;
}

/** gdb's exit code (128 + signal number when it was killed). */
export function runGdb(gdb: string, argv: readonly string[], interactive: boolean, io: GdbIo): Promise<number> {
  return new Promise((resolve, reject) => {
    const ignore = (): void => undefined;
    if (interactive) process.on('SIGINT', ignore);
    const child = spawn(gdb, [...argv], { stdio: interactive ? 'inherit' : ['ignore', 'pipe', 'pipe'] });
    child.stdout?.on('data', (c: Buffer) => io.stdout.write(c));
    child.stderr?.on('data', (c: Buffer) => io.stderr.write(c));
    const onAbort = (): void => {
      if (!interactive) child.kill('SIGTERM');
    };
    io.signal?.addEventListener('abort', onAbort, { once: true });
    const done = (): void => {
      io.signal?.removeEventListener('abort', onAbort);
      if (interactive) process.off('SIGINT', ignore);
    };
    child.on('error', (err) => {
      done();
      reject(err);
    });
    child.on('close', (code, signal) => {
      done();
      resolve(code ?? (signal === 'SIGKILL' ? 137 : signal === 'SIGTERM' ? 143 : 128));
    });
  });
}
