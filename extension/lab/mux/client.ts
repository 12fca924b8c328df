/**
 * The client side of the SSH mux (server.ts): an SshSession whose channels go through the mux's unix
 * socket instead of a connection of its own. The session lives as long as its control connection; each
 * exec or shell is one more connection to the socket, carrying one channel.
 *
 * The socket lies in the state folder, which the guest can write (the workspace is shared): so the peer
 * is checked before anything is sent — its uid must be ours and its pid the mux's recorded pid.
 */
import * as net from 'node:net';
import { Duplex, Readable } from 'node:stream';
import * as vhost from '../../../addon/lib/vhost';
import { SshSession } from '../guest/ssh-session';
import type { ChannelCallback, GuestChannel, SessionTransport, TransportPty } from '../guest/ssh-transport';
import {
  C_CLOSE, C_HELLO, C_OPEN, C_RESIZE, C_STDIN, C_STDIN_EOF, type Frame, FrameDecoder, FrameError,
  S_ERROR, S_EXIT, S_OPENED, S_READY, S_STDERR, S_STDOUT, encodeData, encodeFrame, encodeJson, parseError, parseExit,
} from './frames';

const DEFAULT_CONNECT_TIMEOUT_MS = 3_000;

export class MuxError extends Error {
  override readonly name = 'MuxError';
}

/** Connects a unix socket and checks who serves it (uid ours; pid the expected one when given). */
function connectChecked(socketPath: string, expectedPid: number | undefined, timeoutMs: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(socketPath);
    const timer = setTimeout(() => fail(new MuxError(`the mux at ${socketPath} did not accept within ${timeoutMs} ms`)), timeoutMs);
    const fail = (err: Error): void => {
      clearTimeout(timer);
      socket.destroy();
      reject(err);
    };
    socket.once('error', fail);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.off('error', fail);
      socket.on('error', () => undefined);
      const fd = (socket as unknown as { _handle?: { fd?: unknown } })._handle?.fd;
      try {
        if (typeof fd !== 'number' || fd < 0) throw new MuxError('no fd for the mux connection');
        const { uid, pid } = vhost.peerCred(fd);
        const own = process.geteuid?.() ?? -1;
        if (uid !== own) throw new MuxError(`the mux socket is served by uid ${uid}, not ${own}`);
        if (expectedPid !== undefined && pid !== expectedPid) throw new MuxError(`the mux socket is served by pid ${pid}, not the lab's mux (pid ${expectedPid})`);
      } catch (err) {
        fail(err instanceof MuxError ? err : new MuxError(`cannot check the mux's peer: ${(err as Error).message}`));
        return;
      }
      resolve(socket);
    });
  });
}

/** Reads frames off a socket until the handler returns; a malformed frame ends the socket. */
function onFrames(socket: net.Socket, handle: (frame: Frame) => void): void {
  const decoder = new FrameDecoder();
  socket.on('data', (chunk: Buffer) => {
    try {
      for (const frame of decoder.feed(chunk)) {
        if (socket.destroyed) return;
        handle(frame);
      }
    } catch {
      socket.destroy();
    }
  });
}

/** One channel over one mux connection, shaped like ssh2's ClientChannel (what SshSession uses of it). */
class MuxChannel extends Duplex implements GuestChannel {
  readonly stderr: Readable;
  private opened = false;
  private outEnded = false;
  private errEnded = false;

