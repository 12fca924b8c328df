/**
 * The lab's guest kernel driver (guest/driver, vlab_cryptodev.ko): build it against the guest kernel's
 * headers, push it into the running guest over SSH and insmod/rmmod it there. Also builds the guest test
 * tool (test/guest/cryptodev_test.c) the driver suites and `vlab bench e2e` run in the guest.
 *
 * Artefacts go to <state>/guest/driver/ (sources are staged there so the repository stays clean and a
 * read-only checkout works); clangd's compile_commands.json goes next to the sources (compile-commands.ts). They reach the guest as SSH stdin, never through the 9p shares, because the
 * host-root share is cache=loose and would serve a stale module after a rebuild.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { errorMessage } from '../common/errors';
import { findExecutable, findGuestKernel } from '../host/host';
import type { HostPaths } from '../host/host';
import type { LabPaths } from '../common/paths';
import type { SshSession } from '../guest/ssh';
import { repoRoot as findRepoRoot } from '../common/repo-root';
import { updateCompileCommands } from './compile-commands';
import { type Diagnostic, parseDiagnostics } from './diagnostics';

export { type Diagnostic, formatDiagnostic, parseDiagnostics } from './diagnostics';

export const MODULE_NAME = 'vlab_cryptodev';
/** Where the module and the tool are placed in the guest (a tmpfs there). */
export const GUEST_MODULE_PATH = `/tmp/${MODULE_NAME}.ko`;
export const GUEST_TOOL_PATH = '/tmp/vlab-cryptodev-test';
/** The 32-bit client that exercises compat_ioctl. */
export const GUEST_COMPAT_TOOL_PATH = '/tmp/vlab-cryptodev-compat32';

export type DriverErrorKind = 'build' | 'missing-tool' | 'load' | 'unload' | 'busy' | 'guest';

export class DriverError extends Error {
  override readonly name = 'DriverError';
  constructor(
    readonly kind: DriverErrorKind,
    message: string,
    readonly diagnostics: readonly Diagnostic[] = [],
    readonly output?: string,
  ) {
    super(message);
  }
}

export interface DriverBuild {
  readonly kernelVersion: string;
  readonly module: string;
  readonly tool: string;
  /** 32-bit freestanding client for compat_ioctl (built with gcc -m32; no 32-bit libc needed). */
  readonly compatTool: string;
  readonly seconds: number;
  /** Compiler warnings (the build uses W=1; the driver is expected to have none). */
  readonly warnings: readonly Diagnostic[];
  /** The clangd database written next to the sources (undefined when that folder is read-only). */
  readonly compileCommands?: string;
}

/** What a build needs of a lab: where the guest kernel is and where artefacts go. */
export type DriverBuildTarget = { readonly host: HostPaths; readonly paths: LabPaths };

/** What loading needs of a lab besides the build: an SSH session into its running guest. */
export interface DriverLoadTarget extends DriverBuildTarget {
  ssh(opts: { readonly signal?: AbortSignal }): Promise<SshSession>;
}

export interface DriverBuildOptions {
  readonly signal?: AbortSignal;
  /** The driver sources (default: the repository's guest/driver). */
  readonly sourceDir?: string;
  /** Streams the build's output lines (make, gcc). */
  readonly onOutput?: (line: string) => void;
}

const repoRoot = (): string => findRepoRoot(['guest', 'driver', 'Kbuild']);

export function driverSourceDir(): string {
  return join(repoRoot(), 'guest', 'driver');
}

export function guestToolSource(): string {
  return join(repoRoot(), 'test', 'guest', 'cryptodev_test.c');
}

export function guestCompatToolSource(): string {
  return join(repoRoot(), 'test', 'guest', 'compat32.c');
}

export function driverBuildDir(lab: DriverBuildTarget): string {
  const inState = join(lab.paths.guestDir, 'driver');
  // Kbuild's M= cannot hold spaces or make's special characters; a workspace path with them builds in
  // a private folder named after the state folder instead.
  if (/^[A-Za-z0-9_/.+-]+$/.test(inState)) return inState;
  const uid = process.getuid?.() ?? 0;
  const key = createHash('sha256').update(inState).digest('hex').slice(0, 16);
  const dir = join(tmpdir(), `vlab-kbuild-${uid}-${key}`);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const st = statSync(dir);
  if (st.uid !== uid || (st.mode & 0o022) !== 0) {
    throw new DriverError('build', `refusing to build in ${dir}: not a private folder of this user`);
  }
  return dir;
}

