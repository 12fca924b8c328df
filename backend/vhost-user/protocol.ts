/**
 * The vhost-user protocol handler (rust-vmm's backend_req_handler): one validated message at a
 * time from the server's read loop. Keeps the front-end's protocol state (owner, acked features and
 * protocol features, the guest memory map), gates requests on acked features from one table,
 * checks what the codecs cannot (queue size, base width, queue index), and answers REPLY_ACK (a
 * NACK before a refused message closes the connection). The guest memory and the rings are behind
 * the narrow {@link VringHost} (the queue pump), the crypto sessions behind {@link SessionHost}
 * (the device): this module knows neither.
 */
import * as vhost from '../../addon/lib/vhost';
import type { Conformance } from '../conformance/oracle';
import type { RateLimitedLog } from '../log';
import type { Connection, Message } from './connection';
import { notifierFdProblem } from './fd-policy';
import type { FrontendHandler } from './server';
import * as W from './wire';
import { FLAG_NEED_REPLY, ProtocolFeature, REQUESTS_WITH_REPLY, Request, WireError } from './wire';

export const OFFERED_FEATURES =
  (1n << W.VHOST_USER_F_PROTOCOL_FEATURES) | (1n << W.VIRTIO_F_VERSION_1) | (1n << W.VIRTIO_RING_F_EVENT_IDX) | (1n << W.VIRTIO_RING_F_INDIRECT_DESC);
export const OFFERED_PROTOCOL_FEATURES = (1n << BigInt(ProtocolFeature.MQ)) | (1n << BigInt(ProtocolFeature.REPLY_ACK)) | (1n << BigInt(ProtocolFeature.CRYPTO_SESSION));

/** A request served only once the front-end acked a feature: the bit, which of its masks, the refusal. */
interface FeatureNeed {
  readonly acked: 'features' | 'protocol';
  readonly bit: bigint;
  readonly refusal: string;
}

const CRYPTO_SESSION_NEEDED: FeatureNeed = { acked: 'protocol', bit: 1n << BigInt(ProtocolFeature.CRYPTO_SESSION), refusal: 'CRYPTO_SESSION protocol feature not negotiated' };

/** Every feature gate of the protocol, checked before the request is decoded. */
const REQUEST_NEEDS: ReadonlyMap<number, FeatureNeed> = new Map([
  [Request.SET_VRING_ENABLE, { acked: 'features', bit: 1n << W.VHOST_USER_F_PROTOCOL_FEATURES, refusal: 'needs VHOST_USER_F_PROTOCOL_FEATURES' }],
  [Request.CREATE_CRYPTO_SESSION, CRYPTO_SESSION_NEEDED],
  [Request.CLOSE_CRYPTO_SESSION, CRYPTO_SESSION_NEEDED],
]);

// ---- semantic checks the codecs cannot make --------------------------------------------------

/** §2.7: Queue Size is a power of 2, at most 32768. */
function checkQueueSize(request: number, num: number): number {
  if (num < 1 || num > 32768 || (num & (num - 1)) !== 0) throw new WireError(request, `queue size ${num} is not a power of 2 in 1..32768`);
  return num;
}

/** A ring position is a free-running u16. */
function checkBase(request: number, base: number): number {
  if (base > 0xffff) throw new WireError(request, `base ${base} exceeds 16 bits`);
  return base;
}

/** The feature bits a SET_*FEATURES acks: only offered ones (the oracle is told first, §2.2.1). */
function ackedBits(request: number, payload: Uint8Array, offered: bigint, what: 'features' | 'protocol features', referee: Conformance): bigint {
  const f = W.decodeU64(request, payload);
  referee.acked(what === 'features', f, offered);
  if ((f & ~offered) !== 0n) throw new WireError(request, `acks unoffered ${what} 0x${(f & ~offered).toString(16)}`);
  return f;
}

function expectEmpty(request: number, payload: Uint8Array): void {
  // QEMU sends GET_* requests with size 0; a u64 placeholder is tolerated as some front-ends send one.
  if (payload.length !== 0 && payload.length !== 8) throw new WireError(request, `payload is ${payload.length} bytes, expected none`);
}

/**
 * What the protocol may do to the guest memory and the rings (the queue index is checked before).
 * An error thrown (a table that cannot be mapped, a ring that does not fit) refuses the message.
 */
