/**
 * Just enough of ELF64 little-endian for the debugger plumbing: the section table of a kernel module
 * (.ko) or a vmlinux, a module's name (.modinfo), its GNU build-id and a note's payload. Reads the
 * header and the section table only (a vmlinux with DWARF is hundreds of MB: it is never read whole).
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';

export interface ElfSection {
  readonly name: string;
  readonly type: number;
  readonly flags: bigint;
  readonly addr: bigint;
  readonly offset: number;
  readonly size: number;
}

export const SHT_PROGBITS = 1;
export const SHT_SYMTAB = 2;
export const SHT_STRTAB = 3;
export const SHT_NOTE = 7;
export const SHT_NOBITS = 8;
export const SHF_WRITE = 1n;
export const SHF_ALLOC = 2n;
export const SHF_EXECINSTR = 4n;

export class ElfError extends Error {
  override readonly name = 'ElfError';
}

const MAX_SECTIONS = 65_280;
const MAX_SHSTRTAB = 16 << 20;

/** Exactly `length` bytes at `offset` of an open file (a short read is an ElfError). */
export function readAt(fd: number, offset: number | bigint, length: number): Buffer {
  const buf = Buffer.alloc(length);
  const got = readSync(fd, buf, 0, length, Number(offset));
  if (got < length) throw new ElfError(`short read at ${offset} (${got} of ${length} bytes)`);
  return buf;
}

/** An open ELF file; close() when done. */
export class ElfFile {
  readonly sections: readonly ElfSection[];
  readonly type: number;
  readonly machine: number;
  private readonly fd: number;

  private constructor(fd: number, type: number, machine: number, sections: ElfSection[]) {
    this.fd = fd;
    this.type = type;
    this.machine = machine;
    this.sections = sections;
  }

  static open(path: string): ElfFile {
    const fd = openSync(path, 'r');
    try {
      const size = fstatSync(fd).size;
      const h = readAt(fd, 0, 64);
      if (h.readUInt32BE(0) !== 0x7f454c46) throw new ElfError(`${path} is not an ELF file`);
      if (h[4] !== 2 || h[5] !== 1) throw new ElfError(`${path} is not a 64-bit little-endian ELF file`);
      const shoff = Number(h.readBigUInt64LE(40));
      const shentsize = h.readUInt16LE(58);
      const shnum = h.readUInt16LE(60);
      const shstrndx = h.readUInt16LE(62);
      if (shnum === 0 || shnum > MAX_SECTIONS || shentsize < 64 || shoff + shnum * shentsize > size || shstrndx >= shnum) {
        throw new ElfError(`${path}: bad section table`);
      }
      const table = readAt(fd, shoff, shnum * shentsize);
      const raw = Array.from({ length: shnum }, (_, i) => {
        const o = i * shentsize;
        return {
          nameOff: table.readUInt32LE(o),
          type: table.readUInt32LE(o + 4),
          flags: table.readBigUInt64LE(o + 8),
          addr: table.readBigUInt64LE(o + 16),
          offset: Number(table.readBigUInt64LE(o + 24)),
          size: Number(table.readBigUInt64LE(o + 32)),
        };
      });
      const strtab = raw[shstrndx]!;
      if (strtab.size > MAX_SHSTRTAB || strtab.offset + strtab.size > size) throw new ElfError(`${path}: bad section name table`);
      const names = readAt(fd, strtab.offset, strtab.size);
      const nameAt = (off: number): string => {
        if (off >= names.length) return '';
        const end = names.indexOf(0, off);
        return names.toString('latin1', off, end < 0 ? names.length : end);
      };
      const sections = raw.map((s) => ({ name: nameAt(s.nameOff), type: s.type, flags: s.flags, addr: s.addr, offset: s.offset, size: s.size }));
      for (const s of sections) {
        if (s.type !== SHT_NOBITS && s.type !== 0 && s.offset + s.size > size) throw new ElfError(`${path}: section ${s.name} extends past the end of the file`);
      }
      return new ElfFile(fd, h.readUInt16LE(16), h.readUInt16LE(18), sections);
    } catch (err) {
      closeSync(fd);
      throw err;
    }
  }

  section(name: string): ElfSection | undefined {
    return this.sections.find((s) => s.name === name);
  }

