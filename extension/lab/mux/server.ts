/**
 * The SSH mux: one process per running lab holding one authenticated SSH connection to the guest, so a
 * `vlab ssh`, `vlab driver …` or bench command opens a channel on it instead of doing its own TCP
 * connect, key exchange and login (like OpenSSH's ControlMaster).
 *
 * It listens on a unix socket created with mode 0600 inside the 0700 state folder (addon listenUnix: no
 * window before a chmod) and serves only its own uid (SO_PEERCRED at accept). Each client connection is
 * either a control connection (HELLO: kept open, closed by the mux when the SSH connection is gone) or
 * one channel (OPEN exec|shell, then stdin/resize/close frames in, stdout/stderr/exit frames out).
 * Frames are bounded (frames.ts); a malformed one ends that client's connection, never the mux.
 */
import * as net from 'node:net';
import * as vhost from '../../../addon/lib/vhost';
import type { GuestChannel, SessionTransport } from '../guest/ssh-transport';
import {
  C_CLOSE, C_HELLO, C_OPEN, C_RESIZE, C_STDIN, C_STDIN_EOF, type Frame, FrameDecoder, FrameError,
  S_ERROR, S_EXIT, S_OPENED, S_READY, S_STDERR, S_STDOUT, encodeData, encodeFrame, encodeJson, parseOpen, parseResize,
} from './frames';

/** A client must say what it wants within this time. */
const FIRST_FRAME_TIMEOUT_MS = 10_000;
/** Channels open at once (a runaway client cannot open the guest's sshd limit away from everyone else). */
const MAX_CHANNELS = 64;
/** Our write buffer towards one client before its channel is paused. */
const MAX_BUFFERED_BYTES = 1 << 20;

export interface MuxServerEvents {
  readonly log?: (line: string) => void;
}

export class MuxServer {
  private server: net.Server | undefined;
  private readonly sockets = new Set<net.Socket>();
  private channels = 0;
  private closedResolve: (() => void) | undefined;
  /** Resolves once the SSH connection is gone and every client was let go. */
  readonly closed: Promise<void>;
  private transportOpen = true;
  private refusedPeers = 0;

  constructor(
    private readonly transport: SessionTransport,
    private readonly socketPath: string,
    private readonly events: MuxServerEvents = {},
  ) {
    this.closed = new Promise((resolve) => {
      this.closedResolve = resolve;
    });
    transport.onClose(() => {
      this.transportOpen = false;
      this.log('the SSH connection closed: the mux ends');
      this.stop();
    });
  }

  get peersRefused(): number {
    return this.refusedPeers;
  }

  /** Listens on the socket path (which must not exist). */
  async start(): Promise<void> {
    const server = net.createServer((socket) => this.accept(socket));
    this.server = server;
    await vhost.listenOwnerOnly(server, this.socketPath);
  }

  /** Stops listening, drops every client and ends the SSH connection. Idempotent. */
  stop(): void {
    this.server?.close();
    this.server = undefined;
    for (const s of this.sockets) s.destroy();
    if (this.transportOpen) this.transport.end();
    this.closedResolve?.();
  }

  private log(line: string): void {
    this.events.log?.(line);
  }

  private accept(socket: net.Socket): void {
    const fd = (socket as unknown as { _handle?: { fd?: unknown } })._handle?.fd;
    let problem: string | undefined = 'no fd for the accepted connection';
    if (typeof fd === 'number' && fd >= 0) {
      try {
        const { uid, pid } = vhost.peerCred(fd);
        const own = process.geteuid?.() ?? -1;
        problem = uid === own ? undefined : `peer pid ${pid} runs as uid ${uid}, not ${own}`;
      } catch (err) {
        problem = `no peer credentials (${(err as Error).message})`;
      }
    }
    if (problem || !this.transportOpen) {
      if (problem) {
        this.refusedPeers++;
        this.log(`refusing a client: ${problem}`);
      }
      socket.destroy();
      return;
    }
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
    socket.on('error', () => undefined);
    const decoder = new FrameDecoder();
    const first = setTimeout(() => socket.destroy(), FIRST_FRAME_TIMEOUT_MS);
    let role: 'control' | ChannelLink | undefined;
    socket.on('data', (chunk: Buffer) => {
      let frames: Frame[];
      try {
        frames = decoder.feed(chunk);
      } catch (err) {
        this.log(`dropping a client: ${(err as Error).message}`);
        socket.destroy();
        return;
      }
      for (const frame of frames) {
        if (socket.destroyed) return;
        try {
          if (role === undefined) {
            clearTimeout(first);
            role = this.begin(socket, frame);
          } else if (role === 'control') {
            throw new FrameError('a control connection sends nothing after HELLO');
          } else {
            role.onFrame(frame);
          }
        } catch (err) {
          this.log(`dropping a client: ${(err as Error).message}`);
          socket.destroy();
          return;
        }
      }
    });
    socket.once('close', () => clearTimeout(first));
  }

