/**
 * The chat soak (issue 10): a `vlab chat server` child process and, in this process, honest
 * clients chatting in rooms plus slowloris, flooding, idle and wrong-key clients. Used by
 * chat-soak.test.ts on the host and, through `vlab ssh`, in the lab guest (server on /dev/crypto):
 *   node out/test/integration/chat-soak-run.js '<json SoakOptions>'   → one JSON SoakResult line
 * With `holdAfterDrain`, it prints "SOAK-DRAINED" once every client is gone and waits for
 * `releaseFile` to appear before stopping the server (the host counts device sessions in between).
 */
import { spawn } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { ChatConnection, type ConnectionOptions } from '../../chat/connection';
import { generatePsk, writeKeyFile } from '../../chat/keys';
import type { ChatMessage } from '../../chat/messages';
import { softwareProvider } from '../../chat/provider';

export interface SoakOptions {
  readonly honest: number;
  readonly rooms: number;
  /** Half trickle a HELLO (closed by the handshake timeout), half trickle a frame after the handshake (idle timeout). */
  readonly slowloris: number;
  readonly flooders: number;
  /** Half never send a byte (handshake timeout), half go silent after the handshake (idle timeout). */
  readonly idle: number;
  readonly wrongKey: number;
  readonly durationMs: number;
  /** Mean gap between an honest client's lines. */
  readonly chatEveryMs: number;
  readonly serverCrypto: 'software' | 'cryptodev';
  readonly handshakeTimeoutS: number;
  /** The server's HELLO deadline (default: the server's, 2 s). */
  readonly helloTimeoutS?: number;
  readonly idleTimeoutS: number;
  readonly rate: number;
  readonly burst: number;
  /** A flooder keeps writing while less than this is unsent on its socket. */
  readonly floodBufferBytes: number;
  readonly holdAfterDrain?: boolean;
  /** With holdAfterDrain: the server stops once this file exists (bounded: 60 s). */
  readonly releaseFile?: string;
}

export interface SoakResult {
  /** Connecting the honest clients and flooders, before the timed part. */
  readonly setupMs: number;
  readonly honestClients: number;
  readonly honestDisconnected: string[];
  /** How long the honest clients only read after the chat (the drain): longer than the idle timeout. */
  readonly lurkedMs: number;
  /** Keepalives the honest clients sent. */
  readonly honestPingsSent: number;
  /** The end of the server's log when an honest client was disconnected. */
  readonly serverLogTail?: string;
  readonly linesSent: number;
  readonly expectedDeliveries: number;
  readonly delivered: number;
  readonly missing: string[];
  readonly floodLinesSeenByHonest: number;
  readonly slowlorisClosedByTimeout: number;
  readonly idleClosedByTimeout: number;
  readonly attackerClosesOther: string[];
  readonly wrongKeyAttempts: number;
  readonly wrongKeyRefused: number;
  readonly serverPeakRssMb: number;
  readonly serverRssSamplesMb: number[];
  readonly serverAlive: boolean;
  readonly serverExit: number | null;
  readonly serverStats: Record<string, number> | undefined;
  readonly serverStartup: string;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function repoRoot(): string {
  return path.resolve(__dirname, '..', '..', '..');
}

function vmKb(pid: number, field: 'VmHWM' | 'VmRSS'): number {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/** Every client, honest or not, connects from 127.0.0.1: the source address isolates nobody (F5). */
function connectFrom(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port, localAddress: '127.0.0.1' });
    s.once('connect', () => {
      s.removeAllListeners('error');
      resolve(s);
    });
    s.once('error', reject);
  });
}

/** Runs the soak; if it fails half-way, its server child, timers and sockets are ended before the error is thrown. */
export async function runSoak(o: SoakOptions): Promise<SoakResult> {
  const cleanups: Array<() => void> = [];
  try {
    return await soakBody(o, (f) => cleanups.push(f));
  } catch (err) {
    for (const f of cleanups.reverse()) {
      try {
        f();
      } catch {
        // keep cleaning up
      }
    }
    throw err;
  }
}

