/** Shared helpers for the chat tests: in-process peers on 127.0.0.1 with port 0 and captured stdio. */
import * as net from 'node:net';
import { PassThrough } from 'node:stream';
import { acceptOne, connectTo, runChatSession, type SessionOptions } from '../../../chat/peer';
import { ChatConnection } from '../../../chat/connection';
import type { ChatMessage } from '../../../chat/messages';
import type { ChatMode } from '../../../chat/protocol';
import { softwareProvider } from '../../../chat/provider';

export interface Captured {
  readonly stream: PassThrough;
  text(): string;
  /** Resolves once the captured text matches. */
  waitFor(re: RegExp, timeoutMs?: number): Promise<void>;
}

export function capture(): Captured {
  const stream = new PassThrough();
  let text = '';
  const waiters = new Set<() => void>();
  stream.on('data', (c: Buffer) => {
    text += c.toString('utf8');
    for (const w of [...waiters]) w();
  });
  return {
    stream,
    text: () => text,
    waitFor(re, timeoutMs = 20_000) {
      return new Promise((resolve, reject) => {
        const check = (): void => {
          if (re.test(text)) {
            waiters.delete(check);
            clearTimeout(timer);
            resolve();
          }
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`timed out waiting for ${re} in:\n${text}`));
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
  };
}

export interface RunningPeer {
  readonly stdin: PassThrough;
  readonly stdout: Captured;
  readonly stderr: Captured;
  readonly socket: net.Socket;
  readonly exit: Promise<number>;
}

function runPeer(socket: net.Socket, opts: SessionOptions): RunningPeer {
  const stdin = new PassThrough();
  const stdout = capture();
  const stderr = capture();
  const exit = runChatSession(socket, opts, { stdin, stdout: stdout.stream, stderr: stderr.stream, interactive: false });
  return { stdin, stdout, stderr, socket, exit };
}

/** A listener (responder) and a connector (initiator) talking over loopback. */
export async function startPair(listen: Omit<SessionOptions, 'role' | 'as'>, connect: Omit<SessionOptions, 'role' | 'as'>): Promise<{ host: RunningPeer; guest: RunningPeer }> {
  let port = 0;
  const accepted = acceptOne('127.0.0.1', 0, (a) => (port = a.port));
  while (port === 0) await new Promise((r) => setImmediate(r));
  const client = await connectTo('127.0.0.1', port);
  const server = await accepted;
  return {
    host: runPeer(server, { ...listen, role: 'responder', as: 'peer' }),
    guest: runPeer(client, { ...connect, role: 'initiator', as: 'client' }),
  };
}

/** Accepts one raw connection and hands it to the test, plus a peer session on the other end. */
export async function peerAgainstRaw(opts: Omit<SessionOptions, 'role' | 'as'>): Promise<{ peer: RunningPeer; raw: net.Socket }> {
  let port = 0;
  const accepted = acceptOne('127.0.0.1', 0, (a) => (port = a.port));
  while (port === 0) await new Promise((r) => setImmediate(r));
  const raw = await connectTo('127.0.0.1', port);
  const peer = runPeer(await accepted, { ...opts, role: 'responder', as: 'peer' });
  return { peer, raw };
}

/** A chat client on a real socket that records every message it gets. */
export interface TestClient {
  conn: ChatConnection;
  got: ChatMessage[];
  ended: Promise<string>;
  say(text: string): void;
  waitFor(pred: (m: ChatMessage) => boolean, timeoutMs?: number): Promise<ChatMessage>;
}

export async function chatClient(port: number, nick: string, mode: ChatMode, psk?: Buffer): Promise<TestClient> {
  const socket = await connectTo('127.0.0.1', port);
  const got: ChatMessage[] = [];
  const waiters = new Set<() => void>();
  let endResolve!: (s: string) => void;
  const ended = new Promise<string>((r) => (endResolve = r));
  const conn = new ChatConnection(socket, { role: 'initiator', mode, ...(psk ? { psk, provider: softwareProvider() } : {}), hello: { nick, role: 'client' } }, {
    onMessage: (m) => {
      got.push(m);
      for (const w of [...waiters]) w();
    },
    onEnd: (o) => endResolve(o.kind === 'error' ? o.error.message : o.kind),
  });
  return {
    conn,
    got,
    ended,
    say: (text) => void conn.send({ t: 'say', text }),
    waitFor(pred, timeoutMs = 10_000) {
      return new Promise((resolve, reject) => {
        const check = (): void => {
          const m = got.find(pred);
          if (m) {
            waiters.delete(check);
            clearTimeout(timer);
            resolve(m);
          }
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`${nick}: timed out; got ${JSON.stringify(got.slice(-5))}`));
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
  };
}
