/**
 * Makes a QEMU `dump-guest-memory` core (paging=false: fast, one PT_LOAD per RAM block, physical
 * addresses, what `crash` reads) readable by gdb, which needs kernel *virtual* addresses: the guest's
 * page tables (from the CR3/CR4 QEMU saved per CPU in its "QEMU" notes) are walked for the kernel half
 * (direct map, kernel image, vmalloc'ed stacks, modules; 4- and 5-level paging, 2M/1G pages), and one
 * PT_LOAD per contiguous mapping is added, pointing at the bytes already in the file. The original
 * PT_LOADs stay first with their physical addresses (what crash reads), but their virtual address
 * (QEMU writes vaddr = paddr) moves to a non-canonical one: gdb would otherwise read physical memory
 * for low addresses and show a NULL pointer's target instead of "Cannot access memory". The new table
 * is appended at the end of the file and the ELF header points at it. QEMU's paging=true does the same
 * walk inside QEMU but took ~5x longer here (38 s vs 8 s for 1 GiB on a loaded 2-core machine).
 *
 * The page tables are guest memory: the walk is bounded (page-table pages visited, mappings kept).
 */
import { closeSync, fstatSync, openSync, writeSync } from 'node:fs';
import { readAt } from './elf-read';

const PT_LOAD = 1;
const PT_NOTE = 4;
const PHDR = 56;
const QEMU_NOTE_CR3 = 416;
const QEMU_NOTE_CR4 = 424;
const CR4_LA57 = 1n << 12n;
const ADDR_MASK = 0x000f_ffff_ffff_f000n;
const PRESENT = 1n;
const PAGE_SIZE_BIT = 1n << 7n;
const MAX_TABLE_PAGES = 200_000;
const MAX_MAPPINGS = 60_000;
/** Where the physical PT_LOADs go for gdb: non-canonical with 4- and 5-level paging, so never a pointer. */
export const PHYSICAL_ALIAS_BASE = 0x4000_0000_0000_0000n;
/** The lowest kernel address with 5-level paging (0xffff800000000000 with 4 levels). */
const KERNEL_HALF_MIN = 0xff00_0000_0000_0000n;
/**
 * The %esp fixup stacks (Documentation/x86/x86_64/mm.rst, same place with 4- and 5-level paging): a few
 * pages mapped 64 Ki times over. Nothing to debug there, and they alone would fill a program header table.
 */
const ESPFIX_START = 0xffff_ff00_0000_0000n;
const ESPFIX_END = 0xffff_ff80_0000_0000n;

interface Phdr {
  type: number;
  flags: number;
  offset: bigint;
  vaddr: bigint;
  paddr: bigint;
  filesz: bigint;
  memsz: bigint;
  align: bigint;
}

export interface VirtualIndexResult {
  /** PT_LOADs added for kernel virtual addresses. */
  readonly added: number;
  /** The guest's paging depth (absent when nothing was added). */
  readonly pagingLevels?: 4 | 5;
}

function parsePhdrs(buf: Buffer, count: number): Phdr[] {
  return Array.from({ length: count }, (_, i) => {
    const o = i * PHDR;
    return {
      type: buf.readUInt32LE(o),
      flags: buf.readUInt32LE(o + 4),
      offset: buf.readBigUInt64LE(o + 8),
      vaddr: buf.readBigUInt64LE(o + 16),
      paddr: buf.readBigUInt64LE(o + 24),
      filesz: buf.readBigUInt64LE(o + 32),
      memsz: buf.readBigUInt64LE(o + 40),
      align: buf.readBigUInt64LE(o + 48),
    };
  });
}

function writePhdrs(list: readonly Phdr[]): Buffer {
  const buf = Buffer.alloc(list.length * PHDR);
  list.forEach((p, i) => {
    const o = i * PHDR;
    buf.writeUInt32LE(p.type, o);
    buf.writeUInt32LE(p.flags, o + 4);
    buf.writeBigUInt64LE(p.offset, o + 8);
    buf.writeBigUInt64LE(p.vaddr, o + 16);
    buf.writeBigUInt64LE(p.paddr, o + 24);
    buf.writeBigUInt64LE(p.filesz, o + 32);
    buf.writeBigUInt64LE(p.memsz, o + 40);
    buf.writeBigUInt64LE(p.align, o + 48);
  });
  return buf;
}

