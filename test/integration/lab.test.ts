// One VM boot: the lab end to end with the builtin backend and the upstream guest driver.
import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { join } from 'node:path';
import { Lab, type LabStatus } from '../../extension/lab/lab';
import { defaultHost, findGuestKernel } from '../../extension/lab/host/host';
import { kcapiRoundTrip, procCryptoEntries, virtioCryptoDrivers } from '../../extension/lab/guest/checks';
import type { SshSession } from '../../extension/lab/guest/ssh';
import { isAlive } from '../../extension/lab/host/proc';
import { portIsFree, processesMentioning, runCli, tempWorkspace } from './lab-helpers';

const ws = tempWorkspace('vlab-it-');
const lab = Lab.forWorkspace(ws.dir, { env: {} });
let session: SshSession | undefined;
let upStatus: LabStatus;

before(async () => {
  const r = await runCli(['up', '--backend', 'builtin', '--guest-driver', 'upstream'], ws.dir);
  assert.equal(r.code, 0, `vlab up failed:\n${r.err}`);
  assert.match(r.out, /lab running: booted in [\d.]+ s with (tcg|kvm)/);
  upStatus = await lab.status();
  session = await lab.ssh();
});

after(async () => {
  session?.close();
  await lab.down().catch(() => undefined);
  ws.cleanup();
});

test('the guest runs the host kernel package and reports it over SSH', async () => {
  const r = await session!.run(['uname', '-r']);
  assert.equal(r.code, 0);
  assert.equal(r.stdout.trim(), findGuestKernel(defaultHost()).version);
});

test('the upstream virtio_crypto driver binds the device', async () => {
  const bound = await virtioCryptoDrivers(session!);
  assert.equal(bound.length, 1);
  assert.equal(bound[0]!.driver, 'virtio_crypto');
});

test('/proc/crypto shows virtio_crypto_aes_cbc with selftest passed', async () => {
  const [entry] = await procCryptoEntries(session!, 'virtio_crypto_aes_cbc');
  assert.ok(entry, 'virtio_crypto_aes_cbc registered');
  assert.equal(entry.name, 'cbc(aes)');
  assert.equal(entry.selftest, 'passed');
  assert.equal(entry.module, 'virtio_crypto');
});

test('a kcapi-enc AES-CBC round trip through the device matches host OpenSSL and goes through the data queue', async () => {
  const usedIdx = async (): Promise<number> => {
    const q = (await lab.status()).device?.queues[0];
    assert.ok(q && q.owner === 'qemu');
    return q.usedIdx;
  };
  const before = await usedIdx();
  for (const keyBytes of [16, 32] as const) {
    const r = await kcapiRoundTrip(session!, { bytes: 8192, keyBytes });
    assert.ok(r.matchesOpenssl, r.detail);
    assert.ok(r.decrypts, r.detail);
  }
  const after = await usedIdx();
  assert.ok(((after - before) & 0xffff) >= 4, `data queue used idx moved ${before} -> ${after}`);
});

test('vlab status --json is right', async () => {
  const r = await runCli(['status', '--json'], ws.dir);
  assert.equal(r.code, 0);
  const s = JSON.parse(r.out) as LabStatus;
  assert.equal(s.schema, 1);
  assert.equal(s.state, 'running');
  assert.equal(s.accel?.kind, upStatus.accel?.kind);
  assert.ok((s.accel?.why.length ?? 0) > 0);
  assert.equal(s.backend.kind, 'builtin');
  assert.ok(s.qemu.pid && isAlive(s.qemu.pid));
  assert.equal(s.ssh.host, '127.0.0.1');
  assert.equal(s.ssh.port, upStatus.ssh.port);
  assert.ok(typeof s.uptimeSec === 'number' && s.uptimeSec >= 0);
  assert.ok(typeof s.bootSec === 'number' && s.bootSec > 0);
  assert.equal(s.stateDir, join(ws.dir, '.vlab'));
  assert.equal(s.guestDriver, 'upstream');
  assert.ok(s.device, 'device status read over QMP');
  assert.equal(s.device.deviceId, 20);
  assert.equal(s.device.backendType, 'cryptodev-backend-builtin');
  assert.equal(s.device.started, true);
  assert.ok(s.device.status.includes('VIRTIO_CONFIG_S_DRIVER_OK'));
  assert.ok(s.device.guestFeatures.transports.includes('VIRTIO_F_VERSION_1'));
  assert.equal(s.device.queues.length, s.device.numQueues);
});

