/**
 * Telemetry socket (docs/telemetry.md, format in telemetry-schema.ts): JSON lines over a unix
 * socket. A client sends {"type":"snapshot"} for one snapshot line, {"type":"subscribe","intervalMs":N}
 * for a stream until it disconnects, or {"type":"chain","queue":Q,"head":H} for one decoded
 * descriptor chain, or {"type":"avail","addr":GPA} for the avail ring header of a queue QEMU serves. Everything is built only on request, on the JS thread between kicks.
 * With a fault target, the same socket takes fault-injection control requests (docs/fault-injection.md).
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as vhost from '../../addon/lib/vhost';
import { type FaultTarget, handleFaultRequest } from '../faults/control';
import { peerUidProblem } from '../vhost-user/peer';
import { claimSocketPath } from '../vhost-user/socket-path';
import { LineReader, MAX_REQUEST_LINE, parseRequest, type AvailRingHeader, type BackendSnapshot, type ChainDetail, type TelemetryError } from './schema';

export interface SnapshotSource {
  snapshot(): BackendSnapshot;
  chain(queue: number, head: number): ChainDetail | TelemetryError;
  /** the avail ring header at a guest-physical address (a queue QEMU services: the control queue) */
  availRing(addr: number): AvailRingHeader | TelemetryError;
  /** registers `addr` as a ring address the lab resolved (QMP's control-queue vring-avail), then reads it */
  allowAvailRing(addr: number): AvailRingHeader | TelemetryError;
}

export class TelemetryServer {
  private server: net.Server | undefined;
  private readonly clients = new Set<net.Socket>();
  private refused = 0;

  constructor(
    private readonly socketPath: string,
    private readonly source: SnapshotSource,
    private readonly log: (line: string) => void = () => undefined,
    private readonly faults?: FaultTarget,
  ) {}

  /** Listens; a stale socket file is replaced, a live one (another back-end) or a regular file is not. */
  async start(): Promise<void> {
    claimSocketPath(this.socketPath, `another back-end serves telemetry on ${this.socketPath}`);
    const server = net.createServer((socket) => this.accept(socket));
    this.server = server;
    // Only the owner may read ring contents and session summaries: the addon binds the socket with
    // mode 0600 from its creation (no window before a chmod, whatever the umask); Node listens on it.
    const fd = vhost.listenUnix(this.socketPath, 16);
    await new Promise<void>((resolve, reject) => {
      const failed = (err: Error): void => {
        vhost.closeFd(fd);
        reject(err);
      };
      server.once('error', failed);
      server.listen({ fd }, () => {
        server.off('error', failed);
        resolve();
      });
    });
  }

  /** Connections closed at accept because the peer runs as another uid (SO_PEERCRED). */
  get peersRefused(): number {
    return this.refused;
  }

  private accept(socket: net.Socket): void {
    // net.Socket exposes no peer credentials; its libuv handle's fd is the accepted socket.
    const fd = (socket as unknown as { _handle?: { fd?: unknown } })._handle?.fd;
    const problem = typeof fd === 'number' && fd >= 0 ? peerUidProblem(fd) : 'no fd for the accepted connection';
    if (problem) {
      this.refused++;
      this.log(`telemetry: refusing a client: ${problem}`);
      socket.destroy();
      return;
    }
    this.serve(socket);
  }

  private serve(socket: net.Socket): void {
    this.clients.add(socket);
    let timer: NodeJS.Timeout | undefined;
    const send = (obj: object): void => {
      if (!socket.writable) return;
      // Skip a tick rather than queue without bound behind a slow reader.
      if (socket.writableLength > 1 << 20) return;
      socket.write(`${JSON.stringify(obj)}\n`);
    };
    const cleanup = (): void => {
      if (timer) clearInterval(timer);
      timer = undefined;
      this.clients.delete(socket);
    };
    socket.on('close', cleanup);
    socket.on('error', cleanup);
    socket.setEncoding('utf8');
    const reader = new LineReader(MAX_REQUEST_LINE, (line) => {
      const req = parseRequest(line);
      switch (req.type) {
        case 'error':
          send(req);
          break;
        case 'snapshot':
          send(this.source.snapshot());
          break;
        case 'chain':
          send(this.source.chain(req.queue, req.head));
          break;
        case 'avail':
          send(this.source.availRing(req.addr));
          break;
        case 'avail-allow':
          send(this.source.allowAvailRing(req.addr));
          break;
        case 'subscribe':
          this.log(`telemetry subscriber every ${req.intervalMs} ms`);
          if (timer) clearInterval(timer);
          send(this.source.snapshot());
          timer = setInterval(() => send(this.source.snapshot()), req.intervalMs);
          break;
        case 'fault':
          if (this.faults) send(handleFaultRequest(this.faults, req.body));
          else send({ type: 'error', message: 'this back-end takes no fault-injection requests' });
          break;
      }
    });
    socket.on('data', (chunk: string) => {
      if (reader.push(chunk)) return;
      send({ type: 'error', message: `request line longer than ${MAX_REQUEST_LINE} bytes` });
      socket.end();
    });
  }

  async stop(): Promise<void> {
    for (const c of this.clients) c.destroy();
    this.clients.clear();
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    await new Promise<void>((resolve) => server.close(() => resolve()));
    try {
      fs.unlinkSync(this.socketPath);
    } catch {
      // Already gone.
    }
  }
}
