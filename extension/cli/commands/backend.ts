/** `vlab backend` (run the vhost-user back-end), `vlab rings` (live telemetry), `vlab bench backend`. */
import * as path from 'node:path';
import { parseArgs } from '../args';
import { DEFAULT_LOG_MAX_BYTES } from '../../../backend/log';
import { openLogFile, runBackend, timestampedLog } from '../../../backend/main';
import { EngineUnavailableError } from '../../../backend/crypto/engine';
import { type CliCommand, UsageError } from '../command';
import { engine as parseEngine } from '../args';
import { labPathsFor } from '../lab-for';
import { runRings } from '../rings-view';
import { runBenchCommand } from '../../../backend/harness/bench';
import { FaultRuleError, parseFaultRule } from '../../../backend/faults/plan';

const backendCommand: CliCommand = {
  name: 'backend',
  summary: 'Run the TypeScript vhost-user virtio-crypto back-end (foreground)',
  usage: [
    'usage: vlab backend [--socket PATH] [--engine auto|openssl|node|cryptodev] [--telemetry PATH] [--log-file PATH [--log-max-bytes N]]',
    '                    [--fault RULE]... [--strict] [--conformance on|off]',
    '',
    '  --socket PATH      vhost-user socket to listen on (default <state>/vhost-user.sock)',
    '  --engine NAME      auto (host /dev/crypto if it opens, else openssl), openssl (native EVP), node (node:crypto),',
    '                     cryptodev',
    '  --telemetry PATH   telemetry socket, JSON lines (default <state>/telemetry.sock; "none" disables)',
    '  --log-file PATH    append the log to PATH instead of stdout; past --log-max-bytes (default 8 MiB)',
    '                     its content moves to PATH.1 and PATH starts empty',
    '  --fault RULE       fault-injection rule active from the start, repeatable (docs/fault-injection.md),',
    '                     e.g. --fault status=badmsg,every=3 --fault delay=20,opcode=decrypt',
    '  --strict           answer a request that broke a ring rule with status ERR instead of serving it',
    '                     (docs/checking.md; `vlab check --watch` lists the violations either way)',
    '  --conformance off  switch the conformance oracle off (for measuring its cost only; default on)',
    '',
    'Pair it with QEMU: -chardev socket,id=vu0,path=PATH -object cryptodev-vhost-user,id=c0,chardev=vu0',
    '  -device virtio-crypto-pci,id=crypto0,cryptodev=c0 (+ shared memory, see README). Stops on SIGINT/SIGTERM.',
  ].join('\n'),
  async run(args, io) {
    const { values } = parseArgs({
      args: [...args],
      options: {
        socket: { type: 'string' }, engine: { type: 'string' }, telemetry: { type: 'string' }, 'log-file': { type: 'string' }, 'log-max-bytes': { type: 'string' },
        fault: { type: 'string', multiple: true }, strict: { type: 'boolean' }, conformance: { type: 'string' },
      },
      strict: true, allowPositionals: false,
    });
    const engine = parseEngine(values.engine);
    const maxBytes = values['log-max-bytes'] === undefined ? DEFAULT_LOG_MAX_BYTES : Number(values['log-max-bytes']);
    if (!Number.isInteger(maxBytes) || maxBytes < 4096) throw new UsageError('--log-max-bytes must be an integer ≥ 4096');
    if (values['log-max-bytes'] !== undefined && values['log-file'] === undefined) throw new UsageError('--log-max-bytes needs --log-file');
    if (values.conformance !== undefined && values.conformance !== 'on' && values.conformance !== 'off') throw new UsageError('--conformance must be on or off');
    const faults = values.fault ?? [];
    for (const rule of faults) {
      try {
        parseFaultRule(rule);
      } catch (err) {
        if (err instanceof FaultRuleError) throw new UsageError(`--fault ${rule}: ${err.message}`);
        throw err;
      }
    }
    const socketPath = path.resolve(io.cwd, values.socket ?? labPathsFor(io).vhostUserSocket);
    const telemetryPath = values.telemetry === 'none' ? undefined : path.resolve(io.cwd, values.telemetry ?? labPathsFor(io).telemetrySocket);
    const file = values['log-file'] === undefined ? undefined : openLogFile(path.resolve(io.cwd, values['log-file']), maxBytes);
    const log = file ? file.log : timestampedLog(io.stdout);
    try {
      await runBackend({ socketPath, telemetryPath, engine, log, signal: io.signal, faults, strict: values.strict ?? false, conformance: values.conformance !== 'off' });
    } catch (err) {
      if (err instanceof EngineUnavailableError) {
        io.stderr.write(`vlab backend: ${err.message}\n`);
        return 1;
      }
      throw err;
    } finally {
      file?.close();
    }
    return 0;
  },
};

const ringsCommand: CliCommand = {
  name: 'rings',
  summary: 'Show the back-end\'s virtqueue rings and counters live (telemetry socket)',
  usage: [
    'usage: vlab rings [--telemetry PATH] [--interval MS] [--once] [--json] [--record FILE]',
    '',
    '  --telemetry PATH  telemetry socket (default <state>/telemetry.sock)',
    '  --interval MS     refresh period (default 500)',
    '  --once            print one snapshot and exit',
    '  --json            print raw snapshot JSON lines',
    '  --record FILE     write a trace (JSON lines, docs/telemetry.md) until Ctrl-C; the rings view replays it',
  ].join('\n'),
  async run(args, io) {
    const { values } = parseArgs({ args: [...args], options: { telemetry: { type: 'string' }, interval: { type: 'string' }, once: { type: 'boolean' }, json: { type: 'boolean' }, record: { type: 'string' } }, strict: true, allowPositionals: false });
    const interval = values.interval === undefined ? 500 : Number(values.interval);
    if (!Number.isInteger(interval) || interval < 20 || interval > 60000) throw new UsageError('--interval must be an integer 20..60000');
    const telemetryPath = path.resolve(io.cwd, values.telemetry ?? labPathsFor(io).telemetrySocket);
    const record = values.record === undefined ? undefined : path.resolve(io.cwd, values.record);
    return runRings({ telemetryPath, intervalMs: interval, once: values.once ?? false, json: values.json ?? false, record, io });
  },
};

const benchCommand: CliCommand = {
  name: 'bench backend',
  summary: 'Benchmark the back-end through the test front-end (AES-256-CBC, depth 1 and 64)',
  usage: [
    'usage: vlab bench backend [--json] [--engine openssl|node|cryptodev] [--seconds S]',
    '',
    '  Starts the back-end as a child process, drives it through the TypeScript front-end harness',
    '  and measures the raw engine on the same buffers in the same run.',
    '  --seconds S   time per case (default 1)',
  ].join('\n'),
  async run(args, io) {
    const { values } = parseArgs({ args: [...args], options: { json: { type: 'boolean' }, engine: { type: 'string' }, seconds: { type: 'string' } }, strict: true, allowPositionals: false });
    const engine = parseEngine(values.engine ?? 'openssl');
    if (engine === 'auto') throw new UsageError('--engine must be openssl, node or cryptodev for a benchmark');
    const seconds = values.seconds === undefined ? 1 : Number(values.seconds);
    if (!(seconds > 0 && seconds <= 60)) throw new UsageError('--seconds must be in (0, 60]');
    return runBenchCommand({ engine, seconds, json: values.json ?? false, io });
  },
};

export const backendCommands: readonly CliCommand[] = [backendCommand, ringsCommand, benchCommand];
