import { test, describe, before, after } from 'node:test';
import * as assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { sshConnect, SshError, SshSession, parseOpenSshPublicKey } from '../../../../../extension/lab/guest/ssh';
import { makeKeys, freePort, startSshd, type SshdKeys, type RunningSshd } from './sshd-fixture';

async function rejectsWith(p: Promise<unknown>, kind: SshError['kind']): Promise<SshError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof SshError, `expected SshError, got ${String(err)}`);
    assert.equal(err.kind, kind, `kind: ${err.message}`);
    return err;
  }
  assert.fail(`expected an SshError of kind ${kind}, but the promise resolved`);
}

function sink(): { stream: PassThrough; text(): string } {
  const stream = new PassThrough();
  const chunks: Buffer[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c));
  return { stream, text: () => Buffer.concat(chunks).toString('utf8') };
}

describe('SSH client against a real sshd', () => {
  let keys: SshdKeys;
  let sshd: RunningSshd;
  let session: SshSession;
  before(async () => {
    keys = makeKeys();
    sshd = await startSshd(keys, await freePort());
    session = await sshConnect(keys.target(sshd.port));
  });
  after(async () => {
    session?.close();
    await sshd?.stop();
    keys?.cleanup();
  });

  test('run() returns exit code, stdout and stderr separately', async () => {
    const r = await session.run({ shell: 'echo out; echo err >&2; exit 3' });
    assert.deepEqual(r, { code: 3, stdout: 'out\n', stderr: 'err\n' });
  });

  test('argv is passed verbatim through the remote shell', async () => {
    const args = ["it's", '$HOME', '`id`', 'a b', '', '*', '"q"', 'line\nbreak', '; exit 9'];
    const r = await session.run(['printf', '%s|', ...args]);
    assert.equal(r.code, 0);
    assert.equal(r.stdout, args.map((a) => `${a}|`).join(''));
  });

  test('stdin is piped to the command', async () => {
    const data = Buffer.alloc(300_000, 'abcdefgh');
    const r = await session.run(['wc', '-c'], { stdin: data });
    assert.equal(r.stdout.trim(), String(data.length));
    const out = sink();
    const res = await session.exec(['tr', 'a-z', 'A-Z'], { stdin: Readable.from(['hello ', 'world']), stdout: out.stream });
    assert.equal(res.code, 0);
    assert.equal(out.text(), 'HELLO WORLD');
  });

  test('without stdin the command sees EOF instead of hanging', async () => {
    const r = await session.run(['cat'], { timeoutMs: 5000 });
    assert.deepEqual(r, { code: 0, stdout: '', stderr: '' });
  });

  test('a command killed by a signal reports the signal', async () => {
    const r = await session.exec({ shell: 'kill -TERM $$' });
    assert.deepEqual(r, { code: null, signal: 'SIGTERM' });
  });

  test('pty: the command sees a terminal of the requested size', async () => {
    const out = sink();
    const r = await session.exec({ shell: 'test -t 0 && stty size && echo "$TERM"' }, { pty: { cols: 91, rows: 33, term: 'vt100' }, stdout: out.stream });
    assert.equal(r.code, 0);
    assert.equal(out.text().replace(/\r/g, ''), '33 91\nvt100\n');
  });

  test('interactive shell on a pty', async () => {
    const ch = await session.shell({ cols: 80, rows: 24 });
    const out = sink();
    ch.pipe(out.stream);
    const closed = new Promise<void>((r) => ch.once('close', () => r()));
    ch.write('echo marker-$((6*7))\nexit 0\n');
    await closed;
    assert.match(out.text(), /marker-42/);
  });

  test('timeout kills the remote command and its children', async () => {
    const pidFile = join(keys.dir, 'child.pid');
    const started = Date.now();
    await rejectsWith(session.exec(['sh', '-c', 'sleep 30 & echo $! > "$1"; wait', 'sh', pidFile], { timeoutMs: 500 }), 'timeout');
    assert.ok(Date.now() - started < 10_000);
    const pid = Number(readFileSync(pidFile, 'utf8'));
    assert.ok(pid > 0);
    for (let i = 0; i < 100 && existsSync(`/proc/${pid}`); i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(existsSync(`/proc/${pid}`), false, 'the background sleep was killed too');
    // the session is still usable
    assert.equal((await session.run(['true'])).code, 0);
  });

  test('abort cancels a running command', async () => {
    const ac = new AbortController();
    const p = session.exec(['sleep', '30'], { signal: ac.signal });
    setTimeout(() => ac.abort(), 200);
    await rejectsWith(p, 'closed');
  });

  test('run() refuses output beyond its cap', async () => {
    await rejectsWith(session.run(['head', '-c', '100000', '/dev/zero'], { maxOutputBytes: 1000 }), 'exec');
  });

  test('a wrong pinned host key is refused', async () => {
    await rejectsWith(sshConnect({ ...keys.target(sshd.port), hostKey: keys.otherHostKey }), 'hostkey');
  });

  test('a wrong client key is refused as auth', async () => {
    const other = makeKeys();
    try {
      await rejectsWith(sshConnect({ ...keys.target(sshd.port), privateKey: other.clientKey }), 'auth');
    } finally {
      other.cleanup();
    }
  });

  test('closing the session fails a running command with kind closed', async () => {
    const s = await sshConnect(keys.target(sshd.port));
    const p = s.exec(['sleep', '2']); // short: without a pty, sshd lets it finish after the client leaves
    setTimeout(() => s.close(), 200);
    await rejectsWith(p, 'closed');
    await rejectsWith(s.run(['true']), 'closed');
  });
});

describe('SSH connect retries while the server is not there yet', () => {
  let keys: SshdKeys;
  before(() => { keys = makeKeys(); });
  after(() => keys.cleanup());

  test('nothing listening: one attempt fails with kind connect', async () => {
    await rejectsWith(sshConnect(keys.target(await freePort())), 'connect');
  });

  test('retries until sshd appears, reporting each failed attempt', async () => {
    const port = await freePort();
    const attempts: number[] = [];
    let sshd: RunningSshd | undefined;
    const starting = new Promise<void>((resolve, reject) => setTimeout(() => {
      startSshd(keys, port).then((s) => { sshd = s; resolve(); }, reject);
    }, 800));
    starting.catch(() => undefined); // awaited below; keeps an early failure from being "unhandled"
    try {
      const session = await sshConnect(keys.target(port), { retryUntilMs: 15_000, onAttempt: (n, err) => {
        attempts.push(n);
        assert.ok(err instanceof SshError && err.kind === 'connect', String(err));
      } });
      await starting;
      assert.ok(attempts.length >= 1, 'at least one attempt failed before sshd listened');
      assert.deepEqual(attempts, attempts.map((_, i) => i + 1));
      assert.equal((await session.run(['echo', 'up'])).stdout, 'up\n');
      session.close();
    } finally {
      await starting.catch(() => undefined);
      await sshd?.stop();
    }
  });

  test('gives up at the deadline', async () => {
    const started = Date.now();
    await rejectsWith(sshConnect(keys.target(await freePort()), { retryUntilMs: 700 }), 'connect');
    assert.ok(Date.now() - started >= 400, 'it retried');
  });

  test('abort stops the retry loop', async () => {
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 300);
    await rejectsWith(sshConnect(keys.target(await freePort()), { retryUntilMs: 60_000, signal: ac.signal }), 'closed');
  });
});

test('parseOpenSshPublicKey rejects malformed and mismatched keys', () => {
  const keys = makeKeys();
  try {
    const { type, blob } = parseOpenSshPublicKey(keys.hostKey);
    assert.equal(type, 'ssh-ed25519');
    assert.equal(blob.length, 51);
    assert.throws(() => parseOpenSshPublicKey('ssh-ed25519'), TypeError);
    assert.throws(() => parseOpenSshPublicKey('ssh-rsa ' + keys.hostKey.split(' ')[1]), /does not match/);
    assert.throws(() => parseOpenSshPublicKey('ssh-ed25519 !!!'), TypeError);
  } finally {
    keys.cleanup();
  }
});
