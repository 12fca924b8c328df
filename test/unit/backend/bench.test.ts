import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { BENCH_DEPTHS, BENCH_SIZES, runBench } from '../../../backend/bench';

// The benchmark itself (short cases): every row is measured against the raw engine in the same run, and
// the telemetry-cost pair really had a subscriber receiving snapshots while the data path ran.
test('vlab bench backend: rows for every size and depth, and the telemetry subscriber cost pair', { timeout: 120_000 }, async () => {
  const report = await runBench('openssl', 0.2);
  assert.equal(report.rows.length, BENCH_SIZES.length * BENCH_DEPTHS.length);
  for (const row of report.rows) {
    assert.ok(row.ops > 0 && row.opsPerSec > 0, `${row.size} B depth ${row.depth} completed requests`);
    assert.ok(row.rawEngineMbPerSec > 0 && row.ratio > 0, `${row.size} B depth ${row.depth} has its raw-engine reference`);
    assert.ok(row.p99LatencyUs >= row.meanLatencyUs * 0.5, 'p99 is a latency of the same order as the mean');
  }
  const t = report.telemetryCost;
  assert.equal(t.intervalMs, 50);
  assert.ok(t.snapshots >= 2, `the subscriber parsed snapshots while measured (${t.snapshots})`);
  assert.ok(t.opsPerSecWith > 0 && t.opsPerSecWithout > 0);
  assert.ok(Math.abs(t.ratio - t.opsPerSecWith / t.opsPerSecWithout) < 0.011, 'ratio is with ÷ without');
});
