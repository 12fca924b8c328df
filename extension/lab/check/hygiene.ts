/**
 * The hygiene section: no session left in the device after CIOCFSESSION, close and process exit
 * (the back-end's telemetry counts them), no leaked pages (MemFree before/after a bounce-buffer
 * workload), a clean unload, and dmesg of the whole run without kernel splats.
 */
import { readSnapshotOrNull } from '../../../backend/telemetry/client';
import type { CheckResult } from './grade-report';
import { CHECKS } from './plan';
import { type GradeContext, judged, skipped, stepProblem, toolArgv } from './context';
import { runBatch } from './guest-runner';
import { insmod, rmmod } from './module';
import { quoteForShell } from '../guest/ssh';

/** What a page leak must exceed to be reported (see docs/checking.md, hygiene.pages). */
export const PAGE_LEAK_TOLERANCE_KIB = 4096;

/** The back-end's session limit (backend/crypto/device.ts MAX_SESSIONS), for the evidence only. */
const MAX_DEVICE_SESSIONS = 1024;

/** Lines of dmesg that are kernel splats, not a driver's own messages. */
export const DMESG_BAD = /\bWARNING:|\bBUG:|\bOops\b|general protection fault|kmemleak|memory leak|refcount_t: |use-after-free|blocked for more than|list_(add|del) corruption|\bbad page\b/;

/** The device's sessions as telemetry counts them. */
export interface SessionCounts {
  readonly open: number;
  readonly refusedAtLimit: number;
}

export async function sessionCounts(ctx: GradeContext): Promise<SessionCounts | undefined> {
  if (ctx.backend !== 'ts') return undefined;
  const s = await readSnapshotOrNull(ctx.telemetrySocket);
  return s ? { open: s.sessions.length, refusedAtLimit: s.counters.sessionsRefusedAtLimit } : undefined;
}

/**
 * Two measures of the device's open sessions (telemetry `sessions`), with none of the grader's
 * processes left: at the start of the grade against after the API and concurrency sections (thousands
 * of sessions, ended by CIOCFSESSION, close and exit), and around this check's own workload
 * (CIOCFSESSION + close, an exit with 4 sessions open, the known answers). Neither may grow. (Later,
 * the stall checks reset the device: sessions the driver then cannot destroy stay in the back-end,
 * which learns of no reset, so they are not counted against the driver.)
 */
async function sessionsCheck(ctx: GradeContext, start: SessionCounts | undefined, afterApi: SessionCounts | undefined): Promise<CheckResult> {
  if (ctx.backend !== 'ts') return skipped(CHECKS.hygSessions, 'the device\'s session count needs the ts back-end\'s telemetry');
  const t0 = Date.now();
  const before = await sessionCounts(ctx);
  const r = await runBatch(ctx.session, [
    { key: 'fsession', cmd: toolArgv(ctx, 'wait', '0'), timeoutSec: 60 },
    { key: 'exit', cmd: toolArgv(ctx, 'exit-open', '4'), timeoutSec: 60 },
    { key: 'kat', cmd: toolArgv(ctx, 'kat'), timeoutSec: 180 },
  ]);
  const after = await sessionCounts(ctx);
  const problems = [...r.values()].flatMap((x) => { const p = stepProblem(x); return p ? [`${x.key}: ${p}`] : []; });
  if (!start || !afterApi || !before || !after) return judged(CHECKS.hygSessions, false, ['the back-end\'s telemetry did not answer'], Date.now() - t0);
  const leftByApi = afterApi.open - start.open;
  const leftHere = after.open - before.open;
  const ok = leftByApi <= 0 && leftHere <= 0 && problems.length === 0;
  return judged(CHECKS.hygSessions, ok, [
    `device sessions open: ${start.open} at the start, ${afterApi.open} after the API and concurrency sections; ${before.open} before this check's workload, ${after.open} after it`,
    ...(leftByApi > 0 ? [`${leftByApi} session(s) left in the device by the API and concurrency sections${after.open >= MAX_DEVICE_SESSIONS ? ' (the device is at its limit of 1024)' : ''}`] : []),
    ...(leftHere > 0 ? [`${leftHere} session(s) left in the device by CIOCFSESSION + close, exit with sessions open, or the known answers`] : []),
    ...problems,
  ], Date.now() - t0);
}

