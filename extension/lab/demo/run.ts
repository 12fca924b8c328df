/**
 * `vlab demo` as a list of steps: build, boot, show the virtio-crypto device working in the guest, shut
 * down. Each step returns one summary line; a failed step stops the ones after it except those marked
 * `always` (shutdown). Add a step by inserting it into `demoSteps()`.
 */
import { errorMessage } from '../common/errors';
import { kcapiRoundTrip, procCryptoEntries, virtioCryptoDrivers } from '../guest/checks';
import type { Lab, LabStatus, UpOptions } from '../lab';
import type { VirtioQueueStatus } from '../qemu/qmp-virtio';
import { chatStep } from './chat-step';
import { type DemoContext, type DemoStep, requireSession } from './step';

export interface DemoStepReport {
  readonly id: string;
  readonly title: string;
  readonly ok: boolean;
  readonly skipped: boolean;
  readonly summary: string;
  readonly seconds: number;
  readonly error?: unknown;
}

export interface DemoReport {
  readonly ok: boolean;
  readonly steps: readonly DemoStepReport[];
  readonly seconds: number;
}

/** used idx of data queue 0: from QEMU (builtin backend) or from the ts backend's telemetry (it owns the ring). */
function dataQueueUsed(status: LabStatus): number | undefined {
  const q: VirtioQueueStatus | undefined = status.device?.queues[0];
  if (q?.owner === 'qemu') return q.usedIdx;
  return status.backend.telemetry?.queues[0]?.usedIdx ?? undefined;
}

const upstreamOnly = (ctx: DemoContext): string | undefined =>
  (ctx.options.guestDriver ?? 'upstream') === 'upstream' ? undefined : `skipped (guest driver ${ctx.options.guestDriver})`;

export const buildStep: DemoStep = {
  id: 'build',
  title: 'guest build',
  async run(ctx) {
    const g = await ctx.lab.buildGuest({ signal: ctx.signal, onProgress: (p) => ctx.log(p.message) });
    return `${g.rebuilt ? 'built' : 'cached'} initramfs for kernel ${g.kernel.version} (${g.hash.slice(0, 12)})`;
  },
};

export const bootStep: DemoStep = {
  id: 'boot',
  title: 'boot',
  async run(ctx) {
    const result = await ctx.lab.up(ctx.options, { signal: ctx.signal, onProgress: (p) => ctx.log(p.message) });
    ctx.bootedByDemo = !result.already;
    ctx.accel = result.status.accel ?? undefined;
    ctx.session = await ctx.lab.ssh({ signal: ctx.signal });
    const uname = await ctx.session.run(['uname', '-r'], { timeoutMs: 20_000 });
    if (result.already) return `lab was already running (booted in ${result.status.bootSec ?? '?'} s); using it`;
    return `${result.status.bootSec ?? '?'} s from QEMU start to SSH; guest kernel ${uname.stdout.trim()}`;
  },
};

export const accelStep: DemoStep = {
  id: 'accel',
  title: 'accelerator',
  async run(ctx) {
    return ctx.accel ? `${ctx.accel.kind} — ${ctx.accel.why}` : 'unknown';
  },
};

export const deviceStep: DemoStep = {
  id: 'device',
  title: 'device',
  async run(ctx) {
    const s = await ctx.lab.status();
    const d = s.device;
    if (!d) throw new Error('virtio-crypto device status unavailable over QMP');
    if (!d.started && (ctx.options.guestDriver ?? 'upstream') === 'upstream') throw new Error(`virtio-crypto not started by the guest (status: ${d.status.join(' ') || 'none'})`);
    const feats = [...d.guestFeatures.transports, ...d.guestFeatures.device].map((f) => f.replace(/^VIRTIO_(F_|RING_F_)?/, ''));
    return `${d.name} via ${d.backendType ?? s.backend.kind}: ${d.started ? 'DRIVER_OK' : 'not started'}, ${d.numQueues} queues, features ${feats.join(' ') || 'none'}`;
  },
};

export const driverStep: DemoStep = {
  id: 'driver',
  title: 'guest driver',
  async run(ctx) {
    const skip = upstreamOnly(ctx);
    if (skip) return skip;
    const bound = await virtioCryptoDrivers(requireSession(ctx));
    if (bound.length === 0) throw new Error('no virtio-crypto device visible in the guest');
    const bad = bound.find((b) => b.driver !== 'virtio_crypto');
    if (bad) throw new Error(`${bad.device} is bound to ${bad.driver ?? 'no driver'}, expected virtio_crypto`);
    return `${bound.map((b) => b.device).join(', ')} bound to the upstream virtio_crypto driver`;
  },
};

