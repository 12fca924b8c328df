/** Kernel module resolution from modules.dep (the depmod output), so the initramfs holds exactly what it needs. */
import { readFileSync } from 'node:fs';
import { basename, join } from 'node:path';

/** module name ("9pnet_virtio") -> { path relative to the modules dir, direct dependencies' paths }. */
export interface ModuleIndex {
  readonly byName: ReadonlyMap<string, string>;
  readonly deps: ReadonlyMap<string, readonly string[]>;
}

/** The kernel treats '-' and '_' in module names alike. */
export function moduleName(path: string): string {
  return basename(path).replace(/\.ko(\.(xz|zst|gz))?$/, '').replace(/-/g, '_');
}

export function parseModulesDep(text: string): ModuleIndex {
  const byName = new Map<string, string>();
  const deps = new Map<string, string[]>();
  for (const line of text.split('\n')) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const path = line.slice(0, colon).trim();
    const requires = line.slice(colon + 1).trim().split(/\s+/).filter(Boolean);
    byName.set(moduleName(path), path);
    deps.set(path, requires);
  }
  return { byName, deps };
}

export function loadModuleIndex(modulesDir: string): ModuleIndex {
  return parseModulesDep(readFileSync(join(modulesDir, 'modules.dep'), 'utf8'));
}

/**
 * The module files to load, dependencies first, each once, for the wanted module names in the order
 * asked. Names that are built into the kernel (listed in `builtin`) are skipped; unknown names throw.
 */
export function resolveModules(index: ModuleIndex, wanted: readonly string[], builtin: ReadonlySet<string> = new Set()): string[] {
  const ordered: string[] = [];
  const done = new Set<string>();
  const visiting = new Set<string>();
  const visit = (path: string): void => {
    if (done.has(path)) return;
    if (visiting.has(path)) throw new Error(`modules.dep: dependency cycle at ${path}`);
    visiting.add(path);
    // modules.dep lists a module's dependencies so that the last one must be loaded first; visiting them
    // depth-first and appending after the children gives a valid load order either way.
    for (const dep of index.deps.get(path) ?? []) visit(dep);
    visiting.delete(path);
    done.add(path);
    ordered.push(path);
  };
  for (const name of wanted) {
    const key = name.replace(/-/g, '_');
    const path = index.byName.get(key);
    if (path) visit(path);
    else if (!builtin.has(key)) throw new Error(`kernel module "${name}" not found in modules.dep`);
  }
  return ordered;
}

export function parseModulesBuiltin(text: string): Set<string> {
  return new Set(text.split('\n').filter(Boolean).map(moduleName));
}
