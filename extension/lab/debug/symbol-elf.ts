/**
 * A symbol-only ELF file for gdb, written from kallsyms: what `vlab gdb` loads with `symbol-file` when
 * no vmlinux with DWARF is installed. It has no code or data, only address ranges and names: each run
 * of consecutive code (or data) symbols becomes one SHT_NOBITS section at its real address (code runs
 * are SHF_EXECINSTR, so gdb files their symbols as functions: `break panic`, `bt` and `info symbol`
 * work; memory always comes from the target or the core). Measured with gdb 13.1 (Debian 12).
 */
import { SHF_ALLOC, SHF_EXECINSTR, SHF_WRITE, SHT_NOBITS, SHT_STRTAB, SHT_SYMTAB } from './elf-read';
import type { KernelSymbol } from './kallsyms';

const EHDR = 64;
const SHDR = 64;
const SYM = 24;
const STT_OBJECT = 1;
const STT_FUNC = 2;
const STB_LOCAL = 0;
const STB_GLOBAL = 1;
/** A run's end before the next symbol is known. */
const TAIL_SIZE = 16n;

interface Run {
  readonly code: boolean;
  readonly start: bigint;
  end: bigint;
  readonly symbols: KernelSymbol[];
}

const pageEnd = (a: bigint): bigint => (a + 4096n) & ~4095n;

/**
 * Consecutive symbols of one kind and one owner (the kernel image or a module). A run reaches the next
 * run of the same owner; at a change of owner it ends at the page after its last symbol: modules are
 * page-aligned allocations, so a run never covers a module left out (whose .ko gdb loads itself; gdb
 * drops one of two overlapping sections).
 */
function runsOf(symbols: readonly KernelSymbol[]): Run[] {
  const runs: Run[] = [];
  let owner: string | undefined;
  for (const s of symbols) {
    const last = runs.at(-1);
    if (last && last.code === s.code && owner === s.module) {
      last.symbols.push(s);
      continue;
    }
    if (last) {
      const lastAddress = last.symbols.at(-1)!.address;
      last.end = owner === s.module ? s.address : pageEnd(lastAddress) < s.address ? pageEnd(lastAddress) : s.address;
    }
    owner = s.module;
    runs.push({ code: s.code, start: s.address, end: s.address + TAIL_SIZE, symbols: [s] });
  }
  const last = runs.at(-1);
  if (last) last.end = pageEnd(last.symbols.at(-1)!.address);
  // Symbols of both kinds at one address make an empty run: it takes no room and keeps no symbol.
  return runs.filter((r) => r.end > r.start);
}

class StringTable {
  private readonly parts: Buffer[] = [Buffer.from([0])];
  private size = 1;
  add(s: string): number {
    const at = this.size;
    const b = Buffer.from(`${s}\0`, 'latin1');
    this.parts.push(b);
    this.size += b.length;
    return at;
  }
  bytes(): Buffer {
    return Buffer.concat(this.parts);
  }
}

