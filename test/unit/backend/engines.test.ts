import assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import { describe, it } from 'node:test';
import { EngineUnavailableError, EngineUnsupportedError } from '../../../backend/crypto/engine';
import { createEngine } from '../../../backend/crypto/engines';
import { OpensslEngine } from '../../../backend/crypto/openssl-engine';

describe('crypto engines', () => {
  it('auto picks cryptodev when /dev/crypto opens, else openssl, and says why', () => {
    const sel = createEngine('auto', { cryptodevPath: '/nonexistent/crypto' });
    assert.equal(sel.engine.name, 'openssl');
    assert.match(sel.reason, /auto: openssl because \/nonexistent\/crypto does not exist/);
    if (!fs.existsSync('/dev/crypto')) assert.equal(createEngine('auto').engine.name, 'openssl');
  });
  it('cryptodev without the device is a typed "unavailable" error', () => {
    assert.throws(() => createEngine('cryptodev', { cryptodevPath: '/nonexistent/crypto' }), (err: unknown) =>
      err instanceof EngineUnavailableError && err.engine === 'cryptodev' && /unavailable: \/nonexistent\/crypto does not exist/.test(err.message));
  });
  it('openssl refuses unsupported keys with EngineUnsupportedError (→ NOTSUPP / refused session)', () => {
    const e = new OpensslEngine();
    assert.throws(() => e.prepareCipher('cbc', Buffer.alloc(20)), EngineUnsupportedError);
    assert.throws(() => e.prepareCipher('xts', Buffer.alloc(24)), EngineUnsupportedError);
    assert.throws(() => e.prepareCipher('xts', Buffer.alloc(32, 1)), /identical key halves/);
  });
  it('a disposed cipher cannot be used (keys are gone with the session)', () => {
    const e = new OpensslEngine();
    const c = e.prepareCipher('ctr', crypto.randomBytes(16));
    assert.equal(c.crypt(true, Buffer.alloc(16), Buffer.alloc(5)).length, 5);
    c.dispose();
    assert.throws(() => c.crypt(true, Buffer.alloc(16), Buffer.alloc(5)), /after dispose/);
    const m = e.prepareHmac('sha256', Buffer.from('k'));
    assert.deepEqual(m.compute([Buffer.from('a'), Buffer.from('b')]), crypto.createHmac('sha256', 'k').update('ab').digest());
    m.dispose();
    assert.throws(() => m.compute([]), /after dispose/);
  });
});
