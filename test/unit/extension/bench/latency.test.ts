// `vlab bench latency`'s host side: the driver's latency file and the guest tool's line are parsed
// strictly (hostile or broken guests give errors, not numbers), the rounds fold into one consistent
// breakdown, the backend's service time is read from telemetry, and the CLI checks its arguments. No VM.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import {
  DRIVER_STAGES, STAGES, backendServiceUs, formatLatencyTable, latencyPoint, parseLatencyStats, parseToolLatency,
  type DriverLatencyStats, type LatencyReport, type LatencyRound,
} from '../../../../extension/bench/latency';
import { readSnapshot } from '../../../../backend/telemetry/readers';
import { benchLatencyCommands } from '../../../../extension/cli/commands/bench-latency';
import type { CliIo } from '../../../../extension/cli/command';

const FILE = `requests 100
polled 40
submit 1500000 90000
kick 2000000 100000
device 6000000 400000
wakeup 1000000 60000
return 500000 20000
`;

test('the driver latency file parses into counts and per-stage sums and maxima', () => {
  const s = parseLatencyStats(FILE);
  assert.equal(s.requests, 100);
  assert.equal(s.polled, 40);
  assert.deepEqual(s.stages.device, { sumNs: 6_000_000, maxNs: 400_000 });
  assert.deepEqual(Object.keys(s.stages), [...DRIVER_STAGES]);
});

test('a latency file that is not exactly the format is refused', () => {
  const bad = [
    FILE.replace('kick 2000000 100000\n', ''), // a stage missing
    FILE.replace('device 6000000 400000', 'device 6000000'), // a field missing
    FILE.replace('requests 100', 'requests -1'), // negative
    FILE.replace('requests 100', 'requests 1e3'), // not an integer
    FILE.replace('polled 40', 'polled 101'), // more polled than requests
    `${FILE}submit 1 1\n`, // twice
    FILE.replace('return 500000 20000', 'return 99999999999999999999 1'), // beyond 2^53
    'x'.repeat(5000),
    '',
  ];
  for (const text of bad) assert.throws(() => parseLatencyStats(text), /latency file/, JSON.stringify(text.slice(0, 80)));
});

test('the guest tool line parses; an error line or garbage is an error', () => {
  assert.deepEqual(parseToolLatency('noise\n{"ops":100,"size":64,"totalNs":13000000,"p50Ns":120000,"minNs":90000}\n'), {
    ops: 100, size: 64, totalNs: 13_000_000, p50Ns: 120_000, minNs: 90_000,
  });
  assert.throws(() => parseToolLatency('{"error":"crypt errno 5"}'), /crypt errno 5/);
  assert.throws(() => parseToolLatency('{"ops":0,"size":64,"totalNs":1,"p50Ns":1,"minNs":1}'), /lat tool/);
  assert.throws(() => parseToolLatency('{"ops":10,"size":64,"totalNs":1}'), /lat tool/);
  assert.throws(() => parseToolLatency('Segmentation fault'), /not a JSON line/);
});

function round(totalUs: number, stats = parseLatencyStats(FILE), service?: number): LatencyRound {
  const tool = { ops: stats.requests, size: 64, totalNs: totalUs * 1000 * stats.requests, p50Ns: totalUs * 900, minNs: totalUs * 500 };
  return { tool, toolStatsOff: { ...tool, totalNs: tool.totalNs - 5000 * stats.requests }, stats, ...(service !== undefined ? { backendServiceUs: service } : {}) };
}

test('a point is its median round: stages add up to its total, syscall is the rest, shares sum to 1', () => {
  // Driver stages of FILE: 15 + 20 + 60 + 10 + 5 = 110 µs per op.
  const p = latencyPoint('ts', 50, [round(500), round(130, undefined, 7), round(125)]);
  assert.equal(p.totalUs, 130, 'the middle of 125, 130, 500');
  assert.equal(p.backendServiceUs, 7, "the median round's backend service time");
  assert.deepEqual(p.stagesUs, { syscall: 20, submit: 15, kick: 20, device: 60, wakeup: 10, return: 5 });
  const shares = STAGES.reduce((a, s) => a + p.share[s], 0);
  assert.ok(Math.abs(shares - 1) < 0.01, `shares sum to ${shares}`);
  assert.equal(p.maxUs.device, 400);
  assert.equal(p.polled, 40);
  assert.equal(p.rounds.length, 3);
  assert.equal(p.totalStatsOffUs, 125, 'median of 495, 125, 120');
});

