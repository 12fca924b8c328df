/**
 * The vhost-user back-end for virtio-crypto: listens on a unix socket, serves one front-end at a
 * time, keeps the protocol bookkeeping (owner, acked features, reply-ack), the memory map and the
 * virtqueue, and hands descriptor chains to the {@link CryptoDevice}. A malformed message is logged
 * with its name and the connection is closed; the process lives and accepts the next front-end.
 */
import * as fs from 'node:fs';
// The module's binding, not the global getter: the data path reads the clock once per request.
import { performance } from 'node:perf_hooks';
import * as vhost from '../addon/lib/vhost';
import { Connection, type Message } from './vhost-user/connection';
import { CryptoDevice, MAX_SESSIONS, type FaultGate, type RequestOutcome } from './crypto/device';
import { MAX_DATA_LEN, opcodeName } from './crypto/spec';
import { FaultPlan, type FaultRuleView, type IrqFault } from './faults/plan';
import type { FaultsSnapshot } from './telemetry/schema';
import type { EngineSelection } from './crypto/engines';
import { notifierFdProblem } from './vhost-user/fd-policy';
import { peerUidProblem } from './vhost-user/peer';
import { RateLimitedLog } from './log';
import { GuestMemory, frontendVa } from './virtio/memory';
import { availRingHeader, chainDetail, slotStates } from './telemetry/inspect';
import { RecentRing, newCounters } from './telemetry/stats';
import { TELEMETRY_SCHEMA, type AvailRingHeader, type BackendSnapshot, type Counters, type ChainDetail, type QueueSnapshot } from './telemetry/schema';
import { HeadState, SplitQueue } from './virtio/virtqueue';
import { claimSocketPath } from './socket-path';
import { SNAPSHOT_RECENT } from './telemetry/schema';
import * as W from './vhost-user/wire';
import { FLAG_NEED_REPLY, ProtocolFeature, REQUESTS_WITH_REPLY, Request, WireError, requestName } from './vhost-user/wire';

/**
 * Chains served per pass over a ring before yielding to the event loop (setImmediate), so that a
 * guest that never stops posting cannot starve QEMU's synchronous messages (CREATE_CRYPTO_SESSION,
 * GET_VRING_BASE). A pass also ends after MAX_BYTES_PER_PASS bytes of request data.
 */
export const MAX_CHAINS_PER_PASS = 64;
export const MAX_BYTES_PER_PASS = 4 * MAX_DATA_LEN;
/**
 * Inside a pass, used->idx is published (and the interrupt decided by the usual rules) every time
 * this much request data has completed since the last publish, so a guest with many large requests
 * outstanding can refill the ring while the rest of the pass runs instead of waiting for its end.
 * Small requests never reach it within a pass: they keep one publish (and at most one interrupt) per pass.
 */
export const PUBLISH_BYTES = 512 * 1024;

/** Only the data queue reaches the back-end (QEMU handles the control queue itself, notes §3). */
const NUM_QUEUES = 1;

const OFFERED_FEATURES =
  (1n << W.VHOST_USER_F_PROTOCOL_FEATURES) | (1n << W.VIRTIO_F_VERSION_1) | (1n << W.VIRTIO_RING_F_EVENT_IDX) | (1n << W.VIRTIO_RING_F_INDIRECT_DESC);
const OFFERED_PROTOCOL_FEATURES = (1n << BigInt(ProtocolFeature.MQ)) | (1n << BigInt(ProtocolFeature.REPLY_ACK)) | (1n << BigInt(ProtocolFeature.CRYPTO_SESSION));

interface VringConfig {
  num: number;
  base: number;
  addr?: W.VringAddr;
  kickFd?: number;
  callFd?: number;
  errFd?: number;
  enabled: boolean;
  queue?: SplitQueue;
  poll?: vhost.PollHandle;
  /** The next pass when the last one ended on its budget. */
  resume?: NodeJS.Immediate;
  stats: { recent: RecentRing };
}

export interface BackendOptions {
  readonly socketPath: string;
  readonly engine: EngineSelection;
  readonly log?: (line: string) => void;
  /** Fault-injection rules active from the start (docs/fault-injection.md); a bad one throws. */
  readonly faults?: readonly string[];
}

