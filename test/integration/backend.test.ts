// One VM boot with the TypeScript vhost-user back-end: the upstream Linux virtio_crypto driver (code
// nobody here wrote) binds our device, its cbc(aes) self-tests pass against it, and 64 kcapi-enc runs
// with random keys, IVs and sizes through virtio_crypto_aes_cbc match host OpenSSL byte for byte.
import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { randomBytes, randomInt } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Lab } from '../../extension/lab/lab';
import { hostOpensslEncrypt, procCryptoEntries, virtioCryptoDrivers } from '../../extension/lab/guest/checks';
import type { SshSession } from '../../extension/lab/guest/ssh';
import { tempWorkspace } from './lab-helpers';

// Each kcapi-enc process costs ~0.5 s under TCG: 64 runs keep the suite short while covering every key size and many lengths.
const RUNS = 64;
const ws = tempWorkspace('vlab-it-backend-');
const lab = Lab.forWorkspace(ws.dir, { env: {} });
let session: SshSession | undefined;

before(async () => {
  await lab.up({ backend: 'ts', engine: 'openssl', guestDriver: 'upstream' });
  session = await lab.ssh();
});

after(async () => {
  session?.close();
  await lab.down().catch(() => undefined);
  ws.cleanup();
});

test('the lab runs our back-end and QEMU talks to it', async () => {
  const s = await lab.status();
  assert.equal(s.state, 'running');
  assert.equal(s.backend.kind, 'ts');
  assert.ok(s.backend.pid, 'backend pid recorded');
  const t = s.backend.telemetry as { engine: { name: string }; frontend: { connected: boolean; features: string } } | null | undefined;
  assert.ok(t, 'telemetry snapshot in status');
  assert.equal(t.engine.name, 'openssl');
  assert.equal(t.frontend.connected, true);
  assert.equal(t.frontend.features, '0x40000000', 'QEMU 7.2 acks only PROTOCOL_FEATURES');
});

test('the upstream virtio_crypto driver binds the device', async () => {
  const bound = await virtioCryptoDrivers(session!);
  assert.equal(bound.length, 1);
  assert.equal(bound[0]!.driver, 'virtio_crypto');
});

test('cbc(aes) self-tests pass against our back-end, no self-test failure in dmesg', async () => {
  const [entry] = await procCryptoEntries(session!, 'virtio_crypto_aes_cbc');
  assert.ok(entry, 'virtio_crypto_aes_cbc registered');
  assert.equal(entry.name, 'cbc(aes)');
  assert.equal(entry.selftest, 'passed');
  const dmesg = await session!.run(['dmesg']);
  assert.equal(dmesg.code, 0);
  assert.match(dmesg.stdout, /virtio_crypto .*Registered algo cbc\(aes\)/);
  const failures = dmesg.stdout.split('\n').filter((l) => /alg: .*(fail|error)|self-?test.*fail|testmgr/i.test(l));
  assert.deepEqual(failures, []);
});

test(`${RUNS} kcapi-enc runs (random keys, IVs, sizes) through virtio_crypto_aes_cbc match host OpenSSL byte for byte`, async () => {
  // Inputs go to the workspace, which the guest sees read-write at the same path; one guest shell
  // runs every encryption (and the decryption back) so the test costs one SSH round trip.
  const dir = join(ws.dir, 'kcapi');
  mkdirSync(dir);
  const cases = Array.from({ length: RUNS }, (_, i) => {
    const c = { key: randomBytes([16, 24, 32][randomInt(3)]!), iv: randomBytes(16), plain: randomBytes(16 * randomInt(1, 513)) };
    writeFileSync(join(dir, `key${i}`), c.key, { mode: 0o600 });
    writeFileSync(join(dir, `iv${i}`), c.iv.toString('hex'));
    writeFileSync(join(dir, `in${i}`), c.plain);
    return c;
  });
  // kcapi-enc mmaps its output file, which 9p cannot do: outputs go to the guest's tmpfs first.
  const script =
    `cd ${dir} && t=$(mktemp -d) && i=0; while [ $i -lt ${RUNS} ]; do ` +
    `kcapi-enc -q -e -c virtio_crypto_aes_cbc --iv $(cat iv$i) --keyfd 3 3<key$i -i in$i -o $t/enc$i || exit 10; ` +
    // Every 8th run also decrypts back (each kcapi-enc process costs ~0.5 s under TCG).
    `if [ $((i % 8)) -eq 0 ]; then kcapi-enc -q -d --nounpad -c virtio_crypto_aes_cbc --iv $(cat iv$i) --keyfd 3 3<key$i -i $t/enc$i -o $t/dec$i || exit 11; fi; ` +
    `i=$((i+1)); done; cp $t/* . && rm -rf $t && echo done`;
  const r = await session!.run({ shell: script }, { timeoutMs: 600_000 });
  assert.equal(r.code, 0, `guest loop failed: ${r.stderr.slice(0, 500)}`);
  assert.match(r.stdout, /done/);
  for (const [i, c] of cases.entries()) {
    const expected = await hostOpensslEncrypt(c.key, c.iv, c.plain);
    const got = readFileSync(join(dir, `enc${i}`));
    assert.ok(got.equals(expected), `run ${i}: AES-${c.key.length * 8}-CBC ${c.plain.length} B differs from host openssl`);
    if (i % 8 === 0) assert.ok(readFileSync(join(dir, `dec${i}`)).equals(c.plain), `run ${i}: decrypts back`);
  }
  const t = (await lab.status()).backend.telemetry as { counters: { requests: number; statusOk: number; statusErr: number; rejectedChains: number } };
  assert.ok(t.counters.requests >= RUNS + RUNS / 8, `back-end served ${t.counters.requests} requests`);
  assert.equal(t.counters.statusErr, 0);
  assert.equal(t.counters.rejectedChains, 0);
});

test('reloading the driver resets the device (GET_VRING_BASE, restart) and it serves again', async () => {
  const before = (await lab.status()).backend.telemetry as { counters: { requests: number } };
  const r = await session!.run({ shell: 'rmmod virtio_crypto && modprobe virtio_crypto && sleep 1 && grep -A6 "virtio_crypto_aes_cbc" /proc/crypto' }, { timeoutMs: 120_000 });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /selftest\s+: passed/);
  const after = (await lab.status()).backend.telemetry as { counters: { requests: number; statusErr: number }; frontend: { connected: boolean } };
  assert.ok(after.counters.requests > before.counters.requests, 'the reloaded driver\'s self-tests went through the back-end');
  assert.equal(after.counters.statusErr, 0);
  assert.equal(after.frontend.connected, true);
});
