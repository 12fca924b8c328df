/**
 * The conformance oracle (docs/checking.md): the device as a referee of the driver. It counts every
 * violation of a rule of rules.ts per rule, keeps the newest ones with the clause, the queue, the
 * head and the offending values, and answers the `conformance` section of telemetry. The sites that
 * observe the driver call it directly, one call each: the vhost-user protocol (features), each
 * ring's QueueReferee (queue-referee.ts), the crypto device (requests, sessions). Counting is a few
 * stores on a rare path; the data path itself only runs the referee's checks.
 *
 * "Negotiated", for VIRTIO_F_INDIRECT_DESC and VIRTIO_F_EVENT_IDX: QEMU 7.2 acks only bit 30 to a
 * vhost-user crypto back-end while it negotiates the ring features with the guest
 * (docs/platform.md#qemu-72). So the oracle trusts SET_FEATURES as the guest's features only when
 * it carries VIRTIO_F_VERSION_1 ("told": every virtio 1.x front-end forwarding the guest's features
 * acks it); otherwise ("offered") a feature this back-end offered counts as negotiated, an acked
 * one as acked, and a rule that depends on it is checked in the form that holds either way.
 */
import { performance } from 'node:perf_hooks';
import { IdleReferee, QueueReferee, type RefereeOwner } from './queue-referee';
import { type ConformanceSnapshot, type RuleCount, SNAPSHOT_VIOLATIONS, type ViolationRecord } from './report';
import { R, RULES, named } from './rules';

/** The rule numbers, for the sites that report to the oracle. */
export { R };

const VIRTIO_F_VERSION_1 = 1n << 32n;
const VIRTIO_RING_F_INDIRECT_DESC = 1n << 28n;
const VIRTIO_RING_F_EVENT_IDX = 1n << 29n;

/** Opcodes virtio_crypto_op_header defines (§5.9.7.3): CIPHER, HASH, MAC, AEAD, AKCIPHER. */
const DEFINED_OPCODES: ReadonlySet<number> = new Set([0x000, 0x001, 0x100, 0x200, 0x300, 0x301, 0x400, 0x401, 0x402, 0x403]);
const CIPHER_OPCODES: ReadonlySet<number> = new Set([0x000, 0x001]);

/** Violations kept for telemetry (a snapshot shows SNAPSHOT_VIOLATIONS of them). */
export const KEPT_VIOLATIONS = 64;

/** Where violations are logged: rate-limited per reason (backend/log.ts RateLimitedLog). */
export interface ViolationLog {
  line(reason: string, text: string): void;
}

export interface ConformanceOptions {
  /** false: no checks, no counts (measurement only: `vlab backend --conformance off`). Default true. */
  readonly enabled?: boolean;
  /** Answer a request that broke a ring rule with status ERR instead of serving it. Default false. */
  readonly strict?: boolean;
  /** performance.now() when the back-end started (violation times count from here). */
  readonly startedAt?: number;
  readonly log?: ViolationLog;
}

export class Conformance implements RefereeOwner {
  readonly enabled: boolean;
  readonly strict: boolean;
  private readonly startedAt: number;
  private readonly log: ViolationLog | undefined;
  private readonly counts = new Float64Array(RULES.length);
  private readonly last: (ViolationRecord | undefined)[] = new Array<ViolationRecord | undefined>(RULES.length);
  private readonly kept: ViolationRecord[] = [];
  private next = 0;
  private seq = 0;
  private violations = 0;
  private refusals = 0;
  // What the front-end negotiated (reset when it goes); kept as booleans, read on the data path.
  private told = false;
  private ackedBits = 0n;
  eventIdxAcked = false;
  indirectAllowed = true;
  // The chain being served (set by the referee of its queue when it is taken).
  private queue = -1;
  private head = -1;

  constructor(opts: ConformanceOptions = {}) {
    this.enabled = opts.enabled ?? true;
    this.strict = opts.strict ?? false;
    this.startedAt = opts.startedAt ?? performance.now();
    this.log = opts.log;
  }

  /** An oracle of its own (tests, and parts built without a back-end). */
  static detached(): Conformance {
    return new Conformance();
  }

  /** The referee of one ring, made each time the ring is (re)built. */
  queueReferee(index: number, size: number, base: number): QueueReferee {
    return this.enabled ? new QueueReferee(this, index, size, base) : new IdleReferee(this, index, size, base);
  }

  // ---- initialisation (vhost-user protocol) ---------------------------------------------------

  /** SET_FEATURES (`virtio` true) or SET_PROTOCOL_FEATURES acked `bits` of `offered`. §2.2.1. */
  acked(virtio: boolean, bits: bigint, offered: bigint): void {
    const extra = bits & ~offered;
    if (extra !== 0n) this.record(virtio ? R.InitFeatures : R.InitProtocolFeatures, null, null, `acked 0x${bits.toString(16)}: 0x${extra.toString(16)} was not offered (offered 0x${offered.toString(16)})`, true);
    if (!virtio) return;
    this.told = (bits & VIRTIO_F_VERSION_1) !== 0n;
    this.ackedBits = bits;
    this.eventIdxAcked = (bits & VIRTIO_RING_F_EVENT_IDX) !== 0n;
    this.indirectAllowed = ((this.told ? bits : bits | offered) & VIRTIO_RING_F_INDIRECT_DESC) !== 0n;
  }

