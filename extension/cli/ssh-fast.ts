/**
 * The quick path of `vlab ssh -- CMD ...` (bin/vlab.js takes it before loading every command): when the
 * lab's SSH mux runs, the command goes straight through it, loading only the mux client, the session
 * and the state file reader (no ssh2, no Lab). Whenever that path does not apply (no running lab, no
 * mux, the mux refuses) it returns undefined and the full CLI runs the command as usual.
 */
import { labPaths } from '../lab/common/paths';
import { isOurProcess } from '../lab/host/proc';
import { readState } from '../lab/state';
import { connectMux } from '../lab/mux/client';

export async function sshFast(argv: readonly string[]): Promise<number | undefined> {
  if (argv[0] !== 'ssh' || argv[1] !== '--' || argv.length < 3 || process.env.VLAB_SSH_MUX === 'off') return undefined;
  const paths = labPaths(process.cwd(), undefined, process.env);
  const file = readState(paths);
  const mux = file?.sshMux;
  if (file?.state !== 'running' || !file.qemu || !isOurProcess(file.qemu) || !mux || mux.marker !== paths.sshMuxSocket || !isOurProcess(mux)) return undefined;
  let session: Awaited<ReturnType<typeof connectMux>>;
  try {
    session = await connectMux(paths.sshMuxSocket, { pid: mux.pid });
  } catch {
    return undefined;
  }
  const controller = new AbortController();
  const onSignal = (): void => controller.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const res = await session.exec(argv.slice(2), { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr, signal: controller.signal });
    // Like ssh(1): a command killed by a signal exits 255.
    return res.code ?? 255;
  } catch (err) {
    process.stderr.write(`vlab ssh: ${(err as Error).message}\n`);
    return 255;
  } finally {
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
    session.close();
    process.stdin.destroy();
  }
}
