/**
 * What the conformance oracle costs the data path (docs/checking.md#cost): `vlab bench backend`'s
 * 64 B depth-64 AES-256-CBC case with the oracle on and off, alternating in one run (a back-end
 * process each, `--conformance on|off`), so both see the same machine load. Prints each round and
 * the ratio on/off of the medians, by wall-clock rate (the median slice) and by CPU time per request.
 *
 *   node out/test/perf/conformance-cost.js [ROUNDS] [SECONDS]     (default 6 rounds of 2 s each)
 */
import { runBenchCases } from '../../backend/harness/bench';
import type { BenchRow } from '../../backend/harness/bench-report';

const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

async function run(mode: 'on' | 'off', seconds: number): Promise<BenchRow> {
  const [row] = await runBenchCases('openssl', seconds, { cases: [{ size: 64, depth: 64 }] }, undefined, ['--conformance', mode]);
  if (!row) throw new Error('no row');
  return row;
}

async function main(): Promise<void> {
  const rounds = Number(process.argv[2] ?? 6);
  const seconds = Number(process.argv[3] ?? 2);
  const rows: Record<'on' | 'off', BenchRow[]> = { on: [], off: [] };
  for (let i = 0; i < rounds; i++) {
    // Alternate which goes first, so a trend in machine load favours neither.
    for (const mode of i % 2 === 0 ? (['off', 'on'] as const) : (['on', 'off'] as const)) {
      const r = await run(mode, seconds);
      rows[mode].push(r);
      process.stdout.write(`round ${i + 1} oracle ${mode.padEnd(3)}  median slice ${r.medianSliceOpsPerSec} ops/s  all ${r.opsPerSec} ops/s  cpu ${r.cpu?.backendUsPerOp.toFixed(3) ?? '-'} µs/op  load ${r.loadAverage.toFixed(1)}\n`);
    }
  }
  const rate = (m: 'on' | 'off'): number => median(rows[m].map((r) => r.medianSliceOpsPerSec));
  const cpu = (m: 'on' | 'off'): number => median(rows[m].map((r) => r.cpu?.backendUsPerOp ?? NaN));
  const wall = rate('on') / rate('off');
  const byCpu = cpu('off') / cpu('on');
  process.stdout.write(`oracle on/off, 64 B depth 64, ${rounds} rounds × ${seconds} s: throughput ${rate('on')} / ${rate('off')} ops/s = ${wall.toFixed(3)} (cost ${((1 - wall) * 100).toFixed(1)} %); `
    + `by CPU time ${cpu('on').toFixed(3)} / ${cpu('off').toFixed(3)} µs/op = ${byCpu.toFixed(3)} (cost ${((1 - byCpu) * 100).toFixed(1)} %)\n`);
}

void main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  process.exitCode = 1;
});