export const selftestStep: DemoStep = {
  id: 'selftest',
  title: 'crypto self-test',
  async run(ctx) {
    const skip = upstreamOnly(ctx);
    if (skip) return skip;
    const entries = await procCryptoEntries(requireSession(ctx), 'virtio_crypto_aes_cbc');
    const entry = entries[0];
    if (!entry) throw new Error('/proc/crypto has no virtio_crypto_aes_cbc entry');
    if (entry.selftest !== 'passed') throw new Error(`virtio_crypto_aes_cbc selftest: ${entry.selftest ?? 'missing'}`);
    return `/proc/crypto: ${entry.name} by virtio_crypto_aes_cbc (priority ${entry.priority ?? '?'}), selftest passed`;
  },
};

export const roundTripStep: DemoStep = {
  id: 'crypto',
  title: 'crypto check',
  async run(ctx) {
    const skip = upstreamOnly(ctx);
    if (skip) return skip;
    const before = dataQueueUsed(await ctx.lab.status());
    const r = await kcapiRoundTrip(requireSession(ctx), { bytes: 4096 });
    if (!r.ok) throw new Error(`kcapi-enc round trip: ${r.detail}`);
    const after = dataQueueUsed(await ctx.lab.status());
    const through = before !== undefined && after !== undefined ? `; data queue used idx ${before} -> ${after}` : '';
    return `kcapi-enc via virtio_crypto_aes_cbc: ${r.detail}${through}`;
  },
};

export const shutdownStep: DemoStep = {
  id: 'shutdown',
  title: 'shutdown',
  always: true,
  async run(ctx) {
    ctx.session?.close();
    ctx.session = undefined;
    if (ctx.bootedByDemo === false) return 'left running (it was running before the demo)';
    const t0 = Date.now();
    const r = await ctx.lab.down({ onProgress: (p) => ctx.log(p.message) });
    const how = r.qemu === 'powerdown' ? 'ACPI power-off' : r.qemu === 'quit' ? 'QMP quit' : r.qemu === 'terminate' ? 'SIGTERM' : r.qemu === 'kill' ? 'SIGKILL' : 'was not running';
    return `${how} in ${((Date.now() - t0) / 1000).toFixed(1)} s; no lab process left`;
  },
};

/** The demo, in order. Steps that need a running guest come between boot and shutdown. */
export function demoSteps(): DemoStep[] {
  return [buildStep, bootStep, accelStep, deviceStep, driverStep, selftestStep, roundTripStep, chatStep, shutdownStep];
}

export async function runDemo(lab: Lab, steps: readonly DemoStep[], opts: { options: Partial<UpOptions>; signal?: AbortSignal; log(line: string): void }): Promise<DemoReport> {
  // The demo shows both drivers: Linux's upstream virtio_crypto for the kernel crypto API checks, then ours
  // (swapped in by the chat step). A guest driver the caller chose explicitly is kept.
  const options: Partial<UpOptions> = { ...opts.options, guestDriver: opts.options.guestDriver ?? 'upstream' };
  const ctx: DemoContext = { lab, options, signal: opts.signal, log: opts.log };
  const reports: DemoStepReport[] = [];
  const t0 = Date.now();
  let failed = false;
  for (const step of steps) {
    if (failed && !step.always) {
      reports.push({ id: step.id, title: step.title, ok: false, skipped: true, summary: 'not run (an earlier step failed)', seconds: 0 });
      continue;
    }
    const started = Date.now();
    opts.log(`${step.title}...`);
    try {
      const summary = await step.run(ctx);
      reports.push({ id: step.id, title: step.title, ok: true, skipped: false, summary, seconds: (Date.now() - started) / 1000 });
    } catch (err) {
      failed = true;
      reports.push({ id: step.id, title: step.title, ok: false, skipped: false, summary: `FAILED: ${errorMessage(err)}`, seconds: (Date.now() - started) / 1000, error: err });
    }
  }
  ctx.session?.close();
  return { ok: !failed, steps: reports, seconds: (Date.now() - t0) / 1000 };
}

export function formatDemoSummary(report: DemoReport): string {
  const width = Math.max(...report.steps.map((s) => s.title.length));
  const lines = report.steps.map((s) => `  ${s.ok ? 'ok  ' : s.skipped ? '--  ' : 'FAIL'} ${s.title.padEnd(width)}  ${s.summary}`);
  const verdict = report.ok ? 'the virtio-crypto device works in the guest' : 'the demo FAILED (details above)';
  return ['', `VirtIO Crypto Lab demo — ${verdict} (${report.seconds.toFixed(1)} s)`, ...lines, ''].join('\n');
}
