/**
 * The rule table keeps its promises: ids unique, every rule with a clause, one row in
 * docs/checking.md, and at least one bad-driver test named after it (ring-rules, crypto-rules) — a
 * rule nobody can break in a test is a rule nobody knows the oracle catches.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { R, RULES, named, ruleById, ruleTag } from '../../../../backend/conformance/rules';
import { REPO } from '../../../repo-root';

describe('conformance rule table', () => {
  const rules = RULES.slice(1);

  it('has unique ids, a clause each, and R numbers that index it', () => {
    assert.equal(new Set(rules.map((r) => r.id)).size, rules.length);
    for (const r of rules) assert.match(r.clause, /^(§\d|vhost-user)/, r.id);
    assert.equal(Object.keys(R).length, RULES.length, 'one R number per row');
    for (const [name, n] of Object.entries(R)) assert.ok(RULES[n], `${name} = ${n} has a row`);
    assert.equal(ruleById('chain.order'), RULES[R.ChainOrder]);
  });

  it('names a rule the same way everywhere: [clause id] for the driver, [device limit id, clause] for the device', () => {
    assert.equal(ruleTag(R.ChainOrder), '[§2.7.4.2 chain.order]');
    assert.equal(named(R.CryptoMaxSize, 'too big'), 'too big [device limit device.max-size, §5.9.5]');
  });

  it('docs/checking.md has one row per rule, with its clause', () => {
    const doc = readFileSync(join(REPO, 'docs', 'checking.md'), 'utf8');
    for (const r of rules) {
      const row = doc.split('\n').find((l) => l.startsWith(`| \`${r.id}\` |`));
      assert.ok(row, `docs/checking.md has a row for ${r.id}`);
      assert.ok(row.includes(r.clause), `the row of ${r.id} cites ${r.clause}`);
    }
  });

  it('every rule has a bad-driver test named after it', () => {
    const dir = join(REPO, 'test', 'unit', 'backend', 'conformance');
    const tests = ['ring-rules.test.ts', 'crypto-rules.test.ts'].map((f) => readFileSync(join(dir, f), 'utf8')).join('\n');
    const missing = rules.filter((r) => !new RegExp(`it\\((['"])${r.id.replace('.', '\\.')} \\(`).test(tests)).map((r) => r.id);
    assert.deepEqual(missing, []);
  });
});
