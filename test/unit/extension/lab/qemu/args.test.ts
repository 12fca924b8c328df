import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { type QemuSpec, buildQemuArgs, formatCommandLine, optValue, projectShareFor } from '../../../../../extension/lab/qemu/args';
import { defaultHost, findGuestKernel } from '../../../../../extension/lab/host/host';
import { kernelCmdline } from '../../../../../extension/lab/lab';
import { QmpClient } from '../../../../../extension/lab/qemu/qmp';
import { pickFreeLoopbackPort } from '../../../../../extension/lab/host/ports';

function spec(over: Partial<QemuSpec> = {}): QemuSpec {
  return {
    binary: 'qemu-system-x86_64',
    name: 'vlab',
    accel: 'tcg',
    memoryMb: 512,
    cpus: 2,
    kernel: '/boot/vmlinuz-x',
    initrd: '/s/guest/initramfs.cpio.gz',
    kernelCmdline: 'console=ttyS0',
    qmpSocket: '/s/qmp.sock',
    consoleLog: '/s/console.log',
    sshPort: 40022,
    workspace: '/home/u/ws',
    crypto: { kind: 'builtin' },
    ...over,
  };
}

/** The value following each occurrence of `flag`. */
function values(args: readonly string[], flag: string): string[] {
  return args.flatMap((a, i) => (a === flag && i + 1 < args.length ? [args[i + 1]!] : []));
}

test('q35 machine, TCG with -cpu max, memory and CPUs from the spec', () => {
  const args = buildQemuArgs(spec());
  assert.deepEqual(values(args, '-machine'), ['q35']);
  assert.deepEqual(values(args, '-accel'), ['tcg']);
  assert.deepEqual(values(args, '-cpu'), ['max']);
  assert.deepEqual(values(args, '-m'), ['512M']);
  assert.deepEqual(values(args, '-smp'), ['2']);
  assert.ok(args.includes('-nodefaults') && args.includes('-no-reboot'));
});

test('KVM uses -accel kvm -cpu host', () => {
  const args = buildQemuArgs(spec({ accel: 'kvm' }));
  assert.deepEqual(values(args, '-accel'), ['kvm']);
  assert.deepEqual(values(args, '-cpu'), ['host']);
});

test('guest RAM is a shareable memfd attached through a NUMA node (vhost-user needs it)', () => {
  const args = buildQemuArgs(spec());
  assert.ok(values(args, '-object').includes('memory-backend-memfd,id=mem0,size=512M,share=on'));
  assert.deepEqual(values(args, '-numa'), ['node,memdev=mem0']);
});

test('console to a file, QMP on a unix socket, SSH forwarded from the given loopback port only', () => {
  const args = buildQemuArgs(spec());
  assert.ok(values(args, '-chardev').includes('file,id=con0,path=/s/console.log'));
  assert.deepEqual(values(args, '-serial'), ['chardev:con0']);
  assert.deepEqual(values(args, '-qmp'), ['unix:/s/qmp.sock,server=on,wait=off']);
  assert.deepEqual(values(args, '-netdev'), ['user,id=n0,hostfwd=tcp:127.0.0.1:40022-:22']);
  assert.ok(values(args, '-device').includes('virtio-net-pci,netdev=n0'));
});

test('an optional second QMP monitor for a long-lived watcher', () => {
  assert.equal(values(buildQemuArgs(spec()), '-mon').length, 0);
  const args = buildQemuArgs(spec({ qmpWatchSocket: '/s/qmp-watch.sock' }));
  assert.ok(values(args, '-chardev').includes('socket,id=qmpw,path=/s/qmp-watch.sock,server=on,wait=off'));
  assert.deepEqual(values(args, '-mon'), ['chardev=qmpw,mode=control']);
});

test('host root read-only and the workspace read-write over 9p', () => {
  const args = buildQemuArgs(spec());
  const fsdev = values(args, '-fsdev');
  assert.ok(fsdev.includes('local,id=fs0,path=/,security_model=none,readonly=on,multidevs=remap'));
  assert.ok(fsdev.includes('local,id=fs1,path=/home/u/ws,security_model=none,multidevs=remap'));
  const devices = values(args, '-device');
  assert.ok(devices.includes('virtio-9p-pci,fsdev=fs0,mount_tag=vlabroot'));
  assert.ok(devices.includes('virtio-9p-pci,fsdev=fs1,mount_tag=vlabws'));
});

test('the project is shared read-only only where the guest would not see it', () => {
  // Visible through the root share, or inside the workspace: no extra share.
  assert.equal(projectShareFor('/work/main', '/home/u/ws'), undefined);
  assert.equal(projectShareFor('/tmp/clone', '/tmp/clone'), undefined);
  assert.equal(projectShareFor('/tmp/clone', '/tmp'), undefined);
  // Under a folder the guest covers with an empty tmpfs: shared. /tmpx is not /tmp.
  assert.equal(projectShareFor('/tmp/clone', '/home/u/ws'), '/tmp/clone');
  assert.equal(projectShareFor('/root/src/lab', '/tmp/ws'), '/root/src/lab');
  assert.equal(projectShareFor('/tmpx/lab', '/home/u/ws'), undefined);
  const plain = buildQemuArgs(spec());
  assert.ok(!values(plain, '-device').some((d) => d.includes('mount_tag=vlabpkg')));
  const args = buildQemuArgs(spec({ projectShare: '/tmp/a,b' }));
  assert.ok(values(args, '-fsdev').includes('local,id=fs2,path=/tmp/a,,b,security_model=none,readonly=on,multidevs=remap'));
  assert.ok(values(args, '-device').includes('virtio-9p-pci,fsdev=fs2,mount_tag=vlabpkg'));
  assert.match(kernelCmdline('/w', 'lab', '/tmp/a b'), / vlab\.pkg=2f746d702f612062( |$)/);
  assert.doesNotMatch(kernelCmdline('/w', 'lab'), /vlab\.pkg=/);
});

