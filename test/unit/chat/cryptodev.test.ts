/**
 * The addon's /dev/crypto binding. The error-path tests run everywhere (they use /dev/null, which
 * rejects cryptodev ioctls with ENOTTY); the crypto tests need a real /dev/crypto and are reported
 * as skipped, with the reason, where there is none. In the lab guest:
 *   node --test out/test/unit/chat/cryptodev*.test.js
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import { CryptodevAlg, CryptodevDevice, CryptodevError, probeCryptodev } from '../../../addon/lib/cryptodev';
import { nativeFunction } from '../../../addon/lib/native';
import { ChatProtocol } from '../../../chat/protocol';
import { cryptodevProvider, type CryptoProvider, softwareProvider } from '../../../chat/provider';

const probe = probeCryptodev();
const noDevice = probe.ok ? false : probe.reason;

function expectErrno(fn: () => unknown, code: string, syscall: string): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof CryptodevError, `expected CryptodevError, got ${String(err)}`);
    assert.equal(err.code, code);
    assert.equal(err.syscall, syscall);
    assert.equal(typeof err.errno, 'number');
    assert.ok(err.errno > 0);
    assert.match(err.message, new RegExp(`^${syscall}: .*\\(${code}\\)$`));
    return true;
  });
}

test('open of a missing device reports errno, code and syscall', () => {
  expectErrno(() => CryptodevDevice.open('/nonexistent/crypto'), 'ENOENT', 'open');
});

test('ioctls on a non-cryptodev descriptor fail with ENOTTY naming the ioctl', () => {
  const dev = CryptodevDevice.open('/dev/null');
  try {
    expectErrno(() => dev.createSession({ cipher: CryptodevAlg.AES_CBC, key: Buffer.alloc(32) }), 'ENOTTY', 'CIOCGSESSION');
    expectErrno(() => dev.clone(), 'ENOTTY', 'CRIOGET');
    const raw = nativeFunction<(fd: number, ses: number) => void>('cryptodevFreeSession');
    assert.throws(() => raw(dev.fd, 1), (e: unknown) => (e as { syscall?: string }).syscall === 'CIOCFSESSION');
    const info = nativeFunction<(fd: number, ses: number) => void>('cryptodevSessionInfo');
    assert.throws(() => info(dev.fd, 1), (e: unknown) => (e as { syscall?: string }).syscall === 'CIOCGSESSINFO');
    const crypt = nativeFunction<(...a: unknown[]) => void>('cryptodevCrypt');
    assert.throws(() => crypt(dev.fd, 1, 0, 0, Buffer.alloc(16), Buffer.alloc(16), Buffer.alloc(16), null),
      (e: unknown) => (e as { code?: string; syscall?: string }).syscall === 'CIOCCRYPT' && (e as { code?: string }).code === 'ENOTTY');
  } finally {
    dev.close();
  }
  assert.equal(dev.isOpen, false);
  dev.close(); // idempotent
});

test('the asynchronous CIOCCRYPT runs off the JS thread and rejects with errno, code and ioctl name', async () => {
  const dev = CryptodevDevice.open('/dev/null');
  try {
    const cryptAsync = nativeFunction<(...a: unknown[]) => Promise<void>>('cryptodevCryptAsync');
    await assert.rejects(cryptAsync(dev.fd, 1, 0, 0, Buffer.alloc(16), Buffer.alloc(16), Buffer.alloc(16), null), (e: unknown) => {
      const err = e as { errno?: number; code?: string; syscall?: string; message?: string };
      return err.code === 'ENOTTY' && err.syscall === 'CIOCCRYPT' && typeof err.errno === 'number' && /^CIOCCRYPT: /.test(err.message ?? '');
    });
    // Argument errors are thrown synchronously, before any work is queued.
    assert.throws(() => cryptAsync(dev.fd, 1, 0, 0, 'src', null, null, null), { name: 'TypeError', message: 'src must be a Buffer' });
  } finally {
    dev.close();
  }
});

test('TypeScript validation rejects bad input before any ioctl', () => {
  // On /dev/null every ioctl fails with ENOTTY, so a RangeError/TypeError proves the check ran first.
  const dev = CryptodevDevice.open('/dev/null');
  try {
    assert.throws(() => dev.createSession({ cipher: CryptodevAlg.AES_CBC, key: Buffer.alloc(65) }), RangeError);
    assert.throws(() => dev.createSession({ cipher: CryptodevAlg.AES_CBC, key: Buffer.alloc(20) }), RangeError);
    assert.throws(() => dev.createSession({ cipher: CryptodevAlg.AES_CBC }), TypeError);
    assert.throws(() => dev.createSession({ mac: CryptodevAlg.SHA2_256_HMAC, macKey: Buffer.alloc(513) }), RangeError);
    assert.throws(() => dev.createSession({ cipher: 99 as never, key: Buffer.alloc(32) }), /unknown cipher/);
    assert.throws(() => dev.createSession({}), TypeError);
  } finally {
    dev.close();
  }
  assert.throws(() => dev.createSession({ cipher: CryptodevAlg.AES_CBC, key: Buffer.alloc(32) }), /closed/);
});

test('the native layer throws TypeError for wrongly typed arguments', () => {
  const open = nativeFunction<(...a: unknown[]) => number>('cryptodevOpen');
  const crypt = nativeFunction<(...a: unknown[]) => void>('cryptodevCrypt');
  const session = nativeFunction<(...a: unknown[]) => number>('cryptodevCreateSession');
  assert.throws(() => open(42), { name: 'TypeError', message: 'path must be a string' });
  assert.throws(() => open(), TypeError);
  assert.throws(() => crypt('3', 1, 0, 0, Buffer.alloc(16), null, null, null), { name: 'TypeError', message: 'fd must be a number' });
  assert.throws(() => crypt(-1, 1, 0, 0, Buffer.alloc(16), null, null, null), TypeError);
  assert.throws(() => crypt(0, 1, 0, 0, 'src', null, null, null), { name: 'TypeError', message: 'src must be a Buffer' });
  assert.throws(() => crypt(0, 1, 0, 0, Buffer.alloc(32), Buffer.alloc(16), null, null), { message: 'dst is shorter than src' });
  assert.throws(() => crypt(0, 1, 0, 0, Buffer.alloc(16), null, Buffer.alloc(8), null), { message: 'iv must be 16 bytes' });
  assert.throws(() => crypt(0, 1, 0, 0, Buffer.alloc(16), null, null, Buffer.alloc(32)), { message: /mac buffer/ });
  assert.throws(() => crypt(0, 1, 7, 0, Buffer.alloc(16), null, null, null), TypeError);
  assert.throws(() => session(0, 11, 'key', 0, null), { name: 'TypeError', message: 'key must be a Buffer or null' });
  assert.throws(() => session(0, 1.5, null, 0, null), { message: 'cipher must be an unsigned 32-bit integer' });
});

test('AES-256-CBC through /dev/crypto matches node:crypto, with IV write-back', { skip: noDevice }, () => {
  const dev = CryptodevDevice.open();
  try {
    const key = crypto.randomBytes(32);
    const iv0 = crypto.randomBytes(16);
    const plain = crypto.randomBytes(64);
    const ses = dev.createSession({ cipher: CryptodevAlg.AES_CBC, key });
    const iv = Buffer.from(iv0);
    const ct = ses.encrypt(plain, iv, { writeIv: true });
    const c = crypto.createCipheriv('aes-256-cbc', key, iv0).setAutoPadding(false);
    assert.deepEqual(ct, Buffer.concat([c.update(plain), c.final()]));
    assert.deepEqual(iv, ct.subarray(ct.length - 16), 'COP_FLAG_WRITE_IV leaves the last ciphertext block in iv');
    assert.deepEqual(ses.decrypt(ct, Buffer.from(iv0)), plain);
    const info = ses.info();
    assert.match(info.cipherName, /cbc\(aes\)/);
    assert.ok(info.cipherDriver.length > 0);
    ses.close();
    assert.throws(() => ses.encrypt(plain, Buffer.from(iv0)), /closed/);
  } finally {
    dev.close();
  }
});

test('encryptAsync/decryptAsync give the same bytes as the synchronous calls; close waits for none in flight', { skip: noDevice }, async () => {
  const dev = CryptodevDevice.open();
  try {
    const key = crypto.randomBytes(32);
    const iv = crypto.randomBytes(16);
    const plain = crypto.randomBytes(4096);
    const ses = dev.createSession({ cipher: CryptodevAlg.AES_CBC, key });
    const pending = ses.encryptAsync(plain, Buffer.from(iv));
    assert.equal(ses.pending, 1);
    assert.throws(() => ses.close(), /in flight/);
    const ct = await pending;
    assert.deepEqual(ct, ses.encrypt(plain, Buffer.from(iv)));
    assert.deepEqual(await ses.decryptAsync(ct, Buffer.from(iv)), plain);
    const many = await Promise.all(Array.from({ length: 16 }, () => ses.encryptAsync(plain, Buffer.from(iv))));
    for (const m of many) assert.deepEqual(m, ct);
    assert.equal(ses.pending, 0);
  } finally {
    dev.close();
  }
});

test('CRIOGET clones a working descriptor', { skip: noDevice }, () => {
  const dev = CryptodevDevice.open();
  const clone = dev.clone();
  try {
    assert.notEqual(clone.fd, dev.fd);
    const ses = clone.createSession({ cipher: CryptodevAlg.AES_CBC, key: Buffer.alloc(32, 1) });
    assert.equal(ses.encrypt(Buffer.alloc(16), Buffer.alloc(16)).length, 16);
  } finally {
    clone.close();
    dev.close();
  }
});

test('bad ioctl arguments surface the kernel errno', { skip: noDevice }, () => {
  const dev = CryptodevDevice.open();
  try {
    const raw = nativeFunction<(...a: unknown[]) => void>('cryptodevCrypt');
    // Session id 0 is never handed out (cryptodev ids are random, non-zero in practice).
    assert.throws(() => raw(dev.fd, 0, 0, 0, Buffer.alloc(16), Buffer.alloc(16), Buffer.alloc(16), null),
      (e: unknown) => (e as { syscall?: string }).syscall === 'CIOCCRYPT' && typeof (e as { errno?: number }).errno === 'number');
  } finally {
    dev.close();
  }
});

test('HMAC-SHA256 through /dev/crypto (when the device offers it) matches node:crypto', { skip: noDevice }, (t) => {
  const dev = CryptodevDevice.open();
  try {
    const key = crypto.randomBytes(32);
    let ses;
    try {
      ses = dev.createSession({ mac: CryptodevAlg.SHA2_256_HMAC, macKey: key });
    } catch (err) {
      t.skip(`device has no hmac(sha256): ${(err as Error).message}`);
      return;
    }
    const data = crypto.randomBytes(100);
    assert.deepEqual(ses.digest(data), crypto.createHmac('sha256', key).update(data).digest());
  } finally {
    dev.close();
  }
});

/** One end of a sealed chat connection over an in-memory pipe. */
function chatEnd(role: 'initiator' | 'responder', psk: Buffer, provider: CryptoProvider): { p: ChatProtocol; out: Buffer[]; messages: string[] } {
  const end = { out: [] as Buffer[], messages: [] as string[] } as { p: ChatProtocol; out: Buffer[]; messages: string[] };
  end.p = new ChatProtocol({
    role, mode: 'sealed', psk, provider, readyPayload: Buffer.from(role),
    write: (b) => end.out.push(b),
    onReady: () => undefined,
    onMessage: (b) => end.messages.push(b.toString()),
    onBye: () => undefined,
    onError: (e) => assert.fail(`${role}: ${e.message}`),
  });
  return end;
}

