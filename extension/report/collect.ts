/**
 * `vlab report --run`: re-runs the benchmarks through the CLI itself (`node bin/vlab.js bench ... --json`)
 * and writes each one's output, unchanged, with its provenance into docs/report/data/. Nothing here makes
 * up a number: every value in the files is what the command printed.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { BootData, BootSample, ChatData, DataKind } from './data';
import { DATA_FILES } from './data';
import { provenance } from './provenance';

export interface CollectOptions {
  readonly repo: string;
  readonly dataDir: string;
  /** Short runs (a few hundred ms per point) for a quick refresh; otherwise the commands' defaults. */
  readonly quick: boolean;
  readonly env: NodeJS.ProcessEnv;
  readonly signal?: AbortSignal;
  readonly log: (line: string) => void;
}

export const CHAT_CLIENT_COUNTS = [2, 10, 25, 50, 100] as const;
const BOOTS_PER_BACKEND = 2;

function runVlab(opts: CollectOptions, args: readonly string[], env: NodeJS.ProcessEnv = opts.env): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [join(opts.repo, 'bin', 'vlab.js'), ...args], { cwd: opts.repo, env, stdio: ['ignore', 'pipe', 'pipe'], signal: opts.signal });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => {
      err += c.toString();
      for (const line of c.toString().split('\n')) if (line.trim()) opts.log(`  ${line}`);
    });
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolvePromise(out) : reject(new Error(`vlab ${args.join(' ')} exited ${code}: ${err.split('\n').slice(-3).join(' ')}`))));
  });
}

function write(opts: CollectOptions, kind: DataKind, data: unknown): void {
  const file = join(opts.dataDir, DATA_FILES[kind]);
  writeFileSync(file, `${JSON.stringify(data, null, 2)}\n`);
  opts.log(`wrote ${file}`);
}

async function collectJson(opts: CollectOptions, kind: 'e2e' | 'backend', args: readonly string[]): Promise<void> {
  const prov = provenance(opts.repo);
  opts.log(`vlab ${args.join(' ')}`);
  const result: unknown = JSON.parse(await runVlab(opts, args));
  write(opts, kind, { kind, provenance: prov, command: args, result });
}

async function collectChat(opts: CollectOptions): Promise<void> {
  const prov = provenance(opts.repo);
  const runs: Array<ChatData['result'][number]> = [];
  for (const clients of CHAT_CLIENT_COUNTS) {
    const args = ['chat', 'bench', '--clients', String(clients), '--messages', opts.quick ? '20' : '100', '--json'];
    opts.log(`vlab ${args.join(' ')}`);
    runs.push({ command: args, rows: JSON.parse(await runVlab(opts, args)) as ChatData['result'][number]['rows'] });
  }
  write(opts, 'chat', { kind: 'chat', provenance: prov, command: ['chat', 'bench', '--clients', CHAT_CLIENT_COUNTS.join('|'), '--json'], result: runs });
}

async function collectBoot(opts: CollectOptions): Promise<void> {
  const prov = provenance(opts.repo);
  const samples: BootSample[] = [];
  for (const backend of ['builtin', 'ts']) {
    for (let i = 0; i < BOOTS_PER_BACKEND; i++) {
      const stateDir = mkdtempSync(join(tmpdir(), 'vlab-report-boot-'));
      const env = { ...opts.env, VLAB_STATE_DIR: stateDir };
      const load1 = Math.round(loadavg()[0] * 100) / 100;
      try {
        opts.log(`vlab up --backend ${backend} --guest-driver none (${i + 1}/${BOOTS_PER_BACKEND})`);
        await runVlab(opts, ['up', '--backend', backend, '--guest-driver', 'none'], env);
        const status = JSON.parse(await runVlab(opts, ['status', '--json'], env)) as { bootSec?: number };
        const uname = (await runVlab(opts, ['ssh', '--', 'uname', '-r'], env)).trim();
        if (typeof status.bootSec !== 'number') throw new Error('vlab status --json has no bootSec');
        samples.push({ backend, bootSec: status.bootSec, guestKernel: uname, load1 });
      } finally {
        await runVlab(opts, ['down'], env).catch(() => undefined);
        rmSync(stateDir, { recursive: true, force: true });
      }
    }
  }
  const data: BootData = { kind: 'boot', provenance: prov, command: ['up', '--backend', 'builtin|ts', '--guest-driver', 'none', '+', 'status', '--json'], result: samples };
  write(opts, 'boot', data);
}

export async function collect(opts: CollectOptions, kinds: readonly DataKind[]): Promise<void> {
  for (const kind of kinds) {
    if (kind === 'e2e') await collectJson(opts, 'e2e', ['bench', 'e2e', '--json', '--ms', opts.quick ? '300' : '1500']);
    else if (kind === 'backend') await collectJson(opts, 'backend', ['bench', 'backend', '--json', '--seconds', opts.quick ? '0.3' : '1']);
    else if (kind === 'chat') await collectChat(opts);
    else await collectBoot(opts);
  }
}

export function repoRootFrom(dir: string): string {
  return resolve(dir);
}
