/** `vlab up` options: defaults, validation, and the guest kernel command line they produce. */
import { FaultRuleError, parseFaultRule } from '../../backend/faults';
import { LabError } from './errors';
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
  if (!Number.isFinite(o.bootTimeoutMs) || o.bootTimeoutMs < 1 || o.bootTimeoutMs > 3_600_000) bad(`boot timeout must be 1 ms..1 h, not ${o.bootTimeoutMs}`);
  return o;
}

/** The guest kernel command line; runtime choices travel here so the initramfs stays cacheable. */
export function kernelCmdline(workspace: string, guestDriver: GuestDriver, projectShare?: string, ownModules = false): string {
  const hex = (p: string): string => Buffer.from(p, 'utf8').toString('hex');
  const parts = ['console=ttyS0', 'loglevel=4', 'panic=-1', `vlab.ws=${hex(workspace)}`, `vlab.driver=${guestDriver}`];
  if (projectShare) parts.push(`vlab.pkg=${hex(projectShare)}`);
  // A kernel not installed on the host: guest/init mounts its modules share over /lib/modules.
  if (ownModules) parts.push('vlab.mods=1');
  // 'none' and 'lab' keep the upstream driver off the device so another driver (or none) can bind it.
  if (guestDriver !== 'upstream') parts.push('module_blacklist=virtio_crypto');
  return parts.join(' ');
}
