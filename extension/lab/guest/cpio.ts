/**
 * A writer for the "newc" cpio format (the one the Linux kernel unpacks as an initramfs; see
 * Documentation/driver-api/early-userspace/buffer-format.rst). Output is deterministic: inode numbers are
 * assigned in order, owners are 0:0 and mtimes are 0, so the same entries always give the same bytes.
 */

export type CpioEntry =
  | { readonly type: 'dir'; readonly path: string; readonly mode?: number }
  | { readonly type: 'file'; readonly path: string; readonly data: Buffer; readonly mode?: number }
  | { readonly type: 'symlink'; readonly path: string; readonly target: string }
  | { readonly type: 'chardev'; readonly path: string; readonly major: number; readonly minor: number; readonly mode?: number };

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const S_IFCHR = 0o020000;
const MAX_FIELD = 0xffffffff;
const TRAILER = 'TRAILER!!!';

function hex8(value: number, what: string): string {
  if (!Number.isInteger(value) || value < 0 || value > MAX_FIELD) throw new RangeError(`cpio: ${what} ${value} does not fit in 32 bits`);
  return value.toString(16).padStart(8, '0');
}

function pad4(length: number): Buffer {
  return Buffer.alloc((4 - (length % 4)) % 4);
}

function normalisePath(path: string): string {
  const trimmed = path.replace(/^\/+/, '');
  if (trimmed === '' || trimmed.split('/').some((part) => part === '' || part === '.' || part === '..') || trimmed.includes('\0')) {
    throw new Error(`cpio: bad entry path "${path}"`);
  }
  return trimmed;
}

function header(fields: { ino: number; mode: number; nlink: number; fileSize: number; rdevMajor: number; rdevMinor: number; nameSize: number }): Buffer {
  const values = [
    fields.ino, fields.mode, 0 /* uid */, 0 /* gid */, fields.nlink, 0 /* mtime */, fields.fileSize,
    0 /* devmajor */, 0 /* devminor */, fields.rdevMajor, fields.rdevMinor, fields.nameSize, 0 /* check */,
  ];
  return Buffer.from(`070701${values.map((v, i) => hex8(v, `field ${i}`)).join('')}`, 'ascii');
}

function record(ino: number, name: string, mode: number, nlink: number, data: Buffer, rdev: [number, number] = [0, 0]): Buffer[] {
  const nameBytes = Buffer.from(`${name}\0`, 'utf8');
  const head = header({ ino, mode, nlink, fileSize: data.length, rdevMajor: rdev[0], rdevMinor: rdev[1], nameSize: nameBytes.length });
  return [head, nameBytes, pad4(head.length + nameBytes.length), data, pad4(data.length)];
}

/** Serialises the entries (in the order given; parents must come before children) plus the trailer. */
export function writeCpio(entries: readonly CpioEntry[]): Buffer {
  const parts: Buffer[] = [];
  const seen = new Set<string>();
  let ino = 1;
  for (const entry of entries) {
    const name = normalisePath(entry.path);
    if (seen.has(name)) throw new Error(`cpio: duplicate entry "${name}"`);
    seen.add(name);
    switch (entry.type) {
      case 'dir':
        parts.push(...record(ino++, name, S_IFDIR | (entry.mode ?? 0o755), 2, Buffer.alloc(0)));
        break;
      case 'file':
        parts.push(...record(ino++, name, S_IFREG | (entry.mode ?? 0o644), 1, entry.data));
        break;
      case 'symlink':
        parts.push(...record(ino++, name, S_IFLNK | 0o777, 1, Buffer.from(entry.target, 'utf8')));
        break;
      case 'chardev':
        parts.push(...record(ino++, name, S_IFCHR | (entry.mode ?? 0o600), 1, Buffer.alloc(0), [entry.major, entry.minor]));
        break;
    }
  }
  parts.push(...record(0, TRAILER, 0, 1, Buffer.alloc(0)));
  return Buffer.concat(parts);
}

export interface CpioParsedEntry {
  readonly path: string;
  readonly mode: number;
  readonly data: Buffer;
  readonly rdevMajor: number;
  readonly rdevMinor: number;
}

/** Reads a newc archive back (used by tests and `vlab guest build --list`); stops at the trailer. */
export function readCpio(archive: Buffer): CpioParsedEntry[] {
  const out: CpioParsedEntry[] = [];
  let offset = 0;
  for (;;) {
    if (offset + 110 > archive.length) throw new Error('cpio: truncated header');
    const head = archive.toString('ascii', offset, offset + 110);
    if (!head.startsWith('070701')) throw new Error(`cpio: bad magic at ${offset}`);
    const field = (i: number): number => Number.parseInt(head.slice(6 + i * 8, 14 + i * 8), 16);
    const mode = field(1);
    const fileSize = field(6);
    const nameSize = field(11);
    const nameStart = offset + 110;
    if (nameSize < 1 || nameStart + nameSize > archive.length) throw new Error('cpio: bad name size');
    const name = archive.toString('utf8', nameStart, nameStart + nameSize - 1);
    let dataStart = nameStart + nameSize;
    dataStart += (4 - (dataStart % 4)) % 4;
    if (dataStart + fileSize > archive.length) throw new Error('cpio: truncated data');
    if (name === TRAILER) return out;
    out.push({ path: name, mode, data: archive.subarray(dataStart, dataStart + fileSize), rdevMajor: field(9), rdevMinor: field(10) });
    offset = dataStart + fileSize;
    offset += (4 - (offset % 4)) % 4;
  }
}
