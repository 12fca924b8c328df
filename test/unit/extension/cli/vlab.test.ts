import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { main } from '../../../../extension/cli/vlab';

function capture(): { stream: PassThrough; text: () => string } {
  const stream = new PassThrough();
  const chunks: Buffer[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c));
  return { stream, text: () => Buffer.concat(chunks).toString('utf8') };
}

test('unknown command exits 2 and prints help', async () => {
  const err = capture();
  const code = await main(['no-such-command'], { stderr: err.stream, stdout: capture().stream });
  assert.equal(code, 2);
  assert.match(err.text(), /unknown command "no-such-command"/);
  assert.match(err.text(), /usage: vlab <command>/);
});
