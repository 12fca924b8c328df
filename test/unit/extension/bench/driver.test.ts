/**
 * `vlab bench e2e` schema 2 without a VM: the `openssl speed -mr` parser and the guest tool's speed-line
 * parser on output captured from the guest's OpenSSL 3.0.19 (fixtures/guest-openssl-3.0.19), the ratios
 * per algorithm, issue #11's targets, the text table, the report generator on schema 2 data, and the
 * CLI's argument checks.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { type E2ePoint, type E2eReport, computeRatios, judgeTargets, opensslSecondsFor } from '../../../../extension/bench/driver';
import { formatE2eSpeed, formatE2eTable } from '../../../../extension/bench/driver-format';
import { opensslSpeedArgs, parseOpensslSpeed, parseSpeedLines } from '../../../../extension/bench/openssl-speed';
import { type E2eData, parseE2e } from '../../../../extension/report/data';
import { e2eFigure } from '../../../../extension/report/figures';
import { e2eTable } from '../../../../extension/report/tables';
import { type CliRun, runMainCaptured } from '../../../cli-capture';
import { REPO } from '../../../repo-root';

const root = REPO;
const fixture = (name: string): string => readFileSync(join(root, 'test', 'unit', 'extension', 'bench', 'fixtures', 'guest-openssl-3.0.19', name), 'utf8');

test('openssl speed -mr, one process: ops and time from +R, bytes/s from +F', () => {
  const r = parseOpensslSpeed(fixture('speed-mr-aes-256-cbc-64-1.txt'), 64);
  assert.deepEqual(r, { ops: 356790, seconds: 0.99, procs: 1, bytesPerSec: 23065212.12, opsPerSec: 360393.9, MBps: 23.065 });
  const big = parseOpensslSpeed(fixture('speed-mr-aes-256-cbc-65536-1.txt'), 65536);
  assert.equal(big.ops, 412);
  assert.equal(big.MBps, 27.836);
  assert.equal(big.opsPerSec, 424.7);
  const sha = parseOpensslSpeed(fixture('speed-mr-sha256-1024-1.txt'), 1024);
  assert.equal(sha.ops, 30521);
  assert.equal(sha.bytesPerSec, 31253504);
});

test('openssl speed -mr -multi 8: the parent total, not the last child echoed as "Got: +F"', () => {
  const r = parseOpensslSpeed(fixture('speed-mr-aes-256-cbc-16384-8.txt'), 16384);
  assert.equal(r.procs, 8);
  assert.equal(r.ops, 261 + 265 + 236 + 314 + 268 + 332 + 236 + 279);
  assert.equal(r.seconds, 1);
  assert.equal(r.bytesPerSec, 37209698.36);
  assert.equal(r.MBps, 37.21);
  // OpenSSL 3.0 labels the -hmac sha256 total "hmac(md5)": the name is not trusted.
  const h = parseOpensslSpeed(fixture('speed-mr-hmac-sha256-64-8.txt'), 64);
  assert.equal(h.procs, 8);
  assert.equal(h.bytesPerSec, 6862720.77);
  assert.equal(h.seconds, 1.1);
});

test('openssl speed: an unknown algorithm, a wrong block size and the human format are errors', () => {
  assert.throws(() => parseOpensslSpeed(fixture('speed-mr-bad.txt'), 64), /openssl speed gave no result: .*unsupported/);
  assert.throws(() => parseOpensslSpeed(fixture('speed-mr-aes-256-cbc-64-1.txt'), 1024), /measured 64-byte blocks, expected 1024/);
  assert.throws(() => parseOpensslSpeed(fixture('speed-human-aes-256-cbc-65536-1.txt'), 65536), /no result/);
  assert.throws(() => parseOpensslSpeed('', 64), /no output/);
});

test('openssl speed command lines: -elapsed -mr, -multi only above 1 process, -hmac for HMAC, whole seconds', () => {
  assert.deepEqual(opensslSpeedArgs('aes-256-cbc', 64, 1, 2), ['openssl', 'speed', '-elapsed', '-mr', '-seconds', '2', '-bytes', '64', '-evp', 'aes-256-cbc']);
  assert.deepEqual(opensslSpeedArgs('sha256', 1024, 8, 1), ['openssl', 'speed', '-elapsed', '-mr', '-multi', '8', '-seconds', '1', '-bytes', '1024', '-evp', 'sha256']);
  assert.deepEqual(opensslSpeedArgs('hmac-sha256', 16384, 1, 1).slice(-2), ['-hmac', 'sha256']);
  assert.throws(() => opensslSpeedArgs('sha256', 64, 1, 0.5), /whole seconds/);
  assert.equal(opensslSecondsFor(200), 1);
  assert.equal(opensslSecondsFor(1500), 2);
  assert.equal(opensslSecondsFor(60_000), 60);
});

test('the guest tool speed mode: cryptodev-linux style lines parsed; a failed size is an error', () => {
  const aes = parseSpeedLines(fixture('tool-speed-aes-256-cbc.out'));
  assert.deepEqual(aes.map((l) => l.size), [64, 1024, 16384, 65536]);
  assert.deepEqual(aes[3], { verb: 'Encrypting', size: 65536, MB: 84.41, seconds: 0.5, MBps: 168.38 });
  const hmac = parseSpeedLines(fixture('tool-speed-hmac-sha256.out'));
  assert.equal(hmac[1]?.verb, 'Hashing');
  assert.equal(hmac[1]?.seconds, 0.58);
  assert.equal(parseSpeedLines(fixture('tool-speed-sha256.out')).length, 4);
  assert.throws(() => parseSpeedLines('Testing sha256 through /dev/crypto:\n\tHashing in chunks of 64 bytes: failed: errno 22\n'), /64 bytes failed with errno 22/);
  const text = formatE2eSpeed({ schema: 2, mode: 'speed', accel: 'tcg', boots: [], secondsPerSize: 0.5, totalSec: 61, runs: [{ backend: 'ts', alg: 'aes-256-cbc', lines: aes, text: '' }] });
  assert.match(text, /^ts backend, aes-256-cbc:$/m);
  assert.match(text, /^\tEncrypting in chunks of 65536 bytes: done\. 84\.41 MB in 0\.50 secs: 168\.38 MB\/sec$/m);
});

const pt = (alg: E2ePoint['alg'], source: E2ePoint['source'], size: number, procs: number, opsPerSec: number): E2ePoint => ({
  alg,
  source,
  size,
  procs,
  ops: opsPerSec,
  seconds: 1,
  opsPerSec,
  MBps: (opsPerSec * size) / 1e6,
});

/** Every AES point of a full run: ts = builtin x tsFactor, openssl speed fixed. */
function fullAes(tsAt64k: number, tsAt16k: number, builtinAt: (size: number, procs: number) => number): E2ePoint[] {
  const out: E2ePoint[] = [];
  for (const size of [64, 1024, 16384, 65536]) {
    for (const procs of [1, 8]) {
      const speed = 1000;
      out.push(pt('aes-256-cbc', 'openssl-speed', size, procs, speed));
      out.push(pt('aes-256-cbc', 'software', size, procs, 900));
      out.push(pt('aes-256-cbc', 'builtin', size, procs, builtinAt(size, procs)));
      const ts = size === 65536 && procs === 1 ? tsAt64k * speed : size === 16384 && procs === 1 ? tsAt16k * speed : 500;
      out.push(pt('aes-256-cbc', 'ts', size, procs, ts));
    }
  }
  return out;
}