async function pagesCheck(ctx: GradeContext): Promise<CheckResult> {
  const free = `sync; echo 3 > /proc/sys/vm/drop_caches; sed -n 's/^MemFree: *\\([0-9]*\\) kB$/memfree \\1/p' /proc/meminfo`;
  const r = await runBatch(ctx.session, [
    { key: 'warm', cmd: toolArgv(ctx, 'inflight', '4', '4', '65536'), timeoutSec: 180 },
    { key: 'before', cmd: { shell: free }, timeoutSec: 60 },
    { key: 'load', cmd: toolArgv(ctx, 'inflight', '4', '64', '65536'), timeoutSec: 300 },
    { key: 'after', cmd: { shell: free }, timeoutSec: 60 },
  ]);
  const kib = (k: string): number | undefined => { const m = /^memfree (\d+)$/m.exec(r.get(k)?.stdout ?? ''); return m ? Number(m[1]) : undefined; };
  const [before, after] = [kib('before'), kib('after')];
  const load = r.get('load');
  const problem = stepProblem(load) ?? (load && load.code !== 0 ? `the workload failed: ${load.stdout.trim().split('\n').slice(-2).join('; ')}` : undefined);
  const lost = before !== undefined && after !== undefined ? before - after : undefined;
  const ok = !problem && lost !== undefined && lost <= PAGE_LEAK_TOLERANCE_KIB;
  return judged(CHECKS.hygPages, ok, [
    `MemFree ${before ?? '?'} kB before, ${after ?? '?'} kB after 256 x 64 KiB requests through bounce buffers (32 MiB of buffers): ${lost ?? '?'} kB less (tolerance ${PAGE_LEAK_TOLERANCE_KIB} kB)`,
    ...(problem ? [problem] : []),
  ], load?.durationMs ?? 0);
}

async function unloadCheck(ctx: GradeContext): Promise<CheckResult> {
  const t0 = Date.now();
  const rm = await rmmod(ctx.session, ctx.module.name);
  const node = await ctx.session.run({ shell: `test -e ${quoteForShell([ctx.dev])} && echo node-left || echo node-gone` }, { timeoutMs: 60_000 });
  const back = await insmod(ctx.session, ctx.module.guestPath, ctx.dev);
  const ok = rm.ok && /node-gone/.test(node.stdout) && back.ok;
  return judged(CHECKS.hygUnload, ok, [
    `rmmod ${ctx.module.name}: ${rm.output.replace(/\n/g, '; ')}`,
    /node-gone/.test(node.stdout) ? `${ctx.dev} gone after rmmod` : `${ctx.dev} still there after rmmod`,
    `insmod again: ${back.output.replace(/\n/g, '; ')}`,
  ], Date.now() - t0);
}

/** dmesg since the grader's marker line. */
export async function dmesgSince(ctx: GradeContext, marker: string): Promise<string[]> {
  const r = await ctx.session.run({ shell: 'dmesg' }, { timeoutMs: 60_000, maxOutputBytes: 8 * 1024 * 1024 });
  const lines = r.stdout.split('\n');
  const at = lines.findIndex((l) => l.includes(marker));
  return at < 0 ? lines : lines.slice(at + 1);
}

async function dmesgCheck(ctx: GradeContext, marker: string): Promise<CheckResult> {
  const t0 = Date.now();
  const lines = await dmesgSince(ctx, marker);
  const bad = lines.filter((l) => DMESG_BAD.test(l));
  return judged(CHECKS.hygDmesg, bad.length === 0, bad.length ? bad : [`${lines.length} dmesg line(s) since the grade started, no splat`], Date.now() - t0);
}

export async function hygieneSection(ctx: GradeContext, dmesgMarker: string, start: SessionCounts | undefined, afterApi: SessionCounts | undefined): Promise<CheckResult[]> {
  ctx.progress('hygiene: sessions, pages, unload, dmesg');
  const sessions = await sessionsCheck(ctx, start, afterApi);
  const pages = await pagesCheck(ctx);
  const unload = await unloadCheck(ctx);
  return [sessions, pages, unload, await dmesgCheck(ctx, dmesgMarker)];
}
