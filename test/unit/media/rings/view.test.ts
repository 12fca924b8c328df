/**
 * The real rings webview bundle (media/build/rings.js, as webpack built it) in real Chromium, without
 * VS Code: frames are posted to the page as the panel posts them. Checks what keeps the view cheap
 * to leave open (docs/extension.md "What the view costs"): the canvases follow every live frame,
 * the text (counters, the recent-requests table, the position) is rewritten at most every 500 ms,
 * the newest frame's text still appears when the stream stops, and a frame the user asked for
 * (paused) has its text written at once.
 */
import * as assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import type { QueueFrame, RecentRequest, RingsFrame, ToWebview } from '../../../../extension/vscode/rings/messages';
import { RINGS_BODY } from '../../../../extension/vscode/rings/page';
import { chromiumFlags, chromiumPath, repoRoot as root } from '../../../extension/harness/workbench';

const bundle = join(root, 'media', 'build', 'rings.js');

function recent(newest: number): RecentRequest[] {
  return Array.from({ length: 16 }, (_, i) => ({
    id: newest - i, head: (newest - i) % 64, opcode: 'CIPHER_ENCRYPT', session: '7', srcLen: 4096, dstLen: 4096,
    status: 'OK', latencyUs: 40 + i, rejected: '', fault: '',
  }));
}

/** Frame k of a queue that moves by 8 requests per frame. */
function frame(k: number): RingsFrame {
  const used = (k * 8) & 0xffff;
  const q: QueueFrame = {
    index: 0, label: 'dataq0', source: 'backend', size: 64, availIdx: used + 1, usedIdx: used, lastAvailIdx: used + 1,
    usedEvent: used, availEvent: used + 1, availFlags: 0, usedFlags: 0, inFlight: 1,
    slots: 'f'.repeat(64).split('').map((c, i) => (i === (k % 64) ? 'd' : c)).join(''), recent: recent(1000 + k * 8),
  };
  return { seq: k, timeMs: 1000 + k * 100, engine: 'openssl', backendPid: 4242, bytes: k * 65536, requests: k * 8, kicks: k * 8, interrupts: k * 8, queues: [q] };
}

function page(): string {
  const css = readFileSync(join(root, 'media', 'rings.css'), 'utf8');
  const js = readFileSync(bundle, 'utf8');
  // The page is the panel's (same body, stylesheet and bundle); acquireVsCodeApi records what the view posts.
  return `<!DOCTYPE html><html><head><meta charset="UTF-8"><style>${css}</style></head><body>${RINGS_BODY}
<script>window.posted = []; window.acquireVsCodeApi = () => ({ postMessage: (m) => window.posted.push(m), setState() {}, getState() { return undefined; } });</script>
<script>${js.replace(/<\/script/g, '<\\/script')}</script></body></html>`;
}

describe('rings webview in Chromium (no VS Code)', () => {
  let browser: Browser | undefined;
  let tab: Page;

  before(async () => {
    assert.ok(existsSync(chromiumPath), `Chromium not found at ${chromiumPath} (scripts/setup.sh installs it; VLAB_CHROMIUM overrides)`);
    assert.ok(existsSync(bundle), `${bundle} not built (npm run bundle)`);
    browser = await chromium.launch({ executablePath: chromiumPath, headless: true, args: chromiumFlags });
    tab = await browser.newPage();
    await tab.setContent(page());
    // Every rewrite of the recent table's newest id cell, with its time.
    await tab.evaluate(() => {
      const w = window as unknown as { idWrites: { at: number; text: string }[] };
      w.idWrites = [];
      new MutationObserver(() => {
        const cell = document.querySelector('table.recent tbody tr td');
        const text = cell?.textContent ?? '';
        if (text !== (w.idWrites.at(-1)?.text ?? '')) w.idWrites.push({ at: performance.now(), text });
      }).observe(document.getElementById('queues')!, { subtree: true, childList: true, characterData: true });
    });
  });

  after(async () => {
    await browser?.close();
  });

  const post = (messages: ToWebview[], everyMs: number): Promise<void> => tab.evaluate(({ messages, everyMs }) => new Promise<void>((done) => {
    let i = 0;
    const next = (): void => {
      window.postMessage(messages[i++], '*');
      if (i < messages.length) setTimeout(next, everyMs);
      else done();
    };
    next();
  }), { messages, everyMs });

  it('live: the canvases follow every frame, the text at most every 500 ms, the newest text once the stream stops', async () => {
    const frames = Array.from({ length: 30 }, (_, k) => frame(k + 1));
    const started = await tab.evaluate(() => performance.now());
    await post(frames.map((f, k) => ({ type: 'frame', frame: f, cursor: { pos: k, count: k + 1, live: true }, rateMs: 100 })), 100);
    await tab.waitForFunction(() => document.body.dataset.seq === '30', undefined, { timeout: 5000 });
    const streamEnded = await tab.evaluate(() => performance.now());
    // The acknowledgements count the frames drawn: every one (rAF coalesces only frames closer than a
    // screen refresh; a few may coalesce on a loaded machine), not one per text rewrite (~7).
    await tab.waitForFunction(() => (window as unknown as { posted: { type: string; frames?: number }[] }).posted.filter((m) => m.type === 'drawn').reduce((a, m) => a + (m.frames ?? 0), 0) >= 25, undefined, { timeout: 3000 });
    // The newest frame's text is written after the stream stops, though no frame follows.
    const newestId = String(1000 + 30 * 8);
    await tab.waitForFunction((id) => document.querySelector('table.recent tbody tr td')?.textContent === id, newestId, { timeout: 1500 });
    const writes = await tab.evaluate(() => (window as unknown as { idWrites: { at: number; text: string }[] }).idWrites);
    const during = writes.filter((w) => w.at >= started && w.at <= streamEnded);
    const seconds = (streamEnded - started) / 1000;
    assert.ok(during.length >= 3, `the table is rewritten while live (${during.length} times in ${seconds.toFixed(1)} s)`);
    assert.ok(during.length <= Math.ceil(seconds / 0.5) + 1, `the table is rewritten at most every 500 ms while live: ${during.length} times in ${seconds.toFixed(1)} s for 30 frames`);
    for (let i = 1; i < during.length; i++) assert.ok(during[i]!.at - during[i - 1]!.at >= 450, `text rewrites ${(during[i]!.at - during[i - 1]!.at).toFixed(0)} ms apart`);
    assert.match((await tab.locator('#pos').textContent()) ?? '', /^frame 30 \/ 30 \(live\)$/);
  });

  it('a paused frame (the user stepped to it) has its text written at once', async () => {
    const f = frame(7);
    await post([{ type: 'frame', frame: f, cursor: { pos: 6, count: 30, live: false }, rateMs: 100 }], 0);
    await tab.waitForFunction(() => document.body.dataset.seq === '7', undefined, { timeout: 2000 });
    // Same animation frame as the canvases: no 500 ms wait.
    assert.equal(await tab.locator('table.recent tbody tr td').first().textContent(), String(1000 + 7 * 8));
    assert.equal(await tab.locator('#pos').textContent(), 'frame 7 / 30');
  });
});
