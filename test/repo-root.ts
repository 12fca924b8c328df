import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../extension/lab/common/repo-root';

/** The repository root, by the lab's own rule (the nearest folder above holding bin/vlab.js). */
function findRepo(): string {
  const root = repoRoot();
  if (!existsSync(join(root, 'package.json')) || !existsSync(join(root, 'bin', 'vlab.js'))) throw new Error(`no repository root above ${__dirname}`);
  return root;
}

export const REPO = findRepo();
