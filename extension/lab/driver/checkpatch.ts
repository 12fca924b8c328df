/**
 * Runs the kernel's checkpatch.pl over a driver source folder through scripts/checkpatch.sh (which
 * fetches checkpatch.pl from Debian's linux-source once) and returns its findings as problems. A host
 * without the script (an installed .vsix ships no scripts/) or without linux-source gets a reason
 * instead of findings.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../common/repo-root';
import { parseCheckpatchProblems, type Problem } from './diagnostics';

export interface CheckpatchResult {
  readonly problems: readonly Problem[];
  /** Why checkpatch did not run (the problems are then empty). */
  readonly skipped?: string;
}

/** The script's "no kernel source tarball" exit. */
const NO_SOURCE_EXIT = 3;

export function checkpatchScript(): string {
  return join(repoRoot(['scripts', 'checkpatch.sh']), 'scripts', 'checkpatch.sh');
}

/** checkpatch over `sourceDir`'s *.c and *.h; `strict` adds its CHECK-level findings (shown as info). */
export function runCheckpatch(sourceDir: string, opts: { readonly strict?: boolean; readonly signal?: AbortSignal } = {}): Promise<CheckpatchResult> {
  const script = checkpatchScript();
  if (!existsSync(script)) return Promise.resolve({ problems: [], skipped: 'scripts/checkpatch.sh is not part of this installation' });
  return new Promise((resolve, reject) => {
    execFile('bash', [script, ...(opts.strict ? ['--strict'] : [])], {
      env: { ...process.env, VLAB_CHECKPATCH_DIR: sourceDir },
      signal: opts.signal,
      maxBuffer: 16 * 1024 * 1024,
      timeout: 120_000,
    }, (err, stdout, stderr) => {
      const code = err && typeof err.code === 'number' ? err.code : err ? undefined : 0;
      // checkpatch.pl exits 1 when it found errors or warnings: that is a result, not a failure.
      if (code === 0 || code === 1) resolve({ problems: parseCheckpatchProblems(stdout, sourceDir) });
      else if (code === NO_SOURCE_EXIT) resolve({ problems: [], skipped: stderr.trim() || 'no kernel source tarball (sudo apt-get install -y linux-source)' });
      else reject(new Error(`checkpatch.sh failed: ${stderr.trim() || err?.message}`));
    });
  });
}
