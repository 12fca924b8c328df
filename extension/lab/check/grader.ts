/**
 * `vlab check driver`: grades a /dev/crypto driver in the running lab — ours (guest/driver) by default,
 * or a user's module loaded in its place — section by section (plan.ts), and gives the report
 * (grade-report.ts). The module graded is unloaded afterwards and ours loaded again if it was before.
 */
import { existsSync } from 'node:fs';
import { readSnapshotOrNull } from '../../../backend/telemetry/client';
import { GUEST_MODULE_PATH, GUEST_TOOL_PATH, MODULE_NAME, buildDriver, pushFile, pushGuestTool, type DriverLoadTarget, isDriverLoaded, loadDriver } from '../driver/driver';
import type { LabStatus } from '../lab';
import type { SshSession } from '../guest/ssh';
import type { CheckResult, GradeReport, GradedDriver } from './grade-report';
import type { GradeContext } from './context';
import { apiSection } from './api';
import { concurrencySection } from './concurrency';
import { robustnessSection } from './robustness';
import { hygieneSection, sessionCounts } from './hygiene';
import { conformanceBaseline, conformanceSection } from './conformance';
import { insmod, moduleNameOf, rmmod } from './module';
import { type AfalgBinding, AfalgLoadError, AFALG_DRIVER_NAME, GUEST_AFALG_TOOL, UPSTREAM_MODULE, afalgChecks, prepareAfalg } from './afalg';

/** Where a user's module is put in the guest (a tmpfs there). */
export const GUEST_GRADED_MODULE = '/tmp/vlab-graded-module.ko';

export type GradeErrorKind = 'no-lab' | 'usage' | 'load';

export class GradeError extends Error {
  override readonly name = 'GradeError';
  constructor(readonly kind: GradeErrorKind, message: string) {
    super(message);
  }
}

export interface GradeTarget extends DriverLoadTarget {
  status(): Promise<LabStatus>;
  ssh(opts: { readonly signal?: AbortSignal; readonly timeoutMs?: number }): Promise<SshSession>;
}

/** SSH handshake limit: the TCG guest on a loaded host can take far longer than the usual 10 s. */
const SSH_HANDSHAKE_MS = 60_000;

export interface GradeOptions {
  /** Host path of a .ko to grade in place of ours. */
  readonly modulePath?: string;
  /** The device node (default /dev/crypto). */
  readonly dev?: string;
  /** Grade upstream virtio_crypto through AF_ALG instead of a /dev/crypto driver (afalg.ts). */
  readonly afalg?: boolean;
  readonly signal?: AbortSignal;
  readonly onProgress?: (line: string) => void;
}

const DEV_PATH = /^\/dev\/[A-Za-z0-9._/-]{1,64}$/;

interface Loaded {
  readonly driver: GradedDriver;
  readonly module: { readonly name: string; readonly guestPath: string };
  /** Undoes the load (the user's module out, ours back in if it was in). */
  readonly restore: () => Promise<void>;
}

async function loadGraded(session: SshSession, lab: GradeTarget, opts: GradeOptions, dev: string): Promise<Loaded> {
  const build = await buildDriver(lab, { signal: opts.signal });
  await pushGuestTool(session, build);
  if (!opts.modulePath) {
    await loadDriver(session, build);
    const has = await session.run({ shell: `test -c '${dev}'` }, { timeoutMs: 60_000 });
    if (has.code !== 0) throw new GradeError('load', `${MODULE_NAME} is loaded but ${dev} is not a character device`);
    return { driver: { kind: 'ours', name: MODULE_NAME, dev }, module: { name: MODULE_NAME, guestPath: GUEST_MODULE_PATH }, restore: async () => undefined };
  }
  const name = moduleNameOf(opts.modulePath);
  const oursWasLoaded = await isDriverLoaded(session);
  for (const n of new Set([MODULE_NAME, name])) {
    const r = await rmmod(session, n);
    if (!r.ok) throw new GradeError('load', `cannot unload ${n} to make room for ${opts.modulePath}: ${r.output} (close what holds ${dev})`);
  }
  await pushFile(session, opts.modulePath, GUEST_GRADED_MODULE);
  const restore = async (): Promise<void> => {
    await rmmod(session, name);
    if (oursWasLoaded) await insmod(session, GUEST_MODULE_PATH, '/dev/crypto');
  };
  const r = await insmod(session, GUEST_GRADED_MODULE, dev);
  if (!r.ok) {
    await restore();
    throw new GradeError('load', `insmod ${opts.modulePath} failed or made no ${dev}: ${r.output}`);
  }
  return { driver: { kind: 'module', name, modulePath: opts.modulePath, dev }, module: { name, guestPath: GUEST_GRADED_MODULE }, restore };
}

