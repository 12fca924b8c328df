#!/usr/bin/env node
// Runs the project's test phases in order and prints one closing line "N passed, N failed, N skipped".
// Phases: unit (plain Node, no VM), integration (boots VMs, one per suite), extension (real VS Code).
// Usage: node test/run-all.mjs [phase ...]   (default: every phase)
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync, existsSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'out', 'test');

function findTests(dir) {
  if (!existsSync(dir)) return [];
  const found = [];
  for (const name of readdirSync(dir).sort()) {
    const full = join(dir, name);
    if (statSync(full).isDirectory()) found.push(...findTests(full));
    else if (name.endsWith('.test.js')) found.push(full);
  }
  return found;
}

function runNodeTests(label, files, extraArgs = []) {
  if (files.length === 0) {
    console.log(`[${label}] no test files`);
    return { passed: 0, failed: 0, skipped: 0 };
  }
  console.log(`\n=== ${label}: ${files.length} file(s) ===`);
  const res = spawnSync(process.execPath, ['--test', '--test-reporter=spec', ...extraArgs, ...files], {
    cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 256 * 1024 * 1024,
  });
  process.stdout.write(res.stdout ?? '');
  const count = (key) => Number((res.stdout.match(new RegExp(`^\\S*\\s*${key} (\\d+)`, 'm')) ?? [])[1] ?? 0);
  const result = { passed: count('pass'), failed: count('fail') + count('cancelled'), skipped: count('skipped') + count('todo') };
  if (res.status !== 0 && result.failed === 0) result.failed = 1; // a crash outside any test still fails
  return result;
}

function runScript(label, script) {
  console.log(`\n=== ${label}: npm run ${script} ===`);
  const res = spawnSync('npm', ['run', '--silent', script], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 256 * 1024 * 1024 });
  process.stdout.write(res.stdout ?? '');
  const m = (res.stdout ?? '').match(/^(\d+) passed, (\d+) failed(?:, (\d+) skipped)?$/m);
  const result = m ? { passed: Number(m[1]), failed: Number(m[2]), skipped: Number(m[3] ?? 0) } : { passed: 0, failed: 0, skipped: 0 };
  if (res.status !== 0 && result.failed === 0) result.failed = 1;
  return result;
}

const phases = {
  unit: () => runNodeTests('unit', findTests(join(out, 'unit'))),
  integration: () => runNodeTests('integration', findTests(join(out, 'integration')), ['--test-concurrency=1']),
  extension: () => (existsSync(join(root, 'test', 'extension')) ? runScript('extension', 'test:extension') : { passed: 0, failed: 0, skipped: 0 }),
  e2e: () => (existsSync(join(root, 'test', 'e2e')) ? runScript('e2e', 'test:e2e') : { passed: 0, failed: 0, skipped: 0 }),
};

const wanted = process.argv.slice(2).length ? process.argv.slice(2) : Object.keys(phases);
const total = { passed: 0, failed: 0, skipped: 0 };
for (const name of wanted) {
  if (!phases[name]) { console.error(`unknown phase ${name}; phases: ${Object.keys(phases).join(', ')}`); process.exit(2); }
  const r = phases[name]();
  console.log(`[${name}] ${r.passed} passed, ${r.failed} failed, ${r.skipped} skipped`);
  for (const k of Object.keys(total)) total[k] += r[k];
}
console.log(`\n${total.passed} passed, ${total.failed} failed, ${total.skipped} skipped`);
process.exit(total.failed === 0 && total.passed > 0 ? 0 : 1);
