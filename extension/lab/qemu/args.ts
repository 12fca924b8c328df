/**
 * QEMU's command line, built from data. Everything the VM is made of is visible in `QemuSpec`; the
 * builder only spells it the way QEMU (7.2 to 10.0) wants it. `vlab up --dry-run` prints the result.
 */
import type { AccelKind } from '../host/accel';
import { type QemuInfo, msixCrashesUnderTcg } from './info';

export type CryptoBackendSpec =
  /** QEMU's own software implementation (the reference). */
  | { readonly kind: 'builtin' }
  /** An out-of-process vhost-user backend listening on `socket` (QEMU connects to it). */
  | { readonly kind: 'vhost-user'; readonly socket: string };

export interface QemuSpec {
  readonly binary: string;
  /** Shown in `ps` and used to recognise our process (also matched against /proc/PID/cmdline). */
  readonly name: string;
  readonly accel: AccelKind;
  readonly memoryMb: number;
  readonly cpus: number;
  readonly kernel: string;
  readonly initrd: string;
  readonly kernelCmdline: string;
  readonly qmpSocket: string;
  /** Optional second QMP monitor (a chardev serves one client at a time; a long-lived watcher gets its own). */
  readonly qmpWatchSocket?: string;
  readonly consoleLog: string;
  /** Host loopback port forwarded to the guest's sshd. */
  readonly sshPort: number;
  /** Host folder shared read-write at the same absolute path in the guest. */
  readonly workspace: string;
  /**
   * The project's own folder (bin/vlab.js, out/, node_modules), shared read-only at its absolute path when
   * the guest would not see it through the root share (it lives under a folder the guest replaces with an
   * empty tmpfs, see guestHiddenDirs) and it is not inside the workspace. Undefined: not needed.
   */
  readonly projectShare?: string;
  readonly crypto: CryptoBackendSpec;
  /**
   * What is known of the binary (version, private firmware folder). Undefined: an unknown QEMU, treated
   * like the oldest supported one (the MSI-X workaround stays on).
   */
  readonly qemu?: QemuInfo;
  /**
   * Host folder holding `<release>/` module trees for a kernel that is not installed on the host (see
   * host.ts `findGuestKernel`): shared read-only and mounted over the guest's /lib/modules.
   */
  readonly modulesShare?: string;
  /**
   * Debugging (`vlab up --gdb`): QEMU's gdbstub on 127.0.0.1:gdbPort (loopback only, like SSH), and a
   * pvpanic device with `-action panic=pause` so that a guest panic pauses the VM for a crash dump
   * instead of ending QEMU (extension/lab/debug/panic.ts).
   */
  readonly gdbPort?: number;
}

/** 9p mount tags the guest init looks for. */
export const ROOT_TAG = 'vlabroot';
export const WORKSPACE_TAG = 'vlabws';
export const PROJECT_TAG = 'vlabpkg';
export const MODULES_TAG = 'vlabmods';

/** Host folders the guest init covers with an empty tmpfs (guest/init/init): nothing below them shows. */
export const GUEST_HIDDEN_DIRS: readonly string[] = ['/tmp', '/root', '/run'];

function isInside(child: string, parent: string): boolean {
  return child === parent || child.startsWith(parent.endsWith('/') ? parent : `${parent}/`);
}

/**
 * The folder to pass as `projectShare`: the project itself when the guest cannot see it otherwise
 * (e.g. a clone under /tmp or in root's home used with a workspace elsewhere), else undefined.
 */
export function projectShareFor(projectRoot: string, workspace: string): string | undefined {
  if (isInside(projectRoot, workspace)) return undefined;
  return GUEST_HIDDEN_DIRS.some((d) => isInside(projectRoot, d)) ? projectRoot : undefined;
}

/** QEMU option values are comma-separated key=value lists; a literal comma is written twice. */
export function optValue(value: string): string {
  return value.replace(/,/g, ',,');
}

function opts(parts: Record<string, string | number | undefined>): string {
  return Object.entries(parts)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => (k.startsWith('_') ? String(v) : `${k}=${typeof v === 'string' ? optValue(v) : String(v)}`))
    .join(',');
}

export function validateSpec(spec: QemuSpec): void {
  if (!Number.isInteger(spec.memoryMb) || spec.memoryMb < 256 || spec.memoryMb > 65536) throw new RangeError(`memory ${spec.memoryMb} MB: must be an integer from 256 to 65536`);
  if (!Number.isInteger(spec.cpus) || spec.cpus < 1 || spec.cpus > 64) throw new RangeError(`cpus ${spec.cpus}: must be an integer from 1 to 64`);
  if (!Number.isInteger(spec.sshPort) || spec.sshPort < 1 || spec.sshPort > 65535) throw new RangeError(`ssh port ${spec.sshPort} out of range`);
  if (spec.gdbPort !== undefined && (!Number.isInteger(spec.gdbPort) || spec.gdbPort < 1 || spec.gdbPort > 65535 || spec.gdbPort === spec.sshPort)) throw new RangeError(`gdb port ${spec.gdbPort} out of range`);
  if (!spec.workspace.startsWith('/')) throw new Error(`workspace must be an absolute path: ${spec.workspace}`);
  if (spec.projectShare !== undefined && !spec.projectShare.startsWith('/')) throw new Error(`project share must be an absolute path: ${spec.projectShare}`);
  if (spec.modulesShare !== undefined && !spec.modulesShare.startsWith('/')) throw new Error(`modules share must be an absolute path: ${spec.modulesShare}`);
}

