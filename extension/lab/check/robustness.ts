/**
 * The robustness section (ts back-end only): one check per fault class of `vlab fault`
 * (docs/fault-injection.md), each fault set through the back-end's control socket, the guest tool run
 * against it, the fault cleared. The stall checks kill a waiter, rmmod with a request on the ring, and
 * wait for the driver's request timeout; the lab must recover after clear and insmod.
 */
import { telemetryRequest, readSnapshotOrNull } from '../../../backend/telemetry/client';
import type { CheckResult } from './grade-report';
import { CHECKS } from './plan';
import { type GradeContext, judged, skipped, stepProblem, toolArgv } from './context';
import { runStep } from './guest-runner';
import { byToolLines } from './api';
import { insmod, rmmod } from './module';
import { quoteForShell } from '../guest/ssh';

const EIO = 5;
const EINVAL = 22;
const ETIMEDOUT = 110;
const EBADMSG = 74;
const EOPNOTSUPP = 95;

export async function fault(ctx: GradeContext, rules: readonly string[] | 'clear'): Promise<void> {
  const reply = rules === 'clear'
    ? await telemetryRequest(ctx.telemetrySocket, { type: 'fault-clear' })
    : await telemetryRequest(ctx.telemetrySocket, { type: 'fault-set', rules });
  if (reply.type === 'error') throw new Error(`vlab fault ${rules === 'clear' ? 'clear' : `set ${rules.join(' ')}`}: ${reply.message}`);
}

/** Runs fn with the rules set, clearing them afterwards whatever happens. */
async function withFault<T>(ctx: GradeContext, rules: readonly string[], fn: () => Promise<T>): Promise<T> {
  await fault(ctx, rules);
  try {
    return await fn();
  } finally {
    await fault(ctx, 'clear');
  }
}

/** Waits for a telemetry condition (an event of the back-end), at most ms. */
async function until(ctx: GradeContext, ok: (held: number) => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  for (;;) {
    const s = await readSnapshotOrNull(ctx.telemetrySocket);
    if (s && ok(s.faults.heldRequests)) return true;
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 200));
  }
}

export const errnoOf = (out: string): number | undefined => {
  const m = /^crypt errno (\d+)$/m.exec(out);
  return m ? Number(m[1]) : undefined;
};

/** Whether any rule set now has fired (a request reached the device and the fault was injected). */
export async function anyRuleFired(ctx: GradeContext): Promise<boolean> {
  const r = await telemetryRequest(ctx.telemetrySocket, { type: 'fault-list' });
  return r.type !== 'error' && r.faults.rules.some((x) => x.hits > 0);
}

const NOT_FIRED = ' — the fault never fired: the request did not reach the device (served in software? the device out of sessions?)';

/** One `wait 0` (session, one 64-byte encrypt, finish, close) under a rule; its errno. */
async function oneOp(ctx: GradeContext, rule: string): Promise<{ errno: number | undefined; line: string; ms: number }> {
  return withFault(ctx, [rule], async () => {
    const r = await runStep(ctx.session, { key: 'op', cmd: toolArgv(ctx, 'wait', '0'), timeoutSec: 60 });
    const e = errnoOf(r.stdout);
    const fired = await anyRuleFired(ctx);
    return { errno: e, line: `${rule}: ${e === undefined ? stepProblem(r) ?? r.stdout.trim().split('\n').pop() : `errno ${e}`}${fired ? '' : NOT_FIRED}`, ms: r.durationMs };
  });
}

async function statusCheck(ctx: GradeContext): Promise<CheckResult> {
  const cases: Array<[string, number, string]> = [['err', EIO, 'EIO'], ['badmsg', EBADMSG, 'EBADMSG'], ['notsupp', EOPNOTSUPP, 'EOPNOTSUPP'], ['invsess', EINVAL, 'EINVAL']];
  const lines: string[] = [];
  let ok = true;
  let ms = 0;
  for (const [status, want, name] of cases) {
    const r = await oneOp(ctx, `status=${status},opcode=encrypt,count=1`);
    ms += r.ms;
    const good = r.errno === want;
    ok &&= good;
    lines.push(`${r.line} (want ${want} ${name})${good ? '' : ' — wrong'}`);
  }
  return judged(CHECKS.robStatus, ok, lines, ms);
}

async function simpleCheck(ctx: GradeContext, spec: typeof CHECKS.robDelay, rules: readonly string[]): Promise<CheckResult> {
  const lines: string[] = [];
  let ok = true;
  let ms = 0;
  for (const rule of rules) {
    const r = await oneOp(ctx, rule);
    ms += r.ms;
    ok &&= r.errno === 0;
    lines.push(`${r.line} (want 0)`);
  }
  return judged(spec, ok, lines, ms);
}

