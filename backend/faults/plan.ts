/**
 * Fault injection (docs/fault-injection.md): a plan of rules that make the device misbehave on
 * demand. Pure: the rule parser, the matcher and the per-rule counters live here; completions.ts
 * (stall, delay, irq, short-used) and the device behind its FaultGate (status, flip-dst) apply the
 * decisions.
 *
 * Rule text: `ACTION[=ARG][,MATCHER=VALUE...]`, e.g. `status=badmsg,every=3`, `delay=20,opcode=decrypt`.
 */
import { CryptoStatus, VIRTIO_CRYPTO_CIPHER_DECRYPT, VIRTIO_CRYPTO_CIPHER_ENCRYPT } from '../crypto/spec';

export type FaultStatusName = 'err' | 'badmsg' | 'notsupp' | 'invsess';
export type IrqFault = 'withhold' | 'duplicate';

export type FaultAction =
  | { readonly kind: 'status'; readonly status: FaultStatusName }
  | { readonly kind: 'delay'; readonly ms: number }
  | { readonly kind: 'stall' }
  | { readonly kind: 'irq'; readonly mode: IrqFault }
  | { readonly kind: 'short-used'; readonly bytes: number }
  | { readonly kind: 'flip-dst' };

export type FaultActionKind = FaultAction['kind'];
export const FAULT_ACTION_KINDS: readonly FaultActionKind[] = ['status', 'delay', 'stall', 'irq', 'short-used', 'flip-dst'];

export interface FaultMatchers {
  /** Fire on every Nth request that passes the other matchers (1 = each). */
  readonly every?: number;
  readonly opcode?: number;
  readonly session?: bigint;
  /** Fire at most this many times, then the rule retires. */
  readonly count?: number;
}

export interface FaultRuleSpec {
  readonly action: FaultAction;
  readonly match: FaultMatchers;
}

export const STATUS_BY_NAME: Readonly<Record<FaultStatusName, CryptoStatus>> = {
  err: CryptoStatus.ERR,
  badmsg: CryptoStatus.BADMSG,
  notsupp: CryptoStatus.NOTSUPP,
  invsess: CryptoStatus.INVSESS,
};

/** Bounds: a rule is short text, a plan a handful of rules, a delay at most a minute. */
export const MAX_RULE_TEXT = 200;
export const MAX_RULES = 64;
export const MAX_DELAY_MS = 60_000;
const MAX_EVERY = 1_000_000;
const MAX_COUNT = 1_000_000_000;
const MAX_SHORT_USED = 0xffffffff;

/** A rule that does not parse; the message names the part that is wrong. */
export class FaultRuleError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FaultRuleError';
  }
}

function integerArg(part: string, value: string | undefined, min: number, max: number): number {
  if (value === undefined || value === '') throw new FaultRuleError(`"${part}": needs a value (an integer ${min}..${max})`);
  const n = /^\d+$/.test(value) ? Number(value) : /^0x[0-9a-f]+$/i.test(value) ? Number.parseInt(value.slice(2), 16) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) throw new FaultRuleError(`"${part}": "${value}" is not an integer ${min}..${max}`);
  return n;
}

function parseAction(part: string, key: string, value: string | undefined): FaultAction | undefined {
  switch (key) {
    case 'status': {
      if (value === undefined || !Object.hasOwn(STATUS_BY_NAME, value)) throw new FaultRuleError(`"${part}": status must be one of ${Object.keys(STATUS_BY_NAME).join(', ')}`);
      return { kind: 'status', status: value as FaultStatusName };
    }
    case 'delay':
      return { kind: 'delay', ms: integerArg(part, value, 1, MAX_DELAY_MS) };
    case 'stall':
      if (value !== undefined) throw new FaultRuleError(`"${part}": stall takes no value`);
      return { kind: 'stall' };
    case 'irq':
      if (value !== 'withhold' && value !== 'duplicate') throw new FaultRuleError(`"${part}": irq must be withhold or duplicate`);
      return { kind: 'irq', mode: value };
    case 'short-used':
      return { kind: 'short-used', bytes: integerArg(part, value, 1, MAX_SHORT_USED) };
    case 'flip-dst':
      if (value !== undefined) throw new FaultRuleError(`"${part}": flip-dst takes no value`);
      return { kind: 'flip-dst' };
    default:
      return undefined;
  }
}

function parseOpcode(part: string, value: string | undefined): number {
  if (value === 'encrypt') return VIRTIO_CRYPTO_CIPHER_ENCRYPT;
  if (value === 'decrypt') return VIRTIO_CRYPTO_CIPHER_DECRYPT;
  if (value !== undefined && /^(\d+|0x[0-9a-f]+)$/i.test(value)) return integerArg(part, value, 0, 0xffffffff);
  throw new FaultRuleError(`"${part}": opcode must be encrypt, decrypt or a number`);
}

function parseSession(part: string, value: string | undefined): bigint {
  if (value === undefined || !/^\d{1,20}$/.test(value) || BigInt(value) > 0xffffffffffffffffn) throw new FaultRuleError(`"${part}": session must be a decimal u64 id`);
  return BigInt(value);
}