/** The ELF file's bytes (ET_EXEC, x86-64), without the symbols of the modules in `leaveOut`. */
export function writeSymbolElf(all: readonly KernelSymbol[], leaveOut: ReadonlySet<string> = new Set()): Buffer {
  const symbols = leaveOut.size === 0 ? all : all.filter((s) => s.module === undefined || !leaveOut.has(s.module));
  const runs = runsOf(symbols);
  const shstr = new StringTable();
  const str = new StringTable();
  const sectionNames = runs.map((r, i) => shstr.add(`${r.code ? '.text' : '.data'}.${i}`));
  const symtabName = shstr.add('.symtab');
  const strtabName = shstr.add('.strtab');
  const shstrtabName = shstr.add('.shstrtab');

  // Symbols: locals first (ELF requires it), then globals; section index = run index + 1.
  type Entry = { name: number; info: number; shndx: number; value: bigint; size: bigint };
  const locals: Entry[] = [];
  const globals: Entry[] = [];
  runs.forEach((run, i) => {
    run.symbols.forEach((s, k) => {
      let next = run.end;
      for (let j = k + 1; j < run.symbols.length; j++) {
        if (run.symbols[j]!.address > s.address) {
          next = run.symbols[j]!.address;
          break;
        }
      }
      const e: Entry = {
        name: str.add(s.name),
        info: ((s.global ? STB_GLOBAL : STB_LOCAL) << 4) | (run.code ? STT_FUNC : STT_OBJECT),
        shndx: i + 1,
        value: s.address,
        size: next - s.address,
      };
      (s.global ? globals : locals).push(e);
    });
  });
  const entries = [...locals, ...globals];
  const symtab = Buffer.alloc(SYM * (entries.length + 1));
  entries.forEach((e, i) => {
    const o = SYM * (i + 1);
    symtab.writeUInt32LE(e.name, o);
    symtab[o + 4] = e.info;
    symtab[o + 5] = 0;
    symtab.writeUInt16LE(e.shndx, o + 6);
    symtab.writeBigUInt64LE(e.value, o + 8);
    symtab.writeBigUInt64LE(e.size, o + 16);
  });
  const strtab = str.bytes();
  const shstrtab = shstr.bytes();

  const symtabOff = EHDR;
  const strtabOff = symtabOff + symtab.length;
  const shstrtabOff = strtabOff + strtab.length;
  const shoff = (shstrtabOff + shstrtab.length + 7) & ~7;
  const shnum = runs.length + 4;
  if (shnum >= 0xff00) throw new RangeError(`too many symbol runs for one ELF file (${runs.length})`);
  const out = Buffer.alloc(shoff + shnum * SHDR);

  out.writeUInt32BE(0x7f454c46, 0);
  out[4] = 2; // ELFCLASS64
  out[5] = 1; // little-endian
  out[6] = 1; // EV_CURRENT
  out.writeUInt16LE(2, 16); // ET_EXEC
  out.writeUInt16LE(62, 18); // EM_X86_64
  out.writeUInt32LE(1, 20);
  out.writeBigUInt64LE(BigInt(shoff), 40);
  out.writeUInt16LE(EHDR, 52);
  out.writeUInt16LE(SHDR, 58);
  out.writeUInt16LE(shnum, 60);
  out.writeUInt16LE(shnum - 1, 62);
  symtab.copy(out, symtabOff);
  strtab.copy(out, strtabOff);
  shstrtab.copy(out, shstrtabOff);

  const header = (i: number, h: { name: number; type: number; flags?: bigint; addr?: bigint; offset?: number; size: bigint | number; link?: number; info?: number; align?: number; entsize?: number }): void => {
    const o = shoff + i * SHDR;
    out.writeUInt32LE(h.name, o);
    out.writeUInt32LE(h.type, o + 4);
    out.writeBigUInt64LE(h.flags ?? 0n, o + 8);
    out.writeBigUInt64LE(h.addr ?? 0n, o + 16);
    out.writeBigUInt64LE(BigInt(h.offset ?? 0), o + 24);
    out.writeBigUInt64LE(BigInt(h.size), o + 32);
    out.writeUInt32LE(h.link ?? 0, o + 40);
    out.writeUInt32LE(h.info ?? 0, o + 44);
    out.writeBigUInt64LE(BigInt(h.align ?? 1), o + 48);
    out.writeBigUInt64LE(BigInt(h.entsize ?? 0), o + 56);
  };
  runs.forEach((r, i) => {
    header(i + 1, {
      name: sectionNames[i]!,
      type: SHT_NOBITS,
      flags: SHF_ALLOC | (r.code ? SHF_EXECINSTR : SHF_WRITE),
      addr: r.start,
      offset: shoff,
      size: r.end - r.start,
    });
  });
  const symIndex = runs.length + 1;
  header(symIndex, { name: symtabName, type: SHT_SYMTAB, offset: symtabOff, size: symtab.length, link: symIndex + 1, info: locals.length + 1, align: 8, entsize: SYM });
  header(symIndex + 1, { name: strtabName, type: SHT_STRTAB, offset: strtabOff, size: strtab.length });
  header(symIndex + 2, { name: shstrtabName, type: SHT_STRTAB, offset: shstrtabOff, size: shstrtab.length });
  return out;
}
