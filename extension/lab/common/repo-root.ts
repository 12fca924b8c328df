import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';

/**
 * The repository (or the installed extension) root: the nearest folder above this module that holds
 * `marker`. One rule for every layout the code runs from: sources (extension/lab/), compiled
 * (out/extension/lab/) and the extension bundle (dist/).
 */
export function repoRoot(marker: readonly string[] = ['bin', 'vlab.js']): string {
  for (let dir = __dirname; ; dir = dirname(dir)) {
    if (existsSync(join(dir, ...marker))) return dir;
    if (dirname(dir) === dir) return join(__dirname, '..', '..');
  }
}
