/** Runs the `vlab` CLI in-process with captured output: the one way every suite drives the CLI. */
import { PassThrough } from 'node:stream';
import { main } from '../extension/cli/vlab';

export interface CliRun {
  readonly code: number;
  readonly out: string;
  readonly err: string;
}

export async function runMainCaptured(args: readonly string[], opts: { cwd: string; env: NodeJS.ProcessEnv; stdin?: string }): Promise<CliRun> {
  const out = new PassThrough();
  const err = new PassThrough();
  const input = new PassThrough();
  input.end(opts.stdin ?? '');
  let o = '';
  let e = '';
  out.on('data', (c: Buffer) => (o += c.toString()));
  err.on('data', (c: Buffer) => (e += c.toString()));
  const code = await main(args, { stdout: out, stderr: err, stdin: input, cwd: opts.cwd, env: opts.env });
  return { code, out: o, err: e };
}
