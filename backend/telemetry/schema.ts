/**
 * The telemetry socket's format (docs/telemetry.md), declared once: the types of every request and
 * reply (fault-injection control included), and the readers that turn an untrusted reply into
 * those types. The backend serves it (server.ts, vhost-user-backend.ts); every client reads it
 * through these readers (client.ts, `vlab rings`, `vlab fault`, `vlab status`, the extension's
 * status and rings view), so "untrusted input, capped" is written once, here. Pure: no node or
 * vscode imports, so the rings webview bundle may import it too.
 */

/** Bumped when a field changes meaning or goes away (adding a field does not bump it). */
export const TELEMETRY_SCHEMA = 2;

import type { FaultActionKind, FaultPlanSnapshot, FaultRuleView } from '../faults/plan';

export const MIN_INTERVAL_MS = 20;
export const MAX_INTERVAL_MS = 60_000;
export const DEFAULT_INTERVAL_MS = 500;
/** A client line longer than this is not a telemetry request: the backend drops the client. */
export const MAX_REQUEST_LINE = 4096;
/** A snapshot is a few KiB (one character per slot, 16 recent requests); far bigger is refused. */
export const MAX_REPLY_LINE = 1 << 20;
/** Recent requests per queue in a snapshot. */
export const SNAPSHOT_RECENT = 16;
/** Bytes of source / destination shown in a chain's hex preview. */
export const PREVIEW_BYTES = 16;

// ---------------------------------------------------------------- slot states

/**
 * Where a descriptor-table slot is in its life (virtio 1.2 §2.7, split virtqueue), as the device
 * can tell from the rings: every descriptor of a chain gets its chain's state.
 */
export type SlotState =
  /** not part of a chain the device can see */
  | 'free'
  /** in the avail ring between last_avail_idx and avail->idx: posted by the driver, not yet taken */
  | 'posted'
  /** taken by the device, not yet in the used ring */
  | 'device'
  /** in the used ring between used_event and used->idx: returned, not yet reclaimed by the driver */
  | 'returned';

export const SLOT_STATES: readonly SlotState[] = ['free', 'posted', 'device', 'returned'];
/** One character per slot keeps a 1024-slot queue at 1 KiB per snapshot. */
export const SLOT_CHAR: Readonly<Record<SlotState, string>> = { free: '.', posted: 'a', device: 'd', returned: 'u' };
export const SLOT_LABEL: Readonly<Record<SlotState, string>> = {
  free: 'free',
  posted: 'posted by the driver, not yet taken',
  device: 'held by the device',
  returned: 'returned, not yet reclaimed',
};

const CHAR_STATE: Readonly<Record<string, SlotState>> = Object.fromEntries(SLOT_STATES.map((s) => [SLOT_CHAR[s], s]));

/** The state a slot character stands for; undefined for anything else (untrusted input). */
export function slotStateOf(ch: string): SlotState | undefined {
  return Object.hasOwn(CHAR_STATE, ch) ? CHAR_STATE[ch] : undefined;
}

// ---------------------------------------------------------------- snapshot

export interface RecentRequest {
  /** the backend's request sequence number (1 = first request served) */
  readonly id: number;
  /** descriptor-table slot of the chain's head */
  readonly head: number;
  /** e.g. "CIPHER_ENCRYPT"; "REJECTED" for a chain that broke a ring rule */
  readonly opcode: string;
  readonly sessionId: string;
  readonly srcLen: number;
  readonly dstLen: number;
  /** "OK", "BADMSG", "ERR", …; "-" for a rejected chain (no status written) */
  readonly status: string;
  readonly latencyUs: number;
  /** ms since the backend started */
  readonly atMs: number;
  /** descriptors in the chain (inside the indirect table when indirect) */
  readonly descriptors: number;
  readonly indirect: boolean;
  /** why the chain was rejected (returned with len 0), or null */
  readonly rejected: string | null;
  /** fault-injection rule that hit this request, or null (set by the fault injector when present) */
  readonly fault: string | null;
  /** why the device refused a malformed request (answered ERR, nothing processed); absent otherwise */
  readonly badRequest?: string;
}

