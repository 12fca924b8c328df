/** The extension's settings (all under "vlab."), read into the core's option types. */
import * as vscode from 'vscode';
import type { UpOptions } from '../lab/lab';
import { DEFAULT_UP_OPTIONS as D } from '../lab/up-options';

export const SECTION = 'vlab';

export interface LabSettings {
  up: Partial<UpOptions>;
  /** env overrides the core reads (VLAB_QEMU, VLAB_KERNEL) */
  env: Record<string, string>;
  ringsRefreshMs: number;
  statusRefreshMs: number;
  stopVmOnExit: boolean;
  benchmarkSeconds: number;
  chatCrypto: 'auto' | 'none' | 'cryptodev' | 'software';
  /** Build Driver when a guest/driver .c or .h is saved. */
  driverBuildOnSave: boolean;
}

function clampInt(v: unknown, min: number, max: number, fallback: number): number {
  return typeof v === 'number' && Number.isFinite(v) ? Math.min(max, Math.max(min, Math.round(v))) : fallback;
}

function oneOf<T extends string>(v: unknown, allowed: readonly T[], fallback: T): T {
  return typeof v === 'string' && (allowed as readonly string[]).includes(v) ? (v as T) : fallback;
}

export function readSettings(): LabSettings {
  const c = vscode.workspace.getConfiguration(SECTION);
  const env: Record<string, string> = {};
  const qemu = c.get<string>('qemuPath', '').trim();
  const kernel = c.get<string>('kernelVersion', '').trim();
  if (qemu) env.VLAB_QEMU = qemu;
  if (kernel) env.VLAB_KERNEL = kernel;
  return {
    up: {
      // Fallbacks are the CLI's defaults (package.json declares the same; a unit test compares them).
      backend: oneOf(c.get('backend'), ['ts', 'builtin'] as const, D.backend),
      engine: oneOf(c.get('engine'), ['auto', 'openssl', 'node', 'cryptodev'] as const, D.engine),
      accel: oneOf(c.get('accelerator'), ['auto', 'kvm', 'tcg'] as const, D.accel),
      guestDriver: oneOf(c.get('guestDriver'), ['lab', 'upstream', 'none'] as const, D.guestDriver),
      memoryMb: clampInt(c.get('memoryMb'), 256, 65536, D.memoryMb),
      cpus: clampInt(c.get('cpus'), 1, 64, D.cpus),
      bootTimeoutMs: clampInt(c.get('bootTimeoutSec'), 10, 3600, D.bootTimeoutMs / 1000) * 1000,
    },
    env,
    ringsRefreshMs: clampInt(c.get('rings.refreshMs'), 20, 5000, 200),
    statusRefreshMs: clampInt(c.get('statusRefreshMs'), 250, 60000, 1000),
    stopVmOnExit: c.get<boolean>('stopVmOnExit', true),
    benchmarkSeconds: Math.min(60, Math.max(0.1, Number(c.get('benchmark.secondsPerCase', 1)) || 1)),
    chatCrypto: oneOf(c.get('chat.crypto'), ['auto', 'none', 'cryptodev', 'software'] as const, 'auto'),
    driverBuildOnSave: c.get<boolean>('driver.buildOnSave', false),
  };
}