  /** A section's bytes (at most maxBytes). */
  contents(s: ElfSection, maxBytes = 1 << 20): Buffer {
    if (s.type === SHT_NOBITS || s.size === 0) return Buffer.alloc(0);
    if (s.size > maxBytes) throw new ElfError(`section ${s.name} is larger than ${maxBytes} bytes`);
    return readAt(this.fd, s.offset, s.size);
  }

  close(): void {
    closeSync(this.fd);
  }
}

/** The descriptor of the first note of `type` named `owner` in a note section's bytes. */
export function findNote(notes: Buffer, owner: string, type: number): Buffer | undefined {
  let o = 0;
  const align4 = (n: number): number => (n + 3) & ~3;
  while (o + 12 <= notes.length) {
    const namesz = notes.readUInt32LE(o);
    const descsz = notes.readUInt32LE(o + 4);
    const ntype = notes.readUInt32LE(o + 8);
    const nameStart = o + 12;
    const descStart = nameStart + align4(namesz);
    const next = descStart + align4(descsz);
    if (descStart + descsz > notes.length) return undefined;
    const name = notes.toString('latin1', nameStart, nameStart + Math.max(0, namesz - 1));
    if (name === owner && ntype === type) return notes.subarray(descStart, descStart + descsz);
    o = next;
  }
  return undefined;
}

const NT_GNU_BUILD_ID = 3;

/** The GNU build-id (hex) in the bytes of a `.note.gnu.build-id` section or sysfs notes file, if any. */
export function buildIdOfNotes(notes: Buffer): string | undefined {
  const desc = findNote(notes, 'GNU', NT_GNU_BUILD_ID);
  return desc && desc.length > 0 ? desc.toString('hex') : undefined;
}

/** The GNU build-id of an ELF file (from its note sections), or undefined (none, or not readable as ELF). */
export function fileBuildId(path: string): string | undefined {
  let elf: ElfFile;
  try {
    elf = ElfFile.open(path);
  } catch {
    return undefined;
  }
  try {
    for (const n of elf.sections.filter((s) => s.type === SHT_NOTE)) {
      const id = buildIdOfNotes(elf.contents(n, 1 << 16));
      if (id) return id;
    }
    return undefined;
  } finally {
    elf.close();
  }
}

export interface ModuleFileInfo {
  /** The module's name as the kernel knows it (.modinfo `name=`, else the file name with '-' as '_'). */
  readonly name: string;
  readonly buildId?: string;
  /** Sections that are loaded (SHF_ALLOC) and have a size: the ones `add-symbol-file -s` may place. */
  readonly allocSections: readonly string[];
}

/** What the debugger needs to know of a .ko file. */
export function readModuleFile(path: string): ModuleFileInfo {
  const elf = ElfFile.open(path);
  try {
    if (elf.type !== 1 /* ET_REL */) throw new ElfError(`${path} is not a kernel module (not a relocatable ELF object)`);
    if (!elf.section('.gnu.linkonce.this_module')) throw new ElfError(`${path} is not a kernel module (no .gnu.linkonce.this_module section)`);
    const modinfo = elf.section('.modinfo');
    const fields = modinfo ? elf.contents(modinfo).toString('latin1').split('\0') : [];
    const fromInfo = fields.find((f) => f.startsWith('name='))?.slice(5);
    const base = path.split('/').at(-1)!.replace(/\.ko$/, '').replace(/-/g, '_');
    const note = elf.section('.note.gnu.build-id');
    return {
      name: fromInfo && /^[A-Za-z0-9_]+$/.test(fromInfo) ? fromInfo : base,
      buildId: note ? buildIdOfNotes(elf.contents(note)) : undefined,
      allocSections: elf.sections.filter((s) => (s.flags & SHF_ALLOC) !== 0n && s.size > 0 && s.name !== '').map((s) => s.name),
    };
  } finally {
    elf.close();
  }
}

/** The link-time address of a vmlinux's `.text` (the kernel's `_text` before any KASLR slide). */
export function vmlinuxTextAddress(path: string): bigint {
  const elf = ElfFile.open(path);
  try {
    const text = elf.section('.text');
    if (!text || elf.type !== 2 /* ET_EXEC */) throw new ElfError(`${path} is not a vmlinux (no .text in an executable)`);
    return text.addr;
  } finally {
    elf.close();
  }
}