test('a second vlab up says the lab is running and changes nothing', async () => {
  const r = await runCli(['up', '--backend', 'builtin'], ws.dir);
  assert.equal(r.code, 0);
  assert.match(r.out, /already running/);
  assert.equal((await lab.status()).qemu.pid, upStatus.qemu.pid);
});

test('vlab ssh -- runs a command, streams stdin/stdout/stderr and propagates the exit code', async () => {
  const r = await runCli(['ssh', '--', 'sh', '-c', 'tr a-z A-Z; echo "to stderr" >&2; exit 3'], ws.dir, 'hello guest\n');
  assert.equal(r.code, 3);
  assert.equal(r.out, 'HELLO GUEST\n');
  assert.equal(r.err, 'to stderr\n');
  const quoted = await runCli(['ssh', '--', 'printf', '%s|', 'a b', "it's", '$HOME'], ws.dir);
  assert.equal(quoted.out, "a b|it's|$HOME|", 'arguments reach the guest as is');
});

test('vlab ssh with no command opens an interactive pty shell and returns its exit code', async () => {
  // script(1) gives the CLI a real terminal, as a user's would be.
  const vlab = join(__dirname, '..', '..', '..', 'bin', 'vlab.js');
  const child = spawn('script', ['-qec', `${process.execPath} ${vlab} ssh`, '/dev/null'], { cwd: ws.dir, stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, VLAB_STATE_DIR: '' } });
  let out = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  for (let i = 0; i < 200 && !out.includes('#'); i++) await sleep(50);
  child.stdin.write('tty; echo "pty-$((6*7))"\n');
  for (let i = 0; i < 200 && !out.includes('pty-42'); i++) await sleep(50);
  child.stdin.write('exit 4\n');
  assert.equal(await exited, 4, out);
  assert.match(out, /\/dev\/pts\/\d+/);
  assert.match(out, /pty-42/);
});

test('the workspace is shared read-write at the same path', async () => {
  const r = await session!.run({ shell: `echo from-guest > ${JSON.stringify(join(ws.dir, 'guest-file'))}` });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(readFileSync(join(ws.dir, 'guest-file'), 'utf8'), 'from-guest\n');
});

test('vlab capture records guest traffic to a pcap file', async () => {
  const file = join(ws.dir, 'cap.pcap');
  assert.equal((await runCli(['capture', 'start', file], ws.dir)).code, 0);
  await session!.run({ shell: 'ping -c 2 -W 1 10.0.2.2 >/dev/null 2>&1 || true' });
  await runCli(['ssh', '--', 'true'], ws.dir);
  assert.equal((await runCli(['capture', 'stop'], ws.dir)).code, 0);
  const pcap = readFileSync(file);
  assert.equal(pcap.readUInt32LE(0), 0xa1b2c3d4, 'pcap magic');
  assert.ok(pcap.length > 24 + 16, `packets recorded (${pcap.length} bytes)`);
});

test('vlab logs console shows the guest init', async () => {
  const r = await runCli(['logs', 'console'], ws.dir);
  assert.equal(r.code, 0);
  assert.match(r.out, /vlab-init: ready \(driver=upstream\)/);
});

test('vlab down powers off over ACPI; no process of the lab is left and the SSH port is free', async () => {
  session?.close();
  session = undefined;
  const port = upStatus.ssh.port!;
  const pid = upStatus.qemu.pid!;
  const r = await runCli(['down'], ws.dir);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /lab stopped \(ACPI power-off\)/);
  assert.equal(isAlive(pid), false);
  assert.deepEqual(processesMentioning(join(ws.dir, '.vlab')), []);
  assert.equal(await portIsFree(port), true);
  assert.equal(existsSync(join(ws.dir, '.vlab', 'qmp.sock')), false);
  assert.equal((await lab.status()).state, 'stopped');
  assert.ok(statSync(join(ws.dir, '.vlab', 'console.log')).size > 0, 'logs are kept after down');
});
