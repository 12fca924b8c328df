/** Plain-text tables for `vlab bench e2e` (schema 1 and 2 reports) and its `--speed` mode. Pure functions. */
import { E2E_ALGS, E2E_ALG_LABELS, type E2eAlg, pointAlg } from './openssl-speed';
import type { E2eReport, E2eSource, E2eSpeedReport } from './driver';

const SOURCE_HEADS: Readonly<Record<E2eSource, string>> = { builtin: 'builtin', ts: 'ts', software: 'software', 'openssl-speed': 'openssl speed' };

function fmtRatio(v: number | undefined): string {
  return v === undefined ? '-' : `${v < 0.1 ? v.toFixed(3) : v.toFixed(2)}x`;
}

/** One table per algorithm: ops/s (MB/s) per source, then the ratios; then the targets (schema 2). */
export function formatE2eTable(report: E2eReport): string {
  const algs = E2E_ALGS.filter((a) => report.points.some((p) => pointAlg(p) === a));
  const lines: string[] = [];
  for (const alg of algs) {
    if (lines.length) lines.push('');
    lines.push(...algTable(report, alg));
  }
  if (report.targets?.length) {
    lines.push('', 'Targets (issue #11; AES-256-CBC, same guest):');
    for (const t of report.targets) {
      const verdict = t.met === undefined ? 'not measured' : t.met ? 'met' : 'MISSED';
      lines.push(`  ${verdict.padEnd(12)} ${t.text}: ${t.detail}`);
    }
  }
  const tail: string[] = [];
  if (report.opensslSpeed) tail.push(`openssl speed: ${report.opensslSpeed.version}, -elapsed -seconds ${report.opensslSpeed.seconds}`);
  if (report.totalSec !== undefined) tail.push(`whole run ${report.totalSec.toFixed(0)} s`);
  if (tail.length) lines.push('', tail.join('; '));
  return lines.join('\n');
}

function algTable(report: E2eReport, alg: E2eAlg): string[] {
  const pts = report.points.filter((p) => pointAlg(p) === alg);
  const sources = (['builtin', 'ts', 'software', 'openssl-speed'] as const).filter((s) => pts.some((p) => p.source === s));
  const speed = sources.includes('openssl-speed');
  const ratioHeads = ['ts/builtin', 'builtin/sw', 'ts/sw', ...(speed ? ['builtin/speed', 'ts/speed'] : [])];
  const out = [`${E2E_ALG_LABELS[alg]} through /dev/crypto in the guest (accel ${report.accel}, ${report.durationMs} ms per point), ops/s (MB/s)`];
  out.push([...['size', 'procs'].map((h) => h.padStart(6)), ...sources.map((s) => SOURCE_HEADS[s].padStart(18)), ...ratioHeads.map((h) => h.padStart(13))].join(' '));
  for (const r of report.ratios.filter((x) => pointAlg(x) === alg)) {
    const cells = sources.map((s) => {
      const p = pts.find((x) => x.source === s && x.size === r.size && x.procs === r.procs);
      return (p ? `${p.opsPerSec.toFixed(0)} (${p.MBps.toFixed(1)})` : '-').padStart(18);
    });
    const ratios = [r.tsOverBuiltin, r.builtinOverSoftware, r.tsOverSoftware, ...(speed ? [r.builtinOverSpeed, r.tsOverSpeed] : [])].map((v) => fmtRatio(v).padStart(13));
    if (!cells.some((c) => c.trim() !== '-')) continue;
    out.push([String(r.size).padStart(6), String(r.procs).padStart(6), ...cells, ...ratios].join(' '));
  }
  return out;
}

/** `--speed`: the tool's lines under one heading per backend and algorithm. */
export function formatE2eSpeed(report: E2eSpeedReport): string {
  const out = [`cryptodev-style speed through /dev/crypto (accel ${report.accel}, ${report.secondsPerSize} s per size)`];
  for (const run of report.runs) {
    out.push('', `${run.backend} backend, ${run.alg}:`);
    for (const l of run.lines) out.push(`\t${l.verb} in chunks of ${l.size} bytes: done. ${l.MB.toFixed(2)} MB in ${l.seconds.toFixed(2)} secs: ${l.MBps.toFixed(2)} MB/sec`);
  }
  out.push('', `whole run ${report.totalSec.toFixed(0)} s`);
  return out.join('\n');
}
