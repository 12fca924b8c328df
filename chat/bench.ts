/**
 * `vlab chat bench`: messages per second through a `vlab chat server` process with N clients (in
 * this process) all in one room, each sending M lines that every other client receives. Runs the
 * plain (--crypto none) server as the reference in the same run, so the encrypted figure comes
 * with a ratio rather than an absolute number alone.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ChatConnection } from './connection';
import { generatePsk, writeKeyFile } from './keys';
import { connectTo } from './peer';
import type { ChatMode } from './protocol';
import { softwareProvider } from './provider';
import { DEFAULT_MAX_PENDING } from './server';

export interface BenchOptions {
  readonly clients: number;
  readonly messages: number;
  readonly modes: readonly ChatMode[];
  /**
   * The run fails when no client joined and no line arrived for this long (default 60 s): a
   * watchdog on progress, not a deadline on the whole run, so a loaded machine that is slow but
   * moving still finishes (the work of the sealed run grows with clients² × messages).
   */
  readonly stallMs?: number;
}

export interface BenchRow {
  readonly mode: ChatMode;
  readonly clients: number;
  /** Lines the server accepted. */
  readonly sent: number;
  /** Copies the server delivered (sent × (clients − 1)). */
  readonly delivered: number;
  readonly seconds: number;
  readonly sentPerSec: number;
  readonly deliveredPerSec: number;
}

function repoRoot(): string {
  const up2 = path.resolve(__dirname, '..', '..');
  return fs.existsSync(path.join(up2, 'bin', 'vlab.js')) ? up2 : path.resolve(__dirname, '..');
}

/** Handshakes the bench keeps in progress at once: an eighth of the server's pending cap. */
export const HANDSHAKES_IN_FLIGHT = DEFAULT_MAX_PENDING / 8;

async function benchOne(mode: ChatMode, opts: BenchOptions): Promise<BenchRow> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vlab-chat-bench-'));
  const psk = generatePsk();
  const keyFile = path.join(dir, 'bench.key');
  writeKeyFile(keyFile, psk);
  const args = ['chat', 'server', '--port', '0', '--max-queue', String(64 * 1024 * 1024), ...(mode === 'none' ? ['--crypto', 'none'] : ['--crypto', 'software', '--key-file', keyFile])];
  const server = spawn(process.execPath, [path.join(repoRoot(), 'bin', 'vlab.js'), ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  const conns: ChatConnection[] = [];
  let timer: NodeJS.Timeout | undefined;
  let stopped = false; // no new clients once the run has failed or ended
  try {
    const port = await new Promise<number>((resolve, reject) => {
      let err = '';
      server.stderr!.on('data', (c: Buffer) => {
        err += c.toString();
        const m = /listening on 127\.0\.0\.1:(\d+)/.exec(err);
        if (m) resolve(Number(m[1]));
      });
      server.once('exit', (code) => reject(new Error(`chat server exited (${code}): ${err}`)));
    });
    const expected = opts.messages * (opts.clients - 1);
    const stallMs = opts.stallMs ?? 60_000;
    let done = 0;
    let welcomed = 0;
    let received = 0;
    let allDone!: () => void;
    let failed!: (err: Error) => void;
    const finished = new Promise<void>((resolve, reject) => {
      allDone = resolve;
      failed = reject;
    });
    // The progress watchdog: re-armed by every welcome and every line any client receives.
    const stall = (): void => failed(new Error(`bench made no progress for ${stallMs} ms (${welcomed}/${opts.clients} clients joined, ${done} got every line, ${received} lines received)`));
    timer = setTimeout(stall, stallMs);
    finished.catch(() => undefined); // observed below; a failure during the joins must not go unhandled
    const provider = mode === 'sealed' ? softwareProvider() : undefined;
    // One client: resolves once it is in #lobby (its own welcome); a client that ends before every
    // line reached it fails the whole run with the server's reason instead of leaving it waiting.
    const join = (i: number): Promise<void> =>
      connectTo('127.0.0.1', port).then(
        (socket) =>
          new Promise<void>((resolve, reject) => {
            let got = 0;
            let inLobby = false;
            const conn = new ChatConnection(socket, { role: 'initiator', mode, ...(provider ? { psk, provider } : {}), hello: { nick: `b${i}`, role: 'client' } }, {
              onMessage: (m) => {
                if (m.t === 'msg') {
                  received++;
                  timer?.refresh();
                  if (++got === expected && ++done === opts.clients) allDone();
                }
                if (m.t === 'notice' && m.text.startsWith('welcome ') && !inLobby) {
                  inLobby = true;
                  welcomed++;
                  timer?.refresh();
                  resolve();
                }
              },
              onEnd: (outcome) => {
                if (got === expected) return; // the bench's own quit after its last line
                const why = outcome.kind === 'error' ? outcome.error.message : outcome.kind;
                const err = new Error(`client b${i} ended after ${got}/${expected} lines: ${why}`);
                reject(err);
                failed(err);
              },
            });
            conns.push(conn);
          }),
      );
    // Over DEFAULT_MAX_PENDING handshakes in progress the server evicts the oldest: at most
    // HANDSHAKES_IN_FLIGHT clients are between connect and welcome at any time.
    let next = 0;
    const joiner = async (): Promise<void> => {
      while (next < opts.clients && !stopped) await join(next++);
    };
    await Promise.race([Promise.all(Array.from({ length: Math.min(HANDSHAKES_IN_FLIGHT, opts.clients) }, joiner)), finished]);
    const text = 'benchmark line of about sixty-four bytes, typical for a chat...';
    const t0 = process.hrtime.bigint();
    for (let k = 0; k < opts.messages; k++) for (const c of conns) c.send({ t: 'say', text });
    await finished;
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    const sent = opts.messages * opts.clients;
    return { mode, clients: opts.clients, sent, delivered: sent * (opts.clients - 1), seconds, sentPerSec: sent / seconds, deliveredPerSec: (sent * (opts.clients - 1)) / seconds };
  } finally {
    stopped = true;
    clearTimeout(timer);
    for (const c of conns) c.quit();
    server.kill('SIGTERM'); // our own child
    await new Promise((r) => (server.exitCode !== null ? r(null) : server.once('exit', r)));
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

export async function runChatBench(opts: BenchOptions): Promise<BenchRow[]> {
  if (opts.clients < 2 || opts.clients > 200) throw new RangeError('clients must be 2..200');
  if (opts.messages < 1 || opts.messages > 100_000) throw new RangeError('messages must be 1..100000');
  const rows: BenchRow[] = [];
  for (const mode of opts.modes) rows.push(await benchOne(mode, opts));
  return rows;
}
