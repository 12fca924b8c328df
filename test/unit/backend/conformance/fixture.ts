/**
 * Ring-level bad drivers for the conformance oracle's tests: a real back-end on a temp socket and the
 * harness front-end (backend/harness/frontend.ts: real vhost-user over memfds, no VM), plus the few
 * moves a bad driver makes that the harness does not (direct chains, raw descriptors, custom acks).
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { ConformanceSnapshot, ViolationRecord } from '../../../../backend/conformance/report';
import { createEngine } from '../../../../backend/crypto/engines';
import { type FrontendOptions, TestFrontend } from '../../../../backend/harness/frontend';
import { VhostUserBackend } from '../../../../backend/vhost-user-backend';
import { readSnapshot } from '../../../../backend/telemetry/readers';
import { VIRTQ_DESC_F_NEXT } from '../../../../backend/virtio/virtqueue';

export interface RefereeFixture {
  readonly backend: VhostUserBackend;
  readonly socket: string;
  readonly logs: string[];
  /** The front-end, connected and through QEMU 7.2's start sequence (unless `raw`). */
  readonly fe: TestFrontend;
  /** The snapshot's conformance section, read back through the telemetry schema's reader. */
  conformance(): ConformanceSnapshot;
  close(): Promise<void>;
}

export interface RefereeOptions {
  readonly strict?: boolean;
  readonly conformance?: boolean;
  readonly faults?: readonly string[];
  readonly frontend?: FrontendOptions;
  /** Connect without the start sequence (the test drives the messages). */
  readonly raw?: boolean;
}

export async function refereeBackend(opts: RefereeOptions = {}): Promise<RefereeFixture> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vlab-conformance-'));
  const socket = path.join(dir, 'vu.sock');
  const logs: string[] = [];
  const backend = new VhostUserBackend({
    socketPath: socket, engine: createEngine('openssl'), log: (l) => logs.push(l), faults: opts.faults, strict: opts.strict, conformance: opts.conformance,
  });
  backend.start();
  let fe: TestFrontend;
  try {
    fe = opts.raw ? TestFrontend.raw(socket, opts.frontend) : await TestFrontend.connect(socket, opts.frontend);
  } catch (err) {
    backend.stop();
    throw err;
  }
  return {
    backend, socket, logs, fe,
    conformance() {
      const s = readSnapshot(JSON.parse(JSON.stringify(backend.snapshot())));
      assert.ok(s?.conformance, 'the snapshot has a conformance section');
      return s.conformance;
    },
    async close() {
      fe.close();
      await new Promise((r) => setTimeout(r, 20));
      backend.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The one rule broken, exactly once, and its record (anything else broken fails the test). */
export function onlyViolation(c: ConformanceSnapshot, rule: string): ViolationRecord {
  assert.deepEqual(c.rules.map((r) => `${r.rule} ×${r.count}`), [`${rule} ×1`], `exactly one violation of ${rule}`);
  const last = c.rules[0]!.last;
  assert.equal(last.rule, rule);
  assert.deepEqual(c.recent.map((v) => v.rule), [rule]);
  return last;
}

/** Waits until `done()` (polling the event loop), or fails after `ms`. */
export async function until(done: () => boolean, what: string, ms = 2000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!done()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** One descriptor: guest-physical address, length, flags (NEXT is added between descriptors by {@link writeChain}). */
export type Desc = readonly [addr: number | bigint, len: number, flags: number];

/**
 * Writes `descs` as a chain at slots first, first+1, … of the table at `tableGpa` (the ring's own
 * table by default), NEXT linking each to the one after it.
 */
export function writeChain(fe: TestFrontend, first: number, descs: readonly Desc[], tableGpa = fe.descGpa): void {
  descs.forEach(([addr, len, flags], k) => {
    const last = k === descs.length - 1;
    fe.writeDesc(tableGpa, first + k, addr, len, flags | (last ? 0 : VIRTQ_DESC_F_NEXT), last ? 0 : first + k + 1);
  });
}

/** Puts `head` on the available ring, publishes avail->idx and kicks. */
export function expose(fe: TestFrontend, head: number): void {
  fe.pushAvail(head);
  fe.publishAvail();
  fe.kick();
}
