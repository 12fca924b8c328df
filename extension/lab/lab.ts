/**
 * The lab: one VM (QEMU + optional vhost-user backend) per state folder. `up` builds the guest, starts
 * the processes detached (the VM outlives the caller), and returns once the guest answers over SSH;
 * `down` powers it off (qemu-stop.ts: ACPI, QMP quit, SIGTERM, SIGKILL, each bounded); `status` reconciles state.json
 * with what is really running. Every process is recorded and identified by pid + start time + a marker
 * in its command line, so only processes this lab started are ever signalled.
 */
import { EventEmitter } from 'node:events';
import { chmodSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { type AccelChoice, chooseAccel } from './host/accel';
import { LabError, errorMessage, throwIfAborted } from './common/errors';
import { removeQuietly, tailFile } from './common/files';
import { type GuestArtifacts, type GuestProgress, buildGuest } from './guest/build';
import { readGuestEnd } from './guest/console';
import { type GuestKernel, type HostPaths, defaultHost, findGuestKernel, requireQemu } from './host/host';
import { probeQemu } from './qemu/info';
import { type LabPaths, type LogKind, MAX_SOCKET_PATH, labPaths, logPathOf } from './common/paths';
import { pickFreeLoopbackPort } from './host/ports';
import { type DetachedProcess, isAlive, isOurProcess, spawnDetached, terminate } from './host/proc';
import { type QemuSpec, buildQemuArgs, formatCommandLine, optValue, projectShareFor } from './qemu/args';
import { QmpClient } from './qemu/qmp';
import type { StopMethod, StopOptions } from './qemu/stop';
import { type VirtioDeviceQueues, type VirtioDeviceStatus, listVirtioDevices, readVirtioCryptoStatus } from './qemu/qmp-virtio';
import { type SshSession, type SshTarget, sshConnect } from './guest/ssh';
import {
  type BackendKind,
  type GuestDriver,
  type LabState,
  type StateFile,
  type UpOptions,
  acquireLock,
  clearState,
  readState,
  writeState,
} from './state';
import { DEFAULT_UP_OPTIONS, kernelCmdline, resolveUpOptions } from './up-options';
import { repoRoot } from './common/repo-root';
import { startBackendProcess } from './backend-process';
import { lockForDown, removeRuntimeFiles, stopRecorded } from './teardown';
import { startCapture, stopCapture } from './capture';
import { readSnapshotOrNull } from '../../backend/telemetry/client';
import type { BackendSnapshot } from '../../backend/telemetry/schema';
import { armGuestForDumps, dumpPanickedGuest, guestPanicked } from './debug/panic';
import { pickGdbPort } from './debug/gdbstub';

export type { BackendKind, EngineChoice, GuestDriver, LabState, UpOptions } from './state';
export type { StopMethod } from './qemu/stop';
export { DEFAULT_UP_OPTIONS, MAX_KERNEL_APPEND, checkKernelAppend, kernelCmdline, resolveUpOptions } from './up-options';

export interface LabProgress {
  readonly step: string;
  readonly message: string;
}

export interface OpControl {
  readonly signal?: AbortSignal;
  readonly onProgress?: (p: LabProgress) => void;
}

/** The object `vlab status --json` prints (documented in docs/status-json.md). */
export interface LabStatus {
  readonly schema: 1;
  readonly state: LabState;
  readonly reason?: string;
  /** When failed: the last lines of the guest console (a panic's text, the last boot messages). */
  readonly consoleTail?: string;
  readonly accel: AccelChoice | null;
  readonly backend: { readonly kind: BackendKind; readonly pid?: number; readonly telemetry?: BackendSnapshot | null };
  readonly qemu: { readonly pid?: number };
  readonly ssh: { readonly host: '127.0.0.1'; readonly port?: number };
  readonly uptimeSec?: number;
  readonly bootSec?: number;
  readonly device?: VirtioDeviceStatus | null;
  readonly stateDir: string;
  readonly guestDriver: GuestDriver;
  readonly kernelVersion?: string;
  /** The extra guest kernel arguments it was booted with (`vlab up --append`). */
  readonly append?: string;
  /** QEMU's gdbstub (`vlab up --gdb`; attach with `vlab gdb`), while QEMU runs. */
  readonly gdb?: { readonly host: '127.0.0.1'; readonly port: number };
  /** When failed after a guest panic: the crash dump written before QEMU was ended (`vlab gdb --core`). */
  readonly crashDump?: string;
  readonly workspace: string;
}

export interface UpResult {
  /** True when a running lab was found and nothing was started. */
  readonly already: boolean;
  readonly status: LabStatus;
}

export interface DownResult {
  readonly wasRunning: boolean;
  readonly qemu: StopMethod;
  readonly backend: 'terminated' | 'killed' | 'not-running' | 'stuck' | 'none';
  /** Stale state from a crashed run was found and cleaned. */
  readonly stale: boolean;
}

/**
 * What `up` runs for guest driver 'lab' once the guest answers over SSH and the lab is 'running'
 * (it reaches the guest through `lab.ssh()`). The lab does not know the driver: whoever composes it
 * passes this in (extension/lab/with-driver.ts `labWithDriver` hands in the build-and-load of guest/driver).
 */
export type GuestDriverStep = (lab: Lab, ctl: { readonly signal?: AbortSignal }) => Promise<unknown>;

export interface LabOverrides {
  /** State folder; default env VLAB_STATE_DIR or <workspace>/.vlab. */
  readonly stateDir?: string;
  readonly env?: NodeJS.ProcessEnv;
  readonly host?: Partial<HostPaths>;
  /** Guest init scripts folder (default <repo>/guest/init). */
  readonly initDir?: string;
  /** The `vlab` launcher the 'ts' backend is started with (default <repo>/bin/vlab.js). */
  readonly vlabScript?: string;
  /** Bounded waits of `down` (ms). */
  readonly powerdownTimeoutMs?: number;
  readonly quitTimeoutMs?: number;
  /** Run by `up` when the guest driver is 'lab'; without it such an `up` is refused before QEMU starts. */
  readonly guestDriverStep?: GuestDriverStep;
}


const SSH_USER = 'root';
const SSH_ATTEMPT_TIMEOUT_MS = 8_000;
/** Printed by guest/init/stage2 once sshd listens. */
const READY_MARKER = 'vlab-init: ready';
const READY_HINT_MAX_WAIT_MS = 60_000;
const QMP_TIMEOUT_MS = 3_000;
const PORT_ATTEMPTS = 3;


/**
 * How our QEMU is recognised in /proc/PID/cmdline: its QMP socket path as written on the command line
 * (QEMU option syntax doubles commas, so a path with a comma appears escaped there).
 */
export function qemuMarker(paths: LabPaths): string {
  return optValue(paths.qmpSocket);
}

export class Lab extends EventEmitter {
  readonly paths: LabPaths;
  readonly host: HostPaths;
  private readonly overrides: LabOverrides;

  private constructor(paths: LabPaths, host: HostPaths, overrides: LabOverrides) {
    super();
    this.paths = paths;
    this.host = host;
    this.overrides = overrides;
  }

  static forWorkspace(workspace: string, overrides: LabOverrides = {}): Lab {
    const env = overrides.env ?? process.env;
    const paths = labPaths(workspace, overrides.stateDir, env);
    if (paths.qmpSocket.length > MAX_SOCKET_PATH || paths.vhostUserSocket.length > MAX_SOCKET_PATH || paths.telemetrySocket.length > MAX_SOCKET_PATH) {
      throw new LabError('bad-option', `state folder path too long for unix sockets (${paths.stateDir}); set VLAB_STATE_DIR to a shorter path`);
    }
    return new Lab(paths, { ...defaultHost(env), ...overrides.host }, overrides);
  }

  logPath(kind: LogKind): string {
    return logPathOf(this.paths, kind);
  }

  private progress(ctl: OpControl, step: string, message: string): void {
    const p: LabProgress = { step, message };
    ctl.onProgress?.(p);
    this.emit('progress', p);
  }

  private setState(file: StateFile): void {
    writeState(this.paths, file);
    this.emit('state', file.state);
  }

  buildGuest(ctl: OpControl = {}): Promise<GuestArtifacts> {
    return buildGuest(this.paths, this.host, {
      signal: ctl.signal,
      initDir: this.overrides.initDir,
      onProgress: (p: GuestProgress) => this.progress(ctl, `guest:${p.step}`, p.message),
    });
  }

  /** The QEMU command line `up` would run (the SSH port is picked again at up time). */
  async dryRun(partial: Partial<UpOptions> = {}): Promise<{ binary: string; args: string[]; commandLine: string; accel: AccelChoice }> {
    const options = resolveUpOptions(partial);
    const binary = requireQemu(this.host);
    const accel = chooseAccel(options.accel, this.host);
    const kernel = findGuestKernel(this.host);
    const sshPort = await pickFreeLoopbackPort();
    const spec = this.qemuSpec(options, accel, binary, kernel, sshPort, options.gdb ? await pickGdbPort(sshPort) : undefined);
    const args = buildQemuArgs(spec);
    return { binary, args, commandLine: formatCommandLine(binary, args), accel };
  }

  private qemuSpec(options: UpOptions, accel: AccelChoice, binary: string, kernel: GuestKernel, sshPort: number, gdbPort?: number): QemuSpec {
    // The project whose bin/vlab.js the lab runs (a clone, or an installed extension's folder).
    const projectShare = projectShareFor(dirname(dirname(this.vlabScript())), this.paths.workspace);
    return {
      binary,
      name: 'vlab',
      accel: accel.kind,
      memoryMb: options.memoryMb,
      cpus: options.cpus,
      kernel: kernel.vmlinuz,
      initrd: this.paths.initramfs,
      kernelCmdline: kernelCmdline(this.paths.workspace, options.guestDriver, projectShare, kernel.modulesShare !== undefined, options.append, options.gdb === true),
      qmpSocket: this.paths.qmpSocket,
      qmpWatchSocket: this.paths.qmpWatchSocket,
      consoleLog: this.paths.consoleLog,
      sshPort,
      workspace: this.paths.workspace,
      projectShare,
      crypto: options.backend === 'ts' ? { kind: 'vhost-user', socket: this.paths.vhostUserSocket } : { kind: 'builtin' },
      qemu: probeQemu(binary),
      modulesShare: kernel.modulesShare,
      ...(gdbPort !== undefined ? { gdbPort } : {}),
    };
  }

  /**
   * Boots the lab and resolves once the guest answers over SSH. A lab that is already up is left alone
   * (`already: true`). On failure everything started is stopped, state becomes 'failed' and the error
   * carries the reason, the last console lines and QEMU's stderr.
   */
  async up(partial: Partial<UpOptions> = {}, ctl: OpControl = {}): Promise<UpResult> {
    const options = resolveUpOptions(partial);
    throwIfAborted(ctl.signal);
    const release = acquireLock(this.paths, 'vlab up');
    try {
      const existing = await this.settlePanic(readState(this.paths), true);
      // We hold the lock, so no other `up` is booting: only a 'running' lab counts as up.
      if (existing?.qemu && existing.state === 'running' && isOurProcess(existing.qemu)) {
        return { already: true, status: await this.status() };
      }
      if (existing) {
        this.progress(ctl, 'cleanup', `cleaning up after the previous run (${existing.state})`);
        await stopRecorded(this.paths, existing, this.stopTimes(ctl, true));
      }
      const binary = requireQemu(this.host);
      const accel = chooseAccel(options.accel, this.host);
      this.progress(ctl, 'accel', `${accel.kind}: ${accel.why}`);
      const guest = await this.buildGuest(ctl);
      throwIfAborted(ctl.signal);
      if (options.guestDriver === 'lab' && !this.overrides.guestDriverStep) {
        throw new LabError('guest-driver', "guest driver 'lab' needs the driver step: open the lab with labWithDriver() (extension/lab/with-driver.ts)");
      }
      return { already: false, status: await this.boot(options, accel, binary, guest, ctl) };
    } finally {
      release();
    }
  }

  private async boot(options: UpOptions, accel: AccelChoice, binary: string, guest: GuestArtifacts, ctl: OpControl): Promise<LabStatus> {
    // Only our uid may reach the sockets and logs in here (the sockets are 0600 themselves too).
    mkdirSync(this.paths.stateDir, { recursive: true, mode: 0o700 });
    chmodSync(this.paths.stateDir, 0o700);
    for (const sock of [this.paths.qmpSocket, this.paths.qmpWatchSocket, this.paths.vhostUserSocket, this.paths.telemetrySocket]) removeQuietly(sock);
    // QEMU opens the console log itself (O_TRUNC, following symlinks); the guest can write this folder,
    // so whatever is there is removed first and QEMU creates a fresh file.
    removeQuietly(this.paths.consoleLog);
    const startedAt = new Date();
    const base: StateFile = {
      schema: 1,
      state: 'booting',
      options,
      accel,
      kernelVersion: guest.kernel.version,
      upPid: process.pid,
      startedAt: startedAt.toISOString(),
    };
    this.setState(base);
    let backend: DetachedProcess | undefined;
    let qemu: DetachedProcess | undefined;
    let current = base;
    const fail = async (err: unknown): Promise<never> => {
      const reason = err instanceof LabError ? err.message : `unexpected error: ${errorMessage(err)}`;
      const details = {
        consoleTail: readGuestEnd(this.paths.consoleLog).tail,
        qemuStderr: tailFile(this.paths.qemuLog, 15),
        backendLog: backend ? tailFile(this.paths.backendLog, 15) : undefined,
      };
      await stopRecorded(this.paths, current, this.stopTimes(ctl, false));
      this.setState({ ...current, qemu: undefined, backend: undefined, state: 'failed', reason });
      if (err instanceof LabError && err.kind !== 'cancelled') throw new LabError(err.kind, err.message, err.fix, details);
      if (err instanceof LabError) throw err;
      throw new LabError('qemu-start', reason, undefined, details);
    };

    try {
      if (options.backend === 'ts') {
        backend = await startBackendProcess(this.paths, this.vlabScript(), options, (m) => this.progress(ctl, 'backend', m), ctl.signal);
        current = { ...current, backend: backend.record };
        this.setState(current);
      }
      const t0 = Date.now();
      for (let attempt = 1; ; attempt++) {
        const port = await pickFreeLoopbackPort();
        const gdbPort = options.gdb ? await pickGdbPort(port) : undefined;
        const args = buildQemuArgs(this.qemuSpec(options, accel, binary, guest.kernel, port, gdbPort));
        this.progress(ctl, 'qemu', `starting QEMU (${accel.kind}, ${options.memoryMb} MB, ${options.cpus} CPUs, backend ${options.backend}, ssh port ${port})`);
        qemu = spawnDetached(binary, args, this.paths.qemuLog, qemuMarker(this.paths));
        current = { ...current, qemu: qemu.record, sshPort: port, ...(gdbPort !== undefined ? { gdbPort } : {}) };
        this.setState(current);
        const early = await Promise.race([qemu.exited, sleep(300).then(() => undefined)]);
        if (early === undefined) break;
        const stderr = tailFile(this.paths.qemuLog, 5);
        // Another program took the port between our probe and QEMU's bind: pick another one.
        // (or the gdbstub's port: "-gdb tcp:127.0.0.1:P: Failed to find an available port").
        if (/host forwarding rule|-gdb tcp:\S+: Failed/i.test(stderr) && attempt < PORT_ATTEMPTS) {
          if (backend) {
            // The failed QEMU may already have connected to the backend and hung up: start a fresh one.
            await terminate(backend.record, 3000);
            backend = await startBackendProcess(this.paths, this.vlabScript(), options, (m) => this.progress(ctl, 'backend', m), ctl.signal);
            current = { ...current, backend: backend.record };
          }
          continue;
        }
        throw new LabError('qemu-start', `QEMU failed to start (${early}): ${stderr.split('\n').at(-1) ?? ''}`.trim());
      }
      const session = await this.waitForSsh(current, options, guest, qemu, backend, ctl);
      session.close();
      const bootSec = Math.round((Date.now() - t0) / 100) / 10;
      current = { ...current, state: 'running', runningSince: new Date().toISOString(), bootSec };
      this.setState(current);
      this.progress(ctl, 'ready', `guest reachable over SSH after ${bootSec} s`);
      const driverStep = this.overrides.guestDriverStep;
      if (options.guestDriver === 'lab' && driverStep) {
        // The step talks to the guest through lab.ssh(), which needs the 'running' state written above.
        this.progress(ctl, 'driver', 'loading the lab driver in the guest');
        try {
          await driverStep(this, { signal: ctl.signal });
        } catch (err) {
          throw new LabError('guest-driver', `loading the lab driver failed: ${errorMessage(err)}`);
        }
      }
      if (options.gdb) await this.armForDumps(current, ctl);
      return await this.status();
    } catch (err) {
      return fail(err);
    }
  }

  /**
   * `--gdb`: the guest's pvpanic driver and the first symbol snapshot (extension/lab/debug/panic.ts).
   * What fails is reported, not fatal: the gdbstub works without it, only automatic dumps need it.
   */
  private async armForDumps(file: StateFile, ctl: OpControl): Promise<void> {
    let problems: string[];
    try {
      const session = await this.ssh({ signal: ctl.signal });
      try {
        problems = await armGuestForDumps(session, this.paths, file.startedAt, file.kernelVersion);
      } finally {
        session.close();
      }
    } catch (err) {
      problems = [`preparing crash dumps failed (${errorMessage(err)}): a panic will end QEMU without a dump`];
    }
    for (const problem of problems) this.progress(ctl, 'gdb', problem);
    this.progress(ctl, 'gdb', `gdbstub on 127.0.0.1:${file.gdbPort ?? '?'} (vlab gdb)${problems.length === 0 ? '; a guest panic pauses QEMU for a crash dump' : ''}`);
  }

  /**
   * A `--gdb` lab whose guest panicked is held paused by QEMU (-action panic=pause): its crash dump is
   * written, then QEMU and the backend are ended and the lab is 'failed' with the dump named. While
   * another command writes the dump, status reads failed (not written to state.json); up and down
   * (`wait`) are refused as busy.
   */
  private async settlePanic(file: StateFile | undefined, wait = false): Promise<StateFile | undefined> {
    if (file?.state !== 'running' || !file.options.gdb || !file.qemu || !isOurProcess(file.qemu) || (await guestPanicked(this.paths.qmpSocket)) !== true) return file;
    const { panic } = readGuestEnd(this.paths.consoleLog);
    const line = panic?.line ?? 'no panic line on the console';
    const dump = await dumpPanickedGuest({ paths: this.paths, boot: file.startedAt, release: file.kernelVersion, panicLine: panic?.line });
    if (dump.kind === 'busy') {
      const reason = `the guest kernel panicked: ${line}; another vlab command is writing its crash dump`;
      if (wait) throw new LabError('busy', `${reason}: try again when it is done`);
      return { ...file, state: 'failed', reason };
    }
    await stopRecorded(this.paths, file, this.stopTimes({}, false));
    const where = dump.kind === 'written' ? `crash dump: ${dump.file}` : `no crash dump: ${dump.error}`;
    const failed: StateFile = { ...file, qemu: undefined, backend: undefined, state: 'failed', reason: `the guest kernel panicked: ${line}; ${where}`, ...(dump.kind === 'written' ? { crashDump: dump.file } : {}) };
    writeState(this.paths, failed);
    this.emit('state', failed.state);
    return failed;
  }

  private async waitForSsh(current: StateFile, options: UpOptions, guest: GuestArtifacts, qemu: DetachedProcess, backend: DetachedProcess | undefined, ctl: OpControl): Promise<SshSession> {
    const boot = new AbortController();
    const abort = (err: LabError): void => {
      if (!boot.signal.aborted) boot.abort(err);
    };
    const onUserAbort = (): void => abort(new LabError('cancelled', 'cancelled'));
    ctl.signal?.addEventListener('abort', onUserAbort, { once: true });
    if (ctl.signal?.aborted) onUserAbort();
    void qemu.exited.then((how) => {
      // -no-reboot + panic=-1: a kernel panic during boot ends QEMU at once; the console says why.
      const { panic } = readGuestEnd(this.paths.consoleLog);
      abort(new LabError('qemu-exited', panic ? `the guest kernel panicked during boot: ${panic.line} (QEMU ${how})` : `QEMU exited during boot (${how})`));
    });
    void backend?.exited.then((how) => abort(new LabError('backend', `backend died (${how})`)));
    const timer = setTimeout(
      () => abort(new LabError('boot-timeout', `the guest did not answer over SSH within ${(options.bootTimeoutMs / 1000).toFixed(1)} s`)),
      options.bootTimeoutMs,
    );
    this.progress(ctl, 'ssh', 'waiting for the guest to answer over SSH');
    try {
      const hintStart = Date.now();
      if (await this.waitForReadyHint(boot.signal)) {
        this.progress(ctl, 'ssh', `guest init ready after ${((Date.now() - hintStart) / 1000).toFixed(1)} s; logging in`);
      }
      return await sshConnect(this.sshTarget(current.sshPort!, guest.hostPublicKey), {
        timeoutMs: SSH_ATTEMPT_TIMEOUT_MS,
        retryUntilMs: options.bootTimeoutMs,
        signal: boot.signal,
      });
    } catch (err) {
      if (boot.signal.aborted && boot.signal.reason instanceof LabError) throw boot.signal.reason;
      throw new LabError('boot-timeout', `SSH to the guest failed: ${errorMessage(err)}`);
    } finally {
      clearTimeout(timer);
      ctl.signal?.removeEventListener('abort', onUserAbort);
    }
  }

  /**
   * Waits until the guest init prints its ready line on the console (sshd is listening by then), or
   * READY_HINT_MAX_WAIT_MS. Only a hint for when to start trying SSH: while the guest network is down,
   * each SSH attempt hangs for its whole timeout, so early attempts would delay the first good one.
   * The console is guest-written; the pinned-key SSH login is the real readiness check.
   */
  private async waitForReadyHint(signal: AbortSignal): Promise<boolean> {
    const deadline = Date.now() + READY_HINT_MAX_WAIT_MS;
    while (!signal.aborted && Date.now() < deadline) {
      if (tailFile(this.paths.consoleLog, 10, 4096).includes(READY_MARKER)) return true;
      await sleep(100);
    }
    return false;
  }

  /** The `vlab` launcher this lab runs (the ts backend; guest-side tools through the project share). */
  private vlabScript(): string {
    return this.overrides.vlabScript ?? join(repoRoot(), 'bin', 'vlab.js');
  }

  private sshTarget(port: number, hostKey: string): SshTarget {
    return { host: '127.0.0.1', port, username: SSH_USER, privateKey: readFileSync(this.paths.clientKey), hostKey };
  }

  private pinnedHostKey(): string {
    const fields = readFileSync(`${this.paths.hostKey}.pub`, 'utf8').trim().split(/\s+/);
    return `${fields[0]} ${fields[1]}`;
  }

  /** An SSH session into the running guest (caller closes it). */
  async ssh(opts: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<SshSession> {
    const file = readState(this.paths);
    if (!file || file.state !== 'running' || !file.qemu || !isOurProcess(file.qemu) || !file.sshPort) {
      throw new LabError('not-running', 'the lab is not running', 'vlab up');
    }
    return sshConnect(this.sshTarget(file.sshPort, this.pinnedHostKey()), { timeoutMs: opts.timeoutMs ?? 10_000, signal: opts.signal });
  }

  /** A QMP session to the running QEMU (caller closes it). */
  async qmp(opts: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<QmpClient> {
    const file = readState(this.paths);
    if (!file?.qemu || !isOurProcess(file.qemu)) throw new LabError('not-running', 'the lab is not running', 'vlab up');
    try {
      return await QmpClient.connect(this.paths.qmpSocket, { timeoutMs: opts.timeoutMs ?? QMP_TIMEOUT_MS, signal: opts.signal });
    } catch (err) {
      throw new LabError('qmp', `cannot talk to QEMU over QMP: ${errorMessage(err)}`);
    }
  }

  /** How `down` and a failed boot stop the recorded processes: graceful or not, the lab's timeouts, progress. */
  private stopTimes(ctl: OpControl, graceful: boolean): StopOptions {
    return {
      graceful,
      powerdownMs: this.overrides.powerdownTimeoutMs ?? 30_000,
      quitMs: this.overrides.quitTimeoutMs ?? 5_000,
      progress: (step, message) => this.progress(ctl, step, message),
    };
  }

  /**
   * Powers the VM off: ACPI power button (guest shuts down cleanly), then QMP quit, then SIGKILL, each
   * with a bounded wait; then the backend. Also cleans stale state from a crashed run.
   */
  async down(ctl: OpControl = {}): Promise<DownResult> {
    const { release, abortedBoot } = await lockForDown(this.paths, this.stopTimes(ctl, false));
    try {
      const file = await this.settlePanic(readState(this.paths), true);
      if (!file) {
        removeRuntimeFiles(this.paths);
        return { wasRunning: abortedBoot !== undefined, qemu: abortedBoot ?? 'not-running', backend: 'none', stale: false };
      }
      const qemuAlive = file.qemu !== undefined && isOurProcess(file.qemu);
      const stale = !qemuAlive && abortedBoot === undefined;
      this.setState({ ...file, state: 'stopping' });
      const result = await stopRecorded(this.paths, file, this.stopTimes(ctl, true));
      clearState(this.paths);
      this.emit('state', 'stopped');
      return { wasRunning: qemuAlive || abortedBoot !== undefined, qemu: abortedBoot ?? result.qemu, backend: result.backend, stale };
    } finally {
      release();
    }
  }

  /**
   * What is really going on, reconciled with state.json. A crashed QEMU or a dead backend turns the
   * lab 'failed' (recorded, with the reason); a dead backend also stops QEMU (the VM cannot survive it),
   * a dead QEMU also stops the backend (it serves that QEMU only). A guest kernel panic (it ends QEMU)
   * is named in the reason; a failed lab's status carries the console tail.
   */
  async status(opts: { device?: boolean; telemetry?: boolean } = {}): Promise<LabStatus> {
    const file = await this.settlePanic(readState(this.paths));
    const base = {
      schema: 1 as const,
      stateDir: this.paths.stateDir,
      workspace: this.paths.workspace,
    };
    if (!file) {
      return { ...base, state: 'stopped', accel: null, backend: { kind: DEFAULT_UP_OPTIONS.backend }, qemu: {}, ssh: { host: '127.0.0.1' }, guestDriver: DEFAULT_UP_OPTIONS.guestDriver };
    }
    let state = file.state;
    let reason = file.reason;
    let qemuAlive = file.qemu !== undefined && isOurProcess(file.qemu);
    let backendAlive = file.backend !== undefined && isOurProcess(file.backend);
    if (state === 'booting') {
      // The `up` that writes this state watches QEMU and the backend itself and records any failure;
      // only its disappearance is ours to report.
      if (!isAlive(file.upPid)) {
        state = 'failed';
        reason = `vlab up (pid ${file.upPid}) ended before the boot finished; vlab down cleans up`;
      }
    } else if (state === 'running' && !qemuAlive) {
      state = 'failed';
      // -no-reboot + panic=-1: a guest kernel panic ends QEMU at once; the console says why.
      const { panic } = readGuestEnd(this.paths.consoleLog);
      const qemuPid = file.qemu?.pid ?? '?';
      reason = panic
        ? `the guest kernel panicked: ${panic.line} (QEMU pid ${qemuPid} exited with it)`
        : `QEMU (pid ${qemuPid}) is no longer running: ${tailFile(this.paths.qemuLog, 1) || 'it exited or was killed'}`;
      // The backend serves this one QEMU: without it, it is a leftover.
      if (file.backend) await terminate(file.backend, 3000);
      backendAlive = file.backend !== undefined && isOurProcess(file.backend);
      writeState(this.paths, { ...file, state, reason });
      this.emit('state', state);
    } else if (state === 'running' && file.backend && !backendAlive) {
      state = 'failed';
      reason = `backend died (pid ${file.backend.pid}; ${tailFile(this.paths.backendLog, 1) || 'no log'})`;
      // QEMU 7.2 cannot survive losing its vhost-user backend (platform notes §3): stop it too.
      if (file.qemu) await terminate(file.qemu, 3000);
      qemuAlive = file.qemu !== undefined && isOurProcess(file.qemu);
      writeState(this.paths, { ...file, state, reason });
      this.emit('state', state);
    }
    const live = state === 'running' && qemuAlive;
    const consoleTail = state === 'failed' ? readGuestEnd(this.paths.consoleLog).tail : undefined;
    const device = live && opts.device !== false ? await this.readDevice() : undefined;
    const telemetry = live && file.backend && opts.telemetry !== false ? await readSnapshotOrNull(this.paths.telemetrySocket) : undefined;
    const since = file.runningSince ? Date.parse(file.runningSince) : NaN;
    return {
      ...base,
      state,
      ...(reason !== undefined && state !== 'running' ? { reason } : {}),
      ...(consoleTail ? { consoleTail } : {}),
      accel: file.accel,
      backend: {
        kind: file.options.backend,
        ...(file.backend && backendAlive ? { pid: file.backend.pid } : {}),
        ...(telemetry !== undefined ? { telemetry } : {}),
      },
      qemu: qemuAlive && file.qemu ? { pid: file.qemu.pid } : {},
      ssh: { host: '127.0.0.1', ...(qemuAlive && file.sshPort ? { port: file.sshPort } : {}) },
      ...(live && Number.isFinite(since) ? { uptimeSec: Math.max(0, Math.round((Date.now() - since) / 1000)) } : {}),
      ...(file.bootSec !== undefined ? { bootSec: file.bootSec } : {}),
      ...(device !== undefined ? { device } : {}),
      guestDriver: file.options.guestDriver,
      kernelVersion: file.kernelVersion,
      ...(typeof file.options.append === 'string' ? { append: file.options.append } : {}),
      ...(qemuAlive && file.gdbPort ? { gdb: { host: '127.0.0.1' as const, port: file.gdbPort } } : {}),
      ...(file.crashDump !== undefined && state === 'failed' ? { crashDump: file.crashDump } : {}),
    };
  }

  private async readDevice(): Promise<VirtioDeviceStatus | null> {
    let qmp: QmpClient | undefined;
    try {
      qmp = await QmpClient.connect(this.paths.qmpSocket, { timeoutMs: QMP_TIMEOUT_MS });
      return await readVirtioCryptoStatus(qmp);
    } catch {
      return null;
    } finally {
      qmp?.close();
    }
  }

  /** Every virtio device of the running VM with its queues' indexes (QMP; vhost-owned queues are not queried). */
  async virtioDevices(): Promise<VirtioDeviceQueues[]> {
    const qmp = await QmpClient.connect(this.paths.qmpSocket, { timeoutMs: QMP_TIMEOUT_MS });
    try {
      return await listVirtioDevices(qmp);
    } finally {
      qmp.close();
    }
  }


  /** Starts recording the guest's network traffic (QMP filter-dump on netdev n0) into a pcap file. */
  async captureStart(file: string): Promise<string> {
    return startCapture(await this.qmp(), isAbsolute(file) ? file : resolve(this.paths.workspace, file));
  }

  async captureStop(): Promise<void> {
    await stopCapture(await this.qmp());
  }
}
