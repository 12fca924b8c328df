/**
 * Where the guest kernel's vmlinux with DWARF is on the host, if anywhere: Debian's
 * `linux-image-<release>-dbg` (/usr/lib/debug/boot/vmlinux-<release>), the same under
 * /usr/lib/debug/lib/modules, or a kernel build tree next to the headers the driver builds against.
 */
import { accessSync, constants, realpathSync } from 'node:fs';
import { join } from 'node:path';

/** The Debian package that carries vmlinux for `release` (e.g. linux-image-6.1.0-57-amd64-dbg). */
export function debugPackageFor(release: string): string {
  return `linux-image-${release}-dbg`;
}

export function vmlinuxCandidates(release: string, opts: { debugRoot?: string; modulesRoot?: string; buildDir?: string } = {}): string[] {
  const debugRoot = opts.debugRoot ?? '/usr/lib/debug';
  const modulesRoot = opts.modulesRoot ?? '/lib/modules';
  const out = [join(debugRoot, 'boot', `vmlinux-${release}`), join(debugRoot, 'lib', 'modules', release, 'vmlinux'), join(modulesRoot, release, 'build', 'vmlinux')];
  if (opts.buildDir) out.push(join(opts.buildDir, 'vmlinux'));
  return [...new Set(out)];
}

function readable(path: string): boolean {
  try {
    accessSync(path, constants.R_OK);
    return true;
  } catch {
    return false;
  }
}

/** The first readable candidate (resolved), or undefined. */
export function findVmlinux(release: string, opts: { debugRoot?: string; modulesRoot?: string; buildDir?: string } = {}): string | undefined {
  for (const c of vmlinuxCandidates(release, opts)) {
    if (readable(c)) {
      try {
        return realpathSync(c);
      } catch {
        return c;
      }
    }
  }
  return undefined;
}