export interface Counters {
  requests: number;
  bytesIn: number;
  bytesOut: number;
  kicks: number;
  interrupts: number;
  rejectedChains: number;
  unanswerable: number;
  statusOk: number;
  statusErr: number;
  statusBadmsg: number;
  statusNotsupp: number;
  statusInvsess: number;
  sessionsCreated: number;
  sessionsClosed: number;
  sessionCreateFailures: number;
  /** CREATE_CRYPTO_SESSION refused because MAX_SESSIONS sessions were open (also in sessionCreateFailures). */
  sessionsRefusedAtLimit: number;
  /** vhost-user connections closed at accept because the peer's uid (SO_PEERCRED) is not ours. */
  peersRefused: number;
  /** Log lines not written by the per-reason rate limit (each reason's summary line says how many). */
  logLinesSuppressed: number;
}

/** One open crypto session (crypto/device.ts builds them). */
export interface SessionSummary {
  readonly id: string;
  readonly algorithm: string;
  readonly direction: 'encrypt' | 'decrypt' | 'unknown';
  readonly requests: number;
  readonly createdAtMs: number;
}

export interface QueueSnapshot {
  index: number;
  size: number;
  ready: boolean;
  enabled: boolean;
  broken: string | null;
  /** avail->idx as the guest published it (free-running u16) */
  availIdx: number | null;
  /** our used->idx */
  usedIdx: number | null;
  /** next avail entry the device consumes (= used->avail_event it publishes) */
  lastAvailIdx: number | null;
  availFlags: number | null;
  usedFlags: number | null;
  /** avail->used_event written by the driver (EVENT_IDX) */
  usedEvent: number | null;
  /** used->avail_event as the device last published it */
  availEvent: number | null;
  /** chains taken but not yet returned */
  inFlight: number;
  /** one SLOT_CHAR per descriptor-table slot; "" before the ring is set up */
  slots: string;
  /** newest first, at most SNAPSHOT_RECENT */
  recent: RecentRequest[];
}

export interface BackendSnapshot {
  type: 'snapshot';
  schema: typeof TELEMETRY_SCHEMA;
  pid: number;
  uptimeMs: number;
  socket: string;
  frontend: { connected: boolean; owner: boolean; features: string; protocolFeatures: string; memoryRegions: number };
  engine: { name: string; reason: string };
  /** What the device accepts (the guest sees QEMU's own config; these are the back-end's). */
  limits: { maxDataLen: number; maxSessions: number; maxChainsPerPass: number };
  sessions: SessionSummary[];
  counters: Counters;
  queues: QueueSnapshot[];
  /** Fault injection (docs/fault-injection.md). */
  faults: FaultsSnapshot;
}

/** Fault injection as telemetry shows it (docs/fault-injection.md). */
export interface FaultsSnapshot extends FaultPlanSnapshot {
  /** Requests waiting on the avail ring because of a stall (0 when not stalled). */
  heldRequests: number;
  /** Completions a delay rule is holding back right now. */
  delayedInFlight: number;
  /** Call-eventfd writes left out (irq=withhold) and added (irq=duplicate). */
  interruptsWithheld: number;
  interruptsDuplicated: number;
}

// ---------------------------------------------------------------- chain detail

export interface ChainDescriptor {
  /** "ring": the queue's descriptor table; "indirect": the table an INDIRECT descriptor points to */
  readonly table: 'ring' | 'indirect';
  readonly i: number;
  readonly addr: string;
  readonly len: number;
  /** N = NEXT, W = WRITE (device-writable), I = INDIRECT */
  readonly flags: string;
  readonly next: number;
}

