import assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import * as S from '../../../../backend/crypto/spec';
import { renderSnapshot } from '../../../../extension/cli/rings-view';
import { type Fixture, startBackend } from '../../backend/helpers';

describe('vlab rings rendering', () => {
  let fx: Fixture;
  before(() => {
    fx = startBackend();
  });
  after(() => fx.close());

  it('renders a stopped back-end', () => {
    const text = renderSnapshot(fx.backend.snapshot());
    assert.match(text, /front-end not connected/);
    assert.match(text, /queue 0: size 0 {2}stopped/);
    assert.match(text, /limits: max_size 1048576 B per request {2}1024 sessions {2}64 chains per pass {2}log lines suppressed 0/);
  });

  it('renders ring indexes, slot states and recent requests of a live ring', async () => {
    const fe = await fx.connect({ queueSize: 64 });
    const id = await fe.cipherSession(S.VIRTIO_CRYPTO_CIPHER_AES_CBC, crypto.randomBytes(16), true);
    await fe.run({ opcode: 0, sessionId: id, iv: Buffer.alloc(16), src: Buffer.alloc(32) });
    await fe.run({ opcode: 0, sessionId: 77n, iv: Buffer.alloc(16), src: Buffer.alloc(32) });
    const text = renderSnapshot(fx.backend.snapshot());
    assert.match(text, /queue 0: size 64 {2}running/);
    assert.match(text, /avail\.idx 2 {2}last_avail 2 {2}used\.idx 2/);
    // The test front-end never moves used_event off 0: both used entries (head 0 twice) count as not reclaimed.
    assert.match(text, /used_event 0 {2}avail_event 2/);
    assert.match(text, /\n\s+0 u\.{63}\n/, 'slot 0 returned, not reclaimed; the rest free');
    assert.match(text, /CIPHER_ENCRYPT\s+77\s+32\s+32\s+INVSESS/);
    assert.match(text, /#1 AES-128-CBC encrypt, 1 requests/);
    assert.match(text, /status OK 1 {2}ERR 0 {2}BADMSG 0 {2}NOTSUPP 0 {2}INVSESS 1/);
  });
});
