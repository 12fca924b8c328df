/** Picks an engine by name. 'auto' prefers the host's /dev/crypto and says why it chose. */
import { CryptodevEngine } from './cryptodev-engine';
import { type CryptoEngine, type EngineChoice, EngineUnavailableError } from './engine';
import { OpensslEngine } from './openssl-engine';

export interface EngineSelection {
  readonly engine: CryptoEngine;
  /** Human-readable reason for the choice (logged and shown in telemetry/status). */
  readonly reason: string;
}

export function createEngine(choice: EngineChoice, opts: { cryptodevPath?: string } = {}): EngineSelection {
  switch (choice) {
    case 'openssl':
      return { engine: new OpensslEngine(), reason: 'requested: openssl (node:crypto)' };
    case 'cryptodev':
      // Throws EngineUnavailableError ("unavailable: no /dev/crypto ...") when it cannot open.
      return { engine: CryptodevEngine.open(opts.cryptodevPath), reason: 'requested: cryptodev (host /dev/crypto)' };
    case 'auto':
      try {
        return { engine: CryptodevEngine.open(opts.cryptodevPath), reason: 'auto: host /dev/crypto opened' };
      } catch (err) {
        if (!(err instanceof EngineUnavailableError)) throw err;
        return { engine: new OpensslEngine(), reason: `auto: openssl because ${err.reason}` };
      }
  }
}
