/**
 * `vlab chat pair`: a listen/connect pair that exchanges one known sentence each way, optionally
 * recording the traffic, then says whether the sentence is readable on the wire.
 *
 * Host side: an in-process listener on 127.0.0.1 (port 0 → a free port). Other side: a separate
 * `vlab chat connect` process, on the host (127.0.0.1) or, with `guest`, inside the lab VM through
 * `vlab ssh` (the guest reaches the host's loopback as 10.0.2.2 through QEMU user networking).
 * Capture: tcpdump on lo filtered to the pair's port (host), or the lab's QEMU filter-dump (guest).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PassThrough } from 'node:stream';
import { type RunningCapture, type PlaintextScan, scanForPlaintext, startLoopbackCapture } from './capture';
import { generatePsk, writeKeyFile } from './keys';
import { acceptOne, runChatSession } from './peer';
import { type CryptoChoice, setupCrypto } from './setup';

export const DEFAULT_SENTENCE = 'The quick brown fox jumps over the lazy virtio device';
/** The lab guest sees the host's loopback at this address (QEMU user networking). */
export const GUEST_HOST_ADDRESS = '10.0.2.2';

export interface PairOptions {
  readonly crypto: CryptoChoice;
  /** --crypto of the connecting side when it differs (e.g. host software, guest cryptodev). */
  readonly peerCrypto?: CryptoChoice;
  readonly keyFile?: string;
  /** pcap output file. */
  readonly capture?: string;
  readonly guest: boolean;
  readonly sentence?: string;
  /** Workspace (the lab's state lives below it; the guest sees it at the same path). */
  readonly cwd: string;
  readonly env?: NodeJS.ProcessEnv;
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal;
  readonly log?: (line: string) => void;
}

export interface PairResult {
  readonly hostCipher: string;
  readonly peerCipher: string;
  readonly port: number;
  /** Lines the host received from the other side, and vice versa (without time stamps). */
  readonly hostReceived: readonly string[];
  readonly peerReceived: readonly string[];
  readonly ok: boolean;
  readonly capture?: PlaintextScan & { readonly file: string };
}

export class PairError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PairError';
  }
}

function repoRoot(): string {
  // out/chat/pair.js → repo root; chat/pair.ts (ts-node) → repo root.
  const up2 = path.resolve(__dirname, '..', '..');
  return fs.existsSync(path.join(up2, 'bin', 'vlab.js')) ? up2 : path.resolve(__dirname, '..');
}

function vlab(args: readonly string[], opts: PairOptions): ChildProcess {
  return spawn(process.execPath, [path.join(repoRoot(), 'bin', 'vlab.js'), ...args], { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] });
}

function runVlab(args: readonly string[], opts: PairOptions): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = vlab(args, opts);
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
    child.stdin!.end();
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** Strips "[HH:MM:SS] " so callers compare content. */
function lines(text: string): string[] {
  return text.split('\n').filter((l) => l.length > 0).map((l) => l.replace(/^\[\d\d:\d\d:\d\d\] /, ''));
}

