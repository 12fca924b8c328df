/**
 * The API section: what a cryptodev-linux client sees. Known answers, every algorithm family with its
 * CIOCGSESSINFO, random cases recomputed with the host's OpenSSL (node:crypto), errno on bad input and
 * cryptodev-linux's documented behaviour. One SSH round trip for the guest work.
 */
import * as crypto from 'node:crypto';
import type { CheckResult } from './grade-report';
import { CHECKS, type CheckSpec } from './plan';
import { type GradeContext, judged, stepProblem, toolArgv } from './context';
import { runBatch, type StepResult, toolVerdict } from './guest-runner';

const CASES_FILE = '/tmp/vlab-grade-cases.txt';

/** cryptodev-linux cipher ids the random cases use, with their block size. */
const CIPHERS = [
  { id: 11, name: 'cbc', block: 16 },
  { id: 21, name: 'ctr', block: 1 },
  { id: 23, name: 'ecb', block: 16 },
] as const;

export interface RandomCase {
  readonly cipher: (typeof CIPHERS)[number];
  readonly key: Buffer;
  readonly iv: Buffer;
  readonly len: number;
  readonly seed: bigint;
}

/** n cases, 16 B .. 64 KiB log-uniform, every cipher and key size. */
export function randomCases(n: number): RandomCase[] {
  return Array.from({ length: n }, (_, i) => {
    const cipher = CIPHERS[i % CIPHERS.length]!;
    let len = Math.max(16, Math.min(65536, Math.round(16 * 2 ** (Math.random() * 12))));
    if (cipher.block > 1) len -= len % cipher.block;
    return { cipher, key: crypto.randomBytes([16, 24, 32][i % 3]!), iv: crypto.randomBytes(16), len, seed: crypto.randomBytes(8).readBigUInt64LE() };
  });
}

/** The plaintext the guest tool derives: block i = SHA-256(seed u64 LE || i u32 LE). */
function plaintext(len: number, seed: bigint): Buffer {
  const out = Buffer.alloc(len);
  const input = Buffer.alloc(12);
  input.writeBigUInt64LE(seed, 0);
  for (let i = 0; i * 32 < len; i++) {
    input.writeUInt32LE(i, 8);
    crypto.createHash('sha256').update(input).digest().copy(out, i * 32);
  }
  return out;
}

/** SHA-256 of the ciphertext the host's OpenSSL gives for a case. */
export function hostCiphertextHash(c: RandomCase): string {
  const cipher = crypto.createCipheriv(`aes-${c.key.length * 8}-${c.cipher.name}`, c.key, c.cipher.name === 'ecb' ? null : c.iv).setAutoPadding(false);
  const ct = Buffer.concat([cipher.update(plaintext(c.len, c.seed)), cipher.final()]);
  return crypto.createHash('sha256').update(ct).digest('hex');
}

function caseLine(c: RandomCase): string {
  return `${c.cipher.id} ${c.key.toString('hex')} ${c.iv.toString('hex')} ${c.len} ${c.seed}`;
}

/** A tool run judged by its own lines: pass when it finished, exit 0 and no "not ok". */
export function byToolLines(spec: CheckSpec, r: StepResult | undefined, minOk = 1): CheckResult {
  const problem = stepProblem(r);
  if (problem || !r) return judged(spec, false, [problem ?? 'no result', ...(r?.stdout.split('\n').slice(-4) ?? [])], r?.durationMs ?? 0);
  const v = toolVerdict(r.stdout);
  const pass = r.code === 0 && v.notOk.length === 0 && v.ok >= minOk;
  const evidence = pass
    ? [`${v.ok} sub-checks ok`]
    : [...v.notOk, ...(v.notOk.length === 0 ? [`exit ${r.code}, ${v.ok} sub-checks ok (at least ${minOk} expected)`, ...r.stdout.split('\n').slice(-3)] : [])];
  return judged(spec, pass, evidence, r.durationMs);
}

function randomResult(cases: readonly RandomCase[], r: StepResult | undefined): CheckResult {
  const base = byToolLines(CHECKS.apiRandom, r, 0);
  if (base.status !== 'pass' || !r) return base;
  const got = new Map<number, string>();
  for (const m of r.stdout.matchAll(/^ct (\d+) ([0-9a-f]{64})$/gm)) got.set(Number(m[1]), m[2]!);
  const wrong = cases.flatMap((c, i) => {
    const g = got.get(i + 1);
    if (g === hostCiphertextHash(c)) return [];
    return [`case ${i + 1} AES-${c.key.length * 8}-${c.cipher.name.toUpperCase()} ${c.len} B: ${g === undefined ? 'no ciphertext' : 'ciphertext differs from host OpenSSL'}`];
  });
  return judged(CHECKS.apiRandom, wrong.length === 0, wrong.length ? wrong : [`${cases.length} cases equal host OpenSSL (node:crypto)`], r.durationMs);
}

export async function apiSection(ctx: GradeContext): Promise<CheckResult[]> {
  const mac = ctx.backend === 'ts' ? ['--mac'] : [];
  const cases = randomCases(24);
  const put = await ctx.session.run({ shell: `cat > ${CASES_FILE}` }, { stdin: `${cases.map(caseLine).join('\n')}\n`, timeoutMs: 60_000 });
  if (put.code !== 0) throw new Error(`writing the random cases into the guest failed: ${put.stderr.trim()}`);
  ctx.progress('api: known answers, algorithms, random cases, errno, documented behaviour');
  const seed = String(crypto.randomInt(1, 2 ** 31));
  const r = await runBatch(ctx.session, [
    { key: 'kat', cmd: toolArgv(ctx, 'kat', ...mac), timeoutSec: 180 },
    { key: 'algs', cmd: toolArgv(ctx, 'algs', seed), timeoutSec: 240 },
    { key: 'random', cmd: toolArgv(ctx, 'roundtrip', CASES_FILE), timeoutSec: 240 },
    { key: 'errors', cmd: toolArgv(ctx, 'errors', ...mac), timeoutSec: 180 },
    { key: 'cbc', cmd: toolArgv(ctx, 'api-cbc-inplace'), timeoutSec: 120 },
    { key: 'cphash', cmd: toolArgv(ctx, 'api-cphash'), timeoutSec: 120 },
  ]);
  const documented = [r.get('cbc'), r.get('cphash')];
  const docResult = ((): CheckResult => {
    const parts = documented.map((x) => byToolLines(CHECKS.apiDocumented, x));
    const failed = parts.filter((p) => p.status !== 'pass');
    const ms = documented.reduce((n, x) => n + (x?.durationMs ?? 0), 0);
    return judged(CHECKS.apiDocumented, failed.length === 0, failed.length ? failed.flatMap((p) => p.evidence) : parts.flatMap((p) => p.evidence), ms);
  })();
  return [
    byToolLines(CHECKS.apiKat, r.get('kat'), 20),
    { ...byToolLines(CHECKS.apiAlgs, r.get('algs'), 40), evidence: [`seed ${seed}`, ...byToolLines(CHECKS.apiAlgs, r.get('algs'), 40).evidence] },
    randomResult(cases, r.get('random')),
    byToolLines(CHECKS.apiErrors, r.get('errors'), 10),
    docResult,
  ];
}
