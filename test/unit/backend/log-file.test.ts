import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { TestFrontend } from '../../../backend/harness/frontend';
import { CappedLogFile, RateLimitedLog } from '../../../backend/log';
import { REPO } from '../../repo-root';

describe('back-end log: rate limit and size cap', () => {
  let dir: string;
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vlab-be-log-'));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('rate limit: the first lines per reason and window, then one summary with the exact count', () => {
    let t = 0;
    const lines: string[] = [];
    let suppressed = 0;
    const log = new RateLimitedLog((l) => lines.push(l), { burst: 3, windowMs: 1000, now: () => t, onSuppressed: () => suppressed++ });
    for (let k = 0; k < 1000; k++) log.line('rejected chain', `chain ${k}`);
    log.line('engine error', 'other reason, own budget');
    assert.deepEqual(lines, ['chain 0', 'chain 1', 'chain 2', 'other reason, own budget']);
    t = 1500;
    log.flush();
    assert.equal(lines[4], 'rejected chain: 997 more suppressed in the last 2 s (the counters have every one)');
    assert.equal(suppressed, 997);
    // A new window starts with a fresh budget.
    log.line('rejected chain', 'chain again');
    assert.equal(lines[lines.length - 1], 'chain again');
  });

  it('a 2.4 MB flood into a 64 KiB-capped file leaves two files of at most 64 KiB, the newest lines kept', () => {
    const file = path.join(dir, 'flood.log');
    const log = new CappedLogFile(file, 65536);
    let last = '';
    for (let k = 0; k < 20_000; k++) {
      last = `2026-01-01T00:00:00.000Z queue 0: rejected chain at head ${k % 128}: buffer 0xdead00000000+64 is outside guest memory ${k}`;
      log.write(last);
    }
    log.close();
    assert.ok(fs.statSync(file).size <= 65536, `${fs.statSync(file).size} bytes`);
    assert.ok(fs.statSync(`${file}.1`).size <= 65536);
    assert.ok(log.rotations > 30);
    assert.ok(fs.readFileSync(file, 'utf8').endsWith(`${last}\n`));
  });

  it('refuses to follow a symlink planted at the log path', () => {
    const target = path.join(dir, 'victim');
    fs.writeFileSync(target, 'keep');
    const link = path.join(dir, 'planted.log');
    fs.symlinkSync(target, link);
    assert.throws(() => new CappedLogFile(link, 65536), /ELOOP/);
    assert.equal(fs.readFileSync(target, 'utf8'), 'keep');
  });

  it('`vlab backend --log-file F --log-max-bytes N` writes its log to F and keeps F and F.1 under N', async () => {
    const socket = path.join(dir, 'vu.sock');
    const file = path.join(dir, 'backend.log');
    const bin = path.resolve(REPO, 'bin', 'vlab.js');
    const child = spawn(process.execPath, [bin, 'backend', '--socket', socket, '--telemetry', 'none', '--engine', 'openssl', '--log-file', file, '--log-max-bytes', '4096'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    try {
      for (let k = 0; k < 200 && !fs.existsSync(socket); k++) await new Promise((r) => setTimeout(r, 50));
      assert.ok(fs.existsSync(socket), `back-end listening; output: ${out}`);
      // Each front-end connect + disconnect logs two lines: 60 of them are well past 4096 bytes.
      for (let k = 0; k < 60; k++) {
        const fe = await TestFrontend.connect(socket);
        fe.close();
      }
      await new Promise((r) => setTimeout(r, 100));
    } finally {
      child.kill('SIGTERM');
      await exited;
    }
    assert.equal(out, '', 'nothing on stdout/stderr');
    const size = fs.statSync(file).size;
    assert.ok(size > 0 && size <= 4096, `backend.log is ${size} bytes`);
    const rotated = fs.statSync(`${file}.1`).size;
    assert.ok(rotated > 0 && rotated <= 4096, `backend.log.1 is ${rotated} bytes`);
    assert.match(fs.readFileSync(file, 'utf8'), /stopping/);
  });
});
