/** Starts a real QEMU with a QMP socket for the client tests and stops it (by PID) afterwards. */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

export interface RunningQemu {
  readonly socketPath: string;
  readonly dir: string;
  readonly child: ChildProcess;
  stderr(): string;
  stop(): Promise<void>;
}

/** QEMU with `-machine none` starts in a fraction of a second. */
export const MACHINE_NONE = ['-machine', 'none', '-nodefaults', '-display', 'none'];
/** A paused q35 (-S: no CPU runs, so no kernel is needed) with a virtio-crypto device on the builtin backend. */
export const Q35_CRYPTO = [
  '-machine', 'q35', '-S', '-nodefaults', '-display', 'none',
  '-object', 'cryptodev-backend-builtin,id=c0',
  '-device', 'virtio-crypto-pci,id=crypto0,cryptodev=c0',
];

function accepts(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(path, () => { s.destroy(); resolve(true); });
    s.on('error', () => resolve(false));
  });
}

export function tempSocketPath(): string {
  return join(mkdtempSync(join(tmpdir(), 'vlab-qmp-test-')), 'qmp.sock');
}

export async function startQemu(machineArgs: readonly string[], { listen = true, socketPath = tempSocketPath() } = {}): Promise<RunningQemu> {
  const dir = dirname(socketPath);
  const child = spawn('qemu-system-x86_64', [...machineArgs, '-qmp', `unix:${socketPath},server=on,wait=off`], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let err = '';
  child.stderr?.on('data', (c: Buffer) => { err += c.toString(); });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
      process.kill(child.pid, 'SIGKILL');
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  };
  if (listen) {
    const deadline = Date.now() + 10_000;
    // The socket file appears at bind(), before listen(): wait until a connection is accepted.
    while (!(existsSync(socketPath) && (await accepts(socketPath)))) {
      if (child.exitCode !== null || Date.now() > deadline) {
        await stop();
        throw new Error(`QEMU did not create its QMP socket: ${err}`);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  return { socketPath, dir, child, stderr: () => err, stop };
}

/** SIGSTOPs a process and waits until the kernel reports it stopped, so it cannot answer anything after this returns. */
export async function freeze(pid: number): Promise<void> {
  process.kill(pid, 'SIGSTOP');
  for (let i = 0; i < 500; i++) {
    // /proc/PID/stat: "pid (comm) STATE ..." — comm may contain spaces, so read after the last ')'.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    if (stat.slice(stat.lastIndexOf(')') + 2).startsWith('T')) return;
    await new Promise((r) => setTimeout(r, 2));
  }
  throw new Error(`process ${pid} did not stop`);
}

export function thaw(pid: number): void {
  process.kill(pid, 'SIGCONT');
}