export function buildQemuArgs(spec: QemuSpec): string[] {
  validateSpec(spec);
  const args: string[] = [];
  const add = (...a: string[]): void => {
    args.push(...a);
  };

  add('-name', opts({ _: optValue(spec.name), process: spec.name }));
  add('-nodefaults', '-no-user-config', '-display', 'none', '-no-reboot');
  // An unpacked QEMU (dpkg -x) would otherwise load the installed QEMU's firmware and option ROMs.
  if (spec.qemu?.dataDir) add('-L', spec.qemu.dataDir);
  add('-machine', 'q35');
  if (spec.accel === 'kvm') add('-accel', 'kvm', '-cpu', 'host');
  else add('-accel', 'tcg', '-cpu', 'max');
  add('-smp', String(spec.cpus), '-m', `${spec.memoryMb}M`);
  // vhost-user backends map guest RAM themselves: it must be a shareable fd (memfd, share=on), and it is
  // attached through a NUMA node so that all of RAM comes from that one backend.
  add('-object', opts({ _: 'memory-backend-memfd', id: 'mem0', size: `${spec.memoryMb}M`, share: 'on' }));
  add('-numa', 'node,memdev=mem0');

  add('-chardev', opts({ _: 'file', id: 'con0', path: spec.consoleLog }), '-serial', 'chardev:con0');
  add('-qmp', `unix:${optValue(spec.qmpSocket)},server=on,wait=off`);
  if (spec.qmpWatchSocket) {
    add('-chardev', opts({ _: 'socket', id: 'qmpw', path: spec.qmpWatchSocket, server: 'on', wait: 'off' }));
    add('-mon', 'chardev=qmpw,mode=control');
  }

  add('-kernel', spec.kernel, '-initrd', spec.initrd, '-append', spec.kernelCmdline);

  // Host root read-only, cached in the guest (cache=loose is chosen by the guest's mount options): boot is
  // ~3x faster than uncached. multidevs=remap keeps inode numbers unique across host filesystems.
  add('-fsdev', opts({ _: 'local', id: 'fs0', path: '/', security_model: 'none', readonly: 'on', multidevs: 'remap' }));
  add('-device', opts({ _: 'virtio-9p-pci', fsdev: 'fs0', mount_tag: ROOT_TAG }));
  // The workspace again, read-write and uncached, so files rebuilt on the host are seen at once.
  add('-fsdev', opts({ _: 'local', id: 'fs1', path: spec.workspace, security_model: 'none', multidevs: 'remap' }));
  add('-device', opts({ _: 'virtio-9p-pci', fsdev: 'fs1', mount_tag: WORKSPACE_TAG }));
  if (spec.projectShare) {
    // The project (guest-side chat peers and tools run its bin/vlab.js) where the root share cannot show it.
    add('-fsdev', opts({ _: 'local', id: 'fs2', path: spec.projectShare, security_model: 'none', readonly: 'on', multidevs: 'remap' }));
    add('-device', opts({ _: 'virtio-9p-pci', fsdev: 'fs2', mount_tag: PROJECT_TAG }));
  }
  if (spec.modulesShare) {
    // The booted kernel's modules when they are not in the host's /lib/modules (guest/init mounts them there).
    add('-fsdev', opts({ _: 'local', id: 'fs3', path: spec.modulesShare, security_model: 'none', readonly: 'on', multidevs: 'remap' }));
    add('-device', opts({ _: 'virtio-9p-pci', fsdev: 'fs3', mount_tag: MODULES_TAG }));
  }

  if (spec.gdbPort !== undefined) {
    add('-gdb', `tcp:127.0.0.1:${spec.gdbPort}`);
    add('-device', 'pvpanic', '-action', 'panic=pause');
  }

  add('-netdev', opts({ _: 'user', id: 'n0', hostfwd: `tcp:127.0.0.1:${spec.sshPort}-:22` }));
  add('-device', 'virtio-net-pci,netdev=n0');

  if (spec.crypto.kind === 'builtin') {
    add('-object', 'cryptodev-backend-builtin,id=c0');
    add('-device', 'virtio-crypto-pci,id=crypto0,cryptodev=c0');
  } else {
    add('-chardev', opts({ _: 'socket', id: 'vu0', path: spec.crypto.socket }));
    add('-object', 'cryptodev-vhost-user,id=c0,chardev=vu0');
    // QEMU 7.2 under TCG segfaults when the guest enables MSI-X on a vhost-user device: vhost wires the
    // vector's irqfd through kvm_virtio_pci_irqfd_use(), whose vector_irqfd table only exists with KVM
    // (NULL deref). vectors=0 makes the device use INTx, which takes the non-irqfd path. QEMU 10.0.2 does not
    // crash (MSI-X kept there); see qemu-info.ts for the boundary and what was verified.
    const vectors = spec.accel === 'tcg' && msixCrashesUnderTcg(spec.qemu?.version) ? ',vectors=0' : '';
    add('-device', `virtio-crypto-pci,id=crypto0,cryptodev=c0${vectors}`);
  }
  return args;
}

/** The command line as one POSIX-shell-safe string (for --dry-run and logs). */
export function formatCommandLine(binary: string, args: readonly string[]): string {
  const quote = (a: string): string => (/^[A-Za-z0-9_\/.,:=+@%-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`);
  return [binary, ...args].map(quote).join(' ');
}
