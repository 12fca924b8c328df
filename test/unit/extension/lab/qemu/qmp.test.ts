import { test, describe, before, after } from 'node:test';
import * as assert from 'node:assert/strict';
import * as net from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { QmpClient, QmpError, type QmpEvent } from '../../../../../extension/lab/qemu/qmp';
import { findVirtioCryptoPath, readVirtioCryptoStatus } from '../../../../../extension/lab/qemu/qmp-virtio';
import { startQemu, freeze, thaw, tempSocketPath, MACHINE_NONE, Q35_CRYPTO, type RunningQemu } from './qemu-fixture';

async function rejectsWith(p: Promise<unknown>, kind: QmpError['kind'], check?: (e: QmpError) => void): Promise<QmpError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof QmpError, `expected QmpError, got ${String(err)}`);
    assert.equal(err.kind, kind, `kind: ${err.message}`);
    check?.(err);
    return err;
  }
  assert.fail(`expected a QmpError of kind ${kind}, but the promise resolved`);
}

describe('QMP client against a real QEMU (-machine none)', () => {
  let qemu: RunningQemu;
  before(async () => { qemu = await startQemu(MACHINE_NONE); });
  after(async () => { await qemu.stop(); });

  test('reads the greeting, negotiates, and query-version agrees with the greeting', async () => {
    const qmp = await QmpClient.connect(qemu.socketPath);
    try {
      assert.ok(qmp.greeting);
      assert.ok(qmp.greeting.version.qemu.major >= 7);
      const version = (await qmp.execute('query-version')) as { qemu: { major: number; minor: number; micro: number } };
      assert.deepEqual(version.qemu, qmp.greeting.version.qemu);
    } finally {
      qmp.close();
    }
  });

  test('a failing command carries the QMP error class and description', async () => {
    const qmp = await QmpClient.connect(qemu.socketPath);
    try {
      await rejectsWith(qmp.execute('no-such-command'), 'command', (e) => {
        assert.equal(e.qmpClass, 'CommandNotFound');
        assert.match(e.qmpDesc ?? '', /no-such-command/);
        assert.equal(e.command, 'no-such-command');
      });
      await rejectsWith(qmp.execute('qom-get', { path: '/nowhere', property: 'type' }), 'command', (e) => {
        assert.equal(e.qmpClass, 'DeviceNotFound');
      });
      // The connection survives command errors.
      assert.ok(await qmp.execute('query-status'));
    } finally {
      qmp.close();
    }
  });

  test('stop/cont produce STOP and RESUME events', async () => {
    const qmp = await QmpClient.connect(qemu.socketPath);
    const seen: QmpEvent[] = [];
    qmp.on('event', (e: QmpEvent) => seen.push(e));
    try {
      const stopped = qmp.nextEvent('STOP', { timeoutMs: 5000 });
      await qmp.execute('stop');
      const stop = await stopped;
      assert.ok(stop.timestamp.seconds > 1_600_000_000, 'event timestamp is wall-clock seconds');
      const resumed = qmp.nextEvent('RESUME', { timeoutMs: 5000 });
      await qmp.execute('cont');
      await resumed;
      assert.deepEqual(seen.map((e) => e.event), ['STOP', 'RESUME']);
    } finally {
      qmp.close();
    }
  });

  test('concurrent calls are routed to their own callers', async () => {
    const qmp = await QmpClient.connect(qemu.socketPath);
    try {
      const calls = Array.from({ length: 60 }, (_, i) =>
        i % 3 === 0 ? qmp.execute('query-version').then((r) => ['version', r] as const)
          : i % 3 === 1 ? qmp.execute('query-status').then((r) => ['status', r] as const)
            : qmp.execute('no-such-command').then((r) => ['ok?', r] as const, (e: QmpError) => ['error', e.qmpClass] as const));
      const results = await Promise.all(calls);
      results.forEach(([what, value], i) => {
        if (i % 3 === 0) { assert.equal(what, 'version'); assert.ok('qemu' in (value as object)); }
        if (i % 3 === 1) { assert.equal(what, 'status'); assert.ok('running' in (value as object)); }
        if (i % 3 === 2) { assert.deepEqual([what, value], ['error', 'CommandNotFound']); }
      });
    } finally {
      qmp.close();
    }
  });

  test('a call times out while QEMU is frozen; its late reply is dropped and the next call works', async () => {
    const qmp = await QmpClient.connect(qemu.socketPath);
    try {
      await freeze(qemu.child.pid!);
      try {
        await rejectsWith(qmp.execute('query-version', undefined, { timeoutMs: 200 }), 'timeout', (e) => {
          assert.equal(e.command, 'query-version');
        });
      } finally {
        thaw(qemu.child.pid!);
      }
      // QEMU now answers the timed-out call too; that reply must not be taken for this one.
      const status = (await qmp.execute('query-status')) as Record<string, unknown>;
      assert.ok('running' in status, 'got the query-status reply, not the late query-version reply');
    } finally {
      qmp.close();
    }
  });

  test('close() rejects every pending call and emits close once', async () => {
    const qmp = await QmpClient.connect(qemu.socketPath);
    let closes = 0;
    qmp.on('close', () => closes++);
    await freeze(qemu.child.pid!);
    try {
      const a = qmp.execute('query-version');
      const b = qmp.execute('query-status');
      qmp.close();
      qmp.close();
      await rejectsWith(a, 'closed');
      await rejectsWith(b, 'closed');
      await rejectsWith(qmp.execute('query-version'), 'closed');
      assert.equal(closes, 1);
      assert.equal(qmp.isOpen, false);
    } finally {
      thaw(qemu.child.pid!);
    }
  });

  test('an AbortSignal cancels one call', async () => {
    const qmp = await QmpClient.connect(qemu.socketPath);
    await freeze(qemu.child.pid!);
    try {
      const ac = new AbortController();
      const p = qmp.execute('query-version', undefined, { signal: ac.signal });
      ac.abort();
      await rejectsWith(p, 'closed');
    } finally {
      thaw(qemu.child.pid!);
      qmp.close();
    }
  });
});

