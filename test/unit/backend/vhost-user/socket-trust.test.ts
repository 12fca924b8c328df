/**
 * Review F6: the back-end's two unix sockets serve only its own uid. Under umask 0 the telemetry and
 * the vhost-user socket files are 0600 from the moment they exist ('listening'), and a client of
 * another uid that reaches them anyway (the test widens the modes itself, as a bind mount or an
 * inherited fd would) is closed at accept (SO_PEERCRED). The other uid is a real child process
 * that setuid()s to nobody (these tests run as root).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { telemetryRequest } from '../../../../backend/telemetry/client';
import { acquireLock } from '../../../../extension/lab/state';
import { labPaths } from '../../../../extension/lab/common/paths';
import { TelemetryServer } from '../../../../backend/telemetry/server';
import { VhostUserBackend } from '../../../../backend/vhost-user-backend';
import { createEngine } from '../../../../backend/crypto/engines';
import { type Fixture, startBackend } from '../helpers';

const NOBODY = 65534;
const isRoot = process.geteuid?.() === 0;

/** Connects to `socket` as uid/gid 65534 from a child process; resolves with what it read before the close. */
function connectAsNobody(socket: string, send: string): Promise<{ got: string; closed: boolean; error?: string }> {
  const src = `
    process.setgid(${NOBODY}); process.setuid(${NOBODY});
    const s = require('node:net').connect(process.argv[1]);
    let got = '';
    const done = (o) => { process.stdout.write(JSON.stringify(o)); process.exit(0); };
    s.on('connect', () => { if (process.argv[2]) s.write(process.argv[2]); });
    s.on('data', (d) => { got += d; });
    s.on('close', () => done({ got, closed: true }));
    // Writing to a connection the server already closed: EPIPE / ECONNRESET, i.e. closed.
    s.on('error', (e) => done(e.code === 'EPIPE' || e.code === 'ECONNRESET' ? { got, closed: true } : { got, closed: false, error: e.code }));
    setTimeout(() => done({ got, closed: false }), 5000);`;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', src, socket, send], { cwd: '/', stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('exit', () => {
      try {
        resolve(JSON.parse(out) as { got: string; closed: boolean; error?: string });
      } catch {
        reject(new Error(`child printed ${out}`));
      }
    });
  });
}

/** Runs `fn` with the process umask at 0 (set, never read without setting), restoring it after. */
async function underUmask0<T>(fn: () => Promise<T> | T): Promise<T> {
  const old = process.umask(0);
  try {
    return await fn();
  } finally {
    process.umask(old);
  }
}

