import { test, describe, beforeEach, afterEach } from 'node:test';
import * as assert from 'node:assert/strict';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { PassThrough } from 'node:stream';
import { detectAccel, findGuestKernel, hostEnv, isStaticElf, runDoctor, type DoctorCheck, type DoctorReport, type HostEnv } from '../../../../extension/lab/doctor';
import { formatDoctorReport } from '../../../../extension/cli/commands/doctor';
import { main } from '../../../../extension/cli/vlab';

const MODULES_DEP = [
  'kernel/drivers/virtio/virtio_pci.ko.xz: kernel/drivers/virtio/virtio_ring.ko.xz',
  'kernel/net/9p/9pnet_virtio.ko.xz: kernel/net/9p/9pnet.ko.xz',
  'kernel/fs/9p/9p.ko.xz: kernel/net/9p/9pnet.ko.xz kernel/fs/netfs/netfs.ko.xz',
  'kernel/fs/overlayfs/overlay.ko.xz:',
  'kernel/drivers/crypto/virtio/virtio_crypto.ko.xz: kernel/crypto/crypto_engine.ko.xz',
  'kernel/drivers/net/virtio_net.ko.xz: kernel/drivers/net/net_failover.ko.xz',
  '',
].join('\n');

/** A temp directory laid out like a host filesystem, empty until a test adds parts. */
class FakeHost {
  readonly root = mkdtempSync(join(tmpdir(), 'vlab-doctor-'));
  readonly env: HostEnv = hostEnv({ root: this.root, pathDirs: [join(this.root, 'usr/bin')], execTimeoutMs: 5000 });

  file(path: string, content: string | Buffer, mode = 0o644): string {
    const full = join(this.root, path);
    mkdirSync(dirname(full), { recursive: true });
    writeFileSync(full, content);
    chmodSync(full, mode);
    return full;
  }

  kernel(version: string, { modules = true, headers = true, dep = MODULES_DEP } = {}): void {
    this.file(`boot/vmlinuz-${version}`, 'not really a bzImage');
    if (modules) this.file(`lib/modules/${version}/modules.dep`, dep);
    if (headers) {
      // Debian's layout: build is an absolute symlink into /usr/src, which must resolve under root.
      this.file(`usr/src/linux-headers-${version}/Makefile`, '# headers\n');
      symlinkSync(`/usr/src/linux-headers-${version}`, join(this.root, `lib/modules/${version}/build`));
    }
  }

  fakeQemu(versionLine: string, { features = true } = {}): void {
    const objects = features ? 'memory-backend-memfd\ncryptodev-backend-builtin\ncryptodev-vhost-user' : 'memory-backend-ram';
    const devices = features ? 'name "virtio-crypto-pci", bus PCI\nname "virtio-9p-pci", bus PCI\nname "virtio-net-pci", bus PCI' : 'name "e1000", bus PCI';
    this.file('usr/bin/qemu-system-x86_64', [
      '#!/bin/sh',
      `case "$*" in *--version*) echo "${versionLine}";; *"-object help"*) printf '%s\\n' "List of user creatable objects:" '${objects}';; *"-device help"*) printf '%s\\n' '${devices}';;`,
      // `-device NAME,help`: QEMU prints "NAME options:" and its properties for a device it has.
      `  *",help"*) d=$(echo "$*" | sed 's/.*-device \\([^,]*\\),help.*/\\1/'); if printf '%s\\n' '${devices}' | grep -q "name \\"$d\\""; then echo "$d options:"; fi;; esac`,
      '',
    ].join('\n'), 0o755);
  }

  cleanup(): void {
    rmSync(this.root, { recursive: true, force: true });
  }
}

function check(report: DoctorReport, name: string): DoctorCheck {
  const c = report.checks.find((x) => x.name === name);
  assert.ok(c, `no check named ${name}`);
  return c;
}

