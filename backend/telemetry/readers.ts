/**
 * The telemetry socket's typed readers (docs/telemetry.md): each turns an untrusted reply (a line
 * from the socket, or a trace file's snapshot) into the schema's type (schema.ts), with the caps
 * that bound what a reply can make a client hold. Every client reads through them (client.ts,
 * `vlab rings`, `vlab fault`, `vlab status`, the extension's status and rings view), so
 * "untrusted input, capped" is written once, here. Pure: no node or vscode imports, so the rings
 * webview bundle may import it too.
 */
import { type ConformanceSnapshot, type RuleCount, SNAPSHOT_VIOLATIONS, type ViolationRecord } from '../conformance/report';
import type { FaultActionKind, FaultRuleView } from '../faults/plan';
import {
  COUNTER_NAMES, SLOT_CHAR, SLOT_STATES, SNAPSHOT_RECENT, TELEMETRY_SCHEMA, ZERO_COUNTERS, isRecord, slotStateOf,
  type AvailRingHeader, type BackendSnapshot, type ChainDescriptor, type ChainDetail, type Counters, type DecodedHeader,
  type FaultClearReply, type FaultListReply, type FaultSetReply, type FaultsSnapshot, type OneReplyRequest, type QueueSnapshot,
  type RecentRequest, type ReplyFor, type ReplyMap, type SessionSummary, type TelemetryError, type TelemetryReply,
} from './schema';

// A reply is untrusted: another process wrote it (a back-end of another version, or anything that
// listens on the socket path), or a trace file from a bug report holds it. A reader returns the
// schema's type or undefined: a wrong envelope (not an object, another "type", another "schema") is
// refused; inside it, a list is cut to its cap, a string to its length, a number out of its range
// is clamped, and a field of the wrong type reads as its empty value (0, "", null, false, []).
// Readers never throw. The caps sit above anything this back-end sends, so reading one of its
// replies gives back the same JSON, key for key (readers.test.ts checks it); a field a back-end
// older than the schema left out (limits, faults) reads as its empty value.

/** What a reader keeps of a reply at the most (each sits at or above what this back-end sends). */
export const REPLY_CAPS = Object.freeze({
  /** Queue Size is at most 32768 (virtio 1.2 §2.7): caps sizes, slot strings and head numbers. */
  queueSize: 32768,
  /** Queues read from a snapshot (the back-end serves 1; a frame shows fewer, extension/vscode/rings/messages.ts). */
  snapshotQueues: 64,
  /** Sessions read from a snapshot: the device's own limit (crypto/device.ts MAX_SESSIONS). */
  snapshotSessions: 1024,
  /** Descriptors listed in a chain detail (inspect.ts lists at most 64). */
  chainDescriptors: 64,
  /** Fault rules read from a reply (faults/plan.ts MAX_RULES). */
  faultRules: 64,
  /** A name: opcode, status, session id, algorithm, engine, feature mask, fault rule text (≤ 200). */
  nameText: 256,
  /** A sentence: why a chain or queue was refused, the engine's reason, an error message, a path. */
  reasonText: 4096,
  /** The rules that hit one request ("#1 status=err, #2 delay=20"): up to 64 rules of 200 characters. */
  faultText: 16384,
  /** Hex of an IV or a data preview. */
  hexText: 128,
  /** Rules in a conformance report (conformance/rules.ts has 40). */
  conformanceRules: 128,
  /** Violations in a conformance report's recent list (the back-end sends SNAPSHOT_VIOLATIONS). */
  conformanceRecent: SNAPSHOT_VIOLATIONS,
});
const CAP = REPLY_CAPS;
const U16 = 0xffff;
const U32 = 0xffff_ffff;
const SAFE = Number.MAX_SAFE_INTEGER;

type Raw = Readonly<Record<string, unknown>>;
const EMPTY: Raw = Object.freeze({});

function record(v: unknown): Raw {
  return isRecord(v) ? v : EMPTY;
}

