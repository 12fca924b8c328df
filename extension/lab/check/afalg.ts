/**
 * `vlab check driver --afalg`: grades upstream Linux `virtio_crypto` (kernel crypto API, no
 * /dev/crypto) bound to the lab's device, through AF_ALG sockets bound by driver name
 * (test/guest/afalg_test.c), on the sections that apply (plan.ts AFALG_CHECKS, docs/checking.md).
 * Ours is unloaded to make room and loaded again afterwards if it was loaded.
 */
import { execFile } from 'node:child_process';
import * as crypto from 'node:crypto';
import { mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { readSnapshotOrNull } from '../../../backend/telemetry/client';
import { GUEST_MODULE_PATH, MODULE_NAME, type DriverBuildTarget, driverBuildDir, isDriverLoaded, pushFile } from '../driver/driver';
import { repoRoot } from '../common/repo-root';
import { quoteForShell, type SshSession } from '../guest/ssh';
import type { CheckResult } from './grade-report';
import { AFALG_CHECKS } from './plan';
import { type GradeContext, judged, skipped, stepProblem } from './context';
import { runBatch, runStep, type StepResult } from './guest-runner';
import { byToolLines, hostCiphertextHash, type RandomCase } from './api';
import { DMESG_BAD, dmesgSince } from './hygiene';
import { conformanceBaseline, conformanceSection } from './conformance';
import { anyRuleFired, dState, errnoOf, fault } from './robustness';
import { insmod, rmmod } from './module';

/** The upstream module and the driver name of its AES-CBC skcipher. */
export const UPSTREAM_MODULE = 'virtio_crypto';
export const AFALG_DRIVER_NAME = 'virtio_crypto_aes_cbc';
export const GUEST_AFALG_TOOL = '/tmp/vlab-afalg-test';
const CASES_FILE = '/tmp/vlab-grade-afalg-cases.txt';

/** Errno values of the Linux x86-64 ABI the checks expect. */
const EINVAL = 22;
const EBADMSG = 74;
const EIO = 5;

export class AfalgLoadError extends Error {
  override readonly name = 'AfalgLoadError';
}

/** Builds test/guest/afalg_test.c for the guest (same distribution as the host) when it is out of date. */
export async function buildAfalgTool(lab: DriverBuildTarget): Promise<string> {
  const src = join(repoRoot(), 'test', 'guest', 'afalg_test.c');
  const dir = driverBuildDir(lab);
  mkdirSync(dir, { recursive: true });
  const out = join(dir, 'vlab-afalg-test');
  const mtime = (p: string): number => { try { return statSync(p).mtimeMs; } catch { return -1; } };
  if (mtime(out) >= mtime(src)) return out;
  await new Promise<void>((resolve, reject) => {
    execFile('gcc', ['-O2', '-Wall', '-Wextra', '-o', out, src, '-lcrypto'], (err, _stdout, stderr) => {
      if (err) reject(new AfalgLoadError(`building the AF_ALG guest tool failed: ${stderr.trim() || err.message}`));
      else resolve();
    });
  });
  return out;
}

const tool = (...args: string[]): string[] => [GUEST_AFALG_TOOL, '--alg', AFALG_DRIVER_NAME, ...args];

/** Waits (bounded) until /proc/crypto lists the driver ("present") or no longer does ("absent"). */
function waitAlgShell(want: 'present' | 'absent'): string {
  const test = `grep -q '^driver *: ${AFALG_DRIVER_NAME}$' /proc/crypto`;
  const cond = want === 'present' ? `! ${test}` : test;
  return `i=0; while ${cond} && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done; ${test} && echo alg-present || echo alg-absent`;
}

export interface AfalgBinding {
  /** Puts things back: ours loaded again if it was. */
  readonly restore: () => Promise<void>;
}

/** Makes upstream virtio_crypto the driver of the device (ours out of the way), its algorithm registered. */
export async function bindUpstream(session: SshSession): Promise<AfalgBinding> {
  const oursWasLoaded = await isDriverLoaded(session);
  if (oursWasLoaded) {
    const r = await rmmod(session, MODULE_NAME);
    if (!r.ok) throw new AfalgLoadError(`cannot unload ${MODULE_NAME} to bind ${UPSTREAM_MODULE}: ${r.output}`);
  }
  const restore = async (): Promise<void> => {
    if (!oursWasLoaded) return;
    await rmmod(session, UPSTREAM_MODULE);
    await insmod(session, GUEST_MODULE_PATH, '/dev/crypto');
  };
  const r = await session.run({ shell: `modprobe ${UPSTREAM_MODULE} 2>&1; echo "modprobe=$?"; ${waitAlgShell('present')}` }, { timeoutMs: 120_000 });
  if (!/alg-present/.test(r.stdout)) {
    await restore();
    const blacklisted = (await session.run({ shell: 'cat /proc/cmdline' }, { timeoutMs: 60_000 })).stdout.includes('module_blacklist=virtio_crypto');
    throw new AfalgLoadError(blacklisted
      ? `the guest was booted with module_blacklist=virtio_crypto: start the lab with vlab up --guest-driver upstream`
      : `${UPSTREAM_MODULE} did not register ${AFALG_DRIVER_NAME} in /proc/crypto: ${r.stdout.trim()}`);
  }
  return { restore };
}

/** n AES-CBC cases, 16 B .. 32 KiB log-uniform, every key size. */
function cbcCases(n: number): RandomCase[] {
  const cbc = { id: 11, name: 'cbc', block: 16 } as const;
  return Array.from({ length: n }, (_, i) => {
    let len = Math.max(16, Math.min(32768, Math.round(16 * 2 ** (Math.random() * 11))));
    len -= len % 16;
    return { cipher: cbc, key: crypto.randomBytes([16, 24, 32][i % 3]!), iv: crypto.randomBytes(16), len, seed: crypto.randomBytes(8).readBigUInt64LE() };
  });
}

function randomResult(cases: readonly RandomCase[], r: StepResult | undefined): CheckResult {
  const base = byToolLines(AFALG_CHECKS.apiRandom, r, cases.length);
  if (base.status !== 'pass' || !r) return base;
  const got = new Map<number, string>();
  for (const m of r.stdout.matchAll(/^ct (\d+) ([0-9a-f]{64})$/gm)) got.set(Number(m[1]), m[2]!);
  const wrong = cases.flatMap((c, i) => got.get(i + 1) === hostCiphertextHash(c) ? [] : [`case ${i + 1} AES-${c.key.length * 8}-CBC ${c.len} B: ciphertext differs from host OpenSSL`]);
  return judged(AFALG_CHECKS.apiRandom, wrong.length === 0, wrong.length ? wrong : [`${cases.length} cases equal host OpenSSL (node:crypto) and decrypt back`], r.durationMs);
}

async function requestsServed(ctx: GradeContext): Promise<number | undefined> {
  if (ctx.backend !== 'ts') return undefined;
  return (await readSnapshotOrNull(ctx.telemetrySocket))?.counters.requests;
}

async function apiSection(ctx: GradeContext): Promise<CheckResult[]> {
  const cases = cbcCases(24);
  const lines = cases.map((c) => `${c.key.toString('hex')} ${c.iv.toString('hex')} ${c.len} ${c.seed}`);
  const put = await ctx.session.run({ shell: `cat > ${CASES_FILE}` }, { stdin: `${lines.join('\n')}\n`, timeoutMs: 60_000 });
  if (put.code !== 0) throw new Error(`writing the random cases into the guest failed: ${put.stderr.trim()}`);
  ctx.progress('api: routing, known answers, random cases, errno (AF_ALG)');
  const proc = await ctx.session.run({ shell: `awk -v RS= '/driver *: ${AFALG_DRIVER_NAME}\\n/' /proc/crypto` }, { timeoutMs: 60_000 });
  const before = await requestsServed(ctx);
  const kat = await runStep(ctx.session, { key: 'kat', cmd: tool('kat'), timeoutSec: 180 });
  const after = await requestsServed(ctx);
  const r = await runBatch(ctx.session, [
    { key: 'random', cmd: tool('roundtrip', CASES_FILE), timeoutSec: 300 },
    { key: 'errors', cmd: tool('errors'), timeoutSec: 120 },
  ]);
  const field = (name: string): string | undefined => new RegExp(`^${name} *: (.*)$`, 'm').exec(proc.stdout)?.[1]?.trim();
  const listed = field('module') === UPSTREAM_MODULE && field('selftest') === 'passed';
  const moved = before === undefined || after === undefined ? undefined : after - before;
  const routed = listed && (ctx.backend !== 'ts' || (moved !== undefined && moved >= 6));
  return [
    judged(AFALG_CHECKS.apiRouting, routed, [
      listed ? `/proc/crypto: ${field('name')} driver ${AFALG_DRIVER_NAME} module ${UPSTREAM_MODULE} priority ${field('priority')} selftest passed` : `/proc/crypto does not list ${AFALG_DRIVER_NAME} from ${UPSTREAM_MODULE} with selftest passed: ${proc.stdout.trim().split('\n').join('; ') || 'absent'}`,
      ctx.backend === 'ts'
        ? `the back-end served ${moved ?? '?'} request(s) during the 6 known-answer operations (want at least 6)`
        : 'builtin back-end: no request counter to read (the binding by driver name is the proof)',
    ], kat.durationMs),
    byToolLines(AFALG_CHECKS.apiKat, kat, 6),
    randomResult(cases, r.get('random')),
    byToolLines(AFALG_CHECKS.apiErrors, r.get('errors'), 3),
  ];
}

async function concurrencySection(ctx: GradeContext): Promise<CheckResult> {
  ctx.progress('concurrency: processes at once (AF_ALG)');
  const r = await runStep(ctx.session, { key: 'procs', cmd: tool('stress', '4', '16'), timeoutSec: 300 });
  return byToolLines(AFALG_CHECKS.concProcesses, r, 4);
}

/** What upstream virtio_crypto's skcipher completion makes of each device status (Linux 6.1). */
const STATUS_ERRNO: ReadonlyArray<readonly [string, number, string]> = [['err', EINVAL, 'EINVAL'], ['badmsg', EBADMSG, 'EBADMSG'], ['notsupp', EIO, 'EIO'], ['invsess', EINVAL, 'EINVAL']];

async function statusCheck(ctx: GradeContext): Promise<CheckResult> {
  const lines: string[] = [];
  let ok = true;
  let ms = 0;
  for (const [status, want, name] of STATUS_ERRNO) {
    await fault(ctx, [`status=${status},opcode=encrypt,count=1`]);
    try {
      const r = await runStep(ctx.session, { key: 'op', cmd: tool('one'), timeoutSec: 60 });
      ms += r.durationMs;
      const e = errnoOf(r.stdout);
      const fired = await anyRuleFired(ctx);
      const good = e === want && fired;
      ok &&= good;
      lines.push(`status=${status}: ${e === undefined ? stepProblem(r) ?? r.stdout.trim() : `errno ${e}`} (want ${want} ${name})${fired ? '' : ' — the fault never fired'}${good ? '' : ' — wrong'}`);
    } finally {
      await fault(ctx, 'clear');
    }
  }
  return judged(AFALG_CHECKS.robStatus, ok, lines, ms);
}

/** A request held on a stalled queue, then the stall cleared: it must complete, nothing left in D state. */
async function stallClearCheck(ctx: GradeContext): Promise<CheckResult> {
  const t0 = Date.now();
  const log = '/tmp/vlab-grade-afalg-stall.log';
  await fault(ctx, ['stall,opcode=encrypt']);
  let held = false;
  try {
    await ctx.session.run({ shell: `${quoteForShell(tool('one'))} > ${log} 2>&1 & echo $! > ${log}.pid` }, { timeoutMs: 60_000 });
    const end = Date.now() + 60_000;
    while (!held && Date.now() < end) {
      held = ((await readSnapshotOrNull(ctx.telemetrySocket))?.faults.heldRequests ?? 0) >= 1;
      if (!held) await new Promise((r) => setTimeout(r, 200));
    }
  } finally {
    await fault(ctx, 'clear');
  }
  const wait = await ctx.session.run({ shell: `p=$(cat ${log}.pid); i=0; while [ -e /proc/$p ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done; test -e /proc/$p && echo still-running; cat ${log}` }, { timeoutMs: 120_000 });
  const e = errnoOf(wait.stdout);
  const d = await dState(ctx);
  const ok = held && e !== undefined && !/still-running/.test(wait.stdout) && d.length === 0;
  return judged(AFALG_CHECKS.robStallClear, ok, [
    held ? 'the request was held on the stalled queue' : 'the request never reached the stalled queue (held 0)',
    e === undefined ? `the request did not end within 60 s of fault clear: ${wait.stdout.trim()}` : `after fault clear: errno ${e}${e === 0 ? ' (completed)' : ''}`,
    ...(d.length ? ['processes in D state:', ...d] : ['no process in D state']),
  ], Date.now() - t0);
}

async function robustnessSection(ctx: GradeContext): Promise<CheckResult[]> {
  const specs = [AFALG_CHECKS.robStatus, AFALG_CHECKS.robStallClear];
  if (ctx.backend !== 'ts') return specs.map((s) => skipped(s, 'fault injection needs the ts back-end (vlab up --backend ts)'));
  ctx.progress('robustness: injected statuses, stalled queue then clear (AF_ALG)');
  await fault(ctx, 'clear');
  return [await statusCheck(ctx), await stallClearCheck(ctx)];
}

async function unloadCheck(ctx: GradeContext): Promise<CheckResult> {
  const t0 = Date.now();
  const rm = await rmmod(ctx.session, UPSTREAM_MODULE);
  const gone = await ctx.session.run({ shell: waitAlgShell('absent') }, { timeoutMs: 120_000 });
  const back = await ctx.session.run({ shell: `modprobe ${UPSTREAM_MODULE} 2>&1; echo "modprobe=$?"; ${waitAlgShell('present')}` }, { timeoutMs: 120_000 });
  const kat = await runStep(ctx.session, { key: 'kat', cmd: tool('kat'), timeoutSec: 180 });
  const katResult = byToolLines(AFALG_CHECKS.hygUnload, kat, 6);
  const ok = rm.ok && /alg-absent/.test(gone.stdout) && /modprobe=0/.test(back.stdout) && /alg-present/.test(back.stdout) && katResult.status === 'pass';
  return judged(AFALG_CHECKS.hygUnload, ok, [
    `rmmod ${UPSTREAM_MODULE}: ${rm.output.replace(/\n/g, '; ')}`,
    /alg-absent/.test(gone.stdout) ? `${AFALG_DRIVER_NAME} gone from /proc/crypto` : `${AFALG_DRIVER_NAME} still in /proc/crypto after rmmod`,
    `modprobe again: ${back.stdout.trim().replace(/\n/g, '; ')}`,
    `known answers after modprobe: ${katResult.evidence.join('; ')}`,
  ], Date.now() - t0);
}

/** The device's sessions: open now, created and closed so far (ts telemetry). */
export interface DeviceSessions {
  readonly open: number;
  readonly created: number;
  readonly closed: number;
}

async function deviceSessions(ctx: GradeContext): Promise<DeviceSessions | undefined> {
  if (ctx.backend !== 'ts') return undefined;
  const s = await readSnapshotOrNull(ctx.telemetrySocket);
  return s ? { open: s.sessions.length, created: s.counters.sessionsCreated, closed: s.counters.sessionsClosed } : undefined;
}

/** Sessions back to the start once every socket is closed — and the driver did make some (setkey). */
function sessionsCheck(start: DeviceSessions | undefined, now: DeviceSessions | undefined, ms: number): CheckResult {
  if (!start || !now) return judged(AFALG_CHECKS.hygSessions, false, ['the back-end\'s telemetry did not answer'], ms);
  const [created, closed] = [now.created - start.created, now.closed - start.closed];
  return judged(AFALG_CHECKS.hygSessions, now.open <= start.open && created > 0, [
    `device sessions open: ${start.open} at the start, ${now.open} after every socket of the API, concurrency and robustness sections closed`,
    `device sessions created ${created} and closed ${closed} during the grade${created > 0 ? '' : ' (none created: the requests did not reach the device?)'}`,
  ], ms);
}

async function hygieneSection(ctx: GradeContext, marker: string, start: DeviceSessions | undefined): Promise<CheckResult[]> {
  ctx.progress('hygiene: sessions, unload, dmesg');
  const t0 = Date.now();
  const sessions = ctx.backend !== 'ts'
    ? skipped(AFALG_CHECKS.hygSessions, 'the device\'s session count needs the ts back-end\'s telemetry')
    : sessionsCheck(start, await deviceSessions(ctx), Date.now() - t0);
  const unload = await unloadCheck(ctx);
  const t1 = Date.now();
  const lines = await dmesgSince(ctx, marker);
  const bad = lines.filter((l) => DMESG_BAD.test(l));
  const dmesg = judged(AFALG_CHECKS.hygDmesg, bad.length === 0, bad.length ? bad : [`${lines.length} dmesg line(s) since the grade started, no splat`], Date.now() - t1);
  return [sessions, unload, dmesg];
}

/** The sections of the AF_ALG grade, in order, on a guest where upstream virtio_crypto is bound. */
export async function afalgChecks(ctx: GradeContext, t0: number): Promise<CheckResult[]> {
  const marker = `vlab-grade-afalg-start-${process.pid}-${t0}`;
  await ctx.session.run({ shell: `echo '${marker}' > /dev/kmsg` }, { timeoutMs: 60_000 });
  const start = await conformanceBaseline(ctx);
  const sessionsAtStart = await deviceSessions(ctx);
  const checks: CheckResult[] = [];
  checks.push(...await apiSection(ctx));
  checks.push(await concurrencySection(ctx));
  checks.push(...await robustnessSection(ctx));
  checks.push(...await hygieneSection(ctx, marker, sessionsAtStart));
  checks.push(...await conformanceSection(ctx, start, t0));
  return checks;
}

/** Builds and pushes the guest tool and binds upstream (undo with the binding's restore). */
export async function prepareAfalg(session: SshSession, lab: DriverBuildTarget): Promise<AfalgBinding> {
  const hostTool = await buildAfalgTool(lab);
  await pushFile(session, hostTool, GUEST_AFALG_TOOL, true);
  return bindUpstream(session);
}
