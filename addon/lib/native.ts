/**
 * Loads the compiled native addon once. Each typed facade (cryptodev.ts, vhost.ts) checks that the
 * functions it needs exist and exposes them with real types; nothing untyped leaves this folder.
 */
import * as path from 'node:path';

export type NativeExports = Readonly<Record<string, unknown>>;

let cached: NativeExports | undefined;

/** Path of the built addon, relative to the compiled file (out/addon/lib) or the source (addon/lib). */
function candidates(): string[] {
  const repo = [path.resolve(__dirname, '..', '..', '..'), path.resolve(__dirname, '..', '..')];
  return repo.map((r) => path.join(r, 'addon', 'build', 'Release', 'vlab_addon.node'));
}

export class AddonNotBuiltError extends Error {
  constructor(tried: string[]) {
    super(`native addon not built (tried ${tried.join(', ')}); run: npm run build:addon`);
    this.name = 'AddonNotBuiltError';
  }
}

export function loadNative(): NativeExports {
  if (cached) return cached;
  const tried = candidates();
  for (const file of tried) {
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      cached = require(file) as NativeExports;
      return cached;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'MODULE_NOT_FOUND') throw err;
    }
  }
  throw new AddonNotBuiltError(tried);
}

/** Returns the named native function or throws naming what is missing. */
export function nativeFunction<F extends (...args: never[]) => unknown>(name: string): F {
  const value = loadNative()[name];
  if (typeof value !== 'function') throw new Error(`native addon has no function ${name}; rebuild it (npm run build:addon)`);
  return value as F;
}