export interface VringHost {
  readonly count: number;
  /** Maps the new table (the fds stay the caller's), moves running rings onto it, unmaps the old one. */
  setMemTable(regions: readonly W.MemRegionDesc[], fds: readonly number[], eventIdx: boolean): void;
  setNum(index: number, num: number): void;
  setBase(index: number, base: number): void;
  setAddr(index: number, addr: W.VringAddr): void;
  /** The ring goes live (QEMU 7.2 sends no SET_VRING_ENABLE for crypto) once memory, size and addresses are there. */
  setKick(index: number, fd: number | undefined, eventIdx: boolean): void;
  setCall(index: number, fd: number | undefined): void;
  setErr(index: number, fd: number | undefined): void;
  setEnabled(index: number, enabled: boolean): void;
  /** Where the device is on the avail ring. */
  lastAvail(index: number): number;
  /** Stops serving the ring (GET_VRING_BASE); its call and err fds stay. */
  stop(index: number): void;
  /** The front-end is gone: every ring stops, every fd is closed, the memory is unmapped. */
  reset(): void;
}

/** The crypto sessions QEMU creates and closes over vhost-user (the device). */
export interface SessionHost {
  createSession(req: W.CreateSessionRequest): { readonly ok: true; readonly id: bigint } | { readonly ok: false; readonly reason: string };
  /** False for an unknown id. */
  closeSession(id: bigint): boolean;
  closeAll(): void;
}

/** What telemetry shows of the front-end's protocol state. */
export interface FrontendState {
  readonly owner: boolean;
  readonly ackedFeatures: bigint;
  readonly ackedProtocolFeatures: bigint;
}

export class VhostUserProtocol implements FrontendHandler, FrontendState {
  // Reset per connection.
  private isOwner = false;
  private features = 0n;
  private protocolFeatures = 0n;

  constructor(
    private readonly rings: VringHost,
    private readonly sessions: SessionHost,
    /** Lines a guest can trigger (per-reason rate limit, see log.ts). */
    private readonly guestLog: RateLimitedLog,
    /** The conformance oracle: told what the front-end acks, and when it goes. */
    private readonly referee: Conformance,
  ) {}

  get owner(): boolean {
    return this.isOwner;
  }

  get ackedFeatures(): bigint {
    return this.features;
  }

  get ackedProtocolFeatures(): bigint {
    return this.protocolFeatures;
  }

  private get eventIdx(): boolean {
    return (this.features & (1n << W.VIRTIO_RING_F_EVENT_IDX)) !== 0n;
  }

  private hasProtocol(f: ProtocolFeature): boolean {
    return (this.protocolFeatures & (1n << BigInt(f))) !== 0n;
  }

  private queue(request: number, index: number): number {
    if (index >= this.rings.count) throw new WireError(request, `queue index ${index} ≥ ${this.rings.count}`);
    return index;
  }

  /**
   * REPLY_ACK: a refused message that asked for an ack gets a non-zero one before the connection
   * closes, so the front-end sees a failure, not just a hang-up. Best effort: the peer may be gone.
   */
  refused(conn: Connection, err: WireError): void {
    if (err.flags === undefined || (err.flags & FLAG_NEED_REPLY) === 0) return;
    if (!this.hasProtocol(ProtocolFeature.REPLY_ACK) || REQUESTS_WITH_REPLY.has(err.request)) return;
    try {
      conn.reply(err.request, W.encodeU64(1n));
    } catch {
      // EPIPE or a full socket: closing says the rest.
    }
  }

  disconnected(): void {
    this.rings.reset();
    this.isOwner = false;
    this.features = 0n;
    this.protocolFeatures = 0n;
    this.referee.frontendGone();
    // Sessions belong to the front-end that created them; their keys go with it.
    this.sessions.closeAll();
  }

