/** `vlab doctor`: host checks with the exact fix for each problem. */
import { resolve } from 'node:path';
import { parseArgs } from '../args';
import { type CliCommand, UsageError } from '../command';
import { hostEnv, runDoctor, type DoctorReport } from '../../lab/doctor';

const USAGE = `usage: vlab doctor [--json] [--qemu PATH]
Checks this host for what the lab needs: QEMU (>= 7.2, with the lab's devices), a guest kernel with
modules and build headers, busybox-static, sshd, ssh-keygen, the accelerator (KVM or TCG and why),
shared memory; and optional tools (kcapi-tools, tcpdump, chromium, gdb and the guest kernel's
vmlinux with DWARF for vlab gdb).
Prints each problem with the command that fixes it. Exit 1 if the lab cannot run.
  --qemu PATH  check this QEMU (default: env VLAB_QEMU, else qemu-system-x86_64 on PATH); the report
           names its version and which version quirks apply (MSI-X workaround, session layout)
  --json   print the report as JSON: { canRun, accel: {kind, why}, kernel, checks: [{name, ok, level, detail, fix?}] }`;

export function formatDoctorReport(report: DoctorReport): string {
  const lines: string[] = [];
  for (const c of report.checks) {
    const mark = c.ok ? 'ok  ' : c.level === 'optional' ? 'warn' : 'FAIL';
    lines.push(`${mark}  ${c.name.padEnd(15)} ${c.detail}`);
    if (!c.ok && c.fix) lines.push(`      ${''.padEnd(15)} fix: ${c.fix}`);
  }
  lines.push('');
  lines.push(report.canRun
    ? `The lab can run here (accelerator: ${report.accel.kind.toUpperCase()}).`
    : 'The lab cannot run here: fix the FAIL lines above (run the commands shown), then run `vlab doctor` again.');
  return lines.join('\n') + '\n';
}

export const doctorCommands: readonly CliCommand[] = [
  {
    name: 'doctor',
    summary: 'check the host for what the lab needs, with fixes',
    usage: USAGE,
    async run(args, io) {
      let json = false;
      let qemu: string | undefined;
      try {
        const { values } = parseArgs({ args: [...args], options: { json: { type: 'boolean' }, qemu: { type: 'string' } }, strict: true, allowPositionals: false });
        json = values.json === true;
        qemu = values.qemu === undefined ? undefined : values.qemu.includes('/') ? resolve(io.cwd, values.qemu) : values.qemu;
      } catch (err) {
        throw new UsageError((err as Error).message);
      }
      const report = await runDoctor(hostEnv(qemu === undefined ? {} : { qemu }));
      io.stdout.write(json ? JSON.stringify(report, null, 2) + '\n' : formatDoctorReport(report));
      return report.canRun ? 0 : 1;
    },
  },
];