/** CR3 and CR4 of each CPU, from QEMU's own notes (owner "QEMU", QEMUCPUState). */
export function qemuCpuControlRegs(notes: Buffer): { cr3: bigint; cr4: bigint }[] {
  const out: { cr3: bigint; cr4: bigint }[] = [];
  let o = 0;
  while (o + 12 <= notes.length) {
    const namesz = notes.readUInt32LE(o);
    const descsz = notes.readUInt32LE(o + 4);
    const desc = o + 12 + ((namesz + 3) & ~3);
    if (desc + descsz > notes.length) break;
    const name = notes.toString('latin1', o + 12, o + 12 + Math.max(0, namesz - 1));
    if (name === 'QEMU' && descsz >= QEMU_NOTE_CR4 + 8) {
      out.push({ cr3: notes.readBigUInt64LE(desc + QEMU_NOTE_CR3), cr4: notes.readBigUInt64LE(desc + QEMU_NOTE_CR4) });
    }
    o = desc + ((descsz + 3) & ~3);
  }
  return out;
}

export interface Mapping {
  vaddr: bigint;
  paddr: bigint;
  size: bigint;
}

/**
 * The kernel-half mappings of the page tables rooted at `root` (physical), merged where both
 * addresses run on. `readPage` returns the 4 KiB page at a physical address, or undefined when the
 * dump does not hold it.
 */
export function walkKernelHalf(root: bigint, levels: 4 | 5, readPage: (phys: bigint) => Buffer | undefined): Mapping[] {
  const out: Mapping[] = [];
  let visited = 0;
  const vaBits = levels === 5 ? 57n : 48n;
  const signExtend = (va: bigint): bigint => ((va >> (vaBits - 1n)) & 1n ? va | (~((1n << vaBits) - 1n) & 0xffff_ffff_ffff_ffffn) : va);
  const add = (vaddr: bigint, paddr: bigint, size: bigint): void => {
    const last = out.at(-1);
    if (last && last.vaddr + last.size === vaddr && last.paddr + last.size === paddr) {
      last.size += size;
      return;
    }
    if (out.length >= MAX_MAPPINGS) throw new Error(`more than ${MAX_MAPPINGS} kernel mappings: not indexing this dump`);
    out.push({ vaddr, paddr, size });
  };
  const walk = (table: bigint, level: number, base: bigint, first: number): void => {
    if (++visited > MAX_TABLE_PAGES) throw new Error('page tables too large to index');
    const page = readPage(table);
    if (!page) return;
    const shift = 12n + 9n * BigInt(level - 1);
    for (let i = first; i < 512; i++) {
      const e = page.readBigUInt64LE(i * 8);
      if ((e & PRESENT) === 0n) continue;
      const va = base | (BigInt(i) << shift);
      const full = signExtend(va);
      if (full >= ESPFIX_START && full < ESPFIX_END) continue;
      const large = level === 1 || ((level === 2 || level === 3) && (e & PAGE_SIZE_BIT) !== 0n);
      if (large) {
        const size = 1n << shift;
        add(full, e & ADDR_MASK & ~(size - 1n), size);
      } else if (level > 1) {
        walk(e & ADDR_MASK, level - 1, va, 0);
      }
    }
  };
  walk(root & ADDR_MASK, levels, 0n, 256);
  return out;
}

/**
 * Adds the kernel virtual PT_LOADs to the core at `path` (in place). Idempotent in effect: a core that
 * already has virtual PT_LOADs (paging=true, or indexed before) is left alone (added: 0).
 */
