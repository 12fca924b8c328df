import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { spawnBackend } from '../../../../backend/harness/bench-process';
import * as S from '../../../../backend/crypto/spec';
import { TestFrontend } from '../../../../backend/harness/frontend';
import { requestSnapshot } from '../../../../backend/telemetry/client';
import { readChain, readSnapshot } from '../../../../backend/telemetry/readers';
import { encodeRequest } from '../../../../backend/telemetry/schema';
import { REPO } from '../../../repo-root';

/** Reads `count` JSON lines after sending `request`. */
function readLines(socketPath: string, request: string, count: number, timeoutMs = 3000): Promise<Record<string, unknown>[]> {
  return new Promise((resolve, reject) => {
    const lines: Record<string, unknown>[] = [];
    const s = net.createConnection(socketPath, () => s.write(request));
    let buf = '';
    const t = setTimeout(() => {
      s.destroy();
      reject(new Error(`got ${lines.length}/${count} lines`));
    }, timeoutMs);
    s.setEncoding('utf8');
    s.on('data', (d: string) => {
      buf += d;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        lines.push(JSON.parse(buf.slice(0, nl)) as Record<string, unknown>);
        buf = buf.slice(nl + 1);
        if (lines.length === count) {
          clearTimeout(t);
          s.destroy();
          resolve(lines);
        }
      }
    });
    s.on('error', reject);
  });
}

describe('`vlab backend` process and its telemetry socket', () => {
  let be: Awaited<ReturnType<typeof spawnBackend>>;
  let dir: string;
  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vlab-cli-be-'));
    be = await spawnBackend('openssl', dir);
  });
  after(async () => {
    await be.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('serves a front-end and reports it in the snapshot', async () => {
    const fe = await TestFrontend.connect(be.socket);
    try {
      const id = await fe.cipherSession(S.VIRTIO_CRYPTO_CIPHER_AES_CBC, crypto.randomBytes(32), true);
      let iv: Buffer = Buffer.alloc(0);
      let src: Buffer = Buffer.alloc(0);
      for (let k = 0; k < 5; k++) {
        iv = crypto.randomBytes(16);
        src = crypto.randomBytes(4096);
        const r = await fe.run({ opcode: 0, sessionId: id, iv, src });
        assert.equal(r.status, S.CryptoStatus.OK);
      }
      const snap = await requestSnapshot(be.telemetry);
      assert.equal(snap.type, 'snapshot');
      assert.equal(snap.pid, be.child.pid);
      assert.equal(snap.engine.name, 'openssl');
      assert.match(snap.engine.reason, /openssl/);
      assert.equal(snap.frontend.connected, true);
      assert.equal(snap.counters.requests, 5);
      assert.equal(snap.counters.bytesIn, 5 * 4096);
      assert.equal(snap.sessions.length, 1);
      assert.equal(snap.sessions[0].algorithm, 'AES-256-CBC');
      const q = snap.queues[0];
      assert.deepEqual([q.index, q.size, q.availIdx, q.usedIdx, q.lastAvailIdx, q.inFlight], [0, 128, 5, 5, 5, 0]);
      assert.equal(snap.schema, 2);
      assert.equal(q.slots.length, 128);
      assert.match(q.slots, /^[.adu]+$/);
      assert.equal(q.recent[0].opcode, 'CIPHER_ENCRYPT');
      assert.equal(q.recent[0].status, 'OK');
      assert.equal(q.recent[0].srcLen, 4096);
      assert.equal(q.recent[0].id, 5);
      assert.equal(q.recent[0].rejected, null);
      assert.equal(q.recent[0].fault, null);

      // What the readers give back is the JSON the back-end sent, key for key (their caps never bite a real reply).
      const [raw] = await readLines(be.telemetry, encodeRequest({ type: 'snapshot' }), 1);
      assert.equal(JSON.stringify(readSnapshot(raw)), JSON.stringify(raw));

      // The newest request's chain, decoded on request from guest memory.
      const [rawChain] = await readLines(be.telemetry, encodeRequest({ type: 'chain', queue: 0, head: q.recent[0].head }), 1);
      const chain = readChain(rawChain);
      assert.ok(chain);
      assert.equal(JSON.stringify(chain), JSON.stringify(rawChain));
      assert.equal(chain.error, null);
      assert.equal(chain.header?.opcode, 'CIPHER_ENCRYPT');
      assert.equal(chain.header?.srcLen, 4096);
      assert.equal(chain.header?.dstLen, 4096);
      assert.equal(chain.header?.algorithm, 'AES-256-CBC');
      assert.equal(chain.iv, iv.toString('hex'));
      assert.equal(chain.srcPreview, src.subarray(0, 16).toString('hex'));
      assert.equal(chain.dstPreview?.length, 32);
      assert.equal(chain.status, 'OK');
      assert.equal(chain.match, 'served');
      assert.equal(chain.readableLength, 72 + 16 + 4096);
      assert.equal(chain.writableLength, 4096 + 1);
      assert.ok(chain.descriptors.length >= 2);
    } finally {
      fe.close();
    }
  });

  it('streams snapshots to a subscriber at the requested rate', async () => {
    const t0 = Date.now();
    const lines = await readLines(be.telemetry, '{"type":"subscribe","intervalMs":50}\n', 4);
    assert.ok(lines.every((l) => l.type === 'snapshot'));
    assert.ok(Date.now() - t0 >= 140, 'three intervals elapsed');
  });

  it('answers garbage with an error line and keeps going', async () => {
    const lines = await readLines(be.telemetry, 'not json\n{"type":"what"}\n{"type":"chain","queue":0,"head":-1}\n{"type":"chain","queue":0,"head":4000}\n{"type":"snapshot"}\n', 5);
    assert.deepEqual(lines.map((l) => l.type), ['error', 'error', 'error', 'error', 'snapshot']);
  });

  it('exits cleanly on SIGTERM and removes its sockets', async () => {
    const exited = new Promise<number | null>((r) => be.child.once('exit', (code) => r(code)));
    be.child.kill('SIGTERM');
    assert.equal(await exited, 0);
    assert.equal(fs.existsSync(be.socket), false);
    assert.equal(fs.existsSync(be.telemetry), false);
    assert.match(be.output(), /engine: openssl/);
  });
});

