/**
 * The parts of the host the lab reads (binaries, kernel, /proc, /dev/kvm). Injected so tests can point
 * any of them at a temp dir; `defaultHost()` is the real machine.
 */
import { accessSync, closeSync, constants, existsSync, openSync, readFileSync, readSync, readdirSync, realpathSync, statSync } from 'node:fs';
import { basename, delimiter, dirname, join, resolve } from 'node:path';
import { LabError } from '../common/errors';

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
  /**
   * A kernel that is not installed on the host (virtme-ng style): a bzImage file, the root of a `dpkg -x`
   * of a Debian kernel package, or a kernel build tree (arch/x86/boot/bzImage). Overrides kernelVersion.
   */
  readonly guestKernel?: string;
  /** Its modules: `<dir>/<release>`, `<dir>/lib/modules/<release>` or the release folder itself. */
  readonly guestModules?: string;
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
    guestKernel: env.VLAB_GUEST_KERNEL || undefined,
    guestModules: env.VLAB_GUEST_MODULES || undefined,
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
  /** Where out-of-tree modules build against it (Kbuild's -C): headers or the build tree. */
  readonly buildDir: string;
  /** Set for a kernel not installed on the host: the folder holding `<version>/`, mounted as the guest's /lib/modules. */
  readonly modulesShare?: string;
}

function compareVersions(a: string, b: string): number {
  return a.localeCompare(b, 'en', { numeric: true });
}

/**
 * The guest kernel: the host's kernel package (vmlinuz + modules + build headers, the headers are needed
 * to build the lab's driver). The ABI number is never hard-coded: we look at what is installed.
 */
export function findGuestKernel(host: HostPaths): GuestKernel {
  if (host.guestKernel) return findCustomKernel(host.guestKernel, host.guestModules);
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
  return { version, vmlinuz: join(host.bootDir, `vmlinuz-${version}`), modulesDir: join(host.modulesRoot, version), buildDir: join(host.modulesRoot, version, 'build') };
}

/**
 * The release string a bzImage carries (x86 boot protocol: "HdrS" at 0x202, kernel_version at 0x20E points
 * 0x200 bytes before a NUL-terminated "6.12.95+deb12-amd64 (builder) #1 SMP ..."); undefined if not a bzImage.
 */
export function bzImageRelease(file: string): string | undefined {
  const head = Buffer.alloc(0x10000);
  let n = 0;
  let fd: number | undefined;
  try {
    fd = openSync(file, 'r');
    n = readSync(fd, head, 0, head.length, 0);
  } catch {
    return undefined;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
  if (n < 0x210 || head.toString('latin1', 0x202, 0x206) !== 'HdrS') return undefined;
  const at = head.readUInt16LE(0x20e) + 0x200;
  if (at >= n) return undefined;
  const end = head.indexOf(0, at);
  const text = head.toString('latin1', at, end < 0 || end - at > 256 ? Math.min(n, at + 256) : end);
  const release = text.split(' ')[0];
  return release && /^[\w.+~-]+$/.test(release) ? release : undefined;
}

function isDir(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

/** `<dir>` may be the release folder, a folder holding it, or an INSTALL_MOD_PATH / dpkg -x root. */
function modulesFolderFor(dir: string, release: string): string | undefined {
  for (const c of [dir, join(dir, release), join(dir, 'lib', 'modules', release)]) {
    if (basename(c) === release && isDir(c)) return c;
  }
  return undefined;
}

/**
 * A kernel that is not installed on the host: a bzImage (+ modules folder), a `dpkg -x` tree of a Debian
 * kernel package (boot/vmlinuz-R, lib/modules/R, headers in usr/src via lib/modules/R/build), or a kernel
 * build tree (arch/x86/boot/bzImage + include/config/kernel.release; modules from `--modules`, e.g. after
 * `make modules_install INSTALL_MOD_PATH=DIR`). Its modules must have a modules.dep (depmod).
 */
export function findCustomKernel(kernelPath: string, modulesPath?: string): GuestKernel {
  const path = resolve(kernelPath);
  const bad = (msg: string, fix?: string): never => {
    throw new LabError('missing-kernel', `--kernel ${kernelPath}: ${msg}`, fix);
  };
  let image: string;
  let release: string | undefined;
  let modulesDir: string | undefined;
  let buildDir: string | undefined;
  if (isDir(path)) {
    const treeImage = join(path, 'arch', 'x86', 'boot', 'bzImage');
    if (existsSync(treeImage)) {
      image = treeImage;
      try {
        release = readFileSync(join(path, 'include', 'config', 'kernel.release'), 'utf8').trim();
      } catch {
        release = bzImageRelease(treeImage);
      }
      buildDir = path;
      if (release && !modulesPath) modulesDir = modulesFolderFor(path, release);
    } else {
      const boot = join(path, 'boot');
      let images: string[] = [];
      try {
        images = readdirSync(boot).filter((f) => f.startsWith('vmlinuz-') && isDir(join(path, 'lib', 'modules', f.slice('vmlinuz-'.length)))).sort(compareVersions);
      } catch {
        images = [];
      }
      const newest = images.at(-1);
      if (!newest) return bad('not a bzImage, a kernel build tree (arch/x86/boot/bzImage) or an unpacked kernel package (boot/vmlinuz-R + lib/modules/R)');
      image = join(boot, newest);
      release = newest.slice('vmlinuz-'.length);
      modulesDir = join(path, 'lib', 'modules', release);
    }
  } else if (existsSync(path)) {
    image = path;
    release = bzImageRelease(path);
    if (!release) return bad('not an x86 bzImage (no HdrS header with a version string)');
  } else {
    return bad('no such file or folder');
  }
  if (!release) return bad('cannot tell the kernel release (no include/config/kernel.release)');
  if (modulesPath) {
    modulesDir = modulesFolderFor(resolve(modulesPath), release);
    if (!modulesDir) return bad(`--modules ${modulesPath} holds no ${release}/ folder (give lib/modules/${release} or a folder containing it)`);
  }
  if (!modulesDir) return bad(`kernel ${release}: no modules folder; pass --modules DIR (e.g. after make modules_install INSTALL_MOD_PATH=DIR)`);
  if (!existsSync(join(modulesDir, 'modules.dep'))) {
    return bad(`${modulesDir} has no modules.dep`, `depmod -b ${dirname(dirname(dirname(modulesDir)))} ${release}`);
  }
  const imageRelease = bzImageRelease(image);
  if (imageRelease && imageRelease !== release) return bad(`${image} is kernel ${imageRelease} but the modules are for ${release}`);
  let build = buildDir ?? join(modulesDir, 'build');
  try {
    build = realpathSync(build);
  } catch {
    // kept as is: only `vlab driver build` needs it and reports it missing
  }
  return { version: release, vmlinuz: image, modulesDir, buildDir: build, modulesShare: dirname(modulesDir) };
}
