import * as assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { BackendSnapshot } from '../../../../../backend/telemetry/schema';
import { TelemetryFeed } from '../../../../../extension/vscode/rings/telemetry-feed';

/** A stand-in telemetry server speaking docs/telemetry.md's subscribe protocol on a real unix socket. */
function server(path: string, onSubscribe: (sock: Socket, req: Record<string, unknown>) => void): Promise<Server> {
  return new Promise((resolve) => {
    const srv = createServer((sock) => {
      let buf = '';
      sock.setEncoding('utf8');
      sock.on('error', () => undefined);
      sock.on('data', (d: string) => {
        buf += d;
        const nl = buf.indexOf('\n');
        if (nl >= 0) onSubscribe(sock, JSON.parse(buf.slice(0, nl)) as Record<string, unknown>);
      });
    });
    srv.listen(path, () => resolve(srv));
  });
}

function next(feed: TelemetryFeed): Promise<BackendSnapshot> {
  return new Promise((resolve) => feed.once('snapshot', resolve));
}

/** A snapshot line of back-end `pid` (the reader fills what it leaves out). */
const line = (pid: number, more: Record<string, unknown> = {}): string => `${JSON.stringify({ type: 'snapshot', schema: 2, pid, ...more })}\n`;

describe('telemetry feed', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vlab-feed-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('subscribes with the configured interval and emits snapshot lines (split across writes)', async () => {
    const path = join(dir, 'a.sock');
    let request: Record<string, unknown> | undefined;
    const srv = await server(path, (sock, req) => {
      request = req;
      const text = line(1);
      sock.write(text.slice(0, 5));
      setTimeout(() => sock.write(`${text.slice(5)}{"type":"other"}\nnot json\n`), 20);
    });
    const feed = new TelemetryFeed(() => path, 100);
    const got = next(feed);
    feed.start();
    assert.equal((await got).pid, 1);
    assert.deepEqual(request, { type: 'subscribe', intervalMs: 100 });
    feed.stop();
    await new Promise<void>((r) => srv.close(() => r()));
  });

  it('drops an oversized line and reconnects; survives the server going away and coming back', async () => {
    const path = join(dir, 'b.sock');
    let n = 0;
    const handler = (sock: Socket): void => {
      n++;
      if (n === 1) sock.write('x'.repeat(1.5 * 1024 * 1024)); // no newline, over the cap: the feed must hang up
      else sock.write(line(n));
    };
    let srv = await server(path, handler);
    const feed = new TelemetryFeed(() => path, 50);
    const states: string[] = [];
    feed.on('state', (s) => states.push(s));
    const first = next(feed);
    feed.start();
    assert.equal((await first).pid, 2, 'reconnected after the oversized line');
    // The backend restarts (VM restart): socket closed, re-created at the same path.
    await new Promise<void>((r) => { srv.close(() => r()); feed.reconnect(); });
    rmSync(path, { force: true });
    const again = next(feed);
    srv = await server(path, handler);
    assert.equal((await again).pid, 3);
    assert.ok(states.includes('waiting') && states.includes('live'));
    feed.stop();
    await new Promise<void>((r) => srv.close(() => r()));
  });

  it('start() on a running feed keeps its one connection (the panel calls it on every view-state change)', async () => {
    const path = join(dir, 'c.sock');
    let connections = 0;
    const socks: Socket[] = [];
    const srv = await server(path, (sock) => {
      connections++;
      socks.push(sock);
      sock.write(line(connections));
    });
    const feed = new TelemetryFeed(() => path, 50);
    const first = next(feed);
    feed.start();
    await first;
    feed.start();
    feed.start();
    await new Promise((r) => setTimeout(r, 200));
    feed.stop();
    for (const sock of socks) sock.destroy();
    await new Promise<void>((r) => srv.close(() => r()));
    assert.equal(connections, 1);
  });

  it("emits snapshots as the schema's reader typed them: another schema's line is dropped, a hostile one capped", async () => {
    const path = join(dir, 'd.sock');
    const srv = await server(path, (sock) => {
      sock.write(`${JSON.stringify({ type: 'snapshot', schema: 1, pid: 1 })}\n`);
      sock.write(line(2, { queues: Array.from({ length: 70 }, () => ({ size: 1e9, slots: 'X'.repeat(10_000), recent: 'no' })), engine: { name: 7 } }));
    });
    const feed = new TelemetryFeed(() => path, 50);
    const got = next(feed);
    feed.start();
    const s = await got;
    feed.stop();
    await new Promise<void>((r) => srv.close(() => r()));
    assert.equal(s.pid, 2, 'the schema-1 line was not emitted');
    assert.equal(s.engine.name, '7');
    assert.equal(s.queues.length, 64);
    assert.equal(s.queues[0]!.size, 32768);
    assert.equal(s.queues[0]!.slots, '.'.repeat(10_000), 'characters that are no slot state read as free');
    assert.deepEqual(s.queues[0]!.recent, []);
  });
});
