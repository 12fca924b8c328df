import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, appendFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { readCpio } from '../../../../../extension/lab/guest/cpio';
import { type GuestProgress, buildGuest, defaultInitDir } from '../../../../../extension/lab/guest/build';
import { defaultHost } from '../../../../../extension/lab/host/host';
import { labPaths } from '../../../../../extension/lab/common/paths';
import { moduleName } from '../../../../../extension/lab/guest/modules-dep';

function setup(t: { after(fn: () => void): void }): { paths: ReturnType<typeof labPaths>; initDir: string } {
  const dir = mkdtempSync(join(tmpdir(), 'vlab-gb-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const initDir = join(dir, 'init');
  cpSync(defaultInitDir(), initDir, { recursive: true });
  return { paths: labPaths(join(dir, 'ws'), join(dir, 'state'), {}), initDir };
}

test('first build makes keys and an initramfs the kernel can unpack; contents are what the init needs', async (t) => {
  const { paths, initDir } = setup(t);
  const progress: GuestProgress[] = [];
  const g = await buildGuest(paths, defaultHost(), { initDir, onProgress: (p) => progress.push(p) });
  assert.equal(g.rebuilt, true);
  assert.ok(progress.some((p) => p.step === 'keys') && progress.some((p) => p.step === 'initramfs'));
  assert.match(g.hostPublicKey, /^ssh-ed25519 [A-Za-z0-9+/]+=*$/);
  assert.equal(statSync(paths.clientKey).mode & 0o077, 0, 'client private key is private');

  const entries = readCpio(gunzipSync(readFileSync(g.initramfs)));
  const byPath = new Map(entries.map((e) => [e.path, e]));
  assert.deepEqual(byPath.get('init')?.data, readFileSync(join(initDir, 'init')));
  assert.equal((byPath.get('init')!.mode & 0o111) !== 0, true, 'init is executable');
  assert.deepEqual(byPath.get('bin/busybox')?.data, readFileSync('/bin/busybox'));
  assert.equal(byPath.get('dev/console')?.rdevMajor, 5);
  const clientPub = readFileSync(`${paths.clientKey}.pub`, 'utf8').split(' ').slice(0, 2).join(' ');
  assert.ok(byPath.get('vlab/ssh/authorized_keys')!.data.toString().startsWith(clientPub));
  assert.deepEqual(byPath.get('vlab/ssh/host_key')?.data, readFileSync(paths.hostKey));

  const list = byPath.get('vlab/modules.list')!.data.toString().trim().split('\n').map(moduleName);
  const shipped = entries.filter((e) => e.path.startsWith('vlab/modules/')).map((e) => moduleName(e.path));
  assert.deepEqual([...shipped].sort(), [...list].sort(), 'every listed module is shipped, nothing else');
  const at = (m: string): number => list.indexOf(m);
  assert.ok(at('virtio_ring') < at('virtio') && at('virtio') < at('virtio_pci') && at('9pnet') < at('9pnet_virtio') && at('9pnet_virtio') < at('9p'), list.join(' '));
  assert.ok(at('overlay') >= 0);
});

test('a second build with the same inputs is a no-op; changing an input rebuilds', async (t) => {
  const { paths, initDir } = setup(t);
  const first = await buildGuest(paths, defaultHost(), { initDir });
  const mtime = statSync(first.initramfs).mtimeMs;
  const keyBefore = readFileSync(paths.clientKey);

  const second = await buildGuest(paths, defaultHost(), { initDir });
  assert.equal(second.rebuilt, false);
  assert.equal(second.hash, first.hash);
  assert.equal(statSync(second.initramfs).mtimeMs, mtime, 'initramfs not rewritten');
  assert.deepEqual(readFileSync(paths.clientKey), keyBefore, 'keys are kept');

  appendFileSync(join(initDir, 'stage2'), '\n# changed\n');
  const third = await buildGuest(paths, defaultHost(), { initDir });
  assert.equal(third.rebuilt, true);
  assert.notEqual(third.hash, first.hash);
  const stage2 = readCpio(gunzipSync(readFileSync(third.initramfs))).find((e) => e.path === 'vlab/stage2')!;
  assert.match(stage2.data.toString(), /# changed/);
});

test('a deleted initramfs is rebuilt even when the manifest matches', async (t) => {
  const { paths, initDir } = setup(t);
  await buildGuest(paths, defaultHost(), { initDir });
  rmSync(paths.initramfs);
  assert.equal((await buildGuest(paths, defaultHost(), { initDir })).rebuilt, true);
});

test('new keys change the hash (the initramfs embeds them)', async (t) => {
  const { paths, initDir } = setup(t);
  const first = await buildGuest(paths, defaultHost(), { initDir });
  rmSync(paths.hostKey);
  rmSync(`${paths.hostKey}.pub`);
  const second = await buildGuest(paths, defaultHost(), { initDir });
  assert.equal(second.rebuilt, true);
  assert.notEqual(second.hostPublicKey, first.hostPublicKey);
});

test('cancellation stops the build', async (t) => {
  const { paths, initDir } = setup(t);
  const ac = new AbortController();
  ac.abort();
  await assert.rejects(buildGuest(paths, defaultHost(), { initDir, signal: ac.signal }), (e: Error & { kind?: string }) => e.kind === 'cancelled');
});

test('a corrupt manifest is ignored (rebuild)', async (t) => {
  const { paths, initDir } = setup(t);
  await buildGuest(paths, defaultHost(), { initDir });
  writeFileSync(paths.guestManifest, '{not json');
  assert.equal((await buildGuest(paths, defaultHost(), { initDir })).rebuilt, true);
});

test('a kernel not installed on the host (--kernel): its .ko.xz modules are unpacked into the initramfs', async (t) => {
  const { paths, initDir } = setup(t);
  const root = mkdtempSync(join(tmpdir(), 'vlab-gb-kern-'));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  const rel = '6.12.95+deb12-amd64';
  const mods = join(root, 'lib', 'modules', rel);
  const names = ['virtio_pci', '9pnet', '9pnet_virtio', 'netfs', '9p', 'overlay'];
  mkdirSync(join(mods, 'kernel'), { recursive: true });
  for (const n of names) {
    writeFileSync(join(mods, 'kernel', `${n}.ko`), `fake module ${n}\n`);
    execFileSync('xz', ['--check=crc32', join(mods, 'kernel', `${n}.ko`)]);
  }
  writeFileSync(join(mods, 'modules.dep'), [
    'kernel/virtio_pci.ko.xz:',
    'kernel/9pnet.ko.xz:',
    'kernel/9pnet_virtio.ko.xz: kernel/9pnet.ko.xz',
    'kernel/netfs.ko.xz:',
    'kernel/9p.ko.xz: kernel/netfs.ko.xz kernel/9pnet.ko.xz',
    'kernel/overlay.ko.xz:',
    '',
  ].join('\n'));
  mkdirSync(join(root, 'boot'));
  const image = Buffer.alloc(0x1000);
  image.write('HdrS', 0x202, 'latin1');
  image.writeUInt16LE(0x300, 0x20e);
  image.write(`${rel} (builder) #1 SMP\0`, 0x500, 'latin1');
  writeFileSync(join(root, 'boot', `vmlinuz-${rel}`), image);

  const g = await buildGuest(paths, { ...defaultHost(), guestKernel: root }, { initDir });
  assert.equal(g.kernel.version, rel);
  assert.equal(g.kernel.modulesShare, join(root, 'lib', 'modules'));
  const entries = readCpio(gunzipSync(readFileSync(g.initramfs)));
  for (const n of names) {
    assert.equal(entries.find((e) => e.path === `vlab/modules/${n}.ko`)?.data.toString(), `fake module ${n}\n`, n);
  }
  assert.match(entries.find((e) => e.path === 'vlab/modules.list')!.data.toString(), /^9pnet\.ko$/m);
});
