// The chat soak (issue 10), bounded: 200 clients for 60 s against a `vlab chat server` child
// process on the host (honest chatters, slowloris, flooders, idle and wrong-key clients), then a
// smaller run (22 clients, 25 s) with the server in the lab guest on /dev/crypto (our driver, ts backend), counting
// the backend's device sessions before, after the clients are gone, and after the server stops.
import { after, before, describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { join, resolve } from 'node:path';
import { runSoak, type SoakOptions, type SoakResult } from './chat-soak-run';
import { runCli, tempWorkspace } from './lab-helpers';

const repo = resolve(__dirname, '..', '..', '..');

function check(r: SoakResult, o: SoakOptions): void {
  assert.equal(r.serverAlive, true, 'the server did not crash');
  assert.equal(r.serverExit, 0, 'the server stopped cleanly on SIGTERM');
  assert.equal(r.honestClients, o.honest);
  assert.deepEqual(r.honestDisconnected, [], 'no honest client was disconnected');
  assert.ok(r.lurkedMs > o.idleTimeoutS * 1000, `the honest clients only read for ${r.lurkedMs} ms after the chat, longer than the ${o.idleTimeoutS} s idle timeout`);
  assert.ok(r.linesSent >= o.honest * 2, `honest clients chatted (${r.linesSent} lines)`);
  assert.deepEqual(r.missing, [], 'every honest line reached every honest member of its room');
  assert.equal(r.delivered, r.expectedDeliveries);
  assert.ok(r.floodLinesSeenByHonest > 0, 'the flooders did get through, at their rate');
  assert.ok(r.slowlorisClosedByTimeout >= o.slowloris, `slowloris closed by the timeouts: ${r.slowlorisClosedByTimeout}`);
  assert.ok(r.idleClosedByTimeout >= o.idle, `idle clients closed by the timeouts: ${r.idleClosedByTimeout}`);
  assert.deepEqual(r.attackerClosesOther, [], 'every attacker was ended by a timeout, not otherwise');
  assert.ok(r.wrongKeyRefused >= o.wrongKey && r.wrongKeyRefused >= r.wrongKeyAttempts - o.wrongKey, `wrong keys refused: ${r.wrongKeyRefused}/${r.wrongKeyAttempts}`);
  assert.ok(r.serverPeakRssMb > 0 && r.serverPeakRssMb < 200, `server peak RSS ${r.serverPeakRssMb} MB`);
  assert.equal(r.serverStats?.['droppedSlow'], 0);
  assert.equal(r.serverStats?.['sealFailures'], 0);
}

const HOST: SoakOptions = {
  honest: 130, rooms: 10, slowloris: 20, flooders: 20, idle: 20, wrongKey: 10, durationMs: 60_000, chatEveryMs: 3000,
  serverCrypto: 'software', handshakeTimeoutS: 5, idleTimeoutS: 15, rate: 5, burst: 20, floodBufferBytes: 256 * 1024,
};

test('host soak: 200 clients for 60 s (130 honest in 10 rooms, 20 slowloris, 20 flooders, 20 idle, 10 wrong key)', { timeout: 240_000 }, async () => {
  const r = await runSoak(HOST);
  process.stdout.write(`# host soak: ${JSON.stringify({ ...r, serverRssSamplesMb: r.serverRssSamplesMb.join(' ') })}\n`);
  check(r, HOST);
});

// Guest variant: one VM boot, after the host soak (so the VM does not load the host run).
describe('guest', () => {
  const ws = tempWorkspace('vlab-chat-soak-');
  const env = { ...process.env };
  delete env['VLAB_STATE_DIR'];
  let guestHasCryptodev = false;
  let upOk = false;

  before(async () => {
    const r = await runCli(['up', '--guest-driver', 'lab'], ws.dir);
    upOk = r.code === 0;
    assert.equal(r.code, 0, `vlab up failed:\n${r.err}`);
    guestHasCryptodev = (await runCli(['ssh', '--', 'test', '-c', '/dev/crypto'], ws.dir)).code === 0;
  });

  after(async () => {
    await runCli(['down'], ws.dir).catch(() => undefined);
    ws.cleanup();
  });

  async function deviceSessions(): Promise<number> {
    const r = await runCli(['status', '--json'], ws.dir);
    const s = JSON.parse(r.out) as { backend?: { telemetry?: { sessions?: unknown[] } | null } };
    const list = s.backend?.telemetry?.sessions;
    assert.ok(Array.isArray(list), `the ts backend's telemetry lists sessions: ${r.out.slice(0, 400)}`);
    return list.length;
  }

  const GUEST: SoakOptions = {
    // The guest is emulated (TCG): fewer lines, small flooder buffers, so the client side keeps up.
    // Timeouts are long for the guest's speed: under host load its event loops lag by seconds.
    honest: 10, rooms: 2, slowloris: 4, flooders: 2, idle: 4, wrongKey: 2, durationMs: 30_000, chatEveryMs: 2000,
    serverCrypto: 'cryptodev', handshakeTimeoutS: 10, helloTimeoutS: 5, idleTimeoutS: 20, rate: 1, burst: 5, floodBufferBytes: 4 * 1024, holdAfterDrain: true,
  };

  test('guest soak: 22 clients for 30 s, server on /dev/crypto (lab driver): delivered, closed by timeouts, no leaked device sessions', { timeout: 240_000 }, async (t) => {
    if (!upOk) return t.skip('the lab did not start');
    if (!guestHasCryptodev) return t.skip('the lab driver did not create /dev/crypto in the guest (see the driver suite)');
    const before = await deviceSessions();
    const release = join(repo, 'out', `soak-release-${process.pid}`);
    fs.rmSync(release, { force: true });
    const script = `cd '${repo}' && '${process.execPath}' out/test/integration/chat-soak-run.js '${JSON.stringify({ ...GUEST, releaseFile: release })}'`;
    const child = spawn(process.execPath, [join(repo, 'bin', 'vlab.js'), 'ssh', '--', 'sh', '-c', script], { cwd: ws.dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stderr.on('data', (c: Buffer) => (err = (err + c.toString()).slice(-20_000)));
    let during = -1;
    const done = new Promise<number | null>((res) => child.once('exit', (code) => res(code)));
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
      if (during === -1 && out.includes('SOAK-DRAINED')) {
        during = -2;
        void deviceSessions().then((n) => {
          during = n;
          fs.writeFileSync(release, 'go\n');
        });
      }
    });
    const timer = setTimeout(() => child.kill('SIGTERM'), 200_000); // our own child
    // Sample the session list during the run too: it must move, or the before/after check proves nothing.
    let peakDuring = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        if (during === -1) peakDuring = Math.max(peakDuring, await deviceSessions().catch(() => 0));
        await new Promise((r) => setTimeout(r, 3000));
      }
    })();
    const code = await done;
    sampling = false;
    await sampler;
    clearTimeout(timer);
    fs.rmSync(release, { force: true });
    const m = /SOAK-RESULT (\{.*\})/.exec(out);
    assert.ok(m, `no soak result (exit ${code}):\n${out.slice(-3000)}\n${err.slice(-3000)}`);
    const r = JSON.parse(m[1]!) as SoakResult;
    process.stdout.write(`# guest soak: ${JSON.stringify({ ...r, serverRssSamplesMb: r.serverRssSamplesMb.join(' ') })}\n`);
    const afterStop = await deviceSessions();
    process.stdout.write(`# guest device sessions: before ${before}, peak while chatting ${peakDuring}, with the server up and every client gone ${during}, after the server stopped ${afterStop}\n`);
    assert.match(r.serverStartup, /^cipher: \/dev\/crypto \(driver /);
    check(r, GUEST);
    assert.ok(peakDuring > before, `the session list counts the server's sessions while it serves (peak ${peakDuring})`);
    assert.equal(during, before, 'the server holds no device session once its clients are gone');
    assert.equal(afterStop, before);
  });
});
