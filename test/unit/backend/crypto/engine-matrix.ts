/**
 * The engines the backend's engine/device tests run on, one `describe` each. Every engine is listed:
 * one that cannot run here is skipped with the reason (visible in the test output as "# SKIP"), never
 * silently dropped. `VLAB_TEST_ENGINES=cryptodev` (a comma list) runs only those engines: the driver
 * suite sets it to run these same tests in the lab guest, against the guest's /dev/crypto.
 */
import { CryptodevEngine } from '../../../../backend/crypto/cryptodev-engine';
import { type CryptoEngine, ENGINE_NAMES, type EngineName } from '../../../../backend/crypto/engine';
import { EvpEngine } from '../../../../backend/crypto/evp-engine';
import { NodeEngine } from '../../../../backend/crypto/node-engine';
import { probeCryptodev } from '../../../../addon/lib/cryptodev';

export interface TestEngine {
  readonly name: EngineName;
  /** A fresh engine; only called when `skip` is false. */
  readonly make: () => CryptoEngine;
  /** false, or why this engine's tests are skipped on this machine. */
  readonly skip: false | string;
}

const MAKERS: Readonly<Record<EngineName, () => CryptoEngine>> = {
  openssl: () => EvpEngine.open(),
  node: () => new NodeEngine(),
  cryptodev: () => CryptodevEngine.open(),
};

function availability(name: EngineName): false | string {
  if (name !== 'cryptodev') return false;
  const probe = probeCryptodev();
  return probe.ok ? false : `no usable /dev/crypto: ${probe.reason}`;
}

/** The engines selected by VLAB_TEST_ENGINES (all when unset), each with its skip reason. */
export function testEngines(env: NodeJS.ProcessEnv = process.env): TestEngine[] {
  const wanted = env.VLAB_TEST_ENGINES?.split(',').map((s) => s.trim()).filter(Boolean);
  if (wanted) {
    const unknown = wanted.filter((w) => !(ENGINE_NAMES as readonly string[]).includes(w));
    if (unknown.length > 0) throw new Error(`VLAB_TEST_ENGINES: unknown engine(s) ${unknown.join(', ')} (known: ${ENGINE_NAMES.join(', ')})`);
  }
  return ENGINE_NAMES.filter((n) => !wanted || wanted.includes(n)).map((name) => ({ name, make: MAKERS[name], skip: availability(name) }));
}
