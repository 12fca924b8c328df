/**
 * The boot floor: the same QEMU, machine, accelerator, memory, CPUs and guest kernel as the lab, with an
 * initramfs holding only busybox and an init that prints its uptime and powers off at once. What the
 * lab's boot takes beyond this (9p, overlays, network, sshd, the SSH login) is what the lab adds
 * (`vlab bench boot`, docs/lab.md § Boot timings).
 */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { gzipSync } from 'node:zlib';
import { chooseAccel } from './host/accel';
import { LabError } from './common/errors';
import { removeQuietly, tailFile } from './common/files';
import { findGuestKernel, requireQemu } from './host/host';
import { spawnDetached, terminate } from './host/proc';
import { optValue } from './qemu/args';
import { probeQemu } from './qemu/info';
import { writeCpio } from './guest/cpio';
import { parseInitMarkers, whenFileExists } from './boot-timings';
import type { Lab, UpOptions } from './lab';
import { resolveUpOptions } from './up-options';

export interface FloorTimings {
  /** QEMU spawned → its QMP socket exists. */
  readonly qemuSec: number | null;
  /** → the kernel's clock starts. */
  readonly firmwareSec: number | null;
  /** kernel clock 0 → init runs. */
  readonly kernelSec: number | null;
  /** QEMU spawned → the host sees init's line: the floor of "QEMU start → guest userspace". */
  readonly toInitSec: number | null;
  /** QEMU spawned → QEMU exited after the power-off. */
  readonly exitSec: number;
}

const FLOOR_INIT = '#!/bin/busybox sh\n/bin/busybox mount -t proc proc /proc; read -r t _ </proc/uptime; echo "vlab-floor: t=$t init"; /bin/busybox poweroff -f\n';
const FLOOR_TIMEOUT_MS = 180_000;

export async function measureBootFloor(lab: Lab, partial: Partial<UpOptions> = {}, signal?: AbortSignal): Promise<FloorTimings> {
  const options = resolveUpOptions(partial);
  const binary = requireQemu(lab.host);
  const accel = chooseAccel(options.accel, lab.host);
  const kernel = findGuestKernel(lab.host);
  const dir = join(lab.paths.stateDir, 'floor');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const initrd = join(dir, 'floor.cpio.gz');
  const busybox = readFileSync(lab.host.busybox);
  const archive = gzipSync(writeCpio([
    { type: 'dir', path: 'bin' },
    { type: 'dir', path: 'dev' },
    { type: 'chardev', path: 'dev/console', major: 5, minor: 1, mode: 0o600 },
    { type: 'dir', path: 'proc' },
    { type: 'file', path: 'bin/busybox', data: busybox, mode: 0o755 },
    { type: 'file', path: 'init', data: Buffer.from(FLOOR_INIT), mode: 0o755 },
  ]), { level: 6 });
  writeFileSync(`${initrd}.tmp`, archive);
  renameSync(`${initrd}.tmp`, initrd);
  const consoleLog = join(dir, 'console.log');
  const qmp = join(dir, 'qmp.sock');
  removeQuietly(consoleLog);
  removeQuietly(qmp);
  const dataDir = probeQemu(binary).dataDir;
  const args = [
    '-name', 'vlab-floor', '-nodefaults', '-no-user-config', '-display', 'none', '-no-reboot',
    ...(dataDir ? ['-L', dataDir] : []),
    '-machine', 'q35', ...(accel.kind === 'kvm' ? ['-accel', 'kvm', '-cpu', 'host'] : ['-accel', 'tcg', '-cpu', 'max']),
    '-smp', String(options.cpus), '-m', `${options.memoryMb}M`,
    '-chardev', `file,id=con0,path=${optValue(consoleLog)}`, '-serial', 'chardev:con0',
    '-qmp', `unix:${optValue(qmp)},server=on,wait=off`,
    '-kernel', kernel.vmlinuz, '-initrd', initrd, '-append', 'console=ttyS0 loglevel=4 panic=-1',
  ];
  const spawnAt = Date.now();
  const qemu = spawnDetached(binary, args, join(dir, 'qemu.log'), optValue(qmp));
  let exitedAt: number | undefined;
  void qemu.exited.then(() => {
    exitedAt = Date.now();
  });
  const qmpAt = whenFileExists(qmp, qemu.exited);
  let initSeenAt: number | undefined;
  const deadline = spawnAt + FLOOR_TIMEOUT_MS;
  while (exitedAt === undefined) {
    if (Date.now() > deadline || signal?.aborted) {
      await terminate(qemu.record, 3000);
      throw new LabError(signal?.aborted ? 'cancelled' : 'boot-timeout', `the floor VM did not power off within ${FLOOR_TIMEOUT_MS / 1000} s: ${tailFile(consoleLog, 5)}`);
    }
    if (initSeenAt === undefined && existsSync(consoleLog) && tailFile(consoleLog, 10, 4096).includes('vlab-floor: t=')) initSeenAt = Date.now();
    await sleep(10);
  }
  initSeenAt ??= tailFile(consoleLog, 10, 4096).includes('vlab-floor: t=') ? exitedAt : undefined;
  const tInit = parseInitMarkers(tailFile(consoleLog, 400, 256 * 1024)).init;
  const q = await qmpAt;
  const sec = (ms: number): number => Math.round(ms / 10) / 100;
  const kernelAt = initSeenAt !== undefined && tInit !== undefined ? initSeenAt - tInit * 1000 : undefined;
  return {
    qemuSec: q === undefined ? null : sec(q - spawnAt),
    firmwareSec: q === undefined || kernelAt === undefined || kernelAt < q ? null : sec(kernelAt - q),
    kernelSec: tInit === undefined ? null : Math.round(tInit * 100) / 100,
    toInitSec: initSeenAt === undefined ? null : sec(initSeenAt - spawnAt),
    exitSec: sec(exitedAt - spawnAt),
  };
}
