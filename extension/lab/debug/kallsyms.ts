/**
 * The guest kernel's /proc/kallsyms (read as root, so addresses are real) as data: the kernel image's
 * own symbols, typed as code or data, for the symbol file gdb gets when no vmlinux with DWARF is
 * installed. The text comes from the guest: every line is checked, anything odd is skipped, sizes are
 * bounded.
 */

export interface KernelSymbol {
  readonly address: bigint;
  readonly name: string;
  /** t/T/w/W: a function; anything else kept (d, b, r, v ...): data. */
  readonly code: boolean;
  readonly global: boolean;
  /** The module it belongs to (kallsyms' `[name]` tag); undefined for the kernel image. */
  readonly module?: string;
}

export interface KernelSymbols {
  readonly symbols: readonly KernelSymbol[];
  /** Address of `_text` (moves with KASLR; 0xffffffff81000000 with nokaslr on x86-64). */
  readonly textAddress?: bigint;
}

/** Bounds: a 6.1 kernel has ~150 000 symbols in ~6 MB of text. */
export const MAX_KALLSYMS_BYTES = 64 << 20;
const MAX_SYMBOLS = 1_000_000;
const MAX_NAME = 512;
/** Kernel-half addresses only: a line with 0 (kptr_restrict, not root) or a per-CPU offset is no symbol to place. */
const KERNEL_HALF = 0xffff_8000_0000_0000n;

const LINE = /^([0-9a-f]{16}) ([A-Za-z]) (\S+)(?:\t\[(\S+)\])?$/;

/**
 * The symbols of /proc/kallsyms text, sorted by address: the kernel image's and the loaded modules'
 * (tagged; a module whose own .ko is loaded into gdb is left out by the symbol-file writer). Throws
 * when no line has a real address (kallsyms read without root shows zeros).
 */
export function parseKallsyms(text: string, opts: { allowEmpty?: boolean } = {}): KernelSymbols {
  if (text.length > MAX_KALLSYMS_BYTES) throw new RangeError(`kallsyms is larger than ${MAX_KALLSYMS_BYTES} bytes`);
  const symbols: KernelSymbol[] = [];
  let textAddress: bigint | undefined;
  let zeros = 0;
  for (const line of text.split('\n')) {
    const m = LINE.exec(line);
    if (!m) continue;
    const module = m[4];
    if (module !== undefined && !/^[A-Za-z0-9_-]{1,64}$/.test(module)) continue;
    const address = BigInt(`0x${m[1]}`);
    const type = m[2]!;
    const name = m[3]!;
    if (address === 0n) zeros++;
    if (address < KERNEL_HALF || type === 'a' || type === 'A' || type === 'U' || name.length > MAX_NAME || !/^[\x21-\x7e]+$/.test(name)) continue;
    if (name === '_text' && module === undefined) textAddress = address;
    symbols.push({ address, name, code: 'tTwW'.includes(type), global: type === type.toUpperCase(), ...(module !== undefined ? { module } : {}) });
    if (symbols.length > MAX_SYMBOLS) throw new RangeError(`more than ${MAX_SYMBOLS} kernel symbols`);
  }
  if (symbols.length === 0 && !opts.allowEmpty) {
    throw new Error(zeros > 0 ? '/proc/kallsyms shows no addresses (not read as root, or kptr_restrict)' : '/proc/kallsyms has no kernel symbols');
  }
  symbols.sort((a, b) => (a.address < b.address ? -1 : a.address > b.address ? 1 : 0));
  return { symbols, textAddress };
}
