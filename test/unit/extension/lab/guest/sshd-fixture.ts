/**
 * A real OpenSSH server on 127.0.0.1 for the SSH client tests: temp host key, temp client key, config
 * and pid file in a temp dir; stopped by PID.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as net from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import type { SshTarget } from '../../../../../extension/lab/guest/ssh';

export interface SshdKeys {
  readonly dir: string;
  readonly clientKey: Buffer;
  /** The server's host public key line. */
  readonly hostKey: string;
  /** Another host key, to prove a mismatch is refused. */
  readonly otherHostKey: string;
  readonly username: string;
  target(port: number): SshTarget;
  cleanup(): void;
}

export function makeKeys(): SshdKeys {
  const dir = mkdtempSync(join(tmpdir(), 'vlab-sshd-test-'));
  const keygen = (file: string): void => {
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'vlab-test', '-f', join(dir, file)]);
  };
  keygen('host_ed25519');
  keygen('other_host_ed25519');
  keygen('client_ed25519');
  writeFileSync(join(dir, 'authorized_keys'), readFileSync(join(dir, 'client_ed25519.pub')));
  const username = userInfo().username;
  const clientKey = readFileSync(join(dir, 'client_ed25519'));
  const hostKey = readFileSync(join(dir, 'host_ed25519.pub'), 'utf8').trim();
  return {
    dir,
    clientKey,
    hostKey,
    otherHostKey: readFileSync(join(dir, 'other_host_ed25519.pub'), 'utf8').trim(),
    username,
    target: (port) => ({ host: '127.0.0.1', port, username, privateKey: clientKey, hostKey }),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

export interface RunningSshd {
  readonly port: number;
  readonly child: ChildProcess;
  log(): string;
  stop(): Promise<void>;
}

export async function startSshd(keys: SshdKeys, port: number): Promise<RunningSshd> {
  // OpenSSH's privilege-separation directory is fixed at build time; Debian's service unit creates it,
  // a container without systemd does not.
  mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  const config = join(keys.dir, 'sshd_config');
  writeFileSync(config, [
    `HostKey ${join(keys.dir, 'host_ed25519')}`,
    'ListenAddress 127.0.0.1',
    `AuthorizedKeysFile ${join(keys.dir, 'authorized_keys')}`,
    `PidFile ${join(keys.dir, 'sshd.pid')}`,
    'UsePAM no',
    'StrictModes no',
    'PermitRootLogin prohibit-password',
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'PubkeyAuthentication yes',
    process.env.SSHD_LOGLEVEL ? 'LogLevel ' + process.env.SSHD_LOGLEVEL : 'LogLevel ERROR',
    '',
  ].join('\n'));
  const child = spawn('/usr/sbin/sshd', ['-D', '-e', '-f', config, '-p', String(port)], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr?.on('data', (c: Buffer) => { log += c.toString(); });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
      process.kill(child.pid, 'SIGTERM');
      await exited;
    }
  };
  // Ready when the port accepts connections.
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`sshd exited: ${log}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => { s.destroy(); resolve(true); });
      s.on('error', () => resolve(false));
    });
    if (ok) break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`sshd did not listen on ${port}: ${log}`);
    }
    await new Promise((r) => setTimeout(r, 30));
  }
  return { port, child, log: () => log, stop };
}
