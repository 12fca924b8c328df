import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';

/** The repository root, found from any test file's compiled location (out/test/...) or its source. */
function findRepo(): string {
  for (let dir = __dirname; dirname(dir) !== dir; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'bin', 'vlab.js'))) return dir;
  }
  throw new Error(`no repository root above ${__dirname}`);
}

export const REPO = findRepo();