test('the chat MAC goes through /dev/crypto: equals node:crypto HMAC, the start-up line names its path, sessions return to 0 on close', { skip: noDevice }, (t) => {
  // What the driver says about a bare HMAC-SHA256 session decides what the start-up line must say.
  const dev = CryptodevDevice.open();
  let expected: RegExp;
  let path: string;
  try {
    const ses = dev.createSession({ mac: CryptodevAlg.SHA2_256_HMAC, macKey: Buffer.alloc(32, 7) });
    const info = ses.info();
    path = info.kernelDriverOnly ? 'device' : 'guest kernel';
    expected = new RegExp(`, MAC: /dev/crypto \\(driver ${info.hashDriver.replace(/[^\w-]/g, '.')}, ${path}\\)$`);
  } catch (err) {
    path = 'software';
    expected = /, MAC: software \(node:crypto HMAC-SHA256 — \/dev\/crypto cannot open hmac\(sha256\): /;
    t.diagnostic(`no hmac(sha256) session: ${(err as Error).message}`);
  } finally {
    dev.close();
  }
  const hw = cryptodevProvider();
  try {
    t.diagnostic(`chat MAC path: ${path}`);
    t.diagnostic(`start-up line: ${hw.description}`);
    assert.match(hw.description, /^cipher: \/dev\/crypto \(driver [^,)]+, (device|guest kernel)\), MAC: /);
    assert.match(hw.description, expected);
    assert.equal(hw.openSessions(), 0, 'the start-up probe leaves no session open');

    // The provider's MAC, through whichever path it names, equals node:crypto's HMAC-SHA256.
    for (const len of [1, 55, 64, 1000, 70_000]) {
      const key = crypto.randomBytes(32);
      const parts = [crypto.randomBytes(8), crypto.randomBytes(len), Buffer.alloc(0), crypto.randomBytes(16)];
      const mac = hw.mac(key);
      assert.equal(hw.openSessions(), path === 'software' ? 0 : 1);
      const want = crypto.createHmac('sha256', key);
      for (const p of parts) want.update(p);
      assert.deepEqual(mac.compute(parts), want.digest(), `${len}-byte input`);
      mac.close();
      assert.equal(hw.openSessions(), 0);
    }

    // A whole connection: no session before READY verifies, cipher + MAC per direction while open, none after close.
    const psk = crypto.randomBytes(32);
    const a = chatEnd('initiator', psk, hw);
    const b = chatEnd('responder', psk, softwareProvider());
    a.p.start();
    b.p.start();
    const pump = (): void => {
      for (let guard = 0; guard < 100 && (a.out.length || b.out.length); guard++) {
        for (const c of a.out.splice(0)) b.p.parse(c);
        assert.equal(hw.openSessions() === 0 || a.p.state === 'open', true, 'no device session before the peer READY verifies');
        for (const c of b.out.splice(0)) a.p.parse(c);
      }
    };
    pump();
    assert.equal(a.p.state, 'open');
    assert.equal(hw.openSessions(), path === 'software' ? 2 : 4, 'cipher + MAC session per direction');
    a.p.send(Buffer.from('sealed and MACed by /dev/crypto'));
    b.p.send(Buffer.from('sealed and MACed by node:crypto'));
    pump();
    assert.deepEqual(b.messages, ['sealed and MACed by /dev/crypto']);
    assert.deepEqual(a.messages, ['sealed and MACed by node:crypto']);
    a.p.dispose();
    b.p.dispose();
    assert.equal(hw.openSessions(), 0, 'the connection closed its sessions');
  } finally {
    hw.close();
  }
});
