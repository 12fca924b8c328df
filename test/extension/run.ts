/**
 * `npm run test:extension`: runs the mocha suites in test/extension/suite inside a real VS Code
 * extension host (code-server's VS Code server + Debian Chromium) with this repository as the
 * development extension, prints each result and a closing "N passed, N failed, N skipped" line.
 * The workspace is a temp folder; lab state goes to its .vlab/ (VLAB_STATE_DIR is not overridden).
 *   VLAB_EXT_TEST_GREP=pattern   run only matching tests
 */
import { createWriteStream, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot, Workbench } from './harness/workbench';
import type { ReportLine } from './suite/index';

const overallTimeoutMs = Number(process.env.VLAB_EXT_TEST_TIMEOUT_MS ?? 15 * 60_000);

async function main(): Promise<number> {
  const bundle = join(repoRoot, 'dist', 'extension.js');
  if (!existsSync(bundle)) {
    console.log(`dist/extension.js is missing: run npm run build first`);
    console.log('0 passed, 1 failed');
    return 1;
  }
  const resultsDir = join(repoRoot, 'test-results');
  mkdirSync(resultsDir, { recursive: true });
  const work = mkdtempSync(join(tmpdir(), 'vlab-exttest-'));
  const workspace = join(work, 'workspace');
  mkdirSync(workspace);
  const reportFile = join(work, 'report.jsonl');
  const serverLog = createWriteStream(join(resultsDir, 'extension-server.log'));
  const started = Date.now();
  let bench: Workbench | undefined;
  let printed = 0;
  const counts = { passed: 0, failed: 0, skipped: 0 };
  let ended = false;
  const drain = (): void => {
    if (!existsSync(reportFile) || statSync(reportFile).size === 0) return;
    const lines = readFileSync(reportFile, 'utf8').split('\n').filter(Boolean);
    for (const raw of lines.slice(printed)) {
      const line = JSON.parse(raw) as ReportLine;
      if (line.kind === 'pass') { counts.passed++; console.log(`  ok   ${line.title} (${line.ms} ms)`); }
      else if (line.kind === 'fail') { counts.failed++; console.log(`  FAIL ${line.title}\n${line.error.replace(/^/gm, '       ')}`); }
      else if (line.kind === 'pending') { counts.skipped++; console.log(`  skip ${line.title}`); }
      else if (line.kind === 'log') console.log(`       ${line.text}`);
      else ended = true;
    }
    printed = lines.length;
  };
  let code = 1;
  try {
    bench = await Workbench.start({
      workspace,
      extensionDevelopmentPath: repoRoot,
      extensionTestsPath: join(__dirname, 'suite', 'index.js'),
      env: { VLAB_EXT_TEST_REPORT: reportFile, VLAB_EXT_TEST_RESULTS: resultsDir, VLAB_EXT_TEST_WORKSPACE: workspace },
      log: (line) => serverLog.write(`${line}\n`),
    });
    const poll = setInterval(drain, 250);
    const timeout = new Promise<number>((r) => setTimeout(() => r(-1), overallTimeoutMs).unref());
    code = await Promise.race([bench.exitCode, timeout]);
    clearInterval(poll);
    if (code === -1) {
      console.log(`  FAIL extension suite did not finish within ${overallTimeoutMs / 1000} s`);
      await bench.screenshot(join(resultsDir, 'extension-timeout.png')).catch(() => undefined);
      counts.failed++;
    }
  } catch (err) {
    console.log(`  FAIL could not run the extension host: ${(err as Error).message}`);
    counts.failed++;
  } finally {
    drain();
    await bench?.close();
    serverLog.end();
    rmSync(work, { recursive: true, force: true });
  }
  if (!ended && code !== -1 && counts.failed === 0) {
    console.log(`  FAIL the extension host exited (code ${code}) before the suite ended; see test-results/extension-server.log`);
    counts.failed++;
  }
  console.log(`extension suite took ${((Date.now() - started) / 1000).toFixed(1)} s`);
  console.log(`${counts.passed} passed, ${counts.failed} failed, ${counts.skipped} skipped`);
  return counts.failed === 0 && counts.passed > 0 ? 0 : 1;
}

main().then((code) => process.exit(code), (err) => { console.error(err); console.log('0 passed, 1 failed'); process.exit(1); });
