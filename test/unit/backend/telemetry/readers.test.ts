/** The telemetry schema's readers: a real back-end's replies read back unchanged; hostile ones capped, never thrown on. */
import assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import * as S from '../../../../backend/crypto/spec';
import { MAX_SESSIONS } from '../../../../backend/crypto/device';
import { handleFaultRequest } from '../../../../backend/faults/control';
import { FAULT_ACTION_KINDS, MAX_RULES, MAX_RULE_TEXT } from '../../../../backend/faults/plan';
import {
  REPLY_CAPS, parseReply, readAvail, readChain, readError, readFaultReply, readReply, readSnapshot,
} from '../../../../backend/telemetry/readers';
import { COUNTER_NAMES, SNAPSHOT_RECENT } from '../../../../backend/telemetry/schema';
import { newCounters } from '../../../../backend/telemetry/stats';
import { type Fixture, startBackend } from '../helpers';

/** Through JSON, as a client sees it. */
const wire = (v: unknown): unknown => JSON.parse(JSON.stringify(v));

describe('telemetry readers on what the back-end sends', () => {
  let fx: Fixture;
  before(() => {
    fx = startBackend({ faults: ['status=badmsg,count=1', 'delay=1,opcode=decrypt'] });
  });
  after(() => fx.close());

  it('give back the same JSON, key for key: snapshot, chain, avail, fault replies', async () => {
    const fe = await fx.connect({ queueSize: 64 });
    const id = await fe.cipherSession(S.VIRTIO_CRYPTO_CIPHER_AES_CBC, crypto.randomBytes(16), true);
    await fe.run({ opcode: S.VIRTIO_CRYPTO_CIPHER_ENCRYPT, sessionId: id, iv: Buffer.alloc(16), src: Buffer.alloc(32) });
    await fe.run({ opcode: S.VIRTIO_CRYPTO_CIPHER_ENCRYPT, sessionId: id, iv: Buffer.alloc(16), src: Buffer.alloc(32) });
    // A chain that breaks a ring rule (its buffer is outside guest memory): recorded as rejected.
    fe.writeDesc(fe.descGpa, 63, 0xdead00000000n, 64, 0, 0);
    fe.pushAvail(63);
    fe.publishAvail();
    fe.kick();
    await fe.waitUsed(1);
    const snap = fx.backend.snapshot();
    const recent = snap.queues[0]!.recent;
    assert.ok(recent.some((r) => r.rejected !== null) && recent.some((r) => r.fault !== null) && snap.sessions.length === 1 && snap.faults.rules.length === 2, 'every kind of field is filled');
    assert.equal(JSON.stringify(readSnapshot(wire(snap))), JSON.stringify(snap));
    const chain = fx.backend.chain(0, recent[0]!.head);
    assert.equal(chain.type, 'chain');
    assert.equal(JSON.stringify(readChain(wire(chain))), JSON.stringify(chain));
    const avail = fx.backend.availRing(fe.availGpa);
    assert.equal(JSON.stringify(readAvail(wire(avail))), JSON.stringify(avail));
    for (const body of [{ type: 'fault-list' }, { type: 'fault-set', rules: ['flip-dst,session=99'] }, { type: 'fault-clear', id: 3 }, { type: 'fault-clear', id: 99 }] as const) {
      const reply = handleFaultRequest(fx.backend, body);
      assert.equal(JSON.stringify(readFaultReply(wire(reply))), JSON.stringify(reply), body.type);
    }
  });

  it("counters are read in the back-end's order (vlab status prints the first 8)", () => {
    assert.deepEqual(COUNTER_NAMES, Object.keys(newCounters()));
  });

  it("the caps sit at or above the back-end's own limits", () => {
    assert.ok(REPLY_CAPS.snapshotSessions >= MAX_SESSIONS);
    assert.ok(REPLY_CAPS.faultRules >= MAX_RULES);
    assert.ok(REPLY_CAPS.nameText >= MAX_RULE_TEXT);
    assert.ok(REPLY_CAPS.faultText >= MAX_RULES * `#${MAX_RULES} , `.length + MAX_RULES * MAX_RULE_TEXT, 'every rule hitting one request');
    const snap = readSnapshot(wire({ type: 'snapshot', schema: 2, faults: { byAction: Object.fromEntries(FAULT_ACTION_KINDS.map((k, i) => [k, i + 1])) } }));
    assert.deepEqual(Object.entries(snap!.faults.byAction), FAULT_ACTION_KINDS.map((k, i) => [k, i + 1]), 'every fault action, in the plan\'s order');
  });
});

