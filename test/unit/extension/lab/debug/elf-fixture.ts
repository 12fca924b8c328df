/** The ELF64 little-endian x86-64 file header the synthetic test files start with. */
export function elfHeader(out: Buffer, h: { type: number; phoff?: number; phnum?: number; shoff?: number; shnum?: number }): void {
  out.writeUInt32BE(0x7f454c46, 0);
  out[4] = 2; // ELFCLASS64
  out[5] = 1; // little-endian
  out[6] = 1; // EV_CURRENT
  out.writeUInt16LE(h.type, 16);
  out.writeUInt16LE(62, 18); // EM_X86_64
  out.writeUInt16LE(64, 52);
  if (h.phnum !== undefined) {
    out.writeBigUInt64LE(BigInt(h.phoff ?? 64), 32);
    out.writeUInt16LE(56, 54);
    out.writeUInt16LE(h.phnum, 56);
  }
  if (h.shnum !== undefined) {
    out.writeBigUInt64LE(BigInt(h.shoff ?? 0), 40);
    out.writeUInt16LE(64, 58);
    out.writeUInt16LE(h.shnum, 60);
    out.writeUInt16LE(h.shnum - 1, 62);
  }
}
