/**
 * The conformance oracle's report as text (docs/checking.md): the summary, the rules broken with
 * their newest occurrence, the newest violations, and the rule table. `vlab check` and the
 * violations section of `vlab rings` print it.
 */
import type { ConformanceSnapshot, ViolationRecord } from '../../backend/conformance/report';
import type { RuleInfo } from '../../backend/conformance/rules';

function where(v: ViolationRecord): string {
  if (v.queue === null) return 'front-end';
  return `queue ${v.queue}${v.head === null ? '' : ` head ${v.head}`}`;
}

/** "3 violations of 2 driver rules, 1 refusal for a device limit" (and the oracle's mode). */
export function conformanceSummary(c: ConformanceSnapshot | undefined): string {
  if (!c) return 'conformance: not reported by this back-end (older than the oracle)';
  if (!c.enabled) return 'conformance: oracle off (vlab backend --conformance off)';
  const driverRules = c.rules.filter((r) => r.kind === 'driver').length;
  const parts = [
    c.violations === 0 ? '0 violations' : `${c.violations} violation${c.violations === 1 ? '' : 's'} of ${driverRules} driver rule${driverRules === 1 ? '' : 's'}`,
    ...(c.refusals > 0 ? [`${c.refusals} refusal${c.refusals === 1 ? '' : 's'} for a device limit`] : []),
  ];
  const mode = [c.strict ? 'strict: violating requests answered ERR' : '', `features ${c.features === 'told' ? 'told by the front-end' : 'as offered (the front-end does not tell the guest\'s)'}`].filter(Boolean);
  return `conformance: ${parts.join(', ')}  (${mode.join('; ')})`;
}

/** One line per violation: "#12  81.2 s  queue 0 head 5  chain.order §2.7.4.2  readable descriptor …". */
export function violationLine(v: ViolationRecord): string {
  const tag = v.kind === 'driver' ? `${v.rule} ${v.clause}` : `${v.rule} (device limit, ${v.clause})`;
  return `#${v.seq}  ${(v.atMs / 1000).toFixed(1)} s  ${where(v)}  ${tag}  ${v.detail}`;
}

/** The summary, the rules broken (count, newest occurrence) and up to `recent` of the newest violations. */
export function formatConformance(c: ConformanceSnapshot | undefined, recent = 8): string[] {
  const lines = [conformanceSummary(c)];
  if (!c || c.rules.length === 0) return lines;
  lines.push('  rule                             clause                 count  newest');
  for (const r of c.rules) {
    lines.push(`  ${`${r.rule}${r.kind === 'device' ? ' (device)' : ''}`.padEnd(32)} ${r.clause.padEnd(21)} ${String(r.count).padStart(6)}  ${where(r.last)}: ${r.last.detail}`);
  }
  if (recent > 0 && c.recent.length > 0) {
    lines.push('  newest violations:');
    for (const v of c.recent.slice(0, recent)) lines.push(`    ${violationLine(v)}`);
  }
  return lines;
}

/** The rule table (`vlab check --rules`). */
export function formatRules(rules: readonly RuleInfo[]): string {
  const lines = ['rule                            kind    clause                         what is asked'];
  for (const r of rules) lines.push(`${r.id.padEnd(31)} ${r.kind.padEnd(7)} ${r.clause.padEnd(30)} ${r.text}`);
  return `${lines.join('\n')}\n`;
}
