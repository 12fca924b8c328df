/**
 * Which QEMU the lab runs and what that version needs: its version (from `--version`), its own firmware
 * folder when it was unpacked with `dpkg -x` rather than installed, and the quirks that apply to it.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, realpathSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

export interface QemuVersion {
  readonly major: number;
  readonly minor: number;
  readonly micro: number;
  readonly text: string;
}

export interface QemuInfo {
  readonly binary: string;
  /** Undefined when `--version` could not be run or read: quirks then assume the oldest behaviour. */
  readonly version?: QemuVersion;
  /** `<root>/usr/share/qemu` of an unpacked QEMU (passed as -L); undefined for an installed one. */
  readonly dataDir?: string;
}

export interface QemuQuirk {
  readonly id: string;
  readonly applies: boolean;
  readonly detail: string;
}

export function parseQemuVersion(out: string): QemuVersion | undefined {
  const m = /version (\d+)\.(\d+)(?:\.(\d+))?/.exec(out);
  if (!m) return undefined;
  const micro = m[3] === undefined ? 0 : Number(m[3]);
  return { major: Number(m[1]), minor: Number(m[2]), micro, text: `${m[1]}.${m[2]}.${micro}` };
}

function atLeast(v: QemuVersion, major: number, minor: number): boolean {
  return v.major > major || (v.major === major && v.minor >= minor);
}

/**
 * QEMU 7.2 under TCG segfaults when the guest enables MSI-X on a vhost-user device
 * (kvm_virtio_pci_irqfd_use with a NULL vector_irqfd); 10.0.2 does not. Only those two versions were
 * run here, so the workaround (vectors=0, INTx) stays on for everything before 10.0 and for a QEMU whose
 * version cannot be read.
 */
export const MSIX_FIXED_IN = { major: 10, minor: 0 } as const;

export function msixCrashesUnderTcg(version: QemuVersion | undefined): boolean {
  return version === undefined || !atLeast(version, MSIX_FIXED_IN.major, MSIX_FIXED_IN.minor);
}

/** The quirks the lab knows of and whether each applies to this QEMU (for `vlab doctor`). */
export function qemuQuirks(version: QemuVersion | undefined): QemuQuirk[] {
  const crash = msixCrashesUnderTcg(version);
  return [
    {
      id: 'tcg-vhost-user-msix',
      applies: crash,
      detail: crash
        ? 'TCG + vhost-user + MSI-X crashes QEMU before 10.0 (seen on 7.2): the crypto device runs with vectors=0 (INTx) under TCG'
        : 'no TCG + vhost-user + MSI-X crash from 10.0 on (checked on 10.0.2): the crypto device keeps MSI-X',
    },
    {
      id: 'crypto-session-layout',
      applies: version !== undefined && atLeast(version, 8, 1),
      detail: version !== undefined && atLeast(version, 8, 1)
        ? 'CREATE_CRYPTO_SESSION carries the 1072-byte layout (8.1 and newer); the backend answers in kind'
        : 'CREATE_CRYPTO_SESSION carries the 632-byte layout (before 8.1)',
    },
  ];
}

/**
 * The firmware folder of a QEMU unpacked with `dpkg -x`: the binary is `<root>/usr/bin/<name>` and
 * `<root>/usr/share/qemu` exists, with `<root>` not the host's `/`. An installed QEMU finds its own.
 */
export function qemuDataDir(binary: string): string | undefined {
  let real: string;
  try {
    real = realpathSync(binary);
  } catch {
    return undefined;
  }
  const bin = dirname(real);
  if (basename(bin) !== 'bin' || basename(dirname(bin)) !== 'usr') return undefined;
  const root = dirname(dirname(bin));
  if (root === '/') return undefined;
  const data = join(root, 'usr', 'share', 'qemu');
  return existsSync(data) ? data : undefined;
}

const cache = new Map<string, QemuInfo>();

/** Runs `BINARY --version` (bounded) and looks for a private firmware folder; cached per binary and mtime. */
export function probeQemu(binary: string, timeoutMs = 10_000): QemuInfo {
  let key = binary;
  try {
    key = `${binary}\0${statSync(binary).mtimeMs}`;
  } catch {
    // keep the plain key; the probe below fails the same way every time
  }
  const hit = cache.get(key);
  if (hit) return hit;
  const r = spawnSync(binary, ['--version'], { encoding: 'utf8', timeout: timeoutMs, stdio: ['ignore', 'pipe', 'pipe'] });
  const info: QemuInfo = { binary, version: r.status === 0 ? parseQemuVersion(r.stdout) : undefined, dataDir: qemuDataDir(binary) };
  cache.set(key, info);
  return info;
}
