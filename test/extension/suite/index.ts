/**
 * Entry the VS Code extension host loads through the `extensionTestsPath` payload: runs the mocha
 * suites of this folder in file-name order and streams one JSON line per result into the file named
 * by VLAB_EXT_TEST_REPORT, which the runner (../run.ts) prints. Rejecting makes the workbench exit
 * with a non-zero code.
 */
import { appendFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import Mocha from 'mocha';

export type ReportLine =
  | { kind: 'pass'; title: string; ms: number }
  | { kind: 'fail'; title: string; error: string }
  | { kind: 'pending'; title: string }
  | { kind: 'log'; text: string }
  | { kind: 'end'; passed: number; failed: number; skipped: number };

export function report(line: ReportLine): void {
  const file = process.env.VLAB_EXT_TEST_REPORT;
  if (file) appendFileSync(file, `${JSON.stringify(line)}\n`);
}

export async function run(): Promise<void> {
  const mocha = new Mocha({ ui: 'bdd', timeout: 60_000, color: false, reporter: 'dot' });
  const grep = process.env.VLAB_EXT_TEST_GREP;
  if (grep) mocha.grep(grep);
  for (const name of readdirSync(__dirname).filter((n) => n.endsWith('.test.js')).sort()) mocha.addFile(join(__dirname, name));
  await mocha.loadFilesAsync();
  await new Promise<void>((resolve, reject) => {
    let passed = 0;
    let failed = 0;
    let skipped = 0;
    const runner = mocha.run(() => {
      report({ kind: 'end', passed, failed, skipped });
      if (failed > 0) reject(new Error(`${failed} test(s) failed`));
      else resolve();
    });
    runner.on('pass', (test) => { passed++; report({ kind: 'pass', title: test.fullTitle(), ms: test.duration ?? 0 }); });
    runner.on('fail', (test, err: Error) => { failed++; report({ kind: 'fail', title: test.fullTitle(), error: err.stack ?? String(err) }); });
    runner.on('pending', (test) => { skipped++; report({ kind: 'pending', title: test.fullTitle() }); });
  });
}