/** The virtio-crypto data request header (virtio 1.2 §5.9.7.2, legacy 72-byte form), decoded. */
export interface DecodedHeader {
  readonly opcode: string;
  readonly algo: number;
  readonly sessionId: string;
  /** the session's algorithm as the backend created it ("AES-256-CBC"), or null when unknown */
  readonly algorithm: string | null;
  readonly flag: number;
  readonly ivLen: number;
  readonly srcLen: number;
  readonly dstLen: number;
  readonly opType: number;
}

export interface ChainDetail {
  type: 'chain';
  queue: number;
  head: number;
  state: SlotState;
  descriptors: ChainDescriptor[];
  readableLength: number;
  writableLength: number;
  header: DecodedHeader | null;
  /** hex */
  iv: string | null;
  /** first PREVIEW_BYTES of the source and destination, hex; keys never appear in a data request */
  srcPreview: string | null;
  dstPreview: string | null;
  /** the status byte the device wrote (last writable byte), decoded */
  status: string | null;
  /** the newest served request at this head, as the data path recorded it */
  request: RecentRequest | null;
  /**
   * "served": the header in guest memory matches the recorded request; "stale": the guest has
   * reused the memory since (the decoded bytes are what is there now); "pending": not served yet;
   * "unknown": no request recorded at this head.
   */
  match: 'served' | 'stale' | 'pending' | 'unknown';
  rejected: string | null;
  fault: string | null;
  /** why the chain could not be read (then the fields above are empty) */
  error: string | null;
}

export interface TelemetryError {
  type: 'error';
  /** the control request refused ("fault-set", …): set on the answer to a fault-injection request */
  request?: string;
  message: string;
}

/**
 * The avail ring header (virtio 1.2 §2.7.6: le16 flags, le16 idx) at a guest-physical address, read
 * from guest memory now. For a queue the backend does not serve (the crypto device's control queue,
 * which QEMU services and whose address QMP's vring-avail gives): QEMU 7.2 stops reporting that
 * queue's avail idx once the vhost device runs.
 */
export interface AvailRingHeader {
  type: 'avail';
  addr: number;
  flags: number;
  idx: number;
}

export type TelemetryReply = BackendSnapshot | ChainDetail | AvailRingHeader | TelemetryError;

// ---------------------------------------------------------------- requests

export type TelemetryRequest =
  | { type: 'snapshot' }
  | { type: 'subscribe'; intervalMs: number }
  /** the descriptor chain at one head slot, decoded (built only when asked) */
  | { type: 'chain'; queue: number; head: number }
  /**
   * the avail ring header at guest-physical `addr`: only at a ring address the backend serves or one
   * the lab registered with avail-allow (2-byte aligned; the backend checks it is mapped)
   */
  | { type: 'avail'; addr: number }
  /** registers `addr` as a ring the lab resolved (the control queue's vring-avail from QMP), then reads it like avail */
  | { type: 'avail-allow'; addr: number };

// ---------------------------------------------------------------- fault-injection control

/** Fault-injection control requests share the socket (docs/fault-injection.md#control-socket). */
export type FaultRequest =
  | { readonly type: 'fault-set'; readonly rules: readonly string[] }
  | { readonly type: 'fault-list' }
  | { readonly type: 'fault-clear'; readonly id?: number };

export interface FaultSetReply { readonly type: 'fault-set'; readonly ok: true; readonly added: readonly FaultRuleView[]; readonly faults: FaultsSnapshot }
export interface FaultListReply { readonly type: 'fault-list'; readonly ok: true; readonly faults: FaultsSnapshot }
export interface FaultClearReply { readonly type: 'fault-clear'; readonly ok: true; readonly cleared: readonly number[]; readonly faults: FaultsSnapshot }
/** What the back-end answers a control request (faults/control.ts): its reply, or a refusal naming the request and why. */
export type FaultReply = FaultSetReply | FaultListReply | FaultClearReply | (TelemetryError & { readonly request: string });