/** An integer in min..max: a finite number is truncated and clamped, anything else is `fallback`. */
function int(v: unknown, min: number, max: number, fallback = min): number {
  return typeof v === 'number' && Number.isFinite(v) ? Math.min(max, Math.max(min, Math.trunc(v))) : fallback;
}

function intOrNull(v: unknown, min: number, max: number): number | null {
  return typeof v === 'number' && Number.isFinite(v) ? int(v, min, max) : null;
}

/** A free-running ring index or flags word: a u16 (wrapped, as the ring's arithmetic is), or null. */
function u16OrNull(v: unknown): number | null {
  return typeof v === 'number' && Number.isFinite(v) ? Math.trunc(v) & U16 : null;
}

function isU16(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= U16;
}

/** A string cut to `max` (a finite number reads as its decimal text), else `fallback`. */
function text(v: unknown, max: number, fallback = ''): string {
  if (typeof v === 'string') return v.length > max ? v.slice(0, max) : v;
  if (typeof v === 'number' && Number.isFinite(v)) return String(v);
  return fallback;
}

function textOrNull(v: unknown, max: number): string | null {
  return typeof v === 'string' || (typeof v === 'number' && Number.isFinite(v)) ? text(v, max) : null;
}

function oneOf<T extends string>(v: unknown, options: readonly T[], fallback: T): T {
  return options.find((o) => o === v) ?? fallback;
}

/** The first `max` items of an array, each read by `read`; items it refuses are left out. */
function list<T>(v: unknown, max: number, read: (item: unknown, position: number) => T | undefined): T[] {
  if (!Array.isArray(v)) return [];
  const out: T[] = [];
  const n = Math.min(v.length, max);
  for (let i = 0; i < n; i++) {
    const item = read(v[i], i);
    if (item !== undefined) out.push(item);
  }
  return out;
}

/** Slot characters, at most `size`: a character that is not one of SLOT_CHAR reads as free. */
function slots(v: unknown, size: number): string {
  if (typeof v !== 'string') return '';
  const s = v.length > size ? v.slice(0, size) : v;
  let out = '';
  for (let i = 0; i < s.length; i++) out += slotStateOf(s[i]!) ? s[i] : SLOT_CHAR.free;
  return out;
}

function readCounters(v: unknown): Counters {
  const c = record(v);
  const out: Counters = { ...ZERO_COUNTERS };
  for (const k of COUNTER_NAMES) out[k] = int(c[k], 0, SAFE);
  return out;
}

const FAULT_ACTIONS: Readonly<Record<FaultActionKind, true>> = { status: true, delay: true, stall: true, irq: true, 'short-used': true, 'flip-dst': true };

function isFaultAction(v: unknown): v is FaultActionKind {
  return typeof v === 'string' && Object.hasOwn(FAULT_ACTIONS, v);
}

/** A rule of the plan; one whose action this schema does not know is left out. */
function readFaultRule(v: unknown): FaultRuleView | undefined {
  if (!isRecord(v) || !isFaultAction(v.action)) return undefined;
  return {
    id: int(v.id, 0, SAFE), rule: text(v.rule, CAP.nameText), action: v.action,
    seen: int(v.seen, 0, SAFE), hits: int(v.hits, 0, SAFE), retired: v.retired === true,
  };
}

function readFaults(v: unknown): FaultsSnapshot {
  const f = record(v);
  const by = record(f.byAction);
  const n = (x: unknown): number => int(x, 0, SAFE);
  return {
    injected: n(f.injected),
    byAction: { status: n(by.status), delay: n(by.delay), stall: n(by.stall), irq: n(by.irq), 'short-used': n(by['short-used']), 'flip-dst': n(by['flip-dst']) },
    stalledBy: intOrNull(f.stalledBy, 0, SAFE),
    rules: list(f.rules, CAP.faultRules, readFaultRule),
    heldRequests: n(f.heldRequests), delayedInFlight: n(f.delayedInFlight),
    interruptsWithheld: n(f.interruptsWithheld), interruptsDuplicated: n(f.interruptsDuplicated),
  };
}

