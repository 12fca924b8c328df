import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import * as vhost from '../../../../addon/lib/vhost';
import { GuestMemory, MemoryTableError, frontendVa, gpa } from '../../../../backend/virtio/memory';

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

describe('numeric translation of descriptor addresses (the data path, no BigInt)', () => {
  // Plain buffers as region bytes (the translation logic is what is tested here, the mapping above),
  // each a view at a non-zero offset of a larger buffer so offsets relative to the wrong base show.
  const region = (gpaStart: bigint, size: number, vaHi: bigint): { gpa: ReturnType<typeof gpa>; va: ReturnType<typeof frontendVa>; size: bigint; bytes: Uint8Array } => ({
    gpa: gpa(gpaStart), va: frontendVa(vaHi), size: BigInt(size), bytes: new Uint8Array(size + 8192).subarray(4096, 4096 + size),
  });
  const layouts: [string, () => GuestMemory][] = [
    ['low regions, one gap', () => new GuestMemory([region(0x10000n, 4096, 0x7000_0000_0000n), region(0x11000n, 8192, 0x7100_0000_0000n), region(0x20000n, 4096, 0x7200_0000_0000n)])],
    // A region ending above 2^53: numbers are not exact for it, every lookup takes the BigInt path.
    ['a region across 2^53', () => new GuestMemory([region(0x10000n, 4096, 0x7000_0000_0000n), region((1n << 53n) - 2048n, 4096, 0x7100_0000_0000n)])],
    ['a region near 2^64', () => new GuestMemory([region(0x10000n, 4096, 0x7000_0000_0000n), region((1n << 64n) - 8192n, 4096, 0x7100_0000_0000n)])],
  ];
  for (const [name, make] of layouts) {
    it(`rangeAtGpaParts and atGpaParts give rangeAtGpa's and atGpa's answers (${name}, 20 000 random addresses)`, () => {
      const m = make();
      const edges = m.regions.flatMap((r) => [r.gpa, r.gpa + r.size]);
      let seed = 12345;
      const rnd = (n: number): number => {
        seed = (seed * 1103515245 + 12345) >>> 0;
        return seed % n;
      };
      for (let k = 0; k < 20_000; k++) {
        // Near a region edge, or anywhere in the 64-bit space.
        const base = rnd(4) === 0 ? BigInt(rnd(2 ** 31)) * BigInt(rnd(2 ** 31)) * BigInt(1 + rnd(16)) : edges[rnd(edges.length)];
        const addr = (base + BigInt(rnd(8192)) - 4096n) & ((1n << 64n) - 1n);
        const len = [0, 1, 16, 4095, 4096, 8192, 12288][rnd(7)];
        const lo = Number(addr & 0xffff_ffffn);
        const hi = Number(addr >> 32n);
        const want = m.rangeAtGpa(gpa(addr), len, []);
        const got = m.rangeAtGpaParts(lo, hi, len, []);
        assert.equal(got === undefined, want === undefined, `range 0x${addr.toString(16)}+${len}`);
        if (got && want) {
          assert.equal(got.length, want.length);
          got.forEach((s, i) => assert.ok(s.buffer === want[i].buffer && s.byteOffset === want[i].byteOffset && s.length === want[i].length, `segment ${i} of 0x${addr.toString(16)}+${len}`));
        }
        const one = m.atGpaParts(lo, hi, Math.max(1, len));
        const oneWant = m.atGpa(gpa(addr), Math.max(1, len));
        assert.equal(one?.byteOffset, oneWant?.byteOffset, `atGpa 0x${addr.toString(16)}+${len}`);
        assert.equal(one?.buffer, oneWant?.buffer);
        const ref = { view: new DataView(new ArrayBuffer(0)), offset: 0 };
        const ok = m.viewAtGpaParts(lo, hi, Math.max(1, len), ref);
        assert.equal(ok, oneWant !== undefined, `viewAtGpaParts 0x${addr.toString(16)}+${len}`);
        if (ok && oneWant) assert.ok(ref.view.buffer === oneWant.buffer && ref.view.byteOffset + ref.offset === oneWant.byteOffset, 'same bytes');
      }
    });
  }
});
