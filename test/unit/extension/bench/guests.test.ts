// A VM benchmark that cannot boot its guest keeps the lab's error (kind, fix, evidence) so the CLI's one
// error printer shows the fix and the console tail, not only a message.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { eachBenchGuest } from '../../../../extension/bench/guests';
import { LabError } from '../../../../extension/lab/common/errors';

test('a boot failure in a bench guest stays a LabError with its fix, prefixed with the bench and backend', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'vlab-bench-guests-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  let ran = false;
  await assert.rejects(
    eachBenchGuest('bench e2e', { workspace: dir, backends: ['ts'], env: { PATH: process.env.PATH, VLAB_QEMU: join(dir, 'no-such-qemu') } }, async () => {
      ran = true;
    }),
    (e: unknown) => e instanceof LabError && e.kind === 'missing-qemu' && /^bench e2e \(ts\): /.test(e.message) && /apt-get install/.test(e.fix ?? ''),
  );
  assert.equal(ran, false, 'the benchmark body never ran');
});
