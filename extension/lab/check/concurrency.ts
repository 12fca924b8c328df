/**
 * The concurrency section: processes on many sessions, threads on one session, and threads sharing a
 * session's implicit IV (the driver must serialise IV users: one sequential CTR keystream). One SSH
 * round trip.
 */
import type { CheckResult } from './grade-report';
import { CHECKS } from './plan';
import { type GradeContext, toolArgv } from './context';
import { runBatch } from './guest-runner';
import { byToolLines } from './api';

export async function concurrencySection(ctx: GradeContext): Promise<CheckResult[]> {
  ctx.progress('concurrency: processes, threads, implicit IV');
  const r = await runBatch(ctx.session, [
    { key: 'procs', cmd: toolArgv(ctx, 'stress', '3', '3', '24'), timeoutSec: 240 },
    { key: 'threads', cmd: toolArgv(ctx, 'inflight', '4', '4', '65536'), timeoutSec: 180 },
    { key: 'iv', cmd: toolArgv(ctx, 'ivrace', '4', '24', '64'), timeoutSec: 180 },
  ]);
  const iv = byToolLines(CHECKS.concImplicitIv, r.get('iv'), 2);
  const stats = /^ivrace .*$/m.exec(r.get('iv')?.stdout ?? '')?.[0];
  return [
    byToolLines(CHECKS.concProcesses, r.get('procs')),
    byToolLines(CHECKS.concThreads, r.get('threads')),
    stats ? { ...iv, evidence: [stats, ...iv.evidence] } : iv,
  ];
}