describe('QMP client: connection phases', () => {
  test('a missing socket is a connect error', async () => {
    await rejectsWith(QmpClient.connect('/nonexistent/vlab/qmp.sock'), 'connect', (e) => assert.equal(e.phase, 'connect'));
  });

  test('a frozen QEMU times out in the greeting phase; the QEMU dying fails pending calls', async () => {
    const qemu = await startQemu(MACHINE_NONE);
    try {
      await freeze(qemu.child.pid!);
      await rejectsWith(QmpClient.connect(qemu.socketPath, { timeoutMs: 300 }), 'timeout', (e) => assert.equal(e.phase, 'greeting'));
      thaw(qemu.child.pid!);

      const qmp = await QmpClient.connect(qemu.socketPath);
      const closed = new Promise<QmpError>((resolve) => qmp.once('close', resolve));
      await freeze(qemu.child.pid!);
      const pending = qmp.execute('query-version');
      process.kill(qemu.child.pid!, 'SIGKILL');
      await rejectsWith(pending, 'closed');
      assert.equal((await closed).kind, 'closed');
    } finally {
      await qemu.stop();
    }
  });

  test('waitForServer: connect waits for a QEMU that is still starting', async () => {
    const socketPath = tempSocketPath();
    const connecting = QmpClient.connect(socketPath, { waitForServer: true, timeoutMs: 15_000 });
    await new Promise((r) => setTimeout(r, 300));
    const qemu = await startQemu(MACHINE_NONE, { socketPath, listen: false });
    try {
      const qmp = await connecting;
      assert.ok(await qmp.execute('query-status'));
      qmp.close();
    } finally {
      await qemu.stop();
    }
  });

  test('QEMU serves one QMP client at a time: a second one gets no greeting until the first leaves', async () => {
    const qemu = await startQemu(MACHINE_NONE);
    try {
      const first = await QmpClient.connect(qemu.socketPath);
      await rejectsWith(QmpClient.connect(qemu.socketPath, { timeoutMs: 500 }), 'timeout', (e) => assert.equal(e.phase, 'greeting'));
      first.close();
      const second = await QmpClient.connect(qemu.socketPath);
      assert.ok(await second.execute('query-status'));
      second.close();
    } finally {
      await qemu.stop();
    }
  });

  test('connect can be aborted', async () => {
    const qemu = await startQemu(MACHINE_NONE);
    await freeze(qemu.child.pid!);
    try {
      const ac = new AbortController();
      const p = QmpClient.connect(qemu.socketPath, { signal: ac.signal });
      setTimeout(() => ac.abort(), 50);
      await rejectsWith(p, 'closed');
    } finally {
      await qemu.stop();
    }
  });
});

