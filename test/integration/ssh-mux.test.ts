// One VM boot: the SSH mux end to end. `vlab ssh -- CMD` as a real process through the mux (its quick
// path), through the full CLI with the mux, and with a connection of its own (VLAB_SSH_MUX=off), each
// against `node -e 0` measured in the same run (times are reported, never asserted); exit codes, stdout,
// stderr and stdin pass through; `vlab down` leaves no mux behind.
import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Lab } from '../../extension/lab/lab';
import { isAlive } from '../../extension/lab/host/proc';
import { processesMentioning, runCli, tempWorkspace } from './lab-helpers';

// The mux is opt-in (VLAB_SSH_MUX=on): this file turns it on for its lab and its commands.
process.env.VLAB_SSH_MUX = 'on';
const ws = tempWorkspace('vlab-mux-');
const lab = Lab.forWorkspace(ws.dir, { env: {} });
const vlab = join(__dirname, '..', '..', '..', 'bin', 'vlab.js');

interface Run {
  code: number | null;
  out: string;
  err: string;
  sec: number;
}

function run(args: string[], env: NodeJS.ProcessEnv = {}, stdin?: string): Promise<Run> {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const child = spawn(process.execPath, args, { cwd: ws.dir, env: { ...process.env, VLAB_STATE_DIR: '', ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, out, err, sec: Number(process.hrtime.bigint() - t0) / 1e9 }));
    child.stdin.end(stdin ?? '');
  });
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const loadavg = (): string => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');

before(async () => {
  const r = await runCli(['up', '--backend', 'builtin', '--guest-driver', 'none', '--timings'], ws.dir);
  assert.equal(r.code, 0, `vlab up failed:\n${r.err}`);
  console.log(r.out.trim());
});

after(async () => {
  await lab.down().catch(() => undefined);
  ws.cleanup();
});

test('up starts the mux: a 0600 socket in the 0700 state folder, its pid in the status', async () => {
  const s = await lab.status();
  assert.ok(s.ssh.muxPid && isAlive(s.ssh.muxPid), JSON.stringify(s.ssh));
  assert.equal((await import('node:fs')).statSync(lab.paths.sshMuxSocket).mode & 0o777, 0o600);
  assert.equal((await import('node:fs')).statSync(lab.paths.stateDir).mode & 0o777, 0o700);
  assert.ok(s.timings && s.timings.totalSec > 0 && typeof s.timings.muxSec === 'number', JSON.stringify(s.timings));
});

test('exit codes, stdout, stderr and stdin pass through the mux as they do directly', async () => {
  for (const env of [{}, { VLAB_SSH_MUX: 'off' }]) {
    const r = await run([vlab, 'ssh', '--', 'sh', '-c', 'echo out; echo err >&2; exit 7'], env);
    assert.deepEqual({ code: r.code, out: r.out, err: r.err }, { code: 7, out: 'out\n', err: 'err\n' }, JSON.stringify(env));
    const t = await run([vlab, 'ssh', '--', 'tr', 'a-z', 'A-Z'], env, 'hello mux\n');
    assert.deepEqual({ code: t.code, out: t.out }, { code: 0, out: 'HELLO MUX\n' });
    const k = await run([vlab, 'ssh', '--', 'sh', '-c', 'kill -TERM $$'], env);
    assert.equal(k.code, 255, 'killed by a signal: 255, like ssh(1)');
  }
});

test('vlab ssh -- true: through the mux vs a connection of its own, against node -e 0 (reported)', async () => {
  const rounds = 5;
  const times: Record<string, number[]> = { node: [], muxQuick: [], muxFullCli: [], direct: [] };
  for (let i = 0; i < rounds; i++) {
    times.node!.push((await run(['-e', '0'])).sec);
    const quick = await run([vlab, 'ssh', '--', 'true']);
    assert.equal(quick.code, 0, quick.err);
    times.muxQuick!.push(quick.sec);
    // The full CLI (every command loaded) still over the mux: `vlab ssh true` without "--" is refused, so
    // the quick path is bypassed through node's -e running main() directly.
    const full = await run(['-e', `require(${JSON.stringify(join(__dirname, '..', '..', 'extension', 'cli', 'vlab.js'))}).main(['ssh','--','true']).then((c)=>process.exit(c))`]);
    assert.equal(full.code, 0, full.err);
    times.muxFullCli!.push(full.sec);
    const direct = await run([vlab, 'ssh', '--', 'true'], { VLAB_SSH_MUX: 'off' });
    assert.equal(direct.code, 0, direct.err);
    times.direct!.push(direct.sec);
  }
  const m = Object.fromEntries(Object.entries(times).map(([k, v]) => [k, median(v)]));
  console.log(`vlab ssh -- true, median of ${rounds} (load average ${loadavg()}): node -e 0 ${m.node!.toFixed(2)} s; ` +
    `mux quick path ${m.muxQuick!.toFixed(2)} s (${(m.muxQuick! / m.node!).toFixed(1)}x node); mux, full CLI ${m.muxFullCli!.toFixed(2)} s; ` +
    `direct ${m.direct!.toFixed(2)} s (${(m.direct! / m.muxQuick!).toFixed(1)}x the mux)`);
  console.log(JSON.stringify(times));
});

test('vlab down ends the mux and removes its socket', async () => {
  const pid = (await lab.status()).ssh.muxPid!;
  const r = await runCli(['down'], ws.dir);
  assert.equal(r.code, 0, r.err);
  assert.equal(isAlive(pid), false);
  assert.equal(existsSync(lab.paths.sshMuxSocket), false);
  assert.deepEqual(processesMentioning(lab.paths.stateDir), []);
});