// The snapshot's types are the telemetry schema's (one declaration for the backend and its clients).
export type { BackendSnapshot, ChainDetail, FaultsSnapshot, QueueSnapshot } from './telemetry/schema';

/** Gap before the second signal of irq=duplicate: the guest sees two interrupts, not one merged. */
export const DUPLICATE_IRQ_GAP_MS = 10;

interface DelayedCompletion {
  readonly index: number;
  readonly head: number;
  readonly written: number;
  readonly outcome: RequestOutcome;
  readonly t0: number;
  readonly descriptors: number;
  readonly indirect: boolean;
  timer?: NodeJS.Timeout;
}

export class VhostUserBackend {
  readonly counters: Counters = newCounters();
  /** Ring addresses the lab registered for telemetry avail (the control queue's, from QMP). */
  private readonly allowedAvail: number[] = [];
  readonly device: CryptoDevice;
  private readonly log: (line: string) => void;
  /** Lines a guest can trigger go through here (per-reason rate limit, see log.ts). */
  private readonly guestLog: RateLimitedLog;
  private readonly started = performance.now();
  private listenFd = -1;
  private listenPoll: vhost.PollHandle | undefined;
  private conn: Connection | undefined;
  private connPoll: vhost.PollHandle | undefined;
  // Protocol bookkeeping, reset per connection.
  private owner = false;
  private ackedFeatures = 0n;
  private ackedProtocolFeatures = 0n;
  private memory: GuestMemory | undefined;
  private vrings: VringConfig[] = [];
  private stopped = false;
  /** Only a socket this instance created is removed at stop (never another back-end's). */
  private ownsSocket = false;
  private readonly closeListeners: (() => void)[] = [];
  // Fault injection (docs/fault-injection.md).
  readonly faults = new FaultPlan();
  private readonly faultGate: FaultGate = (opcode, sessionId) => this.faults.decide(opcode, sessionId);
  private readonly delayed = new Set<DelayedCompletion>();
  private interruptsWithheld = 0;
  private interruptsDuplicated = 0;

  constructor(private readonly opts: BackendOptions) {
    this.log = opts.log ?? (() => undefined);
    this.guestLog = new RateLimitedLog(this.log, { onSuppressed: () => this.counters.logLinesSuppressed++ });
    this.device = new CryptoDevice(opts.engine.engine, this.counters, (line) => this.guestLog.line('engine error', line));
    this.resetVrings();
    if (opts.faults?.length) this.addFaults(opts.faults);
  }

  /**
   * Creates the socket and listens. A stale socket file (nobody accepting) is replaced; a live one
   * (another back-end) or any other kind of file is left alone and start() fails.
   */
  start(): void {
    claimSocketPath(this.opts.socketPath, `another back-end is listening on ${this.opts.socketPath}`);
    this.listenFd = vhost.listenUnix(this.opts.socketPath, 4);
    this.ownsSocket = true;
    this.listenPoll = vhost.pollStart(this.listenFd, (status) => this.onListenReadable(status));
    this.guestLog.startTimer();
    this.log(`listening on ${this.opts.socketPath}; engine ${this.opts.engine.engine.name} (${this.opts.engine.reason})`);
  }

  /** Called whenever a front-end disconnects (tests wait on it). */
  onDisconnect(fn: () => void): void {
    this.closeListeners.push(fn);
  }

  get connected(): boolean {
    return this.conn !== undefined;
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.dropConnection('back-end stopping');
    if (this.listenPoll) vhost.pollStop(this.listenPoll);
    if (this.listenFd >= 0) vhost.closeFd(this.listenFd);
    this.listenFd = -1;
    if (this.ownsSocket) {
      try {
        fs.unlinkSync(this.opts.socketPath);
      } catch {
        // Already gone.
      }
    }
    this.device.closeAll();
    this.opts.engine.engine.close();
    this.guestLog.stop();
  }

