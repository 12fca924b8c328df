/**
 * The control queue's avail index: QEMU services that queue and (7.2, vhost started) leaves
 * shadow-avail-idx out of its QMP status, which the rings view showed as "avail idx 0, used idx 324".
 * The backend maps all guest memory, so it reads the real avail ring header (flags, idx) at the
 * guest-physical address QMP gives (vring-avail), on request. Real memfd guest memory, real socket.
 */
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { telemetryRequest } from '../../../../backend/telemetry/client';
import { TelemetryServer } from '../../../../backend/telemetry/server';
import type { TestFrontend } from '../../../../backend/harness/frontend';
import { type Fixture, startBackend } from '../helpers';

describe('telemetry: the avail ring header of a queue QEMU services (control queue)', () => {
  let fx: Fixture;
  let fe: TestFrontend;
  let server: TelemetryServer;
  let socket: string;
  /** A second ring's avail area in guest memory, away from the data queue's (like the control queue's). */
  let controlAvail: number;
  const writeAvail = (flags: number, idx: number): void => {
    fe.mem[controlAvail] = flags & 0xff;
    fe.mem[controlAvail + 1] = flags >> 8;
    fe.mem[controlAvail + 2] = idx & 0xff;
    fe.mem[controlAvail + 3] = (idx >> 8) & 0xff;
  };

  before(async () => {
    fx = startBackend();
    fe = await fx.connect({ queueSize: 64 });
    controlAvail = fe.heapGpa + 0x8000;
    socket = path.join(fx.dir, 'telemetry.sock');
    const b = fx.backend;
    server = new TelemetryServer(socket, { snapshot: () => b.snapshot(), chain: (q, h) => b.chain(q, h), availRing: (a) => b.availRing(a), allowAvailRing: (a) => b.allowAvailRing(a) });
    await server.start();
  });
  after(async () => {
    await server.stop();
    await fx.close();
  });

  // Review F6: avail used to read 4 bytes at any even guest address (guest keys, plaintext).
  it('refuses avail at an address that is not a ring of this back-end nor one the lab registered', async () => {
    writeAvail(1, 324);
    const r = await telemetryRequest(socket, { type: 'avail', addr: controlAvail });
    assert.equal(r.type, 'error', `an unregistered address is refused: ${JSON.stringify(r)}`);
    assert.match(r.message, /not a ring address/);
    const heap = await telemetryRequest(socket, { type: 'avail', addr: fe.heapGpa + 0x100 });
    assert.equal(heap.type, 'error', `guest RAM is not readable through avail: ${JSON.stringify(heap)}`);
  });

  it('answers the idx and flags the guest wrote, and follows them as the guest moves them', async () => {
    writeAvail(1, 324);
    // The lab registers the address it resolved from QMP (the rings view does, with avail-allow).
    const r = await telemetryRequest(socket, { type: 'avail-allow', addr: controlAvail });
    assert.equal(r.type, 'avail', JSON.stringify(r));
    assert.equal(r.idx, 324);
    assert.equal(r.flags, 1);
    assert.equal(r.addr, controlAvail);
    writeAvail(0, 0xffff);
    const next = await telemetryRequest(socket, { type: 'avail', addr: controlAvail });
    assert.equal(next.type, 'avail');
    assert.equal(next.idx, 0xffff, 'the u16 is read as the guest wrote it (little-endian)');
    assert.equal(next.flags, 0);
    // The data queue's own avail ring reads the same through this request as through the snapshot.
    fe.pushAvail(3);
    fe.publishAvail();
    const data = await telemetryRequest(socket, { type: 'avail', addr: fe.availGpa });
    assert.equal(data.type, 'avail');
    assert.equal(data.idx, fx.backend.snapshot().queues[0]!.availIdx);
  });

  it('refuses addresses outside guest memory, unaligned ones and non-integers', async () => {
    for (const addr of [fe.size, fe.size - 2, 2 ** 53, controlAvail + 1, -2, 1.5]) {
      for (const type of ['avail', 'avail-allow'] as const) {
        const r = await telemetryRequest(socket, { type, addr });
        assert.equal(r.type, 'error', `${type} addr ${addr}: ${JSON.stringify(r)}`);
      }
    }
    // Registration keeps the last four addresses: the first of five is refused again.
    const five = [0x9000, 0x9100, 0x9200, 0x9300, 0x9400].map((o) => fe.heapGpa + o);
    for (const a of five) assert.equal((await telemetryRequest(socket, { type: 'avail-allow', addr: a })).type, 'avail');
    assert.equal((await telemetryRequest(socket, { type: 'avail', addr: five[0]! })).type, 'error');
    assert.equal((await telemetryRequest(socket, { type: 'avail', addr: five[4]! })).type, 'avail');
  });
});
