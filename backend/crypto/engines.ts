/**
 * Picks an engine by name. 'auto' prefers the host's /dev/crypto, then the native OpenSSL engine,
 * then node:crypto, and says why it chose.
 */
import { CryptodevEngine } from './cryptodev-engine';
import { type CryptoEngine, type EngineChoice, EngineUnavailableError } from './engine';
import { EvpEngine } from './evp-engine';
import { NodeEngine } from './node-engine';

export interface EngineSelection {
  readonly engine: CryptoEngine;
  /** Human-readable reason for the choice (logged and shown in telemetry/status). */
  readonly reason: string;
}

export function createEngine(choice: EngineChoice, opts: { cryptodevPath?: string } = {}): EngineSelection {
  switch (choice) {
    case 'openssl':
      // Throws EngineUnavailableError when the addon (or its EVP part) is not built.
      return { engine: EvpEngine.open(), reason: 'requested: openssl (native OpenSSL EVP, per-session contexts)' };
    case 'node':
      return { engine: new NodeEngine(), reason: 'requested: node (node:crypto)' };
    case 'cryptodev':
      // Throws EngineUnavailableError ("unavailable: no /dev/crypto ...") when it cannot open.
      return { engine: CryptodevEngine.open(opts.cryptodevPath), reason: 'requested: cryptodev (host /dev/crypto)' };
    case 'auto': {
      let why: string;
      try {
        return { engine: CryptodevEngine.open(opts.cryptodevPath), reason: 'auto: host /dev/crypto opened' };
      } catch (err) {
        if (!(err instanceof EngineUnavailableError)) throw err;
        why = err.reason;
      }
      try {
        return { engine: EvpEngine.open(), reason: `auto: openssl because ${why}` };
      } catch (err) {
        if (!(err instanceof EngineUnavailableError)) throw err;
        return { engine: new NodeEngine(), reason: `auto: node because ${why} and the native engine is unavailable (${err.reason})` };
      }
    }
  }
}