/** A hostile or broken peer: these are the conditions real QEMU never produces. */
describe('QMP client: protocol violations from the peer', () => {
  let dir: string;
  before(() => { dir = mkdtempSync(join(tmpdir(), 'vlab-qmp-peer-')); });
  after(() => rmSync(dir, { recursive: true, force: true }));

  async function withPeer(name: string, onConn: (s: net.Socket) => void, body: (path: string) => Promise<void>): Promise<void> {
    const path = join(dir, name);
    const server = net.createServer((s) => {
      s.on('error', () => undefined); // the client hanging up on a misbehaving peer is the point of these tests
      onConn(s);
    });
    await new Promise<void>((r) => server.listen(path, r));
    try {
      await body(path);
    } finally {
      await new Promise<void>((r) => server.close(() => r()));
    }
  }
  const greeting = '{"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}, "package": ""}, "capabilities": []}}\n';

  test('a first line that is not a greeting', async () => {
    await withPeer('a.sock', (s) => s.end('{"return": {}}\n'), async (path) => {
      await rejectsWith(QmpClient.connect(path), 'greeting');
    });
  });

  test('hang-up before the greeting', async () => {
    await withPeer('b.sock', (s) => s.end(), async (path) => {
      await rejectsWith(QmpClient.connect(path), 'greeting');
    });
  });

  test('qmp_capabilities refused', async () => {
    await withPeer('c.sock', (s) => {
      s.write(greeting);
      s.on('data', (d) => {
        const { id } = JSON.parse(d.toString()) as { id: string };
        s.write(JSON.stringify({ error: { class: 'GenericError', desc: 'nope' }, id }) + '\n');
      });
    }, async (path) => {
      await rejectsWith(QmpClient.connect(path), 'negotiation', (e) => {
        assert.equal(e.qmpClass, 'GenericError');
        assert.equal(e.qmpDesc, 'nope');
      });
    });
  });

  test('a line over the read limit drops the connection with a protocol error', async () => {
    await withPeer('d.sock', (s) => {
      s.write(greeting);
      s.on('data', (d) => {
        for (const line of d.toString().split('\n').filter(Boolean)) {
          const { id, execute } = JSON.parse(line) as { id: string; execute: string };
          if (execute === 'qmp_capabilities') s.write(JSON.stringify({ return: {}, id }) + '\n');
          else s.write('{"return": "' + 'x'.repeat(64 * 1024)); // never terminated
        }
      });
    }, async (path) => {
      const qmp = await QmpClient.connect(path, { maxLineBytes: 4096 });
      await rejectsWith(qmp.execute('query-version'), 'protocol');
      assert.equal(qmp.isOpen, false);
    });
  });

  test('replies with unknown ids are dropped; events between replies are delivered', async () => {
    await withPeer('e.sock', (s) => {
      s.write(greeting);
      s.on('data', (d) => {
        for (const line of d.toString().split('\n').filter(Boolean)) {
          const { id, execute } = JSON.parse(line) as { id: string; execute: string };
          if (execute !== 'qmp_capabilities') {
            s.write(JSON.stringify({ return: 'stale', id: 'somebody-else' }) + '\n');
            s.write(JSON.stringify({ return: 'no id' }) + '\n');
            s.write('{"event": "RESET", "data": {"guest": true}, "timestamp": {"seconds": 1, "microseconds": 2}}\n');
          }
          s.write(JSON.stringify({ return: 'mine', id }) + '\n');
        }
      });
    }, async (path) => {
      const qmp = await QmpClient.connect(path);
      const events: QmpEvent[] = [];
      qmp.on('event', (e: QmpEvent) => events.push(e));
      assert.equal(await qmp.execute('anything'), 'mine');
      assert.deepEqual(events, [{ event: 'RESET', data: { guest: true }, timestamp: { seconds: 1, microseconds: 2 } }]);
      qmp.close();
    });
  });
});

describe('virtio-crypto status over QMP (paused q35 with cryptodev-backend-builtin)', () => {
  let qemu: RunningQemu;
  let qmp: QmpClient;
  before(async () => {
    qemu = await startQemu(Q35_CRYPTO);
    qmp = await QmpClient.connect(qemu.socketPath);
  });
  after(async () => {
    qmp?.close();
    await qemu?.stop();
  });

  test('finds the device path', async () => {
    assert.equal(await findVirtioCryptoPath(qmp), '/machine/peripheral/crypto0/virtio-backend');
  });

  test('reads device status, features and every queue', async () => {
    const st = await readVirtioCryptoStatus(qmp);
    assert.ok(st);
    assert.equal(st.deviceId, 20);
    assert.equal(st.name, 'virtio-crypto');
    assert.equal(st.backendType, 'cryptodev-backend-builtin');
    assert.equal(st.started, false, 'no driver ran: -S keeps the CPU paused');
    assert.deepEqual(st.status, []);
    assert.equal(st.vmRunning, false);
    assert.ok(st.hostFeatures.transports.includes('VIRTIO_F_VERSION_1'), st.hostFeatures.transports.join());
    assert.ok(st.hostFeatures.transports.every((n) => /^VIRTIO_[A-Z0-9_]+$/.test(n)), 'names without prose');
    assert.deepEqual(st.guestFeatures.transports, []);
    assert.equal(st.numQueues, 2, 'one data queue + control queue');
    assert.equal(st.queues.length, 2);
    for (const [i, q] of st.queues.entries()) {
      assert.equal(q.index, i);
      assert.equal(q.owner, 'qemu');
      if (q.owner === 'qemu') {
        assert.equal(q.size, 1024);
        assert.equal(q.lastAvailIdx, 0);
        assert.equal(q.usedIdx, 0);
        assert.equal(q.inUse, 0);
      }
    }
  });

  test('an unknown path is a command error', async () => {
    await rejectsWith(readVirtioCryptoStatus(qmp, '/machine/nothing'), 'command');
  });
});

test('a VM without virtio-crypto has no device status', async () => {
  const qemu = await startQemu(MACHINE_NONE);
  const qmp = await QmpClient.connect(qemu.socketPath);
  try {
    assert.equal(await findVirtioCryptoPath(qmp), null);
    assert.equal(await readVirtioCryptoStatus(qmp), null);
  } finally {
    qmp.close();
    await qemu.stop();
  }
});
