/**
 * Single-bug variants of our driver (test/fixtures/driver-bugs/*.patch), each applied to a copy of
 * guest/driver and built for the guest kernel like `vlab driver build`; the grader must catch each
 * (check-driver.test.ts). Test-only: nothing here ships.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, cpSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { MODULE_NAME, buildDriver, driverSourceDir, type DriverBuildTarget } from '../../extension/lab/driver/driver';

export const BUGS_DIR = join(__dirname, '..', '..', '..', 'test', 'fixtures', 'driver-bugs');

/** The variants, by patch name (without .patch). */
export function driverBugs(): string[] {
  return readdirSync(BUGS_DIR).filter((f) => f.endsWith('.patch')).map((f) => f.slice(0, -6)).sort();
}

/** Builds the variant; returns its .ko, copied out of the shared build folder into outDir. */
export async function buildBugVariant(lab: DriverBuildTarget, bug: string, outDir: string): Promise<string> {
  const src = mkdtempSync(join(tmpdir(), `vlab-bug-${bug}-`));
  try {
    cpSync(driverSourceDir(), src, { recursive: true });
    // git apply (git is there wherever the repository is; patch(1) may not be): outside any repository
    // it applies like patch -p1, and the ceiling keeps it from finding one above the copy.
    const p = spawnSync('git', ['apply', '-p1', join(BUGS_DIR, `${bug}.patch`)], { cwd: src, encoding: 'utf8', env: { ...process.env, GIT_CEILING_DIRECTORIES: dirname(src) } });
    if (p.status !== 0) throw new Error(`patch ${bug}: ${p.stdout}${p.stderr}`);
    const build = await buildDriver(lab, { sourceDir: src });
    const ko = join(outDir, `${MODULE_NAME}-${bug}.ko`);
    copyFileSync(build.module, ko);
    return ko;
  } finally {
    rmSync(src, { recursive: true, force: true });
  }
}