export async function runPair(opts: PairOptions): Promise<PairResult> {
  const log = opts.log ?? (() => undefined);
  const sentence = opts.sentence ?? DEFAULT_SENTENCE;
  const timeoutMs = opts.timeoutMs ?? (opts.guest ? 180_000 : 30_000);
  if (opts.guest) {
    const st = await runVlab(['status', '--json'], opts);
    let state = 'unknown';
    try {
      state = (JSON.parse(st.stdout) as { state?: string }).state ?? 'unknown';
    } catch {
      // fall through with 'unknown'
    }
    if (state !== 'running') throw new PairError(`--guest needs a running lab VM (state: ${state}); start one with: vlab up`);
  }

  // The key must be readable by the other side: in the guest the workspace is shared at the same path
  // (the state folder need not be: VLAB_STATE_DIR may point outside the workspace, e.g. into /tmp,
  // which the guest does not see), so a guest pair's key goes under the workspace's .vlab/chat.
  let keyFile = opts.keyFile;
  let tempDir: string | undefined;
  const peerCrypto = opts.peerCrypto ?? opts.crypto;
  if ((opts.crypto === 'none') !== (peerCrypto === 'none')) throw new PairError('both sides must encrypt, or neither (--crypto none on both)');
  if (opts.crypto !== 'none' && !keyFile) {
    const dir = opts.guest ? path.join(opts.cwd, '.vlab', 'chat') : (tempDir = fs.mkdtempSync(path.join(os.tmpdir(), 'vlab-chat-')));
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    keyFile = path.join(dir, 'pair.key');
    writeKeyFile(keyFile, generatePsk(), true);
  }
  const crypto = setupCrypto(opts.crypto, keyFile);
  let capture: RunningCapture | undefined;
  let guestCapture = false;
  let child: ChildProcess | undefined;
  let timer: NodeJS.Timeout | undefined;
  // Stops the listener if we give up before the peer connects.
  const stopListening = new AbortController();
  const onAbort = (): void => stopListening.abort();
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    let port = 0;
    const accepted = acceptOne('127.0.0.1', 0, (a) => (port = a.port), stopListening.signal);
    accepted.catch(() => undefined); // awaited below; a rejection after we gave up is expected
    while (port === 0) await new Promise((r) => setImmediate(r));
    log(`host: listening on 127.0.0.1:${port}; ${crypto.startupLine}`);

    if (opts.capture) {
      const file = path.resolve(opts.cwd, opts.capture);
      if (opts.guest) {
        const r = await runVlab(['capture', 'start', file], opts);
        if (r.code !== 0) throw new PairError(`vlab capture start failed: ${(r.stderr || r.stdout).trim()}`);
        guestCapture = true;
      } else {
        capture = await startLoopbackCapture(file, port);
      }
      log(`capturing into ${file}`);
    }

    const cryptoArgs = peerCrypto === 'none' ? ['--crypto', 'none'] : ['--crypto', peerCrypto, '--key-file', keyFile!];
    const connectArgs = ['chat', 'connect', `${opts.guest ? GUEST_HOST_ADDRESS : '127.0.0.1'}:${port}`, '--nick', opts.guest ? 'guest' : 'peer', ...cryptoArgs];
    // In the guest the host's root is mounted read-only at /, so the same node binary and repo path work there.
    child = vlab(opts.guest ? ['ssh', '--', process.execPath, path.join(repoRoot(), 'bin', 'vlab.js'), ...connectArgs] : connectArgs, opts);
    let peerOut = '';
    let peerErr = '';
    const peerExit = new Promise<number | null>((resolve) => child!.once('close', (code) => resolve(code)));
    child.stderr!.on('data', (c: Buffer) => (peerErr += c.toString()));
    const peerSaysHost = new Promise<void>((resolve) => {
      child!.stdout!.on('data', (c: Buffer) => {
        peerOut += c.toString();
        if (peerOut.includes(`host says: ${sentence}`)) resolve();
      });
    });
    const peerLine = `${opts.guest ? 'guest' : 'peer'} says: ${sentence}`;
    child.stdin!.write(`${peerLine}\n`);

    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new PairError(`pair did not finish within ${timeoutMs} ms; peer said:\n${peerErr.trim()}`)), timeoutMs);
    });
    const socket = await Promise.race([accepted, timeout, peerExit.then((code) => Promise.reject(new PairError(`the connecting side exited (${code}) before connecting:\n${peerErr.trim()}`)))]);
    const hostIn = new PassThrough();
    const hostOut = new PassThrough();
    const hostErr = new PassThrough();
    let hostText = '';
    let hostErrText = '';
    const hostGotPeer = new Promise<void>((resolve) => {
      hostOut.on('data', (c: Buffer) => {
        hostText += c.toString();
        if (hostText.includes(peerLine)) resolve();
      });
    });
    hostErr.on('data', (c: Buffer) => (hostErrText += c.toString()));
    const hostExit = runChatSession(socket, { role: 'responder', mode: crypto.mode, ...(crypto.key ? { key: crypto.key } : {}), ...(crypto.provider ? { provider: crypto.provider } : {}), nick: 'host', as: 'peer' }, { stdin: hostIn, stdout: hostOut, stderr: hostErr, interactive: false });
    hostIn.write(`host says: ${sentence}\n`);
    const failed = Promise.race([hostExit, peerExit]).then(() => Promise.reject(new PairError(`the chat ended early.\nhost: ${hostErrText.trim()}\npeer: ${peerErr.trim()}`)));
    await Promise.race([Promise.all([hostGotPeer, peerSaysHost]), failed, timeout]);
    failed.catch(() => undefined);
    // Ctrl-D on the connecting side: it sends BYE and both ends finish.
    child.stdin!.end();
    const [hostCode, peerCode] = await Promise.race([Promise.all([hostExit, peerExit]), timeout]);
    hostIn.end();
    const peerCipher = (peerErr.split('\n').find((l) => l.startsWith('cipher:')) ?? 'unknown').trim();
    let scan: PairResult['capture'];
    if (capture || guestCapture) {
      if (capture) await capture.stop();
      else {
        const r = await runVlab(['capture', 'stop'], opts);
        if (r.code !== 0) throw new PairError(`vlab capture stop failed: ${(r.stderr || r.stdout).trim()}`);
        guestCapture = false;
      }
      const file = path.resolve(opts.cwd, opts.capture!);
      scan = { file, ...scanForPlaintext(file, sentence) };
    }
    return {
      hostCipher: crypto.startupLine,
      peerCipher,
      port,
      hostReceived: lines(hostText),
      peerReceived: lines(peerOut),
      ok: hostCode === 0 && peerCode === 0,
      ...(scan ? { capture: scan } : {}),
    };
  } finally {
    clearTimeout(timer);
    stopListening.abort();
    opts.signal?.removeEventListener('abort', onAbort);
    if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    if (capture) await capture.stop();
    if (guestCapture) await runVlab(['capture', 'stop'], opts).catch(() => undefined);
    crypto.close();
    if (tempDir) fs.rmSync(tempDir, { recursive: true, force: true });
  }
}
