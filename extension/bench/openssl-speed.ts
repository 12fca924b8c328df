/**
 * `openssl speed` in the guest as a benchmark baseline: the command line for one algorithm, size and
 * process count, and a parser for its machine-readable (`-mr`) output. Pure functions (no VM), so the
 * parser is unit-tested on output captured from the guest's OpenSSL 3.
 */

/** The algorithms `vlab bench e2e` measures (the guest tool's ALG names). */
export const E2E_ALGS = ['aes-256-cbc', 'sha256', 'hmac-sha256'] as const;
export type E2eAlg = (typeof E2E_ALGS)[number];

export function isE2eAlg(s: string): s is E2eAlg {
  return (E2E_ALGS as readonly string[]).includes(s);
}

/** A point's algorithm: schema 1 reports' points have none and are AES-256-CBC. */
export function pointAlg(p: { readonly alg?: E2eAlg }): E2eAlg {
  return p.alg ?? 'aes-256-cbc';
}

/** Human names, as the tables print them. */
export const E2E_ALG_LABELS: Readonly<Record<E2eAlg, string>> = {
  'aes-256-cbc': 'AES-256-CBC',
  sha256: 'SHA-256 (hash-only session)',
  'hmac-sha256': 'HMAC-SHA256 (mac-only session)',
};

/**
 * `openssl speed` for one point. `-elapsed`: wall-clock time like every other point (the default
 * counts the process's user CPU time, which with `-multi` on 2 vCPUs would credit 8 processes with 8
 * CPUs); `-mr`: the machine-readable lines parsed below. `-seconds` takes whole seconds only.
 */
export function opensslSpeedArgs(alg: E2eAlg, size: number, procs: number, seconds: number): string[] {
  if (!Number.isInteger(seconds) || seconds < 1) throw new Error(`openssl speed -seconds takes whole seconds >= 1 (got ${seconds})`);
  return [
    'openssl',
    'speed',
    '-elapsed',
    '-mr',
    ...(procs > 1 ? ['-multi', String(procs)] : []),
    '-seconds',
    String(seconds),
    '-bytes',
    String(size),
    ...(alg === 'hmac-sha256' ? ['-hmac', 'sha256'] : ['-evp', alg]),
  ];
}

export interface OpensslSpeedResult {
  /** Operations of all processes (the `+R` lines' counts). */
  readonly ops: number;
  /** The longest process's measured time, seconds (`+R`). */
  readonly seconds: number;
  /** Processes that reported (`+R` lines). */
  readonly procs: number;
  /** Bytes per second of all processes together (the final `+F` line). */
  readonly bytesPerSec: number;
  readonly opsPerSec: number;
  readonly MBps: number;
}

/**
 * Parses `openssl speed -mr -bytes SIZE` output (stdout and stderr together: OpenSSL 3 prints `+R` on
 * stderr). Lines used:
 *   +R:COUNT:NAME:SECONDS          one per measuring process
 *   +H:SIZE                        the block size
 *   +F:INDEX:NAME:BYTES_PER_SEC    the result; with -multi the parent's own total comes last, after
 *                                  the children's lines it echoes as "Got: +F:... from N"
 * The NAME of the -multi total is not trusted (OpenSSL 3.0 prints "hmac(md5)" for -hmac sha256).
 */
export function parseOpensslSpeed(output: string, size: number): OpensslSpeedResult {
  const lines = output.split(/\r?\n/).map((l) => l.trim());
  let ops = 0;
  let seconds = 0;
  let procs = 0;
  let bytesPerSec: number | undefined;
  let headerSize: number | undefined;
  for (const line of lines) {
    let m = /^\+R:(\d+):[^:]*:(\d+(?:\.\d+)?)$/.exec(line);
    if (m) {
      ops += Number(m[1]);
      seconds = Math.max(seconds, Number(m[2]));
      procs++;
      continue;
    }
    m = /^\+H:(\d+)/.exec(line);
    if (m) {
      headerSize = Number(m[1]);
      continue;
    }
    m = /^\+F:\d+:[^:]*:(\d+(?:\.\d+)?)/.exec(line);
    if (m) bytesPerSec = Number(m[1]);
  }
  const tail = output.trim().split('\n').slice(-3).join(' | ');
  if (bytesPerSec === undefined || procs === 0) throw new Error(`openssl speed gave no result: ${tail || '(no output)'}`);
  if (headerSize !== undefined && headerSize !== size) throw new Error(`openssl speed measured ${headerSize}-byte blocks, expected ${size}`);
  return {
    ops,
    seconds,
    procs,
    bytesPerSec,
    opsPerSec: Math.round((bytesPerSec / size) * 10) / 10,
    MBps: Math.round((bytesPerSec / 1e6) * 1000) / 1000,
  };
}

/** One line of the guest tool's `speed` mode (cryptodev-linux tests/speed style). */
export interface SpeedLine {
  readonly verb: 'Encrypting' | 'Hashing';
  readonly size: number;
  readonly MB: number;
  readonly seconds: number;
  readonly MBps: number;
}

/**
 * Parses `vlab-cryptodev-test speed` output:
 *   "\tEncrypting in chunks of 1024 bytes: done. 12.34 MB in 1.00 secs: 12.34 MB/sec"
 * A "failed: errno N" line is an error.
 */
export function parseSpeedLines(output: string): SpeedLine[] {
  const out: SpeedLine[] = [];
  for (const raw of output.split(/\r?\n/)) {
    const line = raw.trim();
    const m = /^(Encrypting|Hashing) in chunks of (\d+) bytes: done\. (\d+(?:\.\d+)?) MB in (\d+(?:\.\d+)?) secs: (\d+(?:\.\d+)?) MB\/sec$/.exec(line);
    if (m) {
      out.push({ verb: m[1] as SpeedLine['verb'], size: Number(m[2]), MB: Number(m[3]), seconds: Number(m[4]), MBps: Number(m[5]) });
      continue;
    }
    const f = /in chunks of (\d+) bytes: failed: errno (\d+)/.exec(line);
    if (f) throw new Error(`speed at ${f[1]} bytes failed with errno ${f[2]}`);
  }
  return out;
}
