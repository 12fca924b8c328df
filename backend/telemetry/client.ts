/**
 * Node clients of the telemetry socket (format: telemetry-schema.ts, docs/telemetry.md): one
 * request, one reply line, read through the schema's capped line reader. Used by `vlab rings
 * --once`, `vlab status`, the extension's lab status and tests.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import { LineReader, MAX_REPLY_LINE, encodeRequest, parseReply, type TelemetryRequest } from './schema';

/**
 * Why a client must not connect to the socket at `socketPath`, or undefined. The workspace (and the
 * lab's state dir in it) is writable by the guest over 9p: a guest could put a symlink to another
 * socket there, or a socket of its own making. A missing path is left to connect()'s ENOENT.
 */
export function ownSocketProblem(socketPath: string): string | undefined {
  let st: fs.Stats;
  try {
    st = fs.lstatSync(socketPath);
  } catch {
    return undefined;
  }
  if (st.isSymbolicLink()) return 'is a symlink';
  if (!st.isSocket()) return 'is not a socket';
  const own = process.geteuid?.();
  if (own !== undefined && st.uid !== own) return `is owned by uid ${st.uid}, not ${own}`;
  return undefined;
}

/** Sends `req` and resolves with the first reply object; rejects on timeout, socket error or an oversized line. */
export function telemetryRequest(socketPath: string, req: TelemetryRequest, timeoutMs = 2000): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const problem = ownSocketProblem(socketPath);
    if (problem) {
      reject(new Error(`telemetry ${socketPath} ${problem}; not connecting`));
      return;
    }
    const socket = net.createConnection(socketPath);
    let settled = false;
    const finish = (err: Error | undefined, value?: Record<string, unknown>): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      if (err) reject(err);
      else resolve(value!);
    };
    const timer = setTimeout(() => finish(new Error(`telemetry ${socketPath}: no answer in ${timeoutMs} ms`)), timeoutMs);
    const reader = new LineReader(MAX_REPLY_LINE, (line) => {
      const reply = parseReply(line);
      finish(reply ? undefined : new Error(`telemetry ${socketPath}: the answer is not a telemetry line`), reply);
    });
    socket.setEncoding('utf8');
    socket.on('connect', () => socket.write(encodeRequest(req)));
    socket.on('data', (chunk: string) => {
      if (!reader.push(chunk)) finish(new Error(`telemetry ${socketPath}: answer longer than ${MAX_REPLY_LINE} bytes`));
    });
    socket.on('error', (err) => finish(err));
    socket.on('close', () => finish(new Error(`telemetry ${socketPath}: closed without an answer`)));
  });
}

/** One snapshot (rejects when there is none). */
export function requestSnapshot(socketPath: string, timeoutMs = 2000): Promise<Record<string, unknown>> {
  return telemetryRequest(socketPath, { type: 'snapshot' }, timeoutMs);
}

/** One snapshot, or null when the backend does not answer (the lab's status: never throws). */
export function readSnapshotOrNull(socketPath: string, timeoutMs = 1500): Promise<Record<string, unknown> | null> {
  return requestSnapshot(socketPath, timeoutMs).then((s) => (s.type === 'snapshot' ? s : null), () => null);
}
