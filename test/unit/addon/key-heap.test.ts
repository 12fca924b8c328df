/**
 * Review F10: CREATE_CRYPTO_SESSION's key bytes must not stay behind in the back-end's freed native
 * heap. A real `vlab backend` process runs with an LD_PRELOAD shim (free-scan.c, built here with gcc)
 * that searches every block passed to free() — operator delete included — for the session key the
 * harness front-end sends over the real vhost-user socket.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import * as S from '../../../backend/crypto/spec';
import { TestFrontend } from '../../../backend/harness/frontend';

const repo = path.resolve(__dirname, '..', '..', '..', '..');
let dir: string;
let shim: string;

before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vlab-free-scan-'));
  shim = path.join(dir, 'free-scan.so');
  // -fno-builtin: the self-test's malloc/free pair must not be optimised away.
  execFileSync('gcc', ['-shared', '-fPIC', '-O2', '-fno-builtin', '-Wall', '-Wextra', '-Werror', '-o', shim, path.join(repo, 'test', 'unit', 'addon', 'free-scan.c'), '-ldl']);
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));

async function waitFor(child: ChildProcess, output: () => string, re: RegExp, what: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!re.test(output())) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`back-end exited before ${what}: ${output()}`);
    if (Date.now() > deadline) throw new Error(`no ${what} within ${timeoutMs} ms: ${output()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

for (const layout of ['qemu7', 'qemu8.1'] as const) {
  test(`the session key (${layout} session message) is not left in freed native heap blocks`, { timeout: 120_000 }, async () => {
    const key = crypto.randomBytes(32);
    const authKey = crypto.randomBytes(32);
    const socket = path.join(dir, `vu-${layout}.sock`);
    const telemetry = path.join(dir, `t-${layout}.sock`);
    const child = spawn(process.execPath, [path.join(repo, 'bin', 'vlab.js'), 'backend', '--socket', socket, '--telemetry', telemetry, '--engine', 'openssl'], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, LD_PRELOAD: shim, FREE_SCAN_KEY: Buffer.concat([key.subarray(0, 16)]).toString('hex') },
    });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    try {
      await waitFor(child, () => out, / telemetry on /, 'listening');
      assert.match(out, /FREE-SCAN-SELFTEST size=\d+/, 'the shim is loaded and its scan finds the key in a freed block');
      const fe = await TestFrontend.connect(socket, { sessionLayout: layout });
      const id = await fe.cipherSession(S.VIRTIO_CRYPTO_CIPHER_AES_CBC, key, true);
      assert.ok(id >= 0n, 'session created');
      const hmac = await fe.chainSession({ hashMode: S.VIRTIO_CRYPTO_SYM_HASH_MODE_AUTH, hashAlg: S.VIRTIO_CRYPTO_MAC_HMAC_SHA_256, authKey: Buffer.concat([key.subarray(0, 16), authKey.subarray(16)]), hashResultLen: 32 });
      assert.ok(hmac >= 0n, 'HMAC session created');
      await fe.closeSession(id);
      await fe.closeSession(hmac);
      fe.close();
      await waitFor(child, () => out, /front-end closed the connection/, 'disconnect');
    } finally {
      child.kill('SIGTERM');
      await exited;
    }
    const hits = out.match(/FREE-SCAN-HIT size=\d+/g) ?? [];
    assert.deepEqual(hits, [], `freed blocks that still held the key: ${hits.join(', ')}`);
  });
}
