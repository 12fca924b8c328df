/**
 * The back-end in a child process (`vlab backend`), for tests whose failure mode on a defective
 * back-end is a dead or frozen process (SIGBUS, a blocked event loop): the test process itself
 * must stay alive and responsive to observe it.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { TestFrontend } from '../../../backend/harness/frontend';
import { Request } from '../../../backend/vhost-user/wire';
import { REPO } from '../../repo-root';

const VLAB = path.join(REPO, 'bin', 'vlab.js');

export interface ChildBackend {
  readonly socket: string;
  readonly child: ChildProcess;
  /** Everything the back-end logged so far. */
  log(): string;
  /** null while it runs, else how it ended ("signal SIGBUS", "exit 1"). */
  ended(): string | null;
  /** Whether a fresh front-end gets GET_FEATURES answered within timeoutMs. */
  answers(timeoutMs?: number): Promise<boolean>;
  close(): Promise<void>;
}

export async function startChildBackend(): Promise<ChildBackend> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vlab-be-child-'));
  const socket = path.join(dir, 'vu.sock');
  const child = spawn(process.execPath, [VLAB, 'backend', '--socket', socket, '--engine', 'openssl', '--telemetry', 'none'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let end: string | null = null;
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  child.on('exit', (code, signal) => (end = signal ? `signal ${signal}` : `exit ${code}`));
  const deadline = Date.now() + 10_000;
  while (!/listening on/.test(out)) {
    if (end !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`back-end did not start (${end ?? 'timeout'}): ${out}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  return {
    socket, child,
    log: () => out,
    ended: () => end,
    async answers(timeoutMs = 2000) {
      let fe: TestFrontend | undefined;
      try {
        fe = TestFrontend.raw(socket, { memoryBytes: 65536, queueSize: 8 });
        const r = await fe.call(Request.GET_FEATURES, Buffer.alloc(0), timeoutMs);
        return r.payload.length === 8;
      } catch {
        return false;
      } finally {
        fe?.close();
      }
    },
    async close() {
      if (end === null) {
        const gone = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        const t = setTimeout(() => child.kill('SIGKILL'), 3000);
        await gone;
        clearTimeout(t);
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