test('a round where the driver timed another number of requests than were issued is an error', () => {
  const stats: DriverLatencyStats = { ...parseLatencyStats(FILE), requests: 99, polled: 0 };
  const r = round(130);
  assert.throws(() => latencyPoint('ts', 0, [{ ...r, stats }]), /timed 99 requests of the 100 issued/);
});

test('the backend service time is the mean of the recent encrypt requests of the size, hostile snapshots give none', () => {
  const snap = readSnapshot({
    type: 'snapshot', schema: 2,
    queues: [
      { recent: [{ opcode: 'CIPHER_ENCRYPT', srcLen: 64, latencyUs: 4 }, { opcode: 'CIPHER_ENCRYPT', srcLen: 64, latencyUs: 8 }, { opcode: 'CIPHER_ENCRYPT', srcLen: 4096, latencyUs: 100 }] },
      { recent: [{ opcode: 'CREATE_SESSION', srcLen: 64, latencyUs: 900 }, null, 'x'] },
      null,
    ],
  }) ?? null;
  assert.equal(backendServiceUs(snap, 64), 6);
  assert.equal(backendServiceUs(null, 64), undefined);
  assert.equal(backendServiceUs(readSnapshot({ type: 'snapshot', schema: 2, queues: 'no' }) ?? null, 64), undefined);
  assert.equal(backendServiceUs(readSnapshot({ type: 'snapshot', schema: 2, queues: [{ recent: [] }] }) ?? null, 64), undefined);
});

test('the table has one row per stage and one column per (backend, poll_us) point', () => {
  const report: LatencyReport = {
    schema: 1, accel: 'tcg', clocksource: 'hpet', boots: [], opsPerRound: 100, rounds: 3, size: 64, durationMs: 1,
    points: [latencyPoint('ts', 0, [round(130, undefined, 7)]), latencyPoint('builtin', 50, [round(140)])],
  };
  const text = formatLatencyTable(report);
  const lines = text.split('\n');
  assert.match(lines[0]!, /64 B AES-256-CBC .*\(accel tcg, guest clocksource hpet\)/);
  assert.match(lines[1]!, /ts poll 0\s+builtin poll 50$/);
  assert.match(text, /device \+ transport \(kick -> interrupt\)\s+60\.0 \(46%\)\s+60\.0 \(43%\)/);
  assert.match(text, /of which the backend serving it\s+7\.0\s+-/);
  assert.match(text, /completed by the poll\s+40\/100\s+40\/100/);
});

function io(): CliIo & { out: () => string } {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let buf = '';
  stdout.on('data', (c: Buffer) => (buf += c.toString()));
  stderr.on('data', (c: Buffer) => (buf += c.toString()));
  return { stdout, stderr, stdin: new PassThrough(), cwd: '/nonexistent', env: {}, signal: new AbortController().signal, out: () => buf };
}

test('vlab bench latency refuses bad arguments before booting anything', async () => {
  const cmd = benchLatencyCommands.find((c) => c.name === 'bench latency')!;
  for (const [args, re] of [
    [['--backend', 'kvm'], /--backend takes builtin and\/or ts/],
    [['--poll', '0,2000'], /--poll takes integers from 0 to 1000/],
    [['--poll', '-1'], /--poll/],
    [['--ops', '5'], /--ops takes integers from 10/],
    [['--rounds', '1,2'], /--rounds takes one integer/],
    [['--size', '65'], /multiple of 16/],
    [['extra'], /unexpected argument/],
  ] as const) {
    await assert.rejects(cmd.run([...args], io()), re, args.join(' '));
  }
});
