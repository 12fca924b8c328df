/**
 * `npm run test:extension`: runs the mocha suites in test/extension/suite inside a real VS Code
 * extension host (code-server's VS Code server + Debian Chromium), in two phases:
 *   1. the repository as the development extension (webpack bundle in dist/), every test;
 *   2. the packaged .vsix (`npm run package`), installed by the VS Code server's own
 *      --install-extension, on the user path: activation, Start VM, terminal, rings, chat pair, Stop VM.
 * Prints each result and one closing "N passed, N failed, N skipped" line for both phases.
 * Each phase's workspace is a temp folder; lab state goes to its .vlab/.
 *   VLAB_EXT_TEST_GREP=regex   run only matching tests (phase 1; phase 2 is skipped)
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot, serverMain, Workbench } from './harness/workbench';
import type { ReportLine } from './suite/index';

const overallTimeoutMs = Number(process.env.VLAB_EXT_TEST_TIMEOUT_MS ?? 15 * 60_000);
const resultsDir = join(repoRoot, 'test-results');
const VSIX_SUBSET = 'activation|Start VM|Guest Terminal|draws live frames|Launch Chat Pair|Stop VM';

interface Counts { passed: number; failed: number; skipped: number }

async function runPhase(label: string, extensionPath: string, grep: string | undefined): Promise<Counts> {
  console.log(`\n--- ${label}`);
  const work = mkdtempSync(join(tmpdir(), 'vlab-exttest-'));
  const workspace = join(work, 'workspace');
  mkdirSync(workspace);
  const reportFile = join(work, 'report.jsonl');
  const serverLog = createWriteStream(join(resultsDir, `extension-server-${label.split(' ')[0]}.log`));
  const started = Date.now();
  let bench: Workbench | undefined;
  let printed = 0;
  const counts: Counts = { passed: 0, failed: 0, skipped: 0 };
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
      extensionDevelopmentPath: extensionPath,
      extensionTestsPath: join(__dirname, 'suite', 'index.js'),
      env: { VLAB_EXT_TEST_REPORT: reportFile, VLAB_EXT_TEST_RESULTS: resultsDir, VLAB_EXT_TEST_WORKSPACE: workspace, ...(grep ? { VLAB_EXT_TEST_GREP: grep } : {}) },
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
    console.log(`  FAIL the extension host exited (code ${code}) before the suite ended; see test-results/extension-server-*.log`);
    counts.failed++;
  }
  console.log(`[${label}] ${counts.passed} passed, ${counts.failed} failed, ${counts.skipped} skipped in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return counts;
}

/** Packages the extension and installs the .vsix with the VS Code server's CLI into a temp extensions dir. */
function installVsix(into: string): string {
  const vsix = join(repoRoot, 'dist', 'virtio-crypto-lab.vsix');
  const pkg = spawnSync('npm', ['run', '--silent', 'package'], { cwd: repoRoot, encoding: 'utf8' });
  if (pkg.status !== 0 || !existsSync(vsix)) throw new Error(`npm run package failed:\n${pkg.stdout}\n${pkg.stderr}`);
  const home = join(into, 'home');
  mkdirSync(home, { recursive: true });
  execFileSync(process.execPath, [serverMain, '--install-extension', vsix, '--extensions-dir', join(into, 'extensions'), '--server-data-dir', join(into, 'server'), '--accept-server-license-terms'], {
    env: { ...process.env, HOME: home, XDG_DATA_HOME: join(home, 'data'), XDG_CONFIG_HOME: join(home, 'config'), XDG_CACHE_HOME: join(home, 'cache') },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const installed = readdirSync(join(into, 'extensions')).find((d) => d.startsWith('virtio-crypto-lab.virtio-crypto-lab-'));
  if (!installed) throw new Error('the .vsix did not install');
  return join(into, 'extensions', installed);
}

async function main(): Promise<number> {
  if (!existsSync(join(repoRoot, 'dist', 'extension.js'))) {
    console.log('dist/extension.js is missing: run npm run build first');
    console.log('0 passed, 1 failed');
    return 1;
  }
  mkdirSync(resultsDir, { recursive: true });
  const grep = process.env.VLAB_EXT_TEST_GREP;
  const total: Counts = { passed: 0, failed: 0, skipped: 0 };
  const add = (c: Counts): void => { total.passed += c.passed; total.failed += c.failed; total.skipped += c.skipped; };
  add(await runPhase('repository (development extension)', repoRoot, grep));
  if (!grep) {
    const tmp = mkdtempSync(join(tmpdir(), 'vlab-vsix-'));
    try {
      const installed = installVsix(tmp);
      console.log(`installed the .vsix as ${installed}`);
      add(await runPhase('vsix (installed package)', installed, VSIX_SUBSET));
    } catch (err) {
      console.log(`  FAIL packaging or installing the .vsix: ${(err as Error).message}`);
      total.failed++;
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  }
  console.log(`${total.passed} passed, ${total.failed} failed, ${total.skipped} skipped`);
  return total.failed === 0 && total.passed > 0 ? 0 : 1;
}

main().then((code) => process.exit(code), (err) => { console.error(err); console.log('0 passed, 1 failed'); process.exit(1); });
