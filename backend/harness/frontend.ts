/**
 * A vhost-user *front-end* that plays QEMU's part without a VM, for conformance tests, the fuzzer
 * and benchmarks: memfd "guest memory" split into two regions, a split ring laid out in it, the
 * message sequence QEMU 7.2 sends, requests posted like Linux 6.1's virtio_crypto driver (one
 * indirect descriptor per request, legacy 72-byte header), completions read from the used ring.
 */
import * as vhost from '../../addon/lib/vhost';
import * as S from '../crypto/spec';
import * as W from '../vhost-user/wire';
import { FLAG_NEED_REPLY, FLAG_REPLY, FLAG_VERSION, HEADER_SIZE, Request } from '../vhost-user/wire';
import { VIRTQ_DESC_F_INDIRECT } from '../virtio/virtqueue';
import { type CipherRequestSpec, type CipherResult, type RequestLayout, align, layOutRequest, readResult, slotBytes, writeDesc } from './request-layout';

/** How long createSession waits for the back-end's reply (see there). */
const SESSION_REPLY_TIMEOUT_MS = 20_000;

/** Front-end virtual addresses of the two regions: deliberately unrelated to the GPAs. */
const VA_BASE = [0x7f1200000000n, 0x7f5600000000n];

export interface FrontendOptions {
  /** Total guest memory (split in two regions at the middle). Default 32 MiB. */
  readonly memoryBytes?: number;
  readonly queueSize?: number;
  /** Ack VIRTIO_RING_F_EVENT_IDX in SET_FEATURES (QEMU 7.2 acks only PROTOCOL_FEATURES). */
  readonly ackEventIdx?: boolean;
  /** Ask for REPLY_ACK and set NEED_REPLY on requests without replies. */
  readonly replyAck?: boolean;
  readonly sessionLayout?: 'qemu7' | 'qemu8.1';
}

export interface UsedElem {
  readonly id: number;
  readonly len: number;
}

export interface Reply {
  readonly request: number;
  readonly flags: number;
  readonly payload: Buffer;
}

/** A chain session (op_type ALGORITHM_CHAINING): NO_CIPHER or a cipher, with a plain hash or an HMAC. */
export interface ChainSessionSpec {
  /** VIRTIO_CRYPTO_NO_CIPHER (default) or a cipher algorithm. */
  readonly cipherAlg?: number;
  readonly key?: Buffer;
  /** VIRTIO_CRYPTO_SYM_HASH_MODE_PLAIN or _AUTH. */
  readonly hashMode: number;
  /** VIRTIO_CRYPTO_HASH_* (PLAIN) or VIRTIO_CRYPTO_MAC_* (AUTH). */
  readonly hashAlg: number;
  readonly authKey?: Buffer;
  readonly hashResultLen: number;
  /** Default HASH_THEN_CIPHER. */
  readonly order?: number;
  readonly encrypt?: boolean;
  readonly aadLen?: number;
}

export class TestFrontend {
  readonly mem: Uint8Array;
  readonly size: number;
  readonly queueSize: number;
  readonly descGpa = 0x1000;
  readonly availGpa: number;
  readonly usedGpa: number;
  /** First byte free for buffers. */
  readonly heapGpa: number;
  private readonly view: DataView;
  private lastUsed = 0;
  private availIdx = 0;
  private replies: Reply[] = [];
  private replyWaiters: (() => void)[] = [];
  private usedWaiters: (() => void)[] = [];
  private rxChunks: Buffer[] = [];
  private readonly fdPoll: vhost.PollHandle;
  private readonly callPoll: vhost.PollHandle;
  private closed = false;
  /** Set when the back-end closed the connection. */
  disconnected = false;
  interrupts = 0;
  /** Used entries collected so far. */
  completions = 0;
  /** Kick eventfd writes made (every {@link kick}). */
  kicks = 0;
  /** Sum of the call eventfd's counter values read: every write the back-end made, even merged ones. */
  signals = 0;
  private readonly memfd: number;
  private readonly mapping: ArrayBuffer;
  readonly kickFd: number;
  readonly callFd: number;
  private readonly opts: Required<FrontendOptions>;

