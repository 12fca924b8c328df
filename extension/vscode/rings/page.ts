/**
 * The rings webview's static page body, apart from the panel so that a test can load the real
 * webview bundle into Chromium without VS Code (test/unit/media/rings/view.test.ts).
 */

/** Static markup; everything inside is drawn by media/build/rings.js (textContent and canvas only). */
export const RINGS_BODY = `<header>
<h1>Virtqueue rings</h1>
<button id="pause" title="Freeze the view (Space)">Pause</button>
<label class="scrub">history <input id="scrub" type="range" min="0" max="0" value="0" aria-label="history position (arrow keys step one frame)"></label>
<button id="back" title="One frame back (←)" aria-label="one frame back">◀</button>
<button id="fwd" title="One frame forward (→)" aria-label="one frame forward">▶</button>
<span id="pos" class="pos"></span>
<button id="record" title="Write a trace file (JSON lines) while the view runs">Record</button>
<button id="open" title="Replay a recorded trace">Open trace</button>
<span id="feed" class="feed">connecting…</span>
<span id="throughput"></span>
<span id="meta"></span>
</header>
<main id="queues"></main>
<section id="chain" class="chain" aria-live="polite"><h2>Descriptor chain</h2><p class="hint">Click a slot or a recent request (or select one with the arrow keys and Enter) to decode its chain.</p></section>
<section id="devices" class="devices"><h2>Virtio devices of the VM <button id="devices-refresh">Refresh</button></h2><div id="devices-list" class="hint">Refresh reads them over QMP.</div></section>`;
