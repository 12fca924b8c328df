/**
 * The vhost-user socket: claims the path, listens, accepts one front-end at a time (of our own uid
 * only), runs the read loop over its {@link Connection} and hands each validated message to the
 * {@link FrontendHandler}. A malformed or refused message is logged with its name and the
 * connection is closed; the process lives and accepts the next front-end.
 */
import * as fs from 'node:fs';
import * as vhost from '../../addon/lib/vhost';
import { claimSocketPath } from './socket-path';
import { Connection, type Message } from './connection';
import { peerUidProblem } from './peer';
import { WireError, requestName } from './wire';

/** What the server asks of the protocol. */
export interface FrontendHandler {
  /** Handles one validated message; throws for a refusal (the connection is then closed). */
  handle(conn: Connection, msg: Message): void;
  /** A refused message's last word before the connection closes (REPLY_ACK's NACK). */
  refused(conn: Connection, err: WireError): void;
  /** The front-end is gone: everything it set up goes too. */
  disconnected(): void;
}

export class VhostUserServer {
  private listenFd = -1;
  private listenPoll: vhost.PollHandle | undefined;
  private conn: Connection | undefined;
  private connPoll: vhost.PollHandle | undefined;
  /** Only a socket this instance created is removed at stop (never another back-end's). */
  private ownsSocket = false;
  private readonly closeListeners: (() => void)[] = [];

  constructor(
    private readonly socketPath: string,
    private readonly handler: FrontendHandler,
    /** Counts connections refused at accept (telemetry's peersRefused). */
    private readonly counters: { peersRefused: number },
    private readonly log: (line: string) => void,
  ) {}

  /**
   * Creates the socket and listens. A stale socket file (nobody accepting) is replaced; a live one
   * (another back-end) or any other kind of file is left alone and start() fails.
   */
  start(): void {
    claimSocketPath(this.socketPath, `another back-end is listening on ${this.socketPath}`);
    this.listenFd = vhost.listenUnix(this.socketPath, 4);
    this.ownsSocket = true;
    this.listenPoll = vhost.pollStart(this.listenFd, (status) => this.onListenReadable(status));
  }

  /** Called whenever a front-end disconnects (tests wait on it). */
  onDisconnect(fn: () => void): void {
    this.closeListeners.push(fn);
  }

  get connected(): boolean {
    return this.conn !== undefined;
  }

  stop(): void {
    this.dropConnection('back-end stopping');
    if (this.listenPoll) vhost.pollStop(this.listenPoll);
    this.listenPoll = undefined;
    if (this.listenFd >= 0) vhost.closeFd(this.listenFd);
    this.listenFd = -1;
    if (this.ownsSocket) {
      this.ownsSocket = false;
      try {
        fs.unlinkSync(this.socketPath);
      } catch {
        // Already gone.
      }
    }
  }

  private onListenReadable(status: number): void {
    if (status < 0) {
      this.log(`listening socket error ${status}`);
      return;
    }
    for (;;) {
      const fd = vhost.accept(this.listenFd);
      if (fd === null) return;
      // Only our own uid may be the front-end (the socket is 0600 too; this also holds if the
      // file's mode or a bind mount lets another uid reach it).
      const peer = peerUidProblem(fd);
      if (peer) {
        this.counters.peersRefused++;
        this.log(`refusing a front-end: ${peer}`);
        vhost.closeFd(fd);
        continue;
      }
      if (this.conn) {
        // One front-end at a time: QEMU 7.2 cannot share a device with another.
        this.log('refusing a second front-end while one is connected');
        vhost.closeFd(fd);
        continue;
      }
      this.conn = new Connection(fd);
      this.connPoll = vhost.pollStart(fd, (st) => this.onConnReadable(st));
      this.log('front-end connected');
    }
  }

  private onConnReadable(status: number): void {
    const conn = this.conn;
    if (!conn) return;
    if (status < 0) {
      this.dropConnection(`socket error ${status}`);
      return;
    }
    try {
      for (;;) {
        const r = conn.read();
        if (r.kind === 'wait') return;
        if (r.kind === 'closed') {
          this.dropConnection('front-end closed the connection');
          return;
        }
        try {
          this.handler.handle(conn, r.message);
        } catch (err) {
          // Every refusal carries the message's header flags so it can be NACKed.
          const flags = r.message.header.flags;
          throw err instanceof WireError ? err.withFlags(flags) : new WireError(r.message.header.request, (err as Error).message, flags);
        }
        if (this.conn !== conn) return;
      }
    } catch (err) {
      const name = err instanceof WireError ? requestName(err.request) : 'message';
      this.log(`malformed ${name}: ${(err as Error).message}; closing the connection`);
      if (err instanceof WireError) this.handler.refused(conn, err);
      this.dropConnection('protocol error');
    }
  }

  private dropConnection(why: string): void {
    const conn = this.conn;
    if (!conn) return;
    this.log(`front-end disconnected: ${why}`);
    if (this.connPoll) vhost.pollStop(this.connPoll);
    this.connPoll = undefined;
    this.handler.disconnected();
    conn.close();
    this.conn = undefined;
    for (const fn of this.closeListeners) fn();
  }
}
