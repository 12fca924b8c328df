/** Runs the back-end process: engine, vhost-user socket, telemetry socket, until aborted. */
import { createEngine } from './crypto/engines';
import type { EngineChoice } from './crypto/engine';
import { CappedLogFile } from './log';
import { TelemetryServer } from './telemetry/server';
import { VhostUserBackend } from './vhost-user-backend';

export interface RunBackendOptions {
  readonly socketPath: string;
  readonly telemetryPath?: string;
  readonly engine: EngineChoice;
  readonly log: (line: string) => void;
  readonly signal: AbortSignal;
  /** Fault-injection rules from the start (`--fault`, docs/fault-injection.md). */
  readonly faults?: readonly string[];
  /** `--strict`: a request that broke a ring rule is answered ERR instead of served (docs/checking.md). */
  readonly strict?: boolean;
  /** `--conformance off`: the oracle checks nothing (measurement only). */
  readonly conformance?: boolean;
  /** Called once both sockets listen. */
  readonly onReady?: (backend: VhostUserBackend) => void;
}

export async function runBackend(opts: RunBackendOptions): Promise<void> {
  const selection = createEngine(opts.engine);
  opts.log(`engine: ${selection.engine.name} (${selection.reason})`);
  const backend = new VhostUserBackend({ socketPath: opts.socketPath, engine: selection, log: opts.log, faults: opts.faults, strict: opts.strict, conformance: opts.conformance });
  if (opts.strict) opts.log('strict: requests that break a ring rule are answered ERR (docs/checking.md)');
  if (opts.conformance === false) opts.log('conformance oracle off (measurement only)');
  let telemetry: TelemetryServer | undefined;
  try {
    // The vhost-user socket first: it refuses a path another live back-end holds.
    backend.start();
    if (opts.telemetryPath) {
      const server = new TelemetryServer(opts.telemetryPath, backend, opts.log, backend);
      await server.start();
      telemetry = server;
      opts.log(`telemetry on ${opts.telemetryPath}`);
    }
    opts.onReady?.(backend);
    if (!opts.signal.aborted) await new Promise<void>((resolve) => opts.signal.addEventListener('abort', () => resolve(), { once: true }));
    opts.log('stopping');
  } finally {
    backend.stop();
    await telemetry?.stop();
  }
}

export function timestampedLog(stream: NodeJS.WritableStream): (line: string) => void {
  return (line) => stream.write(`${new Date().toISOString()} ${line}\n`);
}

/** The back-end's own log file, capped (see log.ts); every line timestamped. */
export function openLogFile(file: string, maxBytes: number): { log: (line: string) => void; close: () => void } {
  const out = new CappedLogFile(file, maxBytes);
  return { log: (line) => out.write(`${new Date().toISOString()} ${line}\n`), close: () => out.close() };
}
