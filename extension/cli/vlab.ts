/** `vlab` entry: finds the subcommand (longest matching name) and runs it. */
import { allCommands } from './commands/index';
import { type CliCommand, type CliIo, UsageError } from './command';

function findCommand(args: readonly string[]): { command: CliCommand; rest: readonly string[] } | undefined {
  let best: { command: CliCommand; rest: readonly string[] } | undefined;
  for (const command of allCommands) {
    const words = command.name.split(' ');
    if (words.every((w, i) => args[i] === w) && (!best || words.length > best.command.name.split(' ').length)) {
      best = { command, rest: args.slice(words.length) };
    }
  }
  return best;
}

function helpText(): string {
  const width = Math.max(...allCommands.map((c) => c.name.length), 4);
  const lines = allCommands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`);
  return ['usage: vlab <command> [options]', '', 'commands:', ...lines, '', 'vlab help <command> shows its options.', ''].join('\n');
}

export async function main(argv: readonly string[], ioOverride?: Partial<CliIo>): Promise<number> {
  const controller = new AbortController();
  const onSignal = (): void => controller.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const io: CliIo = {
    stdout: process.stdout,
    stderr: process.stderr,
    stdin: process.stdin,
    cwd: process.cwd(),
    env: process.env,
    signal: controller.signal,
    ...ioOverride,
  };
  try {
    if (argv.length === 0 || argv[0] === 'help' || argv[0] === '--help' || argv[0] === '-h') {
      const target = argv[0] === 'help' ? findCommand(argv.slice(1)) : undefined;
      io.stdout.write(target ? `${target.command.usage}\n` : helpText());
      return 0;
    }
    const found = findCommand(argv);
    if (!found) {
      io.stderr.write(`vlab: unknown command "${argv.join(' ')}"\n\n${helpText()}`);
      return 2;
    }
    if (found.rest.includes('--help') || found.rest.includes('-h')) {
      io.stdout.write(`${found.command.usage}\n`);
      return 0;
    }
    try {
      return await found.command.run(found.rest, io);
    } catch (err) {
      if (err instanceof UsageError) {
        io.stderr.write(`vlab ${found.command.name}: ${err.message}\n\n${found.command.usage}\n`);
        return 2;
      }
      throw err;
    }
  } finally {
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
  }
}
