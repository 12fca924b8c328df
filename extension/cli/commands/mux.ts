/** `vlab ssh-mux`: the lab's SSH mux process (started by `vlab up`, ended by `vlab down`; docs/lab.md § SSH mux). */
import { integer, parseArgs } from '../args';
import { type CliCommand, UsageError } from '../command';
import { runSshMux } from '../../lab/mux/process';

const USAGE = `usage: vlab ssh-mux --socket PATH --port N --key FILE --host-key FILE.pub [--retry-ms MS] [--console FILE]
Internal: started by vlab up. Holds one SSH connection to the guest on 127.0.0.1:N (client key FILE,
pinned host key FILE.pub) and serves channels on it to vlab commands of the same user over the unix
socket PATH (mode 0600). Keeps trying to log in for MS (default 10000) while the guest boots, starting once the
guest console FILE shows the init's ready line. Ends
when the SSH connection does, or on SIGTERM.`;

export const muxCommands: readonly CliCommand[] = [
  {
    name: 'ssh-mux',
    summary: "internal: the lab's shared SSH connection (started by vlab up)",
    usage: USAGE,
    async run(args, io) {
      const { values, positionals } = parseArgs({
        args: [...args],
        allowPositionals: true,
        options: { socket: { type: 'string' }, port: { type: 'string' }, key: { type: 'string' }, 'host-key': { type: 'string' }, 'retry-ms': { type: 'string' }, console: { type: 'string' } },
      });
      if (positionals.length) throw new UsageError(`unexpected argument "${positionals[0]}"`);
      const port = integer(values.port, '--port', 1, 65535);
      const retryMs = integer(values['retry-ms'], '--retry-ms', 0, 3_600_000) ?? 10_000;
      if (!values.socket || !values.key || !values['host-key'] || port === undefined) throw new UsageError('--socket, --port, --key and --host-key are all needed');
      const log = (line: string): void => {
        io.stderr.write(`${new Date().toISOString()} ssh-mux: ${line}\n`);
      };
      return runSshMux({ socket: values.socket, port, key: values.key, hostKey: values['host-key'], retryMs, ...(values.console ? { console: values.console } : {}) }, log, io.signal);
    },
  },
];
