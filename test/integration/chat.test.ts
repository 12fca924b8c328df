// One VM boot (lab driver, so the guest has /dev/crypto): host↔guest chat pairs through QEMU user
// networking (guest → 10.0.2.2 → host loopback), captured with QEMU's filter-dump, plus the addon's
// /dev/crypto tests run inside the guest.
import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { join, resolve } from 'node:path';
import { runPair } from '../../chat/pair';
import { runMainCaptured } from '../cli-capture';
import { tempWorkspace } from './lab-helpers';

const ws = tempWorkspace('vlab-chat-it-');
// The lab's state folder lives outside the workspace (as with VLAB_STATE_DIR=/tmp/...): the guest sees
// only the workspace, so the pair's key must not go into the state folder (it did: ENOENT in the guest).
const state = tempWorkspace('vlab-chat-state-');
const repo = resolve(__dirname, '..', '..', '..');
const env = { ...process.env, VLAB_STATE_DIR: state.dir };
const SENTENCE = 'Meet me by the virtqueue at half past nine';
let guestHasCryptodev = false;

before(async () => {
  const r = await cli(['up', '--guest-driver', 'lab']);
  assert.equal(r.code, 0, `vlab up failed:\n${r.err}`);
  guestHasCryptodev = (await cli(['ssh', '--', 'test', '-c', '/dev/crypto'])).code === 0;
});

after(async () => {
  await cli(['down']).catch(() => undefined);
  ws.cleanup();
  state.cleanup();
});

function cli(args: string[]): ReturnType<typeof runMainCaptured> {
  return runMainCaptured(args, { cwd: ws.dir, env });
}

function pair(crypto: 'none' | 'software', peerCrypto: 'none' | 'software' | 'cryptodev', name: string): ReturnType<typeof runPair> {
  return runPair({ crypto, peerCrypto, guest: true, capture: join(ws.dir, `${name}.pcap`), sentence: SENTENCE, cwd: ws.dir, env });
}

test('host↔guest, --crypto none: the sentence crosses both ways and is readable in the capture', async () => {
  const r = await pair('none', 'none', 'plain');
  assert.ok(r.ok);
  assert.deepEqual(r.hostReceived, [`<guest> guest says: ${SENTENCE}`]);
  assert.deepEqual(r.peerReceived, [`<host> host says: ${SENTENCE}`]);
  assert.equal(r.capture!.sentenceVisible, true);
});

test('host↔guest, software provider on both sides: nothing of the sentence on the wire', async () => {
  const r = await pair('software', 'software', 'software');
  assert.ok(r.ok);
  assert.deepEqual(r.hostReceived, [`<guest> guest says: ${SENTENCE}`]);
  assert.match(r.peerCipher, /^cipher: software/);
  assert.ok(r.capture!.bytes > 2000, 'the capture recorded the guest traffic');
  assert.equal(r.capture!.sentenceVisible, false);
  assert.equal(r.capture!.longestRun, 0);
});

test('Z3: the guest encrypts through /dev/crypto (virtio-crypto), the host in software; they interoperate', async (t) => {
  if (!guestHasCryptodev) return t.skip('the lab driver did not create /dev/crypto in the guest (see the driver suite)');
  const r = await pair('software', 'cryptodev', 'z3');
  assert.ok(r.ok);
  assert.match(r.peerCipher, /^cipher: \/dev\/crypto \(driver [^)]+\)/);
  assert.match(r.peerCipher, /, MAC: \/dev\/crypto \(driver [^,]+, device\)$/, 'ts backend: the MAC runs on the device too');
  assert.deepEqual(r.hostReceived, [`<guest> guest says: ${SENTENCE}`]);
  assert.deepEqual(r.peerReceived, [`<host> host says: ${SENTENCE}`]);
  assert.equal(r.capture!.longestRun, 0);
});

test('the addon /dev/crypto tests and provider byte-identity tests pass inside the guest', async (t) => {
  if (!guestHasCryptodev) return t.skip('the lab driver did not create /dev/crypto in the guest (see the driver suite)');
  const r = await cli(['ssh', '--', 'sh', '-c', `cd '${repo}' && '${process.execPath}' --test out/test/unit/chat/cryptodev.test.js out/test/unit/chat/protocol.test.js 2>&1`]);
  assert.equal(r.code, 0, r.out + r.err);
  assert.match(r.out, /^ok \d+ - AES-256-CBC through \/dev\/crypto matches node:crypto, with IV write-back$/m);
  assert.match(r.out, /^ok \d+ - encryptAsync\/decryptAsync give the same bytes as the synchronous calls; close waits for none in flight$/m);
  assert.match(r.out, /^ok \d+ - CRIOGET clones a working descriptor$/m);
  assert.match(r.out, /^ok \d+ - identical inputs give byte-identical frames from both providers$/m);
  assert.match(r.out, /^ok \d+ - cryptodev ↔ software interoperate$/m);
  assert.match(r.out, /^ok \d+ - the chat MAC goes through \/dev\/crypto: /m);
  // `vlab up` defaults to the ts backend, which serves HMAC-SHA256 on the device.
  assert.match(r.out, /^\s*# chat MAC path: device$/m);
  assert.match(r.out, /^# fail 0$/m);
});
