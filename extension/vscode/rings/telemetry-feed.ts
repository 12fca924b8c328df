/**
 * A subscription to the backend's telemetry socket (docs/telemetry.md: JSON lines; the client
 * sends {"type":"subscribe","intervalMs":N} and reads snapshot lines until it closes).
 * Reconnects by itself with backoff, so a view outlives a VM restart (the socket is re-created
 * by the new backend at the same path). No vscode import.
 */
import { EventEmitter } from 'node:events';
import { createConnection, type Socket } from 'node:net';

/** A snapshot line is a few KiB (1024 slots + recent requests); anything far bigger is refused. */
const MAX_LINE = 1 << 20;
const RETRY_MIN_MS = 250;
const RETRY_MAX_MS = 2000;

export type FeedEvents = {
  snapshot: [snapshot: unknown];
  state: [state: 'connecting' | 'live' | 'waiting', detail: string];
};

export class TelemetryFeed extends EventEmitter<FeedEvents> {
  private socket: Socket | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private retryMs = RETRY_MIN_MS;
  private stopped = false;
  private pending = '';
  /** snapshots received since start (for measurements) */
  received = 0;

  constructor(private readonly socketPath: () => string | undefined, private readonly intervalMs: number) {
    super();
  }

  start(): void {
    this.stopped = false;
    this.connect();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    this.socket?.destroy();
    this.socket = undefined;
  }

  /** Drop the current connection and connect again now (e.g. after the lab restarted). */
  reconnect(): void {
    if (this.stopped) return;
    this.socket?.destroy();
  }

  private connect(): void {
    if (this.stopped) return;
    const path = this.socketPath();
    if (!path) {
      this.scheduleRetry('no lab running');
      return;
    }
    this.emit('state', 'connecting', path);
    this.pending = '';
    const socket = createConnection({ path });
    this.socket = socket;
    socket.setEncoding('utf8');
    socket.on('connect', () => {
      this.retryMs = RETRY_MIN_MS;
      socket.write(`${JSON.stringify({ type: 'subscribe', intervalMs: this.intervalMs })}\n`);
      this.emit('state', 'live', path);
    });
    socket.on('data', (chunk: string) => this.onData(chunk));
    socket.on('error', () => undefined); // 'close' follows and drives the retry
    socket.on('close', () => {
      if (this.socket === socket) this.socket = undefined;
      this.scheduleRetry('telemetry socket closed');
    });
  }

  private onData(chunk: string): void {
    this.pending += chunk;
    let nl: number;
    while ((nl = this.pending.indexOf('\n')) >= 0) {
      const line = this.pending.slice(0, nl);
      this.pending = this.pending.slice(nl + 1);
      this.onLine(line);
    }
    if (this.pending.length > MAX_LINE) {
      this.pending = '';
      this.socket?.destroy(new Error('telemetry line too long'));
    }
  }

  private onLine(line: string): void {
    if (!line.trim()) return;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      return; // a corrupt line is dropped; the next snapshot replaces it anyway
    }
    if (typeof value === 'object' && value !== null && (value as { type?: unknown }).type === 'snapshot') {
      this.received++;
      this.emit('snapshot', value);
    }
  }

  private scheduleRetry(reason: string): void {
    if (this.stopped) return;
    this.emit('state', 'waiting', reason);
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.connect(), this.retryMs);
    this.retryMs = Math.min(this.retryMs * 2, RETRY_MAX_MS);
  }
}