const FAULT_REQUEST_KINDS: Readonly<Record<FaultRequest['type'], true>> = { 'fault-set': true, 'fault-list': true, 'fault-clear': true };

export function isFaultRequestType(v: unknown): v is FaultRequest['type'] {
  return typeof v === 'string' && Object.hasOwn(FAULT_REQUEST_KINDS, v);
}

/** A control request as parseRequest hands it on: backend/faults/control.ts validates its body. */
export interface FaultControlRequest {
  type: 'fault';
  body: Readonly<Record<string, unknown>> & { readonly type: FaultRequest['type'] };
}

// ---------------------------------------------------------------- request / reply pairs

/** A request answered by one reply line (`subscribe` streams snapshots instead). */
export type OneReplyRequest = Exclude<TelemetryRequest, { type: 'subscribe' }> | FaultRequest;

/** What each one-reply request is answered with: its reply, or an error line. */
interface ReplyMap {
  snapshot: BackendSnapshot | TelemetryError;
  chain: ChainDetail | TelemetryError;
  avail: AvailRingHeader | TelemetryError;
  'avail-allow': AvailRingHeader | TelemetryError;
  'fault-set': FaultSetReply | TelemetryError;
  'fault-list': FaultListReply | TelemetryError;
  'fault-clear': FaultClearReply | TelemetryError;
}

export type ReplyFor<R extends OneReplyRequest> = ReplyMap[R['type']];