function readSession(v: unknown): SessionSummary | undefined {
  if (!isRecord(v)) return undefined;
  return {
    id: text(v.id, CAP.nameText, '?'), algorithm: text(v.algorithm, CAP.nameText),
    direction: oneOf(v.direction, ['encrypt', 'decrypt', 'unknown'] as const, 'unknown'),
    requests: int(v.requests, 0, SAFE), createdAtMs: int(v.createdAtMs, 0, SAFE),
  };
}

function readRecent(v: unknown): RecentRequest | undefined {
  if (!isRecord(v)) return undefined;
  return {
    id: int(v.id, 0, SAFE), head: int(v.head, 0, CAP.queueSize - 1), opcode: text(v.opcode, CAP.nameText, '?'), sessionId: text(v.sessionId, CAP.nameText, '-'),
    srcLen: int(v.srcLen, 0, U32), dstLen: int(v.dstLen, 0, U32), status: text(v.status, CAP.nameText, '?'),
    latencyUs: int(v.latencyUs, 0, SAFE), atMs: int(v.atMs, 0, SAFE), descriptors: int(v.descriptors, 0, U16), indirect: v.indirect === true,
    rejected: textOrNull(v.rejected, CAP.reasonText), fault: textOrNull(v.fault, CAP.faultText),
    ...(typeof v.badRequest === 'string' ? { badRequest: text(v.badRequest, CAP.reasonText) } : {}),
  };
}

function readQueue(v: unknown, position: number): QueueSnapshot | undefined {
  if (!isRecord(v)) return undefined;
  const size = int(v.size, 0, CAP.queueSize);
  return {
    index: int(v.index, 0, U16, position), size, ready: v.ready === true, enabled: v.enabled === true, broken: textOrNull(v.broken, CAP.reasonText),
    availIdx: u16OrNull(v.availIdx), usedIdx: u16OrNull(v.usedIdx), lastAvailIdx: u16OrNull(v.lastAvailIdx),
    availFlags: u16OrNull(v.availFlags), usedFlags: u16OrNull(v.usedFlags), usedEvent: u16OrNull(v.usedEvent), availEvent: u16OrNull(v.availEvent),
    inFlight: int(v.inFlight, 0, CAP.queueSize), slots: slots(v.slots, size), recent: list(v.recent, SNAPSHOT_RECENT, readRecent),
  };
}

/** A snapshot line (or a trace's snapshot) as the schema's type; undefined when it is not a schema-2 snapshot. */
export function readSnapshot(raw: unknown): BackendSnapshot | undefined {
  if (!isRecord(raw) || raw.type !== 'snapshot' || raw.schema !== TELEMETRY_SCHEMA) return undefined;
  const fe = record(raw.frontend);
  const engine = record(raw.engine);
  const limits = record(raw.limits);
  return {
    type: 'snapshot', schema: TELEMETRY_SCHEMA, pid: int(raw.pid, 0, SAFE), uptimeMs: int(raw.uptimeMs, 0, SAFE), socket: text(raw.socket, CAP.reasonText),
    frontend: {
      connected: fe.connected === true, owner: fe.owner === true, features: text(fe.features, CAP.nameText),
      protocolFeatures: text(fe.protocolFeatures, CAP.nameText), memoryRegions: int(fe.memoryRegions, 0, U16),
    },
    engine: { name: text(engine.name, CAP.nameText, '?'), reason: text(engine.reason, CAP.reasonText) },
    limits: { maxDataLen: int(limits.maxDataLen, 0, SAFE), maxSessions: int(limits.maxSessions, 0, SAFE), maxChainsPerPass: int(limits.maxChainsPerPass, 0, SAFE) },
    sessions: list(raw.sessions, CAP.snapshotSessions, readSession),
    counters: readCounters(raw.counters),
    queues: list(raw.queues, CAP.snapshotQueues, readQueue),
    faults: readFaults(raw.faults),
    ...(isRecord(raw.conformance) ? { conformance: readConformance(raw.conformance) } : {}),
  };
}

