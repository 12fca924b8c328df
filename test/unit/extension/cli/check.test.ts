/**
 * `vlab check` and the violations section of `vlab rings`, against a real back-end with a telemetry
 * socket and a bad driver (the harness front-end): the exit code a CI job reads, the text, the JSON,
 * the live list and the rule table.
 */
import assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import * as path from 'node:path';
import { PassThrough } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { RULES } from '../../../../backend/conformance/rules';
import * as S from '../../../../backend/crypto/spec';
import { TelemetryServer } from '../../../../backend/telemetry/server';
import { renderSnapshot } from '../../../../extension/cli/rings-view';
import { main } from '../../../../extension/cli/vlab';
import { runMainCaptured } from '../../../cli-capture';
import { type RefereeFixture, refereeBackend } from '../../backend/conformance/fixture';

describe('vlab check (the conformance oracle over telemetry)', () => {
  let fx: RefereeFixture;
  let server: TelemetryServer;
  let socket: string;
  const env = { ...process.env, VLAB_STATE_DIR: '/nonexistent' };
  before(async () => {
    fx = await refereeBackend();
    socket = path.join(path.dirname(fx.socket), 'telemetry.sock');
    server = new TelemetryServer(socket, fx.backend);
    await server.start();
  });
  after(async () => {
    await server.stop();
    await fx.close();
  });
  const check = (...args: string[]) => runMainCaptured(['check', '--telemetry', socket, ...args], { cwd: '/', env });

  it('exits 0 with no violation, 1 once the driver broke a rule, and names rule, clause, queue, head and values', async () => {
    const clean = await check();
    assert.equal(clean.code, 0, clean.err);
    assert.match(clean.out, /^conformance: 0 violations {2}\(features as offered/);
    await fx.fe.run({ opcode: S.VIRTIO_CRYPTO_CIPHER_ENCRYPT, sessionId: 99n, iv: crypto.randomBytes(16), src: crypto.randomBytes(16) });
    const bad = await check();
    assert.equal(bad.code, 1);
    assert.match(bad.out, /conformance: 1 violation of 1 driver rule/);
    assert.match(bad.out, /crypto\.session-unknown\s+§5\.9\.7\.6\.1\s+1 {2}queue 0 head 0: session 99 was never created/);
    assert.match(bad.out, /#1 {2}\d+\.\d s {2}queue 0 head 0 {2}crypto\.session-unknown §5\.9\.7\.6\.1/);
  });

  it('--json prints the conformance section', async () => {
    const r = await check('--json');
    const c = JSON.parse(r.out) as { violations: number; rules: { rule: string; clause: string; last: { head: number } }[] };
    assert.equal(c.violations, 1);
    assert.deepEqual(c.rules.map((x) => [x.rule, x.last.head]), [['crypto.session-unknown', 0]]);
  });

  it('--watch redraws the list until Ctrl-C', async () => {
    const out = new PassThrough();
    let text = '';
    out.on('data', (d: Buffer) => (text += d.toString()));
    const controller = new AbortController();
    const done = main(['check', '--watch', '--interval', '20', '--telemetry', socket], { stdout: out, stderr: new PassThrough(), stdin: new PassThrough(), cwd: '/', env, signal: controller.signal });
    await new Promise((r) => setTimeout(r, 150));
    controller.abort();
    assert.equal(await done, 1, 'the last refresh saw a violation');
    assert.ok(text.split('\x1b[H\x1b[2J').length > 2, 'redrawn more than once');
    assert.match(text, /Ctrl-C stops/);
  });

  it('--rules prints the rule table (no back-end needed), 3 without a back-end to ask', async () => {
    const r = await runMainCaptured(['check', '--rules'], { cwd: '/', env });
    assert.equal(r.code, 0);
    assert.equal(r.out.trim().split('\n').length, RULES.length, 'a header and a line per rule');
    assert.match(r.out, /chain\.order\s+driver\s+§2\.7\.4\.2\s+device-writable descriptors after all device-readable ones/);
    const none = await runMainCaptured(['check', '--telemetry', '/nonexistent/t.sock'], { cwd: '/', env });
    assert.equal(none.code, 3);
    assert.match(none.err, /cannot reach the back-end telemetry/);
  });

  it('vlab rings shows the violations section', () => {
    const text = renderSnapshot(fx.backend.snapshot());
    assert.match(text, /conformance: 1 violation of 1 driver rule/);
    assert.match(text, /newest violations:\n\s+#1 .* crypto\.session-unknown/);
  });
});