describe('vlab doctor on a fake host', () => {
  let host: FakeHost;
  beforeEach(() => { host = new FakeHost(); });
  afterEach(() => host.cleanup());

  test('an empty host: every required item fails with its apt-get fix, and the lab cannot run', async () => {
    const report = await runDoctor(host.env);
    assert.equal(report.canRun, false);
    assert.deepEqual(
      report.checks.filter((c) => !c.ok).map((c) => [c.name, c.level, c.fix]),
      [
        ['qemu', 'required', 'sudo apt-get install -y qemu-system-x86'],
        ['kernel', 'required', 'sudo apt-get install -y linux-image-amd64 linux-headers-amd64'],
        ['busybox-static', 'required', 'sudo apt-get install -y busybox-static'],
        ['sshd', 'required', 'sudo apt-get install -y openssh-server'],
        ['ssh-keygen', 'required', 'sudo apt-get install -y openssh-client'],
        ['shared-memory', 'required', 'sudo mount -t proc proc /proc'],
        ['kcapi-tools', 'optional', 'sudo apt-get install -y kcapi-tools'],
        ['tcpdump', 'optional', 'sudo apt-get install -y tcpdump'],
        ['chromium', 'optional', 'sudo apt-get install -y chromium'],
        ['clangd', 'optional', 'sudo apt-get install -y clangd'],
        ['gdb', 'optional', 'sudo apt-get install -y gdb'],
      ],
    );
    assert.equal(report.accel.kind, 'tcg');
    assert.match(report.accel.why, /cpuinfo/);
    const text = formatDoctorReport(report);
    assert.match(text, /FAIL {2}qemu +qemu-system-x86_64 not found in PATH\n +fix: sudo apt-get install -y qemu-system-x86\n/);
    assert.match(text, /warn {2}tcpdump/);
    assert.match(text, /cannot run here/);
  });

  test('a complete fake host can run; optional items missing are only warnings', async () => {
    host.fakeQemu('QEMU emulator version 7.2.22 (Debian 1:7.2+dfsg-7)');
    host.kernel('6.1.0-56-amd64');
    copyFileSync('/bin/busybox', host.file('usr/bin/busybox', '', 0o755));
    host.file('usr/sbin/sshd', '#!/bin/sh\n', 0o755);
    host.file('usr/bin/ssh-keygen', '#!/bin/sh\n', 0o755);
    host.file('proc/sys/kernel/osrelease', '6.1.0-56-amd64\n');
    host.file('proc/cpuinfo', 'processor\t: 0\nflags\t\t: fpu sse2 hypervisor\n');
    const report = await runDoctor(host.env);
    assert.deepEqual(report.checks.filter((c) => !c.ok).map((c) => c.name), ['kcapi-tools', 'tcpdump', 'chromium', 'clangd', 'gdb', 'kernel-dbg']);
    assert.equal(check(report, 'kernel-dbg').fix, 'sudo apt-get install -y linux-image-6.1.0-56-amd64-dbg');
    host.file('usr/lib/debug/boot/vmlinux-6.1.0-56-amd64', '');
    assert.equal(check(await runDoctor(host.env), 'kernel-dbg').ok, true, 'the -dbg package\'s vmlinux is found');
    assert.equal(report.canRun, true);
    assert.equal(check(report, 'qemu').detail, `${join(host.root, 'usr/bin/qemu-system-x86_64')} (QEMU 7.2.22)`);
    assert.deepEqual(report.kernel, {
      version: '6.1.0-56-amd64',
      image: join(host.root, 'boot/vmlinuz-6.1.0-56-amd64'),
      modulesDir: join(host.root, 'lib/modules/6.1.0-56-amd64'),
      buildDir: join(host.root, 'usr/src/linux-headers-6.1.0-56-amd64'),
    });
    assert.match(formatDoctorReport(report), /can run here \(accelerator: TCG\)/);
  });

  test('QEMU older than 7.2 is refused with an upgrade command', async () => {
    host.fakeQemu('QEMU emulator version 6.2.0');
    const c = check(await runDoctor(host.env), 'qemu');
    assert.equal(c.ok, false);
    assert.match(c.detail, /QEMU 6\.2\.0; 7\.2 or newer/);
    assert.equal(c.fix, 'sudo apt-get install -y --only-upgrade qemu-system-x86');
  });

  test('a QEMU without the lab devices is reported by name', async () => {
    host.fakeQemu('QEMU emulator version 8.0.0', { features: false });
    const report = await runDoctor(host.env);
    assert.equal(check(report, 'qemu').ok, true);
    const f = check(report, 'qemu-features');
    assert.equal(f.ok, false);
    assert.match(f.detail, /memory-backend-memfd, cryptodev-backend-builtin, cryptodev-vhost-user, virtio-crypto-pci, virtio-9p-pci, virtio-net-pci/);
  });

  test('a kernel without build headers: the fix names its exact headers package', () => {
    host.kernel('6.1.0-99-amd64', { headers: false });
    const { kernel, problem } = findGuestKernel(host.env);
    assert.equal(kernel, null);
    assert.match(problem!.detail, /no build headers/);
    assert.equal(problem!.fix, 'sudo apt-get install -y linux-headers-6.1.0-99-amd64');
  });

  test('a kernel image without modules', () => {
    host.kernel('6.1.0-99-amd64', { modules: false, headers: false });
    assert.equal(findGuestKernel(host.env).problem!.fix, 'sudo apt-get install -y linux-image-6.1.0-99-amd64');
  });

  test('the newest complete kernel wins over a newer incomplete one', () => {
    host.kernel('6.1.0-9-amd64');
    host.kernel('6.1.0-10-amd64', { headers: false });
    host.kernel('6.1.0-8-amd64');
    assert.equal(findGuestKernel(host.env).kernel?.version, '6.1.0-9-amd64');
  });

  test('a kernel lacking a module the guest needs', async () => {
    host.kernel('6.1.0-56-amd64', { dep: MODULES_DEP.replace(/.*virtio_crypto.*\n/, '') });
    const c = check(await runDoctor(host.env), 'kernel-modules');
    assert.equal(c.ok, false);
    assert.match(c.detail, /lacks modules: virtio_crypto$/);
  });

  test('a dynamically linked busybox is not enough for the initramfs', async () => {
    copyFileSync('/bin/ls', host.file('usr/bin/busybox', '', 0o755));
    const c = check(await runDoctor(host.env), 'busybox-static');
    assert.equal(c.ok, false);
    assert.match(c.detail, /dynamically linked/);
  });

  test('--qemu PATH: an unpacked QEMU 10.0.2 is checked, its firmware folder named, and the MSI-X quirk reported as not needed', async () => {
    const host = new FakeHost();
    try {
      host.fakeQemu('QEMU emulator version 10.0.2 (Debian 1:10.0.2+ds-2+deb13u1~bpo12+1)');
      const tree = join(host.root, 'tools/qemu-10.0');
      mkdirSync(join(tree, 'usr/share/qemu'), { recursive: true });
      mkdirSync(join(tree, 'usr/bin'), { recursive: true });
      copyFileSync(join(host.root, 'usr/bin/qemu-system-x86_64'), join(tree, 'usr/bin/qemu-system-x86_64'));
      chmodSync(join(tree, 'usr/bin/qemu-system-x86_64'), 0o755);
      const report = await runDoctor({ ...host.env, qemu: join(tree, 'usr/bin/qemu-system-x86_64') });
      assert.match(check(report, 'qemu').detail, /\(QEMU 10\.0\.2\), unpacked: firmware from .*tools\/qemu-10\.0\/usr\/share\/qemu \(-L\)/);
      assert.match(check(report, 'qemu-quirks').detail, /not needed: no TCG \+ vhost-user \+ MSI-X crash/);
      assert.equal(check(report, 'qemu-features').ok, true);
      host.fakeQemu('QEMU emulator version 7.2.22 (Debian 1:7.2+dfsg-7)');
      const r72 = await runDoctor(host.env);
      assert.match(check(r72, 'qemu-quirks').detail, /^applies: TCG \+ vhost-user \+ MSI-X crashes QEMU before 10\.0/);
    } finally {
      host.cleanup();
    }
  });
});

