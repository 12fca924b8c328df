/**
 * Builds what the guest boots from: per-lab SSH keys (client key + pinned host key) and a gzipped newc
 * initramfs holding busybox-static, the modules needed to mount the 9p root (resolved with
 * modules.dep) and the lab's init scripts. Cached by a content hash of every input: a second build
 * with the same inputs does nothing.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import { type CpioEntry, writeCpio } from './cpio';
import { LabError, errorMessage, throwIfAborted } from '../common/errors';
import { type GuestKernel, type HostPaths, findExecutable, findGuestKernel } from '../host/host';
import { loadModuleIndex, parseModulesBuiltin, resolveModules } from './modules-dep';
import type { LabPaths } from '../common/paths';
import { repoRoot } from '../common/repo-root';

const execFileAsync = promisify(execFile);

/** Bump when the layout of the initramfs changes in a way the input hash cannot see. */
const BUILD_FORMAT = 3;

/** Modules stage 1 needs to mount the host root (9p over virtio-pci) and the overlays. */
export const INITRAMFS_MODULES = ['virtio_pci', '9pnet_virtio', '9p', 'overlay'] as const;

export interface GuestProgress {
  readonly step: string;
  readonly message: string;
}

export interface GuestBuildOptions {
  readonly signal?: AbortSignal;
  readonly onProgress?: (p: GuestProgress) => void;
  /** Folder with the guest init scripts (`init`, `stage2`); default: <repo>/guest/init. */
  readonly initDir?: string;
}

export interface GuestArtifacts {
  readonly kernel: GuestKernel;
  readonly initramfs: string;
  readonly clientKey: string;
  /** The guest's host public key in OpenSSH one-line form ("ssh-ed25519 AAAA..."), for pinning. */
  readonly hostPublicKey: string;
  readonly hash: string;
  /** False when the cached build was reused. */
  readonly rebuilt: boolean;
}

interface Manifest {
  readonly format: number;
  readonly hash: string;
  readonly kernelVersion: string;
  readonly modules: readonly string[];
  readonly builtAt: string;
}

const DECOMPRESSORS: Readonly<Record<string, readonly [string, string]>> = { xz: ['xz', 'xz-utils'], zst: ['zstd', 'zstd'], gz: ['gzip', 'gzip'] };

async function decompressModule(file: string, host: HostPaths, signal: AbortSignal | undefined): Promise<Buffer> {
  const ext = /\.ko\.(xz|zst|gz)$/.exec(file)?.[1];
  const tool = ext ? DECOMPRESSORS[ext] : undefined;
  if (!tool) throw new LabError('guest-build', `unsupported kernel module format: ${file}`);
  const bin = findExecutable(tool[0], host.pathEnv);
  if (!bin) throw new LabError('missing-tool', `${tool[0]} not found (needed to unpack ${file})`, `sudo apt-get install -y ${tool[1]}`);
  try {
    const { stdout } = await execFileAsync(bin, ['-dc', file], { signal, encoding: 'buffer', maxBuffer: 64 << 20 });
    return stdout;
  } catch (err) {
    throwIfAborted(signal);
    throw new LabError('guest-build', `unpacking ${file} failed: ${errorMessage(err)}`);
  }
}

export function defaultInitDir(): string {
  return join(repoRoot(['guest', 'init', 'init']), 'guest', 'init');
}

async function ensureKeys(paths: LabPaths, host: HostPaths, signal: AbortSignal | undefined, progress: (p: GuestProgress) => void): Promise<void> {
  mkdirSync(paths.sshDir, { recursive: true, mode: 0o700 });
  const keygen = findExecutable(host.sshKeygen, host.pathEnv);
  for (const [file, comment] of [[paths.clientKey, 'vlab-client'], [paths.hostKey, 'vlab-guest-host']] as const) {
    if (existsSync(file) && existsSync(`${file}.pub`)) continue;
    if (!keygen) throw new LabError('missing-tool', `${host.sshKeygen} not found (needed to make the lab's SSH keys)`, 'sudo apt-get install -y openssh-client');
    progress({ step: 'keys', message: `generating ${comment} key` });
    try {
      await execFileAsync(keygen, ['-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', file], { signal });
    } catch (err) {
      throwIfAborted(signal);
      throw new LabError('guest-build', `ssh-keygen failed: ${errorMessage(err)}`);
    }
  }
}

function readInput(path: string, what: string, fix?: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new LabError(fix ? 'missing-tool' : 'guest-build', `cannot read ${what} ${path}: ${(err as NodeJS.ErrnoException).code ?? errorMessage(err)}`, fix);
  }
}

function publicKeyLine(pubFile: string): string {
  const fields = readFileSync(pubFile, 'utf8').trim().split(/\s+/);
  if (fields.length < 2 || !fields[0]!.startsWith('ssh-')) throw new LabError('guest-build', `malformed public key ${pubFile}`);
  return `${fields[0]} ${fields[1]}`;
}

export function readManifest(paths: LabPaths): Manifest | undefined {
  try {
    const parsed = JSON.parse(readFileSync(paths.guestManifest, 'utf8')) as Partial<Manifest>;
    return typeof parsed.hash === 'string' && parsed.format === BUILD_FORMAT ? (parsed as Manifest) : undefined;
  } catch {
    return undefined;
  }
}

