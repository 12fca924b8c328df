/**
 * Data-path counters and the recent-request ring. Plain numbers and preallocated typed arrays:
 * recording is a few stores per request; objects are built only when a snapshot is asked for.
 */
import { CryptoStatus, opcodeName } from './crypto/spec';

export const RECENT_CAPACITY = 64;

export interface RecentRequest {
  readonly head: number;
  readonly opcode: string;
  readonly sessionId: string;
  readonly srcLen: number;
  readonly dstLen: number;
  readonly status: string;
  readonly latencyUs: number;
  /** ms since the backend started */
  readonly atMs: number;
  /** Ids of the fault-injection rules that fired on it (absent: none). */
  readonly faults?: readonly number[];
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
}

export function newCounters(): Counters {
  return {
    requests: 0, bytesIn: 0, bytesOut: 0, kicks: 0, interrupts: 0, rejectedChains: 0, unanswerable: 0,
    statusOk: 0, statusErr: 0, statusBadmsg: 0, statusNotsupp: 0, statusInvsess: 0,
    sessionsCreated: 0, sessionsClosed: 0, sessionCreateFailures: 0,
  };
}

export class RecentRing {
  private next = 0;
  private count = 0;
  private readonly head = new Uint16Array(RECENT_CAPACITY);
  private readonly opcode = new Uint32Array(RECENT_CAPACITY);
  private readonly session = new BigUint64Array(RECENT_CAPACITY);
  private readonly src = new Uint32Array(RECENT_CAPACITY);
  private readonly dst = new Uint32Array(RECENT_CAPACITY);
  private readonly status = new Uint8Array(RECENT_CAPACITY);
  private readonly latency = new Float64Array(RECENT_CAPACITY);
  private readonly at = new Float64Array(RECENT_CAPACITY);
  private readonly faults: (readonly number[] | undefined)[] = new Array<undefined>(RECENT_CAPACITY).fill(undefined);

  record(head: number, opcode: number, session: bigint, src: number, dst: number, status: number, latencyMs: number, atMs: number, faults?: readonly number[]): void {
    const i = this.next;
    this.head[i] = head;
    this.opcode[i] = opcode;
    this.session[i] = session;
    this.src[i] = src;
    this.dst[i] = dst;
    this.status[i] = status;
    this.latency[i] = latencyMs;
    this.at[i] = atMs;
    this.faults[i] = faults;
    this.next = (i + 1) % RECENT_CAPACITY;
    if (this.count < RECENT_CAPACITY) this.count++;
  }

  /** Newest first. */
  snapshot(limit = RECENT_CAPACITY): RecentRequest[] {
    const out: RecentRequest[] = [];
    for (let k = 0; k < Math.min(limit, this.count); k++) {
      const i = (this.next - 1 - k + RECENT_CAPACITY) % RECENT_CAPACITY;
      out.push({
        head: this.head[i],
        opcode: opcodeName(this.opcode[i]),
        sessionId: this.session[i].toString(),
        srcLen: this.src[i],
        dstLen: this.dst[i],
        status: CryptoStatus[this.status[i]] ?? String(this.status[i]),
        latencyUs: Math.round(this.latency[i] * 1000),
        atMs: Math.round(this.at[i]),
        ...(this.faults[i] ? { faults: [...(this.faults[i] as readonly number[])] } : {}),
      });
    }
    return out;
  }
}
