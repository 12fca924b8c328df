/**
 * A subscription to the backend's telemetry socket (docs/telemetry.md, backend/telemetry/schema.ts:
 * JSON lines; the client sends {"type":"subscribe","intervalMs":N} and reads snapshot lines until it
 * closes; a new subscribe on the same connection changes the rate). Emits each snapshot as the
 * schema's reader typed (and capped) it.
 * Reconnects by itself with backoff, so a view outlives a VM restart (the socket is re-created
 * by the new backend at the same path). No vscode import.
 */
import { EventEmitter } from 'node:events';
import { createConnection, type Socket } from 'node:net';
import { ownSocketProblem } from '../../../backend/telemetry/client';
import { parseReply } from '../../../backend/telemetry/readers';
import { LineReader, MAX_REPLY_LINE, encodeRequest, type BackendSnapshot } from '../../../backend/telemetry/schema';

const RETRY_MIN_MS = 250;
const RETRY_MAX_MS = 2000;

export type FeedEvents = {
  snapshot: [snapshot: BackendSnapshot];
  state: [state: 'connecting' | 'live' | 'waiting', detail: string];
};

export class TelemetryFeed extends EventEmitter<FeedEvents> {
  private socket: Socket | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private retryMs = RETRY_MIN_MS;
  private stopped = false;
  private readonly reader = new LineReader(MAX_REPLY_LINE, (line) => this.onLine(line));
  /** snapshots received since start (for measurements) */
  received = 0;

  constructor(private readonly socketPath: () => string | undefined, private intervalMs: number) {
    super();
  }

  get rateMs(): number {
    return this.intervalMs;
  }

  /** Changes the subscription's rate (on the open connection; the next connection uses it too). */
  setInterval(ms: number): void {
    if (ms === this.intervalMs) return;
    this.intervalMs = ms;
    if (this.socket && !this.socket.connecting && this.socket.writable) this.socket.write(encodeRequest({ type: 'subscribe', intervalMs: ms }));
  }

  /** Connects unless already connected or waiting to retry (idempotent). */
  start(): void {
    if (!this.stopped && (this.socket || this.retryTimer)) return;
    this.stopped = false;
    this.connect();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
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
    const problem = ownSocketProblem(path);
    if (problem) {
      this.scheduleRetry(`${path} ${problem}; not connecting`);
      return;
    }
    this.emit('state', 'connecting', path);
    this.reader.reset();
    const socket = createConnection({ path });
    this.socket = socket;
    socket.setEncoding('utf8');
    socket.on('connect', () => {
      this.retryMs = RETRY_MIN_MS;
      socket.write(encodeRequest({ type: 'subscribe', intervalMs: this.intervalMs }));
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
    if (!this.reader.push(chunk)) this.socket?.destroy(new Error('telemetry line too long'));
  }

  private onLine(line: string): void {
    // A corrupt line (or another schema's snapshot) is dropped; the next snapshot replaces it anyway.
    const reply = parseReply(line);
    if (reply?.type !== 'snapshot') return;
    this.received++;
    this.emit('snapshot', reply);
  }

  private scheduleRetry(reason: string): void {
    if (this.stopped) return;
    this.emit('state', 'waiting', reason);
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.connect();
    }, this.retryMs);
    this.retryMs = Math.min(this.retryMs * 2, RETRY_MAX_MS);
  }
}