  /** The front-end went: the next one negotiates afresh (the counts stay for the back-end's life). */
  frontendGone(): void {
    this.told = false;
    this.ackedBits = 0n;
    this.eventIdxAcked = false;
    this.indirectAllowed = true;
    this.queue = this.head = -1;
  }

  get featuresText(): string {
    return `0x${this.ackedBits.toString(16)} (${this.told ? 'the guest\'s, as the front-end told them' : 'the front-end does not tell the guest\'s'})`;
  }

  // ---- the chain being served -----------------------------------------------------------------

  at(queue: number, head: number): void {
    this.queue = queue;
    this.head = head;
  }

  private get currentQueue(): number | null {
    return this.queue < 0 ? null : this.queue;
  }

  private get currentHead(): number | null {
    return this.head < 0 ? null : this.head;
  }

  /** The device refused a malformed request for `rule`: counted (unless `counted`), its reason names the rule. */
  refusal(rule: number, message: string, counted: boolean): string {
    if (!counted) this.record(rule, this.currentQueue, this.currentHead, message, true);
    return named(rule, message);
  }

  /** The device answered NOTSUPP for an opcode that is not CIPHER_ENCRYPT/DECRYPT (`sessionKnown`: the id is one of its sessions). */
  opcodeRefused(opcode: number, sessionId: bigint, sessionKnown: boolean): void {
    const hex = `0x${opcode.toString(16)}`;
    if (!DEFINED_OPCODES.has(opcode)) this.record(R.CryptoOpcodeUnknown, this.currentQueue, this.currentHead, `opcode ${hex} is not defined (session ${sessionId})`);
    else if (sessionKnown && !CIPHER_OPCODES.has(opcode)) this.record(R.CryptoOpcodeSession, this.currentQueue, this.currentHead, `opcode ${hex} on symmetric session ${sessionId}`);
    else this.record(R.CryptoSessionUnknown, this.currentQueue, this.currentHead, `opcode ${hex} names session ${sessionId}, which the device does not have`);
  }

  /** The device answered INVSESS: `created` — the device made that id once (it was destroyed since). */
  unknownSession(id: bigint, created: boolean): void {
    this.record(R.CryptoSessionUnknown, this.currentQueue, this.currentHead, `session ${id} ${created ? 'was destroyed' : 'was never created'}`);
  }

  /** CLOSE_CRYPTO_SESSION of an id the device does not have; returns the device's answer (false). */
  unknownClose(id: bigint, created: boolean): false {
    this.record(R.CryptoCloseUnknown, null, null, `destroy of session ${id}, which ${created ? 'was destroyed already' : 'was never created'}`, true);
    return false;
  }

  // ---- counting ---------------------------------------------------------------------------------

  /** Counts one violation of `rule`; returns `rule`. `logged`: its site logs it already. */
  record(rule: number, queue: number | null, head: number | null, detail: string, logged = false): number {
    if (!this.enabled) return rule;
    const info = RULES[rule];
    this.counts[rule]++;
    if (info.kind === 'driver') this.violations++;
    else this.refusals++;
    const v: ViolationRecord = {
      seq: ++this.seq, rule: info.id, clause: info.clause, kind: info.kind, queue, head, detail,
      atMs: Math.round(performance.now() - this.startedAt),
    };
    this.last[rule] = v;
    this.kept[this.next] = v;
    this.next = (this.next + 1) % KEPT_VIOLATIONS;
    if (!logged && this.log) {
      const where = queue === null ? '' : `queue ${queue}${head === null ? '' : ` head ${head}`}: `;
      this.log.line(`conformance ${info.id}`, `conformance: ${where}${named(rule, detail)}`);
    }
    return rule;
  }

  /** Times `rule` was broken (tests). */
  count(rule: number): number {
    return this.counts[rule] ?? 0;
  }

  snapshot(): ConformanceSnapshot {
    const rules: RuleCount[] = [];
    for (let i = 1; i < RULES.length; i++) {
      const last = this.last[i];
      if (this.counts[i] > 0 && last) rules.push({ rule: RULES[i].id, clause: RULES[i].clause, kind: RULES[i].kind, count: this.counts[i], last });
    }
    const recent: ViolationRecord[] = [];
    const n = Math.min(this.kept.length, SNAPSHOT_VIOLATIONS);
    for (let k = 1; k <= n; k++) recent.push(this.kept[(this.next - k + KEPT_VIOLATIONS) % KEPT_VIOLATIONS]);
    return {
      enabled: this.enabled, strict: this.strict, features: this.told ? 'told' : 'offered',
      violations: this.violations, refusals: this.refusals, rules, recent,
    };
  }
}
