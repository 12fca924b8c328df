/**
 * The telemetry socket's format (docs/telemetry.md), declared once: the types of every request and
 * reply (fault-injection control included), the request parser the backend serves with (server.ts,
 * vhost-user-backend.ts), and the line reader both ends split the stream with. The readers that turn
 * an untrusted reply into these types are readers.ts. Pure: no node or vscode imports, so the rings
 * webview bundle may import it too.
 */

/** Bumped when a field changes meaning or goes away (adding a field does not bump it). */
export const TELEMETRY_SCHEMA = 2;

import type { FaultPlanSnapshot, FaultRuleView } from '../faults/plan';
import type { ConformanceSnapshot } from '../conformance/report';

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

/** Every counter at 0, in the order the back-end sends them (stats.ts newCounters). */
export const ZERO_COUNTERS: Readonly<Counters> = Object.freeze({
  requests: 0, bytesIn: 0, bytesOut: 0, kicks: 0, interrupts: 0, rejectedChains: 0, unanswerable: 0,
  statusOk: 0, statusErr: 0, statusBadmsg: 0, statusNotsupp: 0, statusInvsess: 0,
  sessionsCreated: 0, sessionsClosed: 0, sessionCreateFailures: 0, sessionsRefusedAtLimit: 0, logLinesSuppressed: 0, peersRefused: 0,
});
/** The counters' names in wire order (`vlab status` prints the first 8, the lab view all of them). */
export const COUNTER_NAMES = Object.freeze(Object.keys(ZERO_COUNTERS)) as readonly (keyof Counters)[];

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
  /** The conformance oracle (docs/checking.md); absent from a back-end older than it. */
  conformance?: ConformanceSnapshot;
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
export interface ReplyMap {
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

export function isRecord(v: unknown): v is Record<string, unknown> {
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
