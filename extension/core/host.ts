/**
 * The parts of the host the lab reads (binaries, kernel, /proc, /dev/kvm). Injected so tests can point
 * any of them at a temp dir; `defaultHost()` is the real machine.
 */
import { accessSync, constants, existsSync, readdirSync, statSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { LabError } from './errors';

export interface HostPaths {
  /** QEMU binary name or absolute path (searched on PATH when it has no slash). */
  readonly qemu: string;
  readonly busybox: string;
  readonly sshd: string;
  readonly sshKeygen: string;
  readonly devKvm: string;
  readonly cpuinfo: string;
  readonly bootDir: string;
  readonly modulesRoot: string;
  readonly procRoot: string;
  /** Kernel version to boot; undefined = the newest one with a vmlinuz, modules and build headers. */
  readonly kernelVersion?: string;
  readonly pathEnv: string;
}

export function defaultHost(env: NodeJS.ProcessEnv = process.env): HostPaths {
  return {
    qemu: env.VLAB_QEMU ?? 'qemu-system-x86_64',
    busybox: '/bin/busybox',
    sshd: '/usr/sbin/sshd',
    sshKeygen: 'ssh-keygen',
    devKvm: '/dev/kvm',
    cpuinfo: '/proc/cpuinfo',
    bootDir: '/boot',
    modulesRoot: '/lib/modules',
    procRoot: '/proc',
    kernelVersion: env.VLAB_KERNEL || undefined,
    pathEnv: [env.PATH ?? process.env.PATH ?? '/usr/bin:/bin', '/usr/sbin', '/sbin'].join(delimiter),
  };
}

/** Absolute path of an executable, or undefined. */
export function findExecutable(nameOrPath: string, pathEnv: string): string | undefined {
  const isExec = (p: string): boolean => {
    try {
      accessSync(p, constants.X_OK);
      return statSync(p).isFile();
    } catch {
      return false;
    }
  };
  if (nameOrPath.includes('/')) return isExec(nameOrPath) ? nameOrPath : undefined;
  for (const dir of pathEnv.split(delimiter)) {
    if (dir && isExec(join(dir, nameOrPath))) return join(dir, nameOrPath);
  }
  return undefined;
}

export function requireQemu(host: HostPaths): string {
  const found = findExecutable(host.qemu, host.pathEnv);
  if (!found) {
    throw new LabError('missing-qemu', `QEMU binary "${host.qemu}" not found`, 'sudo apt-get install -y qemu-system-x86');
  }
  return found;
}

export interface GuestKernel {
  readonly version: string;
  readonly vmlinuz: string;
  readonly modulesDir: string;
}

function compareVersions(a: string, b: string): number {
  return a.localeCompare(b, 'en', { numeric: true });
}

/**
 * The guest kernel: the host's kernel package (vmlinuz + modules + build headers, the headers are needed
 * to build the lab's driver). The ABI number is never hard-coded: we look at what is installed.
 */
export function findGuestKernel(host: HostPaths): GuestKernel {
  const fix = 'sudo apt-get install -y linux-image-amd64 linux-headers-amd64';
  const complete = (v: string): boolean =>
    existsSync(join(host.bootDir, `vmlinuz-${v}`)) &&
    existsSync(join(host.modulesRoot, v, 'modules.dep')) &&
    existsSync(join(host.modulesRoot, v, 'build'));
  let version = host.kernelVersion;
  if (version) {
    if (!complete(version)) {
      throw new LabError('missing-kernel', `kernel ${version}: need ${join(host.bootDir, `vmlinuz-${version}`)}, its modules and build headers`, fix);
    }
  } else {
    let candidates: string[] = [];
    try {
      candidates = readdirSync(host.modulesRoot).filter(complete).sort(compareVersions);
    } catch {
      candidates = [];
    }
    version = candidates.at(-1);
    if (!version) {
      throw new LabError('missing-kernel', `no guest kernel found (need ${host.bootDir}/vmlinuz-VERSION with ${host.modulesRoot}/VERSION/modules.dep and build headers)`, fix);
    }
  }
  return { version, vmlinuz: join(host.bootDir, `vmlinuz-${version}`), modulesDir: join(host.modulesRoot, version) };
}
