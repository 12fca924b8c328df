/**
 * Debugging the guest kernel with real parts and ONE boot: `vlab up --gdb` (QEMU's gdbstub, nokaslr),
 * a guest program's CIOCCRYPT stopped at a breakpoint in our driver by `vlab gdb --batch` (a local read
 * there equals the length the program sent; the call then succeeds with the right ciphertext), the same
 * after `vlab driver reload`, `vlab dump`, then a guest panic (sysrq-c): QEMU pauses, the lab writes a
 * crash dump before ending it, and `vlab gdb --core` shows a backtrace with kernel symbols.
 */
import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as crypto from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { GUEST_TOOL_PATH, buildDriver, pushGuestTool } from '../../extension/lab/driver/driver';
import type { Lab, LabStatus } from '../../extension/lab/lab';
import { labWithDriver } from '../../extension/lab/with-driver';
import { processesMentioning, runCli, tempWorkspace } from './lab-helpers';

const REPO = join(__dirname, '..', '..', '..');
const ws = tempWorkspace('vlab-debug-');
let lab: Lab;
const measured: Record<string, number | string> = {};
const t0 = Date.now();
const since = (t: number): number => Math.round((Date.now() - t) / 100) / 10;

before(async () => {
  lab = labWithDriver(ws.dir, { env: {} });
});

after(async () => {
  await lab.down().catch(() => undefined);
  measured.totalSec = since(t0);
  console.log(`measured: ${JSON.stringify(measured)}`);
  ws.cleanup();
});

/** The ciphertext hash the guest tool's dbg-crypt prints (AES-128-CBC, key 00..0f, IV 0, seed 7). */
function expectedHash(len: number): string {
  const pt = Buffer.alloc(len);
  const input = Buffer.alloc(12);
  input.writeBigUInt64LE(7n, 0);
  for (let i = 0; i * 32 < len; i++) {
    input.writeUInt32LE(i, 8);
    crypto.createHash('sha256').update(input).digest().copy(pt, i * 32);
  }
  const c = crypto.createCipheriv('aes-128-cbc', Buffer.from([...Array(16).keys()]), Buffer.alloc(16)).setAutoPadding(false);
  return crypto.createHash('sha256').update(Buffer.concat([c.update(pt), c.final()])).digest('hex');
}