export async function buildGuest(paths: LabPaths, host: HostPaths, opts: GuestBuildOptions = {}): Promise<GuestArtifacts> {
  const progress = opts.onProgress ?? ((): void => undefined);
  const signal = opts.signal;
  throwIfAborted(signal);
  const kernel = findGuestKernel(host);
  await ensureKeys(paths, host, signal, progress);
  throwIfAborted(signal);

  const initDir = opts.initDir ?? defaultInitDir();
  const initScript = readInput(join(initDir, 'init'), 'guest init script');
  const stage2 = readInput(join(initDir, 'stage2'), 'guest init stage 2');
  const busybox = readInput(host.busybox, 'busybox', 'sudo apt-get install -y busybox-static');
  let builtin = new Set<string>();
  try {
    builtin = parseModulesBuiltin(readFileSync(join(kernel.modulesDir, 'modules.builtin'), 'utf8'));
  } catch {
    // Without modules.builtin every wanted module must exist as a file; resolveModules reports which is missing.
  }
  let modulePaths: string[];
  try {
    modulePaths = resolveModules(loadModuleIndex(kernel.modulesDir), INITRAMFS_MODULES, builtin);
  } catch (err) {
    throw new LabError('missing-kernel', `kernel ${kernel.version}: ${errorMessage(err)}`, 'sudo apt-get install --reinstall -y linux-image-amd64');
  }
  const modules: { rel: string; name: string; data: Buffer }[] = [];
  for (const rel of modulePaths) {
    const file = rel.split('/').at(-1)!;
    const raw = readInput(join(kernel.modulesDir, rel), 'kernel module');
    // busybox insmod reads plain .ko only: compressed modules (Debian's 6.12 ships .ko.xz) are unpacked here.
    modules.push({ rel, name: file.replace(/\.ko\.(xz|zst|gz)$/, '.ko'), data: file.endsWith('.ko') ? raw : await decompressModule(join(kernel.modulesDir, rel), host, signal) });
  }
  const authorizedKey = `${publicKeyLine(`${paths.clientKey}.pub`)} vlab-client\n`;
  const hostKeyPrivate = readInput(paths.hostKey, 'guest host key');

  const hash = createHash('sha256');
  const feed = (label: string, data: Buffer | string): void => {
    hash.update(`${label}\0${Buffer.byteLength(data)}\0`);
    hash.update(data);
  };
  feed('format', String(BUILD_FORMAT));
  feed('kernel', kernel.version);
  feed('kernel-modules', kernel.modulesDir);
  feed('init', initScript);
  feed('stage2', stage2);
  feed('busybox', busybox);
  for (const m of modules) feed(`module:${m.rel}`, m.data);
  feed('authorized_keys', authorizedKey);
  feed('host_key', hostKeyPrivate);
  const digest = hash.digest('hex');
  const hostPublicKey = publicKeyLine(`${paths.hostKey}.pub`);

  const manifest = readManifest(paths);
  if (manifest && manifest.hash === digest && existsSync(paths.initramfs)) {
    progress({ step: 'cached', message: `guest artefacts up to date (${digest.slice(0, 12)})` });
    return { kernel, initramfs: paths.initramfs, clientKey: paths.clientKey, hostPublicKey, hash: digest, rebuilt: false };
  }

  progress({ step: 'modules', message: `kernel ${kernel.version}: ${modules.length} modules (${modules.map((m) => m.name.replace(/\.ko$/, '')).join(', ')})` });
  const entries: CpioEntry[] = [
    { type: 'dir', path: 'bin' },
    { type: 'dir', path: 'dev' },
    { type: 'chardev', path: 'dev/console', major: 5, minor: 1, mode: 0o600 },
    { type: 'dir', path: 'proc' },
    { type: 'dir', path: 'sys' },
    { type: 'dir', path: 'newroot' },
    { type: 'file', path: 'bin/busybox', data: busybox, mode: 0o755 },
    { type: 'file', path: 'init', data: initScript, mode: 0o755 },
    { type: 'dir', path: 'vlab' },
    { type: 'file', path: 'vlab/stage2', data: stage2, mode: 0o755 },
    { type: 'dir', path: 'vlab/ssh', mode: 0o700 },
    { type: 'file', path: 'vlab/ssh/host_key', data: hostKeyPrivate, mode: 0o600 },
    { type: 'file', path: 'vlab/ssh/authorized_keys', data: Buffer.from(authorizedKey), mode: 0o644 },
    { type: 'dir', path: 'vlab/modules' },
    ...modules.map((m): CpioEntry => ({ type: 'file', path: `vlab/modules/${m.name}`, data: m.data })),
    { type: 'file', path: 'vlab/modules.list', data: Buffer.from(modules.map((m) => `${m.name}\n`).join('')) },
  ];
  progress({ step: 'initramfs', message: 'writing initramfs' });
  const archive = gzipSync(writeCpio(entries), { level: 6 });
  throwIfAborted(signal);
  mkdirSync(paths.guestDir, { recursive: true });
  // Write-then-rename: a crash mid-build never leaves a truncated initramfs that looks current.
  const tmp = `${paths.initramfs}.tmp-${process.pid}`;
  writeFileSync(tmp, archive);
  renameSync(tmp, paths.initramfs);
  const newManifest: Manifest = { format: BUILD_FORMAT, hash: digest, kernelVersion: kernel.version, modules: modules.map((m) => m.rel), builtAt: new Date().toISOString() };
  writeFileSync(paths.guestManifest, `${JSON.stringify(newManifest, null, 2)}\n`);
  progress({ step: 'done', message: `initramfs ${(archive.length / 1024).toFixed(0)} KiB (${digest.slice(0, 12)})` });
  return { kernel, initramfs: paths.initramfs, clientKey: paths.clientKey, hostPublicKey, hash: digest, rebuilt: true };
}