  private onListenReadable(status: number): void {
    if (status < 0) {
      this.log(`listening socket error ${status}`);
      return;
    }
    for (;;) {
      const fd = vhost.accept(this.listenFd);
      if (fd === null) return;
      // Only our own uid may be the front-end (the socket is 0600 too; this also holds if the
      // file's mode or a bind mount lets another uid reach it).
      const peer = peerUidProblem(fd);
      if (peer) {
        this.counters.peersRefused++;
        this.log(`refusing a front-end: ${peer}`);
        vhost.closeFd(fd);
        continue;
      }
      if (this.conn) {
        // One front-end at a time: QEMU 7.2 cannot share a device with another.
        this.log('refusing a second front-end while one is connected');
        vhost.closeFd(fd);
        continue;
      }
      this.conn = new Connection(fd);
      this.connPoll = vhost.pollStart(fd, (st) => this.onConnReadable(st));
      this.log('front-end connected');
    }
  }

  private onConnReadable(status: number): void {
    const conn = this.conn;
    if (!conn) return;
    if (status < 0) {
      this.dropConnection(`socket error ${status}`);
      return;
    }
    try {
      for (;;) {
        const r = conn.read();
        if (r.kind === 'wait') return;
        if (r.kind === 'closed') {
          this.dropConnection('front-end closed the connection');
          return;
        }
        try {
          this.dispatch(conn, r.message);
        } catch (err) {
          // Every refusal carries the message's header flags so it can be NACKed.
          const flags = r.message.header.flags;
          throw err instanceof WireError ? err.withFlags(flags) : new WireError(r.message.header.request, (err as Error).message, flags);
        }
        if (this.conn !== conn) return;
      }
    } catch (err) {
      const name = err instanceof WireError ? requestName(err.request) : 'message';
      this.log(`malformed ${name}: ${(err as Error).message}; closing the connection`);
      if (err instanceof WireError) this.nack(conn, err);
      this.dropConnection('protocol error');
    }
  }

  /**
   * REPLY_ACK: a refused message that asked for an ack gets a non-zero one before the connection
   * closes, so the front-end sees a failure, not just a hang-up. Best effort: the peer may be gone.
   */
  private nack(conn: Connection, err: WireError): void {
    if (err.flags === undefined || (err.flags & FLAG_NEED_REPLY) === 0) return;
    if (!this.hasProtocol(ProtocolFeature.REPLY_ACK) || REQUESTS_WITH_REPLY.has(err.request)) return;
    try {
      conn.reply(err.request, W.encodeU64(1n));
    } catch {
      // EPIPE or a full socket: closing says the rest.
    }
  }

  private dropConnection(why: string): void {
    const conn = this.conn;
    if (!conn) return;
    this.log(`front-end disconnected: ${why}`);
    if (this.connPoll) vhost.pollStop(this.connPoll);
    this.connPoll = undefined;
    for (let i = 0; i < this.vrings.length; i++) this.stopVring(i, true);
    conn.close();
    this.conn = undefined;
    this.owner = false;
    this.ackedFeatures = 0n;
    this.ackedProtocolFeatures = 0n;
    this.memory?.close();
    this.memory = undefined;
    // Sessions belong to the front-end that created them; their keys go with it.
    this.device.closeAll();
    this.resetVrings();
    for (const fn of this.closeListeners) fn();
  }

  private resetVrings(): void {
    this.vrings = Array.from({ length: NUM_QUEUES }, (_, i) => ({ num: 0, base: 0, enabled: false, stats: { recent: this.vrings[i]?.stats.recent ?? new RecentRing() } }));
  }

  private hasProtocol(f: ProtocolFeature): boolean {
    return (this.ackedProtocolFeatures & (1n << BigInt(f))) !== 0n;
  }

  private vring(request: number, index: number): VringConfig {
    const v = this.vrings[index];
    if (!v) throw new WireError(request, `queue index ${index} ≥ ${NUM_QUEUES}`);
    return v;
  }

