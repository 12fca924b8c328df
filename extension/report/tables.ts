/**
 * The report's number tables, generated from the same committed results as the figures and spliced
 * into docs/report.md between `<!-- generated:NAME -->` and `<!-- /generated:NAME -->`, so no number in
 * a table is typed by hand. Deterministic, like the figures.
 */
import type { BackendData, BootData, ChatData, E2eData } from './data';
import type { E2ePoint } from '../bench/driver';
import { E2E_ALGS, E2E_ALG_LABELS, type E2eAlg, pointAlg } from '../bench/openssl-speed';

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
  const algs = E2E_ALGS.filter((a) => r.points.some((p) => pointAlg(p) === a));
  const lines: string[] = [];
  for (const alg of algs) {
    if (algs.length > 1) lines.push(...(lines.length ? [''] : []), `**${E2E_ALG_LABELS[alg]}**`, '');
    lines.push(...e2eAlgTable(d, alg));
  }
  const targets = r.targets ?? [];
  if (targets.length) {
    lines.push('', '| target (issue #11, AES-256-CBC) | this run | met |', '| --- | ---: | --- |');
    for (const t of targets) lines.push(`| ${t.text} | ${t.detail} | ${t.met === undefined ? '–' : t.met ? 'yes' : 'no'} |`);
  }
  const speed = r.opensslSpeed ? `; openssl speed: ${r.opensslSpeed.version}, \`-elapsed -seconds ${r.opensslSpeed.seconds}\`` : '';
  const total = r.totalSec !== undefined ? `, whole run ${Math.round(r.totalSec)} s` : '';
  lines.push('', provLine(d, `\`vlab ${d.command.join(' ')}\`, ${r.durationMs} ms per point, accelerator ${r.accel}${total}${speed}`));
  return lines.join('\n');
}

/** One algorithm's rows; the openssl speed columns only when the run measured it (schema 2). */
function e2eAlgTable(d: E2eData, alg: E2eAlg): string[] {
  const r = d.result;
  const pts = r.points.filter((p) => pointAlg(p) === alg);
  const speed = pts.some((p) => p.source === 'openssl-speed');
  const find = (source: string, s: number, procs: number): E2ePoint | undefined => pts.find((x) => x.source === source && x.size === s && x.procs === procs);
  const cell = (source: string, s: number, procs: number): string => {
    const p = find(source, s, procs);
    return p ? `${n0(p.opsPerSec)} (${n1(p.MBps)})` : '–';
  };
  const lines = speed
    ? [
        '| size | procs | TS backend ops/s (MB/s) | QEMU builtin ops/s (MB/s) | guest OpenSSL ops/s (MB/s) | guest openssl speed ops/s (MB/s) | ts / builtin | ts / software | builtin / software | ts / openssl speed | builtin / openssl speed |',
        '| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
      ]
    : [
        '| size | procs | TS backend ops/s (MB/s) | QEMU builtin ops/s (MB/s) | guest OpenSSL ops/s (MB/s) | ts / builtin | ts / software | builtin / software |',
        '| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
      ];
  // Ratios from the points themselves (the report's own `ratios` are rounded to 2 decimals: 0.0046 would print as 0).
  const ops = (source: string, s: number, procs: number): number | undefined => find(source, s, procs)?.opsPerSec;
  const div = (a: number | undefined, b: number | undefined): number | undefined => (a !== undefined && b ? a / b : undefined);
  for (const q of r.ratios.filter((x) => pointAlg(x) === alg)) {
    const [t, b, w, o] = [ops('ts', q.size, q.procs), ops('builtin', q.size, q.procs), ops('software', q.size, q.procs), ops('openssl-speed', q.size, q.procs)];
    if ([t, b, w, o].every((v) => v === undefined)) continue;
    const head = `| ${size(q.size)} | ${q.procs} | ${cell('ts', q.size, q.procs)} | ${cell('builtin', q.size, q.procs)} | ${cell('software', q.size, q.procs)} |`;
    lines.push(
      speed
        ? `${head} ${cell('openssl-speed', q.size, q.procs)} | ${n2(div(t, b))} | ${n2(div(t, w))} | ${n2(div(b, w))} | ${n2(div(t, o))} | ${n2(div(b, o))} |`
        : `${head} ${n2(div(t, b))} | ${n2(div(t, w))} | ${n2(div(b, w))} |`,
    );
  }
  return lines;
}

export function backendTable(d: BackendData): string {
  const r = d.result;
  const lines = ['| case | depth | ops/s | MB/s | raw EVP MB/s | backend / raw | mean latency µs |', '| --- | ---: | ---: | ---: | ---: | ---: | ---: |'];
  for (const x of r.rows) lines.push(`| ${r.cipher} ${size(x.size)} | ${x.depth} | ${n0(x.opsPerSec)} | ${n1(x.mbPerSec)} | ${n1(x.rawEngineMbPerSec)} | ${n2(x.ratio)} | ${n1(x.meanLatencyUs)} |`);
  for (const x of r.digestRows) lines.push(`| ${x.algorithm} ${size(x.size)} | ${x.depth} | ${n0(x.opsPerSec)} | ${n1(x.mbPerSec)} | ${n1(x.rawEngineMbPerSec)} | ${n2(x.ratio)} | ${n1(x.meanLatencyUs)} |`);
  const t = r.telemetryCost;
  lines.push('', `Telemetry subscriber every ${t.intervalMs} ms (the rings view's feed, asked more often than the view's default 200 ms), ${size(t.size)} at depth ${t.depth}: ${n0(t.opsPerSecWith)} ops/s with, ${n0(t.opsPerSecWithout)} without (ratio ${n2(t.ratio)}).`);
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
