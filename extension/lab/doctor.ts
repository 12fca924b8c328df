/**
 * Host checks for the lab (`vlab doctor`): can this machine build and boot the guest, and if not, the
 * exact command that fixes each problem.
 *
 * Everything the checks read from the outside world goes through `HostEnv` (filesystem root, PATH,
 * /proc, /dev/kvm), so tests can point them at a temp directory laid out like a broken host.
 */
import { execFile } from 'node:child_process';
import { accessSync, closeSync, constants, existsSync, openSync, readFileSync, readdirSync, readlinkSync, readSync, statSync } from 'node:fs';
import { delimiter, isAbsolute, join } from 'node:path';
import { parseQemuVersion, qemuDataDir, qemuQuirks } from './qemu/info';
import { debugPackageFor, vmlinuxCandidates } from './debug/vmlinux';

export interface DoctorCheck {
  /** Short stable name, e.g. "qemu", "kernel", "accelerator". */
  name: string;
  ok: boolean;
  /** 'required': the lab cannot run without it. 'optional': some feature (capture, UI tests) is missing. */
  level: 'required' | 'optional';
  /** What was found, or what is wrong. */
  detail: string;
  /** The exact shell command that fixes it (Debian 12 package names). */
  fix?: string;
}

export interface DoctorReport {
  checks: DoctorCheck[];
  /** False when a required check failed: the lab cannot run. */
  canRun: boolean;
  accel: AccelChoice;
  kernel: GuestKernel | null;
}

export interface AccelChoice {
  kind: 'kvm' | 'tcg';
  /** Human-readable reason, e.g. "/dev/kvm is usable and the CPU has vmx". */
  why: string;
}

export interface GuestKernel {
  /** e.g. "6.1.0-56-amd64" */
  version: string;
  /** Path of the bzImage. */
  image: string;
  /** /lib/modules/<version> */
  modulesDir: string;
  /** /lib/modules/<version>/build (kernel headers for out-of-tree modules), resolved. */
  buildDir: string;
}

/** The outside world as the checks see it. */
export interface HostEnv {
  /** Filesystem root that absolute host paths are resolved under: "/" on the real host. */
  root: string;
  /** Directories searched for executables, already resolved (default: $PATH plus sbin dirs, under root). */
  pathDirs: string[];
  /** proc filesystem (default <root>/proc). */
  procRoot: string;
  /** KVM device node (default <root>/dev/kvm). */
  kvmDevice: string;
  /** Per-probe timeout for running binaries (qemu --version). Default 10000 ms. */
  execTimeoutMs: number;
  /** The QEMU to check: a path (vlab up --qemu, env VLAB_QEMU) or a name searched in pathDirs. */
  qemu: string;
}

const MIN_QEMU: readonly [number, number] = [7, 2];
/** Kernel modules the guest initramfs and the lab's devices need (docs/platform.md#guest). */
const GUEST_MODULES = ['virtio_pci', '9pnet_virtio', '9p', 'overlay', 'virtio_crypto', 'virtio_net'];
/** QEMU objects and devices the lab's command line uses. */
const QEMU_OBJECTS = ['memory-backend-memfd', 'cryptodev-backend-builtin', 'cryptodev-vhost-user'];
const QEMU_DEVICES = ['virtio-crypto-pci', 'virtio-9p-pci', 'virtio-net-pci'];

export function hostEnv(overrides: Partial<HostEnv> = {}): HostEnv {
  const root = overrides.root ?? '/';
  const fromPath = (process.env.PATH ?? '').split(delimiter).filter((d) => d !== '');
  const dirs = [...new Set([...fromPath, '/usr/local/sbin', '/usr/sbin', '/sbin', '/usr/local/bin', '/usr/bin', '/bin'])];
  return {
    root,
    pathDirs: overrides.pathDirs ?? dirs.map((d) => join(root, d)),
    procRoot: overrides.procRoot ?? join(root, 'proc'),
    kvmDevice: overrides.kvmDevice ?? join(root, 'dev', 'kvm'),
    execTimeoutMs: overrides.execTimeoutMs ?? 10_000,
    qemu: overrides.qemu ?? (process.env.VLAB_QEMU || 'qemu-system-x86_64'),
  };
}

