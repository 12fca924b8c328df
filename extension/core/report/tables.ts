/**
 * The report's number tables, generated from the same committed results as the figures and spliced
 * into docs/report.md between `<!-- generated:NAME -->` and `<!-- /generated:NAME -->`, so no number in
 * a table is typed by hand. Deterministic, like the figures.
 */
import type { BackendData, BootData, ChatData, E2eData } from './data';

function n0(v: number): string {
  return Math.round(v).toLocaleString('en-US').replace(/,/g, ' ');
}

function n1(v: number): string {
  return v.toFixed(1);
}

/** Ratios: two decimals, three below 0.1 so a small ratio does not print as 0.00. */
function n2(v: number | undefined): string {
  return v === undefined ? '–' : v < 0.1 ? v.toFixed(3) : v.toFixed(2);
}

function size(b: number): string {
  return b >= 1024 ? `${b / 1024} KiB` : `${b} B`;
}

function provLine(d: { provenance: { date: string; loadAverage: readonly number[]; commit: string } }, what: string): string {
  const p = d.provenance;
  return `*${what}; measured ${p.date.slice(0, 16).replace('T', ' ')} UTC, load average ${p.loadAverage.map((v) => v.toFixed(2)).join(' / ')} at start, commit \`${p.commit.slice(0, 10)}\`.*`;
}

export function e2eTable(d: E2eData): string {
  const r = d.result;
  const cell = (source: string, s: number, procs: number): string => {
    const p = r.points.find((x) => x.source === source && x.size === s && x.procs === procs);
    return p ? `${n0(p.opsPerSec)} (${n1(p.MBps)})` : '–';
  };
  const lines = [
    '| size | procs | TS backend ops/s (MB/s) | QEMU builtin ops/s (MB/s) | guest OpenSSL ops/s (MB/s) | ts / builtin | ts / software | builtin / software |',
    '| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  // Ratios from the points themselves (the report's own `ratios` are rounded to 2 decimals: 0.0046 would print as 0).
  const ops = (source: string, s: number, procs: number): number | undefined => r.points.find((x) => x.source === source && x.size === s && x.procs === procs)?.opsPerSec;
  const div = (a: number | undefined, b: number | undefined): number | undefined => (a !== undefined && b ? a / b : undefined);
  for (const q of r.ratios) {
    const [t, b, w] = [ops('ts', q.size, q.procs), ops('builtin', q.size, q.procs), ops('software', q.size, q.procs)];
    lines.push(`| ${size(q.size)} | ${q.procs} | ${cell('ts', q.size, q.procs)} | ${cell('builtin', q.size, q.procs)} | ${cell('software', q.size, q.procs)} | ${n2(div(t, b))} | ${n2(div(t, w))} | ${n2(div(b, w))} |`);
  }
  lines.push('', provLine(d, `\`vlab ${d.command.join(' ')}\`, ${r.durationMs} ms per point, accelerator ${r.accel}`));
  return lines.join('\n');
}

export function backendTable(d: BackendData): string {
  const r = d.result;
  const lines = ['| case | depth | ops/s | MB/s | raw EVP MB/s | backend / raw | mean latency µs |', '| --- | ---: | ---: | ---: | ---: | ---: | ---: |'];
  for (const x of r.rows) lines.push(`| ${r.cipher} ${size(x.size)} | ${x.depth} | ${n0(x.opsPerSec)} | ${n1(x.mbPerSec)} | ${n1(x.rawEngineMbPerSec)} | ${n2(x.ratio)} | ${n1(x.meanLatencyUs)} |`);
  for (const x of r.digestRows) lines.push(`| ${x.algorithm} ${size(x.size)} | ${x.depth} | ${n0(x.opsPerSec)} | ${n1(x.mbPerSec)} | ${n1(x.rawEngineMbPerSec)} | ${n2(x.ratio)} | ${n1(x.meanLatencyUs)} |`);
  const t = r.telemetryCost;
  lines.push('', `Telemetry subscriber every ${t.intervalMs} ms (the rings view's feed), ${size(t.size)} at depth ${t.depth}: ${n0(t.opsPerSecWith)} ops/s with, ${n0(t.opsPerSecWithout)} without (ratio ${n2(t.ratio)}).`);
  lines.push('', provLine(d, `\`vlab ${d.command.join(' ')}\`, engine ${r.engine}, Node ${r.node}, no VM`));
  return lines.join('\n');
}

export function chatTable(d: ChatData): string {
  const lines = ['| clients | plain lines/s | plain copies/s | encrypted lines/s | encrypted copies/s | encrypted / plain |', '| ---: | ---: | ---: | ---: | ---: | ---: |'];
  const runs = [...d.result].sort((a, b) => (a.rows[0]?.clients ?? 0) - (b.rows[0]?.clients ?? 0));
  for (const run of runs) {
    const plain = run.rows.find((x) => x.mode === 'none');
    const sealed = run.rows.find((x) => x.mode === 'sealed');
    const c = run.rows[0]?.clients ?? 0;
    const ratio = plain && sealed ? sealed.deliveredPerSec / plain.deliveredPerSec : undefined;
    lines.push(`| ${c} | ${plain ? n0(plain.sentPerSec) : '–'} | ${plain ? n0(plain.deliveredPerSec) : '–'} | ${sealed ? n0(sealed.sentPerSec) : '–'} | ${sealed ? n0(sealed.deliveredPerSec) : '–'} | ${n2(ratio)} |`);
  }
  const messages = d.result[0]?.command[d.result[0].command.indexOf('--messages') + 1] ?? '?';
  lines.push('', provLine(d, `\`vlab chat bench --clients N --messages ${messages} --json\` per N, host only`));
  return lines.join('\n');
}

export function bootTable(d: BootData): string {
  const lines = ['| backend | boot (QEMU start → SSH) | 1-min load before it |', '| --- | ---: | ---: |'];
  for (const b of d.result) lines.push(`| ${b.backend} | ${n1(b.bootSec)} s | ${b.load1 === undefined ? '–' : n2(b.load1)} |`);
  lines.push('', provLine(d, '`vlab up --backend B --guest-driver none` + `vlab status --json`, guest kernel ' + [...new Set(d.result.map((b) => b.guestKernel ?? '?'))].join(', ')));
  return lines.join('\n');
}

/** Replaces the body of every `<!-- generated:NAME -->` … `<!-- /generated:NAME -->` block whose NAME is in `blocks`. */
export function spliceGenerated(markdown: string, blocks: ReadonlyMap<string, string>): string {
  return markdown.replace(/(<!-- generated:([a-z0-9-]+) -->)[\s\S]*?(<!-- \/generated:\2 -->)/g, (all, open: string, name: string, close: string) => {
    const body = blocks.get(name);
    return body === undefined ? all : `${open}\n${body}\n${close}`;
  });
}
