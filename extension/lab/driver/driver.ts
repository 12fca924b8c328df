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
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { removeQuietly } from '../common/files';
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
/** The asynchronous-API client (CIOCASYNCCRYPT, CIOCASYNCFETCH, poll), test/guest/async_test.c. */
export const GUEST_ASYNC_TOOL_PATH = '/tmp/vlab-cryptodev-async';

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
  /** The module without debug sections, which is what goes into the guest (smaller to copy and to load; gdb reads `module`). */
  readonly guestModule: string;
  /** False when nothing changed since the last build and make was not run. */
  readonly compiled: boolean;
  readonly tool: string;
  /** 32-bit freestanding client for compat_ioctl (built with gcc -m32; no 32-bit libc needed). */
  readonly compatTool: string;
  /** The asynchronous-API test and bench client (test/guest/async_test.c). */
  readonly asyncTool: string;
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

export function guestAsyncToolSource(): string {
  return join(repoRoot(), 'test', 'guest', 'async_test.c');
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

/** Copies the driver sources into the build folder, leaving unchanged files alone so make stays incremental. Returns the staged names. */
function stageSources(src: string, dst: string): string[] {
  mkdirSync(dst, { recursive: true });
  const staged: string[] = [];
  for (const name of readdirSync(src)) {
    if (!/\.(c|h)$/.test(name) && name !== 'Kbuild' && name !== 'Makefile') continue;
    staged.push(name);
    const from = join(src, name);
    const to = join(dst, name);
    if (existsSync(to) && readFileSync(to).equals(readFileSync(from))) continue;
    copyFileSync(from, to);
  }
  return staged;
}

/** What a build depends on besides the sources: the kernel tree and make's arguments. */
function buildStamp(kdir: string, makeArgs: readonly string[]): string {
  return `${kdir}\n${makeArgs.join(' ')}\n`;
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
  const staged = stageSources(src, out);

  // Kernels built with BTF for modules (Debian's 6.12) run pahole after linking; without pahole (dwarves)
  // the module is built without BTF instead of failing.
  const noBtf = findExecutable('pahole', lab.host.pathEnv) ? [] : ['CONFIG_DEBUG_INFO_BTF_MODULES='];
  const makeArgs = ['-C', kdir, `M=${out}`, 'W=1', ...noBtf, 'modules'];
  const moduleFile = join(out, `${MODULE_NAME}.ko`);
  const stampFile = join(out, '.vlab-build-stamp');
  const stamp = buildStamp(kdir, makeArgs);
  // make itself takes seconds even with nothing to do (kbuild reads the kernel's makefiles): skipped when
  // the module is newer than every staged source and was built against the same tree with the same arguments.
  const upToDate = existsSync(stampFile) && readFileSync(stampFile, 'utf8') === stamp && newerThan(moduleFile, staged.map((n) => join(out, n)));
  const make = upToDate ? { code: 0, output: '' } : await run('make', makeArgs, opts);
  const diagnostics = parseDiagnostics(make.output, out, src);
  // Also after a failed build: the files that did compile keep their entries for clangd.
  const db = updateCompileCommands(out, kdir, src);
  if (db.skipped) opts.onOutput?.(`compile_commands.json not written: ${db.skipped}`);
  if (make.code !== 0) {
    removeQuietly(stampFile);
    throw new DriverError('build', `building ${MODULE_NAME}.ko failed (make exit ${make.code})`, diagnostics, make.output);
  }
  if (!upToDate) writeFileSync(stampFile, stamp);
  const guestModule = join(out, `${MODULE_NAME}.guest.ko`);
  if (!newerThan(guestModule, [moduleFile])) {
    const strip = await run('objcopy', ['--strip-debug', moduleFile, `${guestModule}.tmp`], opts);
    if (strip.code !== 0) throw new DriverError('build', `objcopy --strip-debug ${moduleFile} failed: ${strip.output.trim()}`);
    renameSync(`${guestModule}.tmp`, guestModule);
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
  const asyncSrc = guestAsyncToolSource();
  const asyncTool = join(out, 'vlab-cryptodev-async');
  if (!newerThan(asyncTool, [asyncSrc, abi])) {
    const gcc = await run('gcc', ['-O2', '-Wall', '-Wextra', '-o', asyncTool, asyncSrc, '-lcrypto'], opts);
    if (gcc.code !== 0) {
      throw new DriverError('build', `building the async test tool failed (gcc exit ${gcc.code})`, parseDiagnostics(gcc.output, out, src), gcc.output);
    }
  }
  return {
    kernelVersion: kernel.version,
    module: moduleFile,
    guestModule,
    compiled: !upToDate,
    tool,
    compatTool,
    asyncTool,
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

/** Guest-clock seconds of one swap (swapDriver): copying the module in, rmmod, insmod, /dev/crypto present. */
export interface GuestSwapTimes {
  readonly pushSec: number;
  readonly unloadSec: number;
  readonly loadSec: number;
  readonly readySec: number;
}

export interface SwapResult {
  /** False when the module was already loaded and unloading was not asked for (nothing changed). */
  readonly loaded: boolean;
  /** True when an older instance was unloaded first. */
  readonly unloaded: boolean;
  readonly guest: GuestSwapTimes;
}

const SWAP_LINE = /^vlab-swap (\d+\.\d+) (\d+\.\d+) (\d+\.\d+) (\d+\.\d+) (\d+\.\d+) (loaded|already|fresh)$/m;

/**
 * One SSH round trip: the module arrives on stdin, an instance already loaded is rmmod'ed (when `unload`),
 * the kernel release is checked, insmod, /dev/crypto checked; the guest's uptime is read between steps.
 */
function swapScript(build: DriverBuild, unload: boolean): string {
  const release = build.kernelVersion.replace(/'/g, '');
  const mod = GUEST_MODULE_PATH;
  return [
    'read -r t0 _ </proc/uptime',
    `cat > ${mod}.new && mv -f ${mod}.new ${mod} || exit 90`,
    'read -r t1 _ </proc/uptime',
    'was=fresh',
    `if [ -d /sys/module/${MODULE_NAME} ]; then`,
    unload
      ? `  was=loaded; rmmod ${MODULE_NAME} || { echo "refcnt=$(cat /sys/module/${MODULE_NAME}/refcnt 2>/dev/null)" >&2; exit 87; }`
      : '  echo "vlab-swap $t0 $t1 $t1 $t1 $t1 already"; exit 0',
    'fi',
    'read -r t2 _ </proc/uptime',
    // A module built for another kernel (vlab up --kernel without driver build --kernel) is named as such.
    `r=$(uname -r); if [ "$r" != '${release}' ]; then echo "$r" >&2; exit 86; fi`,
    `insmod ${mod} || { dmesg | tail -n 5 >&2; exit 88; }`,
    'read -r t3 _ </proc/uptime',
    'test -c /dev/crypto || { echo "/dev/crypto did not appear" >&2; exit 89; }',
    'read -r t4 _ </proc/uptime',
    'echo "vlab-swap $t0 $t1 $t2 $t3 $t4 $was"',
  ].join('\n');
}

/** Loads the module (unloading an older instance first when `unload`) in one SSH round trip. */
export async function swapDriver(session: SshSession, build: DriverBuild, unload: boolean): Promise<SwapResult> {
  const r = await guestRun(session, swapScript(build, unload), unload ? 'reloading the driver' : 'loading the driver', { stdin: readFileSync(build.guestModule) });
  const err = r.stderr.trim();
  if (r.code === 86) {
    throw new DriverError('load', `${MODULE_NAME}.ko was built for ${build.kernelVersion} but the guest runs ${err}: build it for that kernel (vlab driver build --kernel PATH, the same PATH as vlab up --kernel)`);
  }
  if (r.code === 87) {
    if (/in use/i.test(err)) {
      const users = /refcnt=(\d+)/.exec(err)?.[1] ?? '?';
      throw new DriverError('busy', `${MODULE_NAME} is in use (${users} open /dev/crypto file(s)); close them first`);
    }
    throw new DriverError('unload', `rmmod ${MODULE_NAME} failed: ${err.replace(/\n?refcnt=\d*$/, '') || 'exit 87'}`);
  }
  if (r.code === 90) throw new DriverError('guest', `copying ${build.module} to the guest failed: ${err}`);
  if (r.code !== 0) throw new DriverError('load', `insmod ${MODULE_NAME} failed: ${err || `exit ${r.code}`}`);
  const m = SWAP_LINE.exec(r.stdout);
  if (!m) throw new DriverError('guest', `unexpected answer from the guest: ${r.stdout.slice(0, 200)}`);
  const t = m.slice(1, 6).map(Number) as [number, number, number, number, number];
  const sec = (a: number, b: number): number => Math.max(0, Math.round((b - a) * 100) / 100);
  return {
    loaded: m[6] !== 'already',
    unloaded: m[6] === 'loaded',
    guest: { pushSec: sec(t[0], t[1]), unloadSec: sec(t[1], t[2]), loadSec: sec(t[2], t[3]), readySec: sec(t[3], t[4]) },
  };
}

/** insmod in the guest; true when it was loaded now, false when it already was. */
export async function loadDriver(session: SshSession, build: DriverBuild): Promise<boolean> {
  return (await swapDriver(session, build, false)).loaded;
}

/** rmmod in the guest; true when it was unloaded now, false when it was not loaded. */
export async function unloadDriver(session: SshSession): Promise<boolean> {
  const r = await guestRun(session, `test -d /sys/module/${MODULE_NAME} || exit 85; rmmod ${MODULE_NAME} && exit 0; echo "refcnt=$(cat /sys/module/${MODULE_NAME}/refcnt 2>/dev/null)" >&2; exit 87`, 'rmmod');
  if (r.code === 85) return false;
  if (r.code !== 0) {
    const err = r.stderr.trim();
    if (/in use/i.test(err)) {
      throw new DriverError('busy', `${MODULE_NAME} is in use (${/refcnt=(\d+)/.exec(err)?.[1] ?? '?'} open /dev/crypto file(s)); close them first`);
    }
    throw new DriverError('unload', `rmmod ${MODULE_NAME} failed: ${err.replace(/\n?refcnt=\d*$/, '') || `exit ${r.code}`}`);
  }
  return true;
}

/** Puts the test tools in the guest (GUEST_TOOL_PATH, GUEST_COMPAT_TOOL_PATH, GUEST_ASYNC_TOOL_PATH). */
export async function pushGuestTool(session: SshSession, build: DriverBuild): Promise<string> {
  await pushFile(session, build.tool, GUEST_TOOL_PATH, true);
  await pushFile(session, build.compatTool, GUEST_COMPAT_TOOL_PATH, true);
  await pushFile(session, build.asyncTool, GUEST_ASYNC_TOOL_PATH, true);
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
