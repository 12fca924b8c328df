/**
 * The rings webview's violations list (the real bundle in real Chromium, no VS Code): frames with a
 * conformance section as the panel posts them (extension/vscode/rings/frames.ts builds it), a click
 * on a violation selects its request in the descriptor grid and asks its chain, and the panel's
 * `select` message (a "Check driver" link) does the same, also for a queue drawn only later.
 */
import * as assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import type { ConformanceFrame, FromWebview, QueueFrame, RingsFrame, ToWebview } from '../../../../extension/vscode/rings/messages';
import { chromiumFlags, chromiumPath } from '../../../extension/harness/workbench';
import { bundle, ringsPage } from './page-fixture';

function queue(index: number): QueueFrame {
  return {
    index, label: `dataq${index}`, source: 'backend', size: 64, availIdx: 3, usedIdx: 1, lastAvailIdx: 3,
    usedEvent: 1, availEvent: 3, availFlags: 0, usedFlags: 0, inFlight: 2, slots: 'dd'.padEnd(64, '.'), recent: [],
  };
}

const conformance: ConformanceFrame = {
  enabled: true, strict: false, violations: 4, refusals: 0,
  items: [
    { seq: 4, rule: 'chain.loop', clause: '§2.7.5.3.1', kind: 'driver', queue: 0, head: 5, values: 'descriptor 5 again after 3 descriptors', count: 3 },
    { seq: 2, rule: 'avail.in-flight', clause: '§2.7.13.2', kind: 'driver', queue: 0, head: 9, values: 'head 9 exposed while in flight', count: 1 },
    { seq: 1, rule: 'init.features', clause: '§3.1.1', kind: 'driver', queue: null, head: null, values: 'acked 0x1 not offered', count: 1 },
  ],
};

function frame(seq: number, queues: QueueFrame[], c?: ConformanceFrame): RingsFrame {
  return { seq, timeMs: 1000 + seq, engine: 'openssl', backendPid: 1, bytes: 0, requests: seq, kicks: 0, interrupts: 0, queues, ...(c ? { conformance: c } : {}) };
}

describe('rings webview: the violations list (Chromium, no VS Code)', () => {
  let browser: Browser | undefined;
  let tab: Page;

  before(async () => {
    assert.ok(existsSync(chromiumPath), `Chromium not found at ${chromiumPath} (scripts/setup.sh installs it; VLAB_CHROMIUM overrides)`);
    assert.ok(existsSync(bundle), `${bundle} not built (npm run bundle)`);
    browser = await chromium.launch({ executablePath: chromiumPath, headless: true, args: chromiumFlags });
    tab = await browser.newPage();
    await tab.setContent(ringsPage());
  });

  after(async () => {
    await browser?.close();
  });

  const send = (m: ToWebview): Promise<void> => tab.evaluate((msg) => window.postMessage(msg, '*'), m);
  const posted = (): Promise<FromWebview[]> => tab.evaluate(() => (window as unknown as { posted: FromWebview[] }).posted);
  const chainAsked = async (queue: number, head: number): Promise<boolean> => (await posted()).some((m) => m.type === 'chain' && m.queue === queue && m.head === head);

  it('lists rule, clause, queue, head, values and count; a frame without the section says so', async () => {
    await send({ type: 'frame', frame: frame(1, [queue(0)]), cursor: { pos: 0, count: 1, live: false }, rateMs: 0 });
    await tab.waitForFunction(() => document.body.dataset.seq === '1', undefined, { timeout: 10_000 });
    assert.match((await tab.locator('#violations p').textContent()) ?? '', /No conformance report/);
    assert.equal(await tab.locator('#violations table').isHidden(), true);
    await send({ type: 'frame', frame: frame(2, [queue(0)], conformance), cursor: { pos: 1, count: 2, live: false }, rateMs: 0 });
    await tab.waitForFunction(() => document.querySelectorAll('#violations tbody tr').length === 3, undefined, { timeout: 10_000 });
    const rows = await tab.locator('#violations tbody tr').evaluateAll((trs) => trs.map((tr) => Array.from((tr as HTMLTableRowElement).cells, (td) => td.textContent)));
    assert.deepEqual(rows[0], ['chain.loop', '§2.7.5.3.1', '0', '5', 'descriptor 5 again after 3 descriptors', '3']);
    assert.deepEqual(rows[2], ['init.features', '§3.1.1', '-', '-', 'acked 0x1 not offered', '1']);
    assert.match((await tab.locator('#violations p').textContent()) ?? '', /^4 violations of driver rules, 0 device-limit refusals/);
  });

  it('a click on a violation selects its request in the descriptor grid and asks its chain', async () => {
    await tab.locator('#violations tbody tr[data-rule="chain.loop"]').click();
    await tab.waitForFunction(() => document.body.dataset.selected === '0:5', undefined, { timeout: 10_000 });
    assert.match((await tab.locator('canvas.grid').first().getAttribute('aria-label')) ?? '', /slot 5 selected/);
    assert.ok(await chainAsked(0, 5), 'the chain of queue 0 head 5 was asked for');
    // Enter on a row does the same.
    await tab.locator('#violations tbody tr[data-rule="avail.in-flight"]').press('Enter');
    await tab.waitForFunction(() => document.body.dataset.selected === '0:9', undefined, { timeout: 10_000 });
    // A violation outside a queue selects nothing.
    await tab.locator('#violations tbody tr[data-rule="init.features"]').click();
    assert.equal(await tab.evaluate(() => document.body.dataset.selected), '0:9');
  });

  it("the panel's select message selects queue/head, also in a queue drawn later", async () => {
    await send({ type: 'select', queue: 0, head: 17 });
    await tab.waitForFunction(() => document.body.dataset.selected === '0:17', undefined, { timeout: 10_000 });
    assert.ok(await chainAsked(0, 17));
    await send({ type: 'select', queue: 1, head: 3 });
    await send({ type: 'frame', frame: frame(3, [queue(0), queue(1)], conformance), cursor: { pos: 2, count: 3, live: false }, rateMs: 0 });
    await tab.waitForFunction(() => document.body.dataset.selected === '1:3', undefined, { timeout: 10_000 });
    assert.ok(await chainAsked(1, 3));
  });
});
