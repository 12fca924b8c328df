/**
 * Rings traces (docs/telemetry.md "Traces"): JSON lines, versioned. The first line is a header,
 * every other line one telemetry snapshot with its time since the recording started:
 *
 *   {"type":"vlab-rings-trace","version":1,"telemetrySchema":2,"startedAt":"2025-…Z","source":"vlab rings --record"}
 *   {"t":0,"snapshot":{"type":"snapshot",…}}
 *   {"t":50,"delta":true,"snapshot":{…}}    (slots/sessions left out when unchanged, recent = new requests only)
 *
 * Slots are written run-length encoded as "slotsRle" ("1021.3u" = 1021 free, 3 returned).
 *
 * A snapshot is written only when something moved (a ring index or a counter), so an idle lab
 * costs nothing and a trace of a chat is a few KiB. Pure (no node imports): the extension's view
 * records and replays with the same functions.
 */
import { SNAPSHOT_RECENT, TELEMETRY_SCHEMA } from './schema';

export const TRACE_TYPE = 'vlab-rings-trace';
export const TRACE_VERSION = 1;
/** A replayed trace is capped (frames kept in memory). */
export const MAX_TRACE_FRAMES = 20_000;
export const MAX_TRACE_LINE = 1 << 20;

export interface TraceHeader {
  type: typeof TRACE_TYPE;
  version: typeof TRACE_VERSION;
  telemetrySchema: number;
  startedAt: string;
  source: string;
}

export interface TraceEntry {
  /** ms since the recording started */
  t: number;
  snapshot: Record<string, unknown>;
  /** the crypto device's control queue as QEMU reported it (QMP), when the recorder had it */
  control?: Record<string, unknown>;
}