export async function gradeDriver(lab: GradeTarget, opts: GradeOptions = {}): Promise<GradeReport> {
  if (opts.afalg && (opts.modulePath !== undefined || opts.dev !== undefined)) throw new GradeError('usage', '--afalg grades upstream virtio_crypto: it takes no --module or --dev');
  const dev = opts.dev ?? '/dev/crypto';
  if (!DEV_PATH.test(dev) || dev.includes('..')) throw new GradeError('usage', `--dev wants a path under /dev (got ${dev})`);
  if (opts.modulePath !== undefined && (!opts.modulePath.endsWith('.ko') || !existsSync(opts.modulePath))) {
    throw new GradeError('usage', `--module wants an existing .ko file (got ${opts.modulePath})`);
  }
  const status = await lab.status();
  if (status.state !== 'running') throw new GradeError('no-lab', `the lab is ${status.state}${status.reason ? ` (${status.reason})` : ''}: start it with vlab up`);
  if (status.backend.kind === 'ts' && !(await readSnapshotOrNull(lab.paths.telemetrySocket))) {
    throw new GradeError('no-lab', `the ts back-end does not answer on ${lab.paths.telemetrySocket}`);
  }
  const startedAt = new Date().toISOString();
  const t0 = Date.now();
  const progress = opts.onProgress ?? (() => undefined);
  const session = await lab.ssh({ signal: opts.signal, timeoutMs: SSH_HANDSHAKE_MS });
  try {
    if (opts.afalg) return await gradeAfalg(session, lab, status, progress, startedAt, t0);
    progress('building and loading the driver and the guest tool');
    const loaded = await loadGraded(session, lab, opts, dev);
    const ctx: GradeContext = {
      session, tool: GUEST_TOOL_PATH, dev, backend: status.backend.kind,
      telemetrySocket: lab.paths.telemetrySocket, module: loaded.module, progress,
    };
    const marker = `vlab-grade-start-${process.pid}-${t0}`;
    await session.run({ shell: `echo '${marker}' > /dev/kmsg` }, { timeoutMs: 60_000 });
    const start = await conformanceBaseline(ctx);
    const sessionsAtStart = await sessionCounts(ctx);
    const checks: CheckResult[] = [];
    try {
      checks.push(...await apiSection(ctx));
      checks.push(...await concurrencySection(ctx));
      const sessionsAfterApi = await sessionCounts(ctx);
      checks.push(...await robustnessSection(ctx));
      checks.push(...await hygieneSection(ctx, marker, sessionsAtStart, sessionsAfterApi));
      checks.push(...await conformanceSection(ctx, start, t0));
    } finally {
      await loaded.restore();
    }
    return {
      schema: 1, driver: loaded.driver, backend: status.backend.kind, kernel: status.kernelVersion ?? 'unknown',
      startedAt, durationMs: Date.now() - t0, checks,
      total: { points: checks.reduce((n, c) => n + c.points, 0), earned: checks.reduce((n, c) => n + c.earned, 0) },
    };
  } finally {
    session.close();
  }
}

async function gradeAfalg(session: SshSession, lab: GradeTarget, status: LabStatus, progress: (line: string) => void, startedAt: string, t0: number): Promise<GradeReport> {
  progress(`building the AF_ALG guest tool, binding ${UPSTREAM_MODULE}`);
  let binding: AfalgBinding;
  try {
    binding = await prepareAfalg(session, lab);
  } catch (err) {
    if (err instanceof AfalgLoadError) throw new GradeError('load', err.message);
    throw err;
  }
  const ctx: GradeContext = {
    session, tool: GUEST_AFALG_TOOL, dev: '', backend: status.backend.kind,
    telemetrySocket: lab.paths.telemetrySocket, module: { name: UPSTREAM_MODULE, guestPath: '' }, progress,
  };
  let checks: CheckResult[];
  try {
    checks = await afalgChecks(ctx, t0);
  } finally {
    await binding.restore();
  }
  return {
    schema: 1, driver: { kind: 'afalg', name: `${UPSTREAM_MODULE} (${AFALG_DRIVER_NAME})` }, backend: status.backend.kind, kernel: status.kernelVersion ?? 'unknown',
    startedAt, durationMs: Date.now() - t0, checks,
    total: { points: checks.reduce((n, c) => n + c.points, 0), earned: checks.reduce((n, c) => n + c.earned, 0) },
  };
}
