/** The shape every `vlab` subcommand has. Each area of the product adds its commands in its own file. */
export interface CliIo {
  readonly stdout: NodeJS.WritableStream;
  readonly stderr: NodeJS.WritableStream;
  readonly stdin: NodeJS.ReadableStream;
  /** The workspace the lab belongs to (state folder lives below it unless VLAB_STATE_DIR is set). */
  readonly cwd: string;
  readonly env: NodeJS.ProcessEnv;
  /** Aborted on SIGINT/SIGTERM: long operations must stop and clean up. */
  readonly signal: AbortSignal;
}

export interface CliCommand {
  /** Space-separated path, e.g. "up" or "chat listen". */
  readonly name: string;
  readonly summary: string;
  /** Full usage text shown by `vlab help NAME` and on a usage error. */
  readonly usage: string;
  run(args: readonly string[], io: CliIo): Promise<number>;
}

/** Thrown for bad command-line input: printed with the command's usage, exit code 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}