export function traceHeader(source: string, startedAt = new Date()): string {
  const h: TraceHeader = { type: TRACE_TYPE, version: TRACE_VERSION, telemetrySchema: TELEMETRY_SCHEMA, startedAt: startedAt.toISOString(), source };
  return `${JSON.stringify(h)}\n`;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** What decides "something moved": the ring indexes, the request and notification counters. */
function motionKey(s: Record<string, unknown>): string {
  const c = isRecord(s.counters) ? s.counters : {};
  const queues = Array.isArray(s.queues) ? s.queues.filter(isRecord) : [];
  return JSON.stringify([c.requests, c.kicks, c.interrupts, c.rejectedChains, c.sessionsCreated, c.sessionsClosed,
    queues.map((q) => [q.availIdx, q.usedIdx, q.lastAvailIdx, q.usedEvent, q.ready])]);
}

interface QueueMemo {
  slots: unknown;
  maxId: number;
  recent: unknown[];
  fields: Record<string, unknown>;
}

/** Run-length form of a slot string ("1021.3u"): slot characters are never digits. */
export function rleSlots(slots: string): string {
  let out = '';
  for (let i = 0; i < slots.length;) {
    let j = i;
    while (j < slots.length && slots[j] === slots[i]) j++;
    out += `${j - i}${slots[i]}`;
    i = j;
  }
  return out;
}

/** Inverse of {@link rleSlots}; undefined for malformed input or more than `max` slots. */
export function unRleSlots(rle: string, max = 32768): string | undefined {
  let out = '';
  for (const m of rle.matchAll(/(\d{1,5})(\D)/g)) {
    out += m[2]!.repeat(Number(m[1]));
    if (out.length > max) return undefined;
  }
  return out;
}

const idOf = (r: unknown): number => (isRecord(r) && typeof r.id === 'number' ? r.id : -1);

/**
 * Delta encoding of consecutive snapshots of one backend (entry field "delta": true): `slots` and
 * `sessions` are left out when unchanged, `recent` holds only the requests not in the previous line.
 */
/** Fields every line carries (the rest are left out of a delta line when unchanged). */
const KEPT = new Set(['type', 'schema', 'pid', 'uptimeMs', 'counters', 'queues']);

class DeltaEncoder {
  private pid: unknown;
  private counters: Record<string, unknown> | undefined;
  private readonly fields = new Map<string, string>();
  private readonly queues = new Map<unknown, QueueMemo>();

  encode(s: Record<string, unknown>): { snapshot: Record<string, unknown>; delta: boolean } {
    const delta = this.pid !== undefined && this.pid === s.pid;
    if (!delta) {
      this.queues.clear();
      this.fields.clear();
      this.counters = undefined;
    }
    this.pid = s.pid;
    const out: Record<string, unknown> = { ...s };
    // Top-level fields equal to the previous line's (engine, frontend, sessions, socket…) are left out.
    for (const key of Object.keys(s)) {
      if (KEPT.has(key)) continue;
      const json = JSON.stringify(s[key]);
      if (delta && this.fields.get(key) === json) delete out[key];
      this.fields.set(key, json);
    }
    // Counters: only the ones that changed.
    if (delta && isRecord(s.counters) && this.counters) {
      const prev = this.counters;
      out.counters = Object.fromEntries(Object.entries(s.counters).filter(([k, v]) => prev[k] !== v));
    }
    this.counters = isRecord(s.counters) ? s.counters : undefined;
    if (Array.isArray(s.queues)) {
      out.queues = s.queues.map((q: unknown) => {
        if (!isRecord(q)) return q;
        const memo = this.queues.get(q.index);
        const recent = Array.isArray(q.recent) ? q.recent : [];
        const c: Record<string, unknown> = { ...q };
        if (delta && memo) {
          if (q.slots === memo.slots) delete c.slots;
          c.recent = recent.filter((r) => idOf(r) > memo.maxId);
          // Ring fields (indexes, flags, …): only the ones that changed.
          for (const [k, v] of Object.entries(q)) if (k !== 'index' && k !== 'recent' && k !== 'slots' && memo.fields[k] === v) delete c[k];
        }
        if (typeof c.slots === 'string') {
          c.slotsRle = rleSlots(c.slots);
          delete c.slots;
        }
        this.queues.set(q.index, { slots: q.slots, maxId: Math.max(memo?.maxId ?? -1, ...recent.map(idOf)), recent, fields: { ...q } });
        return c;
      });
    }
    return { snapshot: out, delta };
  }
}

/** Undoes {@link DeltaEncoder} while reading a trace. */
class DeltaDecoder {
  private readonly fields = new Map<string, unknown>();
  private counters: Record<string, unknown> | undefined;
  private readonly queues = new Map<unknown, { slots: unknown; recent: unknown[]; fields: Record<string, unknown> }>();

  decode(s: Record<string, unknown>, delta: boolean): Record<string, unknown> {
    if (!delta) this.fields.clear();
    const out: Record<string, unknown> = { ...s };
    if (delta) for (const [key, value] of this.fields) if (!(key in s)) out[key] = value;
    for (const key of Object.keys(s)) if (!KEPT.has(key)) this.fields.set(key, s[key]);
    if (delta && this.counters && isRecord(s.counters)) out.counters = { ...this.counters, ...s.counters };
    this.counters = isRecord(out.counters) ? out.counters : undefined;
    if (Array.isArray(s.queues)) {
      out.queues = s.queues.slice(0, 64).map((q: unknown) => {
        if (!isRecord(q)) return q;
        const memo = delta ? this.queues.get(q.index) : undefined;
        const c: Record<string, unknown> = { ...q };
        const recent = Array.isArray(q.recent) ? q.recent : [];
        if (typeof q.slotsRle === 'string') {
          c.slots = unRleSlots(q.slotsRle) ?? '';
          delete c.slotsRle;
        }
        if (memo) {
          for (const [k, v] of Object.entries(memo.fields)) if (!(k in c)) c[k] = v;
          if (!('slots' in c)) c.slots = memo.slots;
          c.recent = [...recent, ...memo.recent].slice(0, SNAPSHOT_RECENT);
        }
        this.queues.set(q.index, { slots: c.slots, recent: Array.isArray(c.recent) ? c.recent : [], fields: { ...c } });
        return c;
      });
    }
    return out;
  }
}

/** Writes the lines of a trace; skips snapshots in which nothing moved. */
export class TraceRecorder {
  private lastKey: string | undefined;
  private readonly encoder = new DeltaEncoder();
  private readonly t0: number;
  frames = 0;
  bytes = 0;

  constructor(private readonly write: (text: string) => void, source: string, now = Date.now()) {
    this.t0 = now;
    this.emit(traceHeader(source, new Date(now)));
  }

  private emit(text: string): void {
    this.bytes += Buffer.byteLength(text);
    this.write(text);
  }

  /**
   * Returns true when the snapshot was written. `force` writes it even when nothing moved (a
   * caller that already filters, like the rings view, keeps its frames and the trace's aligned).
   */
  add(snapshot: Record<string, unknown>, now = Date.now(), extra?: { control?: object }, force = false): boolean {
    const key = motionKey(snapshot);
    if (key === this.lastKey && !force) return false;
    this.lastKey = key;
    this.frames++;
    const { snapshot: compact, delta } = this.encoder.encode(snapshot);
    this.emit(`${JSON.stringify({ t: Math.max(0, now - this.t0), ...(delta ? { delta: true } : {}), snapshot: compact, ...(extra?.control ? { control: extra.control } : {}) })}\n`);
    return true;
  }
}

export interface ParsedTrace {
  header: TraceHeader;
  entries: TraceEntry[];
  /** lines that were not trace entries (dropped) */
  skipped: number;
}

/**
 * Parses a trace line by line (untrusted: a file from a bug report): push() each line (without its
 * newline), then finish(). Throws when it is not a trace. `full` turns true at MAX_TRACE_FRAMES.
 */
export class TraceParser {
  private header: TraceHeader | undefined;
  private readonly entries: TraceEntry[] = [];
  private skipped = 0;
  private readonly decoder = new DeltaDecoder();

  get full(): boolean {
    return this.entries.length >= MAX_TRACE_FRAMES;
  }

  /** A line longer than MAX_TRACE_LINE (the caller need not keep it to count it). */
  skipLine(): void {
    this.skipped++;
  }

  push(line: string): void {
    if (!line.trim()) return;
    if (line.length > MAX_TRACE_LINE) {
      this.skipped++;
      return;
    }
    let v: unknown;
    try {
      v = JSON.parse(line);
    } catch {
      this.skipped++;
      return;
    }
    if (!this.header) {
      if (!isRecord(v) || v.type !== TRACE_TYPE) throw new Error('not a vlab rings trace (the first line is not a trace header)');
      if (v.version !== TRACE_VERSION) throw new Error(`trace version ${String(v.version)} is not supported (this build reads version ${TRACE_VERSION})`);
      this.header = { type: TRACE_TYPE, version: TRACE_VERSION, telemetrySchema: typeof v.telemetrySchema === 'number' ? v.telemetrySchema : 0, startedAt: String(v.startedAt ?? ''), source: String(v.source ?? '') };
      return;
    }
    if (isRecord(v) && typeof v.t === 'number' && Number.isFinite(v.t) && isRecord(v.snapshot) && v.snapshot.type === 'snapshot' && !this.full) {
      this.entries.push({ t: v.t, snapshot: this.decoder.decode(v.snapshot, v.delta === true), ...(isRecord(v.control) ? { control: v.control } : {}) });
    } else this.skipped++;
  }

  finish(): ParsedTrace {
    if (!this.header) throw new Error('empty trace');
    return { header: this.header, entries: this.entries, skipped: this.skipped };
  }
}

/** Parses a trace file's text (untrusted: a file from a bug report). Throws when it is not a trace. */
export function parseTrace(text: string): ParsedTrace {
  const p = new TraceParser();
  for (const line of text.split('\n')) p.push(line);
  return p.finish();
}