/** A withheld interrupt: the completion is seen with the next request's interrupt (or the driver's own poll). */
async function irqCheck(ctx: GradeContext): Promise<CheckResult> {
  const dup = await oneOp(ctx, 'irq=duplicate,opcode=encrypt,count=1');
  const t0 = Date.now();
  const withheld = await withFault(ctx, ['irq=withhold,opcode=encrypt,count=1'], async () => {
    const log = '/tmp/vlab-grade-irq.log';
    const start = await ctx.session.run({ shell: `${quoteForShell(toolArgv(ctx, 'wait', '0'))} > ${log} 2>&1 & echo "pid=$!"` }, { timeoutMs: 60_000 });
    const pid = /^pid=(\d+)$/m.exec(start.stdout)?.[1] ?? '0';
    // The first request has been answered without an interrupt once the rule has fired.
    const fired = await waitRuleHit(ctx, 60_000);
    const second = await runStep(ctx.session, { key: 'second', cmd: toolArgv(ctx, 'wait', '0'), timeoutSec: 60 });
    const first = await runStep(ctx.session, { key: 'first', cmd: { shell: `i=0; while [ -e /proc/${pid} ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done; cat ${log}` }, timeoutSec: 60 });
    return { fired, a: errnoOf(first.stdout), b: errnoOf(second.stdout) };
  });
  const ok = dup.errno === 0 && withheld.a === 0 && withheld.b === 0;
  return judged(CHECKS.robIrq, ok, [
    `${dup.line} (want 0)`,
    `irq=withhold: first request errno ${withheld.a ?? 'none (never returned)'}, the next one errno ${withheld.b ?? 'none'} (want 0, 0)${withheld.fired ? '' : '; the rule never fired'}`,
  ], dup.ms + Date.now() - t0);
}

async function waitRuleHit(ctx: GradeContext, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  for (;;) {
    if (await anyRuleFired(ctx)) return true;
    if (Date.now() > end) return false;
    await new Promise((res) => setTimeout(res, 200));
  }
}

const staleLine = (out: string): RegExpExecArray | null => /^stale len (\d+) errno (\d+) same (\d+) zero (\d+) marker (\d+) other (\d+)$/m.exec(out);

async function flipCheck(ctx: GradeContext): Promise<CheckResult> {
  return withFault(ctx, ['flip-dst,opcode=encrypt,count=1'], async () => {
    const r = await runStep(ctx.session, { key: 'flip', cmd: toolArgv(ctx, 'stale', '4096'), timeoutSec: 60 });
    const m = staleLine(r.stdout);
    return judged(CHECKS.robFlip, m !== null && m[2] === '0', [m?.[0] ?? stepProblem(r) ?? r.stdout.trim(), 'want errno 0 (a driver cannot tell flipped bytes)'], r.durationMs);
  });
}

async function shortUsedCheck(ctx: GradeContext): Promise<CheckResult> {
  return withFault(ctx, ['short-used=1024,opcode=encrypt,count=1'], async () => {
    const r = await runStep(ctx.session, { key: 'short', cmd: toolArgv(ctx, 'stale', '4096'), timeoutSec: 60 });
    const m = staleLine(r.stdout);
    const ok = m !== null && Number(m[2]) === EIO && m[4] === '0' && m[6] === '0';
    const fired = await anyRuleFired(ctx);
    return judged(CHECKS.robShortUsed, ok, [`${m?.[0] ?? stepProblem(r) ?? r.stdout.trim()}${fired ? '' : NOT_FIRED}`, 'want errno 5 (EIO), zero 0, other 0: only the caller\'s own bytes or the device\'s output in dst'], r.durationMs);
  });
}

/** Processes in D state (uninterruptible or killable sleep) in the guest: "pid comm" lines. */
export async function dState(ctx: GradeContext): Promise<string[]> {
  const r = await ctx.session.run({ shell: `for f in /proc/[0-9]*/stat; do read -r l < "$f" 2>/dev/null || continue; case "$l" in *") D "*) echo "$l" | cut -d' ' -f1-3;; esac; done` }, { timeoutMs: 60_000 });
  return r.stdout.split('\n').filter((l) => l.trim() !== '');
}