  private constructor(
    private readonly fd: number,
    opts: FrontendOptions,
  ) {
    this.opts = { memoryBytes: 32 << 20, queueSize: 128, ackEventIdx: false, replyAck: false, sessionLayout: 'qemu7', ...opts };
    this.size = this.opts.memoryBytes;
    this.queueSize = this.opts.queueSize;
    this.memfd = vhost.memfdCreate('vlab-test-guest', this.size);
    this.mapping = vhost.mmap(this.memfd, 0, this.size, true);
    this.mem = new Uint8Array(this.mapping);
    this.view = new DataView(this.mapping);
    this.availGpa = this.descGpa + 16 * this.queueSize;
    this.usedGpa = align(this.availGpa + 6 + 2 * this.queueSize, 4096);
    this.heapGpa = align(this.usedGpa + 6 + 8 * this.queueSize, 4096);
    this.kickFd = vhost.eventfdCreate();
    this.callFd = vhost.eventfdCreate();
    this.fdPoll = vhost.pollStart(fd, (st) => this.onReadable(st));
    this.callPoll = vhost.pollStart(this.callFd, (_status, count) => {
      this.interrupts++;
      this.signals += count;
      this.wake(this.usedWaiters);
    }, { drainEventfd: true });
  }

  static async connect(socketPath: string, opts: FrontendOptions = {}): Promise<TestFrontend> {
    const fe = new TestFrontend(vhost.connectUnix(socketPath), opts);
    try {
      await fe.handshake();
    } catch (err) {
      fe.close();
      throw err;
    }
    return fe;
  }

  /** Connects without the start sequence (protocol tests drive messages themselves). */
  static raw(socketPath: string, opts: FrontendOptions = {}): TestFrontend {
    return new TestFrontend(vhost.connectUnix(socketPath), opts);
  }

  /** The sequence QEMU 7.2 sends (notes §3), up to a live ring. */
  async handshake(): Promise<void> {
    const features = W.decodeU64(0, (await this.call(Request.GET_FEATURES)).payload);
    if ((features & (1n << W.VHOST_USER_F_PROTOCOL_FEATURES)) === 0n) throw new Error('back-end does not offer PROTOCOL_FEATURES');
    const pf = W.decodeU64(0, (await this.call(Request.GET_PROTOCOL_FEATURES)).payload);
    let want = pf & ((1n << 7n) | (1n << 0n));
    if (this.opts.replyAck) want |= pf & (1n << 3n);
    this.sendNoReply(Request.SET_PROTOCOL_FEATURES, W.encodeU64(want));
    await this.call(Request.GET_QUEUE_NUM);
    await this.ackable(Request.SET_OWNER, Buffer.alloc(0));
    let ack = 1n << W.VHOST_USER_F_PROTOCOL_FEATURES;
    if (this.opts.ackEventIdx) ack |= 1n << W.VIRTIO_RING_F_EVENT_IDX;
    await this.ackable(Request.SET_FEATURES, W.encodeU64(ack));
    const half = this.size / 2;
    await this.ackable(Request.SET_MEM_TABLE, W.encodeMemTable([
      { guestPhysAddr: 0n, memorySize: BigInt(half), userspaceAddr: VA_BASE[0], mmapOffset: 0n },
      { guestPhysAddr: BigInt(half), memorySize: BigInt(half), userspaceAddr: VA_BASE[1], mmapOffset: BigInt(half) },
    ]), [this.memfd, this.memfd]);
    await this.ackable(Request.SET_VRING_NUM, W.encodeVringState({ index: 0, num: this.queueSize }));
    await this.ackable(Request.SET_VRING_BASE, W.encodeVringState({ index: 0, num: 0 }));
    await this.ackable(Request.SET_VRING_ADDR, W.encodeVringAddr({
      index: 0, flags: 0, descUser: this.va(this.descGpa), usedUser: this.va(this.usedGpa), availUser: this.va(this.availGpa), logGuest: 0n,
    }));
    await this.ackable(Request.SET_VRING_KICK, W.encodeU64(0n), [this.kickFd]);
    await this.ackable(Request.SET_VRING_CALL, W.encodeU64(0n), [this.callFd]);
  }

