import { test, describe, before, after } from 'node:test';
import * as assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { SshError, type SshSession, sshConnectTransport } from '../../../../../extension/lab/guest/ssh';
import { readProcStat } from '../../../../../extension/lab/host/proc';
import { MuxServer } from '../../../../../extension/lab/mux/server';
import { MuxError, connectMux } from '../../../../../extension/lab/mux/client';
import { C_OPEN, C_STDIN, encodeFrame } from '../../../../../extension/lab/mux/frames';
import { makeKeys, freePort, startSshd, type SshdKeys, type RunningSshd } from '../guest/sshd-fixture';

async function rejectsWith(p: Promise<unknown>, kind: SshError['kind']): Promise<void> {
  await assert.rejects(p, (err: unknown) => err instanceof SshError && err.kind === kind);
}

function sink(): { stream: PassThrough; text(): string } {
  const stream = new PassThrough();
  const chunks: Buffer[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c));
  return { stream, text: () => Buffer.concat(chunks).toString('utf8') };
}

/** Connects a raw client and resolves once the mux closed it. */
function closedByMux(socketPath: string, bytes: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = net.connect(socketPath, () => s.write(bytes));
    s.on('error', reject);
    s.resume();
    s.once('close', () => resolve());
  });
}

describe('SSH mux against a real sshd', () => {
  let keys: SshdKeys;
  let sshd: RunningSshd;
  let dir: string;
  let socketPath: string;
  let mux: MuxServer;
  let session: SshSession;
  const logged: string[] = [];
  before(async () => {
    keys = makeKeys();
    sshd = await startSshd(keys, await freePort());
    dir = mkdtempSync(join(tmpdir(), 'vlab-mux-'));
    socketPath = join(dir, 'ssh-mux.sock');
    mux = new MuxServer(await sshConnectTransport(keys.target(sshd.port)), socketPath, { log: (l) => logged.push(l) });
    await mux.start();
    session = await connectMux(socketPath, { pid: process.pid });
  });
  after(async () => {
    session?.close();
    mux?.stop();
    await sshd?.stop();
    keys?.cleanup();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('the socket is created mode 0600', () => {
    assert.equal(statSync(socketPath).mode & 0o777, 0o600);
  });

  test('exit code, stdout and stderr pass through separately', async () => {
    assert.deepEqual(await session.run({ shell: 'echo out; echo err >&2; exit 3' }), { code: 3, stdout: 'out\n', stderr: 'err\n' });
    assert.deepEqual(await session.run(['true']), { code: 0, stdout: '', stderr: '' });
  });

  test('stdin is piped to the command; without stdin it sees EOF', async () => {
    const data = Buffer.alloc(700_000, 'abcdefgh');
    const r = await session.run(['wc', '-c'], { stdin: data });
    assert.equal(r.stdout.trim(), String(data.length));
    const out = sink();
    const res = await session.exec(['tr', 'a-z', 'A-Z'], { stdin: Readable.from(['hello ', 'world']), stdout: out.stream });
    assert.equal(res.code, 0);
    assert.equal(out.text(), 'HELLO WORLD');
    assert.deepEqual(await session.run(['cat'], { timeoutMs: 5000 }), { code: 0, stdout: '', stderr: '' });
  });

  test('large output arrives whole', async () => {
    const r = await session.run(['head', '-c', '3000000', '/dev/zero']);
    assert.equal(r.code, 0);
    assert.equal(r.stdout.length, 3_000_000);
  });

  test('a command killed by a signal reports the signal', async () => {
    assert.deepEqual(await session.exec({ shell: 'kill -TERM $$' }), { code: null, signal: 'SIGTERM' });
  });

  test('pty and interactive shell work, with resize', async () => {
    const out = sink();
    const r = await session.exec({ shell: 'test -t 0 && stty size && echo "$TERM"' }, { pty: { cols: 91, rows: 33, term: 'vt100' }, stdout: out.stream });
    assert.equal(r.code, 0);
    assert.equal(out.text().replace(/\r/g, ''), '33 91\nvt100\n');
    const ch = await session.shell({ cols: 80, rows: 24 });
    const shellOut = sink();
    ch.pipe(shellOut.stream);
    const closed = new Promise<void>((resolve) => ch.once('close', () => resolve()));
    ch.setWindow(40, 100, 0, 0);
    ch.write('stty size; echo marker-$((6*7))\nexit 0\n');
    await closed;
    assert.match(shellOut.text(), /40 100/);
    assert.match(shellOut.text(), /marker-42/);
  });

  test('timeout kills the remote command; the session stays usable', async () => {
    await rejectsWith(session.exec(['sleep', '30'], { timeoutMs: 500 }), 'timeout');
    assert.equal((await session.run(['true'])).code, 0);
  });

  test('commands at once share the one connection (sshd allows 10 sessions per connection by default)', async () => {
    const results = await Promise.all(Array.from({ length: 8 }, (_, i) => session.run(['sh', '-c', `echo ${i}`])));
    assert.deepEqual(results.map((r) => r.stdout.trim()), Array.from({ length: 8 }, (_, i) => String(i)));
  });

  test('hostile clients: bad frames end only their own connection', async () => {
    const oversized = Buffer.alloc(5);
    oversized.writeUInt8(C_STDIN, 0);
    oversized.writeUInt32BE(0xffffffff, 1);
    await closedByMux(socketPath, oversized);
    await closedByMux(socketPath, Buffer.from([0x42, 0, 0, 0, 0]));
    await closedByMux(socketPath, encodeFrame(C_OPEN, Buffer.from('{"kind":"exec"}')));
    await closedByMux(socketPath, encodeFrame(C_STDIN, Buffer.from('x')));
    assert.ok(logged.some((l) => /announces 4294967295 bytes/.test(l)), logged.join('\n'));
    assert.equal((await session.run(['echo', 'still here'])).stdout, 'still here\n');
  });

  test('a client expecting another pid refuses the socket', async () => {
    await assert.rejects(connectMux(socketPath, { pid: process.pid + 100_000 }), (err: unknown) => err instanceof MuxError && /not the lab's mux/.test(err.message));
  });

  test('closing the session fails a running command with kind closed', async () => {
    const s = await connectMux(socketPath, { pid: process.pid });
    const p = s.exec(['sleep', '2']);
    setTimeout(() => s.close(), 200);
    await rejectsWith(p, 'closed');
    await rejectsWith(s.run(['true']), 'closed');
  });

  test('when the SSH connection ends, the mux ends and its sessions close', async () => {
    const s = await connectMux(socketPath, { pid: process.pid });
    const closed = new Promise<void>((resolve) => s.once('close', () => resolve()));
    // Ending the listening sshd leaves its connections up: end the mux's connection (sshd's children) too.
    const parent = sshd.child.pid!;
    const children = readdirSync('/proc').filter((e) => /^\d+$/.test(e) && readProcStat(Number(e))?.ppid === parent).map(Number);
    assert.ok(children.length > 0);
    await sshd.stop();
    for (const pid of children) process.kill(pid, 'SIGTERM');
    await mux.closed;
    await closed;
    await assert.rejects(connectMux(socketPath, { pid: process.pid, timeoutMs: 1000 }));
  });
});
