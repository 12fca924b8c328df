/** Shared fixtures for the backend unit tests: a real back-end on a temp socket, real memfds. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { CipherMode, CryptoEngine, HashAlg, PreparedCipher, PreparedDigest } from '../../../backend/crypto/engine';
import { createEngine } from '../../../backend/crypto/engines';
import { EvpEngine } from '../../../backend/crypto/evp-engine';
import { TestFrontend, type FrontendOptions } from '../../../backend/harness/frontend';
import { VhostUserBackend } from '../../../backend/vhost-user-backend';

export interface Fixture {
  readonly dir: string;
  readonly socket: string;
  readonly backend: VhostUserBackend;
  readonly logs: string[];
  connect(opts?: FrontendOptions): Promise<TestFrontend>;
  /** Resolves at the back-end's next disconnect. */
  nextDisconnect(): Promise<void>;
  close(): Promise<void>;
}

/** A back-end on a temp socket; `engine` replaces OpenSSL (e.g. a recording wrapper around it). */
export function startBackend(opts: { engine?: CryptoEngine; faults?: readonly string[] } = {}): Fixture {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vlab-be-test-'));
  const socket = path.join(dir, 'vu.sock');
  const logs: string[] = [];
  const engine = opts.engine ? { engine: opts.engine, reason: 'test engine' } : createEngine('openssl');
  const backend = new VhostUserBackend({ socketPath: socket, engine, log: (l) => logs.push(l), faults: opts.faults });
  backend.start();
  const frontends: TestFrontend[] = [];
  let waiters: (() => void)[] = [];
  backend.onDisconnect(() => {
    const w = waiters;
    waiters = [];
    w.forEach((f) => f());
  });
  return {
    dir, socket, backend, logs,
    async connect(opts) {
      const fe = await TestFrontend.connect(socket, opts);
      frontends.push(fe);
      return fe;
    },
    nextDisconnect() {
      return new Promise<void>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error('back-end did not disconnect')), 2000);
        waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    },
    async close() {
      for (const fe of frontends) fe.close();
      await new Promise((r) => setTimeout(r, 20));
      backend.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Open fds of this process (to prove nothing leaks). */
export function openFdCount(): number {
  return fs.readdirSync('/proc/self/fd').length;
}

/** The real OpenSSL engine (native EVP), recording what crosses the seam. */
export class RecordingEngine implements CryptoEngine {
  readonly name = 'openssl' as const;
  private readonly real = EvpEngine.open();
  readonly keysSeen: Buffer[] = [];
  readonly inputLengths: number[] = [];
  /** The views each cipher operation got (to check the engine works in place on guest memory). */
  readonly views: { src: Uint8Array; dst: Uint8Array }[] = [];
  disposed = 0;
  /** Runs after each cipher operation (tests act as a guest from inside the data path). */
  onCrypt: () => void = () => undefined;

  prepareCipher(mode: CipherMode, key: Buffer): PreparedCipher {
    this.keysSeen.push(key);
    const c = this.real.prepareCipher(mode, key);
    return {
      crypt: (encrypt, iv, src, dst) => {
        this.inputLengths.push(src.length);
        this.views.push({ src, dst });
        c.crypt(encrypt, iv, src, dst);
        this.onCrypt();
      },
      dispose: () => {
        this.disposed++;
        c.dispose();
      },
    };
  }

  prepareDigest(hash: HashAlg, key: Buffer | null): PreparedDigest {
    if (key) this.keysSeen.push(key);
    const m = this.real.prepareDigest(hash, key);
    return {
      digest: (parts, out) => {
        this.inputLengths.push(parts.reduce((n, p) => n + p.length, 0));
        m.digest(parts, out);
      },
      dispose: () => {
        this.disposed++;
        m.dispose();
      },
    };
  }

  close(): void {}
}