test('ratios per algorithm, with the openssl speed columns only where it ran', () => {
  const points = [pt('aes-256-cbc', 'ts', 64, 1, 300), pt('aes-256-cbc', 'openssl-speed', 64, 1, 1200), pt('aes-256-cbc', 'builtin', 64, 1, 600), pt('sha256', 'ts', 64, 1, 50), pt('sha256', 'software', 64, 1, 200)];
  const r = computeRatios(points);
  assert.equal(r.length, 16, 'two algorithms x 4 sizes x 2 process counts');
  const aes = r.find((x) => x.alg === 'aes-256-cbc' && x.size === 64 && x.procs === 1);
  assert.deepEqual(aes, { alg: 'aes-256-cbc', size: 64, procs: 1, tsOverBuiltin: 0.5, builtinOverSoftware: undefined, tsOverSoftware: undefined, builtinOverSpeed: 0.5, tsOverSpeed: 0.25 });
  const sha = r.find((x) => x.alg === 'sha256' && x.size === 64 && x.procs === 1);
  assert.equal(sha?.tsOverSoftware, 0.25);
  assert.equal(sha?.tsOverSpeed, undefined);
  assert.ok(!('tsOverSpeed' in (sha ?? {})));
  // Small ratios keep 4 decimals (the table prints 3), not 0.00.
  const small = computeRatios([pt('aes-256-cbc', 'ts', 64, 1, 1052), pt('aes-256-cbc', 'openssl-speed', 64, 1, 309651)]);
  assert.equal(small[0]?.tsOverSpeed, 0.0034);
  const text = formatE2eTable({ schema: 2, accel: 'tcg', durationMs: 1500, points: [], ratios: small });
  assert.equal(text, '');
  const withPoints = formatE2eTable({ schema: 2, accel: 'tcg', durationMs: 1500, points: [pt('aes-256-cbc', 'ts', 64, 1, 1052), pt('aes-256-cbc', 'openssl-speed', 64, 1, 309651)], ratios: small });
  assert.match(withPoints, / 0\.003x$/m);
});