  /** Front-end VA of a guest-physical address (both regions map linearly). */
  va(gpa: number): bigint {
    const half = this.size / 2;
    return gpa < half ? VA_BASE[0] + BigInt(gpa) : VA_BASE[1] + BigInt(gpa - half);
  }

  // ---- messages -----------------------------------------------------------------------------

  send(request: number, payload: Uint8Array, fds: readonly number[] = [], flags = FLAG_VERSION): void {
    const bytes = W.encodeMessage(request, flags, payload);
    const n = vhost.sendMsg(this.fd, bytes, fds);
    if (n !== bytes.length) throw new Error('short send');
  }

  sendBytes(bytes: Uint8Array, fds: readonly number[] = []): void {
    vhost.sendMsg(this.fd, bytes, fds);
  }

  sendNoReply(request: number, payload: Uint8Array, fds: readonly number[] = []): void {
    this.send(request, payload, fds);
  }

  /** Sends with NEED_REPLY when REPLY_ACK is in use and checks the ack. */
  async ackable(request: number, payload: Uint8Array, fds: readonly number[] = []): Promise<void> {
    if (!this.opts.replyAck) {
      this.send(request, payload, fds);
      return;
    }
    this.send(request, payload, fds, FLAG_VERSION | FLAG_NEED_REPLY);
    const r = await this.nextReply();
    if (r.request !== request || W.decodeU64(request, r.payload) !== 0n) throw new Error(`${W.requestName(request)} was not acked with 0`);
  }

  async call(request: number, payload: Uint8Array = Buffer.alloc(0), timeoutMs = 2000): Promise<Reply> {
    this.send(request, payload);
    const r = await this.nextReply(timeoutMs);
    if (r.request !== request) throw new Error(`reply to ${W.requestName(r.request)} while waiting for ${W.requestName(request)}`);
    if ((r.flags & FLAG_REPLY) === 0) throw new Error('reply flag missing');
    return r;
  }

  async nextReply(timeoutMs = 2000): Promise<Reply> {
    const deadline = Date.now() + timeoutMs;
    while (this.replies.length === 0) {
      if (this.disconnected) throw new Error('back-end closed the connection');
      if (Date.now() > deadline) throw new Error('no reply from the back-end');
      await this.waitOn(this.replyWaiters, deadline - Date.now());
    }
    return this.replies.shift() as Reply;
  }

  private onReadable(status: number): void {
    if (status < 0) {
      this.markDisconnected();
      return;
    }
    let eof = false;
    for (;;) {
      const got = vhost.recvMsg(this.fd, 65536, 4);
      if (!got) break;
      for (const fd of got.fds) vhost.closeFd(fd);
      if (got.bytes.length === 0) {
        // Replies that arrived with the close (a NACK, then the hang-up) are still delivered.
        eof = true;
        break;
      }
      this.rxChunks.push(got.bytes);
    }
    let buf = Buffer.concat(this.rxChunks);
    while (buf.length >= HEADER_SIZE) {
      const size = buf.readUInt32LE(8);
      if (buf.length < HEADER_SIZE + size) break;
      this.replies.push({ request: buf.readUInt32LE(0), flags: buf.readUInt32LE(4), payload: Buffer.from(buf.subarray(HEADER_SIZE, HEADER_SIZE + size)) });
      buf = buf.subarray(HEADER_SIZE + size);
    }
    this.rxChunks = buf.length ? [buf] : [];
    if (eof) this.markDisconnected();
    this.wake(this.replyWaiters);
  }

  private markDisconnected(): void {
    this.disconnected = true;
    vhost.pollStop(this.fdPoll);
    this.wake(this.replyWaiters);
    this.wake(this.usedWaiters);
  }

