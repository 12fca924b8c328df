/**
 * The module graded: its name read from the .ko's .modinfo (no modinfo needed), and rmmod / insmod in
 * the guest for the grader (the device node must come back after insmod).
 */
import { readFileSync } from 'node:fs';
import { quoteForShell, type SshSession } from '../guest/ssh';

/** `name=` of the module's .modinfo section, or the file name without `.ko`. */
export function moduleNameOf(koPath: string): string {
  const data = readFileSync(koPath);
  const at = data.indexOf(Buffer.from('\0name='));
  if (at >= 0) {
    const end = data.indexOf(0, at + 6);
    const name = data.subarray(at + 6, end < 0 ? undefined : end).toString('latin1');
    if (/^[A-Za-z0-9_-]{1,56}$/.test(name)) return name.replace(/-/g, '_');
  }
  const base = koPath.split('/').pop()!.replace(/\.ko$/, '');
  if (!/^[A-Za-z0-9_-]{1,56}$/.test(base)) throw new Error(`cannot tell the module name of ${koPath}`);
  return base.replace(/-/g, '_');
}

export interface ModuleStep {
  readonly ok: boolean;
  readonly output: string;
}

/** `rmmod NAME` when loaded; ok when the module is gone afterwards. */
export async function rmmod(session: SshSession, name: string, timeoutMs = 120_000): Promise<ModuleStep> {
  const q = quoteForShell([name]);
  const r = await session.run({ shell: `if [ -d /sys/module/${q} ]; then rmmod ${q} 2>&1; echo "rmmod=$?"; else echo 'rmmod=not-loaded'; fi; test -d /sys/module/${q} && echo still-loaded; true` }, { timeoutMs });
  return { ok: !/still-loaded/.test(r.stdout) && /rmmod=(0|not-loaded)/.test(r.stdout), output: r.stdout.trim() };
}

/** `insmod PATH`, then waits (bounded) for the device node. */
export async function insmod(session: SshSession, guestPath: string, dev: string, timeoutMs = 120_000): Promise<ModuleStep> {
  const [p, d] = [quoteForShell([guestPath]), quoteForShell([dev])];
  const r = await session.run({ shell: `insmod ${p} 2>&1; echo "insmod=$?"; i=0; while [ ! -c ${d} ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done; test -c ${d} && echo dev-ok || echo dev-missing` }, { timeoutMs });
  return { ok: /insmod=0/.test(r.stdout) && /dev-ok/.test(r.stdout), output: r.stdout.trim() };
}
