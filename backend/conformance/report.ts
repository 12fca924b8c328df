/**
 * What the conformance oracle reports: the `conformance` section of a telemetry snapshot
 * (docs/telemetry.md, docs/checking.md). Types and one constant, nothing at run time imported:
 * the telemetry schema, its readers and the rings webview use them.
 */
import type { RuleKind } from './rules';

/** One violation (or device-limit refusal) as it happened. */
export interface ViolationRecord {
  /** 1 = the first one the back-end saw */
  readonly seq: number;
  /** the rule's id, e.g. "chain.order" (backend/conformance/rules.ts) */
  readonly rule: string;
  /** e.g. "§2.7.4.2" */
  readonly clause: string;
  readonly kind: RuleKind;
  /** the virtqueue, or null for a violation outside a queue (initialisation, session close) */
  readonly queue: number | null;
  /** the descriptor-table slot of the chain's head, or null */
  readonly head: number | null;
  /** the offending values, e.g. "readable descriptor 3 after writable descriptor 2" */
  readonly detail: string;
  /** ms since the back-end started */
  readonly atMs: number;
}

/** A rule broken at least once. */
export interface RuleCount {
  readonly rule: string;
  readonly clause: string;
  readonly kind: RuleKind;
  readonly count: number;
  /** its newest occurrence */
  readonly last: ViolationRecord;
}

export interface ConformanceSnapshot {
  /** false: the oracle is switched off (`vlab backend --conformance off`, for measurement only) */
  readonly enabled: boolean;
  /** true: a request that broke a ring rule is answered with status ERR instead of being served */
  readonly strict: boolean;
  /**
   * How "negotiated" is judged for VIRTIO_F_INDIRECT_DESC and VIRTIO_F_EVENT_IDX: "told" — the
   * front-end acked VIRTIO_F_VERSION_1, so its SET_FEATURES carries the guest's features; "offered"
   * — it did not (QEMU 7.2 acks only bit 30 while negotiating the ring features with the guest):
   * an offered feature counts as negotiated, and a rule that depends on it is checked in its weaker form.
   */
  readonly features: 'told' | 'offered';
  /** violations of driver rules, all rules together */
  readonly violations: number;
  /** requests refused for a device limit (not the driver's fault) */
  readonly refusals: number;
  /** the rules broken so far, in rule-table order */
  readonly rules: readonly RuleCount[];
  /** newest first, at most SNAPSHOT_VIOLATIONS */
  readonly recent: readonly ViolationRecord[];
}

/** Recent violations per snapshot. */
export const SNAPSHOT_VIOLATIONS = 16;
