// The driver's problems for the Problems panel: gcc's output through kbuild (notes, macro expansions,
// included headers, staged paths) and checkpatch's two output forms, parsed into file:line records.
// Plus checkpatch.sh over a temporary copy of the driver with a deliberate finding.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseCheckpatchProblems, parseCompilerProblems, parseDiagnostics } from '../../../../../extension/lab/driver/diagnostics';
import { runCheckpatch } from '../../../../../extension/lab/driver/checkpatch';
import { driverSourceDir } from '../../../../../extension/lab/driver/driver';

const paths = { stagedDir: '/s/stage', sourceDir: '/repo/guest/driver', cwd: '/usr/src/linux-headers-6.1' };

test('gcc: a warning in the driver keeps its place, its -W option becomes the code, notes become related', () => {
  const out = [
    'make: Entering directory \'/usr/src/linux-headers-6.1\'',
    '  CC [M]  /s/stage/vc_stats.c',
    '/s/stage/vc_stats.c: In function ‘vc_stats_show’:',
    '/s/stage/vc_stats.c:40:13: warning: unused variable ‘n’ [-Wunused-variable]',
    '/s/stage/vc_stats.c:12:5: note: declared here',
    '/s/stage/vc_main.c:9:1: error: expected ‘;’ before ‘}’ token',
    'make[2]: *** [scripts/Makefile.build:250: /s/stage/vc_main.o] Error 1',
  ].join('\n');
  assert.deepEqual(parseCompilerProblems(out, paths), [
    {
      source: 'gcc', file: '/repo/guest/driver/vc_stats.c', line: 40, column: 13, severity: 'warning', message: 'unused variable ‘n’', code: '-Wunused-variable',
      related: [{ file: '/repo/guest/driver/vc_stats.c', line: 12, column: 5, message: 'declared here' }],
    },
    { source: 'gcc', file: '/repo/guest/driver/vc_main.c', line: 9, column: 1, severity: 'error', message: 'expected ‘;’ before ‘}’ token', code: undefined, related: [] },
  ]);
});

test('gcc: a warning reported inside a kernel macro is shown at the driver line that expands it', () => {
  const out = [
    './include/linux/kern_levels.h:5:25: warning: format ‘%d’ expects argument of type ‘int’ [-Wformat=]',
    './include/linux/printk.h:429:25: note: in definition of macro ‘printk_index_wrap’',
    '/s/stage/vc_main.c:12:9: note: in expansion of macro ‘pr_info’',
    '/s/stage/vc_main.c:12:30: note: format string is defined here',
  ].join('\n');
  const [p] = parseCompilerProblems(out, paths);
  assert.ok(p);
  assert.equal(p.file, '/repo/guest/driver/vc_main.c');
  assert.deepEqual([p.line, p.column, p.severity, p.code], [12, 30, 'warning', '-Wformat=']);
  assert.deepEqual(p.related[0], { file: '/usr/src/linux-headers-6.1/include/linux/kern_levels.h', line: 5, column: 25, message: 'reported here' });
  assert.equal(p.related.length, 3, 'where gcc reported it and the other two notes');
});

test('gcc: an error in an included kernel header is shown at the driver\'s #include; -Werror= codes are the warning', () => {
  const header = '/usr/src/linux-headers-6.1/include/linux';
  const out = `In file included from ${header}/virtio.h:7,
                 from /s/stage/vlab_cryptodev.h:10,
                 from /s/stage/vc_main.c:5:
${header}/scatterlist.h:20:3: error: implicit declaration of function ‘foo’ [-Werror=implicit-function-declaration]`;
  const [p] = parseCompilerProblems(out, paths);
  assert.ok(p);
  assert.deepEqual([p.file, p.line, p.severity, p.code], ['/repo/guest/driver/vlab_cryptodev.h', 10, 'error', '-Wimplicit-function-declaration']);
  assert.equal(p.related[0]?.file, '/usr/src/linux-headers-6.1/include/linux/scatterlist.h');
});

test('gcc: the vlab CLI\'s own lines (paths relative to its folder) read back', () => {
  const out = 'guest/driver/vc_stats.c:40:13: warning: unused variable ‘n’ [-Wunused-variable]\nbuilt vlab_cryptodev.ko for 6.1 in 3 s (1 warning(s))';
  const [p] = parseCompilerProblems(out, { stagedDir: '/repo/guest/driver', sourceDir: '/repo/guest/driver', cwd: '/repo' });
  assert.deepEqual([p?.file, p?.line, p?.severity], ['/repo/guest/driver/vc_stats.c', 40, 'warning']);
});

test('gcc: parseDiagnostics (the CLI\'s) still skips notes and keeps the message whole', () => {
  const d = parseDiagnostics('/s/stage/a.c:1:2: warning: x [-Wfoo]\n/s/stage/a.c:1:1: note: n', '/s/stage', '/r');
  assert.deepEqual(d, [{ file: '/r/a.c', line: 1, column: 2, severity: 'warning', message: 'x [-Wfoo]' }]);
});

test('checkpatch: --terse lines (scripts/checkpatch.sh) and the default two-line form', () => {
  const terse = [
    './vc_kernel.c:250: CHECK:OPEN_ENDED_LINE: Lines should not end with a \'(\'',
    './vc_main.c:3: ERROR:TRAILING_WHITESPACE: trailing whitespace',
    'vc_stats.c:7: WARNING: line length of 120 exceeds 100 columns',
    'total: 1 errors, 1 warnings, 1 checks, 840 lines checked',
  ].join('\n');
  assert.deepEqual(parseCheckpatchProblems(terse, '/repo/guest/driver').map((p) => [p.file, p.line, p.severity, p.code, p.message]), [
    ['/repo/guest/driver/vc_kernel.c', 250, 'info', 'OPEN_ENDED_LINE', 'Lines should not end with a \'(\''],
    ['/repo/guest/driver/vc_main.c', 3, 'error', 'TRAILING_WHITESPACE', 'trailing whitespace'],
    ['/repo/guest/driver/vc_stats.c', 7, 'warning', undefined, 'line length of 120 exceeds 100 columns'],
  ]);
  const long = [
    'WARNING:LONG_LINE: line length of 120 exceeds 100 columns',
    '#57: FILE: vc_main.c:57:',
    '+\tpr_info("...");',
    '',
    'total: 0 errors, 1 warnings, 60 lines checked',
  ].join('\n');
  assert.deepEqual(parseCheckpatchProblems(long, '/d').map((p) => [p.source, p.file, p.line, p.severity, p.code]), [['checkpatch', '/d/vc_main.c', 57, 'warning', 'LONG_LINE']]);
});

test('checkpatch.sh over a temporary copy finds a deliberate trailing whitespace at its line', { timeout: 120_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'vlab-checkpatch-'));
  try {
    cpSync(driverSourceDir(), dir, { recursive: true });
    const file = join(dir, 'vc_stats.c');
    const lines = readFileSync(file, 'utf8').split('\n');
    lines.splice(2, 0, '/* deliberate */ ');
    writeFileSync(file, lines.join('\n'));
    const r = await runCheckpatch(dir);
    if (r.skipped) {
      t.skip(r.skipped);
      return;
    }
    const found = r.problems.find((p) => p.file === file && p.code === 'TRAILING_WHITESPACE');
    assert.ok(found, JSON.stringify(r.problems));
    assert.equal(found.line, 3);
    assert.equal(found.severity, 'error');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
