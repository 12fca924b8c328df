/**
 * Typed facade over addon/src/evp_engine.cc: OpenSSL EVP contexts held per session, run on the
 * caller's byte views (in place on guest memory when the back-end hands it mapped views).
 * Bad arguments throw TypeError; an OpenSSL failure throws an Error naming the call and reason.
 */
import { loadNative, nativeFunction } from './native';

/** Opaque handle of a native cipher context pair (encrypt + decrypt, key scheduled once). */
export interface EvpCipherHandle {
  readonly __evpCipher: unique symbol;
}
/** Opaque handle of a native hash or HMAC context. */
export interface EvpDigestHandle {
  readonly __evpDigest: unique symbol;
}

interface EvpNative {
  evpCipherCreate(name: string, key: Uint8Array): EvpCipherHandle;
  evpCipherRun(h: EvpCipherHandle, encrypt: boolean, iv: Uint8Array | null, src: Uint8Array, dst: Uint8Array): void;
  evpCipherFree(h: EvpCipherHandle): void;
  evpCipherLoop(h: EvpCipherHandle, encrypt: boolean, iv: Uint8Array | null, buf: Uint8Array, iterations: number): number;
  evpDigestCreate(name: string, key: Uint8Array | null): EvpDigestHandle;
  evpDigestRun(h: EvpDigestHandle, out: Uint8Array, ...parts: Uint8Array[]): void;
  evpDigestFree(h: EvpDigestHandle): void;
  evpDigestLoop(h: EvpDigestHandle, buf: Uint8Array, iterations: number): number;
}

let cached: EvpNative | undefined;

/** The native functions, or throws (addon not built, or built without the EVP engine). */
export function evp(): EvpNative {
  if (cached) return cached;
  const names = ['evpCipherCreate', 'evpCipherRun', 'evpCipherFree', 'evpCipherLoop', 'evpDigestCreate', 'evpDigestRun', 'evpDigestFree', 'evpDigestLoop'] as const;
  const fns: Partial<Record<(typeof names)[number], unknown>> = {};
  for (const n of names) fns[n] = nativeFunction(n);
  cached = fns as unknown as EvpNative;
  return cached;
}

/** Whether the addon with the EVP engine loads here; the reason when not. */
export function probeEvp(): { ok: true } | { ok: false; reason: string } {
  try {
    loadNative();
    evp();
    return { ok: true };
  } catch (err) {
    return { ok: false, reason: (err as Error).message };
  }
}