describe('the back-end sockets serve only their own uid', { skip: !isRoot && 'needs root (a child switches to uid nobody)' }, () => {
  let fx: Fixture;
  let server: TelemetryServer;
  let socket: string;
  let modeAtListening: number | undefined;
  const logs: string[] = [];

  before(async () => {
    fx = startBackend();
    socket = path.join(fx.dir, 'telemetry.sock');
    const b = fx.backend;
    server = new TelemetryServer(socket, { snapshot: () => b.snapshot(), chain: (q, h) => b.chain(q, h), availRing: (a) => b.availRing(a), allowAvailRing: (a) => b.allowAvailRing(a) }, (l) => logs.push(l));
    // Every server's first 'listening' event, before start() gets control back: the mode there is
    // the mode another uid could have connected through.
    const listen = net.Server.prototype.listen;
    net.Server.prototype.listen = function (this: net.Server, ...args: unknown[]) {
      this.once('listening', () => {
        modeAtListening = fs.statSync(socket).mode & 0o777;
      });
      return (listen as (...a: unknown[]) => net.Server).apply(this, args);
    } as typeof listen;
    try {
      await underUmask0(() => server.start());
    } finally {
      net.Server.prototype.listen = listen;
    }
  });
  after(async () => {
    await server.stop();
    await fx.close();
  });

  it('telemetry socket: mode 0600 at listening under umask 0', () => {
    assert.equal(modeAtListening?.toString(8), '600', 'the socket file other uids would connect to');
  });

  it('vhost-user socket: mode 0600 once start() returns (bind and listen are one call) under umask 0', async () => {
    const vu = path.join(fx.dir, 'vu-umask.sock');
    const b = new VhostUserBackend({ socketPath: vu, engine: createEngine('openssl'), log: () => undefined });
    try {
      await underUmask0(() => b.start());
      assert.equal((fs.statSync(vu).mode & 0o777).toString(8), '600');
    } finally {
      b.stop();
    }
  });

  it('telemetry: a client of another uid is closed at accept and counted; our own uid is served', async () => {
    fs.chmodSync(fx.dir, 0o755);
    fs.chmodSync(socket, 0o666);
    const r = await connectAsNobody(socket, '{"type":"snapshot"}\n');
    assert.equal(r.error, undefined, `nobody reached the socket (modes widened by the test): ${JSON.stringify(r)}`);
    assert.equal(r.got, '', 'no snapshot for another uid');
    assert.equal(r.closed, true, 'the connection was closed');
    assert.equal(server.peersRefused, 1);
    assert.ok(logs.some((l) => /refusing a client: peer pid \d+ runs as uid 65534/.test(l)), logs.join('\n'));
    assert.equal((await telemetryRequest(socket, { type: 'snapshot' })).type, 'snapshot');
  });

  it('vhost-user: a front-end of another uid is closed at accept and counted; ours connects', async () => {
    fs.chmodSync(fx.dir, 0o755);
    fs.chmodSync(fx.socket, 0o666);
    const r = await connectAsNobody(fx.socket, '');
    assert.equal(r.error, undefined, JSON.stringify(r));
    assert.equal(r.closed, true, `closed at once, not kept as the front-end: ${JSON.stringify(r)}`);
    assert.equal(fx.backend.counters.peersRefused, 1);
    assert.equal(fx.backend.connected, false);
    assert.ok(fx.logs.some((l) => /refusing a front-end: peer pid \d+ runs as uid 65534/.test(l)), fx.logs.join('\n'));
    const fe = await fx.connect({ queueSize: 64 });
    assert.equal(fx.backend.connected, true);
    assert.equal(fx.backend.snapshot().counters.peersRefused, 1, 'in telemetry too');
    const gone = fx.nextDisconnect();
    fe.close();
    await gone;
  });

  // The workspace is writable by the guest (9p): a symlink or a socket the guest made in the state
  // dir must not be connected to by the host's clients (review F6, small note).
  it('host clients refuse a telemetry path that is a symlink or a socket of another uid', async () => {
    const link = path.join(fx.dir, 'link.sock');
    fs.symlinkSync(socket, link);
    await assert.rejects(telemetryRequest(link, { type: 'snapshot' }), /is a symlink; not connecting/);
    await assert.rejects(telemetryRequest(link, { type: 'fault-list' }), /is a symlink; not connecting/);
    const foreign = path.join(fx.dir, 'foreign.sock');
    const other = net.createServer((c) => c.end('{"type":"snapshot"}\n'));
    await new Promise<void>((r) => other.listen(foreign, () => r()));
    try {
      fs.chownSync(foreign, NOBODY, NOBODY);
      await assert.rejects(telemetryRequest(foreign, { type: 'snapshot' }), /is owned by uid 65534, not 0; not connecting/);
    } finally {
      await new Promise((r) => other.close(r));
    }
    assert.equal((await telemetryRequest(socket, { type: 'snapshot' })).type, 'snapshot', 'our own socket is still used');
  });

  it('the lab state dir is created 0700 (under umask 0)', async () => {
    const ws = path.join(fx.dir, 'ws');
    fs.mkdirSync(ws);
    const paths = labPaths(ws);
    const release = await underUmask0(() => acquireLock(paths, 'test'));
    release();
    assert.equal((fs.statSync(paths.stateDir).mode & 0o777).toString(8), '700');
  });
});
