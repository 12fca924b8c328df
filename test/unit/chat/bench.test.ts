/**
 * `vlab chat bench` against the real `vlab chat server` child: every client connects, completes its
 * handshake and receives every other client's lines. Over 64 handshakes in progress the server
 * evicts the oldest (chat/server.ts, DEFAULT_MAX_PENDING): the bench paces its own handshakes
 * well under that, and a refused or closed client fails the run with the server's reason
 * instead of leaving it waiting forever (the old bench connected all clients back to back and hung
 * in `vlab report --run chat` at 100 clients: "server busy: too many handshakes in progress").
 * The run is bounded by a progress watchdog, not a deadline: a fresh-clone CI run at load 15–19
 * (a busy loop and five other jobs beside it) took over the old fixed 60 s for the sealed run
 * ("bench did not finish within 60000 ms (100/100 clients joined, 0 got every line)") while
 * every client was still receiving.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runChatBench } from '../../../chat/bench';

for (const mode of ['none', 'sealed'] as const) {
  test(`chat bench (${mode}): 100 clients join under the pending-handshake cap and each gets every other client's lines`, { timeout: 900_000 }, async () => {
    const [row] = await runChatBench({ clients: 100, messages: 20, modes: [mode], stallMs: 60_000 });
    assert.ok(row);
    assert.equal(row.clients, 100);
    assert.equal(row.sent, 2000);
    assert.equal(row.delivered, 2000 * 99);
    assert.ok(row.seconds > 0 && row.deliveredPerSec > 0);
  });
}
