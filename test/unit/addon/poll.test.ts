/**
 * The addon's fd readiness handles (vhost.pollStart / pollStop). pollStop is documented as
 * idempotent: a second call after libuv has closed the handle must neither touch freed memory nor
 * affect another watcher. The reuse check below is observable without a sanitizer: glibc hands the
 * freed block of the first watcher to the next one of the same size, so a stale handle that still
 * pointed at it would stop the second watcher.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as vhost from '../../../addon/lib/vhost';

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

test('pollStop after the close callback ran is a no-op and leaves other watchers running', async () => {
  for (let round = 0; round < 20; round++) {
    const a = vhost.eventfdCreate();
    const b = vhost.eventfdCreate();
    try {
      const first = vhost.pollStart(a, () => undefined, { drainEventfd: true });
      vhost.pollStop(first);
      // Let libuv run the close callback (the native watcher is released there).
      await tick();
      await tick();
      let fired = 0;
      const second = vhost.pollStart(b, () => fired++, { drainEventfd: true });
      try {
        vhost.pollStop(first); // stale handle: must not reach the second watcher
        vhost.eventfdWrite(b, 1);
        for (let i = 0; i < 50 && fired === 0; i++) await new Promise((r) => setTimeout(r, 2));
        assert.equal(fired, 1, `round ${round}: the second watcher stopped firing after pollStop on a stale handle`);
      } finally {
        vhost.pollStop(second);
      }
    } finally {
      await tick();
      vhost.closeFd(a);
      vhost.closeFd(b);
    }
  }
});

test('pollStop twice in the same turn is a no-op', async () => {
  const fd = vhost.eventfdCreate();
  const h = vhost.pollStart(fd, () => undefined);
  vhost.pollStop(h);
  vhost.pollStop(h);
  await tick();
  vhost.pollStop(h);
  vhost.closeFd(fd);
});