  private begin(socket: net.Socket, frame: Frame): 'control' | ChannelLink {
    if (frame.type === C_HELLO) {
      socket.write(encodeFrame(S_READY));
      return 'control';
    }
    if (frame.type !== C_OPEN) throw new FrameError(`expected HELLO or OPEN, got 0x${frame.type.toString(16)}`);
    const request = parseOpen(frame.payload);
    if (this.channels >= MAX_CHANNELS) {
      socket.end(encodeJson(S_ERROR, { message: `the mux has ${MAX_CHANNELS} channels open already` }));
      return new ChannelLink(socket);
    }
    this.channels++;
    const link = new ChannelLink(socket);
    // Nothing more is read until the channel is open (what already arrived waits in the link, bounded).
    socket.pause();
    socket.once('close', () => {
      this.channels--;
      link.clientGone();
    });
    const opened = (err: Error | undefined, ch?: GuestChannel): void => link.opened(err, ch);
    if (request.kind === 'exec') this.transport.exec(request.command, request.pty, opened);
    else this.transport.shell(request.pty, opened);
    return link;
  }
}

/** One client connection bound to one SSH channel. */
class ChannelLink {
  private channel: GuestChannel | undefined;
  private exit: object | undefined;
  private pendingFrames: Frame[] = [];
  private gone = false;

  constructor(private readonly socket: net.Socket) {}

  opened(err: Error | undefined, ch: GuestChannel | undefined): void {
    if (err || !ch) {
      if (!this.gone) this.socket.end(encodeJson(S_ERROR, { message: `SSH exec refused: ${err?.message ?? 'no channel'}` }));
      return;
    }
    this.channel = ch;
    if (this.gone) {
      ch.close();
      return;
    }
    this.socket.write(encodeFrame(S_OPENED));
    this.socket.resume();
    const relay = (type: number, stream: NodeJS.ReadableStream) => (data: Buffer): void => {
      for (const f of encodeData(type, data)) this.socket.write(f);
      if (this.socket.writableLength > MAX_BUFFERED_BYTES) {
        stream.pause();
        this.socket.once('drain', () => stream.resume());
      }
    };
    ch.on('data', relay(S_STDOUT, ch));
    ch.stderr.on('data', relay(S_STDERR, ch.stderr));
    ch.on('error', () => undefined);
    ch.on('exit', (code: number | null, signalName?: string) => {
      this.exit = typeof code === 'number' ? { code } : { signal: typeof signalName === 'string' ? signalName : 'unknown' };
    });
    ch.once('close', () => {
      if (this.gone) return;
      if (this.exit) this.socket.write(encodeJson(S_EXIT, this.exit));
      this.socket.end();
    });
    // Wait for the client's stdin to drain into the channel before taking more from the socket.
    ch.on('drain', () => this.socket.resume());
    const early = this.pendingFrames;
    this.pendingFrames = [];
    for (const f of early) this.onFrame(f);
  }

  onFrame(frame: Frame): void {
    const ch = this.channel;
    if (!ch) {
      // Frames that came in the same read as OPEN wait for the channel (the socket is paused meanwhile).
      if (this.pendingFrames.length >= 64) throw new FrameError('too many frames before the channel opened');
      this.pendingFrames.push(frame);
      return;
    }
    switch (frame.type) {
      case C_STDIN:
        if (!ch.write(frame.payload)) this.socket.pause();
        return;
      case C_STDIN_EOF:
        ch.end();
        return;
      case C_RESIZE: {
        const { rows, cols } = parseResize(frame.payload);
        ch.setWindow(rows, cols, 0, 0);
        return;
      }
      case C_CLOSE:
        ch.close();
        return;
      default:
        throw new FrameError(`unexpected frame 0x${frame.type.toString(16)} on a channel`);
    }
  }

  /** The client went away: its channel goes too. */
  clientGone(): void {
    this.gone = true;
    this.channel?.close();
  }
}
