/**
 * Data-path counters and the recent-request ring. Plain numbers and preallocated typed arrays:
 * recording is a few stores per request; objects are built only when a snapshot is asked for.
 */
import type { RequestOutcome } from '../crypto/device';
import { CryptoStatus, opcodeName } from '../crypto/spec';
import type { Counters, RecentRequest } from './schema';

export const RECENT_CAPACITY = 64;
/** Status code recorded for a rejected chain (no status byte written). */
export const STATUS_NONE = 254;

export function newCounters(): Counters {
  return {
    requests: 0, bytesIn: 0, bytesOut: 0, kicks: 0, interrupts: 0, rejectedChains: 0, unanswerable: 0,
    statusOk: 0, statusErr: 0, statusBadmsg: 0, statusNotsupp: 0, statusInvsess: 0,
    sessionsCreated: 0, sessionsClosed: 0, sessionCreateFailures: 0, sessionsRefusedAtLimit: 0, logLinesSuppressed: 0, peersRefused: 0,
  };
}

export class RecentRing {
  private next = 0;
  private count = 0;
  private seq = 0;
  private readonly id = new Float64Array(RECENT_CAPACITY);
  private readonly head = new Uint16Array(RECENT_CAPACITY);
  private readonly opcode = new Uint32Array(RECENT_CAPACITY);
  private readonly session = new BigUint64Array(RECENT_CAPACITY);
  private readonly src = new Uint32Array(RECENT_CAPACITY);
  private readonly dst = new Uint32Array(RECENT_CAPACITY);
  private readonly status = new Uint8Array(RECENT_CAPACITY);
  private readonly latency = new Float64Array(RECENT_CAPACITY);
  private readonly at = new Float64Array(RECENT_CAPACITY);
  private readonly descs = new Uint16Array(RECENT_CAPACITY);
  private readonly indirect = new Uint8Array(RECENT_CAPACITY);
  /** rare path only: a rejected chain's reason (undefined for served requests) */
  private readonly rejected: (string | undefined)[] = new Array<string | undefined>(RECENT_CAPACITY);
  /** set by a fault injector through {@link markFault}; undefined otherwise */
  private readonly fault: (string | undefined)[] = new Array<string | undefined>(RECENT_CAPACITY);
  /** rare path only: why the device refused a malformed request (answered ERR), from {@link recordServed} */
  private readonly badRequest: (string | undefined)[] = new Array<string | undefined>(RECENT_CAPACITY);

  record(head: number, opcode: number, session: bigint, src: number, dst: number, status: number, latencyMs: number, atMs: number, descriptors = 0, indirect = false): void {
    const i = this.next;
    this.id[i] = ++this.seq;
    this.head[i] = head;
    this.opcode[i] = opcode;
    this.session[i] = session;
    this.src[i] = src;
    this.dst[i] = dst;
    this.status[i] = status;
    this.latency[i] = latencyMs;
    this.at[i] = atMs;
    this.descs[i] = descriptors;
    this.indirect[i] = indirect ? 1 : 0;
    if (this.rejected[i] !== undefined) this.rejected[i] = undefined;
    if (this.fault[i] !== undefined) this.fault[i] = undefined;
    if (this.badRequest[i] !== undefined) this.badRequest[i] = undefined;
    this.next = (i + 1) % RECENT_CAPACITY;
    if (this.count < RECENT_CAPACITY) this.count++;
  }

  /** A request the device answered (status −1, no status byte, is recorded as 255), with its refusal reason if any. */
  recordServed(head: number, r: RequestOutcome, latencyMs: number, atMs: number, descriptors: number, indirect: boolean): void {
    this.record(head, r.opcode, r.sessionId, r.srcLen, r.dstLen, r.status < 0 ? 255 : r.status, latencyMs, atMs, descriptors, indirect);
    if (r.badRequest !== null) this.badRequest[(this.next - 1 + RECENT_CAPACITY) % RECENT_CAPACITY] = r.badRequest;
  }

  /** A chain returned with len 0 because it broke a ring rule. */
  recordRejected(head: number, reason: string, atMs: number): void {
    this.record(head, 0, 0n, 0, 0, STATUS_NONE, 0, atMs);
    this.rejected[(this.next - 1 + RECENT_CAPACITY) % RECENT_CAPACITY] = reason;
  }

  /** Marks the newest recorded request with the fault-injection rule that hit it. */
  markFault(rule: string): void {
    if (this.count > 0) this.fault[(this.next - 1 + RECENT_CAPACITY) % RECENT_CAPACITY] = rule;
  }

  /** Newest first. */
  snapshot(limit = RECENT_CAPACITY): RecentRequest[] {
    const out: RecentRequest[] = [];
    for (let k = 0; k < Math.min(limit, this.count); k++) out.push(this.entry((this.next - 1 - k + RECENT_CAPACITY) % RECENT_CAPACITY));
    return out;
  }

  /** The newest request recorded at descriptor head `head`, if still in the ring. */
  newestAt(head: number): RecentRequest | null {
    for (let k = 0; k < this.count; k++) {
      const i = (this.next - 1 - k + RECENT_CAPACITY) % RECENT_CAPACITY;
      if (this.head[i] === head) return this.entry(i);
    }
    return null;
  }

  private entry(i: number): RecentRequest {
    const rejected = this.rejected[i] ?? null;
    const badRequest = this.badRequest[i];
    const entry: RecentRequest = {
      id: this.id[i],
      head: this.head[i],
      opcode: rejected !== null ? 'REJECTED' : opcodeName(this.opcode[i]),
      sessionId: this.session[i].toString(),
      srcLen: this.src[i],
      dstLen: this.dst[i],
      status: this.status[i] === STATUS_NONE ? '-' : CryptoStatus[this.status[i]] ?? String(this.status[i]),
      latencyUs: Math.round(this.latency[i] * 1000),
      atMs: Math.round(this.at[i]),
      descriptors: this.descs[i],
      indirect: this.indirect[i] === 1,
      rejected,
      fault: this.fault[i] ?? null,
    };
    // Only present on a refused request, so the snapshot of well-formed traffic is unchanged.
    return badRequest === undefined ? entry : { ...entry, badRequest };
  }
}
