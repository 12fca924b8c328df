// One VM boot: `vlab demo`, the README's first command after setup, end to end through the CLI.
import { after, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { join } from 'node:path';
import { Lab } from '../../extension/lab/lab';
import { processesMentioning, runCli, tempWorkspace } from './lab-helpers';

// A space and a comma in the workspace path: QEMU option escaping, the hex path on the kernel command line
// and the guest mount must all cope.
const ws = tempWorkspace('vlab-itd a,b-');

after(async () => {
  await Lab.forWorkspace(ws.dir, { env: {} }).down().catch(() => undefined);
  ws.cleanup();
});

test('vlab demo builds, boots, shows virtio-crypto working, powers off and prints a summary', async () => {
  const r = await runCli(['demo'], ws.dir);
  assert.equal(r.code, 0, `${r.out}\n${r.err}`);
  assert.match(r.out, /VirtIO Crypto Lab demo — the virtio-crypto device works in the guest/);
  for (const row of ['guest build', 'boot', 'accelerator', 'device', 'guest driver', 'crypto self-test', 'crypto check', 'encrypted chat', 'shutdown']) {
    assert.match(r.out, new RegExp(`^  ok   ${row}\\b`, 'm'), `step "${row}" ok`);
  }
  assert.match(r.out, /accelerator\s+(tcg|kvm) — \S/);
  assert.match(r.out, /boot\s+[\d.]+ s from QEMU start to SSH/);
  assert.match(r.out, /guest ciphertext equals host openssl, decrypts back/);
  // Z3: the chat's guest peer encrypts through our /dev/crypto driver; the capture holds only ciphertext.
  assert.match(r.out, /encrypted chat\s+host ↔ guest both ways over TCP; guest cipher: \/dev\/crypto \(driver vlab_/);
  assert.match(r.out, /no 8-byte run of the sentence — ciphertext only/);
  assert.match(r.out, /shutdown\s+ACPI power-off/);
  assert.deepEqual(processesMentioning(join(ws.dir, '.vlab')), []);
  assert.equal((await Lab.forWorkspace(ws.dir, { env: {} }).status()).state, 'stopped');
});