async function soakBody(o: SoakOptions, onFailure: (cleanup: () => void) => void): Promise<SoakResult> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vlab-chat-soak-'));
  const psk = generatePsk();
  const keyFile = path.join(dir, 'soak.key');
  writeKeyFile(keyFile, psk);
  const args = [
    path.join(repoRoot(), 'bin', 'vlab.js'), 'chat', 'server', '--port', '0', '--crypto', o.serverCrypto, '--key-file', keyFile,
    '--handshake-timeout', String(o.handshakeTimeoutS), '--idle-timeout', String(o.idleTimeoutS),
    '--rate', String(o.rate), '--burst', String(o.burst), '--max-clients', '512',
    ...(o.helloTimeoutS !== undefined ? ['--hello-timeout', String(o.helloTimeoutS)] : []),
  ];
  const server = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  onFailure(() => fs.rmSync(dir, { recursive: true, force: true }));
  onFailure(() => server.exitCode === null && server.kill('SIGKILL')); // our own child
  let serverErr = '';
  const serverExited = new Promise<number | null>((r) => server.once('exit', (code) => r(code)));
  server.stderr!.on('data', (c: Buffer) => {
    serverErr += c.toString();
    if (serverErr.length > 4_000_000) serverErr = serverErr.slice(-2_000_000);
  });
  const port = await new Promise<number>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`chat server did not start: ${serverErr}`)), 60_000);
    const check = (): void => {
      const m = /listening on 127\.0\.0\.1:(\d+)/.exec(serverErr);
      if (m) {
        clearTimeout(t);
        resolve(Number(m[1]));
      }
    };
    server.stderr!.on('data', check);
    server.once('exit', () => reject(new Error(`chat server exited: ${serverErr}`)));
  });
  const serverStartup = serverErr.split('\n')[0] ?? '';
  const provider = softwareProvider();
  let stopping = false;
  const rss: number[] = [];
  const sampler = setInterval(() => rss.push(Math.round(vmKb(server.pid!, 'VmRSS') / 1024)), 2000);
  onFailure(() => clearInterval(sampler));
  onFailure(() => provider.close());
  onFailure(() => (stopping = true));

  /** `keepalive: false` is a client program that sends no keepalive (the idle attackers). */
  const open = (nick: string, key: Buffer, onMessage?: (m: ChatMessage) => void, keepalive = true): Promise<{ conn: ChatConnection; ended: Promise<string> }> =>
    connectFrom(port).then((socket) => {
      let endResolve!: (s: string) => void;
      const ended = new Promise<string>((r) => (endResolve = r));
      const opts: ConnectionOptions & Record<string, unknown> = { role: 'initiator', mode: 'sealed', psk: key, provider, hello: { nick, role: 'client' }, keepalive };
      const conn = new ChatConnection(socket, opts, {
        ...(onMessage ? { onMessage } : {}),
        onEnd: (out) => endResolve(out.kind === 'error' ? out.error.message : out.kind),
      });
      return { conn, ended };
    });
  const welcomed = (conn: ChatConnection, got: () => ChatMessage[]): Promise<void> =>
    new Promise((resolve, reject) => {
      const t0 = Date.now();
      const poll = (): void => {
        if (got().some((m) => m.t === 'notice' && m.text.startsWith('welcome '))) resolve();
        else if (Date.now() - t0 > 30_000 || (!conn.isOpen && Date.now() - t0 > 1000 && conn.socket.destroyed)) reject(new Error('no welcome'));
        else setTimeout(poll, 20);
      };
      poll();
    });

  // Honest clients: in rooms, chatting at random intervals; every line they get is recorded.
  interface Honest {
    readonly nick: string;
    readonly room: string;
    conn: ChatConnection;
    readonly got: Set<string>;
    floodSeen: number;
    all: ChatMessage[];
    endedWhy: string | undefined;
  }
  const honest: Honest[] = [];
  onFailure(() => honest.forEach((h) => h.conn.socket.destroy()));
  const setupStart = Date.now();
  const roomOf = (i: number): string => `#r${i % o.rooms}`;
  const WAVE = 32; // connected together (under the server's 64 pending handshakes)
  for (let wave = 0; wave < o.honest; wave += WAVE) {
    await Promise.all(
      Array.from({ length: Math.min(WAVE, o.honest - wave) }, async (_, k) => {
        const i = wave + k;
        const h: Honest = { nick: `h${i}`, room: roomOf(i), conn: undefined as unknown as ChatConnection, got: new Set(), floodSeen: 0, all: [], endedWhy: undefined };
        const { conn, ended } = await open(h.nick, psk, (m) => {
          if (m.t === 'msg' && m.from.startsWith('h')) h.got.add(m.text);
          else if (m.t === 'msg') h.floodSeen++;
          else if (h.all.length < 50) h.all.push(m);
        });
        h.conn = conn;
        void ended.then((why) => {
          if (!stopping) h.endedWhy = why;
        });
        await welcomed(conn, () => h.all);
        conn.send({ t: 'say', text: `/join ${h.room}` });
        conn.send({ t: 'say', text: '/part #lobby' });
        honest.push(h); // from here on it only reads until the chat starts: the protocol's keepalive keeps it
      }),
    );
  }
  // Flooders: valid key, in the honest rooms, writing as fast as their socket takes it.
  const flooders: ChatConnection[] = [];
  const floodPerTick = Math.max(4, Math.floor(o.floodBufferBytes / 256)); // lines per 50 ms
  onFailure(() => flooders.forEach((f) => f.socket.destroy()));
  for (let i = 0; i < o.flooders; i++) {
    const f = await open(`f${i}`, psk);
    flooders.push(f.conn);
    const room = roomOf(i);
    const line = `flood ${'z'.repeat(200)}`;
    let sent = 0;
    const pump = (): void => {
      if (stopping || f.conn.socket.destroyed) return;
      if (f.conn.isOpen) {
        if (sent === 0) {
          f.conn.send({ t: 'say', text: `/join ${room}` });
          sent++;
        }
        // Bounded per tick: the kernel takes MBs before writableLength grows, and sealing that much
        // in one turn stalled this whole process for 20 s in the emulated guest (every honest
        // client's keepalive with it).
        for (let n = 0; n < floodPerTick && f.conn.socket.writableLength < o.floodBufferBytes; n++) f.conn.send({ t: 'say', text: `${sent++} ${line}` });
      }
      setTimeout(pump, 50);
    };
    pump();
  }
  // Wait until every honest client (and flooder) is in its room before anyone chats.
  await sleep(1500);

  const attackerOther: string[] = [];
  /** Every attacker socket still open, destroyed when the timed part ends. */
  const live = new Set<net.Socket>();
  onFailure(() => live.forEach((sock) => sock.destroy()));
  const track = (sock: net.Socket): boolean => {
    if (stopping) {
      sock.destroy();
      return false;
    }
    live.add(sock);
    sock.once('close', () => live.delete(sock));
    return true;
  };
  let slowClosed = 0;
  let idleClosed = 0;
  const timeoutRe = /handshake not completed within|idle for \d+ s/;
  // Pre-auth attackers: raw sockets; the server's ALERT reason arrives in the clear.
  const rawAttacker = (kind: 'slow' | 'idle'): void => {
    if (stopping) return;
    connectFrom(port).then((s) => {
      if (!track(s)) return;
      let seen = '';
      s.on('data', (c: Buffer) => (seen = (seen + c.toString('latin1')).slice(-400)));
      s.on('error', () => undefined);
      const hello = Buffer.from('0201000000000033010100', 'hex');
      let at = 0;
      const trickle = kind === 'slow' ? setInterval(() => at < hello.length && !s.destroyed && s.write(hello.subarray(at, ++at)), 1000) : undefined;
      s.once('close', () => {
        if (trickle) clearInterval(trickle);
        if (timeoutRe.test(seen)) kind === 'slow' ? slowClosed++ : idleClosed++;
        else if (!stopping) attackerOther.push(`${kind} pre-auth: ${seen.replace(/[^ -~]/g, '.').slice(-120)}`);
        if (!stopping) setTimeout(() => rawAttacker(kind), 200);
      });
    }, (err: Error) => attackerOther.push(`${kind} connect: ${err.message}`));
  };
  // Post-auth attackers: a real handshake, then a 64 KiB frame header trickled (slow) or silence (idle).
  const authedAttacker = (kind: 'slow' | 'idle', n: number): void => {
    if (stopping) return;
    open(`${kind}${n}`, psk, undefined, false).then(({ conn, ended }) => {
      track(conn.socket);
      let trickle: NodeJS.Timeout | undefined;
      const started = setInterval(() => {
        if (!conn.isOpen) return;
        clearInterval(started);
        if (kind === 'slow') {
          const header = Buffer.from([2, 4, 0, 0, 0, 0, 0xfe, 0x00]);
          conn.socket.write(header);
          trickle = setInterval(() => !conn.socket.destroyed && conn.socket.write(Buffer.from([0x41])), 500);
        }
      }, 50);
      void ended.then((why) => {
        clearInterval(started);
        if (trickle) clearInterval(trickle);
        if (timeoutRe.test(why)) kind === 'slow' ? slowClosed++ : idleClosed++;
        else if (!stopping) attackerOther.push(`${kind} post-auth: ${why}`);
        if (!stopping) setTimeout(() => authedAttacker(kind, n), 200);
      });
    }, (err: Error) => attackerOther.push(`${kind} connect: ${err.message}`));
  };
  for (let i = 0; i < o.slowloris; i++) i % 2 === 0 ? rawAttacker('slow') : authedAttacker('slow', i);
  for (let i = 0; i < o.idle; i++) i % 2 === 0 ? rawAttacker('idle') : authedAttacker('idle', i);
  // Wrong key: connect, fail authentication, try again.
  let wrongAttempts = 0;
  let wrongRefused = 0;
  const wrong = (n: number): void => {
    if (stopping) return;
    wrongAttempts++;
    open(`w${n}`, crypto.randomBytes(32)).then(({ conn, ended }) =>
      (track(conn.socket), ended).then((why) => {
        if (/authentication failed/.test(why)) wrongRefused++;
        else if (!stopping) attackerOther.push(`wrong key: ${why}`);
        if (!stopping) setTimeout(() => wrong(n), 500);
      }), (err: Error) => attackerOther.push(`wrong key connect: ${err.message}`));
  };
  for (let i = 0; i < o.wrongKey; i++) wrong(i);

  // Chat.
  const setupMs = Date.now() - setupStart;
  const sentLines: Array<{ text: string; room: string; from: string }> = [];
  const chatEnd = Date.now() + o.durationMs;
  await Promise.all(
    honest.map(async (h) => {
      let seq = 0;
      await sleep(Math.random() * o.chatEveryMs);
      while (Date.now() < chatEnd && !h.endedWhy) {
        const text = `${h.nick}-${seq++}`;
        if (h.conn.send({ t: 'say', text })) sentLines.push({ text, room: h.room, from: h.nick });
        await sleep(o.chatEveryMs * (0.5 + Math.random()));
      }
    }),
  );
  // Drain: every honest line to every other honest member of its room (bounded wait).
  const members = new Map<string, Honest[]>();
  for (const h of honest) members.set(h.room, [...(members.get(h.room) ?? []), h]);
  const expected = (): number => sentLines.reduce((n, l) => n + (members.get(l.room)!.length - 1), 0);
  const deliveredCount = (): number => sentLines.reduce((n, l) => n + members.get(l.room)!.filter((h) => h.nick !== l.from && h.got.has(l.text)).length, 0);
  stopping = true; // attackers stop reconnecting; flooders stop writing
  for (const f of flooders) f.socket.destroy();
  for (const sock of live) sock.destroy();
  // The honest clients now only read (lurk) for longer than the idle timeout: the protocol's
  // keepalive must keep every one of them connected, and every line must still arrive.
  const drainStart = Date.now();
  const lurkEnd = drainStart + o.idleTimeoutS * 1000 + 5000;
  const drainEnd = Math.max(lurkEnd, drainStart + 30_000);
  while ((deliveredCount() < expected() || Date.now() < lurkEnd) && Date.now() < drainEnd) await sleep(200);
  const lurkedMs = Date.now() - drainStart;
  const missing: string[] = [];
  for (const l of sentLines) for (const h of members.get(l.room)!) if (h.nick !== l.from && !h.got.has(l.text) && missing.length < 20) missing.push(`${l.text} → ${h.nick}`);
  clearInterval(sampler);
  const serverAlive = server.exitCode === null;
  const peak = Math.round(vmKb(server.pid!, 'VmHWM') / 1024);
  const result = {
    setupMs,
    honestClients: honest.length,
    honestDisconnected: honest.filter((h) => h.endedWhy).map((h) => `${h.nick}: ${h.endedWhy}`),
    honestPingsSent: honest.reduce((n, h) => n + h.conn.pingsSent, 0),
    lurkedMs,
    linesSent: sentLines.length,
    expectedDeliveries: expected(),
    delivered: deliveredCount(),
    missing,
    floodLinesSeenByHonest: honest.reduce((n, h) => n + h.floodSeen, 0),
    slowlorisClosedByTimeout: slowClosed,
    idleClosedByTimeout: idleClosed,
    attackerClosesOther: attackerOther.slice(0, 20),
    wrongKeyAttempts: wrongAttempts,
    wrongKeyRefused: wrongRefused,
    serverPeakRssMb: peak,
    serverRssSamplesMb: rss,
    serverAlive,
  };
  for (const h of honest) h.conn.quit();
  // Every client gone: optionally hold the server up so the host can count device sessions.
  const drained = Date.now() + 15_000;
  while (Date.now() < drained) {
    const m = [...serverErr.matchAll(/client (\d+) .* gone:/g)].length;
    const c = [...serverErr.matchAll(/client (\d+) connected from/g)].length;
    if (m >= c) break;
    await sleep(200);
  }
  if (o.holdAfterDrain) {
    process.stdout.write('SOAK-DRAINED\n');
    const until = Date.now() + 60_000;
    while (Date.now() < until && !(o.releaseFile && fs.existsSync(o.releaseFile))) await sleep(200);
  }
  server.kill('SIGTERM'); // our own child
  const serverExit = await Promise.race([serverExited, sleep(10_000).then(() => (server.kill('SIGKILL'), null))]);
  const statsMatch = /stats (\{.*\})/.exec(serverErr);
  fs.rmSync(dir, { recursive: true, force: true });
  provider.close();
  const logTail = result.honestDisconnected.length > 0 ? { serverLogTail: serverErr.slice(-4000) } : {};
  return { ...result, ...logTail, serverExit, serverStats: statsMatch ? (JSON.parse(statsMatch[1]!) as Record<string, number>) : undefined, serverStartup };
}

if (require.main === module) {
  runSoak(JSON.parse(process.argv[2] ?? '{}') as SoakOptions).then(
    (r) => {
      process.stdout.write(`SOAK-RESULT ${JSON.stringify(r)}\n`);
      process.exit(0);
    },
    (err: Error) => {
      process.stderr.write(`soak failed: ${err.stack ?? err.message}\n`);
      process.exit(1);
    },
  );
}
