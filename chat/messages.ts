/**
 * Application payloads carried in READY and MESSAGE records: small JSON objects, validated field
 * by field because the peer is untrusted (a bad one is a fatal 'malformed' error).
 */
import { ChatError } from './protocol';

export const MAX_TEXT_CHARS = 4000;
export const NICK_RE = /^[A-Za-z0-9_-]{1,24}$/;
export const ROOM_RE = /^#[A-Za-z0-9_-]{1,32}$/;

export type PeerRole = 'peer' | 'server' | 'client';
export interface ReadyInfo {
  readonly nick: string;
  readonly role: PeerRole;
  /**
   * The sender accepts PING records and asks for one whenever the reader has sent nothing for this
   * many ms (a server with an idle timeout announces a third of it). Absent: never send PING.
   */
  readonly keepaliveMs?: number;
}
/** Bounds of an announced keepalive interval (ms). */
export const MIN_KEEPALIVE_MS = 100;
export const MAX_KEEPALIVE_MS = 86_400_000;

export type ChatMessage =
  /** A line typed by a user (to a peer, or to the server, which also reads /commands from it). */
  | { readonly t: 'say'; readonly text: string }
  /** Server → client: `text` from `from`, to a room ('#x') or privately to the reader (a nick). */
  | { readonly t: 'msg'; readonly from: string; readonly to: string; readonly text: string }
  /** Server → client: joins, leaves, replies to /list /who. */
  | { readonly t: 'notice'; readonly text: string }
  /** Server → client: a command failed. */
  | { readonly t: 'error'; readonly text: string };

function bad(what: string): never {
  throw new ChatError('malformed', `malformed message from the peer: ${what}`);
}

function parseObject(buf: Buffer): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(buf.toString('utf8'));
  } catch {
    bad('not JSON');
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) bad('not an object');
  return v as Record<string, unknown>;
}

function str(o: Record<string, unknown>, key: string, max: number): string {
  const v = o[key];
  if (typeof v !== 'string') bad(`field ${key} is not a string`);
  if (v.length > max) bad(`field ${key} is longer than ${max} characters`);
  return v;
}

export function encodeReady(info: ReadyInfo): Buffer {
  // `ka` is optional: application version 1 readers from before the keepalive ignore unknown fields.
  const ka = info.keepaliveMs === undefined ? {} : { ka: info.keepaliveMs };
  return Buffer.from(JSON.stringify({ v: 1, nick: info.nick, role: info.role, ...ka }), 'utf8');
}

export function decodeReady(buf: Buffer): ReadyInfo {
  const o = parseObject(buf);
  if (o['v'] !== 1) bad('unsupported application version');
  const nick = str(o, 'nick', 24);
  if (!NICK_RE.test(nick)) bad('invalid nick');
  const role = o['role'];
  if (role !== 'peer' && role !== 'server' && role !== 'client') bad('invalid role');
  const ka = o['ka'];
  if (ka === undefined) return { nick, role };
  if (typeof ka !== 'number' || !Number.isInteger(ka) || ka < MIN_KEEPALIVE_MS || ka > MAX_KEEPALIVE_MS) bad(`invalid keepalive interval`);
  return { nick, role, keepaliveMs: ka };
}

export function encodeMessage(m: ChatMessage): Buffer {
  return Buffer.from(JSON.stringify(m), 'utf8');
}

export function decodeMessage(buf: Buffer): ChatMessage {
  const o = parseObject(buf);
  switch (o['t']) {
    case 'say':
      return { t: 'say', text: str(o, 'text', MAX_TEXT_CHARS) };
    case 'msg':
      return { t: 'msg', from: str(o, 'from', 24), to: str(o, 'to', 33), text: str(o, 'text', MAX_TEXT_CHARS) };
    case 'notice':
      return { t: 'notice', text: str(o, 'text', MAX_TEXT_CHARS) };
    case 'error':
      return { t: 'error', text: str(o, 'text', MAX_TEXT_CHARS) };
    default:
      return bad(`unknown message type ${JSON.stringify(String(o['t'])).slice(0, 40)}`);
  }
}
