/** `vlab backend --fault` and `vlab fault set|list|clear` against a running back-end process. */
import assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { spawnBackend } from '../../../../backend/harness/bench-process';
import * as S from '../../../../backend/crypto/spec';
import { CryptoStatus } from '../../../../backend/crypto/spec';
import type { FaultReply } from '../../../../backend/telemetry/schema';
import { TestFrontend } from '../../../../backend/harness/frontend';
import { parseUpArgs } from '../../../../extension/cli/commands/lab';
import { UsageError } from '../../../../extension/cli/command';
import { resolveUpOptions } from '../../../../extension/lab/up-options';
import { runMainCaptured } from '../../../cli-capture';

/** One request line, one reply line. */
function control(socketPath: string, line: string): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const s = net.createConnection(socketPath, () => s.write(`${line}\n`));
    let buf = '';
    const t = setTimeout(() => {
      s.destroy();
      reject(new Error('no reply'));
    }, 3000);
    s.setEncoding('utf8');
    s.on('data', (d: string) => {
      buf += d;
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      clearTimeout(t);
      s.destroy();
      resolve(JSON.parse(buf.slice(0, nl)) as Record<string, unknown>);
    });
    s.on('error', reject);
  });
}

describe('`vlab fault` against a running `vlab backend --fault ...`', () => {
  let be: Awaited<ReturnType<typeof spawnBackend>>;
  let dir: string;
  let fe: TestFrontend;
  let session: bigint;
  const key = crypto.randomBytes(16);
  const vlab = (...args: string[]) => runMainCaptured([...args.slice(0, 2), '--telemetry', be.telemetry, ...args.slice(2)], { cwd: dir, env: {} });
  const request = () => fe.run({ opcode: S.VIRTIO_CRYPTO_CIPHER_ENCRYPT, sessionId: session, iv: Buffer.alloc(16), src: Buffer.alloc(32) });

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vlab-cli-fault-'));
    be = await spawnBackend('openssl', dir, ['--fault', 'status=err,count=1']);
    fe = await TestFrontend.connect(be.socket);
    session = await fe.cipherSession(S.VIRTIO_CRYPTO_CIPHER_AES_CBC, key, true);
  });
  after(async () => {
    fe.close();
    await be.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('the start-time rule fires once, then `fault list --json` shows it retired with its hit', async () => {
    assert.equal((await request()).status, CryptoStatus.ERR);
    assert.equal((await request()).status, CryptoStatus.OK);
    const r = await vlab('fault', 'list', '--json');
    assert.equal(r.code, 0, r.err);
    const reply = JSON.parse(r.out) as Extract<FaultReply, { type: 'fault-list' }>;
    assert.equal(reply.type, 'fault-list');
    assert.deepEqual(reply.faults.rules, [{ id: 1, rule: 'status=err,count=1', action: 'status', seen: 1, hits: 1, retired: true }]);
    assert.equal(reply.faults.injected, 1);
  });

  it('`fault set` adds rules and prints their ids; `fault list` and `rings --once` show them', async () => {
    const set = await vlab('fault', 'set', 'short-used=8,every=2', 'delay=5,opcode=decrypt');
    assert.equal(set.code, 0, set.err);
    assert.equal(set.out, 'rule #2: short-used=8,every=2\nrule #3: delay=5,opcode=decrypt\n');
    assert.equal((await request()).usedLen, 33);
    assert.equal((await request()).usedLen, 33 - 8);
    const list = await vlab('fault', 'list');
    assert.equal(list.code, 0, list.err);
    assert.match(list.out, /^faults injected: 2 \(status 1, short-used 1\)$/m);
    assert.match(list.out, /^ {4}1 {7}1 {7}1 {2}status=err,count=1 {2}\(retired: count reached\)$/m);
    assert.match(list.out, /^ {4}2 {7}1 {7}2 {2}short-used=8,every=2$/m);
    assert.match(list.out, /^ {4}3 {7}0 {7}0 {2}delay=5,opcode=decrypt$/m);
    const rings = await runMainCaptured(['rings', '--once', '--telemetry', be.telemetry], { cwd: dir, env: {} });
    assert.equal(rings.code, 0, rings.err);
    assert.match(rings.out, /faults injected: 2/);
    assert.match(rings.out, /CIPHER_ENCRYPT .* OK .* µs {2}fault: #2 short-used=8,every=2$/m, 'the faulted request is marked with its rule');
  });

  it('a stall set from the CLI holds requests until `fault clear ID`', async () => {
    const set = await vlab('fault', 'set', 'stall');
    assert.equal(set.out, 'rule #4: stall\n');
    const pending = fe.run({ opcode: S.VIRTIO_CRYPTO_CIPHER_ENCRYPT, sessionId: session, iv: Buffer.alloc(16), src: Buffer.alloc(32) }, 10_000);
    const deadline = Date.now() + 3000;
    let list = await vlab('fault', 'list');
    while (!/STALLED/.test(list.out) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
      list = await vlab('fault', 'list');
    }
    assert.match(list.out, /queue STALLED by rule #4: 1 request\(s\) held on the ring/);
    const cleared = await vlab('fault', 'clear', '4');
    assert.equal(cleared.out, 'cleared #4\n');
    assert.equal((await pending).status, CryptoStatus.OK);
  });

  it('`fault clear` without an id removes every rule', async () => {
    const r = await vlab('fault', 'clear');
    assert.equal(r.out, 'cleared #1 #2 #3\n');
    assert.match((await vlab('fault', 'list')).out, /no rules set/);
    assert.equal((await vlab('fault', 'clear')).out, 'no rules to clear\n');
  });

  it('bad input: a malformed rule is a usage error naming the part; an unknown id is an error', async () => {
    const bad = await vlab('fault', 'set', 'status=err', 'delay=soon');
    assert.equal(bad.code, 2);
    assert.match(bad.err, /"delay=soon": "soon" is not an integer 1\.\.60000/);
    assert.match((await vlab('fault', 'list')).out, /no rules set/, 'nothing was added');
    const unknown = await vlab('fault', 'clear', '99');
    assert.equal(unknown.code, 1);
    assert.match(unknown.err, /no rule with id 99/);
    assert.equal((await vlab('fault', 'clear', 'x')).code, 2);
    assert.equal((await vlab('fault', 'set')).code, 2);
  });

  it('the control socket validates requests and answers typed errors', async () => {
    assert.deepEqual(await control(be.telemetry, '{"type":"fault-set","rules":"stall"}'), { type: 'error', request: 'fault-set', message: '"rules" must be a non-empty array of rule strings' });
    assert.deepEqual(await control(be.telemetry, '{"type":"fault-set","rules":["stall",7]}'), { type: 'error', request: 'fault-set', message: 'rule 2 is not a string' });
    assert.deepEqual(await control(be.telemetry, '{"type":"fault-set","rules":["flip-dst","irq=often"]}'), { type: 'error', request: 'fault-set', message: 'rule 2: "irq=often": irq must be withhold or duplicate' });
    assert.deepEqual(await control(be.telemetry, '{"type":"fault-clear","id":-1}'), { type: 'error', request: 'fault-clear', message: '"id" must be a positive integer (or absent to clear all)' });
    const ok = await control(be.telemetry, '{"type":"fault-set","rules":["flip-dst,session=99"]}');
    assert.equal(ok.type, 'fault-set');
    assert.equal(ok.ok, true);
    const snap = await control(be.telemetry, '{"type":"snapshot","descriptors":false}');
    assert.equal((snap.faults as { rules: unknown[] }).rules.length, 1, 'the snapshot carries the plan');
    assert.equal((await control(be.telemetry, '{"type":"fault-clear"}')).type, 'fault-clear');
  });
});

describe('`vlab fault` and `--fault` without a back-end', () => {
  it('reports an unreachable control socket', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vlab-cli-fault-'));
    try {
      const r = await runMainCaptured(['fault', 'list'], { cwd: dir, env: {} });
      assert.equal(r.code, 1);
      assert.match(r.err, /cannot reach the back-end's control socket at .*telemetry\.sock/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('`vlab backend --fault` and `vlab up --fault` refuse a bad rule before starting anything', async () => {
    const r = await runMainCaptured(['backend', '--socket', '/nonexistent/x.sock', '--fault', 'stall=1'], { cwd: os.tmpdir(), env: {} });
    assert.equal(r.code, 2);
    assert.match(r.err, /"stall=1": stall takes no value/);
    assert.throws(() => parseUpArgs(['--fault', 'delay=x']), UsageError);
    assert.deepEqual(parseUpArgs(['--fault', 'status=err,count=1', '--fault', 'stall']).options.faults, ['status=err,count=1', 'stall']);
    assert.throws(() => resolveUpOptions({ backend: 'builtin', faults: ['stall'] }), /fault injection needs the ts backend/);
    assert.deepEqual(resolveUpOptions({ faults: ['stall'] }).faults, ['stall']);
  });
});