export function addVirtualIndex(path: string): VirtualIndexResult {
  const fd = openSync(path, 'r+');
  try {
    const h = readAt(fd, 0, 64);
    if (h.readUInt32BE(0) !== 0x7f454c46 || h[4] !== 2 || h[5] !== 1 || h.readUInt16LE(16) !== 4) throw new Error(`${path} is not a 64-bit ELF core`);
    const phoff = h.readBigUInt64LE(32);
    const phnum = h.readUInt16LE(56);
    if (h.readUInt16LE(54) !== PHDR || phnum === 0 || phnum === 0xffff) throw new Error(`${path}: unexpected program header table`);
    const phdrs = parsePhdrs(readAt(fd, phoff, phnum * PHDR), phnum);
    const loads = phdrs.filter((p) => p.type === PT_LOAD);
    // Kernel addresses already there: indexed before, or written with paging=true.
    if (loads.some((p) => p.vaddr >= KERNEL_HALF_MIN)) return { added: 0 };
    const note = phdrs.find((p) => p.type === PT_NOTE);
    if (!note || note.filesz > 1n << 20n) throw new Error(`${path}: no usable PT_NOTE`);
    const cpus = qemuCpuControlRegs(readAt(fd, note.offset, Number(note.filesz)));
    if (cpus.length === 0) throw new Error(`${path}: no QEMU CPU notes (not written by QEMU dump-guest-memory?)`);

    const physToOffset = (paddr: bigint, length: bigint): bigint | undefined => {
      const l = loads.find((p) => paddr >= p.paddr && paddr + length <= p.paddr + p.filesz);
      return l ? l.offset + (paddr - l.paddr) : undefined;
    };
    const readPage = (phys: bigint): Buffer | undefined => {
      const off = physToOffset(phys, 4096n);
      return off === undefined ? undefined : readAt(fd, off, 4096);
    };
    // Every CPU's CR3 shares the kernel half; with page-table isolation a CPU may hold the user copy
    // (bit 12 set, kernel half mostly unmapped): the richest walk wins.
    let best: Mapping[] = [];
    let levels: 4 | 5 = 4;
    for (const { cr3, cr4 } of cpus) {
      const lv: 4 | 5 = (cr4 & CR4_LA57) !== 0n ? 5 : 4;
      for (const root of new Set([cr3 & ADDR_MASK, cr3 & ADDR_MASK & ~0x1000n])) {
        const maps = walkKernelHalf(root, lv, readPage);
        if (maps.length > best.length) {
          best = maps;
          levels = lv;
        }
      }
    }
    // One PT_LOAD per mapping, split where the physical side leaves a RAM block (MMIO is not in the dump).
    const added: Phdr[] = [];
    for (const m of best) {
      for (const l of loads) {
        const from = m.paddr > l.paddr ? m.paddr : l.paddr;
        const to = m.paddr + m.size < l.paddr + l.filesz ? m.paddr + m.size : l.paddr + l.filesz;
        if (to <= from) continue;
        added.push({ type: PT_LOAD, flags: 7, offset: l.offset + (from - l.paddr), vaddr: m.vaddr + (from - m.paddr), paddr: from, filesz: to - from, memsz: to - from, align: 0n });
      }
    }
    const total = phdrs.length + added.length;
    if (total >= 0xffff) throw new Error(`${path}: ${added.length} kernel mappings do not fit one ELF program header table`);
    const moved = phdrs.map((p) => (p.type === PT_LOAD ? { ...p, vaddr: PHYSICAL_ALIAS_BASE + p.paddr } : p));
    const table = writePhdrs([...moved, ...added]);
    const end = BigInt(fstatSync(fd).size);
    const newOff = (end + 7n) & ~7n;
    writeSync(fd, table, 0, table.length, Number(newOff));
    const fix = Buffer.alloc(8);
    fix.writeBigUInt64LE(newOff);
    writeSync(fd, fix, 0, 8, 32);
    const num = Buffer.alloc(2);
    num.writeUInt16LE(total);
    writeSync(fd, num, 0, 2, 56);
    return { added: added.length, pagingLevels: levels };
  } finally {
    closeSync(fd);
  }
}

/** `length` bytes at kernel virtual address `vaddr` of an indexed core, or undefined when not in it. */
export function readCoreVirtual(path: string, vaddr: bigint, length: number): Buffer | undefined {
  const fd = openSync(path, 'r');
  try {
    const h = readAt(fd, 0, 64);
    if (h.readUInt32BE(0) !== 0x7f454c46 || h.readUInt16LE(16) !== 4 || h.readUInt16LE(54) !== PHDR) return undefined;
    const phnum = h.readUInt16LE(56);
    const load = parsePhdrs(readAt(fd, h.readBigUInt64LE(32), phnum * PHDR), phnum).find(
      (p) => p.type === PT_LOAD && p.vaddr >= KERNEL_HALF_MIN && vaddr >= p.vaddr && vaddr + BigInt(length) <= p.vaddr + p.filesz,
    );
    return load ? readAt(fd, load.offset + (vaddr - load.vaddr), length) : undefined;
  } finally {
    closeSync(fd);
  }
}