  /** Resolves once the back-end has closed the connection (or rejects after timeoutMs). */
  async waitDisconnected(timeoutMs = 2000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.disconnected) {
      if (Date.now() > deadline) throw new Error('back-end did not close the connection');
      await this.waitOn(this.replyWaiters, deadline - Date.now());
    }
  }

  private wake(list: (() => void)[]): void {
    const waiting = list.splice(0);
    for (const w of waiting) w();
  }

  private waitOn(list: (() => void)[], ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(done, Math.max(1, ms));
      function done(): void {
        clearTimeout(t);
        resolve();
      }
      list.push(done);
    });
  }

  // ---- sessions -----------------------------------------------------------------------------

  async createSession(info: Omit<W.SymSessionInfo, 'keyLen' | 'authKeyLen'>, layout = this.opts.sessionLayout): Promise<bigint> {
    // QEMU waits for this reply without a limit. An engine on /dev/crypto answers after its
    // CIOCGSESSION, which can load and self-test a kernel module on first use (xts, des3_ede: over
    // 2 s in a TCG guest), so this waits longer than other messages.
    const r = await this.call(Request.CREATE_CRYPTO_SESSION, W.encodeCreateSession(layout, info), SESSION_REPLY_TIMEOUT_MS);
    const expect = layout === 'qemu7' ? W.CRYPTO_SESSION_SIZE_V7 : W.CRYPTO_SESSION_SIZE_V81;
    if (r.payload.length !== expect) throw new Error(`session reply is ${r.payload.length} bytes, expected ${expect}`);
    return W.decodeCreateSessionReplyId(r.payload);
  }

  async cipherSession(mode: number, key: Buffer, encrypt: boolean): Promise<bigint> {
    return this.createSession({
      cipherAlg: mode, hashAlg: 0, hashResultLen: 0, addLen: 0, opType: S.VIRTIO_CRYPTO_SYM_OP_CIPHER,
      direction: encrypt ? S.VIRTIO_CRYPTO_OP_ENCRYPT : S.VIRTIO_CRYPTO_OP_DECRYPT, hashMode: 0, algChainOrder: 0, key, authKey: Buffer.alloc(0),
    });
  }

  async chainSession(c: ChainSessionSpec, layout = this.opts.sessionLayout): Promise<bigint> {
    return this.createSession({
      cipherAlg: c.cipherAlg ?? S.VIRTIO_CRYPTO_NO_CIPHER, hashAlg: c.hashAlg, hashResultLen: c.hashResultLen, addLen: c.aadLen ?? 0,
      opType: S.VIRTIO_CRYPTO_SYM_OP_ALGORITHM_CHAINING, direction: c.encrypt === false ? S.VIRTIO_CRYPTO_OP_DECRYPT : S.VIRTIO_CRYPTO_OP_ENCRYPT,
      hashMode: c.hashMode, algChainOrder: c.order ?? S.VIRTIO_CRYPTO_SYM_ALG_CHAIN_ORDER_HASH_THEN_CIPHER,
      key: c.key ?? Buffer.alloc(0), authKey: c.authKey ?? Buffer.alloc(0),
    }, layout);
  }

  async closeSession(id: bigint): Promise<void> {
    await this.ackable(Request.CLOSE_CRYPTO_SESSION, W.encodeU64(id));
  }

  // ---- ring ---------------------------------------------------------------------------------

  writeDesc(tableGpa: number, i: number, addr: bigint | number, len: number, flags: number, next: number): void {
    writeDesc(this.view, tableGpa, i, addr, len, flags, next);
  }

  /** Puts head in the avail ring; the index is published by {@link publishAvail}. */
  pushAvail(head: number): void {
    this.view.setUint16(this.availGpa + 4 + 2 * (this.availIdx % this.queueSize), head, true);
    this.availIdx = (this.availIdx + 1) & 0xffff;
  }

  publishAvail(): void {
    this.view.setUint16(this.availGpa + 2, this.availIdx, true);
  }

  /** Forces avail->idx to any value (adversarial tests). */
  setAvailIdxRaw(value: number): void {
    this.view.setUint16(this.availGpa + 2, value & 0xffff, true);
  }

  kick(): void {
    this.kicks++;
    vhost.eventfdWrite(this.kickFd, 1);
  }

  /**
   * Publishes avail->idx and kicks only if the device asked for it: like Linux with EVENT_IDX,
   * a kick is due when avail_event lies in [old idx, new idx). Returns whether it kicked.
   */
  publishAndKickIfNeeded(): boolean {
    const old = this.view.getUint16(this.availGpa + 2, true);
    // Seq-cst store: the idx is visible before avail_event is read (the device's mirror-image fence
    // is in armNotification), so a device going idle cannot be missed.
    Atomics.store(new Uint16Array(this.mem.buffer, this.availGpa, 2), 1, this.availIdx);
    const event = this.availEvent();
    if (((this.availIdx - event - 1) & 0xffff) < ((this.availIdx - old) & 0xffff)) {
      this.kick();
      return true;
    }
    return false;
  }

  usedIdx(): number {
    return this.view.getUint16(this.usedGpa + 2, true);
  }

  availEvent(): number {
    return this.view.getUint16(this.usedGpa + 4 + 8 * this.queueSize, true);
  }

  setUsedEvent(v: number): void {
    this.view.setUint16(this.availGpa + 4 + 2 * this.queueSize, v & 0xffff, true);
  }

  setAvailFlags(v: number): void {
    this.view.setUint16(this.availGpa, v, true);
  }

  /** Used entries not yet collected. */
  collectUsed(): UsedElem[] {
    const out: UsedElem[] = [];
    const idx = this.usedIdx();
    while (this.lastUsed !== idx) {
      const slot = this.lastUsed % this.queueSize;
      out.push({ id: this.view.getUint32(this.usedGpa + 4 + 8 * slot, true), len: this.view.getUint32(this.usedGpa + 8 + 8 * slot, true) });
      this.lastUsed = (this.lastUsed + 1) & 0xffff;
    }
    this.completions += out.length;
    if (this.opts.ackEventIdx) this.setUsedEvent(this.lastUsed);
    return out;
  }

  /**
   * Waits until `count` more used entries exist (interrupt-driven, with a timeout). The default is a
   * bound for a back-end that will never answer, not a performance window: a fresh-clone CI run at
   * load 13-21 (these tests also run inside the TCG guest) saw a chain request answered later than
   * the old 2 s.
   */
  async waitUsed(count: number, timeoutMs = 30_000): Promise<UsedElem[]> {
    const got: UsedElem[] = [];
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      got.push(...this.collectUsed());
      if (got.length >= count) return got;
      if (this.disconnected) throw new Error(`back-end disconnected with ${got.length}/${count} completions`);
      if (Date.now() > deadline) throw new Error(`timed out with ${got.length}/${count} completions`);
      await this.waitOn(this.usedWaiters, Math.min(50, deadline - Date.now()));
    }
  }

  // ---- requests like Linux 6.1 ----------------------------------------------------------------

  /** Bytes one request slot needs for a given payload size. */
  static slotBytes(maxData: number): number {
    return slotBytes(maxData);
  }

  /** Lays out one request at `slotGpa` (request-layout.ts) and puts descriptor `head`, pointing at its table, in the avail ring. */
  postRequest(head: number, slotGpa: number, req: CipherRequestSpec, opts: { clearDst?: boolean } = {}): RequestLayout {
    const { layout, tableBytes } = layOutRequest(this.mem, this.view, slotGpa, req, opts);
    this.writeDesc(this.descGpa, head, slotGpa, tableBytes, VIRTQ_DESC_F_INDIRECT, 0);
    this.pushAvail(head);
    return layout;
  }

  readResult(layout: RequestLayout, usedLen: number): CipherResult {
    return readResult(this.mem, layout, usedLen);
  }

  /** One request, posted, kicked and awaited. */
  async run(req: CipherRequestSpec, timeoutMs = 2000): Promise<CipherResult> {
    const layout = this.postRequest(0, this.heapGpa, req);
    this.publishAvail();
    this.kick();
    const used = await this.waitUsed(1, timeoutMs);
    if (used[0].id !== 0) throw new Error(`used id ${used[0].id}, expected 0`);
    return this.readResult(layout, used[0].len);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (!this.disconnected) vhost.pollStop(this.fdPoll);
    vhost.pollStop(this.callPoll);
    vhost.closeFd(this.fd);
    vhost.closeFd(this.kickFd);
    vhost.closeFd(this.callFd);
    vhost.munmap(this.mapping);
    vhost.closeFd(this.memfd);
  }
}
