import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { defaultHost, findGuestKernel } from '../../../../../extension/lab/host/host';
import { loadModuleIndex, moduleName, parseModulesDep, resolveModules } from '../../../../../extension/lab/guest/modules-dep';

const dep = `kernel/fs/9p/9p.ko: kernel/net/9p/9pnet.ko kernel/fs/fscache/fscache.ko kernel/fs/netfs/netfs.ko
kernel/net/9p/9pnet.ko:
kernel/fs/fscache/fscache.ko: kernel/fs/netfs/netfs.ko
kernel/fs/netfs/netfs.ko:
kernel/net/9p/9pnet_virtio.ko: kernel/net/9p/9pnet.ko kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/virtio/virtio.ko: kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/virtio/virtio_ring.ko:
kernel/drivers/char/hw_random/virtio-rng.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
`;

test('dependencies come before the modules that need them, each once', () => {
  const order = resolveModules(parseModulesDep(dep), ['9pnet_virtio', '9p']).map(moduleName);
  assert.deepEqual(new Set(order).size, order.length);
  const before = (a: string, b: string): boolean => order.indexOf(a) < order.indexOf(b);
  assert.ok(before('virtio_ring', 'virtio') && before('virtio', '9pnet_virtio') && before('9pnet', '9pnet_virtio'));
  assert.ok(before('netfs', 'fscache') && before('fscache', '9p') && before('9pnet', '9p'));
});

test("'-' and '_' are the same in module names", () => {
  assert.deepEqual(resolveModules(parseModulesDep(dep), ['virtio_rng']).map(moduleName).at(-1), 'virtio_rng');
});

test('built-in modules are skipped, unknown ones refused', () => {
  assert.deepEqual(resolveModules(parseModulesDep(dep), ['overlay'], new Set(['overlay'])), []);
  assert.throws(() => resolveModules(parseModulesDep(dep), ['nope']), /"nope" not found/);
});

test('the installed guest kernel has everything the initramfs needs', () => {
  const kernel = findGuestKernel(defaultHost());
  const order = resolveModules(loadModuleIndex(kernel.modulesDir), ['virtio_pci', '9pnet_virtio', '9p', 'overlay']).map(moduleName);
  for (const m of ['virtio_pci', '9pnet_virtio', '9p', 'overlay']) assert.ok(order.includes(m), m);
});
