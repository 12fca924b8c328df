// compile_commands.json for guest/driver: kbuild's .cmd files read back, gcc-only flags filtered for
// clangd 14, entries pointed at the real sources; then the real thing: `vlab driver build` (no VM: it
// builds against the host's kernel headers) and `clangd --check` on every driver file, 0 errors.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { type SpawnSyncReturns, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type CompileCommand, clangArguments, kbuildCompileCommands, parseKbuildCmdFile, shellWords, updateCompileCommands, writeCompileCommands,
} from '../../../../../extension/lab/driver/compile-commands';
import { driverSourceDir } from '../../../../../extension/lab/driver/driver';
import { findExecutable } from '../../../../../extension/lab/host/host';
import { runMainCaptured } from '../../../../cli-capture';

const CMD_61 = [
  "cmd_/b/vc_main.o :=  gcc-12 -Wp,-MMD,/b/.vc_main.o.d -nostdinc -I./include -include /k/include/linux/kconfig.h -D__KERNEL__ -fconserve-stack -mindirect-branch=thunk-extern -mpreferred-stack-boundary=3 -Wimplicit-fallthrough=5 -Wno-format-security -ftrivial-auto-var-init=zero -O2 -DKBUILD_BASENAME='\"vc_main\"' -DKBUILD_MODNAME='\"vlab_cryptodev\"' -c -o /b/vc_main.o /b/vc_main.c   ; ./tools/objtool/objtool --orc --module /b/vc_main.o",
  '',
  'source_/b/vc_main.o := /b/vc_main.c',
  '',
  'deps_/b/vc_main.o := \\',
  '  /k/include/linux/kconfig.h \\',
].join('\n');

test('a kbuild .cmd file: cmd_ (6.1) and savedcmd_ (6.2+) with its source', () => {
  assert.deepEqual(parseKbuildCmdFile(CMD_61), { object: '/b/vc_main.o', source: '/b/vc_main.c', command: CMD_61.split('\n')[0]!.slice('cmd_/b/vc_main.o := '.length) });
  const saved = parseKbuildCmdFile('savedcmd_/b/x.o := gcc -c -o /b/x.o /b/x.c\n');
  assert.deepEqual(saved, { object: '/b/x.o', source: undefined, command: 'gcc -c -o /b/x.o /b/x.c' });
  assert.equal(parseKbuildCmdFile('deps_/b/x.o := \\\n'), undefined);
});

test('shell words: quotes, backslashes and make\'s escapes; the objtool after ";" is not part of it', () => {
  assert.deepEqual(shellWords(`gcc -DA='"x y"' -DB="q\\"r" c\\ d -DC=$$HOME -DD=\\#e ; objtool x`), ['gcc', '-DA="x y"', '-DB=q"r', 'c d', '-DC=$HOME', '-DD=#e']);
  assert.deepEqual(shellWords('a && b'), ['a']);
  assert.deepEqual(shellWords("gcc '' x"), ['gcc', '', 'x']);
  assert.throws(() => shellWords("gcc 'open"), /unbalanced/);
});

test('clang 14 arguments: gcc-only options dropped, two mapped, everything else kept in order', () => {
  const args = clangArguments(shellWords(parseKbuildCmdFile(CMD_61)!.command));
  assert.deepEqual(args, [
    'gcc-12', '-nostdinc', '-I./include', '-include', '/k/include/linux/kconfig.h', '-D__KERNEL__', '-mstack-alignment=8',
    '-Wimplicit-fallthrough', '-Wno-format-security', '-O2', '-DKBUILD_BASENAME="vc_main"', '-DKBUILD_MODNAME="vlab_cryptodev"',
    '-c', '-o', '/b/vc_main.o', '/b/vc_main.c',
  ]);
  // Options clang knows stay, even when they look gcc-ish.
  const kept = ['-mharden-sls=all', '-mskip-rax-setup', '-falign-jumps=1', '-mno-fp-ret-in-387', '-fno-stack-clash-protection', '-ftrivial-auto-var-init=pattern', '-fno-tree-vrp'];
  assert.deepEqual(clangArguments(kept), kept);
  const dropped = ['-fzero-call-used-regs=used-gpr', '-fno-ipa-sra', '-fno-tree-loop-im', '-fstrict-flex-arrays=3', '-mfunction-return=thunk-extern', '-mindirect-branch-cs-prefix', '-mrecord-mcount', '-fno-allow-store-data-races', '-Wp,-MD,/b/.x.d'];
  assert.deepEqual(clangArguments(dropped), []);
});

