import * as assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
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

function next(feed: TelemetryFeed): Promise<Record<string, unknown>> {
  return new Promise((resolve) => feed.once('snapshot', (s) => resolve(s as Record<string, unknown>)));
}

describe('telemetry feed', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vlab-feed-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('subscribes with the configured interval and emits snapshot lines (split across writes)', async () => {
    const path = join(dir, 'a.sock');
    let request: Record<string, unknown> | undefined;
    const srv = await server(path, (sock, req) => {
      request = req;
      const line = JSON.stringify({ type: 'snapshot', n: 1 });
      sock.write(line.slice(0, 5));
      setTimeout(() => sock.write(`${line.slice(5)}\n{"type":"other"}\nnot json\n`), 20);
    });
    const feed = new TelemetryFeed(() => path, 100);
    const got = next(feed);
    feed.start();
    assert.equal((await got).n, 1);
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
      else sock.write(`${JSON.stringify({ type: 'snapshot', n })}\n`);
    };
    let srv = await server(path, handler);
    const feed = new TelemetryFeed(() => path, 50);
    const states: string[] = [];
    feed.on('state', (s) => states.push(s));
    const first = next(feed);
    feed.start();
    assert.equal((await first).n, 2, 'reconnected after the oversized line');
    // The backend restarts (VM restart): socket closed, re-created at the same path.
    await new Promise<void>((r) => { srv.close(() => r()); feed.reconnect(); });
    rmSync(path, { force: true });
    const again = next(feed);
    srv = await server(path, handler);
    assert.equal((await again).n, 3);
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
      sock.write(`${JSON.stringify({ type: 'snapshot', n: connections })}\n`);
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
});
