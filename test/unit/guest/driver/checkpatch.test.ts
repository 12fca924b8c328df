import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { REPO } from '../../../repo-root';

const repo = REPO;

// The kernel's own style checker over the guest driver: no errors, no warnings (scripts/setup.sh --test
// installs linux-source, which carries checkpatch.pl).
test('guest driver is checkpatch-clean (no errors, no warnings)', () => {
  const res = spawnSync('bash', [path.join(repo, 'scripts', 'checkpatch.sh')], { encoding: 'utf8', timeout: 120_000 });
  assert.equal(res.status, 0, `checkpatch.sh failed (exit ${res.status}):\n${res.stdout}${res.stderr}`);
  assert.doesNotMatch(res.stdout, /(ERROR|WARNING):/, res.stdout);
});
