/**
 * `vlab check`: the driver as the back-end's conformance oracle grades it (docs/checking.md) — the
 * violations so far (exit 1 if any, for CI), a live list with `--watch`, or the rule table. It reads
 * the telemetry socket's snapshot (its `conformance` section); the oracle itself runs in the back-end.
 */
import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import type { GradeReport } from '../../lab/check/grade-report';
import { GradeError, gradeDriver } from '../../lab/check/grader';
import { formatGradeTable, formatJunit } from '../../lab/check/print';
import type { ConformanceSnapshot } from '../../../backend/conformance/report';
import { RULES } from '../../../backend/conformance/rules';
import { requestSnapshot } from '../../../backend/telemetry/client';
import { integer, parseArgs } from '../args';
import { type CliCommand, type CliIo, UsageError } from '../command';
import { formatConformance, formatRules } from '../conformance-view';
import { labFor, labPathsFor } from '../lab-for';

/** Exit codes: 0 no violation, 1 violations, 2 usage (the CLI's), 3 no back-end to ask. */
const EXIT_VIOLATIONS = 1;
const EXIT_UNREACHABLE = 3;

const sleep = (ms: number, signal: AbortSignal): Promise<void> =>
  new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done(): void {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });

/** The snapshot's conformance section, or a printed reason why there is none (undefined). */
async function ask(socket: string, io: CliIo): Promise<ConformanceSnapshot | undefined | null> {
  try {
    return (await requestSnapshot(socket)).conformance;
  } catch (err) {
    io.stderr.write(`vlab check: cannot reach the back-end telemetry at ${socket}: ${(err as Error).message}\n(is the lab up with --backend ts, or \`vlab backend\` running?)\n`);
    return null;
  }
}

function text(c: ConformanceSnapshot | undefined, recent: number): string {
  return `${formatConformance(c, recent).join('\n')}\n`;
}

const checkCommand: CliCommand = {
  name: 'check',
  summary: "Grade the driver by the back-end's conformance oracle: violations of virtio 1.2 (docs/checking.md)",
  usage: `usage: vlab check [--watch [--interval MS]] [--json] [--telemetry PATH]
       vlab check --rules

  Every rule the TypeScript back-end checks (virtio 1.2 split virtqueue, initialisation, virtio-crypto
  §5.9), counted per rule with its clause, queue, head and offending values.
  (no option)      the violations so far; exit 0 if none, 1 if any (CI), 3 without a back-end to ask
  --watch          a live list, redrawn every --interval MS (default 500) until Ctrl-C
  --json           the conformance section of the telemetry snapshot as JSON (one line per refresh)
  --rules          the rule table: id, kind (driver rule / device limit), clause, what is asked
  --telemetry PATH the back-end's telemetry socket (default <state>/telemetry.sock)
  \`vlab backend --strict\` answers requests that break a ring rule with status ERR instead of serving them.`,
  async run(args, io) {
    const { values } = parseArgs({
      args: [...args], options: { watch: { type: 'boolean' }, interval: { type: 'string' }, json: { type: 'boolean' }, rules: { type: 'boolean' }, telemetry: { type: 'string' } },
      strict: true, allowPositionals: false,
    });
    if (values.rules) {
      if (values.watch || values.json) throw new UsageError('--rules takes no other option');
      io.stdout.write(formatRules(RULES.slice(1)));
      return 0;
    }
    const interval = integer(values.interval, '--interval', 20, 60_000) ?? 500;
    if (values.interval !== undefined && !values.watch) throw new UsageError('--interval needs --watch');
    const socket = path.resolve(io.cwd, values.telemetry ?? labPathsFor(io).telemetrySocket);
    const json = values.json ?? false;
    if (!values.watch) {
      const c = await ask(socket, io);
      if (c === null) return EXIT_UNREACHABLE;
      io.stdout.write(json ? `${JSON.stringify(c ?? null)}\n` : text(c, 16));
      return (c?.violations ?? 0) > 0 ? EXIT_VIOLATIONS : 0;
    }
    let last: ConformanceSnapshot | undefined;
    while (!io.signal.aborted) {
      const c = await ask(socket, io);
      if (c === null) return EXIT_UNREACHABLE;
      last = c;
      if (json) io.stdout.write(`${JSON.stringify(c ?? null)}\n`);
      else io.stdout.write(`\x1b[H\x1b[2J${text(c, 40)}(refresh every ${interval} ms; Ctrl-C stops)\n`);
      await sleep(interval, io.signal);
    }
    return (last?.violations ?? 0) > 0 ? EXIT_VIOLATIONS : 0;
  },
};

const DRIVER_USAGE = `usage: vlab check driver [--module PATH.ko] [--dev /dev/NAME] [--json] [--junit FILE]
       vlab check driver --afalg [--json] [--junit FILE]

  Grades a /dev/crypto driver in the running lab (docs/checking.md): API, concurrency, robustness
  (fault injection, ts back-end), hygiene and conformance (the back-end's oracle), with points per check.
  --module PATH.ko  grade this module, loaded in place of ours (ours is loaded again afterwards)
  --dev /dev/NAME   the device node it makes (default /dev/crypto)
  --afalg           grade upstream Linux virtio_crypto through AF_ALG instead (ours is unloaded and
                    loaded again afterwards; the guest must not blacklist it: vlab up --guest-driver upstream)
  --json            the report as JSON on stdout (docs/checking.md, "The JSON report")
  --junit FILE      also write JUnit XML: a testsuite per section, a testcase per check
  Exit: 0 full marks, 1 points lost, 2 usage, 3 no running lab or back-end.`;

const checkDriverCommand: CliCommand = {
  name: 'check driver',
  summary: 'grade a /dev/crypto driver (ours or --module PATH.ko) or upstream virtio_crypto (--afalg): sections, points, evidence; JSON and JUnit for CI',
  usage: DRIVER_USAGE,
  async run(args, io) {
    const { values } = parseArgs({
      args: [...args], options: { module: { type: 'string' }, dev: { type: 'string' }, afalg: { type: 'boolean' }, json: { type: 'boolean' }, junit: { type: 'string' } },
      strict: true, allowPositionals: false,
    });
    const modulePath = values.module === undefined ? undefined : path.resolve(io.cwd, values.module);
    if (modulePath !== undefined && !modulePath.endsWith('.ko')) throw new UsageError('--module wants a .ko file');
    if (values.junit !== undefined && values.junit.trim() === '') throw new UsageError('--junit needs a file');
    const json = values.json ?? false;
    let report: GradeReport;
    try {
      report = await gradeDriver(labFor(io), {
        modulePath, dev: values.dev, afalg: values.afalg ?? false, signal: io.signal,
        onProgress: (line) => { if (!json) io.stderr.write(`… ${line}\n`); },
      });
    } catch (err) {
      if (err instanceof GradeError) {
        if (err.kind === 'usage') throw new UsageError(err.message);
        io.stderr.write(`vlab check driver: ${err.message}\n`);
        return err.kind === 'no-lab' ? EXIT_UNREACHABLE : EXIT_VIOLATIONS;
      }
      throw err;
    }
    if (values.junit !== undefined) writeFileSync(path.resolve(io.cwd, values.junit), formatJunit(report));
    io.stdout.write(json ? `${JSON.stringify(report)}\n` : formatGradeTable(report));
    return report.total.earned === report.total.points ? 0 : EXIT_VIOLATIONS;
  },
};

export const checkCommands: readonly CliCommand[] = [checkCommand, checkDriverCommand];