  /** Handles one validated message. Throws WireError for semantic violations (closes the connection). */
  private dispatch(conn: Connection, msg: Message): void {
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
      switch (req) {
        case Request.GET_FEATURES:
          expectEmpty(req, payload);
          conn.reply(req, W.encodeU64(OFFERED_FEATURES));
          hasOwnReply = true;
          break;
        case Request.SET_FEATURES: {
          const f = W.decodeU64(req, payload);
          if ((f & ~OFFERED_FEATURES) !== 0n) throw new WireError(req, `acks unoffered features 0x${(f & ~OFFERED_FEATURES).toString(16)}`);
          this.ackedFeatures = f;
          break;
        }
        case Request.GET_PROTOCOL_FEATURES:
          expectEmpty(req, payload);
          conn.reply(req, W.encodeU64(OFFERED_PROTOCOL_FEATURES));
          hasOwnReply = true;
          break;
        case Request.SET_PROTOCOL_FEATURES: {
          const f = W.decodeU64(req, payload);
          if ((f & ~OFFERED_PROTOCOL_FEATURES) !== 0n) throw new WireError(req, `acks unoffered protocol features 0x${(f & ~OFFERED_PROTOCOL_FEATURES).toString(16)}`);
          this.ackedProtocolFeatures = f;
          break;
        }
        case Request.GET_QUEUE_NUM:
          expectEmpty(req, payload);
          conn.reply(req, W.encodeU64(BigInt(NUM_QUEUES)));
          hasOwnReply = true;
          break;
        case Request.SET_OWNER:
          expectEmpty(req, payload);
          this.owner = true;
          break;
        case Request.RESET_OWNER:
          expectEmpty(req, payload);
          this.owner = false;
          break;
        case Request.SET_MEM_TABLE: {
          const regions = W.decodeMemTable(req, payload);
          if (regions.length !== msg.fds.length) throw new WireError(req, `${regions.length} regions but ${msg.fds.length} fds`);
          let next: GuestMemory;
          try {
            next = GuestMemory.map(regions, msg.fds);
          } catch (err) {
            throw new WireError(req, (err as Error).message);
          }
          // The mappings keep the memory alive; the fds are no longer needed.
          fds.splice(0).forEach((fd) => vhost.closeFd(fd));
          const old = this.memory;
          this.memory = next;
          // Running rings hold views of the old map: rebuild them on the new one, then unmap the old
          // — also when a ring does not fit the new map (the refusal closes the connection, which
          // unmaps only the current map: the old one would stay mapped for good).
          try {
            for (let i = 0; i < this.vrings.length; i++) if (this.vrings[i].queue) this.rebuildQueue(i, req);
          } finally {
            old?.close();
          }
          break;
        }
        case Request.SET_VRING_NUM: {
          const s = W.decodeVringState(req, payload);
          if (s.num < 1 || s.num > 32768 || (s.num & (s.num - 1)) !== 0) throw new WireError(req, `queue size ${s.num} is not a power of 2 in 1..32768`);
          this.vring(req, s.index).num = s.num;
          break;
        }
        case Request.SET_VRING_BASE: {
          const s = W.decodeVringState(req, payload);
          if (s.num > 0xffff) throw new WireError(req, `base ${s.num} exceeds 16 bits`);
          this.vring(req, s.index).base = s.num;
          break;
        }
        case Request.SET_VRING_ADDR: {
          const a = W.decodeVringAddr(req, payload);
          this.vring(req, a.index).addr = a;
          break;
        }
        case Request.GET_VRING_BASE: {
          const s = W.decodeVringState(req, payload);
          const v = this.vring(req, s.index);
          const last = v.queue ? v.queue.lastAvailIdx : v.base;
          // Spec: GET_VRING_BASE stops the ring.
          this.stopVring(s.index, false);
          v.base = last;
          conn.reply(req, W.encodeVringState({ index: s.index, num: last }));
          hasOwnReply = true;
          break;
        }
        case Request.SET_VRING_KICK:
        case Request.SET_VRING_CALL:
        case Request.SET_VRING_ERR: {
          const f = W.decodeVringFile(req, payload);
          const v = this.vring(req, f.index);
          // Judged while still in `fds`: a refusal (or a failing fstat) leaves it to the finally below.
          if (!f.noFd && fds[0] !== undefined) {
            const problem = notifierFdProblem(fds[0]);
            if (problem) throw new WireError(req, `queue ${f.index}: ${problem}`);
          }
          const fd = f.noFd ? undefined : takeFd();
          if (req === Request.SET_VRING_KICK) {
            this.stopVring(f.index, false);
            v.kickFd = fd;
            // QEMU 7.2 never sends SET_VRING_ENABLE for crypto: the ring is live once the kick fd arrives.
            v.enabled = true;
            this.startVring(f.index);
          } else if (req === Request.SET_VRING_CALL) {
            if (v.callFd !== undefined) vhost.closeFd(v.callFd);
            v.callFd = fd;
          } else {
            if (v.errFd !== undefined) vhost.closeFd(v.errFd);
            v.errFd = fd;
          }
          break;
        }
        case Request.SET_VRING_ENABLE: {
          if ((this.ackedFeatures & (1n << W.VHOST_USER_F_PROTOCOL_FEATURES)) === 0n) throw new WireError(req, 'needs VHOST_USER_F_PROTOCOL_FEATURES');
          const s = W.decodeVringState(req, payload);
          if (s.num > 1) throw new WireError(req, `enable value ${s.num}`);
          const v = this.vring(req, s.index);
          v.enabled = s.num === 1;
          if (v.enabled && v.queue) this.processQueue(s.index);
          break;
        }
        case Request.CREATE_CRYPTO_SESSION: {
          if (!this.hasProtocol(ProtocolFeature.CRYPTO_SESSION)) throw new WireError(req, 'CRYPTO_SESSION protocol feature not negotiated');
          try {
            const request = W.decodeCreateSession(req, payload);
            const result = this.device.createSession(request);
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
          if (!this.hasProtocol(ProtocolFeature.CRYPTO_SESSION)) throw new WireError(req, 'CRYPTO_SESSION protocol feature not negotiated');
          const id = W.decodeU64(req, payload);
          ok = this.device.closeSession(id);
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

  private startVring(index: number): void {
    const v = this.vrings[index];
    if (v.kickFd === undefined || !v.addr || !this.memory || v.num === 0) {
      this.log(`queue ${index}: kick fd arrived before memory/size/addresses; ring stays stopped`);
      return;
    }
    this.rebuildQueue(index);
    v.poll = vhost.pollStart(v.kickFd, (status) => {
      if (status < 0) {
        this.guestLog.line('kick fd error', `queue ${index}: kick fd error ${status}`);
        return;
      }
      this.counters.kicks++;
      this.serveQueue(index);
    }, { drainEventfd: true });
    // Buffers made available before the kick fd arrived must not wait for the next kick.
    this.processQueue(index);
  }

  private rebuildQueue(index: number, request: number = Request.SET_VRING_KICK): void {
    const v = this.vrings[index];
    if (!v.addr || !this.memory) return;
    const base = v.queue ? v.queue.lastAvailIdx : v.base;
    const used = v.queue ? v.queue.usedIdx : v.base;
    const eventIdx = (this.ackedFeatures & (1n << W.VIRTIO_RING_F_EVENT_IDX)) !== 0n;
    try {
      v.queue = new SplitQueue(index, v.num, this.memory, { desc: frontendVa(v.addr.descUser), avail: frontendVa(v.addr.availUser), used: frontendVa(v.addr.usedUser) }, base, eventIdx);
      v.queue.usedIdx = used;
    } catch (err) {
      throw new WireError(request, (err as Error).message);
    }
  }

  private stopVring(index: number, closeAll: boolean): void {
    const v = this.vrings[index];
    if (v.resume) clearImmediate(v.resume);
    v.resume = undefined;
    // Fault injection: delayed completions are delivered now, so every taken request is answered.
    this.flushDelayed(index);
    if (v.poll) vhost.pollStop(v.poll);
    v.poll = undefined;
    if (v.queue) v.base = v.queue.lastAvailIdx;
    v.queue = undefined;
    if (v.kickFd !== undefined) vhost.closeFd(v.kickFd);
    v.kickFd = undefined;
    if (closeAll) {
      if (v.callFd !== undefined) vhost.closeFd(v.callFd);
      if (v.errFd !== undefined) vhost.closeFd(v.errFd);
      v.callFd = undefined;
      v.errFd = undefined;
    }
  }

  /** One pass over the ring; a bug on the data path abandons the ring instead of killing the process. */
  private serveQueue(index: number): void {
    try {
      this.processQueue(index);
    } catch (err) {
      // Not reachable with a sane engine; still, a bug on the data path must not kill the process
      // (QEMU 7.2 cannot survive that): the ring is abandoned and says why in telemetry.
      const q = this.vrings[index].queue;
      if (q) q.broken = `internal error: ${(err as Error).message}`;
      this.log(`queue ${index}: internal error, ring abandoned: ${(err as Error).stack ?? String(err)}`);
    }
  }

  /**
   * Serves available chains, at most MAX_CHAINS_PER_PASS (or MAX_BYTES_PER_PASS of data) per pass.
   * When the ring runs dry, avail_event is re-armed and avail idx re-read until nothing new arrived
   * (EVENT_IDX's race-free idle check). Each pass publishes used->idx once and interrupts at most
   * once; a pass that ended on its budget schedules the next one with setImmediate, so the socket
   * (and every other fd) is served in between.
   */
  private processQueue(index: number): void {
    const v = this.vrings[index];
    const q = v.queue;
    if (!q || !v.enabled) return;
    // A kick while a continuation is pending changes nothing: the continuation will see the work.
    if (v.resume) return;
    // Fault injection: a stall leaves requests on the avail ring until its rule is cleared.
    if (this.faults.stalledBy !== null) return;
    const gate = this.faults.empty ? undefined : this.faultGate;
    let irq: IrqFault | undefined;
    const recent = v.stats.recent;
    let chains = 0;
    let bytes = 0;
    let unpublishedBytes = 0;
    let budgetLeft = true;
    // One clock read per request: a request's recorded latency runs from the previous request's
    // completion in this pass (or the pass start) to its own, so it covers its descriptor walk too.
    let tPrev = performance.now();
    do {
      for (let chain = q.pop(); chain; chain = q.pop()) {
        if ('reason' in chain) {
          this.counters.rejectedChains++;
          this.guestLog.line('rejected chain', `queue ${index}: rejected chain at head ${chain.head}: ${chain.reason}`);
          q.pushUsed(chain.head, 0);
          tPrev = performance.now();
          recent.recordRejected(chain.head, chain.reason, tPrev - this.started);
        } else {
          const t0 = tPrev;
          const r = this.device.handle(chain.readable, chain.readableLength, chain.writable, chain.writableLength, gate);
          if (r.fault?.stall) {
            // Fault injection: held back on the ring until the stalling rule is cleared.
            q.unpop(chain.head);
            this.logFault(r, chain.head);
            break;
          }
          this.counters.requests++;
          if (r.fault) {
            // Fault injection: completed later (delay) or altered.
            irq = this.completeFaulted(index, chain.head, r, t0, chain.descriptorCount, chain.indirect) ?? irq;
            tPrev = performance.now();
          } else {
            const t1 = performance.now();
            tPrev = t1;
            q.pushUsed(chain.head, r.written);
            recent.record(chain.head, r.opcode, r.sessionId, r.srcLen, r.dstLen, r.status < 0 ? 255 : r.status, t1 - t0, t1 - this.started, chain.descriptorCount, chain.indirect);
          }
          if (r.status === 0) {
            bytes += r.srcLen;
            unpublishedBytes += r.srcLen;
            if (unpublishedBytes >= PUBLISH_BYTES) {
              unpublishedBytes = 0;
              if (q.publish()) this.signalGuest(v, irq);
              irq = undefined;
            }
          }
        }
        if (++chains >= MAX_CHAINS_PER_PASS || bytes >= MAX_BYTES_PER_PASS) {
          budgetLeft = false;
          break;
        }
      }
    } while (budgetLeft && this.faults.stalledBy === null && q.armNotification() && !q.broken);
    if (q.broken) this.guestLog.line('queue broken', `queue ${index} is broken: ${q.broken}; no more requests are served on it`);
    if (q.publish()) this.signalGuest(v, irq);
    if (!budgetLeft && !q.broken && this.faults.stalledBy === null) {
      v.resume = setImmediate(() => {
        v.resume = undefined;
        // The ring may have been stopped or rebuilt meanwhile: serve whatever is live now.
        if (this.vrings[index] === v) this.serveQueue(index);
      });
    }
  }

  /** Writes the call eventfd (once; none or twice when a fault says so). */
  private signalGuest(v: VringConfig, irq: IrqFault | undefined): void {
    const fd = v.callFd;
    if (fd === undefined) return;
    if (irq === 'withhold') {
      this.interruptsWithheld++;
      return;
    }
    vhost.eventfdWrite(fd, 1);
    this.counters.interrupts++;
    if (irq === 'duplicate') {
      setTimeout(() => {
        // Only if the same eventfd is still this ring's call fd (not closed or replaced meanwhile).
        if (v.callFd !== fd) return;
        vhost.eventfdWrite(fd, 1);
        this.counters.interrupts++;
        this.interruptsDuplicated++;
      }, DUPLICATE_IRQ_GAP_MS).unref();
    }
  }

  // ---- fault injection (docs/fault-injection.md) ----------------------------------------------

  /** Adds rules (all or none; FaultRuleError names the bad part). */
  addFaults(rules: readonly string[]): FaultRuleView[] {
    const added = this.faults.addRules(rules);
    for (const r of added) this.log(`fault rule #${r.id} set: ${r.rule}`);
    return added;
  }

  /** Clears one rule or all; clearing the stalling rule serves the held requests now. */
  clearFaults(id?: number): number[] {
    const { cleared, released } = this.faults.clear(id);
    if (cleared.length) this.log(`fault rule${cleared.length > 1 ? 's' : ''} cleared: ${cleared.map((c) => `#${c}`).join(' ')}`);
    if (released) {
      this.log('stall released: serving the held requests');
      for (let i = 0; i < this.vrings.length; i++) this.serveQueue(i);
    }
    return cleared;
  }

  /** "#2 status=err, #5 delay=20": the rules that fired, as telemetry and the log show them. */
  private faultRulesText(ids: readonly number[]): string {
    return ids.map((id) => `#${id} ${this.faults.ruleText(id) ?? ''}`.trim()).join(', ');
  }

  private logFault(r: RequestOutcome, head: number): void {
    const rules = this.faultRulesText(r.fault?.rules ?? []);
    this.guestLog.line('fault injected', `fault injected by ${rules}: head ${head} ${opcodeName(r.opcode)} session ${r.sessionId}`);
  }

  /** Completes a request a rule fired on. Returns the interrupt fault for this batch, if any. */
  private completeFaulted(index: number, head: number, r: RequestOutcome, t0: number, descriptors: number, indirect: boolean): IrqFault | undefined {
    const f = r.fault;
    if (!f) return undefined;
    this.logFault(r, head);
    const written = Math.max(0, r.written - f.shortUsed);
    const entry: DelayedCompletion = { index, head, written, outcome: r, t0, descriptors, indirect };
    if (f.delayMs > 0) {
      entry.timer = setTimeout(() => {
        this.delayed.delete(entry);
        this.finishDelayed(entry);
      }, f.delayMs);
      this.delayed.add(entry);
      return undefined;
    }
    this.pushFaulted(entry);
    return f.irq;
  }

  private pushFaulted(e: DelayedCompletion): boolean {
    const v = this.vrings[e.index];
    const q = v.queue;
    if (!q) return false;
    const r = e.outcome;
    q.pushUsed(e.head, e.written);
    const t1 = performance.now();
    v.stats.recent.record(e.head, r.opcode, r.sessionId, r.srcLen, r.dstLen, r.status < 0 ? 255 : r.status, t1 - e.t0, t1 - this.started, e.descriptors, e.indirect);
    if (r.fault) v.stats.recent.markFault(this.faultRulesText(r.fault.rules));
    return true;
  }

  private finishDelayed(e: DelayedCompletion): void {
    const v = this.vrings[e.index];
    if (!this.pushFaulted(e) || !v.queue) return;
    if (v.queue.publish()) this.signalGuest(v, e.outcome.fault?.irq);
  }

  private flushDelayed(index: number): void {
    for (const e of [...this.delayed]) {
      if (e.index !== index) continue;
      clearTimeout(e.timer);
      this.delayed.delete(e);
      this.finishDelayed(e);
    }
  }

  faultsSnapshot(): FaultsSnapshot {
    const held = this.faults.stalledBy === null ? 0 : this.vrings.reduce((n, v) => n + (v.queue ? v.queue.pending() : 0), 0);
    return {
      ...this.faults.snapshot(), heldRequests: held, delayedInFlight: this.delayed.size,
      interruptsWithheld: this.interruptsWithheld, interruptsDuplicated: this.interruptsDuplicated,
    };
  }

  /** Built only when asked: the data path never pays for it. */
  snapshot(): BackendSnapshot {
    const queues = this.vrings.map((v, index): QueueSnapshot => {
      const q = v.queue;
      let inFlight = 0;
      if (q) for (let i = 0; i < q.size; i++) if (q.slots[i] === HeadState.InFlight) inFlight++;
      return {
        index, size: v.num, ready: q !== undefined, enabled: v.enabled, broken: q?.broken ?? null,
        availIdx: q ? q.availIdx() : null, usedIdx: q ? q.usedIdx : null, lastAvailIdx: q ? q.lastAvailIdx : null,
        availFlags: q ? q.availFlags() : null, usedFlags: q ? q.usedFlags() : null,
        usedEvent: q ? q.usedEvent() : null, availEvent: q ? q.availEvent() : null,
        inFlight, slots: q ? slotStates(q) : '', recent: v.stats.recent.snapshot(SNAPSHOT_RECENT),
      };
    });
    return {
      type: 'snapshot', schema: TELEMETRY_SCHEMA, pid: process.pid, uptimeMs: Math.round(performance.now() - this.started), socket: this.opts.socketPath,
      frontend: {
        connected: this.conn !== undefined, owner: this.owner, features: `0x${this.ackedFeatures.toString(16)}`,
        protocolFeatures: `0x${this.ackedProtocolFeatures.toString(16)}`, memoryRegions: this.memory?.regions.length ?? 0,
      },
      engine: { name: this.opts.engine.engine.name, reason: this.opts.engine.reason },
      limits: { maxDataLen: MAX_DATA_LEN, maxSessions: MAX_SESSIONS, maxChainsPerPass: MAX_CHAINS_PER_PASS },
      sessions: this.device.sessionSummaries(),
      counters: { ...this.counters },
      queues,
      faults: this.faultsSnapshot(),
    };
  }

  /** One head's descriptor chain, decoded from guest memory now (telemetry "chain" request). */
  chain(queue: number, head: number): ChainDetail | { type: 'error'; message: string } {
    const v = this.vrings[queue];
    if (!v?.queue || !this.memory) return { type: 'error', message: `queue ${queue} is not running` };
    if (head >= v.queue.size) return { type: 'error', message: `head ${head} is outside queue ${queue} of size ${v.queue.size}` };
    return chainDetail(v.queue, this.memory, queue, head, v.stats.recent.newestAt(head), this.device.sessionSummaries());
  }

  /** The avail ring header at a guest-physical address (telemetry "avail": the control queue QEMU serves). */
  availRing(addr: number): AvailRingHeader | { type: 'error'; message: string } {
    if (!this.allowedAvail.includes(addr) && !this.ownAvailGpas().includes(addr)) {
      return { type: 'error', message: `0x${addr.toString(16)} is not a ring address: avail reads only the rings this back-end serves and those the lab registered (avail-allow)` };
    }
    return availRingHeader(this.memory, addr);
  }

  /**
   * The lab registers a ring address it resolved itself (QMP's vring-avail of the control queue),
   * then reads it. At most MAX_ALLOWED_AVAIL are kept, the oldest dropped; only readable ones count.
   */
  allowAvailRing(addr: number): AvailRingHeader | { type: 'error'; message: string } {
    const header = availRingHeader(this.memory, addr);
    if (header.type !== 'avail') return header;
    if (!this.allowedAvail.includes(addr)) {
      this.allowedAvail.push(addr);
      if (this.allowedAvail.length > MAX_ALLOWED_AVAIL) this.allowedAvail.shift();
    }
    return header;
  }

  /** Guest-physical addresses of the avail rings of the queues this back-end serves. */
  private ownAvailGpas(): number[] {
    const out: number[] = [];
    const regions = this.memory?.regions ?? [];
    for (const v of this.vrings) {
      if (!v.queue || !v.addr) continue;
      const va = frontendVa(v.addr.availUser);
      const r = regions.find((m) => va >= m.va && va < m.va + m.size);
      if (r) out.push(Number(r.gpa + (va - r.va)));
    }
    return out;
  }
}

/** Ring addresses the lab may register for avail reads (control queues of a device or two). */
const MAX_ALLOWED_AVAIL = 4;

function expectEmpty(request: number, payload: Uint8Array): void {
  // QEMU sends GET_* requests with size 0; a u64 placeholder is tolerated as some front-ends send one.
  if (payload.length !== 0 && payload.length !== 8) throw new WireError(request, `payload is ${payload.length} bytes, expected none`);
}