export function encodeRequest(req: TelemetryRequest | FaultRequest): string {
  return `${JSON.stringify(req)}\n`;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function clampInterval(v: unknown): number {
  return typeof v === 'number' && Number.isFinite(v) ? Math.min(MAX_INTERVAL_MS, Math.max(MIN_INTERVAL_MS, Math.round(v))) : DEFAULT_INTERVAL_MS;
}

/** Parses one request line from a client (untrusted). */
export function parseRequest(line: string): TelemetryRequest | FaultControlRequest | TelemetryError {
  let raw: unknown;
  try {
    raw = JSON.parse(line);
  } catch {
    return { type: 'error', message: 'request is not JSON' };
  }
  if (!isRecord(raw)) return { type: 'error', message: 'request is not a JSON object' };
  switch (raw.type) {
    case 'snapshot':
      return { type: 'snapshot' };
    case 'subscribe':
      return { type: 'subscribe', intervalMs: clampInterval(raw.intervalMs) };
    case 'chain': {
      const ok = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0 && v < 32768;
      if (!ok(raw.queue) || !ok(raw.head)) return { type: 'error', message: 'chain needs integer "queue" and "head" in 0..32767' };
      return { type: 'chain', queue: raw.queue, head: raw.head };
    }
    case 'avail':
      if (typeof raw.addr !== 'number' || !Number.isSafeInteger(raw.addr) || raw.addr < 0 || raw.addr % 2 !== 0) {
        return { type: 'error', message: 'avail needs an even integer guest-physical "addr"' };
      }
      return { type: 'avail', addr: raw.addr };
    case 'avail-allow':
      if (typeof raw.addr !== 'number' || !Number.isSafeInteger(raw.addr) || raw.addr < 0 || raw.addr % 2 !== 0) {
        return { type: 'error', message: 'avail-allow needs an even integer guest-physical "addr"' };
      }
      return { type: 'avail-allow', addr: raw.addr };
    default:
      if (isFaultRequestType(raw.type)) return { type: 'fault', body: { ...raw, type: raw.type } };
      return { type: 'error', message: 'unknown request type (expected "snapshot", "subscribe", "chain", "avail", "avail-allow", "fault-set", "fault-list" or "fault-clear")' };
  }
}

// ---------------------------------------------------------------- readers (untrusted replies)
//
// A reply is untrusted: another process wrote it (a back-end of another version, or anything that
// listens on the socket path), or a trace file from a bug report holds it. A reader returns the
// schema's type or undefined: a wrong envelope (not an object, another "type", another "schema") is
// refused; inside it, a list is cut to its cap, a string to its length, a number out of its range
// is clamped, and a field of the wrong type reads as its empty value (0, "", null, false, []).
// Readers never throw. The caps sit above anything this back-end sends, so reading one of its
// replies gives back the same JSON, key for key (schema.test.ts checks it); a field a back-end
// older than the schema left out (limits, faults) reads as its empty value.

/** Queue Size is at most 32768 (virtio 1.2 §2.7): caps sizes, slot strings and head numbers. */
export const MAX_QUEUE_SIZE = 32768;
/** Queues read from a snapshot (the back-end serves 1; a frame shows fewer, extension/vscode/rings/messages.ts). */
export const MAX_SNAPSHOT_QUEUES = 64;
/** Sessions read from a snapshot: the device's own limit (crypto/device.ts MAX_SESSIONS). */
export const MAX_SNAPSHOT_SESSIONS = 1024;
/** Descriptors listed in a chain detail (inspect.ts lists at most 64). */
export const MAX_CHAIN_DESCRIPTORS = 64;
/** Fault rules read from a reply (faults/plan.ts MAX_RULES). */
export const MAX_FAULT_RULES = 64;
/** A name: opcode, status, session id, algorithm, engine, feature mask, fault rule text (≤ 200). */
export const MAX_NAME_TEXT = 256;
/** A sentence: why a chain or queue was refused, the engine's reason, an error message, a path. */
export const MAX_REASON_TEXT = 4096;
/** The rules that hit one request ("#1 status=err, #2 delay=20"): up to 64 rules of 200 characters. */
export const MAX_FAULT_TEXT = 16384;
/** Hex of an IV or a data preview. */
const MAX_HEX_TEXT = 128;
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

/** Every counter at 0, in the order the back-end sends them (stats.ts newCounters). */
const ZERO_COUNTERS: Readonly<Counters> = Object.freeze({
  requests: 0, bytesIn: 0, bytesOut: 0, kicks: 0, interrupts: 0, rejectedChains: 0, unanswerable: 0,
  statusOk: 0, statusErr: 0, statusBadmsg: 0, statusNotsupp: 0, statusInvsess: 0,
  sessionsCreated: 0, sessionsClosed: 0, sessionCreateFailures: 0, sessionsRefusedAtLimit: 0, logLinesSuppressed: 0, peersRefused: 0,
});
/** The counters' names in wire order (`vlab status` prints the first 8, the lab view all of them). */
export const COUNTER_NAMES = Object.freeze(Object.keys(ZERO_COUNTERS)) as readonly (keyof Counters)[];

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
    id: int(v.id, 0, SAFE), rule: text(v.rule, MAX_NAME_TEXT), action: v.action,
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
    rules: list(f.rules, MAX_FAULT_RULES, readFaultRule),
    heldRequests: n(f.heldRequests), delayedInFlight: n(f.delayedInFlight),
    interruptsWithheld: n(f.interruptsWithheld), interruptsDuplicated: n(f.interruptsDuplicated),
  };
}

function readSession(v: unknown): SessionSummary | undefined {
  if (!isRecord(v)) return undefined;
  return {
    id: text(v.id, MAX_NAME_TEXT, '?'), algorithm: text(v.algorithm, MAX_NAME_TEXT),
    direction: oneOf(v.direction, ['encrypt', 'decrypt', 'unknown'] as const, 'unknown'),
    requests: int(v.requests, 0, SAFE), createdAtMs: int(v.createdAtMs, 0, SAFE),
  };
}