describe('telemetry readers on hostile input', () => {
  it('refuse a wrong envelope: not an object, another type, another schema', () => {
    for (const raw of [undefined, null, 1, 'snapshot', [], {}, { type: 'snapshot' }, { type: 'snapshot', schema: 1 }, { type: 'snapshot', schema: '2' }, { type: 'chain', schema: 2 }]) {
      assert.equal(readSnapshot(raw), undefined, JSON.stringify(raw));
    }
    assert.equal(readChain({ type: 'snapshot' }), undefined);
    assert.equal(readError({ type: 'chain' }), undefined);
    assert.equal(readFaultReply({ type: 'fault-list', ok: false }), undefined);
    assert.equal(readFaultReply({ type: 'fault-what', ok: true }), undefined);
    assert.equal(parseReply('not json'), undefined);
    assert.equal(parseReply('{"type":"fault-list","ok":true}'), undefined, 'a control reply is not a telemetry reply line');
  });

  it('cut oversized lists and strings to their caps', () => {
    const s = readSnapshot({
      type: 'snapshot', schema: 2, socket: 'p'.repeat(100_000), engine: { name: 'e'.repeat(10_000), reason: 'r'.repeat(100_000) },
      sessions: Array.from({ length: 5000 }, (_, i) => ({ id: i, algorithm: 'a'.repeat(1000) })),
      queues: Array.from({ length: 500 }, () => ({
        size: 1e9, slots: 'u'.repeat(40_000), broken: 'b'.repeat(100_000),
        recent: Array.from({ length: 500 }, () => ({ opcode: 'o'.repeat(999), fault: 'f'.repeat(100_000), rejected: 'j'.repeat(100_000) })),
      })),
      faults: { rules: Array.from({ length: 1000 }, (_, i) => ({ id: i, rule: 'x'.repeat(5000), action: 'delay' })) },
    })!;
    assert.equal(s.socket.length, REPLY_CAPS.reasonText);
    assert.equal(s.engine.name.length, REPLY_CAPS.nameText);
    assert.equal(s.engine.reason.length, REPLY_CAPS.reasonText);
    assert.equal(s.sessions.length, REPLY_CAPS.snapshotSessions);
    assert.equal(s.sessions[5]!.id, '5', 'a number where a string belongs reads as its text');
    assert.equal(s.sessions[0]!.algorithm.length, REPLY_CAPS.nameText);
    assert.equal(s.queues.length, REPLY_CAPS.snapshotQueues);
    const q = s.queues[0]!;
    assert.equal(q.size, REPLY_CAPS.queueSize);
    assert.equal(q.slots.length, REPLY_CAPS.queueSize);
    assert.equal(q.broken!.length, REPLY_CAPS.reasonText);
    assert.equal(q.recent.length, SNAPSHOT_RECENT);
    assert.equal(q.recent[0]!.opcode.length, REPLY_CAPS.nameText);
    assert.equal(q.recent[0]!.fault!.length, REPLY_CAPS.faultText);
    assert.equal(q.recent[0]!.rejected!.length, REPLY_CAPS.reasonText);
    assert.equal(s.faults.rules.length, REPLY_CAPS.faultRules);
    assert.equal(s.faults.rules[0]!.rule.length, REPLY_CAPS.nameText);
    const chain = readChain({ type: 'chain', descriptors: Array.from({ length: 5000 }, () => ({ addr: 'a'.repeat(99), flags: 'NWIX' })), iv: 'f'.repeat(9999) })!;
    assert.equal(chain.descriptors.length, 64);
    assert.deepEqual([chain.descriptors[0]!.addr.length, chain.descriptors[0]!.flags], [20, 'NWI']);
    assert.equal(chain.iv!.length, 128);
  });

  it('read wrong types as empty values, clamp numbers, keep only known states', () => {
    const s = readSnapshot({
      type: 'snapshot', schema: 2, pid: -5, uptimeMs: 'soon', frontend: 'x', engine: [1], limits: null, counters: { requests: 1.9, kicks: -3, bytesIn: Infinity, extra: 5 },
      sessions: 'nope', faults: { stalledBy: 'x', rules: [null, { action: 'explode' }, { action: 'stall', id: 4, retired: 'yes' }] },
      queues: [null, 1, 'x', { index: 'a', size: 8, slots: 'fbiXu<a.', availIdx: 70000, usedIdx: 'no', recent: [null, { head: 99_999, srcLen: -1, indirect: 1 }] }],
    })!;
    assert.deepEqual([s.pid, s.uptimeMs, s.frontend.connected, s.frontend.features, s.engine.name, s.limits.maxSessions], [0, 0, false, '', '?', 0]);
    assert.deepEqual([s.counters.requests, s.counters.kicks, s.counters.bytesIn, 'extra' in s.counters], [1, 0, 0, false]);
    assert.deepEqual(s.sessions, []);
    assert.equal(s.faults.stalledBy, null);
    assert.deepEqual(s.faults.rules, [{ id: 4, rule: '', action: 'stall', seen: 0, hits: 0, retired: false }], 'an unknown action is left out');
    assert.equal(s.queues.length, 1, 'items that are not objects are left out');
    const q = s.queues[0]!;
    assert.equal(q.index, 3, 'an index that is no number is its position');
    assert.equal(q.slots, '....u.a.', "only the schema's slot characters: any other (old aliases included) reads as free");
    assert.deepEqual([q.availIdx, q.usedIdx], [70000 & 0xffff, null]);
    assert.deepEqual(q.recent.map((r) => [r.head, r.srcLen, r.indirect, r.opcode, r.rejected]), [[REPLY_CAPS.queueSize - 1, 0, false, '?', null]]);
    const chain = readChain({ type: 'chain', state: 'constructor', match: '__proto__', header: 'x', request: 5, table: 'indirect' })!;
    assert.deepEqual([chain.state, chain.match, chain.header, chain.request], ['free', 'unknown', null, null]);
  });

  it('an avail header is refused unless each of its three numbers is in range', () => {
    assert.deepEqual(readAvail({ type: 'avail', addr: 0x7f000, flags: 1, idx: 324 }), { type: 'avail', addr: 0x7f000, flags: 1, idx: 324 });
    for (const bad of [{ idx: 70000 }, { idx: -1 }, { flags: 1.5 }, { addr: -2 }, { addr: 2 ** 60 }, { idx: '3' }]) {
      assert.equal(readAvail({ type: 'avail', addr: 0x7f000, flags: 1, idx: 324, ...bad }), undefined, JSON.stringify(bad));
    }
  });

  it('a reply must answer its request (or be an error line)', () => {
    const snap = { type: 'snapshot', schema: 2 };
    assert.equal(readReply({ type: 'snapshot' }, snap)?.type, 'snapshot');
    assert.equal(readReply({ type: 'chain', queue: 0, head: 0 }, snap), undefined);
    assert.equal(readReply({ type: 'fault-list' }, { type: 'fault-set', ok: true }), undefined);
    assert.deepEqual(readReply({ type: 'fault-list' }, { type: 'error', request: 'fault-list', message: 'm' }), { type: 'error', request: 'fault-list', message: 'm' });
    assert.deepEqual(readReply({ type: 'avail', addr: 2 }, { type: 'error', message: 7 }), { type: 'error', message: '7' });
  });

  it('never throw, whatever the JSON', () => {
    let seed = 7;
    const rnd = (n: number): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const keys = ['type', 'schema', 'queues', 'slots', 'recent', 'counters', 'faults', 'rules', 'sessions', 'header', 'descriptors', 'engine', 'size', 'state', '__proto__', 'constructor', 'toString'];
    const value = (depth: number): unknown => {
      switch (rnd(depth > 3 ? 6 : 9)) {
        case 0: return null;
        case 1: return rnd(2) === 0;
        case 2: return [-1, 0, 2, 1e300, -0, 65536, 2 ** 53 + 1][rnd(7)];
        case 3: return ['snapshot', 'chain', 'avail', 'error', 'fault-list', '', 'x'.repeat(rnd(300))][rnd(7)];
        case 4: return keys[rnd(keys.length)];
        case 5: return 2;
        case 6: return Array.from({ length: rnd(5) }, () => value(depth + 1));
        default: return Object.fromEntries(Array.from({ length: rnd(8) }, () => [keys[rnd(keys.length)]!, value(depth + 1)]));
      }
    };
    for (let i = 0; i < 3000; i++) {
      const raw = { ...(value(0) as object), ...(rnd(2) ? { type: ['snapshot', 'chain', 'avail', 'error', 'fault-set', 'fault-list', 'fault-clear'][rnd(7)], schema: 2, ok: true } : {}) };
      for (const read of [readSnapshot, readChain, readAvail, readError, readFaultReply]) read(raw);
      readReply({ type: 'snapshot' }, raw);
      parseReply(JSON.stringify(raw));
    }
  });
});
