// planGdb's clear errors, without a guest: the lab is a state file and a stand-in process.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { DEFAULT_UP_OPTIONS, Lab, qemuMarker } from '../../../../../extension/lab/lab';
import { LabError } from '../../../../../extension/lab/common/errors';
import { recordProcess } from '../../../../../extension/lab/host/proc';
import { writeState } from '../../../../../extension/lab/state';
import { planGdb } from '../../../../../extension/lab/debug/plan';
import { runMainCaptured } from '../../../../cli-capture';

function fixture(t: { after(fn: () => void): void }, pathEnv?: string): { lab: Lab; dir: string; running(gdb: boolean): Promise<void> } {
  const dir = mkdtempSync(join(tmpdir(), 'vlab-plan-'));
  const lab = Lab.forWorkspace(dir, { env: {}, ...(pathEnv !== undefined ? { host: { pathEnv } } : {}) });
  mkdirSync(lab.paths.stateDir, { recursive: true });
  const children: ChildProcess[] = [];
  t.after(() => {
    for (const c of children) c.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });
  return {
    lab,
    dir,
    async running(gdb) {
      // A stand-in QEMU: a process whose command line holds the lab's marker (no QMP, no SSH behind it).
      const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)', qemuMarker(lab.paths)], { stdio: 'ignore' });
      children.push(child);
      await sleep(100);
      writeState(lab.paths, {
        schema: 1, state: 'running', options: { ...DEFAULT_UP_OPTIONS, ...(gdb ? { gdb: true } : {}) }, accel: { kind: 'tcg', why: 'test' }, kernelVersion: 'test',
        upPid: process.pid, qemu: recordProcess(child.pid!, qemuMarker(lab.paths)), sshPort: 1, ...(gdb ? { gdbPort: 2 } : {}), startedAt: new Date().toISOString(),
      });
    },
  };
}

const labError = (kind: string, re: RegExp) => (e: unknown): boolean => e instanceof LabError && e.kind === kind && re.test(e.message);

test('not running; running without --gdb; gdb missing; a module path that does not exist; the guest not answering', { timeout: 30_000 }, async (t) => {
  const f = fixture(t);
  await assert.rejects(planGdb(f.lab), labError('not-running', /the lab is not running \(stopped\)/));
  await f.running(false);
  await assert.rejects(planGdb(f.lab), (e: unknown) => labError('bad-option', /not started with --gdb/)(e) && (e as LabError).fix === 'vlab down && vlab up --gdb');
  await f.running(true);
  await assert.rejects(planGdb(f.lab, { module: 'nope.ko' }), labError('bad-option', /nope\.ko does not exist/));
  await assert.rejects(planGdb(f.lab, { module: null }), labError('not-running', /cannot reach the guest over SSH/));
  const noGdb = fixture(t, '/nonexistent');
  await noGdb.running(true);
  await assert.rejects(planGdb(noGdb.lab), (e: unknown) => labError('missing-tool', /gdb is not installed/)(e) && (e as LabError).fix === 'sudo apt-get install -y gdb');
});

test('a crash dump that does not exist, or one without its description and no lab to tell the kernel', async (t) => {
  const f = fixture(t);
  await assert.rejects(planGdb(f.lab, { core: 'missing.elf' }), labError('bad-option', /missing\.elf does not exist/));
  writeFileSync(join(f.dir, 'bare.elf'), 'x');
  await assert.rejects(planGdb(f.lab, { core: 'bare.elf' }), labError('bad-option', /no .*\.vlab\.json beside it/));
});

test('vlab gdb: usage errors, and the error printer for a lab that is not running', async (t) => {
  const f = fixture(t);
  const run = (args: string[]) => runMainCaptured(args, { cwd: f.dir, env: { VLAB_STATE_DIR: '' } });
  const batch = await run(['gdb', '--batch']);
  assert.equal(batch.code, 2);
  assert.match(batch.err, /--batch needs at least one -ex CMD/);
  const both = await run(['gdb', '--module', 'x.ko', '--no-module']);
  assert.equal(both.code, 2);
  const dangling = await run(['gdb', '-ex']);
  assert.match(dangling.err, /-ex needs a gdb command/);
  const down = await run(['gdb', '--batch', '-ex', 'bt']);
  assert.equal(down.code, 1);
  assert.match(down.err, /the lab is not running/);
  assert.match(down.err, /vlab up --gdb/);
  const dump = await run(['dump']);
  assert.equal(dump.code, 1);
  assert.match(dump.err, /the lab is not running/);
});