/** `vlab ARGS` as its own process (gdb's stdio is the CLI's; in-process capture would mix with the test's). */
function vlabChild(args: string[]): { output: () => string; exited: Promise<number> } {
  const child = spawn(process.execPath, [join(REPO, 'bin', 'vlab.js'), ...args], { cwd: ws.dir, env: { ...process.env, VLAB_STATE_DIR: '' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr.on('data', (c: Buffer) => (out += c.toString()));
  const exited = new Promise<number>((resolve) => child.on('close', (code) => resolve(code ?? 128)));
  return { output: () => out, exited };
}

/**
 * One round: the guest program opens a session and waits for its go-file (in the workspace, which the
 * guest sees at the same path); `vlab gdb --batch` attaches, sets the breakpoint, creates the go-file
 * (gdb's `shell`, while the guest is still stopped) and continues; the breakpoint stops the call, gdb
 * prints the request's length and a backtrace and detaches; the program completes.
 */
async function breakpointRound(len: number): Promise<{ gdb: string; program: string; text: string }> {
  const session = await lab.ssh();
  try {
    const text = (await session.run(['cat', '/sys/module/vlab_cryptodev/sections/.text'])).stdout.trim();
    let program = '';
    const sink = new PassThrough();
    sink.on('data', (c: Buffer) => (program += c.toString()));
    const go = join(ws.dir, `dbg-go-${len}`);
    const run = session.exec({ shell: `rm -f ${go}; ${GUEST_TOOL_PATH} dbg-crypt ${len} ${go}` }, { stdout: sink, stderr: sink, timeoutMs: 240_000 });
    run.catch(() => undefined); // awaited below; a failure before that is reported there
    for (let i = 0; !program.includes('dbg-crypt ready'); i++) {
      assert.ok(i < 300, `the guest program did not get ready: ${program}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const t = Date.now();
    const gdb = vlabChild(['gdb', '--batch', '-ex', 'break vc_crypt', '-ex', `shell touch ${go}`, '-ex', 'continue', '-ex', 'print cop->len', '-ex', 'bt', '-ex', 'info args']);
    const code = await gdb.exited;
    measured[`gdb${len}.totalSec`] = since(t);
    const res = await run;
    assert.equal(code, 0, gdb.output());
    assert.equal(res.code, 0, program);
    // The module symbols went where the guest says the module is now.
    assert.match(gdb.output(), new RegExp(`vlab_cryptodev at ${text}\\b`));
    measured[`gdb${len}.moduleText`] = text;
    return { gdb: gdb.output(), program, text };
  } finally {
    session.close();
  }
}

test('vlab up --gdb: gdbstub on loopback, shown by vlab status; nokaslr', { timeout: 300_000 }, async () => {
  const t = Date.now();
  const up = await runCli(['up', '--gdb', '--backend', 'builtin', '--memory', '512'], ws.dir);
  assert.equal(up.code, 0, up.err);
  measured.upSec = since(t);
  assert.match(up.out, /gdbstub 127\.0\.0\.1:\d+/);
  const st = await runCli(['status', '--json'], ws.dir);
  const s = JSON.parse(st.out) as LabStatus;
  assert.equal(s.gdb?.host, '127.0.0.1');
  assert.ok(Number.isInteger(s.gdb?.port) && s.gdb!.port !== s.ssh.port);
  const text = await runCli(['status'], ws.dir);
  assert.match(text.out, new RegExp(`^gdb +127\\.0\\.0\\.1:${s.gdb!.port} \\(vlab gdb\\)`, 'm'));
  const cmdline = readFileSync(`/proc/${s.qemu.pid}/cmdline`, 'utf8').split('\0');
  assert.equal(cmdline[cmdline.indexOf('-gdb') + 1], `tcp:127.0.0.1:${s.gdb!.port}`);
  const session = await lab.ssh();
  try {
    const r = await session.run({ shell: 'cat /proc/cmdline; grep -m1 " _text$" /proc/kallsyms' });
    assert.match(r.stdout, /\bnokaslr\b/);
    assert.match(r.stdout, /^ffffffff81000000 T _text$/m, 'nokaslr: the kernel at its link address');
    await pushGuestTool(session, await buildDriver(lab));
  } finally {
    session.close();
  }
});

test('vlab gdb --batch: a breakpoint in the driver stops the ioctl, a local equals the length sent, the call then succeeds', { timeout: 300_000 }, async () => {
  const { gdb, program, text } = await breakpointRound(4096);
  firstText = text;
  assert.match(gdb, /hit Breakpoint 1(?:\.\d+)?, vc_crypt \(/);
  assert.match(gdb, /vc_chardev\.c:\d+/);
  assert.match(gdb, /^\$1 = 4096$/m);
  assert.match(gdb, /#1 .*vc_ioctl/);
  assert.match(gdb, /\[Inferior 1 \(process \d+\) detached\]/);
  assert.match(program, new RegExp(`dbg-crypt len 4096 errno 0 sha256 ${expectedHash(4096)}`));
});

let firstText = '';
let lastText = '';

test('after vlab driver reload the same breakpoint is hit again, at the module\'s new address (sections read fresh)', { timeout: 300_000 }, async () => {
  // A small module takes the freed slot between unload and load, so the reload puts ours elsewhere.
  const unload = await runCli(['driver', 'unload'], ws.dir);
  assert.equal(unload.code, 0, unload.err);
  const session = await lab.ssh();
  try {
    const r = await session.run(['modprobe', 'crc7']);
    assert.equal(r.code, 0, r.stderr);
  } finally {
    session.close();
  }
  const reload = await runCli(['driver', 'reload'], ws.dir);
  assert.equal(reload.code, 0, reload.err);
  const { gdb, program, text } = await breakpointRound(8192);
  assert.notEqual(text, firstText, 'the module moved');
  lastText = text;
  assert.match(gdb, /vc_crypt \(.*\) at .*vc_chardev\.c:\d+/);
  assert.match(gdb, /^\$1 = 8192$/m);
  assert.match(program, new RegExp(`dbg-crypt len 8192 errno 0 sha256 ${expectedHash(8192)}`));
});

test('vlab dump writes an ELF core next to the console tail and says how to open it', { timeout: 300_000 }, async () => {
  const file = join(ws.dir, 'manual.elf');
  const t = Date.now();
  const d = await runCli(['dump', file], ws.dir);
  assert.equal(d.code, 0, d.err);
  measured.manualDumpSec = since(t);
  assert.match(d.out, new RegExp(`vlab gdb --core ${file}`));
  assert.equal(readFileSync(file).subarray(0, 4).toString('latin1'), '\x7fELF');
  assert.ok(existsSync(`${file}.console.txt`) && existsSync(`${file}.vlab.json`) && existsSync(`${file}.symbols.json`));
  const core = await runCli(['gdb', '--core', file, '--batch', '-ex', 'print sizeof(struct vc_dev)', '-ex', 'x/s (char *)&linux_banner'], ws.dir);
  assert.equal(core.code, 0, core.err);
  assert.match(core.out, /^\$1 = \d+$/m, 'the module DWARF is loaded');
  assert.match(core.out, /<linux_banner>:\s+"Linux version /, 'kernel memory reads through the indexed core');
  const s = await lab.status();
  assert.equal(s.state, 'running', 'the guest keeps running after a manual dump');
});

test('a guest panic pauses QEMU; the lab writes a crash dump, then ends QEMU; vlab gdb --core shows a backtrace with kernel symbols', { timeout: 300_000 }, async () => {
  const before = await lab.status();
  const session = await lab.ssh();
  try {
    await session.run({ shell: '(sleep 1; echo c > /proc/sysrq-trigger) </dev/null >/dev/null 2>&1 &' });
  } finally {
    session.close();
  }
  await new Promise((r) => setTimeout(r, 4000));
  assert.ok(existsSync(`/proc/${before.qemu.pid}`), 'QEMU is kept (paused) after the panic');
  const t = Date.now();
  let s: LabStatus | undefined;
  for (let i = 0; i < 60; i++) {
    const st = await runCli(['status', '--json'], ws.dir);
    s = JSON.parse(st.out) as LabStatus;
    if (s.state !== 'running') break;
    await new Promise((r) => setTimeout(r, 1000));
  }
  measured.panicDumpSec = since(t);
  assert.equal(s?.state, 'failed');
  assert.ok(s?.crashDump && existsSync(s.crashDump), JSON.stringify(s));
  assert.match(s.reason ?? '', /guest kernel panicked: Kernel panic - not syncing: sysrq triggered crash; crash dump: /);
  assert.match(readFileSync(`${s.crashDump}.console.txt`, 'utf8'), /sysrq triggered crash/);
  assert.deepEqual(processesMentioning(lab.paths.stateDir), [], 'QEMU was ended after the dump');
  const core = await runCli(['gdb', '--core', s.crashDump, '--batch', '-ex', 'thread apply all bt'], ws.dir);
  assert.equal(core.code, 0, core.err);
  assert.match(core.err, new RegExp(`vlab_cryptodev at ${lastText}\\b`), 'the module where the last snapshot saw it');
  const frames = [...core.out.matchAll(/^#0 +0x[0-9a-f]+ in (\w+) \(\)/gm)].map((m) => m[1]!);
  measured.coreFrames = frames.join(',');
  assert.ok(frames.length > 0, core.out);
  const text = await runCli(['status'], ws.dir);
  assert.match(text.out, new RegExp(`^dump +${s.crashDump}`, 'm'));
  const down = await runCli(['down'], ws.dir);
  assert.equal(down.code, 0, down.err);
});
