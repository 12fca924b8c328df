/**
 * One side of a two-way chat on a terminal or a pipe: lines typed (or piped) go to the peer, what
 * arrives is printed with sender and time. stdout carries only conversation lines; status and
 * errors go to stderr, so pipe mode is easy to script.
 */
import * as net from 'node:net';
import * as readline from 'node:readline';
import { ChatConnection, type Outcome } from './connection';
import type { KeySource, Role } from './keys';
import { type ChatMessage, MAX_TEXT_CHARS, type PeerRole } from './messages';
import { type ChatMode, sanitize } from './protocol';
import type { CryptoProvider } from './provider';

export interface ChatIo {
  readonly stdin: NodeJS.ReadableStream;
  readonly stdout: NodeJS.WritableStream;
  readonly stderr: NodeJS.WritableStream;
  /** Prompt and redraw (a TTY); otherwise plain line-by-line pipe mode. */
  readonly interactive: boolean;
  readonly signal?: AbortSignal;
}

export interface SessionOptions {
  readonly role: Role;
  readonly mode: ChatMode;
  readonly psk?: Buffer;
  readonly key?: KeySource;
  readonly provider?: CryptoProvider;
  readonly nick: string;
  readonly as: PeerRole;
  /** Clock for the time shown beside each line (tests pin it). */
  readonly now?: () => Date;
}

function hhmmss(d: Date): string {
  return d.toTimeString().slice(0, 8);
}

export function formatIncoming(m: ChatMessage, peerNick: string, at: Date): string {
  const t = `[${hhmmss(at)}]`;
  switch (m.t) {
    case 'say':
      return `${t} <${sanitize(peerNick)}> ${sanitize(m.text)}`;
    case 'msg':
      return m.to.startsWith('#') ? `${t} ${sanitize(m.to)} <${sanitize(m.from)}> ${sanitize(m.text)}` : `${t} *${sanitize(m.from)}* ${sanitize(m.text)}`;
    case 'notice':
      return `${t} -!- ${sanitize(m.text)}`;
    case 'error':
      return `${t} !!! ${sanitize(m.text)}`;
  }
}

/** Runs a conversation on a connected socket until /quit, Ctrl-D, the peer leaving or an error. Returns the exit code. */
export function runChatSession(socket: net.Socket, opts: SessionOptions, io: ChatIo): Promise<number> {
  return new Promise((resolve) => {
    const now = opts.now ?? (() => new Date());
    let rl: readline.Interface | undefined;
    let ready = false;
    let quitWhenReady = false;

    const print = (line: string): void => {
      if (io.interactive && rl) {
        readline.clearLine(io.stdout, 0);
        readline.cursorTo(io.stdout, 0);
        io.stdout.write(`${line}\n`);
        rl.prompt(true);
      } else {
        io.stdout.write(`${line}\n`);
      }
    };
    const status = (line: string): void => {
      if (io.interactive && rl) print(line);
      else io.stderr.write(`${line}\n`);
    };

    const conn = new ChatConnection(
      socket,
      { role: opts.role, mode: opts.mode, ...(opts.psk ? { psk: opts.psk } : {}), ...(opts.key ? { key: opts.key } : {}), ...(opts.provider ? { provider: opts.provider } : {}), hello: { nick: opts.nick, role: opts.as } },
      {
        onReady(peer) {
          ready = true;
          status(`-!- connected to ${peer.nick}${peer.role === 'server' ? ' (chat server)' : ''}; /quit or Ctrl-D leaves`);
          if (quitWhenReady) conn.quit();
        },
        onMessage(m) {
          print(formatIncoming(m, conn.peer?.nick ?? 'peer', now()));
        },
        onEnd(outcome: Outcome) {
          rl?.close();
          io.signal?.removeEventListener('abort', onAbort);
          if (outcome.kind === 'bye') {
            status(`-!- ${conn.peer?.nick ?? 'peer'} left the chat`);
            resolve(0);
          } else if (outcome.kind === 'quit') {
            resolve(0);
          } else {
            io.stderr.write(`chat: ${outcome.error.message}\n`);
            resolve(1);
          }
        },
      },
    );

    const leave = (): void => {
      if (ready) conn.quit();
      else quitWhenReady = true;
    };
    const onAbort = (): void => leave();
    io.signal?.addEventListener('abort', onAbort, { once: true });

    rl = readline.createInterface({ input: io.stdin, ...(io.interactive ? { output: io.stdout, terminal: true, prompt: '> ' } : {}) });
    rl.on('line', (line: string) => {
      const text = line.replace(/\r$/, '');
      if (text.trim() === '/quit') {
        leave();
        return;
      }
      if (text.length === 0) return;
      if (text.length > MAX_TEXT_CHARS) {
        status(`!!! line too long (${text.length} characters, limit ${MAX_TEXT_CHARS}): not sent`);
        return;
      }
      conn.send({ t: 'say', text });
      if (io.interactive && rl) {
        // Replace the echoed "> text" with the same "[time] <nick> text" shape the peer sees.
        readline.moveCursor(io.stdout, 0, -1);
        readline.clearLine(io.stdout, 0);
        io.stdout.write(`[${hhmmss(now())}] <${opts.nick}> ${sanitize(text)}\n`);
        rl.prompt();
      }
    });
    // Ctrl-D on a TTY, end of input on a pipe.
    rl.on('close', () => leave());
    if (io.interactive) rl.prompt();
  });
}

/** Only loopback and QEMU user-net addresses are allowed (host 10.0.2.2 from the guest). */
export function checkAllowedHost(host: string): void {
  const ok = host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host) || /^10\.0\.2\.\d{1,3}$/.test(host);
  if (!ok) throw new Error(`address ${host} is not allowed: use 127.0.0.1 (or 10.0.2.2 from the lab guest)`);
}

/** Listens, accepts exactly one peer, stops listening. `onListening` learns the real port (port 0 picks a free one). */
export function acceptOne(host: string, port: number, onListening: (addr: net.AddressInfo) => void, signal?: AbortSignal): Promise<net.Socket> {
  checkAllowedHost(host);
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    const onAbort = (): void => {
      server.close();
      reject(new Error('cancelled while waiting for a peer'));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    server.once('error', (err) => reject(new Error(`cannot listen on ${host}:${port}: ${err.message}`)));
    server.once('connection', (socket) => {
      signal?.removeEventListener('abort', onAbort);
      server.close();
      resolve(socket);
    });
    server.listen(port, host, () => onListening(server.address() as net.AddressInfo));
  });
}

export function connectTo(host: string, port: number, timeoutMs = 10_000): Promise<net.Socket> {
  checkAllowedHost(host);
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`cannot connect to ${host}:${port}: timed out after ${timeoutMs} ms`));
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.removeAllListeners('error');
      resolve(socket);
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`cannot connect to ${host}:${port}: ${err.message}`));
    });
  });
}

export function parseHostPort(spec: string): { host: string; port: number } {
  const m = /^(.+):(\d{1,5})$/.exec(spec);
  const port = m ? Number(m[2]) : NaN;
  if (!m || port < 1 || port > 65535) throw new Error(`expected HOST:PORT, got "${spec}"`);
  return { host: m[1]!, port };
}
