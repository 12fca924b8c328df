import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PassThrough } from 'node:stream';
import { main } from '../../../extension/cli/vlab';
import { type KeySource, readKeyFile } from '../../../chat/keys';
import { capture } from './helpers';

async function vlab(args: string[], stdinText?: string): Promise<{ code: number; out: string; err: string }> {
  const out = capture();
  const err = capture();
  const stdin = new PassThrough();
  if (stdinText !== undefined) stdin.end(stdinText);
  const code = await main(args, { stdout: out.stream, stderr: err.stream, stdin });
  return { code, out: out.text(), err: err.text() };
}

test('keygen writes a 0600 key file and refuses to overwrite it', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vlab-keygen-'));
  try {
    const f = path.join(dir, 'k');
    const r = await vlab(['chat', 'keygen', f]);
    assert.equal(r.code, 0, r.err);
    assert.equal(fs.statSync(f).mode & 0o777, 0o600);
    assert.equal(readKeyFile(f).kind, 'file');
    assert.equal(readKeyFile(f).pskFor(Buffer.alloc(16)).length, 32);
    assert.equal((await vlab(['chat', 'keygen', f])).code, 1);
    const before = fs.readFileSync(f, 'utf8');
    assert.equal((await vlab(['chat', 'keygen', f, '--force'])).code, 0);
    assert.notEqual(fs.readFileSync(f, 'utf8'), before, 'a fresh random key');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('keygen --passphrase-stdin: a passphrase file; the same phrase and salt give the same key, another salt or phrase another key', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vlab-keygen-'));
  try {
    const [a, b, c] = ['a', 'b', 'c'].map((n) => path.join(dir, n)) as [string, string, string];
    assert.equal((await vlab(['chat', 'keygen', a, '--passphrase-stdin'], 'correct horse battery\n')).code, 0);
    assert.equal((await vlab(['chat', 'keygen', b, '--passphrase-stdin'], 'correct horse battery\n')).code, 0);
    assert.equal((await vlab(['chat', 'keygen', c, '--passphrase-stdin'], 'another phrase here\n')).code, 0);
    const [ka, kb, kc] = [a, b, c].map(readKeyFile) as [KeySource, KeySource, KeySource];
    assert.equal(ka.kind, 'passphrase');
    assert.equal(fs.statSync(a).mode & 0o777, 0o600);
    assert.notDeepEqual(ka.salt, kb.salt, 'each loaded passphrase serves under its own random salt');
    const salt = Buffer.alloc(16, 5);
    assert.deepEqual(ka.pskFor(salt), kb.pskFor(salt));
    assert.notDeepEqual(ka.pskFor(salt), ka.pskFor(Buffer.alloc(16, 6)));
    assert.notDeepEqual(ka.pskFor(salt), kc.pskFor(salt));
    const short = await vlab(['chat', 'keygen', path.join(dir, 'd'), '--passphrase-stdin'], 'short\n');
    assert.equal(short.code, 2);
    assert.match(short.err, /at least 8 characters/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('usage errors are clear: encryption without a key, bad --crypto, bad address, bad key file', async () => {
  let r = await vlab(['chat', 'listen', '--port', '0', '--crypto', 'software']);
  assert.equal(r.code, 2);
  assert.match(r.err, /--crypto software needs --key-file FILE/);
  r = await vlab(['chat', 'connect', '127.0.0.1:1', '--crypto', 'rot13']);
  assert.equal(r.code, 2);
  assert.match(r.err, /--crypto must be one of none, cryptodev, software, auto/);
  r = await vlab(['chat', 'connect', 'example.com:80', '--crypto', 'none']);
  assert.equal(r.code, 1);
  assert.match(r.err, /address example.com is not allowed/);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vlab-keybad-'));
  try {
    fs.writeFileSync(path.join(dir, 'k'), 'not a key\n');
    r = await vlab(['chat', 'connect', '127.0.0.1:1', '--key-file', path.join(dir, 'k')]);
    assert.equal(r.code, 2);
    assert.match(r.err, /expected one line of 64 hex digits/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('chat server still accepts --max-pending-per-address (scripts keep working) and says it is ignored', async () => {
  // --max-queue 1 stops the command right after option parsing, before it listens.
  const r = await vlab(['chat', 'server', '--port', '0', '--max-pending-per-address', '4', '--max-queue', '1']);
  assert.equal(r.code, 2);
  assert.match(r.err, /--max-pending-per-address is ignored: pending handshakes are capped by --max-pending, oldest evicted first/);
  assert.match(r.err, /--max-queue must be an integer/);
});

test('--crypto cryptodev without /dev/crypto fails with the reason; auto falls back and says why', { skip: fs.existsSync('/dev/crypto') ? '/dev/crypto exists here' : false }, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vlab-key-'));
  try {
    const k = path.join(dir, 'k');
    await vlab(['chat', 'keygen', k]);
    const r = await vlab(['chat', 'connect', '127.0.0.1:1', '--crypto', 'cryptodev', '--key-file', k]);
    assert.equal(r.code, 2);
    assert.match(r.err, /--crypto cryptodev: open: No such file or directory \(ENOENT\)/);
    const a = await vlab(['chat', 'connect', '127.0.0.1:1', '--key-file', k]);
    assert.match(a.err, /^cipher: software .* auto: \/dev\/crypto does not exist on this machine/m);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
