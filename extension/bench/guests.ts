/**
 * The guests a VM benchmark runs in (`vlab bench e2e`, `vlab bench latency`): one VM per backend, with
 * our driver and the guest tool, each in its own temporary state folder so a lab the user has running
 * is left alone; always torn down.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildDriver, pushGuestTool } from '../lab/driver/driver';
import { LabError, errorMessage, throwIfAborted } from '../lab/common/errors';
import type { Lab } from '../lab/lab';
import { labWithDriver } from '../lab/with-driver';
import type { SshSession } from '../lab/guest/ssh';
import type { BackendKind } from '../lab/state';

/** One guest boot a benchmark did: QEMU start to SSH, as `vlab status` reports it. */
export interface BenchBoot {
  readonly backend: BackendKind;
  readonly bootSec: number;
}

export interface BenchGuest {
  readonly lab: Lab;
  readonly session: SshSession;
  /** The first backend's guest (where a benchmark runs its software baselines once). */
  readonly first: boolean;
}

export interface BenchGuestsOptions {
  readonly workspace: string;
  readonly backends: readonly BackendKind[];
  readonly env?: NodeJS.ProcessEnv;
  readonly signal?: AbortSignal;
  readonly onProgress?: (message: string) => void;
}

export interface BenchGuestsResult {
  readonly accel: string;
  readonly accelWhy?: string;
  readonly boots: BenchBoot[];
}

/**
 * Boots one guest per backend, builds and pushes the driver and guest tool, runs FN in it, always
 * tears down. NAME ("bench e2e") prefixes an error with the backend it happened on.
 */
export async function eachBenchGuest(
  name: string,
  opts: BenchGuestsOptions,
  fn: (backend: BackendKind, guest: BenchGuest) => Promise<void>,
): Promise<BenchGuestsResult> {
  let accel = 'unknown';
  let accelWhy: string | undefined;
  const boots: BenchBoot[] = [];
  for (const [i, backend] of opts.backends.entries()) {
    throwIfAborted(opts.signal);
    const stateDir = mkdtempSync(join(tmpdir(), 'vlab-bench-'));
    const lab = labWithDriver(opts.workspace, { stateDir, env: opts.env });
    try {
      opts.onProgress?.(`booting a guest with the ${backend} backend`);
      const { status } = await lab.up({ backend, guestDriver: 'lab' }, { signal: opts.signal });
      accel = status.accel?.kind ?? accel;
      accelWhy = status.accel?.why ?? accelWhy;
      if (status.bootSec !== undefined) boots.push({ backend, bootSec: status.bootSec });
      const build = await buildDriver(lab, { signal: opts.signal });
      const session = await lab.ssh({ signal: opts.signal });
      try {
        await pushGuestTool(session, build);
        await fn(backend, { lab, session, first: i === 0 });
      } finally {
        session.close();
      }
    } catch (err) {
      // A lab failure keeps its kind, fix and evidence (console tail) for the CLI's error printer.
      if (err instanceof LabError) throw new LabError(err.kind, `${name} (${backend}): ${err.message}`, err.fix, err.details);
      throw new Error(`${name} (${backend}): ${errorMessage(err)}`);
    } finally {
      await lab.down().catch(() => undefined);
      rmSync(stateDir, { recursive: true, force: true });
    }
  }
  return { accel, ...(accelWhy ? { accelWhy } : {}), boots };
}