function run(cmd: string, args: readonly string[], opts: DriverBuildOptions & { cwd?: string }): Promise<{ code: number; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'], signal: opts.signal });
    let output = '';
    let pending = '';
    const onData = (chunk: Buffer): void => {
      const text = chunk.toString('utf8');
      // Bound what we keep: a runaway build must not eat the heap.
      if (output.length < 4 * 1024 * 1024) output += text;
      pending += text;
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const l of lines) opts.onOutput?.(l);
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') reject(new DriverError('missing-tool', `${cmd} not found: install it (sudo apt-get install -y make gcc libssl-dev linux-headers-amd64)`));
      else reject(err);
    });
    child.on('close', (code) => {
      if (pending) opts.onOutput?.(pending);
      resolve({ code: code ?? 1, output });
    });
  });
}

/** Copies the driver sources into the build folder, leaving unchanged files alone so make stays incremental. */
function stageSources(src: string, dst: string): void {
  mkdirSync(dst, { recursive: true });
  for (const name of readdirSync(src)) {
    if (!/\.(c|h)$/.test(name) && name !== 'Kbuild' && name !== 'Makefile') continue;
    const from = join(src, name);
    const to = join(dst, name);
    if (existsSync(to) && readFileSync(to).equals(readFileSync(from))) continue;
    copyFileSync(from, to);
  }
}

function newerThan(target: string, sources: readonly string[]): boolean {
  if (!existsSync(target)) return false;
  const t = statSync(target).mtimeMs;
  return sources.every((s) => statSync(s).mtimeMs <= t);
}

/**
 * Builds vlab_cryptodev.ko (Kbuild, W=1) against the guest kernel's headers and the guest test tool.
 * Throws DriverError('build') with file:line diagnostics when the compiler says no.
 */
export async function buildDriver(lab: DriverBuildTarget, opts: DriverBuildOptions = {}): Promise<DriverBuild> {
  const t0 = Date.now();
  const kernel = findGuestKernel(lab.host);
  const kdir = kernel.buildDir;
  const src = opts.sourceDir ?? driverSourceDir();
  const out = driverBuildDir(lab);
  stageSources(src, out);

  // Kernels built with BTF for modules (Debian's 6.12) run pahole after linking; without pahole (dwarves)
  // the module is built without BTF instead of failing.
  const noBtf = findExecutable('pahole', lab.host.pathEnv) ? [] : ['CONFIG_DEBUG_INFO_BTF_MODULES='];
  const make = await run('make', ['-C', kdir, `M=${out}`, 'W=1', ...noBtf, 'modules'], opts);
  const diagnostics = parseDiagnostics(make.output, out, src);
  // Also after a failed build: the files that did compile keep their entries for clangd.
  const db = updateCompileCommands(out, kdir, src);
  if (db.skipped) opts.onOutput?.(`compile_commands.json not written: ${db.skipped}`);
  if (make.code !== 0) {
    throw new DriverError('build', `building ${MODULE_NAME}.ko failed (make exit ${make.code})`, diagnostics, make.output);
  }

  const toolSrc = guestToolSource();
  const abi = join(driverSourceDir(), 'cryptodev_abi.h');
  const tool = join(out, 'vlab-cryptodev-test');
  if (!newerThan(tool, [toolSrc, abi])) {
    const gcc = await run('gcc', ['-O2', '-Wall', '-Wextra', '-o', tool, toolSrc, '-lcrypto'], opts);
    if (gcc.code !== 0) {
      throw new DriverError('build', `building the guest test tool failed (gcc exit ${gcc.code})`, parseDiagnostics(gcc.output, out, src), gcc.output);
    }
  }
  const compatSrc = guestCompatToolSource();
  const compatTool = join(out, 'vlab-cryptodev-compat32');
  if (!newerThan(compatTool, [compatSrc])) {
    const flags = ['-m32', '-static', '-nostdlib', '-ffreestanding', '-fno-pic', '-fno-stack-protector', '-O1', '-Wall'];
    const gcc = await run('gcc', [...flags, '-o', compatTool, compatSrc], opts);
    if (gcc.code !== 0) {
      throw new DriverError('build', `building the 32-bit compat client failed (gcc exit ${gcc.code})`, parseDiagnostics(gcc.output, out, src), gcc.output);
    }
  }
  return {
    kernelVersion: kernel.version,
    module: join(out, `${MODULE_NAME}.ko`),
    tool,
    compatTool,
    seconds: Math.round((Date.now() - t0) / 100) / 10,
    warnings: diagnostics.filter((d) => d.severity === 'warning'),
    compileCommands: db.file,
  };
}

