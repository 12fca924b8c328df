/**
 * The conformance section: the back-end's oracle (backend/conformance) over the whole grade — the
 * per-rule counts at the end minus those at the start. 0 new driver-rule violations: one passing check;
 * otherwise one failed check per violated rule, with its clause, its newest occurrence and a rings link.
 */
import type { ConformanceSnapshot, RuleCount } from '../../../backend/conformance/report';
import { readSnapshotOrNull } from '../../../backend/telemetry/client';
import type { CheckResult, EvidenceLink } from './grade-report';
import { CHECKS } from './plan';
import { type GradeContext, skipped } from './context';

/** The per-rule counts of driver rules (device-limit refusals are not the driver's fault). */
export type RuleCounts = ReadonlyMap<string, RuleCount>;

export function driverRuleCounts(c: ConformanceSnapshot | undefined): RuleCounts {
  return new Map((c?.rules ?? []).filter((r) => r.kind === 'driver').map((r) => [r.rule, r]));
}

export async function conformanceBaseline(ctx: GradeContext): Promise<ConformanceSnapshot | undefined> {
  if (ctx.backend !== 'ts') return undefined;
  return (await readSnapshotOrNull(ctx.telemetrySocket))?.conformance;
}

/** The checks of the section from the counts at the start and at the end (pure: the tests feed it). */
export function conformanceChecks(start: ConformanceSnapshot | undefined, end: ConformanceSnapshot | undefined, durationMs: number): CheckResult[] {
  const spec = CHECKS.conformance;
  if (!end) return [skipped(spec, 'the back-end reports no conformance section (is it the ts back-end?)')];
  if (!end.enabled) return [skipped(spec, 'the oracle is switched off (vlab backend --conformance off)')];
  const before = driverRuleCounts(start);
  const broken = [...driverRuleCounts(end).values()].flatMap((r) => {
    const n = r.count - (before.get(r.rule)?.count ?? 0);
    return n > 0 ? [{ r, n }] : [];
  });
  if (broken.length === 0) {
    return [{ id: spec.id, section: spec.section, title: spec.title, points: spec.points, earned: spec.points, status: 'pass', evidence: [`0 driver-rule violations during the grade (features judged as ${end.features})`], durationMs }];
  }
  // The section's points shared among the rules broken (the first ones get the remainder).
  const share = Math.floor(spec.points / broken.length);
  const extra = spec.points - share * broken.length;
  return broken.map(({ r, n }, i) => {
    const links: EvidenceLink[] = r.last.queue !== null && r.last.head !== null ? [{ kind: 'rings', queue: r.last.queue, head: r.last.head }] : [];
    const where = r.last.queue === null ? '' : ` queue ${r.last.queue}${r.last.head === null ? '' : ` head ${r.last.head}`}`;
    return {
      id: `conformance.${r.rule}`, section: 'conformance' as const, title: `driver rule ${r.rule} (${r.clause})`,
      points: share + (i < extra ? 1 : 0), earned: 0, status: 'fail' as const,
      evidence: [`${n} violation(s) during the grade`, `newest:${where}: ${r.last.detail}`],
      clause: r.clause, links, durationMs: i === 0 ? durationMs : 0,
    };
  });
}

export async function conformanceSection(ctx: GradeContext, start: ConformanceSnapshot | undefined, t0: number): Promise<CheckResult[]> {
  if (ctx.backend !== 'ts') return [skipped(CHECKS.conformance, 'the conformance oracle runs in the ts back-end (vlab up --backend ts)')];
  const end = (await readSnapshotOrNull(ctx.telemetrySocket))?.conformance;
  return conformanceChecks(start, end, Date.now() - t0);
}