test('issue #11 targets: met, missed with the points named, not measured', () => {
  const met = judgeTargets(fullAes(2.1, 1.0, () => 400));
  assert.deepEqual(met.map((t) => [t.id, t.met, t.detail]), [
    ['ts-speed-64k', true, '2.10x'],
    ['ts-speed-16k', true, '1.00x'],
    ['ts-ge-builtin', true, 'every point'],
  ]);
  const missed = judgeTargets(fullAes(1.5, 0.9, (size, procs) => (size === 64 && procs === 8 ? 800 : 400)));
  assert.deepEqual(missed.map((t) => t.met), [false, false, false]);
  assert.equal(missed[2]?.detail, 'below at 64 B x8: 0.63x');
  const none = judgeTargets([pt('aes-256-cbc', 'ts', 65536, 1, 10)]);
  assert.deepEqual(none.map((t) => t.met), [undefined, undefined, undefined]);
  assert.match(none[0]?.detail ?? '', /not measured/);
  // Hash points do not count towards the (AES) targets.
  assert.equal(judgeTargets([pt('sha256', 'ts', 65536, 1, 5000), pt('sha256', 'openssl-speed', 65536, 1, 10)])[0]?.met, undefined);
});

function schema2Report(): E2eReport {
  const points = [...fullAes(2.5, 0.8, () => 400), pt('hmac-sha256', 'ts', 64, 1, 700), pt('hmac-sha256', 'software', 64, 1, 1400), pt('hmac-sha256', 'openssl-speed', 64, 1, 2800)];
  return {
    schema: 2,
    accel: 'tcg',
    durationMs: 1500,
    algs: ['aes-256-cbc', 'hmac-sha256'],
    opensslSpeed: { version: 'OpenSSL 3.0.19 27 Jan 2026 (Library: OpenSSL 3.0.19 27 Jan 2026)', seconds: 2 },
    totalSec: 301.4,
    points,
    ratios: computeRatios(points),
    targets: judgeTargets(points),
  };
}

test('text table: one block per algorithm, openssl speed columns, targets, run time', () => {
  const text = formatE2eTable(schema2Report());
  assert.match(text, /^AES-256-CBC through \/dev\/crypto/m);
  assert.match(text, /^HMAC-SHA256 \(mac-only session\) through \/dev\/crypto/m);
  assert.match(text, /openssl speed +ts\/builtin +builtin\/sw +ts\/sw +builtin\/speed +ts\/speed$/m);
  const row = text.split('\n').find((l) => /^ +65536 +1 /.test(l)) ?? '';
  assert.match(row, /400 \(26\.2\) +2500 \(163\.8\) +900 \(59\.0\) +1000 \(65\.5\) +6\.25x +0\.44x +2\.78x +0\.40x +2\.50x$/);
  const hmacRows = text.split('\n').filter((l) => /^ +64 +1 /.test(l));
  assert.equal(hmacRows.length, 2, 'hmac block prints only its measured row');
  assert.match(hmacRows[1] ?? '', /  700 \(0\.0\) +1400 \(0\.1\) +2800 \(0\.2\) +- +- +0\.50x +- +0\.25x$/);
  assert.match(text, /^ {2}met {10}ts >= 2\.0x openssl speed at 64 KiB, 1 process: 2\.50x$/m);
  assert.match(text, /^ {2}MISSED {7}ts >= 1\.0x openssl speed at 16 KiB, 1 process: 0\.80x$/m);
  assert.match(text, /whole run 301 s$/);
  // A schema 1 report (AES only, no alg, no openssl speed) still prints the old columns.
  const v1: E2eReport = { schema: 1, accel: 'tcg', durationMs: 1500, points: [pt(undefined, 'ts', 64, 1, 10)], ratios: computeRatios([pt(undefined, 'ts', 64, 1, 10)]) };
  const old = formatE2eTable(v1);
  assert.match(old, /^ +size +procs +ts +ts\/builtin +builtin\/sw +ts\/sw$/m);
  assert.doesNotMatch(old, /Targets|openssl/);
});

