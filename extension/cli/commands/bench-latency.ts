/** `vlab bench latency`: the stages of one 64 B /dev/crypto operation, per backend and poll_us. */
import { parseArgs } from '../args';
import { type CliCommand, UsageError } from '../command';
import { benchLatency, formatLatencyTable } from '../../bench/latency';
import { MODULE_NAME } from '../../lab/driver/driver';
import { backendList, intList, oneInt } from '../args';
import { reportError } from '../report';

const USAGE = `usage: vlab bench latency [--json] [--backend ts,builtin] [--poll 0,50] [--ops N] [--rounds N] [--size B]
Where the time of one AES-256-CBC CIOCCRYPT goes (default 64 B, one process): boots one VM per backend
(temporary state folder), loads ${MODULE_NAME} with stats=1 and prints the mean µs and share of each stage —
syscall, driver before the kick, the kick, device + transport (kick -> interrupt; for ts the backend's own
service time inside it), interrupt -> wake-up, wake-up -> return — for each poll_us value. The values
alternate over the rounds, and each round also runs the same loop with stats off.
  --backend   comma-separated backends (default ts,builtin)
  --poll      comma-separated poll_us values, 0..1000 (default 0,50)
  --ops N     timed operations per round and value (default 200)
  --rounds N  rounds; each point shows its median round (default 15)
  --size B    bytes per operation, a multiple of 16 (default 64)`;

export const benchLatencyCommands: readonly CliCommand[] = [
  {
    name: 'bench latency',
    summary: 'where the time of one 64 B /dev/crypto operation goes, per backend and poll_us',
    usage: USAGE,
    async run(args, io) {
      const { values, positionals } = parseArgs({
        args: [...args],
        options: {
          json: { type: 'boolean' }, backend: { type: 'string' }, poll: { type: 'string' },
          ops: { type: 'string' }, rounds: { type: 'string' }, size: { type: 'string' },
        },
        allowPositionals: true,
      });
      if (positionals.length) throw new UsageError(`unexpected argument "${positionals[0]}"`);
      const backends = backendList(values.backend, 'ts,builtin');
      const pollUs = intList(values.poll, '--poll', 0, 1000, [0, 50]);
      const ops = oneInt(values.ops, '--ops', 200, 10, 1_000_000);
      const rounds = oneInt(values.rounds, '--rounds', 15, 1, 50);
      const size = oneInt(values.size, '--size', 64, 16, 1 << 20);
      if (size % 16) throw new UsageError(`--size must be a multiple of 16 (got ${size})`);
      try {
        const result = await benchLatency({
          workspace: io.cwd, backends, pollUs, ops, rounds, size, env: io.env, signal: io.signal,
          onProgress: (m) => io.stderr.write(`[bench] ${m}\n`),
        });
        io.stdout.write(values.json ? `${JSON.stringify(result, null, 2)}\n` : `${formatLatencyTable(result)}\n`);
        return 0;
      } catch (err) {
        return reportError(io, 'bench latency', err);
      }
    },
  },
];