  constructor(private readonly socket: net.Socket, callback: ChannelCallback) {
    super();
    this.stderr = new Readable({ read: () => this.socket.resume() });
    let answered = false;
    const answer = (err: Error | undefined): void => {
      if (answered) return;
      answered = true;
      callback(err, this);
    };
    onFrames(socket, (frame) => {
      switch (frame.type) {
        case S_OPENED:
          this.opened = true;
          answer(undefined);
          return;
        case S_ERROR:
          answer(new MuxError(parseError(frame.payload)));
          socket.destroy();
          return;
        case S_STDOUT:
          if (!this.push(frame.payload)) socket.pause();
          return;
        case S_STDERR:
          if (!this.stderr.push(frame.payload)) socket.pause();
          return;
        case S_EXIT: {
          const exit = parseExit(frame.payload);
          if ('code' in exit) this.emit('exit', exit.code);
          else this.emit('exit', null, exit.signal);
          return;
        }
        default:
          throw new FrameError(`unexpected frame 0x${frame.type.toString(16)} from the mux`);
      }
    });
    socket.once('close', () => {
      if (!this.opened) {
        answer(new MuxError('the mux closed the connection before the channel opened'));
        return;
      }
      // Close only after whoever reads us has had every byte. A stream nobody ever read (readableFlowing
      // still null, e.g. a shell's stderr) is not waited for: ssh2's channel closes regardless too.
      this.outEnded = this.readableFlowing === null || this.readableEnded;
      this.errEnded = this.stderr.readableFlowing === null || this.stderr.readableEnded;
      const ended = (): void => {
        if (this.outEnded && this.errEnded) this.destroy();
      };
      this.once('end', () => {
        this.outEnded = true;
        ended();
      });
      this.stderr.once('end', () => {
        this.errEnded = true;
        ended();
      });
      this.push(null);
      this.stderr.push(null);
      ended();
    });
  }

  override _read(): void {
    this.socket.resume();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (this.socket.destroyed) return cb();
    const frames = encodeData(C_STDIN, Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk));
    for (let i = 0; i < frames.length - 1; i++) this.socket.write(frames[i]!);
    if (frames.length === 0) return cb();
    this.socket.write(frames[frames.length - 1]!, () => cb());
  }

  override _final(cb: (err?: Error | null) => void): void {
    if (!this.socket.destroyed) this.socket.write(encodeFrame(C_STDIN_EOF));
    cb();
  }

  close(): void {
    if (!this.socket.destroyed && this.socket.writable) this.socket.write(encodeFrame(C_CLOSE));
  }

  setWindow(rows: number, cols: number): void {
    if (!this.socket.destroyed && this.socket.writable) this.socket.write(encodeJson(C_RESIZE, { rows, cols }));
  }
}

/** The transport of a mux session: channels are new connections to the socket. */
class MuxTransport implements SessionTransport {
  private readonly channels = new Set<net.Socket>();

  constructor(
    private readonly control: net.Socket,
    private readonly socketPath: string,
    private readonly muxPid: number | undefined,
  ) {}

  private open(request: object, cb: ChannelCallback): void {
    connectChecked(this.socketPath, this.muxPid, DEFAULT_CONNECT_TIMEOUT_MS).then(
      (socket) => {
        if (this.control.destroyed) {
          socket.destroy();
          cb(new MuxError('the mux session is closed'));
          return;
        }
        this.channels.add(socket);
        socket.once('close', () => this.channels.delete(socket));
        new MuxChannel(socket, cb);
        socket.write(encodeJson(C_OPEN, request));
      },
      (err: Error) => cb(err),
    );
  }

  exec(command: string, pty: TransportPty | undefined, cb: ChannelCallback): void {
    this.open(pty ? { kind: 'exec', command, pty } : { kind: 'exec', command }, cb);
  }

  shell(pty: TransportPty, cb: ChannelCallback): void {
    this.open({ kind: 'shell', pty }, cb);
  }

  end(): void {
    this.control.destroy();
    for (const s of this.channels) s.destroy();
  }

  onClose(listener: () => void): void {
    this.control.once('close', listener);
  }
}

export interface MuxConnectOptions {
  /** The mux's recorded pid: the socket's peer must be this process. */
  readonly pid?: number;
  readonly timeoutMs?: number;
}

/** A session over the mux at socketPath; rejects with MuxError when it is not there or not ours. */
export async function connectMux(socketPath: string, opts: MuxConnectOptions = {}): Promise<SshSession> {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  const control = await connectChecked(socketPath, opts.pid, timeoutMs);
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => fail(new MuxError(`the mux did not answer within ${timeoutMs} ms`)), timeoutMs);
    const fail = (err: Error): void => {
      clearTimeout(timer);
      control.destroy();
      reject(err);
    };
    control.once('close', () => fail(new MuxError('the mux closed the connection (its SSH connection is gone?)')));
    onFrames(control, (frame) => {
      if (frame.type !== S_READY) throw new FrameError('expected READY');
      clearTimeout(timer);
      control.removeAllListeners('close');
      resolve();
    });
    control.write(encodeFrame(C_HELLO));
  });
  return new SshSession(new MuxTransport(control, socketPath, opts.pid));
}
