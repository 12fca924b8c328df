/**
 * The SSH mux's wire format (docs/lab.md § SSH mux): frames of one type byte, a 4-byte big-endian length
 * and the payload. Both ends treat the other as untrusted: a frame longer than its type allows, an
 * unknown type or a malformed JSON payload ends the connection (FrameError), and nothing is allocated
 * before the length is checked.
 */

/** Client → mux. */
export const C_HELLO = 0x01;
export const C_OPEN = 0x02;
export const C_STDIN = 0x03;
export const C_STDIN_EOF = 0x04;
export const C_RESIZE = 0x05;
export const C_CLOSE = 0x06;
/** Mux → client. */
export const S_READY = 0x81;
export const S_OPENED = 0x82;
export const S_STDOUT = 0x83;
export const S_STDERR = 0x84;
export const S_EXIT = 0x85;
export const S_ERROR = 0x86;

/** Data frames carry at most this much; longer writes are split. */
export const MAX_DATA_BYTES = 256 * 1024;
/** JSON frames (open, resize, exit, error) carry at most this much. */
export const MAX_JSON_BYTES = 64 * 1024;
const HEADER_BYTES = 5;

const DATA_TYPES = new Set([C_STDIN, S_STDOUT, S_STDERR]);
const JSON_TYPES = new Set([C_OPEN, C_RESIZE, S_EXIT, S_ERROR]);
const EMPTY_TYPES = new Set([C_HELLO, C_STDIN_EOF, C_CLOSE, S_READY, S_OPENED]);

export class FrameError extends Error {
  override readonly name = 'FrameError';
}

export interface Frame {
  readonly type: number;
  readonly payload: Buffer;
}

function limitOf(type: number): number {
  if (DATA_TYPES.has(type)) return MAX_DATA_BYTES;
  if (JSON_TYPES.has(type)) return MAX_JSON_BYTES;
  if (EMPTY_TYPES.has(type)) return 0;
  throw new FrameError(`unknown frame type 0x${type.toString(16)}`);
}

export function encodeFrame(type: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  if (payload.length > limitOf(type)) throw new FrameError(`frame 0x${type.toString(16)} of ${payload.length} bytes exceeds ${limitOf(type)}`);
  const header = Buffer.alloc(HEADER_BYTES);
  header.writeUInt8(type, 0);
  header.writeUInt32BE(payload.length, 1);
  return Buffer.concat([header, payload]);
}

export function encodeJson(type: number, value: object): Buffer {
  return encodeFrame(type, Buffer.from(JSON.stringify(value), 'utf8'));
}

/** Data of any length as data frames of at most MAX_DATA_BYTES each. */
export function encodeData(type: number, data: Buffer): Buffer[] {
  const frames: Buffer[] = [];
  for (let at = 0; at < data.length; at += MAX_DATA_BYTES) frames.push(encodeFrame(type, data.subarray(at, at + MAX_DATA_BYTES)));
  return frames;
}

/**
 * Incremental decoder: feed() the bytes as they arrive, get the complete frames. Throws FrameError on an
 * unknown type or an oversized length (checked from the header, before the payload is buffered).
 */
export class FrameDecoder {
  private pending: Buffer = Buffer.alloc(0);

  feed(chunk: Buffer): Frame[] {
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    const frames: Frame[] = [];
    while (this.pending.length >= HEADER_BYTES) {
      const type = this.pending.readUInt8(0);
      const length = this.pending.readUInt32BE(1);
      const limit = limitOf(type);
      if (length > limit) throw new FrameError(`frame 0x${type.toString(16)} announces ${length} bytes (limit ${limit})`);
      if (this.pending.length < HEADER_BYTES + length) break;
      frames.push({ type, payload: Buffer.from(this.pending.subarray(HEADER_BYTES, HEADER_BYTES + length)) });
      this.pending = this.pending.subarray(HEADER_BYTES + length);
    }
    return frames;
  }
}

export interface PtyRequest {
  readonly cols: number;
  readonly rows: number;
  readonly term: string;
}

export type OpenRequest =
  | { readonly kind: 'exec'; readonly command: string; readonly pty?: PtyRequest }
  | { readonly kind: 'shell'; readonly pty: PtyRequest };

export type ExitReport = { readonly code: number } | { readonly signal: string };

function parseObject(payload: Buffer, what: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(payload.toString('utf8'));
  } catch {
    throw new FrameError(`${what}: not JSON`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new FrameError(`${what}: not an object`);
  return value as Record<string, unknown>;
}

const dimension = (v: unknown): v is number => Number.isInteger(v) && (v as number) > 0 && (v as number) <= 10_000;

function parsePty(v: unknown): PtyRequest {
  const p = v as Partial<Record<keyof PtyRequest, unknown>> | null;
  if (typeof p !== 'object' || p === null || !dimension(p.cols) || !dimension(p.rows)) throw new FrameError('open: bad pty size');
  const term = p.term ?? 'xterm-256color';
  if (typeof term !== 'string' || !/^[A-Za-z0-9._+-]{1,64}$/.test(term)) throw new FrameError('open: bad terminal name');
  return { cols: p.cols, rows: p.rows, term };
}

export function parseOpen(payload: Buffer): OpenRequest {
  const o = parseObject(payload, 'open');
  if (o.kind === 'exec') {
    if (typeof o.command !== 'string' || o.command.length === 0 || o.command.includes('\0')) throw new FrameError('open: bad command');
    return o.pty === undefined ? { kind: 'exec', command: o.command } : { kind: 'exec', command: o.command, pty: parsePty(o.pty) };
  }
  if (o.kind === 'shell') return { kind: 'shell', pty: parsePty(o.pty) };
  throw new FrameError('open: unknown kind');
}

export function parseResize(payload: Buffer): { readonly rows: number; readonly cols: number } {
  const o = parseObject(payload, 'resize');
  if (!dimension(o.rows) || !dimension(o.cols)) throw new FrameError('resize: bad size');
  return { rows: o.rows, cols: o.cols };
}

export function parseExit(payload: Buffer): ExitReport {
  const o = parseObject(payload, 'exit');
  if (Number.isInteger(o.code) && (o.code as number) >= 0 && (o.code as number) <= 255) return { code: o.code as number };
  if (typeof o.signal === 'string' && /^[A-Z0-9]{1,16}$/.test(o.signal)) return { signal: o.signal };
  throw new FrameError('exit: neither a code nor a signal');
}

export function parseError(payload: Buffer): string {
  const o = parseObject(payload, 'error');
  return typeof o.message === 'string' ? o.message.slice(0, 1000) : 'unknown error';
}
