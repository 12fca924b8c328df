// Failure paths of `up` that need no VM: the lab must refuse early, say why and how to fix it.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Lab } from '../../../../extension/lab/lab';
import { LabError } from '../../../../extension/lab/common/errors';
import { type CliRun, runMainCaptured } from '../../../cli-capture';

function tempDir(t: { after(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'vlab-fail-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('missing QEMU binary: clear error with the install command, nothing started', async (t) => {
  const dir = tempDir(t);
  const lab = Lab.forWorkspace(dir, { stateDir: join(dir, 'st'), env: {}, host: { qemu: join(dir, 'no-such-qemu') } });
  await assert.rejects(lab.up({}), (e: unknown) => e instanceof LabError && e.kind === 'missing-qemu' && /not found/.test(e.message) && /apt-get install -y qemu-system-x86/.test(e.fix ?? ''));
  assert.equal((await lab.status()).state, 'stopped');
});

test('missing guest kernel: clear error with the install command', async (t) => {
  const dir = tempDir(t);
  mkdirSync(join(dir, 'boot'));
  const lab = Lab.forWorkspace(dir, { stateDir: join(dir, 'st'), env: { PATH: process.env.PATH }, host: { bootDir: join(dir, 'boot') } });
  await assert.rejects(lab.up({ accel: 'tcg' }), (e: unknown) => e instanceof LabError && e.kind === 'missing-kernel' && /linux-image-amd64/.test(e.fix ?? ''));
  const named = Lab.forWorkspace(dir, { stateDir: join(dir, 'st'), env: { PATH: process.env.PATH }, host: { kernelVersion: '0.0.0-nope' } });
  await assert.rejects(named.up({ accel: 'tcg' }), (e: unknown) => e instanceof LabError && e.kind === 'missing-kernel' && /0\.0\.0-nope/.test(e.message));
});

test('bad options are refused before anything starts', async (t) => {
  const dir = tempDir(t);
  const lab = Lab.forWorkspace(dir, { stateDir: join(dir, 'st'), env: {} });
  await assert.rejects(lab.up({ memoryMb: 12 }), (e: unknown) => e instanceof LabError && e.kind === 'bad-option');
});

test('a state folder too deep for unix socket paths is refused with a hint', (t) => {
  const dir = tempDir(t);
  assert.throws(() => Lab.forWorkspace(dir, { stateDir: join(dir, 'x'.repeat(120)), env: {} }), /VLAB_STATE_DIR/);
});

function cli(args: string[], cwd: string, env: NodeJS.ProcessEnv): Promise<CliRun> {
  return runMainCaptured(args, { cwd, env });
}

test('vlab up with a missing QEMU exits 1 and prints the fix', async (t) => {
  const dir = tempDir(t);
  const r = await cli(['up'], dir, { VLAB_QEMU: join(dir, 'nope'), PATH: process.env.PATH });
  assert.equal(r.code, 1);
  assert.match(r.err, /vlab up: QEMU binary ".*nope" not found/);
  assert.match(r.err, /fix: sudo apt-get install -y qemu-system-x86/);
});

test('vlab up usage errors exit 2', async (t) => {
  const dir = tempDir(t);
  assert.equal((await cli(['up', '--accel', 'fast'], dir, {})).code, 2);
  assert.equal((await cli(['up', '--memory', '12abc'], dir, {})).code, 2);
  assert.equal((await cli(['ssh', 'uname'], dir, {})).code, 2);
});

test('vlab up --dry-run prints the QEMU command line without starting anything', async (t) => {
  const dir = tempDir(t);
  const r = await cli(['up', '--dry-run', '--backend', 'builtin', '--accel', 'tcg', '--memory', '768'], dir, { PATH: process.env.PATH });
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /^# accel: tcg/m);
  assert.match(r.out, /qemu-system-x86_64 .*-machine q35 .*-m 768M .*hostfwd=tcp:127\.0\.0\.1:\d+-:22/);
  assert.match(r.out, /cryptodev-backend-builtin/);
  const status = await cli(['status', '--json'], dir, {});
  assert.equal(JSON.parse(status.out).state, 'stopped');
});

test('vlab ssh on a stopped lab says so', async (t) => {
  const dir = tempDir(t);
  const r = await cli(['ssh', '--', 'true'], dir, {});
  assert.equal(r.code, 1);
  assert.match(r.err, /not running/);
});