function readRecent(v: unknown): RecentRequest | undefined {
  if (!isRecord(v)) return undefined;
  return {
    id: int(v.id, 0, SAFE), head: int(v.head, 0, MAX_QUEUE_SIZE - 1), opcode: text(v.opcode, MAX_NAME_TEXT, '?'), sessionId: text(v.sessionId, MAX_NAME_TEXT, '-'),
    srcLen: int(v.srcLen, 0, U32), dstLen: int(v.dstLen, 0, U32), status: text(v.status, MAX_NAME_TEXT, '?'),
    latencyUs: int(v.latencyUs, 0, SAFE), atMs: int(v.atMs, 0, SAFE), descriptors: int(v.descriptors, 0, U16), indirect: v.indirect === true,
    rejected: textOrNull(v.rejected, MAX_REASON_TEXT), fault: textOrNull(v.fault, MAX_FAULT_TEXT),
    ...(typeof v.badRequest === 'string' ? { badRequest: text(v.badRequest, MAX_REASON_TEXT) } : {}),
  };
}

function readQueue(v: unknown, position: number): QueueSnapshot | undefined {
  if (!isRecord(v)) return undefined;
  const size = int(v.size, 0, MAX_QUEUE_SIZE);
  return {
    index: int(v.index, 0, U16, position), size, ready: v.ready === true, enabled: v.enabled === true, broken: textOrNull(v.broken, MAX_REASON_TEXT),
    availIdx: u16OrNull(v.availIdx), usedIdx: u16OrNull(v.usedIdx), lastAvailIdx: u16OrNull(v.lastAvailIdx),
    availFlags: u16OrNull(v.availFlags), usedFlags: u16OrNull(v.usedFlags), usedEvent: u16OrNull(v.usedEvent), availEvent: u16OrNull(v.availEvent),
    inFlight: int(v.inFlight, 0, MAX_QUEUE_SIZE), slots: slots(v.slots, size), recent: list(v.recent, SNAPSHOT_RECENT, readRecent),
  };
}

/** A snapshot line (or a trace's snapshot) as the schema's type; undefined when it is not a schema-2 snapshot. */
export function readSnapshot(raw: unknown): BackendSnapshot | undefined {
  if (!isRecord(raw) || raw.type !== 'snapshot' || raw.schema !== TELEMETRY_SCHEMA) return undefined;
  const fe = record(raw.frontend);
  const engine = record(raw.engine);
  const limits = record(raw.limits);
  return {
    type: 'snapshot', schema: TELEMETRY_SCHEMA, pid: int(raw.pid, 0, SAFE), uptimeMs: int(raw.uptimeMs, 0, SAFE), socket: text(raw.socket, MAX_REASON_TEXT),
    frontend: {
      connected: fe.connected === true, owner: fe.owner === true, features: text(fe.features, MAX_NAME_TEXT),
      protocolFeatures: text(fe.protocolFeatures, MAX_NAME_TEXT), memoryRegions: int(fe.memoryRegions, 0, U16),
    },
    engine: { name: text(engine.name, MAX_NAME_TEXT, '?'), reason: text(engine.reason, MAX_REASON_TEXT) },
    limits: { maxDataLen: int(limits.maxDataLen, 0, SAFE), maxSessions: int(limits.maxSessions, 0, SAFE), maxChainsPerPass: int(limits.maxChainsPerPass, 0, SAFE) },
    sessions: list(raw.sessions, MAX_SNAPSHOT_SESSIONS, readSession),
    counters: readCounters(raw.counters),
    queues: list(raw.queues, MAX_SNAPSHOT_QUEUES, readQueue),
    faults: readFaults(raw.faults),
  };
}

const CHAIN_MATCHES: readonly ChainDetail['match'][] = ['served', 'stale', 'pending', 'unknown'];

function readDescriptor(v: unknown): ChainDescriptor | undefined {
  if (!isRecord(v)) return undefined;
  return {
    table: v.table === 'indirect' ? 'indirect' : 'ring', i: int(v.i, 0, MAX_QUEUE_SIZE - 1), addr: text(v.addr, 20, '?'),
    len: int(v.len, 0, U32), flags: text(v.flags, 3), next: int(v.next, 0, U16),
  };
}