test('report generator reads schema 2: hash tables, openssl speed columns and series, targets; refuses an unknown schema', () => {
  const provenance = {
    date: '2026-11-30T17:00:00.000Z',
    loadAverage: [1, 1, 1],
    commit: '0'.repeat(40),
    dirty: false,
    machine: { cores: 2, cpuModel: 'cpu', memoryMb: 1024, hostKernel: '6.1', node: 'v20' },
    accelerator: { kind: 'tcg', why: 'no vmx/svm flag here' },
  };
  const d = parseE2e({ kind: 'e2e', provenance, command: ['bench', 'e2e', '--json'], result: schema2Report() }, 'e2e.json') as E2eData;
  const md = e2eTable(d);
  assert.match(md, /^\*\*AES-256-CBC\*\*$/m);
  assert.match(md, /^\*\*HMAC-SHA256 \(mac-only session\)\*\*$/m);
  assert.match(md, /\| guest openssl speed ops\/s \(MB\/s\) \|/);
  assert.match(md, /^\| 64 KiB \| 1 \| 2 500 \(163\.8\) \| 400 \(26\.2\) \| 900 \(59\.0\) \| 1 000 \(65\.5\) \| 6\.25 \| 2\.78 \| 0\.44 \| 2\.50 \| 0\.40 \|$/m);
  assert.match(md, /^\| ts >= 1\.0x openssl speed at 16 KiB, 1 process \| 0\.80x \| no \|$/m);
  assert.match(md, /whole run 301 s; openssl speed: OpenSSL 3\.0\.19/);
  const svg = e2eFigure(d).svg;
  assert.match(svg, /guest openssl speed, 1 proc/);
  assert.doesNotMatch(svg, /HMAC/);
  assert.throws(() => parseE2e({ kind: 'e2e', provenance, command: [], result: { ...schema2Report(), schema: 3 } }, 'x.json'), /schema 3/);
});

function cli(args: string[]): Promise<CliRun> {
  return runMainCaptured(args, { cwd: process.cwd(), env: process.env });
}

test('CLI: --alg, --sizes, --procs and --speed are checked before any VM boots (exit 2)', async () => {
  const cases: Array<[string[], RegExp]> = [
    [['--alg', 'aes-256-cbc,md5'], /--alg takes aes-256-cbc, sha256, hmac-sha256 \(got "md5"\)/],
    [['--sizes', '64,100'], /AES-256-CBC takes whole 16-byte blocks \(got 100\)/],
    [['--sizes', '8'], /--sizes takes integers from 16 to 65536/],
    [['--procs', '0'], /--procs takes integers from 1 to 64/],
    [['--speed', '--sizes', '64'], /--speed measures every size with 1 process/],
  ];
  for (const [args, re] of cases) {
    const r = await cli(['bench', 'e2e', ...args]);
    assert.equal(r.code, 2, args.join(' '));
    assert.match(r.err, re);
  }
});

/** The guest tool, built on the host as `vlab driver build` builds it; its `sw` mode needs no /dev/crypto. */
function buildTool(): string {
  const dir = mkdtempSync(join(tmpdir(), 'vlab-bench-tool-'));
  const tool = join(dir, 'vlab-cryptodev-test');
  execFileSync('gcc', ['-O2', '-Wall', '-Wextra', '-Werror', '-o', tool, join(root, 'test', 'guest', 'cryptodev_test.c'), '-lcrypto']);
  return tool;
}

test('guest tool bench: ALG selects the loop; setup is outside the window, so even a 1 ms window counts every process', { timeout: 120_000 }, () => {
  const tool = buildTool();
  try {
    for (const alg of ['aes-256-cbc', 'sha256', 'hmac-sha256']) {
      const out = execFileSync(tool, ['bench', 'sw', '1024', '4', '1', alg], { encoding: 'utf8', timeout: 30_000 });
      const v = JSON.parse(out.trim()) as { alg: string; ops: number; procs: number; seconds: number };
      assert.equal(v.alg, alg);
      assert.equal(v.procs, 4);
      assert.ok(v.ops >= 4 * 8, `${alg}: ${v.ops} ops for 4 processes (each does at least one batch of 8)`);
      assert.ok(v.seconds > 0);
    }
    assert.throws(() => execFileSync(tool, ['bench', 'sw', '64', '1', '10', 'md5'], { encoding: 'utf8' }), (e: { status?: number; stdout?: string }) => e.status === 100 && /bad arguments/.test(e.stdout ?? ''));
  } finally {
    rmSync(dirname(tool), { recursive: true, force: true });
  }
});

test('guest tool bench: a process that cannot set up fails the run instead of hanging it', { timeout: 60_000 }, () => {
  const tool = buildTool();
  try {
    // No /dev/crypto on the host: every `dev` child exits during setup; the parent must see EOF.
    const r = spawnSync(tool, ['bench', 'dev', '64', '3', '100'], { encoding: 'utf8', timeout: 20_000 });
    assert.equal(r.error, undefined, 'the parent hung');
    assert.equal(r.status, 1);
    assert.match(r.stdout, /\{"error":"child failed"\}/);
  } finally {
    rmSync(dirname(tool), { recursive: true, force: true });
  }
});
