/**
 * Packet capture for the "is the wire encrypted?" check: tcpdump on the loopback interface,
 * filtered to one TCP port (host↔host), and a scan of the resulting pcap for plaintext.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';

export class CaptureError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CaptureError';
  }
}

export interface RunningCapture {
  readonly file: string;
  stop(): Promise<void>;
}

/** Starts `tcpdump -i lo` for one port and resolves once it is listening. Needs root (or CAP_NET_RAW). */
export function startLoopbackCapture(file: string, port: number, timeoutMs = 10_000): Promise<RunningCapture> {
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new CaptureError(`bad port ${port}`);
  return new Promise((resolve, reject) => {
    let child: ChildProcess;
    try {
      child = spawn('tcpdump', ['-i', 'lo', '--immediate-mode', '-U', '-n', '-s', '0', '-w', file, `tcp port ${port}`], { stdio: ['ignore', 'ignore', 'pipe'] });
    } catch (err) {
      reject(new CaptureError(`cannot start tcpdump: ${(err as Error).message}`));
      return;
    }
    let stderr = '';
    let settled = false;
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    const timer = setTimeout(() => fail(`tcpdump did not start within ${timeoutMs} ms`), timeoutMs);
    const fail = (why: string): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (child.exitCode === null) child.kill('SIGTERM');
      reject(new CaptureError(`${why}${stderr ? `: ${stderr.trim()}` : ''}${process.getuid?.() !== 0 ? ' (capturing on lo needs root)' : ''}`));
    };
    child.once('error', (err) => fail(`cannot run tcpdump (${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'not installed; apt-get install tcpdump' : err.message})`));
    child.once('exit', (code) => fail(`tcpdump exited with code ${code}`));
    child.stderr!.on('data', (c: Buffer) => {
      stderr += c.toString();
      if (stderr.length > 8192) stderr = stderr.slice(-8192);
      if (!settled && /listening on/.test(stderr)) {
        settled = true;
        clearTimeout(timer);
        resolve({
          file,
          async stop() {
            if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM'); // our own child, by its pid
            await exited;
          },
        });
      }
    });
  });
}

export interface PlaintextScan {
  readonly bytes: number;
  /** The whole sentence appears somewhere in the file. */
  readonly sentenceVisible: boolean;
  /** Length of the longest run of the sentence's bytes found in the file (0 if none ≥ minRun). */
  readonly longestRun: number;
}

/** Looks for the sentence, and for any `minRun`-byte run of it, anywhere in the capture file. */
export function scanForPlaintext(file: string, sentence: string, minRun = 8): PlaintextScan {
  const data = fs.readFileSync(file);
  const needle = Buffer.from(sentence, 'utf8');
  let longest = 0;
  for (let len = minRun; len <= needle.length; len++) {
    let found = false;
    for (let i = 0; i + len <= needle.length && !found; i++) found = data.includes(needle.subarray(i, i + len));
    if (!found) break;
    longest = len;
  }
  return { bytes: data.length, sentenceVisible: data.includes(needle), longestRun: longest };
}
