// The QEMU/kernel matrix's pure parts: QEMU version quirks, the unpacked-QEMU firmware folder, the
// command line they produce, and finding a kernel that is not installed on the host.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type QemuSpec, buildQemuArgs } from '../../../../../extension/lab/qemu/args';
import { bzImageRelease, findCustomKernel, findGuestKernel, defaultHost } from '../../../../../extension/lab/host/host';
import { msixCrashesUnderTcg, parseQemuVersion, qemuDataDir, qemuQuirks } from '../../../../../extension/lab/qemu/info';
import { kernelCmdline } from '../../../../../extension/lab/up-options';
import { parseUpArgs } from '../../../../../extension/cli/commands/lab';
import { LabError } from '../../../../../extension/lab/common/errors';

const V72 = parseQemuVersion('QEMU emulator version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)')!;
const V1002 = parseQemuVersion('QEMU emulator version 10.0.2 (Debian 1:10.0.2+ds-2+deb13u1~bpo12+1)')!;

function spec(over: Partial<QemuSpec> = {}): QemuSpec {
  return {
    binary: '/q/usr/bin/qemu-system-x86_64',
    name: 'vlab',
    accel: 'tcg',
    memoryMb: 512,
    cpus: 2,
    kernel: '/boot/vmlinuz-x',
    initrd: '/s/initramfs',
    kernelCmdline: 'console=ttyS0',
    qmpSocket: '/s/qmp.sock',
    consoleLog: '/s/console.log',
    sshPort: 40022,
    workspace: '/home/u/ws',
    crypto: { kind: 'vhost-user', socket: '/s/vu.sock' },
    ...over,
  };
}

const cryptoDevice = (args: readonly string[]): string | undefined => args.find((a) => a.startsWith('virtio-crypto-pci'));

/** A minimal x86 bzImage header: "HdrS" at 0x202, kernel_version at 0x20E -> string at +0x200. */
function fakeBzImage(file: string, release: string): void {
  const buf = Buffer.alloc(0x1000);
  buf.write('HdrS', 0x202, 'latin1');
  buf.writeUInt16LE(0x300, 0x20e);
  buf.write(`${release} (builder@host) #1 SMP PREEMPT_DYNAMIC\0`, 0x500, 'latin1');
  writeFileSync(file, buf);
}

test('QEMU versions parse from --version; unreadable output gives undefined', () => {
  assert.deepEqual(V72, { major: 7, minor: 2, micro: 22, text: '7.2.22' });
  assert.deepEqual(V1002, { major: 10, minor: 0, micro: 2, text: '10.0.2' });
  assert.equal(parseQemuVersion('garbage'), undefined);
});

test('the MSI-X workaround: on for 7.2, 9.2 and unknown versions, off from 10.0 (verified: 7.2 crashes, 10.0.2 does not)', () => {
  assert.equal(msixCrashesUnderTcg(V72), true);
  assert.equal(msixCrashesUnderTcg(parseQemuVersion('version 9.2.0')), true);
  assert.equal(msixCrashesUnderTcg(undefined), true);
  assert.equal(msixCrashesUnderTcg(V1002), false);
  assert.equal(msixCrashesUnderTcg(parseQemuVersion('version 11.1.0')), false);
});

test('command line: QEMU 10.0.2 under TCG keeps MSI-X on the vhost-user crypto device; 7.2 and unknown get vectors=0; KVM never', () => {
  assert.equal(cryptoDevice(buildQemuArgs(spec({ qemu: { binary: 'q', version: V1002 } }))), 'virtio-crypto-pci,id=crypto0,cryptodev=c0');
  assert.equal(cryptoDevice(buildQemuArgs(spec({ qemu: { binary: 'q', version: V72 } }))), 'virtio-crypto-pci,id=crypto0,cryptodev=c0,vectors=0');
  assert.equal(cryptoDevice(buildQemuArgs(spec())), 'virtio-crypto-pci,id=crypto0,cryptodev=c0,vectors=0');
  assert.equal(cryptoDevice(buildQemuArgs(spec({ accel: 'kvm', qemu: { binary: 'q', version: V72 } }))), 'virtio-crypto-pci,id=crypto0,cryptodev=c0');
});

