// `vlab bench e2e --async`'s host side: the tool's JSON line parsed strictly, medians over interleaved
// rounds, the two ratios of issue #22 and their verdicts, and the CLI's argument checks. No VM.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { type AsyncRound, judgeAsync, median, parseToolJson, summarize } from '../../../../extension/bench/async';
import { driverCommands } from '../../../../extension/cli/commands/driver';
import type { CliIo } from '../../../../extension/cli/command';

test('parseToolJson takes the last line and recomputes ops/s; errors and junk throw', () => {
  const r = parseToolJson('noise\n{"mode":"async","ops":300,"seconds":1.5,"opsPerSec":1}\n');
  assert.equal(r.ops, 300);
  assert.equal(r.opsPerSec, 200);
  assert.throws(() => parseToolJson('{"error":"no completion in 30 s"}'), /no completion/);
  assert.throws(() => parseToolJson('{"ops":1,"seconds":0}'), /bench tool/);
  assert.throws(() => parseToolJson('Segmentation fault'), /not JSON/);
});

test('median of odd and even counts, and of nothing', () => {
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 2, 3]), 2.5);
  assert.equal(median([]), 0);
});

test('summarize folds rounds per backend and size into medians and ratios; judgeAsync reads the ts rows', () => {
  const rounds: AsyncRound[] = [];
  const add = (size: number, mode: AsyncRound['mode'], ...rates: number[]): void => {
    rates.forEach((r, round) => rounds.push({ backend: 'ts', size, round, mode, ops: r, seconds: 1, opsPerSec: r }));
  };
  add(64, 'sync1', 1000, 900, 1100);
  add(64, 'sync8', 3000, 3000, 3000);
  add(64, 'async', 2600, 2400, 2500);
  add(16384, 'sync1', 500, 500, 500);
  add(16384, 'sync8', 1000, 1200, 1100);
  add(16384, 'async', 1000, 1000, 1000);
  const s = summarize(rounds);
  assert.equal(s.length, 2);
  const s64 = s.find((x) => x.size === 64)!;
  assert.equal(s64.sync1, 1000);
  assert.equal(s64.async, 2500);
  assert.equal(s64.overSync1, 2.5);
  const t = judgeAsync(s);
  assert.equal(t[0]!.met, true);
  assert.equal(t[1]!.met, false);
  assert.ok(Math.abs(t[1]!.ratio! - 1000 / 1100) < 1e-9);
  assert.deepEqual(judgeAsync(summarize(rounds.map((r) => ({ ...r, backend: 'builtin' as const })))).map((x) => x.met), [undefined, undefined]);
});

function io(): { io: CliIo; err: () => string } {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let e = '';
  stderr.on('data', (d: Buffer) => (e += d.toString()));
  return { io: { stdout, stderr, cwd: process.cwd(), env: {} } as unknown as CliIo, err: () => e };
}

test('vlab bench e2e --async checks its arguments before booting anything', async () => {
  const cmd = driverCommands.find((c) => c.name === 'bench e2e')!;
  for (const args of [['--async', '0'], ['--async', '2000'], ['--async', '8', '--procs', '1'], ['--async', '8', '--speed'], ['--rounds', '3']]) {
    await assert.rejects(async () => cmd.run(args, io().io), /--async|--rounds/, args.join(' '));
  }
});