async function guestRun(session: SshSession, shell: string, what: string, opts: { stdin?: Buffer; timeoutMs?: number } = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await session.run({ shell }, { stdin: opts.stdin, timeoutMs: opts.timeoutMs ?? 60_000 });
    return { code: r.code ?? -1, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    throw new DriverError('guest', `${what}: ${errorMessage(err)}`);
  }
}

export async function isDriverLoaded(session: SshSession): Promise<boolean> {
  const r = await guestRun(session, `test -d /sys/module/${MODULE_NAME}`, 'checking the module');
  return r.code === 0;
}

/** Copies a host file into the guest (SSH stdin) and makes it executable when asked. */
export async function pushFile(session: SshSession, hostPath: string, guestPath: string, executable = false): Promise<void> {
  const q = `'${guestPath.replace(/'/g, `'\\''`)}'`;
  const r = await guestRun(session, `cat > ${q}.new && ${executable ? `chmod 0755 ${q}.new && ` : ''}mv -f ${q}.new ${q}`, `copying ${hostPath} to the guest`, {
    stdin: readFileSync(hostPath),
  });
  if (r.code !== 0) throw new DriverError('guest', `copying ${hostPath} to the guest failed: ${r.stderr.trim()}`);
}

/** insmod in the guest; true when it was loaded now, false when it already was. */
export async function loadDriver(session: SshSession, build: DriverBuild): Promise<boolean> {
  if (await isDriverLoaded(session)) return false;
  await pushFile(session, build.module, GUEST_MODULE_PATH);
  // A module built for another kernel (vlab up --kernel without driver build --kernel) is named as such.
  const release = build.kernelVersion.replace(/'/g, '');
  const r = await guestRun(session, `r=$(uname -r); if [ "$r" != '${release}' ]; then echo "$r" >&2; exit 86; fi; insmod ${GUEST_MODULE_PATH} && test -c /dev/crypto`, 'insmod');
  if (r.code === 86) {
    throw new DriverError('load', `${MODULE_NAME}.ko was built for ${build.kernelVersion} but the guest runs ${r.stderr.trim()}: build it for that kernel (vlab driver build --kernel PATH, the same PATH as vlab up --kernel)`);
  }
  if (r.code !== 0) {
    const dmesg = await guestRun(session, 'dmesg | tail -n 5', 'reading dmesg');
    throw new DriverError('load', `insmod ${MODULE_NAME} failed: ${r.stderr.trim() || `exit ${r.code}`}\n${dmesg.stdout.trim()}`);
  }
  return true;
}

/** rmmod in the guest; true when it was unloaded now, false when it was not loaded. */
export async function unloadDriver(session: SshSession): Promise<boolean> {
  if (!(await isDriverLoaded(session))) return false;
  const r = await guestRun(session, `rmmod ${MODULE_NAME}`, 'rmmod');
  if (r.code !== 0) {
    if (/in use/i.test(r.stderr)) {
      const users = await guestRun(session, `cat /sys/module/${MODULE_NAME}/refcnt`, 'reading refcnt');
      throw new DriverError('busy', `${MODULE_NAME} is in use (${users.stdout.trim()} open /dev/crypto file(s)); close them first`);
    }
    throw new DriverError('unload', `rmmod ${MODULE_NAME} failed: ${r.stderr.trim() || `exit ${r.code}`}`);
  }
  return true;
}

/** Puts the test tools in the guest (GUEST_TOOL_PATH, GUEST_COMPAT_TOOL_PATH). */
export async function pushGuestTool(session: SshSession, build: DriverBuild): Promise<string> {
  await pushFile(session, build.tool, GUEST_TOOL_PATH, true);
  await pushFile(session, build.compatTool, GUEST_COMPAT_TOOL_PATH, true);
  return GUEST_TOOL_PATH;
}

/**
 * The guest-driver step of `vlab up --guest-driver lab` (composed in by extension/lab/with-driver.ts):
 * build (incremental) and load the driver once SSH is up.
 */
export async function loadLabDriver(lab: DriverLoadTarget, opts: DriverBuildOptions = {}): Promise<DriverBuild> {
  const build = await buildDriver(lab, opts);
  const session = await lab.ssh({ signal: opts.signal });
  try {
    await loadDriver(session, build);
  } finally {
    session.close();
  }
  return build;
}
