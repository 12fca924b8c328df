/**
 * The exercise's tcpdump step, automated: a real host↔host pair (the connecting side is a separate
 * `vlab chat connect` process) recorded with tcpdump on lo. Needs root for tcpdump; skipped, with
 * the reason, where that is not available.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { runPair } from '../../../chat/pair';

function captureUnavailable(): string | false {
  if (process.getuid?.() !== 0) return 'tcpdump on lo needs root';
  if (spawnSync('tcpdump', ['--version']).error) return 'tcpdump is not installed';
  return false;
}
const skip = captureUnavailable();
const SENTENCE = 'Attack at dawn: meet by the old virtio bridge';

async function pairWith(crypto: 'none' | 'software'): Promise<Awaited<ReturnType<typeof runPair>>> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vlab-chat-cap-'));
  try {
    const result = await runPair({ crypto, capture: path.join(dir, 'pair.pcap'), guest: false, sentence: SENTENCE, cwd: dir });
    assert.ok(result.ok, 'both sides ended cleanly');
    assert.deepEqual(result.hostReceived, [`<peer> peer says: ${SENTENCE}`]);
    assert.deepEqual(result.peerReceived, [`<host> host says: ${SENTENCE}`]);
    return result;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

test('--crypto none: the sentence is readable in the capture', { skip }, async () => {
  const r = await pairWith('none');
  assert.ok(r.capture!.sentenceVisible, 'plain chat is visible on the wire');
  assert.equal(r.capture!.longestRun, Buffer.byteLength(SENTENCE));
});

test('encrypted: neither the sentence nor any 8-byte run of it is in the capture', { skip }, async () => {
  const r = await pairWith('software');
  assert.match(r.hostCipher, /^cipher: software/);
  // The capture did record the conversation (HELLOs, READYs, two sealed messages, BYE) ...
  assert.ok(r.capture!.bytes > 1200, `capture holds the traffic (${r.capture!.bytes} bytes)`);
  // ... yet none of the plaintext.
  assert.equal(r.capture!.sentenceVisible, false);
  assert.equal(r.capture!.longestRun, 0);
});
