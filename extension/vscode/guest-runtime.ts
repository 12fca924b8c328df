/**
 * Where the guest finds `bin/vlab.js` (for the guest chat peer). The guest sees the host's root
 * read-only at the same paths, except /tmp and /root, which are empty tmpfs there (guest/init/init),
 * and the workspace, which is shared read-write at its host path. So when the extension lives under
 * /tmp or /root (a test install, a clone in root's home), its runtime is copied once into the
 * lab's state folder: bin/, out/ (without tests), the native addon and the production npm packages.
 */
import { cpSync, existsSync, readFileSync, rmSync } from 'node:fs';
import { join, relative, sep } from 'node:path';

const HIDDEN_IN_GUEST = ['/tmp', '/root'];
const copiedThisSession = new Set<string>();

function under(path: string, dir: string): boolean {
  const rel = relative(dir, path);
  return rel === '' || (!rel.startsWith('..') && !rel.startsWith(sep) && rel !== path);
}

export function visibleInGuest(path: string, workspace: string): boolean {
  return under(path, workspace) || !HIDDEN_IN_GUEST.some((d) => under(path, d));
}

/** The production dependencies (package.json "dependencies", transitively) found in node_modules. */
function productionPackages(root: string): string[] {
  const seen = new Set<string>();
  const visit = (pkgJson: string): void => {
    let deps: Record<string, string> = {};
    try {
      deps = (JSON.parse(readFileSync(pkgJson, 'utf8')) as { dependencies?: Record<string, string> }).dependencies ?? {};
    } catch {
      return;
    }
    for (const name of Object.keys(deps)) {
      if (seen.has(name) || !existsSync(join(root, 'node_modules', name, 'package.json'))) continue;
      seen.add(name);
      visit(join(root, 'node_modules', name, 'package.json'));
    }
  };
  visit(join(root, 'package.json'));
  return [...seen];
}

/** Returns a folder holding bin/vlab.js that the guest can read. */
export function guestRuntime(extensionPath: string, workspace: string, stateDir: string): string {
  if (visibleInGuest(extensionPath, workspace)) return extensionPath;
  if (!visibleInGuest(stateDir, workspace)) throw new Error(`neither the extension (${extensionPath}) nor the lab state folder (${stateDir}) is visible in the guest`);
  const target = join(stateDir, 'runtime');
  // Copied once per extension-host session (a few MB, well under a second), so a rebuilt
  // extension is never run from a stale copy.
  if (copiedThisSession.has(target)) return target;
  rmSync(target, { recursive: true, force: true });
  const copy = (rel: string, filter?: (src: string) => boolean): void => {
    const src = join(extensionPath, rel);
    if (existsSync(src)) cpSync(src, join(target, rel), { recursive: true, ...(filter ? { filter } : {}) });
  };
  copy('package.json');
  copy('bin');
  copy('out', (src) => !src.includes(`${sep}out${sep}test`) && !src.endsWith('.map'));
  copy(join('addon', 'build', 'Release', 'vlab_addon.node'));
  for (const name of productionPackages(extensionPath)) copy(join('node_modules', name));
  copiedThisSession.add(target);
  return target;
}
