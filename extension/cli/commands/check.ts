/**
 * `vlab check`: the driver as the back-end's conformance oracle grades it (docs/checking.md) — the
 * violations so far (exit 1 if any, for CI), a live list with `--watch`, or the rule table. It reads
 * the telemetry socket's snapshot (its `conformance` section); the oracle itself runs in the back-end.
 */
import * as path from 'node:path';
import type { ConformanceSnapshot } from '../../../backend/conformance/report';
import { RULES } from '../../../backend/conformance/rules';
import { requestSnapshot } from '../../../backend/telemetry/client';
import { integer, parseArgs } from '../args';
import { type CliCommand, type CliIo, UsageError } from '../command';
import { formatConformance, formatRules } from '../conformance-view';
import { labPathsFor } from '../lab-for';

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

export const checkCommands: readonly CliCommand[] = [checkCommand];