test('builtin crypto backend', () => {
  const args = buildQemuArgs(spec());
  assert.ok(values(args, '-object').includes('cryptodev-backend-builtin,id=c0'));
  assert.ok(values(args, '-device').includes('virtio-crypto-pci,id=crypto0,cryptodev=c0'));
});

test('vhost-user backend: chardev + cryptodev-vhost-user; vectors=0 only under TCG', () => {
  const tcg = buildQemuArgs(spec({ crypto: { kind: 'vhost-user', socket: '/s/vhost-user.sock' } }));
  assert.ok(values(tcg, '-chardev').includes('socket,id=vu0,path=/s/vhost-user.sock'));
  assert.ok(values(tcg, '-object').includes('cryptodev-vhost-user,id=c0,chardev=vu0'));
  assert.ok(values(tcg, '-device').includes('virtio-crypto-pci,id=crypto0,cryptodev=c0,vectors=0'));
  const kvm = buildQemuArgs(spec({ accel: 'kvm', crypto: { kind: 'vhost-user', socket: '/s/vhost-user.sock' } }));
  assert.ok(values(kvm, '-device').includes('virtio-crypto-pci,id=crypto0,cryptodev=c0'));
});

test('commas in paths are doubled so QEMU does not split the option', () => {
  assert.equal(optValue('/a,b,,c'), '/a,,b,,,,c');
  const args = buildQemuArgs(spec({ workspace: '/home/u/my,ws', consoleLog: '/s,x/console.log' }));
  assert.ok(values(args, '-fsdev').includes('local,id=fs1,path=/home/u/my,,ws,security_model=none,multidevs=remap'));
  assert.ok(values(args, '-chardev').includes('file,id=con0,path=/s,,x/console.log'));
});

test('out-of-range values are refused', () => {
  assert.throws(() => buildQemuArgs(spec({ memoryMb: 100 })), /memory/);
  assert.throws(() => buildQemuArgs(spec({ cpus: 0 })), /cpus/);
  assert.throws(() => buildQemuArgs(spec({ sshPort: 70000 })), /port/);
  assert.throws(() => buildQemuArgs(spec({ workspace: 'relative' })), /absolute/);
});

test('kernel command line: workspace hex-encoded, virtio_crypto blacklisted unless upstream', () => {
  const up = kernelCmdline('/w s/ä', 'upstream');
  assert.match(up, new RegExp(`vlab\\.ws=${Buffer.from('/w s/ä').toString('hex')}( |$)`));
  assert.doesNotMatch(up, /module_blacklist/);
  assert.match(kernelCmdline('/w', 'none'), /module_blacklist=virtio_crypto/);
  assert.match(kernelCmdline('/w', 'lab'), /vlab\.driver=lab .*module_blacklist=virtio_crypto/);
});

test('formatCommandLine quotes what the shell would split', () => {
  assert.equal(formatCommandLine('qemu', ['-append', 'a b', '-name', "it's"]), `qemu -append 'a b' -name 'it'\\''s'`);
});

test('real QEMU accepts the generated command line (paused with -S, then quit over QMP)', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'vlab-args-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const kernel = findGuestKernel(defaultHost());
  const initrd = join(dir, 'initrd');
  writeFileSync(initrd, Buffer.alloc(512));
  const s = spec({ kernel: kernel.vmlinuz, initrd, qmpSocket: join(dir, 'qmp.sock'), qmpWatchSocket: join(dir, 'qmp-watch.sock'), consoleLog: join(dir, 'console.log'), workspace: dir, sshPort: await pickFreeLoopbackPort() });
  const child = spawn('qemu-system-x86_64', [...buildQemuArgs(s), '-S'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  t.after(() => child.kill('SIGKILL'));
  for (let i = 0; i < 100 && !existsSync(s.qmpSocket) && child.exitCode === null; i++) await sleep(50);
  assert.ok(existsSync(s.qmpSocket), `QEMU did not start: ${stderr}`);
  // Both monitors answer at the same time: a watcher on the second never blocks the first.
  const watcher = await QmpClient.connect(s.qmpWatchSocket!, { timeoutMs: 5000 });
  t.after(() => watcher.close());
  const qmp = await QmpClient.connect(s.qmpSocket, { timeoutMs: 5000 });
  const status = (await qmp.execute('query-status')) as { status: string };
  assert.equal(status.status, 'prelaunch');
  const objects = (await qmp.execute('qom-list', { path: '/objects' })) as Array<{ name: string }>;
  assert.ok(objects.some((o) => o.name === 'c0'), 'cryptodev object c0 exists');
  assert.ok(objects.some((o) => o.name === 'mem0'), 'memory backend mem0 exists');
  await qmp.execute('quit').catch(() => undefined);
  qmp.close();
  assert.equal(await exited, 0);
});
