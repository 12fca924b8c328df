import * as assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { QmpClient } from '../../../../../extension/lab/qemu/qmp';
import { listVirtioDevices, readVirtioCryptoStatus } from '../../../../../extension/lab/qemu/qmp-virtio';

const CRYPTO = '/machine/peripheral/crypto0/virtio-backend';
const NET = '/machine/peripheral-anon/device[2]/virtio-backend';

/** Answers like QEMU 7.2 with a started vhost-user crypto device: the control queue's status has no shadow/last avail idx. */
function answer(cmd: string, args: Record<string, unknown>): unknown {
  switch (cmd) {
    case 'x-query-virtio': return [{ name: 'virtio-crypto', path: CRYPTO }, { name: 'virtio-net', path: NET }];
    case 'x-query-virtio-status':
      return args.path === CRYPTO
        ? { name: 'virtio-crypto', 'device-id': 20, 'num-vqs': 2, 'vhost-dev': { nvqs: 1, 'vq-index': 0 }, started: true, status: { statuses: [] } }
        : { name: 'virtio-net', 'device-id': 1, 'num-vqs': 1, started: true, status: { statuses: [] } };
    case 'qom-get': return args.property === 'cryptodev' ? '/objects/c0' : 'cryptodev-vhost-user';
    case 'x-query-virtio-queue-status':
      return args.path === CRYPTO
        ? { 'vring-num': 1024, 'vring-desc': 1, 'vring-avail': 2, 'vring-used': 3, 'used-idx': 324, 'signalled-used': 324, 'signalled-used-valid': true, inuse: 0 }
        : { 'vring-num': 256, 'vring-desc': 1, 'vring-avail': 2, 'vring-used': 3, 'last-avail-idx': 715, 'shadow-avail-idx': 966, 'used-idx': 715, 'signalled-used': 715, 'signalled-used-valid': true, inuse: 0 };
    default: throw new Error(`unexpected ${cmd}`);
  }
}

function fakeQmp(path: string, seen: string[]): Promise<Server> {
  return new Promise((resolve) => {
    const srv = createServer((s) => {
      s.write(`${JSON.stringify({ QMP: { version: { qemu: { major: 7, minor: 2, micro: 0 } }, capabilities: [] } })}\n`);
      let buf = '';
      s.on('data', (d) => {
        buf += d.toString();
        let nl: number;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          if (!line.trim()) continue;
          const req = JSON.parse(line) as { execute: string; arguments?: Record<string, unknown>; id?: unknown };
          seen.push(req.execute);
          if (req.execute === 'qmp_capabilities') s.write(`${JSON.stringify({ return: {}, id: req.id })}\n`);
          else {
            try {
              s.write(`${JSON.stringify({ return: answer(req.execute, req.arguments ?? {}), id: req.id })}\n`);
            } catch (err) {
              s.write(`${JSON.stringify({ error: { class: 'GenericError', desc: (err as Error).message }, id: req.id })}\n`);
            }
          }
        }
      });
    });
    srv.listen(path, () => resolve(srv));
  });
}

describe('virtio devices over QMP', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vlab-qmpv-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('an avail idx QEMU leaves out is unknown (null), never 0; x-query-virtio-queue-element is never sent', async () => {
    const seen: string[] = [];
    const path = join(dir, 'q.sock');
    const srv = await fakeQmp(path, seen);
    const qmp = await QmpClient.connect(path);
    try {
      const st = await readVirtioCryptoStatus(qmp);
      const control = st!.queues[1]!;
      assert.ok(control.owner === 'qemu');
      assert.equal(control.availIdx, null, 'was shown as avail 0 with used 324');
      assert.equal(control.usedIdx, 324);
      const devices = await listVirtioDevices(qmp);
      assert.deepEqual(devices.map((d) => d.name), ['virtio-crypto', 'virtio-net']);
      assert.equal(devices[0]!.queues[0]!.owner, 'backend', 'the vhost-user data queue is not queried');
      const net = devices[1]!.queues[0]!;
      assert.ok(net.owner === 'qemu' && net.availIdx === 966 && net.usedIdx === 715);
      // It walks a stale chain at last_avail_idx and marks the device BROKEN on a bad `next` (QEMU 7.2).
      assert.ok(!seen.includes('x-query-virtio-queue-element'), seen.join(' '));
      // The data queue served by the backend is never asked about (that would stop its ring).
      assert.equal(seen.filter((c) => c === 'x-query-virtio-queue-status').length, 1 + 1 + 1);
    } finally {
      qmp.close();
      await new Promise<void>((r) => srv.close(() => r()));
    }
  });
});
