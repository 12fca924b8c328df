/**
 * The asynchronous CIOCCRYPT (cryptodevCryptAsync) against buffers that are detached while the
 * ioctl runs on a worker thread (`structuredClone(x, { transfer })` moves the memory away; once the
 * clone is collected the memory is freed). The kernel must never read or write memory JS no longer
 * owns: src is copied when the call is made, outputs land in memory the worker owns and are copied
 * into dst / iv when the operation completes — or the promise rejects if they were detached.
 * Needs a real /dev/crypto (the lab guest; driver-suite.ts runs this file there); elsewhere the
 * device tests are reported as skipped with the reason.
 */
import assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import { test } from 'node:test';
import * as v8 from 'node:v8';
import * as vm from 'node:vm';
import { CryptodevAlg, CryptodevDevice, probeCryptodev } from '../../../addon/lib/cryptodev';
import { nativeFunction } from '../../../addon/lib/native';

const probe = probeCryptodev();
const noDevice = probe.ok ? false : probe.reason;
type CryptAsync = (fd: number, ses: number, op: number, flags: number, src: Buffer, dst: Buffer | null, iv: Buffer | null, mac: Buffer | null) => Promise<void>;
const COP_FLAG_WRITE_IV = 4;
/** Large enough that every buffer owns its own ArrayBuffer (not Buffer's shared pool). */
const LEN = 256 * 1024;

function collectGarbage(): void {
  v8.setFlagsFromString('--expose-gc');
  (vm.runInNewContext('gc') as () => void)();
}

/** Detaches the buffer's memory; the receiving clone is garbage at once. */
function detach(b: Buffer): void {
  structuredClone(b.buffer, { transfer: [b.buffer] });
  assert.equal(b.length, 0, 'the buffer is detached');
}

function expected(key: Buffer, iv: Buffer, src: Buffer): Buffer {
  const c = crypto.createCipheriv('aes-128-cbc', key, iv).setAutoPadding(false);
  return Buffer.concat([c.update(src), c.final()]);
}

test('a dst detached while CryptAsync runs: the promise rejects and no memory is written', { skip: noDevice }, async () => {
  const dev = CryptodevDevice.open();
  const key = crypto.randomBytes(16);
  const session = dev.createSession({ cipher: CryptodevAlg.AES_CBC, key });
  const cryptAsync = nativeFunction<CryptAsync>('cryptodevCryptAsync');
  try {
    for (let round = 0; round < 8; round++) {
      const src = crypto.randomBytes(LEN);
      const dst = Buffer.alloc(LEN);
      const iv = Buffer.alloc(16, round);
      const pending = cryptAsync(dev.fd, session.id, 0, 0, src, dst, iv, null);
      detach(dst);
      collectGarbage();
      // Memory handed out after the free: the kernel's late write would land here.
      const victims = Array.from({ length: 4 }, () => Buffer.alloc(LEN, 0xaa));
      const outcome = await pending.then(() => 'resolved', (e: unknown) => e);
      assert.ok(outcome instanceof Error, `round ${round}: expected a rejection, got ${String(outcome)}`);
      assert.match(outcome.message, /detached/, `round ${round}: ${outcome.message}`);
      for (const v of victims) assert.ok(v.every((x) => x === 0xaa), `round ${round}: memory freed with dst was written`);
    }
  } finally {
    session.close();
    dev.close();
  }
});

test('a src detached while CryptAsync runs: the result is the encryption of what src held at the call', { skip: noDevice }, async () => {
  const dev = CryptodevDevice.open();
  const key = crypto.randomBytes(16);
  const session = dev.createSession({ cipher: CryptodevAlg.AES_CBC, key });
  const cryptAsync = nativeFunction<CryptAsync>('cryptodevCryptAsync');
  try {
    for (let round = 0; round < 8; round++) {
      const src = crypto.randomBytes(LEN);
      const want = expected(key, Buffer.alloc(16, round), src);
      const dst = Buffer.alloc(LEN);
      const iv = Buffer.alloc(16, round);
      const pending = cryptAsync(dev.fd, session.id, 0, COP_FLAG_WRITE_IV, src, dst, iv, null);
      detach(src);
      collectGarbage();
      Array.from({ length: 4 }, () => Buffer.alloc(LEN, 0x55));
      await pending;
      assert.ok(dst.equals(want), `round ${round}: ciphertext differs from the encryption of the original src`);
      assert.ok(iv.equals(want.subarray(LEN - 16)), `round ${round}: IV write-back is the last ciphertext block`);
    }
  } finally {
    session.close();
    dev.close();
  }
});

test('an iv detached while CryptAsync runs with WRITE_IV: the promise rejects', { skip: noDevice }, async () => {
  const dev = CryptodevDevice.open();
  const session = dev.createSession({ cipher: CryptodevAlg.AES_CBC, key: crypto.randomBytes(16) });
  const cryptAsync = nativeFunction<CryptAsync>('cryptodevCryptAsync');
  try {
    const iv = Buffer.from(new ArrayBuffer(16));
    const pending = cryptAsync(dev.fd, session.id, 0, COP_FLAG_WRITE_IV, crypto.randomBytes(LEN), Buffer.alloc(LEN), iv, null);
    detach(iv);
    collectGarbage();
    await assert.rejects(pending, /detached/);
  } finally {
    session.close();
    dev.close();
  }
});
