/**
 * The child processes `vlab bench backend` (and the tests that need a real back-end) run: `vlab
 * backend` itself, a telemetry subscriber in its own process, and the scheduler's accounting of a
 * process's main thread (/proc/PID/schedstat).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { EngineName } from '../crypto/engine';

/**
 * A subscriber in its own process (like the extension host), switched on and off through stdin so the
 * back-end is measured with and without it in alternating slices. Every line is parsed, as the view does.
 */
const SUBSCRIBER_SOURCE = `
const net = require('node:net');
const [socketPath, intervalMs] = process.argv.slice(1);
let sock; let lines = 0; let buf = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (cmd) => {
  for (const c of cmd.split('\\n').filter(Boolean)) {
    if (c === 'on' && !sock) {
      sock = net.connect(socketPath, () => sock.write(JSON.stringify({ type: 'subscribe', intervalMs: Number(intervalMs) }) + '\\n'));
      sock.setEncoding('utf8');
      sock.on('data', (d) => { buf += d; let i; while ((i = buf.indexOf('\\n')) >= 0) { JSON.parse(buf.slice(0, i)); buf = buf.slice(i + 1); lines++; } });
      sock.on('error', (e) => { process.stderr.write(String(e)); process.exit(1); });
    } else if (c === 'off' && sock) { sock.destroy(); sock = undefined; buf = ''; }
    else if (c === 'count') process.stdout.write(lines + '\\n');
  }
});
process.stdin.on('end', () => process.exit(0));
`;

/** Starts the subscriber on `telemetrySocket`: stdin takes "on", "off" and "count" lines; "count" answers on stdout. */
export function spawnTelemetrySubscriber(telemetrySocket: string, intervalMs: number): ChildProcess {
  return spawn(process.execPath, ['-e', SUBSCRIBER_SOURCE, telemetrySocket, String(intervalMs)], { stdio: ['pipe', 'pipe', 'inherit'] });
}

/** Waits for the child's own "telemetry on" line, logged once both sockets listen (a socket file that exists proves nothing). */
async function waitForListening(child: ChildProcess, output: () => string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!/ telemetry on /.test(output())) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`back-end exited with ${child.exitCode ?? child.signalCode} before listening: ${output().trim().split('\n').pop() ?? ''}`);
    if (Date.now() > deadline) throw new Error('back-end did not start listening');
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Spawns `vlab backend` as a child (the way the lab does) and returns it with a cleanup. */
export async function spawnBackend(engine: EngineName | 'auto', dir: string, extraArgs: readonly string[] = []): Promise<{ child: ChildProcess; socket: string; telemetry: string; stop: () => Promise<void>; output: () => string }> {
  const socket = path.join(dir, 'vhost-user.sock');
  const telemetry = path.join(dir, 'telemetry.sock');
  const bin = path.resolve(__dirname, '..', '..', '..', 'bin', 'vlab.js');
  // VLAB_BACKEND_NODE_ARGS (e.g. "--cpu-prof") profiles the back-end under load.
  const nodeArgs = (process.env.VLAB_BACKEND_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const child = spawn(process.execPath, [...nodeArgs, bin, 'backend', '--socket', socket, '--telemetry', telemetry, '--engine', engine, ...extraArgs], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  try {
    // Generous: the whole CLI loads first, which took 12 s in a TCG guest on a loaded host (the driver
    // suite runs this bench there, on the guest's /dev/crypto).
    await waitForListening(child, () => out, 60_000);
  } catch (err) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    throw err;
  }
  const stop = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    child.kill('SIGTERM');
    const t = setTimeout(() => child.kill('SIGKILL'), 3000);
    await exited;
    clearTimeout(t);
  };
  return { child, socket, telemetry, stop, output: () => out };
}

/** Running and run-queue-waiting nanoseconds of a process's main thread, or undefined where schedstat is missing. */
export function schedstat(pid: number | 'self'): { runNs: number; waitNs: number; timeslices: number } | undefined {
  try {
    const [run, wait, slices] = fs.readFileSync(`/proc/${pid}/schedstat`, 'latin1').split(' ');
    return { runNs: Number(run), waitNs: Number(wait), timeslices: Number(slices) };
  } catch {
    return undefined;
  }
}
