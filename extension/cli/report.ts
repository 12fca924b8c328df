/**
 * How every `vlab` command prints a failure: the one printer for the lab's LabError (reason, the
 * evidence it carries — console tail, QEMU stderr, backend log — and the fix) and the driver's
 * DriverError (reason and compiler diagnostics). Any other error prints its message.
 */
import { DriverError, formatDiagnostic } from '../lab/driver/driver';
import { LabError, errorMessage } from '../lab/common/errors';
import type { CliIo } from './command';

/** Prints a command's error the way users need it and returns the exit code (1). */
export function reportError(io: CliIo, command: string, err: unknown): number {
  io.stderr.write(`vlab ${command}: ${errorMessage(err)}\n`);
  if (err instanceof DriverError) {
    for (const d of err.diagnostics) io.stderr.write(`${formatDiagnostic(d, io.cwd)}\n`);
    if (err.kind === 'build' && err.diagnostics.length === 0 && err.output) io.stderr.write(`${err.output.split('\n').slice(-20).join('\n')}\n`);
  }
  if (err instanceof LabError) {
    const d = err.details;
    if (d?.consoleTail) io.stderr.write(`--- last console lines (vlab logs console) ---\n${d.consoleTail}\n`);
    if (d?.qemuStderr) io.stderr.write(`--- QEMU stderr (vlab logs qemu) ---\n${d.qemuStderr}\n`);
    if (d?.backendLog) io.stderr.write(`--- backend log (vlab logs backend) ---\n${d.backendLog}\n`);
    if (err.fix) io.stderr.write(`fix: ${err.fix}\n`);
  }
  return 1;
}