describe('`vlab backend --engine node` (node:crypto)', () => {
  it('serves a hash-only chain session and names its engine in the snapshot', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vlab-cli-be-'));
    const be = await spawnBackend('node', dir);
    const fe = await TestFrontend.connect(be.socket);
    try {
      const id = await fe.chainSession({ hashMode: S.VIRTIO_CRYPTO_SYM_HASH_MODE_PLAIN, hashAlg: S.VIRTIO_CRYPTO_HASH_SHA_256, hashResultLen: 32 });
      const msg = Buffer.from('abc');
      const r = await fe.run({ opcode: 0, sessionId: id, iv: Buffer.alloc(0), src: msg, dstLen: 0, chain: { aad: Buffer.alloc(0), cipherStart: 0, lenToCipher: 0, hashStart: 0, lenToHash: 3, hashResultLen: 32 } });
      assert.equal(r.hash.toString('hex'), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
      const snap = await requestSnapshot(be.telemetry);
      assert.equal(snap.engine.name, 'node');
      assert.deepEqual(snap.sessions.map((x) => x.algorithm), ['SHA-256']);
    } finally {
      fe.close();
      await be.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
  it('an unknown engine name is a usage error naming the four choices', () => {
    const bin = path.resolve(REPO, 'bin', 'vlab.js');
    const r = spawnSync(process.execPath, [bin, 'backend', '--engine', 'bogus', '--socket', path.join(os.tmpdir(), 'vlab-never.sock')], { encoding: 'utf8', timeout: 20_000 });
    assert.equal(r.status, 2);
    assert.match(r.stderr, /--engine must be auto, openssl, node or cryptodev \(got "bogus"\)/);
  });
});

describe('`vlab backend --engine cryptodev` without /dev/crypto', () => {
  it('fails with a typed "unavailable" message', { skip: fs.existsSync('/dev/crypto') ? 'this host has /dev/crypto' : false }, async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vlab-cli-be-'));
    try {
      await assert.rejects(spawnBackend('cryptodev', dir), /exited with 1/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('`vlab backend` socket path safety', () => {
  it('refuses a path held by a live back-end or by a regular file; replaces a stale socket', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vlab-cli-be-'));
    const first = await spawnBackend('openssl', dir);
    try {
      await assert.rejects(spawnBackend('openssl', dir), /exited with 1/);
      assert.equal(first.child.exitCode, null, 'the first back-end still runs');
    } finally {
      await first.stop();
    }
    fs.writeFileSync(path.join(dir, 'vhost-user.sock'), 'not a socket');
    await assert.rejects(spawnBackend('openssl', dir), /exited with 1/);
    fs.rmSync(path.join(dir, 'vhost-user.sock'));
    // A stale socket file (its listener was SIGKILLed) is replaced.
    const killed = await spawnBackend('openssl', dir);
    killed.child.kill('SIGKILL');
    await new Promise((r) => killed.child.once('exit', r));
    assert.ok(fs.existsSync(killed.socket), 'stale socket left behind');
    const again = await spawnBackend('openssl', dir);
    await again.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });
});