describe('accelerator detection', () => {
  let host: FakeHost;
  beforeEach(() => { host = new FakeHost(); });
  afterEach(() => host.cleanup());

  test('KVM only when the device opens AND the CPU has vmx or svm', () => {
    const kvm = host.file('dev/kvm', '');
    host.file('proc/cpuinfo', 'flags\t\t: fpu vmx sse2\n');
    assert.deepEqual(detectAccel(host.env), { kind: 'kvm', why: `${kvm} is usable and the CPU has vmx` });
    host.file('proc/cpuinfo', 'flags\t\t: fpu svm sse2\n');
    assert.equal(detectAccel(host.env).kind, 'kvm');
  });

  test('a usable /dev/kvm without vmx/svm (nested software KVM) means TCG', () => {
    host.file('dev/kvm', '');
    host.file('proc/cpuinfo', 'flags\t\t: fpu sse2 hypervisor vmxnet\n');
    const a = detectAccel(host.env);
    assert.equal(a.kind, 'tcg');
    assert.match(a.why, /no vmx\/svm flag/);
  });

  test('no /dev/kvm means TCG, with the errno', () => {
    host.file('proc/cpuinfo', 'flags\t\t: vmx\n');
    const a = detectAccel(host.env);
    assert.equal(a.kind, 'tcg');
    assert.match(a.why, /cannot be opened \(ENOENT\)/);
  });
});

describe('vlab doctor on this host', () => {
  test('the real host: the lab can run, and the report agrees with the filesystem', async () => {
    const report = await runDoctor();
    const failed = report.checks.filter((c) => !c.ok && c.level === 'required');
    assert.deepEqual(failed, [], 'setup.sh installs everything the lab needs');
    assert.equal(report.canRun, true);
    assert.ok(report.kernel);
    assert.ok(readdirSync('/lib/modules').includes(report.kernel.version));
    assert.ok(isStaticElf(check(report, 'busybox-static').detail.split(' ')[0]!));
    const flags = readFileSync('/proc/cpuinfo', 'utf8');
    if (report.accel.kind === 'kvm') assert.match(flags, /\b(vmx|svm)\b/);
  });

  test('`vlab doctor --json` prints the report and exits 0 here', async () => {
    const out = new PassThrough();
    let text = '';
    out.on('data', (c: Buffer) => { text += c.toString(); });
    const code = await main(['doctor', '--json'], { stdout: out, stderr: new PassThrough() });
    assert.equal(code, 0);
    const report = JSON.parse(text) as DoctorReport;
    assert.equal(report.canRun, true);
    assert.ok(report.checks.some((c) => c.name === 'accelerator' && /^(KVM|TCG): /.test(c.detail)));
  });
});
