import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { computeBootTimings, formatBootTimings, parseInitMarkers } from '../../../../extension/lab/boot-timings';

const console = [
  '[    0.000000] Linux version 6.1.0',
  'vlab-init: t=2.40 init',
  'vlab-init: t=3.31 switch\r',
  'vlab-init: t=4.90 ready',
  'vlab-init: ready (driver=lab)',
  'vlab-init: t=0.01 init', // a second (fake) init marker is ignored
].join('\n');

test('init markers: the first of each stage, bounded numbers only', () => {
  assert.deepEqual(parseInitMarkers(console), { init: 2.4, switch: 3.31, ready: 4.9 });
  assert.deepEqual(parseInitMarkers('vlab-init: t=1e9 init\nvlab-init: t=12345678.5 init\nvlab-init: t=-1.0 init\nxvlab-init: t=1.0 init'), {});
  assert.deepEqual(parseInitMarkers('vlab-floor: t=1.25 init'), { init: 1.25 });
});

test('the phases add up to the total, anchored where the host saw the ready line', () => {
  const spawnAt = 1_000_000;
  const t = computeBootTimings({ spawnAt, qmpAt: spawnAt + 100, readySeenAt: spawnAt + 7_000, loginAt: spawnAt + 7_500 }, parseInitMarkers(console));
  // kernel clock 0 = 7.0 - 4.9 = 2.1 s after the spawn
  assert.deepEqual(t, { qemuSec: 0.1, firmwareSec: 2, kernelSec: 2.4, stage1Sec: 0.91, stage2Sec: 1.59, sshSec: 0.5, totalSec: 7.5 });
  const sum = t.qemuSec! + t.firmwareSec! + t.kernelSec! + t.stage1Sec! + t.stage2Sec! + t.sshSec!;
  assert.ok(Math.abs(sum - t.totalSec) < 0.02, String(sum));
  assert.match(formatBootTimings({ ...t, muxSec: 0.2 }), /firmware +2\.00 s[\s\S]*ssh mux +0\.20 s/);
});

test('missing or out-of-order events give null phases, never guesses', () => {
  const spawnAt = 5_000;
  const none = computeBootTimings({ spawnAt, loginAt: spawnAt + 9_000 }, {});
  assert.deepEqual(none, { qemuSec: null, firmwareSec: null, kernelSec: null, stage1Sec: null, stage2Sec: null, sshSec: null, totalSec: 9 });
  const backwards = computeBootTimings({ spawnAt, qmpAt: spawnAt + 50, readySeenAt: spawnAt + 1_000, loginAt: spawnAt + 2_000 }, { init: 3, switch: 2, ready: 4 });
  assert.equal(backwards.stage1Sec, null);
  assert.equal(backwards.kernelSec, null);
  // a ready line claiming more uptime than the host has seen would put the kernel before QMP: null
  assert.equal(backwards.firmwareSec, null);
  assert.match(formatBootTimings(none), /kernel +\?/);
});