const apt = (...packages: string[]): string => `sudo apt-get install -y ${packages.join(' ')}`;

function isExecutableFile(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/** Finds an executable in env.pathDirs. */
export function findExecutable(env: HostEnv, name: string): string | null {
  for (const dir of env.pathDirs) {
    const candidate = join(dir, name);
    try {
      if (statSync(candidate).isFile()) {
        accessSync(candidate, constants.X_OK);
        return candidate;
      }
    } catch {
      // not here
    }
  }
  return null;
}

function run(file: string, args: string[], timeoutMs: number): Promise<{ ok: boolean; out: string }> {
  return new Promise((resolve) => {
    execFile(file, args, { timeout: timeoutMs, maxBuffer: 4 * 1024 * 1024, encoding: 'utf8' }, (err, stdout, stderr) => {
      resolve({ ok: !err, out: `${stdout}${stderr}` });
    });
  });
}

function compareVersions(a: string, b: string): number {
  return a.localeCompare(b, 'en', { numeric: true });
}

/** Resolves a symlink whose absolute target is meant relative to env.root (e.g. .../build -> /usr/src/...). */
function resolveUnderRoot(env: HostEnv, path: string): string {
  try {
    const target = readlinkSync(path);
    return isAbsolute(target) ? join(env.root, target) : join(path, '..', target);
  } catch {
    return path; // not a symlink
  }
}

/** ELF executable without a PT_INTERP program header = statically linked (the initramfs has no libc). */
export function isStaticElf(file: string): boolean {
  const fd = openSync(file, 'r');
  try {
    const header = Buffer.alloc(64);
    if (readSync(fd, header, 0, 64, 0) < 64 || header.readUInt32BE(0) !== 0x7f454c46) return false;
    if (header[4] !== 2 || header[5] !== 1) return false; // 64-bit little-endian only (x86_64 host)
    const phoff = Number(header.readBigUInt64LE(32));
    const phentsize = header.readUInt16LE(54);
    const phnum = header.readUInt16LE(56);
    if (phentsize < 56 || phnum > 256) return false;
    const table = Buffer.alloc(phentsize * phnum);
    if (readSync(fd, table, 0, table.length, phoff) < table.length) return false;
    for (let i = 0; i < phnum; i++) {
      if (table.readUInt32LE(i * phentsize) === 3 /* PT_INTERP */) return false;
    }
    return true;
  } finally {
    closeSync(fd);
  }
}

/** Picks the guest kernel: the newest /boot/vmlinuz-<ver> that has modules and build headers. */
export function findGuestKernel(env: HostEnv): { kernel: GuestKernel | null; problem?: { detail: string; fix: string } } {
  const boot = join(env.root, 'boot');
  let versions: string[] = [];
  try {
    versions = readdirSync(boot).filter((f) => f.startsWith('vmlinuz-')).map((f) => f.slice('vmlinuz-'.length)).sort(compareVersions).reverse();
  } catch {
    // no /boot
  }
  if (versions.length === 0) {
    return { kernel: null, problem: { detail: `no kernel image /boot/vmlinuz-* under ${env.root}`, fix: apt('linux-image-amd64', 'linux-headers-amd64') } };
  }
  let firstProblem: { detail: string; fix: string } | undefined;
  for (const version of versions) {
    const image = join(boot, `vmlinuz-${version}`);
    const modulesDir = join(env.root, 'lib', 'modules', version);
    const buildDir = resolveUnderRoot(env, join(modulesDir, 'build'));
    let problem: { detail: string; fix: string } | undefined;
    try {
      accessSync(image, constants.R_OK);
    } catch {
      problem = { detail: `${image} is not readable by this user`, fix: `sudo chmod 0644 ${join('/boot', `vmlinuz-${version}`)}` };
    }
    if (!problem && !existsSync(join(modulesDir, 'modules.dep'))) {
      problem = { detail: `kernel ${version} has no modules (${modulesDir}/modules.dep missing)`, fix: apt(`linux-image-${version}`) };
    }
    if (!problem && !existsSync(join(buildDir, 'Makefile'))) {
      problem = { detail: `kernel ${version} has no build headers (${join(modulesDir, 'build')})`, fix: apt(`linux-headers-${version}`) };
    }
    if (!problem) return { kernel: { version, image, modulesDir, buildDir } };
    firstProblem ??= problem;
  }
  return { kernel: null, problem: firstProblem };
}

/** Modules from GUEST_MODULES absent from the kernel's modules.dep (built-in ones count as present). */
function missingGuestModules(kernel: GuestKernel): string[] {
  const dep = readFileSync(join(kernel.modulesDir, 'modules.dep'), 'utf8');
  let builtin = '';
  try {
    builtin = readFileSync(join(kernel.modulesDir, 'modules.builtin'), 'utf8');
  } catch {
    // optional file
  }
  const names = new Set<string>();
  for (const text of [dep, builtin]) {
    for (const m of text.matchAll(/(?:^|\/)([\w-]+)\.ko(?:\.\w+)?(?=[:\s]|$)/gm)) names.add(m[1]!.replace(/-/g, '_'));
  }
  return GUEST_MODULES.filter((m) => !names.has(m));
}

/** KVM only when /dev/kvm opens read-write AND the CPU has vmx/svm (docs/platform.md#kvm); otherwise TCG. */
export function detectAccel(env: HostEnv): AccelChoice {
  let flags = '';
  try {
    const cpuinfo = readFileSync(join(env.procRoot, 'cpuinfo'), 'utf8');
    flags = cpuinfo.split('\n').find((l) => /^flags\s*:/.test(l)) ?? '';
  } catch {
    return { kind: 'tcg', why: `cannot read ${join(env.procRoot, 'cpuinfo')}` };
  }
  const virt = /\b(vmx|svm)\b/.exec(flags)?.[1];
  try {
    closeSync(openSync(env.kvmDevice, 'r+'));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    return { kind: 'tcg', why: `${env.kvmDevice} cannot be opened (${code})${virt ? '' : ' and the CPU has no vmx/svm flag'}` };
  }
  if (!virt) {
    return { kind: 'tcg', why: `${env.kvmDevice} opens but the CPU has no vmx/svm flag (nested software KVM cannot run a stock kernel)` };
  }
  return { kind: 'kvm', why: `${env.kvmDevice} is usable and the CPU has ${virt}` };
}

async function checkQemu(env: HostEnv): Promise<DoctorCheck[]> {
  const fix = apt('qemu-system-x86');
  const bin = env.qemu.includes('/') ? (isExecutableFile(env.qemu) ? env.qemu : null) : findExecutable(env, env.qemu);
  if (!bin) return [{ name: 'qemu', ok: false, level: 'required', detail: env.qemu.includes('/') ? `${env.qemu} is not an executable file` : `${env.qemu} not found in PATH`, fix }];
  const version = await run(bin, ['--version'], env.execTimeoutMs);
  const m = /version (\d+)\.(\d+)(?:\.(\d+))?/.exec(version.out);
  if (!version.ok || !m) {
    return [{ name: 'qemu', ok: false, level: 'required', detail: `${bin} --version failed: ${version.out.trim().slice(0, 200)}`, fix }];
  }
  const [major, minor] = [Number(m[1]), Number(m[2])];
  const text = `${m[1]}.${m[2]}${m[3] !== undefined ? `.${m[3]}` : ''}`;
  if (major < MIN_QEMU[0] || (major === MIN_QEMU[0] && minor < MIN_QEMU[1])) {
    return [{ name: 'qemu', ok: false, level: 'required', detail: `${bin} is QEMU ${text}; ${MIN_QEMU.join('.')} or newer is needed`, fix: `sudo apt-get install -y --only-upgrade qemu-system-x86` }];
  }
  const dataDir = qemuDataDir(bin);
  const checks: DoctorCheck[] = [{ name: 'qemu', ok: true, level: 'required', detail: `${bin} (QEMU ${text})${dataDir ? `, unpacked: firmware from ${dataDir} (-L)` : ''}` }];
  const quirks = qemuQuirks(parseQemuVersion(version.out));
  checks.push({
    name: 'qemu-quirks',
    ok: true,
    level: 'required',
    detail: quirks.map((q) => `${q.applies ? 'applies' : 'not needed'}: ${q.detail}`).join('; '),
  });
  // Each device is asked for its own options: the full `-device help` makes an unpacked QEMU (dpkg -x) load
  // every display module it knows, and it finds the installed QEMU's modules, which abort it.
  const [objects, ...devices] = await Promise.all([
    run(bin, ['-machine', 'none', '-object', 'help'], env.execTimeoutMs),
    ...QEMU_DEVICES.map((d) => run(bin, ['-machine', 'none', '-device', `${d},help`], env.execTimeoutMs)),
  ]);
  const missing = [
    ...QEMU_OBJECTS.filter((o) => !new RegExp(`^\\s*${o}\\s*$`, 'm').test(objects.out)),
    ...QEMU_DEVICES.filter((d, i) => !devices[i]!.out.includes(`${d} options:`)),
  ];
  checks.push(missing.length === 0
    ? { name: 'qemu-features', ok: true, level: 'required', detail: `has ${[...QEMU_OBJECTS, ...QEMU_DEVICES].join(', ')}` }
    : { name: 'qemu-features', ok: false, level: 'required', detail: `this QEMU lacks ${missing.join(', ')}`, fix: apt('qemu-system-x86') });
  return checks;
}

function checkKernel(env: HostEnv): { checks: DoctorCheck[]; kernel: GuestKernel | null } {
  const { kernel, problem } = findGuestKernel(env);
  if (!kernel) {
    return { kernel: null, checks: [{ name: 'kernel', ok: false, level: 'required', detail: problem!.detail, fix: problem!.fix }] };
  }
  const checks: DoctorCheck[] = [{ name: 'kernel', ok: true, level: 'required', detail: `${kernel.version}: ${kernel.image}, modules and build headers present` }];
  const missing = missingGuestModules(kernel);
  checks.push(missing.length === 0
    ? { name: 'kernel-modules', ok: true, level: 'required', detail: `${GUEST_MODULES.join(', ')} available` }
    : { name: 'kernel-modules', ok: false, level: 'required', detail: `kernel ${kernel.version} lacks modules: ${missing.join(', ')}`, fix: apt('linux-image-amd64', 'linux-headers-amd64') });
  return { checks, kernel };
}

function checkBusybox(env: HostEnv): DoctorCheck {
  const fix = apt('busybox-static');
  const bin = findExecutable(env, 'busybox');
  if (!bin) return { name: 'busybox-static', ok: false, level: 'required', detail: 'busybox not found', fix };
  let isStatic = false;
  try {
    isStatic = isStaticElf(bin);
  } catch {
    // unreadable: reported as not static
  }
  return isStatic
    ? { name: 'busybox-static', ok: true, level: 'required', detail: `${bin} (statically linked)` }
    : { name: 'busybox-static', ok: false, level: 'required', detail: `${bin} is dynamically linked; the initramfs needs the static build`, fix };
}

function checkFile(name: string, path: string, fix: string, what: string): DoctorCheck {
  try {
    accessSync(path, constants.X_OK);
    return { name, ok: true, level: 'required', detail: path };
  } catch {
    return { name, ok: false, level: 'required', detail: `${what} not found (${path})`, fix };
  }
}

function checkTool(env: HostEnv, name: string, binary: string, level: DoctorCheck['level'], pkg: string, purpose: string): DoctorCheck {
  const bin = findExecutable(env, binary);
  return bin
    ? { name, ok: true, level, detail: bin }
    : { name, ok: false, level, detail: `${binary} not found (${purpose})`, fix: apt(pkg) };
}

function checkMemfd(env: HostEnv): DoctorCheck {
  // memfd_create arrived in Linux 3.17; QEMU's memory-backend-memfd support is checked with qemu-features.
  try {
    const release = readFileSync(join(env.procRoot, 'sys', 'kernel', 'osrelease'), 'utf8').trim();
    const [major = 0, minor = 0] = release.split(/[.-]/).map(Number);
    if (major > 3 || (major === 3 && minor >= 17)) {
      return { name: 'shared-memory', ok: true, level: 'required', detail: `host kernel ${release} has memfd_create (vhost-user shares guest RAM through it)` };
    }
    return { name: 'shared-memory', ok: false, level: 'required', detail: `host kernel ${release} predates memfd_create (3.17)`, fix: apt('linux-image-amd64') + ' && sudo reboot' };
  } catch {
    return { name: 'shared-memory', ok: false, level: 'required', detail: `cannot read ${join(env.procRoot, 'sys/kernel/osrelease')}`, fix: 'sudo mount -t proc proc /proc' };
  }
}

/** vmlinux with DWARF for the guest kernel (vlab gdb); without it gdb gets names from /proc/kallsyms only. */
function checkKernelDebugSymbols(env: HostEnv, kernel: GuestKernel): DoctorCheck {
  const name = 'kernel-dbg';
  const found = vmlinuxCandidates(kernel.version, { debugRoot: join(env.root, 'usr', 'lib', 'debug'), modulesRoot: join(env.root, 'lib', 'modules') }).find((p) => existsSync(p));
  return found
    ? { name, ok: true, level: 'optional', detail: `${found} (vlab gdb: kernel types, lines and locals)` }
    : {
        name,
        ok: false,
        level: 'optional',
        detail: `no vmlinux with DWARF for ${kernel.version}: vlab gdb uses names from the guest's /proc/kallsyms (package ${debugPackageFor(kernel.version)}, a large download)`,
        fix: apt(debugPackageFor(kernel.version)),
      };
}

/** Runs every check. Never throws for a missing item: each problem becomes a failed check with a fix. */
export async function runDoctor(env: HostEnv = hostEnv()): Promise<DoctorReport> {
  const accel = detectAccel(env);
  const kernel = checkKernel(env);
  const checks: DoctorCheck[] = [
    ...(await checkQemu(env)),
    ...kernel.checks,
    checkBusybox(env),
    checkFile('sshd', join(env.root, 'usr', 'sbin', 'sshd'), apt('openssh-server'), 'OpenSSH server (runs inside the guest)'),
    checkTool(env, 'ssh-keygen', 'ssh-keygen', 'required', 'openssh-client', 'generates the per-lab keys'),
    { name: 'accelerator', ok: true, level: 'required', detail: `${accel.kind.toUpperCase()}: ${accel.why}` },
    checkMemfd(env),
    checkTool(env, 'kcapi-tools', 'kcapi-enc', 'optional', 'kcapi-tools', 'guest crypto checks through AF_ALG'),
    checkTool(env, 'tcpdump', 'tcpdump', 'optional', 'tcpdump', 'reading packet captures'),
    checkTool(env, 'chromium', 'chromium', 'optional', 'chromium', 'UI end-to-end tests'),
    checkTool(env, 'clangd', 'clangd', 'optional', 'clangd', 'code intelligence in guest/driver from the compile_commands.json vlab driver build writes'),
    checkTool(env, 'gdb', 'gdb', 'optional', 'gdb', 'vlab gdb: debugging the guest kernel and crash dumps'),
    // Only with a guest kernel: without one the kernel check above already says what to install.
    ...(kernel.kernel ? [checkKernelDebugSymbols(env, kernel.kernel)] : []),
  ];
  return { checks, canRun: checks.every((c) => c.ok || c.level === 'optional'), accel, kernel: kernel.kernel };
}
