/**
 * One virtqueue as the front-end set it up: size, base, ring addresses, the kick, call and err
 * eventfds (owned from the moment they are given: closed here), and the live SplitQueue built from
 * them on the current guest memory. The vhost-user protocol configures it through its VringHost,
 * which the queue pump implements; the pump serves it.
 */
import * as vhost from '../../addon/lib/vhost';
import type { Conformance } from '../conformance/oracle';
import type { RecentRing } from '../telemetry/stats';
import type { GuestMemory } from './memory';
import { type RingAddresses, SplitQueue } from './virtqueue';

export class Vring {
  num = 0;
  base = 0;
  addrs: RingAddresses | undefined;
  kickFd: number | undefined;
  callFd: number | undefined;
  errFd: number | undefined;
  enabled = false;
  queue: SplitQueue | undefined;
  /** The kick fd's poll while the ring runs. */
  poll: vhost.PollHandle | undefined;
  /** The next pass when the last one ended on its budget. */
  resume: NodeJS.Immediate | undefined;

  constructor(
    readonly index: number,
    /** Recent requests; outlives the front-end (a new Vring after a reconnect keeps it). */
    readonly recent: RecentRing,
    /** The conformance oracle: each SplitQueue gets a referee of its own. */
    private readonly conformance: Conformance,
  ) {}

  /** Where the device is on the avail ring: what GET_VRING_BASE reports. */
  lastAvail(): number {
    return this.queue ? this.queue.lastAvailIdx : this.base;
  }

  /**
   * (Re)builds the SplitQueue on `memory`, keeping the positions of the one it replaces. Throws
   * (QueueSetupError) for a ring that does not fit the memory.
   */
  build(memory: GuestMemory, eventIdx: boolean): void {
    if (!this.addrs) return;
    const base = this.queue ? this.queue.lastAvailIdx : this.base;
    const used = this.queue ? this.queue.usedIdx : this.base;
    this.queue = new SplitQueue(this.index, this.num, memory, this.addrs, base, eventIdx, this.conformance.queueReferee(this.index, this.num, base));
    this.queue.usedIdx = used;
  }

  /** Writes the call eventfd (one interrupt for the guest); false when the front-end gave none. */
  signal(): boolean {
    const fd = this.callFd;
    if (fd === undefined) return false;
    vhost.eventfdWrite(fd, 1);
    return true;
  }

  setCallFd(fd: number | undefined): void {
    if (this.callFd !== undefined) vhost.closeFd(this.callFd);
    this.callFd = fd;
  }

  setErrFd(fd: number | undefined): void {
    if (this.errFd !== undefined) vhost.closeFd(this.errFd);
    this.errFd = fd;
  }

  /**
   * Stops serving: no kick poll, no queue (its position kept as the base), kick fd closed; with
   * `closeAll` (the front-end is gone) the call and err fds too. The caller cancels `resume` first.
   */
  halt(closeAll: boolean): void {
    if (this.poll) vhost.pollStop(this.poll);
    this.poll = undefined;
    if (this.queue) this.base = this.queue.lastAvailIdx;
    this.queue = undefined;
    if (this.kickFd !== undefined) vhost.closeFd(this.kickFd);
    this.kickFd = undefined;
    if (closeAll) {
      if (this.callFd !== undefined) vhost.closeFd(this.callFd);
      if (this.errFd !== undefined) vhost.closeFd(this.errFd);
      this.callFd = undefined;
      this.errFd = undefined;
    }
  }
}