/** Parses one rule; throws FaultRuleError naming the bad part. */
export function parseFaultRule(text: string): FaultRuleSpec {
  if (typeof text !== 'string') throw new FaultRuleError('a rule must be a string');
  const rule = text.trim();
  if (rule === '') throw new FaultRuleError('empty rule');
  if (rule.length > MAX_RULE_TEXT) throw new FaultRuleError(`rule longer than ${MAX_RULE_TEXT} characters`);
  let action: FaultAction | undefined;
  const match: { every?: number; opcode?: number; session?: bigint; count?: number } = {};
  for (const raw of rule.split(',')) {
    const part = raw.trim();
    if (part === '') throw new FaultRuleError(`"${rule}": empty part between commas`);
    const eq = part.indexOf('=');
    const key = (eq < 0 ? part : part.slice(0, eq)).trim().toLowerCase();
    const value = eq < 0 ? undefined : part.slice(eq + 1).trim().toLowerCase();
    const a = parseAction(part, key, value);
    if (a) {
      if (action) throw new FaultRuleError(`"${part}": a rule has one action (already ${describeAction(action)})`);
      action = a;
      continue;
    }
    if (key !== 'every' && key !== 'opcode' && key !== 'session' && key !== 'count') {
      throw new FaultRuleError(`"${part}": unknown action or matcher "${key}" (actions: status, delay, stall, irq, short-used, flip-dst; matchers: every, opcode, session, count)`);
    }
    if (match[key] !== undefined) throw new FaultRuleError(`"${part}": ${key} given twice`);
    if (key === 'every') match.every = integerArg(part, value, 1, MAX_EVERY);
    else if (key === 'count') match.count = integerArg(part, value, 1, MAX_COUNT);
    else if (key === 'opcode') match.opcode = parseOpcode(part, value);
    else match.session = parseSession(part, value);
  }
  if (!action) throw new FaultRuleError(`"${rule}": no action (one of status=, delay=, stall, irq=, short-used=, flip-dst)`);
  return { action, match };
}

export function describeAction(a: FaultAction): string {
  switch (a.kind) {
    case 'status': return `status=${a.status}`;
    case 'delay': return `delay=${a.ms}`;
    case 'stall': return 'stall';
    case 'irq': return `irq=${a.mode}`;
    case 'short-used': return `short-used=${a.bytes}`;
    case 'flip-dst': return 'flip-dst';
  }
}

function opcodeText(op: number): string {
  return op === VIRTIO_CRYPTO_CIPHER_ENCRYPT ? 'encrypt' : op === VIRTIO_CRYPTO_CIPHER_DECRYPT ? 'decrypt' : String(op);
}

/** The canonical text of a rule (what `fault list` shows). */
export function formatFaultRule(spec: FaultRuleSpec): string {
  const m = spec.match;
  return [
    describeAction(spec.action),
    m.every !== undefined ? `every=${m.every}` : '',
    m.opcode !== undefined ? `opcode=${opcodeText(m.opcode)}` : '',
    m.session !== undefined ? `session=${m.session}` : '',
    m.count !== undefined ? `count=${m.count}` : '',
  ].filter(Boolean).join(',');
}

/**
 * What happens to one request. `rules` lists the ids of the rules that fired, in id order. A stall
 * excludes everything else (the request is not served now).
 */
export interface FaultDecision {
  readonly rules: readonly number[];
  readonly stall: boolean;
  /** Complete with this status and do no crypto. */
  readonly status?: CryptoStatus;
  readonly flipDst: boolean;
  readonly delayMs: number;
  readonly irq?: IrqFault;
  /** Subtracted from the used length (clamped at 0). */
  readonly shortUsed: number;
}

export interface FaultRuleView {
  readonly id: number;
  readonly rule: string;
  readonly action: FaultActionKind;
  /** Requests that passed the opcode/session matchers. */
  readonly seen: number;
  /** Times it fired (faults it injected). */
  readonly hits: number;
  /** count=N reached: no longer evaluated. */
  readonly retired: boolean;
}

export interface FaultPlanSnapshot {
  /** Faults injected since the back-end started (cleared rules included). */
  readonly injected: number;
  readonly byAction: Readonly<Record<FaultActionKind, number>>;
  /** Id of the stall rule holding the queue, or null. */
  readonly stalledBy: number | null;
  readonly rules: readonly FaultRuleView[];
}

interface LiveRule {
  readonly id: number;
  readonly spec: FaultRuleSpec;
  readonly text: string;
  seen: number;
  hits: number;
  retired: boolean;
}

/** Rules that take the same slot of a request's outcome; the lowest id wins, the others wait. */
const SLOT: Readonly<Record<FaultActionKind, 'result' | 'delay' | 'irq' | 'used' | 'stall'>> = {
  status: 'result', 'flip-dst': 'result', delay: 'delay', irq: 'irq', 'short-used': 'used', stall: 'stall',
};