  /** Handles one validated message. Throws WireError for semantic violations (closes the connection). */
  handle(conn: Connection, msg: Message): void {
    const { header, payload } = msg;
    const req = header.request;
    const fds = [...msg.fds];
    const takeFd = (): number => {
      const fd = fds.shift();
      if (fd === undefined) throw new WireError(req, 'missing fd');
      return fd;
    };
    let hasOwnReply = false;
    let ok = true;
    try {
      const need = REQUEST_NEEDS.get(req);
      if (need && ((need.acked === 'features' ? this.features : this.protocolFeatures) & need.bit) === 0n) throw new WireError(req, need.refusal);
      switch (req) {
        case Request.GET_FEATURES:
        case Request.GET_PROTOCOL_FEATURES:
        case Request.GET_QUEUE_NUM:
          expectEmpty(req, payload);
          conn.reply(req, W.encodeU64(req === Request.GET_FEATURES ? OFFERED_FEATURES : req === Request.GET_PROTOCOL_FEATURES ? OFFERED_PROTOCOL_FEATURES : BigInt(this.rings.count)));
          hasOwnReply = true;
          break;
        case Request.SET_FEATURES:
          this.features = ackedBits(req, payload, OFFERED_FEATURES, 'features', this.referee);
          break;
        case Request.SET_PROTOCOL_FEATURES:
          this.protocolFeatures = ackedBits(req, payload, OFFERED_PROTOCOL_FEATURES, 'protocol features', this.referee);
          break;
        case Request.SET_OWNER:
          expectEmpty(req, payload);
          this.isOwner = true;
          break;
        case Request.RESET_OWNER:
          expectEmpty(req, payload);
          this.isOwner = false;
          break;
        case Request.SET_MEM_TABLE: {
          const regions = W.decodeMemTable(req, payload);
          if (regions.length !== msg.fds.length) throw new WireError(req, `${regions.length} regions but ${msg.fds.length} fds`);
          // The mappings keep the memory alive: the fds are closed once mapped (below, like every fd not taken).
          this.rings.setMemTable(regions, msg.fds, this.eventIdx);
          break;
        }
        case Request.SET_VRING_NUM: {
          const s = W.decodeVringState(req, payload);
          const num = checkQueueSize(req, s.num);
          this.rings.setNum(this.queue(req, s.index), num);
          break;
        }
        case Request.SET_VRING_BASE: {
          const s = W.decodeVringState(req, payload);
          const base = checkBase(req, s.num);
          this.rings.setBase(this.queue(req, s.index), base);
          break;
        }
        case Request.SET_VRING_ADDR: {
          const a = W.decodeVringAddr(req, payload);
          this.rings.setAddr(this.queue(req, a.index), a);
          break;
        }
        case Request.GET_VRING_BASE: {
          const s = W.decodeVringState(req, payload);
          const index = this.queue(req, s.index);
          const last = this.rings.lastAvail(index);
          // Spec: GET_VRING_BASE stops the ring.
          this.rings.stop(index);
          this.rings.setBase(index, last);
          conn.reply(req, W.encodeVringState({ index: s.index, num: last }));
          hasOwnReply = true;
          break;
        }
        case Request.SET_VRING_KICK:
        case Request.SET_VRING_CALL:
        case Request.SET_VRING_ERR: {
          const f = W.decodeVringFile(req, payload);
          const index = this.queue(req, f.index);
          // Judged while still in `fds`: a refusal (or a failing fstat) leaves it to the finally below.
          if (!f.noFd && fds[0] !== undefined) {
            const problem = notifierFdProblem(fds[0]);
            if (problem) throw new WireError(req, `queue ${f.index}: ${problem}`);
          }
          const fd = f.noFd ? undefined : takeFd();
          if (req === Request.SET_VRING_KICK) this.rings.setKick(index, fd, this.eventIdx);
          else if (req === Request.SET_VRING_CALL) this.rings.setCall(index, fd);
          else this.rings.setErr(index, fd);
          break;
        }
        case Request.SET_VRING_ENABLE: {
          const s = W.decodeVringState(req, payload);
          if (s.num > 1) throw new WireError(req, `enable value ${s.num}`);
          this.rings.setEnabled(this.queue(req, s.index), s.num === 1);
          break;
        }
        case Request.CREATE_CRYPTO_SESSION: {
          try {
            const request = W.decodeCreateSession(req, payload);
            const result = this.sessions.createSession(request);
            // Successes are counted, not logged: the kernel's self-tests alone create hundreds.
            if (!result.ok) this.guestLog.line('session refused', `session refused (${request.layout} layout): ${result.reason}`);
            // QEMU waits for this reply synchronously; it has the request's own size (notes §3).
            conn.reply(req, W.encodeCreateSessionReply(payload, result.ok ? result.id : -1n));
            hasOwnReply = true;
          } finally {
            // The message carried the keys: nothing of it is needed any more.
            payload.fill(0);
          }
          break;
        }
        case Request.CLOSE_CRYPTO_SESSION: {
          const id = W.decodeU64(req, payload);
          ok = this.sessions.closeSession(id);
          if (!ok) this.guestLog.line('close of unknown session', `close of unknown session ${id}`);
          break;
        }
        default:
          throw new WireError(req, 'not supported by this back-end');
      }
    } finally {
      // Whatever fds the handler did not take are closed: nothing leaks from a rejected message.
      for (const fd of fds) vhost.closeFd(fd);
    }
    // REPLY_ACK: a u64 status (0 = success) for requests without a reply of their own.
    if ((header.flags & FLAG_NEED_REPLY) !== 0 && !hasOwnReply && this.hasProtocol(ProtocolFeature.REPLY_ACK)) {
      conn.reply(req, W.encodeU64(ok ? 0n : 1n));
    }
  }
}
