/**
 * The grade report as text (a course grader's table: sections with points, then every check that did
 * not pass with its evidence) and as JUnit XML (a testsuite per section, a testcase per check, a
 * failure with the evidence; skipped checks as <skipped>). Pure functions of the report.
 */
import { type GradeReport, GRADE_SECTIONS, sectionTotals } from './grade-report';

export function formatGradeTable(report: GradeReport): string {
  const d = report.driver;
  const out: string[] = [
    `vlab check driver — ${d.kind === 'ours' ? `our driver (${d.name})` : d.kind === 'module' ? `${d.name} (${d.modulePath})` : `${d.name} via AF_ALG`}${d.dev ? ` on ${d.dev}` : ''}`,
    `backend ${report.backend}, guest kernel ${report.kernel}, ${(report.durationMs / 1000).toFixed(1)} s`,
    '',
    `  ${'section'.padEnd(12)} ${'points'.padStart(9)}   checks`,
  ];
  for (const t of sectionTotals(report.checks)) {
    const n = report.checks.filter((c) => c.section === t.section).length;
    const notes = [t.failed ? `${t.failed} failed` : '', t.skipped ? `${t.skipped} skipped` : ''].filter(Boolean).join(', ');
    out.push(`  ${t.section.padEnd(12)} ${`${t.earned}/${t.points}`.padStart(9)}   ${n - t.failed - t.skipped}/${n} passed${notes ? ` (${notes})` : ''}`);
  }
  out.push(`  ${'total'.padEnd(12)} ${`${report.total.earned}/${report.total.points}`.padStart(9)}`);
  const lost = report.checks.filter((c) => c.status !== 'pass');
  if (lost.length) {
    out.push('', 'not passed:');
    for (const section of GRADE_SECTIONS) {
      for (const c of lost.filter((x) => x.section === section)) {
        out.push(`  ${c.status === 'fail' ? 'FAIL' : 'SKIP'} ${c.id} (-${c.points}) ${c.title}${c.clause ? ` [${c.clause}]` : ''}`);
        for (const e of c.evidence) out.push(`       ${e}`);
        for (const l of c.links ?? []) out.push(`       see ${l.kind === 'rings' ? `vlab rings: queue ${l.queue} head ${l.head}` : `${l.file}:${l.line}`}`);
      }
    }
  } else {
    out.push('', 'full marks');
  }
  return `${out.join('\n')}\n`;
}

const XML_ESCAPES: Readonly<Record<string, string>> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' };

/** XML-escaped text; characters XML 1.0 cannot hold at all are dropped. */
export function xmlText(s: string): string {
  // eslint-disable-next-line no-control-regex
  return s.replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]/g, '').replace(/[&<>"']/g, (c) => XML_ESCAPES[c]!);
}

export function formatJunit(report: GradeReport): string {
  const secs = (ms: number): string => (ms / 1000).toFixed(3);
  const totals = sectionTotals(report.checks);
  const failures = totals.reduce((n, t) => n + t.failed, 0);
  const skippedN = totals.reduce((n, t) => n + t.skipped, 0);
  const lines = [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites name="vlab check driver" tests="${report.checks.length}" failures="${failures}" skipped="${skippedN}" time="${secs(report.durationMs)}">`,
  ];
  for (const t of totals) {
    const mine = report.checks.filter((c) => c.section === t.section);
    const time = mine.reduce((n, c) => n + c.durationMs, 0);
    lines.push(`  <testsuite name="${t.section}" tests="${mine.length}" failures="${t.failed}" skipped="${t.skipped}" time="${secs(time)}" timestamp="${xmlText(report.startedAt)}">`);
    lines.push(`    <properties><property name="points" value="${t.points}"/><property name="earned" value="${t.earned}"/></properties>`);
    for (const c of mine) {
      const open = `    <testcase classname="${t.section}" name="${xmlText(c.id)}" time="${secs(c.durationMs)}"`;
      const evidence = xmlText(c.evidence.join('\n'));
      if (c.status === 'pass') {
        lines.push(`${open}/>`);
      } else if (c.status === 'skip') {
        lines.push(`${open}><skipped message="${xmlText(c.evidence[0] ?? 'skipped')}"/></testcase>`);
      } else {
        const msg = xmlText(`${c.title}: -${c.points} point(s)${c.clause ? ` [${c.clause}]` : ''}`);
        lines.push(`${open}><failure message="${msg}" type="${xmlText(c.clause ?? 'check')}">${evidence}</failure></testcase>`);
      }
    }
    lines.push('  </testsuite>');
  }
  lines.push('</testsuites>');
  return `${lines.join('\n')}\n`;
}
