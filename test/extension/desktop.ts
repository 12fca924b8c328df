/**
 * `npm run test:desktop`: the same extension-host suite in desktop VS Code (Electron), downloaded by
 * @vscode/test-electron into .vscode-test/. For machines that can reach VS Code's update server;
 * CI here cannot (docs/extension.md), so CI runs `npm run test:extension` (code-server) instead.
 *   VSCODE_VERSION=1.100.3 npm run test:desktop
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runTests } from '@vscode/test-electron';
import type { ReportLine } from './suite/index';

const repoRoot = join(__dirname, '..', '..', '..');

async function main(): Promise<number> {
  const work = mkdtempSync(join(tmpdir(), 'vlab-desktop-'));
  const workspace = join(work, 'workspace');
  mkdirSync(workspace);
  const reportFile = join(work, 'report.jsonl');
  let code = 1;
  try {
    code = await runTests({
      version: process.env.VSCODE_VERSION ?? 'stable',
      extensionDevelopmentPath: repoRoot,
      extensionTestsPath: join(__dirname, 'suite', 'index.js'),
      launchArgs: [workspace, '--disable-extensions', '--disable-workspace-trust', '--user-data-dir', join(work, 'user-data')],
      extensionTestsEnv: { VLAB_EXT_TEST_REPORT: reportFile, VLAB_EXT_TEST_WORKSPACE: workspace },
    }).catch((err: Error) => {
      console.log(`  FAIL could not run desktop VS Code: ${err.message}`);
      return 1;
    });
  } finally {
    const counts = { passed: 0, failed: 0, skipped: 0 };
    let lines: ReportLine[] = [];
    try {
      lines = readFileSync(reportFile, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as ReportLine);
    } catch {
      // no report: the host never ran the suite
    }
    for (const l of lines) {
      if (l.kind === 'pass') { counts.passed++; console.log(`  ok   ${l.title}`); }
      else if (l.kind === 'fail') { counts.failed++; console.log(`  FAIL ${l.title}\n${l.error}`); }
      else if (l.kind === 'pending') counts.skipped++;
      else if (l.kind === 'log') console.log(`       ${l.text}`);
    }
    if (code !== 0 && counts.failed === 0) counts.failed = 1;
    console.log(`${counts.passed} passed, ${counts.failed} failed, ${counts.skipped} skipped`);
    rmSync(work, { recursive: true, force: true });
  }
  return code;
}

void main().then((c) => process.exit(c));
