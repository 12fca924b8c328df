// The lab does not know our guest driver (extension/lab/lab.ts imports nothing of driver/): the step
// that builds and loads it is composed in by labWithDriver. A lab opened without it refuses guest
// driver 'lab' before anything starts instead of booting a guest without the driver.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Lab } from '../../../../extension/lab/lab';
import { labWithDriver } from '../../../../extension/lab/with-driver';
import { LabError } from '../../../../extension/lab/common/errors';

test("a Lab without the driver step refuses guest driver 'lab' before QEMU starts", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'vlab-wd-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const lab = Lab.forWorkspace(dir, { stateDir: join(dir, 'st'), env: { PATH: process.env.PATH } });
  await assert.rejects(lab.up({ accel: 'tcg', backend: 'builtin' }), (e: unknown) => e instanceof LabError && e.kind === 'guest-driver' && /labWithDriver/.test(e.message));
  const s = await lab.status();
  assert.equal(s.state, 'stopped');
  assert.equal(s.qemu.pid, undefined);
});

test('labWithDriver keeps the overrides it is given', () => {
  const dir = join(tmpdir(), 'vlab-wd-paths');
  const lab = labWithDriver(dir, { stateDir: join(dir, 'elsewhere'), env: {} });
  assert.equal(lab.paths.stateDir, join(dir, 'elsewhere'));
  assert.equal(lab.paths.telemetrySocket, join(dir, 'elsewhere', 'telemetry.sock'));
});
