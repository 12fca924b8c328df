/** Shared by the lab integration suites: temp workspaces, CLI capture, leftover-process checks. */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type CliRun, runMainCaptured } from '../cli-capture';

export function tempWorkspace(prefix: string): { dir: string; cleanup(): void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export function runCli(args: string[], cwd: string, stdin?: string): Promise<CliRun> {
  return runMainCaptured(args, { cwd, env: { ...process.env, VLAB_STATE_DIR: '' }, stdin });
}

/**
 * Pids of live processes whose command line mentions `needle` (e.g. the lab's state folder), as is or
 * with commas doubled the way QEMU options spell them.
 */
export function processesMentioning(needle: string): number[] {
  const needles = [needle, needle.replace(/,/g, ',,')];
  const found: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      if (stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')) continue;
      const cmdline = readFileSync(`/proc/${name}/cmdline`, 'utf8');
      if (needles.some((n) => cmdline.includes(n))) found.push(Number(name));
    } catch {
      // exited meanwhile
    }
  }
  return found;
}

export function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen({ host: '127.0.0.1', port, exclusive: true }, () => server.close(() => resolve(true)));
  });
}