export class FaultPlan {
  private rules: LiveRule[] = [];
  private nextId = 1;
  private injectedTotal = 0;
  private readonly injectedBy: Record<FaultActionKind, number> = { status: 0, delay: 0, stall: 0, irq: 0, 'short-used': 0, 'flip-dst': 0 };
  private stallRule: number | null = null;

  /** True when no rule is live: the data path skips the matcher entirely. */
  get empty(): boolean {
    return this.rules.length === 0;
  }

  /** The stall rule holding the queue, or null. */
  get stalledBy(): number | null {
    return this.stallRule;
  }

  /** Parses every rule first: a bad one adds none. Returns the new rules. */
  addRules(texts: readonly string[]): FaultRuleView[] {
    const specs = texts.map((t, i) => {
      try {
        return parseFaultRule(t);
      } catch (err) {
        if (err instanceof FaultRuleError && texts.length > 1) throw new FaultRuleError(`rule ${i + 1}: ${err.message}`);
        throw err;
      }
    });
    return this.add(specs);
  }

  add(specs: readonly FaultRuleSpec[]): FaultRuleView[] {
    if (this.rules.length + specs.length > MAX_RULES) throw new FaultRuleError(`at most ${MAX_RULES} rules (${this.rules.length} set, ${specs.length} more asked)`);
    const added = specs.map((spec) => ({ id: this.nextId++, spec, text: formatFaultRule(spec), seen: 0, hits: 0, retired: false }));
    this.rules.push(...added);
    return added.map(view);
  }

  /**
   * Removes one rule (or all without an id). Returns the removed ids and whether a stall ended
   * (the caller then serves the held requests). An unknown id throws.
   */
  clear(id?: number): { cleared: number[]; released: boolean } {
    const gone = id === undefined ? this.rules : this.rules.filter((r) => r.id === id);
    if (id !== undefined && gone.length === 0) throw new FaultRuleError(`no rule with id ${id}`);
    this.rules = id === undefined ? [] : this.rules.filter((r) => r.id !== id);
    const cleared = gone.map((r) => r.id);
    const released = this.stallRule !== null && cleared.includes(this.stallRule);
    if (released) this.stallRule = null;
    return { cleared, released };
  }

  /** Decides the fate of one decodable request. Null: no rule fired. */
  decide(opcode: number, sessionId: bigint): FaultDecision | null {
    if (this.rules.length === 0 || this.stallRule !== null) return null;
    // Stall rules first: a held request is decided again when served, so nothing else may count it.
    for (const r of this.rules) {
      if (r.spec.action.kind === 'stall' && this.fires(r, opcode, sessionId)) {
        this.stallRule = r.id;
        this.hit(r);
        return { rules: [r.id], stall: true, flipDst: false, delayMs: 0, shortUsed: 0 };
      }
    }
    const taken = new Set<string>();
    const fired: number[] = [];
    let status: CryptoStatus | undefined;
    let flipDst = false;
    let delayMs = 0;
    let irq: IrqFault | undefined;
    let shortUsed = 0;
    for (const r of this.rules) {
      const a = r.spec.action;
      if (a.kind === 'stall') continue;
      if (!this.fires(r, opcode, sessionId)) continue;
      const slot = SLOT[a.kind];
      // Shadowed by a lower-id rule of the same slot: seen, but no fault injected, count not used.
      if (taken.has(slot)) continue;
      taken.add(slot);
      this.hit(r);
      fired.push(r.id);
      if (a.kind === 'status') status = STATUS_BY_NAME[a.status];
      else if (a.kind === 'flip-dst') flipDst = true;
      else if (a.kind === 'delay') delayMs = a.ms;
      else if (a.kind === 'irq') irq = a.mode;
      else if (a.kind === 'short-used') shortUsed = a.bytes;
    }
    if (fired.length === 0) return null;
    return { rules: fired, stall: false, status, flipDst, delayMs, irq, shortUsed };
  }

  /** Advances the rule's match counter; true if this request is one it fires on. */
  private fires(r: LiveRule, opcode: number, sessionId: bigint): boolean {
    if (r.retired) return false;
    const m = r.spec.match;
    if (m.opcode !== undefined && m.opcode !== opcode) return false;
    if (m.session !== undefined && m.session !== sessionId) return false;
    r.seen++;
    return r.seen % (m.every ?? 1) === 0;
  }

  private hit(r: LiveRule): void {
    r.hits++;
    this.injectedTotal++;
    this.injectedBy[r.spec.action.kind]++;
    if (r.spec.match.count !== undefined && r.hits >= r.spec.match.count) r.retired = true;
  }

  /** The text of a rule by id (for log lines), or undefined once cleared. */
  ruleText(id: number): string | undefined {
    return this.rules.find((r) => r.id === id)?.text;
  }

  snapshot(): FaultPlanSnapshot {
    return { injected: this.injectedTotal, byAction: { ...this.injectedBy }, stalledBy: this.stallRule, rules: this.rules.map(view) };
  }
}

function view(r: LiveRule): FaultRuleView {
  return { id: r.id, rule: r.text, action: r.spec.action.kind, seen: r.seen, hits: r.hits, retired: r.retired };
}
