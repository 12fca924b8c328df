/**
 * The Node client of the telemetry socket (format and readers: schema.ts, docs/telemetry.md): one
 * request, one reply line, read through the schema's capped line reader and typed by its readers.
 * Fault-injection control requests go the same way. Used by `vlab fault`, `vlab status`, the
 * extension's lab status and rings view, and tests; the streams (`vlab rings`, the rings view's
 * feed) read subscribe lines with the same reader.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import { parseJsonLine, readReply } from './readers';
import { LineReader, MAX_REPLY_LINE, encodeRequest, isFaultRequestType, type BackendSnapshot, type OneReplyRequest, type ReplyFor } from './schema';

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

/**
 * Sends `req` and resolves with its reply, typed (the back-end's error line included); rejects on a
 * socket error or timeout, a close without an answer, an oversized line, or an answer that is not
 * one to `req`.
 */
export function telemetryRequest<R extends OneReplyRequest>(socketPath: string, req: R, timeoutMs = isFaultRequestType(req.type) ? 3000 : 2000): Promise<ReplyFor<R>> {
  const name = `${isFaultRequestType(req.type) ? 'control socket' : 'telemetry'} ${socketPath}`;
  return new Promise((resolve, reject) => {
    const problem = ownSocketProblem(socketPath);
    if (problem) {
      reject(new Error(`${name} ${problem}; not connecting`));
      return;
    }
    const socket = net.createConnection(socketPath);
    let settled = false;
    const finish = (outcome: { reply: ReplyFor<R> } | Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      if (outcome instanceof Error) reject(outcome);
      else resolve(outcome.reply);
    };
    const timer = setTimeout(() => finish(new Error(`${name}: no answer in ${timeoutMs} ms`)), timeoutMs);
    const reader = new LineReader(MAX_REPLY_LINE, (line) => {
      const reply = readReply(req, parseJsonLine(line));
      finish(reply ? { reply } : new Error(`${name}: the answer is not a reply to "${req.type}"`));
    });
    socket.setEncoding('utf8');
    socket.on('connect', () => socket.write(encodeRequest(req)));
    socket.on('data', (chunk: string) => {
      if (!reader.push(chunk)) finish(new Error(`${name}: answer longer than ${MAX_REPLY_LINE} bytes`));
    });
    socket.on('error', (err) => finish(err));
    socket.on('close', () => finish(new Error(`${name}: closed without an answer`)));
  });
}

/** One snapshot; rejects when there is none (an error line included). */
export async function requestSnapshot(socketPath: string, timeoutMs = 2000): Promise<BackendSnapshot> {
  const reply = await telemetryRequest(socketPath, { type: 'snapshot' }, timeoutMs);
  if (reply.type === 'error') throw new Error(`telemetry ${socketPath}: ${reply.message}`);
  return reply;
}

/** One snapshot, or null when the backend does not answer (the lab's status: never throws). */
export function readSnapshotOrNull(socketPath: string, timeoutMs = 1500): Promise<BackendSnapshot | null> {
  return requestSnapshot(socketPath, timeoutMs).catch(() => null);
}
