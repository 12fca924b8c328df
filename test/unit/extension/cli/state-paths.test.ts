// `vlab fault` and `vlab rings` find the back-end's socket where the lab puts it (labPaths: VLAB_STATE_DIR,
// absolute or relative to the current folder, else ./.vlab), not by a rule of their own.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { labPaths } from '../../../../extension/lab/common/paths';
import { runMainCaptured } from '../../../cli-capture';

for (const stateDir of [undefined, 'rel/state', '/ABS']) {
  test(`vlab fault list and vlab rings --once use the lab's telemetry socket (VLAB_STATE_DIR ${stateDir ?? 'unset'})`, async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'vlab-sp-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const env = stateDir === undefined ? {} : { VLAB_STATE_DIR: stateDir === '/ABS' ? join(dir, 'abs state') : stateDir };
    const socket = labPaths(dir, undefined, env).telemetrySocket;
    const fault = await runMainCaptured(['fault', 'list'], { cwd: dir, env });
    assert.equal(fault.code, 1);
    assert.ok(fault.err.startsWith(`vlab fault list: cannot reach the back-end's control socket at ${socket}:`), fault.err);
    const rings = await runMainCaptured(['rings', '--once'], { cwd: dir, env });
    assert.equal(rings.code, 1);
    assert.ok(rings.err.includes(socket), rings.err);
  });
}
