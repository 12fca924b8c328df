// One VM boot: fault injection against a real guest. `vlab up --fault`, then `vlab fault set/list/clear`
// while the lab's /dev/crypto driver runs requests from the guest test tool.
import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import type { FaultReply } from '../../backend/telemetry/schema';
import { GUEST_TOOL_PATH, buildDriver, pushGuestTool } from '../../extension/lab/driver/driver';
import { Lab } from '../../extension/lab/lab';
import type { SshSession } from '../../extension/lab/guest/ssh';
import { processesMentioning, runCli, tempWorkspace } from './lab-helpers';

const ws = tempWorkspace('vlab-fault-');
const lab = Lab.forWorkspace(ws.dir, { env: {} });
let session: SshSession;

/** One AES-128-CBC case for the guest tool's `roundtrip`: one session, one encrypt, one decrypt. */
const CASE = `11 ${crypto.randomBytes(16).toString('hex')} ${crypto.randomBytes(16).toString('hex')} 4096 7\n`;

async function roundTrip(timeoutMs = 60_000): Promise<{ code: number | null; stdout: string }> {
  return session.run({ shell: `printf '%s' '${CASE}' > /tmp/vlab-fault-case && ${GUEST_TOOL_PATH} roundtrip /tmp/vlab-fault-case` }, { timeoutMs });
}

async function faultList(): Promise<Extract<FaultReply, { type: 'fault-list' }>> {
  const r = await runCli(['fault', 'list', '--json'], ws.dir);
  assert.equal(r.code, 0, r.err);
  return JSON.parse(r.out) as Extract<FaultReply, { type: 'fault-list' }>;
}

before(async () => {
  const r = await runCli(['up', '--fault', 'status=err,count=1'], ws.dir);
  assert.equal(r.code, 0, `vlab up failed:\n${r.err}`);
  session = await lab.ssh();
  await pushGuestTool(session, await buildDriver(lab));
});

after(async () => {
  session?.close();
  await lab.down().catch(() => undefined);
  ws.cleanup();
  assert.deepEqual(processesMentioning(ws.dir), [], 'no QEMU or backend left behind');
});

test('`vlab up --fault status=err,count=1`: the first guest request fails, the next ones succeed', async () => {
  const before = await faultList();
  assert.deepEqual(before.faults.rules.map((r) => [r.id, r.rule, r.hits]), [[1, 'status=err,count=1', 0]], 'nothing used the data queue during boot');
  const failed = await roundTrip();
  assert.notEqual(failed.code, 0);
  // The lab driver maps VIRTIO_CRYPTO_ERR to -EIO (guest/driver/vc_virtio.c).
  assert.match(failed.stdout, /^not ok case 1: errno Input\/output error$/m);
  const ok = await roundTrip();
  assert.equal(ok.code, 0, ok.stdout);
  assert.match(ok.stdout, /^ct 1 [0-9a-f]{64}$/m);
  const after = await faultList();
  assert.deepEqual(after.faults.rules.map((r) => [r.id, r.hits, r.retired]), [[1, 1, true]]);
  assert.equal(after.faults.injected, 1);
});

test('`vlab fault set/list/clear` change the running lab: BADMSG on decrypt, then a stall released by clear', async () => {
  const set = await runCli(['fault', 'set', 'status=badmsg,opcode=decrypt,count=1'], ws.dir);
  assert.equal(set.code, 0, set.err);
  assert.equal(set.out, 'rule #2: status=badmsg,opcode=decrypt,count=1\n');
  const r = await roundTrip();
  assert.match(r.stdout, /^not ok case 1: errno Bad message$/m, 'the decrypt got the injected BADMSG as -EBADMSG');
  const list = await runCli(['fault', 'list'], ws.dir);
  assert.match(list.out, /^ {4}2 {7}1 {7}1 {2}status=badmsg,opcode=decrypt,count=1 {2}\(retired: count reached\)$/m);

  // A stall: the guest's request waits on the ring while the lab (QMP, SSH, the backend) stays responsive.
  assert.equal((await runCli(['fault', 'set', 'stall'], ws.dir)).code, 0);
  const pending = roundTrip(120_000);
  const deadline = Date.now() + 30_000;
  let held = 0;
  while (held === 0 && Date.now() < deadline) {
    held = (await faultList()).faults.heldRequests;
    if (held === 0) await new Promise((res) => setTimeout(res, 200));
  }
  assert.ok(held >= 1, 'the guest request is held on the ring');
  const status = await runCli(['status', '--json'], ws.dir);
  assert.equal(status.code, 0);
  assert.equal((JSON.parse(status.out) as { state: string }).state, 'running');
  const rings = await runCli(['rings', '--once'], ws.dir);
  assert.match(rings.out, /queue STALLED by rule #3/);
  const cleared = await runCli(['fault', 'clear'], ws.dir);
  assert.equal(cleared.out, 'cleared #1 #2 #3\n');
  const served = await pending;
  assert.equal(served.code, 0, served.stdout);
  assert.match(served.stdout, /^ct 1 [0-9a-f]{64}$/m);
  const final = await faultList();
  assert.deepEqual(final.faults.rules, []);
  assert.deepEqual([final.faults.injected, final.faults.byAction.status, final.faults.byAction.stall, final.faults.stalledBy], [3, 2, 1, null]);
});
