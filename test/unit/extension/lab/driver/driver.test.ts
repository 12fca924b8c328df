// The driver's host-side core: compiler diagnostics, the real Kbuild build (W=1 must be clean, errors
// must come back as file:line), the bench ratios and the CLI's argument checks. No VM.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DriverError, buildDriver, driverSourceDir, formatDiagnostic, parseDiagnostics } from '../../../../../extension/lab/driver/driver';
import { computeRatios, type E2ePoint } from '../../../../../extension/bench/driver';
import { defaultHost } from '../../../../../extension/lab/host/host';
import { labPaths } from '../../../../../extension/lab/common/paths';
import { type CliRun, runMainCaptured } from '../../../../cli-capture';

test('gcc diagnostics are parsed and staged paths mapped back to the sources', () => {
  const out = [
    '  CC [M]  /s/stage/vc_session.c',
    '/s/stage/vc_session.c:42:7: error: expected ‘;’ before ‘}’ token',
    '/s/stage/vc_main.c:9: warning: no previous prototype',
    'In file included from /s/stage/vc_main.c:1:',
    '/usr/src/x/include/linux/foo.h:3:1: fatal error: bar.h: No such file',
  ].join('\n');
  const d = parseDiagnostics(out, '/s/stage', '/repo/guest/driver');
  assert.deepEqual(d, [
    { file: '/repo/guest/driver/vc_session.c', line: 42, column: 7, severity: 'error', message: 'expected ‘;’ before ‘}’ token' },
    { file: '/repo/guest/driver/vc_main.c', line: 9, column: undefined, severity: 'warning', message: 'no previous prototype' },
    { file: '/usr/src/x/include/linux/foo.h', line: 3, column: 1, severity: 'error', message: 'bar.h: No such file' },
  ]);
  assert.equal(formatDiagnostic(d[0]!, '/repo'), 'guest/driver/vc_session.c:42:7: error: expected ‘;’ before ‘}’ token');
});

test('the driver builds with W=1 without a warning; a syntax error comes back as file:line', { timeout: 180_000 }, async () => {
  // A space and a comma in the workspace path: Kbuild's M= cannot take them, the build must cope.
  const work = mkdtempSync(join(tmpdir(), 'vlab-drv build,'));
  try {
    const target = { host: defaultHost(), paths: labPaths(work, join(work, 'state'), {}) };
    const ok = await buildDriver(target);
    assert.deepEqual(ok.warnings, []);
    assert.match(ok.module, /vlab_cryptodev\.ko$/);
    assert.ok(existsSync(ok.module), ok.module);

    const src = join(work, 'src');
    cpSync(driverSourceDir(), src, { recursive: true });
    const file = join(src, 'vc_main.c');
    const lines = readFileSync(file, 'utf8').split('\n');
    const at = lines.findIndex((l) => l.includes('err = vc_virtio_init();'));
    lines[at] = '\terr = vc_virtio_init()';
    writeFileSync(file, lines.join('\n'));
    await assert.rejects(buildDriver(target, { sourceDir: src }), (err: unknown) => {
      assert.ok(err instanceof DriverError);
      assert.equal(err.kind, 'build');
      const e = err.diagnostics.find((d) => d.severity === 'error');
      assert.ok(e, 'an error diagnostic');
      assert.equal(e.file, file);
      assert.ok(e.line === at + 1 || e.line === at + 2, `line ${e.line} near ${at + 1}`);
      return true;
    });
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});

test('bench ratios: ts/builtin and offload/software per size and process count', () => {
  const p = (source: E2ePoint['source'], size: number, procs: number, opsPerSec: number): E2ePoint => ({ source, size, procs, ops: 1, seconds: 1, opsPerSec, MBps: 0 });
  const r = computeRatios([p('builtin', 64, 1, 1000), p('ts', 64, 1, 1500), p('software', 64, 1, 4000), p('builtin', 1024, 8, 10)]);
  const first = r.find((x) => x.size === 64 && x.procs === 1)!;
  assert.equal(first.tsOverBuiltin, 1.5);
  assert.equal(first.builtinOverSoftware, 0.25);
  assert.equal(first.tsOverSoftware, 0.38);
  const other = r.find((x) => x.size === 1024 && x.procs === 8)!;
  assert.equal(other.tsOverBuiltin, undefined);
  assert.equal(r.length, 8);
});

function cli(args: string[]): Promise<CliRun> {
  return runMainCaptured(args, { cwd: process.cwd(), env: process.env });
}

test('CLI: bad arguments are usage errors (exit 2)', async () => {
  assert.equal((await cli(['driver', 'build', 'extra'])).code, 2);
  assert.equal((await cli(['driver', 'load', '--force'])).code, 2);
  const ms = await cli(['bench', 'e2e', '--ms', '5']);
  assert.equal(ms.code, 2);
  assert.match(ms.err, /--ms must be an integer from 100 to 60000/);
  const be = await cli(['bench', 'e2e', '--backend', 'qemu']);
  assert.equal(be.code, 2);
  assert.match(be.err, /--backend takes builtin and\/or ts/);
});
