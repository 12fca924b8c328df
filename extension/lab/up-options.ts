/** `vlab up` options: defaults, validation, and the guest kernel command line they produce. */
import { FaultRuleError, parseFaultRule } from '../../backend/faults/plan';
import { LabError } from './common/errors';
import type { GuestDriver, UpOptions } from './state';

export const DEFAULT_UP_OPTIONS: UpOptions = {
  backend: 'ts',
  engine: 'auto',
  accel: 'auto',
  memoryMb: 1024,
  cpus: 2,
  guestDriver: 'lab',
  bootTimeoutMs: 120_000,
};

export function resolveUpOptions(partial: Partial<UpOptions>): UpOptions {
  const o: UpOptions = { ...DEFAULT_UP_OPTIONS, ...Object.fromEntries(Object.entries(partial).filter(([, v]) => v !== undefined)) };
  const bad = (msg: string): never => {
    throw new LabError('bad-option', msg);
  };
  if (o.backend !== 'builtin' && o.backend !== 'ts') bad(`backend must be builtin or ts, not "${String(o.backend)}"`);
  if (!['auto', 'openssl', 'node', 'cryptodev'].includes(o.engine)) bad(`engine must be auto, openssl, node or cryptodev, not "${String(o.engine)}"`);
  if (!['auto', 'kvm', 'tcg'].includes(o.accel)) bad(`accel must be auto, kvm or tcg, not "${String(o.accel)}"`);
  if (!['upstream', 'none', 'lab'].includes(o.guestDriver)) bad(`guest driver must be upstream, none or lab, not "${String(o.guestDriver)}"`);
  if (!Number.isInteger(o.memoryMb) || o.memoryMb < 256 || o.memoryMb > 65536) bad(`memory must be 256..65536 MB, not ${o.memoryMb}`);
  if (!Number.isInteger(o.cpus) || o.cpus < 1 || o.cpus > 64) bad(`cpus must be 1..64, not ${o.cpus}`);
  if (o.faults !== undefined) {
    if (!Array.isArray(o.faults) || o.faults.some((r) => typeof r !== 'string')) bad('faults must be a list of rule strings');
    if (o.faults.length > 0 && o.backend !== 'ts') bad('fault injection needs the ts backend (--backend ts)');
    for (const rule of o.faults) {
      try {
        parseFaultRule(rule);
      } catch (err) {
        if (err instanceof FaultRuleError) bad(`fault rule ${rule}: ${err.message}`);
        throw err;
      }
    }
  }
  if (o.gdb !== undefined && typeof o.gdb !== 'boolean') bad('gdb must be true or false');
  if (o.append !== undefined) {
    const why = typeof o.append === 'string' ? checkKernelAppend(o.append) : 'must be a string';
    if (why) bad(`kernel arguments (--append): ${why}`);
  }
  if (!Number.isFinite(o.bootTimeoutMs) || o.bootTimeoutMs < 1 || o.bootTimeoutMs > 3_600_000) bad(`boot timeout must be 1 ms..1 h, not ${o.bootTimeoutMs}`);
  return o;
}

/** Longest `--append` accepted (the lab's own arguments plus this stay far below x86's 2048-byte COMMAND_LINE_SIZE). */
export const MAX_KERNEL_APPEND = 512;

/**
 * Why `append` cannot go on the guest kernel command line, or undefined when it can. Printable ASCII
 * only (so no newline or control character), at most MAX_KERNEL_APPEND bytes, no double quote (the
 * kernel's quoting would let one argument hide inside another), no `--` (what follows it goes to
 * init as arguments), and no `vlab.*` key: those are the lab's own (workspace, driver, shares) and a
 * later duplicate would override them.
 */
export function checkKernelAppend(append: string): string | undefined {
  if (append.length > MAX_KERNEL_APPEND) return `at most ${MAX_KERNEL_APPEND} characters (got ${append.length})`;
  const badChar = /[^\x20-\x7e]/.exec(append);
  if (badChar) return `printable ASCII only (character code ${badChar[0].charCodeAt(0)} at offset ${badChar.index})`;
  if (append.includes('"')) return 'no double quotes';
  for (const arg of append.split(' ').filter(Boolean)) {
    if (arg === '--') return '"--" (arguments for init) is not allowed';
    const key = arg.split('=', 1)[0]!;
    // The kernel treats '-' and '_' alike in parameter names; guest/init reads vlab.* itself.
    if (/^vlab[._-]/i.test(key)) return `"${key}" is the lab's own key and cannot be overridden`;
  }
  return undefined;
}

/**
 * The guest kernel command line; runtime choices travel here so the initramfs stays cacheable. `debug`
 * (`vlab up --gdb`) adds `nokaslr`: the kernel sits at its link address, so vmlinux symbols and the
 * addresses a crash dump records stay valid.
 */
export function kernelCmdline(workspace: string, guestDriver: GuestDriver, projectShare?: string, ownModules = false, append?: string, debug = false): string {
  const hex = (p: string): string => Buffer.from(p, 'utf8').toString('hex');
  const parts = ['console=ttyS0', 'loglevel=4', 'panic=-1', `vlab.ws=${hex(workspace)}`, `vlab.driver=${guestDriver}`];
  if (projectShare) parts.push(`vlab.pkg=${hex(projectShare)}`);
  // A kernel not installed on the host: guest/init mounts its modules share over /lib/modules.
  if (ownModules) parts.push('vlab.mods=1');
  // 'none' and 'lab' keep the upstream driver off the device so another driver (or none) can bind it.
  if (guestDriver !== 'upstream') parts.push('module_blacklist=virtio_crypto');
  if (debug) parts.push('nokaslr');
  // The user's extra arguments (`vlab up --append`) go last; resolveUpOptions has validated them.
  if (append !== undefined) {
    const why = checkKernelAppend(append);
    if (why) throw new LabError('bad-option', `kernel arguments (--append): ${why}`);
    parts.push(...append.split(' ').filter(Boolean));
  }
  return parts.join(' ');
}
