/**
 * Telemetry socket (docs/telemetry.md): JSON lines over a unix socket. A client sends
 * {"type":"snapshot"} for one snapshot line, or {"type":"subscribe","intervalMs":N} for a stream
 * until it disconnects. Snapshots are built only on request, on the JS thread between kicks.
 * With a fault target, the same socket takes fault-injection control requests (docs/fault-injection.md).
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import { type FaultTarget, handleFaultRequest, isFaultRequestType } from './fault-control';

export const MIN_INTERVAL_MS = 20;
export const MAX_INTERVAL_MS = 60_000;
/** A client line longer than this is not a telemetry request: the client is dropped. */
const MAX_LINE = 4096;

export type SnapshotSource = (opts: { descriptors: boolean }) => object;

export class TelemetryServer {
  private server: net.Server | undefined;
  private readonly clients = new Set<net.Socket>();

  constructor(
    private readonly socketPath: string,
    private readonly source: SnapshotSource,
    private readonly log: (line: string) => void = () => undefined,
    private readonly faults?: FaultTarget,
  ) {}

  /** Listens; a stale socket file is replaced, a live one (another back-end) or a regular file is not. */
  async start(): Promise<void> {
    let stat: fs.Stats | undefined;
    try {
      stat = fs.lstatSync(this.socketPath);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    if (stat && !stat.isSocket()) throw new Error(`${this.socketPath} exists and is not a socket; not replacing it`);
    if (stat) {
      const live = await new Promise<boolean>((resolve) => {
        const probe = net.createConnection(this.socketPath);
        probe.once('connect', () => {
          probe.destroy();
          resolve(true);
        });
        probe.once('error', () => resolve(false));
      });
      if (live) throw new Error(`another back-end serves telemetry on ${this.socketPath}`);
      fs.unlinkSync(this.socketPath);
    }
    const server = net.createServer((socket) => this.serve(socket));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.socketPath, () => {
        server.off('error', reject);
        resolve();
      });
    });
    // Only the owner may read ring contents and session summaries.
    fs.chmodSync(this.socketPath, 0o600);
  }

  private serve(socket: net.Socket): void {
    this.clients.add(socket);
    let buffered = '';
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
    socket.on('data', (chunk: string) => {
      buffered += chunk;
      if (buffered.length > MAX_LINE && !buffered.includes('\n')) {
        send({ type: 'error', message: `request line longer than ${MAX_LINE} bytes` });
        socket.end();
        return;
      }
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl).trim();
        buffered = buffered.slice(nl + 1);
        if (!line) continue;
        let req: unknown;
        try {
          req = JSON.parse(line);
        } catch {
          send({ type: 'error', message: 'request is not JSON' });
          continue;
        }
        const r = req as { type?: unknown; intervalMs?: unknown; descriptors?: unknown };
        const descriptors = r.descriptors !== false;
        if (r.type === 'snapshot') {
          send(this.source({ descriptors }));
        } else if (r.type === 'subscribe') {
          this.log(`telemetry subscriber every ${typeof r.intervalMs === 'number' ? r.intervalMs : 500} ms`);
          const ms = typeof r.intervalMs === 'number' && Number.isFinite(r.intervalMs) ? Math.min(MAX_INTERVAL_MS, Math.max(MIN_INTERVAL_MS, Math.round(r.intervalMs))) : 500;
          if (timer) clearInterval(timer);
          send(this.source({ descriptors }));
          timer = setInterval(() => send(this.source({ descriptors })), ms);
        } else if (this.faults && isFaultRequestType(r.type)) {
          send(handleFaultRequest(this.faults, req as Record<string, unknown>));
        } else {
          send({ type: 'error', message: `unknown request type (expected "snapshot", "subscribe"${this.faults ? ', "fault-set", "fault-list" or "fault-clear"' : ''})` });
        }
      }
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

/** Client side: one snapshot (used by `vlab rings --once`, `vlab status`, tests). */
export function requestSnapshot(socketPath: string, timeoutMs = 2000): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const socket = net.createConnection(socketPath);
    let buffered = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`telemetry ${socketPath}: no answer in ${timeoutMs} ms`));
    }, timeoutMs);
    socket.setEncoding('utf8');
    socket.on('connect', () => socket.write('{"type":"snapshot"}\n'));
    socket.on('data', (chunk: string) => {
      buffered += chunk;
      const nl = buffered.indexOf('\n');
      if (nl < 0) return;
      clearTimeout(timer);
      socket.destroy();
      try {
        resolve(JSON.parse(buffered.slice(0, nl)) as Record<string, unknown>);
      } catch (err) {
        reject(err as Error);
      }
    });
    socket.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}