const RULE_KINDS: readonly ViolationRecord['kind'][] = ['driver', 'device'];

function readViolation(v: unknown): ViolationRecord | undefined {
  if (!isRecord(v)) return undefined;
  return {
    seq: int(v.seq, 0, SAFE), rule: text(v.rule, CAP.nameText, '?'), clause: text(v.clause, CAP.nameText), kind: oneOf(v.kind, RULE_KINDS, 'driver'),
    queue: intOrNull(v.queue, 0, U16), head: intOrNull(v.head, 0, CAP.queueSize - 1), detail: text(v.detail, CAP.reasonText), atMs: int(v.atMs, 0, SAFE),
  };
}

function readRuleCount(v: unknown): RuleCount | undefined {
  const last = isRecord(v) ? readViolation(v.last) : undefined;
  if (!isRecord(v) || !last) return undefined;
  return { rule: text(v.rule, CAP.nameText, '?'), clause: text(v.clause, CAP.nameText), kind: oneOf(v.kind, RULE_KINDS, 'driver'), count: int(v.count, 0, SAFE), last };
}

/** A snapshot's `conformance` section (docs/telemetry.md#conformance); absent when the back-end sent none. */
function readConformance(c: Raw): ConformanceSnapshot {
  return {
    enabled: c.enabled === true, strict: c.strict === true, features: c.features === 'told' ? 'told' : 'offered',
    violations: int(c.violations, 0, SAFE), refusals: int(c.refusals, 0, SAFE),
    rules: list(c.rules, CAP.conformanceRules, readRuleCount), recent: list(c.recent, CAP.conformanceRecent, readViolation),
  };
}

const CHAIN_MATCHES: readonly ChainDetail['match'][] = ['served', 'stale', 'pending', 'unknown'];

function readDescriptor(v: unknown): ChainDescriptor | undefined {
  if (!isRecord(v)) return undefined;
  return {
    table: v.table === 'indirect' ? 'indirect' : 'ring', i: int(v.i, 0, CAP.queueSize - 1), addr: text(v.addr, 20, '?'),
    len: int(v.len, 0, U32), flags: text(v.flags, 3), next: int(v.next, 0, U16),
  };
}

function readHeader(v: unknown): DecodedHeader | null {
  if (!isRecord(v)) return null;
  return {
    opcode: text(v.opcode, CAP.nameText, '?'), algo: int(v.algo, 0, U32), sessionId: text(v.sessionId, CAP.nameText, '?'), algorithm: textOrNull(v.algorithm, CAP.nameText),
    flag: int(v.flag, 0, U32), ivLen: int(v.ivLen, 0, U32), srcLen: int(v.srcLen, 0, U32), dstLen: int(v.dstLen, 0, U32), opType: int(v.opType, 0, U32),
  };
}

/** A chain detail line as the schema's type; undefined when it is not one. */
export function readChain(raw: unknown): ChainDetail | undefined {
  if (!isRecord(raw) || raw.type !== 'chain') return undefined;
  return {
    type: 'chain', queue: int(raw.queue, 0, U16), head: int(raw.head, 0, CAP.queueSize - 1), state: oneOf(raw.state, SLOT_STATES, 'free'),
    descriptors: list(raw.descriptors, CAP.chainDescriptors, readDescriptor),
    readableLength: int(raw.readableLength, 0, SAFE), writableLength: int(raw.writableLength, 0, SAFE), header: readHeader(raw.header),
    iv: textOrNull(raw.iv, CAP.hexText), srcPreview: textOrNull(raw.srcPreview, CAP.hexText), dstPreview: textOrNull(raw.dstPreview, CAP.hexText),
    status: textOrNull(raw.status, CAP.nameText), request: readRecent(raw.request) ?? null, match: oneOf(raw.match, CHAIN_MATCHES, 'unknown'),
    rejected: textOrNull(raw.rejected, CAP.reasonText), fault: textOrNull(raw.fault, CAP.faultText), error: textOrNull(raw.error, CAP.reasonText),
  };
}