function readHeader(v: unknown): DecodedHeader | null {
  if (!isRecord(v)) return null;
  return {
    opcode: text(v.opcode, MAX_NAME_TEXT, '?'), algo: int(v.algo, 0, U32), sessionId: text(v.sessionId, MAX_NAME_TEXT, '?'), algorithm: textOrNull(v.algorithm, MAX_NAME_TEXT),
    flag: int(v.flag, 0, U32), ivLen: int(v.ivLen, 0, U32), srcLen: int(v.srcLen, 0, U32), dstLen: int(v.dstLen, 0, U32), opType: int(v.opType, 0, U32),
  };
}

/** A chain detail line as the schema's type; undefined when it is not one. */
export function readChain(raw: unknown): ChainDetail | undefined {
  if (!isRecord(raw) || raw.type !== 'chain') return undefined;
  return {
    type: 'chain', queue: int(raw.queue, 0, U16), head: int(raw.head, 0, MAX_QUEUE_SIZE - 1), state: oneOf(raw.state, SLOT_STATES, 'free'),
    descriptors: list(raw.descriptors, MAX_CHAIN_DESCRIPTORS, readDescriptor),
    readableLength: int(raw.readableLength, 0, SAFE), writableLength: int(raw.writableLength, 0, SAFE), header: readHeader(raw.header),
    iv: textOrNull(raw.iv, MAX_HEX_TEXT), srcPreview: textOrNull(raw.srcPreview, MAX_HEX_TEXT), dstPreview: textOrNull(raw.dstPreview, MAX_HEX_TEXT),
    status: textOrNull(raw.status, MAX_NAME_TEXT), request: readRecent(raw.request) ?? null, match: oneOf(raw.match, CHAIN_MATCHES, 'unknown'),
    rejected: textOrNull(raw.rejected, MAX_REASON_TEXT), fault: textOrNull(raw.fault, MAX_FAULT_TEXT), error: textOrNull(raw.error, MAX_REASON_TEXT),
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
  return { type: 'error', ...(raw.request !== undefined ? { request: text(raw.request, MAX_NAME_TEXT) } : {}), message: text(raw.message, MAX_REASON_TEXT) };
}

/** The answer to a fault-injection control request, or an error line; undefined for anything else. */
export function readFaultReply(raw: unknown): FaultSetReply | FaultListReply | FaultClearReply | TelemetryError | undefined {
  if (!isRecord(raw)) return undefined;
  if (raw.type === 'error') return readError(raw);
  if (raw.ok !== true) return undefined;
  switch (raw.type) {
    case 'fault-set':
      return { type: 'fault-set', ok: true, added: list(raw.added, MAX_FAULT_RULES, readFaultRule), faults: readFaults(raw.faults) };
    case 'fault-list':
      return { type: 'fault-list', ok: true, faults: readFaults(raw.faults) };
    case 'fault-clear':
      return { type: 'fault-clear', ok: true, cleared: list(raw.cleared, MAX_FAULT_RULES, (id) => intOrNull(id, 0, SAFE) ?? undefined), faults: readFaults(raw.faults) };
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

// ---------------------------------------------------------------- line reader

/**
 * Splits a text stream into lines, refusing to buffer more than `maxLine` characters of one
 * line: push() returns false once a line grew past it (the caller drops the peer).
 */
export class LineReader {
  private pending = '';

  constructor(private readonly maxLine: number, private readonly onLine: (line: string) => void) {}

  push(chunk: string): boolean {
    this.pending += chunk;
    let nl: number;
    while ((nl = this.pending.indexOf('\n')) >= 0) {
      const line = this.pending.slice(0, nl);
      this.pending = this.pending.slice(nl + 1);
      if (line.trim()) this.onLine(line);
    }
    if (this.pending.length > this.maxLine) {
      this.pending = '';
      return false;
    }
    return true;
  }

  reset(): void {
    this.pending = '';
  }
}
