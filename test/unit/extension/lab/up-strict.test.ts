// `vlab up --strict`: parsing and validation (ts backend only), the backend process the lab starts
// gets --strict (its telemetry says so), and the lab's state and status record it.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readSnapshotOrNull } from '../../../../backend/telemetry/client';
import { UsageError } from '../../../../extension/cli/command';
import { formatStatus, parseUpArgs } from '../../../../extension/cli/commands/lab';
import { startBackendProcess } from '../../../../extension/lab/backend-process';
import { LabError } from '../../../../extension/lab/common/errors';
import { labPaths } from '../../../../extension/lab/common/paths';
import { readCmdline, terminate } from '../../../../extension/lab/host/proc';
import { Lab } from '../../../../extension/lab/lab';
import { writeState } from '../../../../extension/lab/state';
import { resolveUpOptions } from '../../../../extension/lab/up-options';
import { REPO } from '../../../repo-root';

function dir(t: { after(fn: () => void): void }): string {
  const d = mkdtempSync(join(tmpdir(), 'vlab-strict-'));
  t.after(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

test('--strict: parsed into the up options; refused with the builtin backend', () => {
  assert.equal(parseUpArgs(['--strict']).options.strict, true);
  assert.equal('strict' in parseUpArgs([]).options, false);
  assert.equal(resolveUpOptions(parseUpArgs(['--strict']).options).strict, true);
  assert.throws(() => parseUpArgs(['--strict', '--backend', 'builtin']), (e: unknown) => e instanceof UsageError && /needs the ts backend/.test(e.message));
  assert.throws(() => resolveUpOptions({ backend: 'builtin', strict: true }), (e: unknown) => e instanceof LabError && e.kind === 'bad-option' && /needs the ts backend/.test(e.message));
  assert.equal(resolveUpOptions({ backend: 'builtin', strict: false }).strict, false);
});

for (const strict of [true, false]) {
  test(`the backend the lab starts ${strict ? 'runs strict (--strict on its command line, telemetry "strict": true)' : 'is not strict without --strict'}`, async (t) => {
    const d = dir(t);
    const paths = labPaths(d, join(d, 'st'), {});
    mkdirSync(paths.stateDir, { recursive: true });
    const started = await startBackendProcess(paths, join(REPO, 'bin', 'vlab.js'), { engine: 'openssl', strict }, () => {}, undefined);
    t.after(() => terminate(started.record, 5000));
    assert.equal(readCmdline(started.record.pid)?.includes('--strict'), strict);
    // The socket exists once it listens; telemetry answers a moment later on a loaded machine.
    let snapshot = null;
    for (let i = 0; i < 100 && !snapshot; i++) snapshot = await readSnapshotOrNull(paths.telemetrySocket, 3000);
    assert.ok(snapshot?.conformance, 'the backend answers telemetry with a conformance section');
    assert.equal(snapshot.conformance.strict, strict);
  });
}

test('state.json records --strict and status shows it (JSON and text)', async (t) => {
  const d = dir(t);
  const stateDir = join(d, 'st');
  const paths = labPaths(d, stateDir, {});
  mkdirSync(paths.stateDir, { recursive: true });
  const options = resolveUpOptions({ strict: true });
  writeState(paths, { schema: 1, state: 'failed', reason: 'test', options, accel: { kind: 'tcg', why: 'test' }, kernelVersion: 'k', upPid: 1, startedAt: new Date().toISOString() });
  const status = await Lab.forWorkspace(d, { stateDir, env: {} }).status({ device: false, telemetry: false });
  assert.equal(status.backend.kind, 'ts');
  assert.equal(status.backend.strict, true);
  assert.match(formatStatus(status), /^backend +ts \(strict\)$/m);
  writeState(paths, { schema: 1, state: 'failed', reason: 'test', options: resolveUpOptions({}), accel: { kind: 'tcg', why: 'test' }, kernelVersion: 'k', upPid: 1, startedAt: new Date().toISOString() });
  const plain = await Lab.forWorkspace(d, { stateDir, env: {} }).status({ device: false, telemetry: false });
  assert.equal('strict' in plain.backend, false);
});
