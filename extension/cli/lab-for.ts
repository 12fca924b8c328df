/**
 * The lab a `vlab` command works on: the current folder's (state folder from VLAB_STATE_DIR or
 * ./.vlab, extension/lab/common/paths.ts), with our guest driver composed in, and the host paths
 * given on the command line (--qemu, --kernel, --modules).
 */
import { resolve } from 'node:path';
import type { HostPaths } from '../lab/host/host';
import type { Lab } from '../lab/lab';
import { type LabPaths, labPaths } from '../lab/common/paths';
import { labWithDriver } from '../lab/with-driver';
import { type CliIo, UsageError } from './command';

/** The lab of the current folder; paths given on the command line are relative to it. */
export function labFor(io: CliIo, host: Partial<HostPaths> = {}): Lab {
  const abs = (p: string | undefined): string | undefined => (p === undefined ? undefined : resolve(io.cwd, p));
  const resolved: Partial<HostPaths> = {
    ...host,
    ...(host.qemu?.includes('/') ? { qemu: abs(host.qemu) } : {}),
    ...(host.guestKernel ? { guestKernel: abs(host.guestKernel) } : {}),
    ...(host.guestModules ? { guestModules: abs(host.guestModules) } : {}),
  };
  return labWithDriver(io.cwd, { env: io.env, host: resolved });
}

/** Where the current folder's lab keeps its sockets and logs (for commands that need no Lab). */
export function labPathsFor(io: CliIo): LabPaths {
  return labPaths(io.cwd, undefined, io.env);
}

/** `--qemu`, `--kernel`, `--modules` as host overrides (only the ones given). */
export function hostSelection(qemu: string | undefined, kernel: string | undefined, modules: string | undefined): Partial<HostPaths> {
  const empty = (v: string | undefined, flag: string): string | undefined => {
    if (v !== undefined && v.trim() === '') throw new UsageError(`${flag} needs a path`);
    return v;
  };
  return {
    ...(empty(qemu, '--qemu') !== undefined ? { qemu: qemu! } : {}),
    ...(empty(kernel, '--kernel') !== undefined ? { guestKernel: kernel! } : {}),
    ...(empty(modules, '--modules') !== undefined ? { guestModules: modules! } : {}),
  };
}