test('database entries: one per driver .c, pointed at the sources, run from the kernel folder; unchanged files are not rewritten', () => {
  const work = mkdtempSync(join(tmpdir(), 'vlab-ccdb-'));
  try {
    const [build, src, kdir] = ['build', 'src', 'kernel'].map((d) => join(work, d)) as [string, string, string];
    for (const d of [build, src, kdir]) mkdirSync(d);
    writeFileSync(join(src, 'vc_main.c'), '');
    writeFileSync(join(build, '.vc_main.o.cmd'), CMD_61.replaceAll('/b/', `${build}/`));
    // The generated .mod.c (not a source) and a link step (no -c) are left out.
    writeFileSync(join(build, '.vlab_cryptodev.mod.o.cmd'), `cmd_${build}/vlab_cryptodev.mod.o := gcc -c -o ${build}/vlab_cryptodev.mod.o ${build}/vlab_cryptodev.mod.c\n`);
    writeFileSync(join(build, '.vlab_cryptodev.o.cmd'), `cmd_${build}/vlab_cryptodev.o := ld -r -o ${build}/vlab_cryptodev.o @${build}/vlab_cryptodev.mod\n`);
    const entries = kbuildCompileCommands(build, kdir, src);
    assert.equal(entries.length, 1);
    const e = entries[0]!;
    assert.equal(e.directory, kdir);
    assert.equal(e.file, join(src, 'vc_main.c'));
    assert.equal(e.arguments.at(-1), join(src, 'vc_main.c'));
    assert.equal(e.output, join(build, 'vc_main.o'));
    assert.ok(!e.arguments.some((a) => a.startsWith('-Wp,') || a === '-fconserve-stack'));

    const file = writeCompileCommands(src, entries);
    assert.equal(file, join(src, 'compile_commands.json'));
    assert.deepEqual(JSON.parse(readFileSync(file, 'utf8')), entries);
    const mtime = statSync(file).mtimeMs;
    writeCompileCommands(src, entries);
    assert.equal(statSync(file).mtimeMs, mtime, 'the same content is not written again (clangd would re-index)');
    assert.deepEqual(updateCompileCommands(join(work, 'empty-build-dir-missing'), kdir, src).file, undefined);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});

test('vlab driver build writes guest/driver/compile_commands.json; clangd --check reports 0 errors on every driver file', { timeout: 300_000 }, async (t) => {
  const work = mkdtempSync(join(tmpdir(), 'vlab-ccdb-build-'));
  try {
    const r = await runMainCaptured(['driver', 'build', '--json'], { cwd: work, env: { ...process.env, VLAB_STATE_DIR: join(work, 'state') } });
    assert.equal(r.code, 0, r.err);
    const src = driverSourceDir();
    const dbFile = join(src, 'compile_commands.json');
    assert.equal((JSON.parse(r.out) as { compileCommands?: string }).compileCommands, dbFile);
    const db = JSON.parse(readFileSync(dbFile, 'utf8')) as CompileCommand[];
    const kbuild = readFileSync(join(src, 'Kbuild'), 'utf8');
    const objects = [...kbuild.matchAll(/\b(vc_\w+)\.o\b/g)].map((m) => `${m[1]!}.c`).sort();
    assert.deepEqual(db.map((e) => e.file).sort(), objects.map((c) => join(src, c)), 'one entry per object Kbuild lists');

    const clangd = findExecutable('clangd', process.env.PATH ?? '');
    if (!clangd) {
      t.skip('clangd is not installed (bash scripts/setup.sh --test installs it)');
      return;
    }
    const cFiles = readdirSync(src).filter((f) => f.endsWith('.c')).sort();
    for (const f of cFiles) {
      const check: SpawnSyncReturns<string> = spawnSync(clangd, [`--check=${join(src, f)}`], { encoding: 'utf8', cwd: src, timeout: 120_000 });
      const errors = check.stderr.split('\n').filter((l: string) => /^E\[/.test(l));
      assert.match(check.stderr, /All checks completed, 0 errors/, `${f}:\n${errors.join('\n')}`);
      assert.equal(check.status, 0, `${f}: clangd --check exit ${check.status}`);
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});