/** A waiter on a stalled ring: kill -9 ends it (no D state left), then rmmod with its request still on the ring. */
async function stallKillAndRmmod(ctx: GradeContext): Promise<[CheckResult, CheckResult]> {
  const t0 = Date.now();
  return withFault(ctx, ['stall,opcode=encrypt'], async () => {
    const log = '/tmp/vlab-grade-stall.log';
    const start = await ctx.session.run({ shell: `${quoteForShell(toolArgv(ctx, 'wait', '0'))} > ${log} 2>&1 & echo "pid=$!"` }, { timeoutMs: 60_000 });
    const pid = /^pid=(\d+)$/m.exec(start.stdout)?.[1] ?? '0';
    const held = await until(ctx, (h) => h >= 1, 60_000);
    const kill = await ctx.session.run({ shell: `kill -9 ${pid}; i=0; while [ -e /proc/${pid} ] && [ $i -lt 200 ]; do sleep 0.1; i=$((i+1)); done; test -e /proc/${pid} && echo "alive: $(cut -d' ' -f1-3 /proc/${pid}/stat)" || echo gone` }, { timeoutMs: 60_000 });
    const d = await dState(ctx);
    const gone = /^gone$/m.test(kill.stdout);
    const killMs = Date.now() - t0;
    const noD = judged(CHECKS.robStallKill, gone && d.length === 0, [
      held ? 'the request was held on the stalled ring' : 'the request never reached the ring (held 0)',
      gone ? 'kill -9 ended the waiter' : `kill -9 did not end the waiter: ${kill.stdout.trim()}`,
      ...(d.length ? ['processes in D state:', ...d] : ['no process in D state']),
    ], killMs);
    const t1 = Date.now();
    const rm = await rmmod(ctx.session, ctx.module.name);
    const rmCheck = judged(CHECKS.robStallRmmod, rm.ok, [`rmmod ${ctx.module.name} with the queue stalled: ${rm.output.replace(/\n/g, '; ')}`], Date.now() - t1);
    return [noD, rmCheck];
  });
}

/** A request on a stalled queue must end by the driver's request timeout (ETIMEDOUT). */
async function stallTimeout(ctx: GradeContext): Promise<CheckResult> {
  return withFault(ctx, ['stall,opcode=encrypt'], async () => {
    const r = await runStep(ctx.session, { key: 'timeout', cmd: toolArgv(ctx, 'wait', '0'), timeoutSec: 45 });
    const e = errnoOf(r.stdout);
    const fired = await anyRuleFired(ctx);
    return judged(CHECKS.robStallTimeout, e === ETIMEDOUT, [
      ...(fired ? [] : [`the stall never held the request${NOT_FIRED}`]),
      e === undefined ? `no answer within 45 s: ${stepProblem(r) ?? 'the request did not return'}` : `errno ${e} after ${(r.durationMs / 1000).toFixed(1)} s (want ${ETIMEDOUT} ETIMEDOUT)`,
    ], r.durationMs);
  });
}

export async function robustnessSection(ctx: GradeContext): Promise<CheckResult[]> {
  const specs = [CHECKS.robStatus, CHECKS.robDelay, CHECKS.robIrq, CHECKS.robFlip, CHECKS.robShortUsed, CHECKS.robStallKill, CHECKS.robStallRmmod, CHECKS.robStallTimeout, CHECKS.robRecovers];
  if (ctx.backend !== 'ts') return specs.map((s) => skipped(s, 'fault injection needs the ts back-end (vlab up --backend ts)'));
  ctx.progress('robustness: injected statuses, delay, interrupts, flipped and short output');
  await fault(ctx, 'clear');
  const out: CheckResult[] = [
    await statusCheck(ctx),
    await simpleCheck(ctx, CHECKS.robDelay, ['delay=300,opcode=encrypt,count=1']),
    await irqCheck(ctx),
    await flipCheck(ctx),
    await shortUsedCheck(ctx),
  ];
  ctx.progress('robustness: stalled queue (kill, rmmod, request timeout), recovery');
  const [noD, rm] = await stallKillAndRmmod(ctx);
  out.push(noD, rm);
  const back = await insmod(ctx.session, ctx.module.guestPath, ctx.dev);
  out.push(back.ok ? await stallTimeout(ctx) : judged(CHECKS.robStallTimeout, false, [`insmod after the stall failed: ${back.output}`], 0));
  // The timeout may have left the device broken (ours resets it): rmmod and insmod, then known answers.
  const t0 = Date.now();
  const rm2 = await rmmod(ctx.session, ctx.module.name);
  const again = await insmod(ctx.session, ctx.module.guestPath, ctx.dev);
  if (!rm2.ok || !again.ok) {
    out.push(judged(CHECKS.robRecovers, false, [`rmmod: ${rm2.output}`, `insmod: ${again.output}`], Date.now() - t0));
  } else {
    const kat = await runStep(ctx.session, { key: 'kat', cmd: toolArgv(ctx, 'kat', '--mac'), timeoutSec: 180 });
    const r = byToolLines(CHECKS.robRecovers, kat, 20);
    out.push({ ...r, durationMs: Date.now() - t0 });
  }
  return out;
}