test('doctor quirks name what applies: 7.2 has the MSI-X crash and the 632-byte sessions, 10.0.2 neither', () => {
  const q72 = Object.fromEntries(qemuQuirks(V72).map((q) => [q.id, q.applies]));
  const q10 = Object.fromEntries(qemuQuirks(V1002).map((q) => [q.id, q.applies]));
  assert.deepEqual(q72, { 'tcg-vhost-user-msix': true, 'crypto-session-layout': false });
  assert.deepEqual(q10, { 'tcg-vhost-user-msix': false, 'crypto-session-layout': true });
});

test('an unpacked QEMU (dpkg -x tree) gets -L <root>/usr/share/qemu; an installed one does not', () => {
  const root = mkdtempSync(join(tmpdir(), 'vlab-qemu-'));
  try {
    mkdirSync(join(root, 'usr', 'bin'), { recursive: true });
    mkdirSync(join(root, 'usr', 'share', 'qemu'), { recursive: true });
    const bin = join(root, 'usr', 'bin', 'qemu-system-x86_64');
    writeFileSync(bin, '#!/bin/sh\n', { mode: 0o755 });
    symlinkSync(bin, join(root, 'qemu'));
    assert.equal(qemuDataDir(bin), join(root, 'usr', 'share', 'qemu'));
    assert.equal(qemuDataDir(join(root, 'qemu')), join(root, 'usr', 'share', 'qemu'), 'a symlink to it too');
    assert.equal(qemuDataDir('/usr/bin/qemu-system-x86_64'), undefined);
    const args = buildQemuArgs(spec({ qemu: { binary: bin, version: V1002, dataDir: qemuDataDir(bin) } }));
    assert.equal(args[args.indexOf('-L') + 1], join(root, 'usr', 'share', 'qemu'));
    assert.equal(buildQemuArgs(spec()).includes('-L'), false);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('a modules share becomes a fourth read-only 9p device (tag vlabmods) and vlab.mods=1 on the kernel command line', () => {
  const args = buildQemuArgs(spec({ modulesShare: '/k/lib/modules' }));
  assert.ok(args.includes('local,id=fs3,path=/k/lib/modules,security_model=none,readonly=on,multidevs=remap'));
  assert.ok(args.includes('virtio-9p-pci,fsdev=fs3,mount_tag=vlabmods'));
  assert.equal(buildQemuArgs(spec()).some((a) => a.includes('vlabmods')), false);
  assert.match(kernelCmdline('/ws', 'lab', undefined, true), / vlab\.mods=1/);
  assert.doesNotMatch(kernelCmdline('/ws', 'lab'), /vlab\.mods/);
  assert.throws(() => buildQemuArgs(spec({ modulesShare: 'rel/dir' })), /absolute/);
});

test('custom kernels: dpkg -x tree, bzImage + --modules, build tree; release checked against the image', () => {
  const root = mkdtempSync(join(tmpdir(), 'vlab-kern-'));
  try {
    const rel = '6.12.95+deb12-amd64';
    // 1. an unpacked Debian kernel package
    const pkg = join(root, 'pkg');
    mkdirSync(join(pkg, 'boot'), { recursive: true });
    mkdirSync(join(pkg, 'lib', 'modules', rel), { recursive: true });
    mkdirSync(join(pkg, 'usr', 'src', `linux-headers-${rel}`), { recursive: true });
    fakeBzImage(join(pkg, 'boot', `vmlinuz-${rel}`), rel);
    writeFileSync(join(pkg, 'lib', 'modules', rel, 'modules.dep'), '');
    symlinkSync(`../../../usr/src/linux-headers-${rel}`, join(pkg, 'lib', 'modules', rel, 'build'));
    assert.equal(bzImageRelease(join(pkg, 'boot', `vmlinuz-${rel}`)), rel);
    const k = findCustomKernel(pkg);
    assert.deepEqual(k, {
      version: rel,
      vmlinuz: join(pkg, 'boot', `vmlinuz-${rel}`),
      modulesDir: join(pkg, 'lib', 'modules', rel),
      buildDir: join(pkg, 'usr', 'src', `linux-headers-${rel}`),
      modulesShare: join(pkg, 'lib', 'modules'),
    });
    // HostPaths.guestKernel overrides the host's installed kernels.
    assert.equal(findGuestKernel({ ...defaultHost({}), guestKernel: pkg }).version, rel);

    // 2. a bare bzImage: modules from --modules (release folder, its parent, or an INSTALL_MOD_PATH root)
    const bz = join(root, 'bzImage');
    fakeBzImage(bz, rel);
    assert.throws(() => findCustomKernel(bz), (e: unknown) => e instanceof LabError && /--modules/.test(e.message));
    for (const m of [join(pkg, 'lib', 'modules', rel), join(pkg, 'lib', 'modules'), pkg]) {
      assert.equal(findCustomKernel(bz, m).modulesDir, join(pkg, 'lib', 'modules', rel), m);
    }
    // a bzImage of another release than the modules is refused
    const other = join(root, 'other');
    fakeBzImage(other, '6.1.0-57-amd64');
    assert.throws(() => findCustomKernel(other, join(pkg, 'lib', 'modules')), /no 6\.1\.0-57-amd64\/ folder/);

    // 3. a kernel build tree: arch/x86/boot/bzImage + include/config/kernel.release, modules installed elsewhere
    const tree = join(root, 'linux');
    mkdirSync(join(tree, 'arch', 'x86', 'boot'), { recursive: true });
    mkdirSync(join(tree, 'include', 'config'), { recursive: true });
    fakeBzImage(join(tree, 'arch', 'x86', 'boot', 'bzImage'), '6.13.0-rc1');
    writeFileSync(join(tree, 'include', 'config', 'kernel.release'), '6.13.0-rc1\n');
    const inst = join(root, 'inst');
    mkdirSync(join(inst, 'lib', 'modules', '6.13.0-rc1'), { recursive: true });
    assert.throws(() => findCustomKernel(tree, inst), (e: unknown) => e instanceof LabError && /modules\.dep/.test(e.message) && /depmod/.test(e.fix ?? ''));
    writeFileSync(join(inst, 'lib', 'modules', '6.13.0-rc1', 'modules.dep'), '');
    const t = findCustomKernel(tree, inst);
    assert.equal(t.buildDir, tree, 'the driver builds against the tree itself');
    assert.equal(t.vmlinuz, join(tree, 'arch', 'x86', 'boot', 'bzImage'));
    assert.equal(t.modulesShare, join(inst, 'lib', 'modules'));

    // not a kernel at all
    writeFileSync(join(root, 'notes.txt'), 'hello');
    assert.throws(() => findCustomKernel(join(root, 'notes.txt')), /not an x86 bzImage/);
    assert.throws(() => findCustomKernel(join(root, 'missing')), /no such file/);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('vlab up --qemu/--kernel/--modules become host overrides, --modules alone is a usage error', () => {
  const r = parseUpArgs(['--qemu', 'q/bin/qemu', '--kernel', 'k', '--modules', 'm']);
  assert.deepEqual(r.host, { qemu: 'q/bin/qemu', guestKernel: 'k', guestModules: 'm' });
  assert.deepEqual(parseUpArgs([]).host, {});
  assert.throws(() => parseUpArgs(['--modules', 'm']), /--modules goes with --kernel/);
  assert.throws(() => parseUpArgs(['--kernel', '']), /needs a path/);
});