/** An avail ring header line: three numbers, so it is refused unless each is in range (addr a safe integer, flags and idx u16). */
export function readAvail(raw: unknown): AvailRingHeader | undefined {
  if (!isRecord(raw) || raw.type !== 'avail') return undefined;
  const { addr, flags, idx } = raw;
  if (typeof addr !== 'number' || !Number.isSafeInteger(addr) || addr < 0 || !isU16(flags) || !isU16(idx)) return undefined;
  return { type: 'avail', addr, flags, idx };
}

/** An error line (`request` kept when it names a refused control request). */
export function readError(raw: unknown): TelemetryError | undefined {
  if (!isRecord(raw) || raw.type !== 'error') return undefined;
  return { type: 'error', ...(raw.request !== undefined ? { request: text(raw.request, CAP.nameText) } : {}), message: text(raw.message, CAP.reasonText) };
}

/** The answer to a fault-injection control request, or an error line; undefined for anything else. */
export function readFaultReply(raw: unknown): FaultSetReply | FaultListReply | FaultClearReply | TelemetryError | undefined {
  if (!isRecord(raw)) return undefined;
  if (raw.type === 'error') return readError(raw);
  if (raw.ok !== true) return undefined;
  switch (raw.type) {
    case 'fault-set':
      return { type: 'fault-set', ok: true, added: list(raw.added, CAP.faultRules, readFaultRule), faults: readFaults(raw.faults) };
    case 'fault-list':
      return { type: 'fault-list', ok: true, faults: readFaults(raw.faults) };
    case 'fault-clear':
      return { type: 'fault-clear', ok: true, cleared: list(raw.cleared, CAP.faultRules, (id) => intOrNull(id, 0, SAFE) ?? undefined), faults: readFaults(raw.faults) };
    default:
      return undefined;
  }
}

const REPLY_READERS: { readonly [K in keyof ReplyMap]: (raw: unknown) => ReplyMap[K] | undefined } = {
  snapshot: (raw) => readSnapshot(raw) ?? readError(raw),
  chain: (raw) => readChain(raw) ?? readError(raw),
  avail: (raw) => readAvail(raw) ?? readError(raw),
  'avail-allow': (raw) => readAvail(raw) ?? readError(raw),
  'fault-set': (raw) => {
    const r = readFaultReply(raw);
    return r?.type === 'fault-set' || r?.type === 'error' ? r : undefined;
  },
  'fault-list': (raw) => {
    const r = readFaultReply(raw);
    return r?.type === 'fault-list' || r?.type === 'error' ? r : undefined;
  },
  'fault-clear': (raw) => {
    const r = readFaultReply(raw);
    return r?.type === 'fault-clear' || r?.type === 'error' ? r : undefined;
  },
};

/** The reply to `req` (its own type or an error line); undefined when `raw` answers something else. */
export function readReply<R extends OneReplyRequest>(req: R, raw: unknown): ReplyFor<R> | undefined {
  return replyOfType<R['type']>(req.type, raw);
}

function replyOfType<K extends keyof ReplyMap>(type: K, raw: unknown): ReplyMap[K] | undefined {
  return REPLY_READERS[type](raw);
}

/** One reply line's JSON, or undefined when it is not JSON. */
export function parseJsonLine(line: string): unknown {
  try {
    return JSON.parse(line) as unknown;
  } catch {
    return undefined;
  }
}

/** A snapshot, chain, avail or error line (untrusted) as the schema's type; undefined for anything else. */
export function parseReply(line: string): TelemetryReply | undefined {
  const raw = parseJsonLine(line);
  return readSnapshot(raw) ?? readChain(raw) ?? readAvail(raw) ?? readError(raw);
}
