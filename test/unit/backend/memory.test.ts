import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import * as vhost from '../../../addon/lib/vhost';
import { GuestMemory, MemoryTableError, frontendVa, gpa } from '../../../backend/memory';

describe('guest memory (real memfd mappings)', () => {
  const fd = vhost.memfdCreate('vlab-memory-test', 3 * 65536);
  after(() => vhost.closeFd(fd));
  const map = (): GuestMemory =>
    GuestMemory.map(
      [
        // Two regions on one memfd, contiguous in GPA, far apart in front-end VA, second one at an offset.
        { guestPhysAddr: 0x10000n, memorySize: 65536n, userspaceAddr: 0x7000_0000_0000n, mmapOffset: 0n },
        { guestPhysAddr: 0x20000n, memorySize: 131072n, userspaceAddr: 0x7100_0000_0000n, mmapOffset: 65536n },
      ],
      [fd, fd],
    );

  it('translates inside a region and returns undefined outside', () => {
    const m = map();
    assert.equal(m.contiguousAtGpa(gpa(0x10000n), 16)?.length, 16);
    assert.equal(m.contiguousAtGpa(gpa(0xffffn), 1), undefined);
    assert.equal(m.contiguousAtGpa(gpa(0x20000n + 131072n), 1), undefined);
    assert.equal(m.contiguousAtGpa(gpa((1n << 64n) - 1n), 1), undefined);
    m.close();
  });

  it('returns the contiguous length and splits a range across regions', () => {
    const m = map();
    assert.equal(m.contiguousAtGpa(gpa(0x1fff0n), 64)?.length, 16);
    const segs = m.rangeAtGpa(gpa(0x1fff0n), 64);
    assert.deepEqual(segs?.map((s) => s.length), [16, 48]);
    assert.equal(m.rangeAtGpa(gpa(0x2fff0n + 65536n), 64), undefined, 'runs off the end');
    assert.equal(m.rangeAtGpa(gpa((1n << 64n) - 8n), 16), undefined, 'wraps 2^64');
    m.close();
  });

  it('shares bytes with the file at the right mmap offset', () => {
    const m = map();
    const mine = new Uint8Array(vhost.mmap(fd, 0, 3 * 65536, true));
    mine[65536 + 5] = 0xab;
    assert.equal(m.contiguousAtGpa(gpa(0x20005n), 1)?.[0], 0xab);
    assert.equal(m.atVa(frontendVa(0x7100_0000_0005n), 1)?.[0], 0xab);
    assert.equal(m.atVa(frontendVa(0x7000_0000_fff0n), 32), undefined, 'VA ranges must sit in one region');
    vhost.munmap(mine.buffer as ArrayBuffer);
    m.close();
  });

  it('rejects overlapping, empty and wrapping tables', () => {
    const bytes = new Uint8Array(16);
    const r = (g: bigint, v: bigint) => ({ gpa: gpa(g), va: frontendVa(v), size: 16n, bytes });
    assert.throws(() => new GuestMemory([]), MemoryTableError);
    assert.throws(() => new GuestMemory([r(0n, 0n), r(8n, 100n)]), /overlap at gpa/);
    assert.throws(() => new GuestMemory([r(0n, 0n), r(100n, 8n)]), /overlap at va/);
    assert.throws(() => new GuestMemory([r((1n << 64n) - 8n, 0n)]), /wraps/);
  });

  it('munmap detaches the buffer so stale views read nothing instead of faulting', () => {
    const ab = vhost.mmap(fd, 0, 4096, true);
    assert.equal(ab.byteLength, 4096);
    assert.equal(vhost.munmap(ab), true);
    assert.equal(ab.byteLength, 0);
    assert.equal(vhost.munmap(ab), false);
  });

  it('addon argument errors are TypeErrors naming the argument; syscall errors carry errno', () => {
    assert.throws(() => vhost.mmap('x' as unknown as number, 0, 1), { name: 'TypeError', message: /fd must be a number/ });
    assert.throws(() => vhost.mmap(fd, -1, 1), { name: 'TypeError', message: /offset/ });
    assert.throws(() => vhost.eventfdWrite(fd + 1000, 1), (err: unknown) => vhost.isSyscallError(err) && err.code === 'EBADF' && err.syscall === 'write');
    assert.throws(() => vhost.connectUnix('/nonexistent/vlab.sock'), (err: unknown) => vhost.isSyscallError(err) && err.code === 'ENOENT' && err.syscall === 'connect');
  });
});

describe('mapping limits', () => {
  it('refuses a region past the end of its file (it would be SIGBUS on first touch)', () => {
    const fd = vhost.memfdCreate('vlab-short', 8192);
    try {
      assert.throws(() => vhost.mmap(fd, 4096, 8192), (err: unknown) => vhost.isSyscallError(err) && err.code === 'EINVAL' && /past the end/.test(err.message));
      assert.throws(
        () => GuestMemory.map([{ guestPhysAddr: 0n, memorySize: 65536n, userspaceAddr: 0n, mmapOffset: 0n }], [fd]),
        /past the end/,
      );
      const ok = vhost.mmap(fd, 4096, 4096);
      assert.equal(ok.byteLength, 4096);
      vhost.munmap(ok);
    } finally {
      vhost.closeFd(fd);
    }
  });
});

describe('guest memory fd policy', () => {
  it('maps only memfds sealed against shrinking (anything else could be truncated under the mapping: SIGBUS)', () => {
    const region = [{ guestPhysAddr: 0n, memorySize: 4096n, userspaceAddr: 0n, mmapOffset: 0n }];
    const unsealed = vhost.memfdCreate('vlab-unsealed', 4096, { seal: false });
    const efd = vhost.eventfdCreate();
    const sealed = vhost.memfdCreate('vlab-sealed', 4096);
    try {
      assert.throws(() => GuestMemory.map(region, [unsealed]), /region 0: memfd is not sealed with F_SEAL_SHRINK/);
      assert.throws(() => GuestMemory.map(region, [efd]), /region 0: fd is anon_inode:\[eventfd\], not a memfd/);
      assert.equal(vhost.fdStatus(sealed).seals! & vhost.F_SEAL_SHRINK, vhost.F_SEAL_SHRINK);
      const m = GuestMemory.map(region, [sealed]);
      assert.equal(m.regions.length, 1);
      m.close();
    } finally {
      vhost.closeFd(unsealed);
      vhost.closeFd(efd);
      vhost.closeFd(sealed);
    }
  });
});
