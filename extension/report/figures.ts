/**
 * The report's figures, each a pure function of one committed result file. Every figure's footer
 * states the machine, the accelerator and why, and when/at what load/at which commit it was measured.
 */
import type { BackendData, BootData, ChatData, E2eData } from './data';
import type { Provenance } from './provenance';
import { pointAlg } from '../bench/openssl-speed';
import { PALETTE, barChart, lineChart } from './svg';

export interface Figure {
  /** File name under docs/report/figures/. */
  readonly file: string;
  readonly svg: string;
}

function sizeLabel(b: number): string {
  return b >= 1024 ? `${b / 1024} KiB` : `${b} B`;
}

export function footer(p: Provenance, extra: readonly string[] = []): string[] {
  const m = p.machine;
  return [
    ...extra,
    `Machine: ${m.cores} × ${m.cpuModel}, ${m.memoryMb} MiB, Linux ${m.hostKernel}, Node ${m.node}.`,
    `Accelerator: ${p.accelerator.kind.toUpperCase()} — ${p.accelerator.why}.`,
    `Measured ${p.date.slice(0, 16).replace('T', ' ')} UTC, load average ${p.loadAverage.map((v) => v.toFixed(2)).join(' / ')} at start (shared machine), commit ${p.commit.slice(0, 10)}${p.dirty ? '+dirty' : ''}.`,
  ];
}

function sortedUnique(values: readonly number[]): number[] {
  return [...new Set(values)].sort((a, b) => a - b);
}

/** AES-256-CBC (schema 2 reports also hold hash rows: those are in the report's table, not here). */
export function e2eFigure(d: E2eData): Figure {
  const r = { ...d.result, points: d.result.points.filter((p) => pointAlg(p) === 'aes-256-cbc') };
  const sizes = sortedUnique(r.points.map((p) => p.size));
  const procs = sortedUnique(r.points.map((p) => p.procs));
  const names: Record<string, string> = { ts: 'TS backend', builtin: 'QEMU builtin', software: 'guest OpenSSL', 'openssl-speed': 'guest openssl speed' };
  const colors: Record<string, string> = { ts: PALETTE[0], builtin: PALETTE[1], software: PALETTE[2], 'openssl-speed': PALETTE[3] };
  const sources = ['ts', 'builtin', 'software', 'openssl-speed'].filter((s) => r.points.some((p) => p.source === s));
  const series = sources.flatMap((s) =>
    procs.map((n, ni) => ({
      label: `${names[s]}, ${n} proc${n > 1 ? 's' : ''}`,
      color: colors[s],
      dashed: ni > 0,
      values: sizes.map((size) => r.points.find((p) => p.source === s && p.size === size && p.procs === n)?.MBps),
    })),
  );
  return {
    file: 'e2e-offload.svg',
    svg: lineChart({
      title: 'AES-256-CBC from guest userspace: offload vs guest software',
      xLabel: 'request size',
      yLabel: 'MB/s (all processes)',
      categories: sizes.map(sizeLabel),
      series,
      logY: true,
      footer: footer(d.provenance, [`vlab ${d.command.join(' ')}: ${r.durationMs} ms per point; dashed = ${procs.slice(1).join(', ')} processes in parallel; guest has 2 vCPUs. Backend lines: guest process → /dev/crypto (our driver) → virtio-crypto → that backend; guest OpenSSL: no offload.${sources.includes('openssl-speed') ? ' guest openssl speed: `openssl speed -elapsed -evp aes-256-cbc` in the same guest.' : ''}`]),
    }),
  };
}

export function backendFigure(d: BackendData): Figure {
  const r = d.result;
  const sizes = sortedUnique(r.rows.map((x) => x.size));
  const depths = sortedUnique(r.rows.map((x) => x.depth));
  const deepest = depths[depths.length - 1];
  const series = [
    ...depths.map((depth, i) => ({
      label: `backend, depth ${depth}`,
      color: PALETTE[0],
      dashed: i < depths.length - 1,
      values: sizes.map((s) => r.rows.find((x) => x.size === s && x.depth === depth)?.mbPerSec),
    })),
    {
      label: `raw EVP (depth ${deepest} run)`,
      color: PALETTE[4],
      values: sizes.map((s) => r.rows.find((x) => x.size === s && x.depth === deepest)?.rawEngineMbPerSec),
    },
  ];
  return {
    file: 'backend-vs-engine.svg',
    svg: lineChart({
      title: `vhost-user backend vs its raw engine (${r.cipher}, engine ${r.engine})`,
      xLabel: 'request size',
      yLabel: 'MB/s',
      categories: sizes.map(sizeLabel),
      series,
      logY: true,
      footer: footer(d.provenance, [`vlab ${d.command.join(' ')}: ${r.secondsPerCase} s per case; no VM — the TS front-end harness drives the backend process; raw = ${r.reference}.`]),
    }),
  };
}

export function chatFigure(d: ChatData): Figure {
  const runs = [...d.result].sort((a, b) => (a.rows[0]?.clients ?? 0) - (b.rows[0]?.clients ?? 0));
  const clients = runs.map((run) => run.rows[0]?.clients ?? 0);
  const modes: Array<['none' | 'sealed', string, string]> = [['none', 'plain (--crypto none)', PALETTE[2]], ['sealed', 'encrypted (software)', PALETTE[0]]];
  const series = modes.map(([mode, label, color]) => ({ label, color, values: runs.map((run) => run.rows.find((x) => x.mode === mode)?.deliveredPerSec) }));
  const messages = d.result[0]?.command[d.result[0].command.indexOf('--messages') + 1] ?? '?';
  return {
    file: 'chat-server.svg',
    svg: lineChart({
      title: 'Chat server: messages delivered per second by client count',
      xLabel: 'clients in one room (each line goes to every other client)',
      yLabel: 'copies delivered / s',
      categories: clients.map(String),
      series,
      logY: false,
      footer: footer(d.provenance, [`vlab chat bench --clients N --messages ${messages} --json, per N; server is a separate process, clients in one process; host only (no VM).`]),
    }),
  };
}

export function bootFigure(d: BootData): Figure {
  const colors: Record<string, string> = { ts: PALETTE[0], builtin: PALETTE[1] };
  const count: Record<string, number> = {};
  const bars = d.result.map((b) => {
    count[b.backend] = (count[b.backend] ?? 0) + 1;
    const load = b.load1 === undefined ? '' : ` (load ${b.load1.toFixed(1)})`;
    return { label: `${b.backend === 'ts' ? 'TS backend' : 'QEMU builtin'}, boot ${count[b.backend]}${load}`, value: b.bootSec, color: colors[b.backend] ?? PALETTE[3] };
  });
  const kernels = [...new Set(d.result.map((b) => b.guestKernel ?? '?'))];
  return {
    file: 'boot-time.svg',
    svg: barChart({
      title: 'Boot time: QEMU start to SSH login in the guest',
      xLabel: 'seconds',
      unit: ' s',
      bars,
      footer: footer(d.provenance, [`vlab up --backend B --guest-driver none, then vlab status --json (bootSec); guest kernel ${kernels.join(', ')}, 1 GiB, 2 vCPUs, busybox initramfs.`]),
    }),
  };
}

