import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import * as fc from 'fast-check';
import { quoteForShell } from '../../../../../extension/lab/guest/ssh';

/** Runs `printf '%s\0' ARGS...` through a real shell and splits what it printed. */
function roundTrip(shell: string, args: readonly string[]): string[] {
  // A leading marker argument: printf with no arguments would still print its format once.
  const out = execFileSync(shell, ['-c', quoteForShell(['printf', '%s\\0', 'marker', ...args])], { encoding: 'utf8' });
  const parts = out.split('\0');
  parts.pop(); // the terminator after the last argument
  assert.equal(parts.shift(), 'marker');
  return parts;
}

const specials = ["'", '"', '\\', '$', '`', ' ', '\n', '\t', '*', '?', '[', ']', '~', '=', '!', '#', ';', '&', '|', '(', ')', '{', '}', '<', '>', '%', '-', '\r'];
const piece = fc.oneof(
  fc.constantFrom(...specials),
  fc.string({ unit: 'grapheme', maxLength: 4 }),
  fc.constantFrom('if', 'done', '!', '{', 'FOO=bar', '~root', '$(id)', '${x}', '--', "'\\''"),
);
const arg = fc.array(piece, { maxLength: 6 }).map((ps) => ps.join(''));

for (const shell of ['/bin/sh', '/bin/bash']) {
  test(`quoteForShell round-trips arbitrary arguments through ${shell}`, () => {
    fc.assert(fc.property(fc.array(arg, { maxLength: 6 }), (args) => {
      assert.deepEqual(roundTrip(shell, args), args);
    }), { numRuns: 300 });
  });
}

test('quoteForShell: reserved words and assignments in command position stay commands', () => {
  for (const word of ['if', '!', '{', 'FOO=bar']) {
    const r = spawnSync('/bin/sh', ['-c', quoteForShell([word])], { encoding: 'utf8' });
    assert.equal(r.status, 127, `${word}: ${r.stderr}`); // "not found", not a syntax error (2) or an assignment (0)
  }
});

test('quoteForShell leaves plain words readable and rejects NUL', () => {
  assert.equal(quoteForShell(['uname', '-r', '/lib/modules', 'a,b:c@d%e+f']), 'uname -r /lib/modules a,b:c@d%e+f');
  assert.equal(quoteForShell(['', "it's"]), `'' 'it'\\''s'`);
  assert.throws(() => quoteForShell(['a\0b']), TypeError);
});
