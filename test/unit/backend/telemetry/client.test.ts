/** The telemetry client against stand-in servers: typed replies, and every way an answer can go wrong ends the request. */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';
import { readSnapshotOrNull, requestSnapshot, telemetryRequest } from '../../../../backend/telemetry/client';

/** A server that answers every connection with `answer` (after the request line) and then does `then`. */
async function server(file: string, answer: string, then: 'keep' | 'close' = 'keep'): Promise<net.Server> {
  const srv = net.createServer((sock) => {
    sock.on('error', () => undefined);
    sock.once('data', () => {
      if (answer) sock.write(answer);
      if (then === 'close') sock.end();
    });
  });
  await new Promise<void>((resolve) => srv.listen(file, resolve));
  return srv;
}

describe('telemetry client', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vlab-tclient-'));
  after(() => fs.rmSync(dir, { recursive: true, force: true }));
  let n = 0;
  const withServer = async (answer: string, then: 'keep' | 'close', body: (socket: string) => Promise<void>): Promise<void> => {
    const socket = path.join(dir, `s${n++}.sock`);
    const srv = await server(socket, answer, then);
    try {
      await body(socket);
    } finally {
      srv.close();
    }
  };

  it('resolves a fault request with its typed reply, read through the schema (unknown fields dropped)', async () => {
    const line = `${JSON.stringify({ type: 'fault-clear', ok: true, cleared: [3, 'x'], faults: { injected: 2 }, extra: 'dropped' })}\n`;
    await withServer(line, 'keep', async (socket) => {
      const r = await telemetryRequest(socket, { type: 'fault-clear', id: 3 });
      assert.equal(r.type, 'fault-clear');
      if (r.type !== 'fault-clear') return;
      assert.deepEqual(r.cleared, [3]);
      assert.equal(r.faults.injected, 2);
      assert.equal('extra' in r, false);
    });
  });

  it('rejects an answer longer than the line cap instead of buffering it (the old fault client did)', async () => {
    await withServer('x'.repeat(1.5 * 1024 * 1024), 'keep', async (socket) => {
      await assert.rejects(telemetryRequest(socket, { type: 'fault-list' }), /control socket .*: answer longer than 1048576 bytes/);
    });
  });

  it('rejects when the server closes without an answer (no wait for the timeout)', async () => {
    await withServer('', 'close', async (socket) => {
      const t0 = Date.now();
      await assert.rejects(telemetryRequest(socket, { type: 'fault-list' }, 10_000), /closed without an answer/);
      assert.ok(Date.now() - t0 < 5000);
    });
  });

  it('rejects an answer to another request, and one that is not JSON', async () => {
    await withServer(`${JSON.stringify({ type: 'snapshot', schema: 2 })}\n`, 'keep', async (socket) => {
      await assert.rejects(telemetryRequest(socket, { type: 'chain', queue: 0, head: 0 }), /telemetry .*: the answer is not a reply to "chain"/);
      assert.equal((await requestSnapshot(socket)).schema, 2);
    });
    await withServer('{oops\n', 'keep', async (socket) => {
      await assert.rejects(telemetryRequest(socket, { type: 'fault-list' }), /the answer is not a reply to "fault-list"/);
      assert.equal(await readSnapshotOrNull(socket), null);
    });
  });

  it('times out with the request kind in the message', async () => {
    await withServer('', 'keep', async (socket) => {
      await assert.rejects(telemetryRequest(socket, { type: 'fault-list' }, 100), /^Error: control socket .*: no answer in 100 ms$/);
      await assert.rejects(telemetryRequest(socket, { type: 'snapshot' }, 100), /^Error: telemetry .*: no answer in 100 ms$/);
    });
  });

  it('an error line resolves (a request the back-end refused); requestSnapshot turns it into a rejection', async () => {
    await withServer(`${JSON.stringify({ type: 'error', message: 'nope' })}\n`, 'keep', async (socket) => {
      assert.deepEqual(await telemetryRequest(socket, { type: 'avail', addr: 2 }), { type: 'error', message: 'nope' });
      await assert.rejects(requestSnapshot(socket), /: nope$/);
    });
  });
});
