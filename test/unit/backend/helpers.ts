/** Shared fixtures for the backend unit tests: a real back-end on a temp socket, real memfds. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createEngine } from '../../../backend/crypto/engines';
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

export function startBackend(opts: { faults?: readonly string[] } = {}): Fixture {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vlab-be-test-'));
  const socket = path.join(dir, 'vu.sock');
  const logs: string[] = [];
  const backend = new VhostUserBackend({ socketPath: socket, engine: createEngine('openssl'), log: (l) => logs.push(l), faults: opts.faults });
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
