/**
 * The rings webview (browser side). Per queue: the descriptor table as a grid of slots coloured by
 * state (one canvas, only changed cells repainted), the avail and used rings as strips with their
 * indexes and event markers, kick / interrupt ticks on a scrolling timeline, and the recent
 * requests (new ones highlighted). Click or keyboard-select a slot or a request → its decoded chain.
 * A history scrubber seeks through the panel's last frames. Built into media/build/rings.js by
 * webpack; DOM is built with createElement/textContent only. Colours are the theme's.
 */
import { SLOT_LABEL, SLOT_STATES, slotStateOf, type SlotState } from '../../backend/telemetry/schema';
import { parsePanelState, type ChainDetail, type DeviceFrame, type FromWebview, type PanelState, type QueueFrame, type RingsFrame, type ToWebview } from '../../extension/vscode/rings/messages';

interface VsCodeApi {
  postMessage(message: FromWebview): void;
  setState(state: unknown): void;
  getState(): unknown;
}
declare function acquireVsCodeApi(): VsCodeApi;

const vscode = acquireVsCodeApi();
const SPARK_POINTS = 120;
const SPARK_W = 160;
const SPARK_H = 30;
/** Drawn frames are acknowledged in batches, at most this often (one message per frame cost as much as a frame). */
const ACK_MS = 500;
/**
 * While live, text (counters, index readouts, the recent-requests table, the frame position) is
 * rewritten at most this often; the canvases (descriptor grid, ring strips, timeline, sparklines)
 * follow every frame. Numbers that change 10 times a second cannot be read anyway, and re-laying out
 * ~100 changed text boxes was the largest part of a frame's cost in the VS Code window (measured:
 * docs/extension.md "What the view costs"). A paused, replayed or stepped frame is written at once.
 */
const TEXT_MS = 500;
/** how long after TEXT_MS the text is written without a frame to carry it (one to three frames at 5-10 frames/s) */
const TEXT_LATE_MS = 250;
const CELL = 9;
const GAP = 1;
const GRID_COLS = 32;
const STRIP_W = 320;
const STRIP_H = 12;
const TIMELINE_W = 320;
const TIMELINE_H = 36;
const TICK_W = 3;

function el<K extends keyof HTMLElementTagNameMap>(tag: K, cls?: string, textContent?: string): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (textContent !== undefined) e.textContent = textContent;
  return e;
}

function setText(e: HTMLElement, text: string): void {
  if (e.textContent !== text) e.textContent = text;
}

/** Theme colours, read from the CSS variables VS Code injects (re-read when the theme changes). */
class Palette {
  private cache = new Map<string, string>();
  constructor() {
    new MutationObserver(() => {
      this.cache.clear();
      for (const l of this.listeners) l();
    }).observe(document.body, { attributes: true, attributeFilter: ['class'] });
  }
  readonly listeners: (() => void)[] = [];
  get(name: string, fallback: string): string {
    let v = this.cache.get(name);
    if (v === undefined) {
      v = getComputedStyle(document.body).getPropertyValue(name).trim() || fallback;
      this.cache.set(name, v);
    }
    return v;
  }
  slot(s: SlotState): string {
    switch (s) {
      case 'posted': return this.get('--vscode-charts-blue', '#3794ff');
      case 'device': return this.get('--vscode-charts-orange', '#d18616');
      case 'returned': return this.get('--vscode-charts-green', '#89d185');
      default: return this.get('--vscode-editorWidget-border', '#8884');
    }
  }
}
const palette = new Palette();

/** A rate history drawn on a small canvas (one path per update; no SVG re-layout). */
class Sparkline {
  private readonly values: number[] = [];
  readonly element: HTMLCanvasElement;
  private readonly ctx: CanvasRenderingContext2D;
  readonly label = el('span', 'spark-label');

  constructor(private readonly unit: string) {
    this.element = canvas(SPARK_W, SPARK_H, 'spark', `${unit} over the last ${SPARK_POINTS} updates`);
    this.ctx = this.element.getContext('2d')!;
  }

  push(v: number): void {
    this.values.push(v);
    if (this.values.length > SPARK_POINTS) this.values.shift();
    let max = 1;
    for (const x of this.values) if (x > max) max = x;
    const c = this.ctx;
    const dx = SPARK_W / SPARK_POINTS;
    const start = SPARK_POINTS - this.values.length;
    c.clearRect(0, 0, SPARK_W, SPARK_H);
    c.strokeStyle = palette.get('--vscode-charts-purple', '#b180d7');
    c.lineWidth = 1.5;
    c.beginPath();
    this.values.forEach((x, i) => {
      const px = (start + i) * dx;
      const py = SPARK_H - 1 - (x / max) * (SPARK_H - 2);
      if (i === 0) c.moveTo(px, py);
      else c.lineTo(px, py);
    });
    c.stroke();
  }

  /** The newest value as text (written at the text rate, not per frame). */
  showLabel(): void {
    const v = this.values.at(-1);
    setText(this.label, v === undefined ? '' : `${formatRate(v)} ${this.unit}`);
  }
}

function formatRate(v: number): string {
  if (v >= 1e6) return `${(v / 1e6).toFixed(1)}M`;
  if (v >= 1e3) return `${(v / 1e3).toFixed(1)}k`;
  return v.toFixed(v < 10 ? 1 : 0);
}

function canvas(w: number, h: number, cls: string, label: string): HTMLCanvasElement {
  const c = el('canvas', cls);
  const dpr = Math.max(1, Math.min(2, window.devicePixelRatio || 1));
  c.width = w * dpr;
  c.height = h * dpr;
  c.style.width = `${w}px`;
  c.style.height = `${h}px`;
  c.getContext('2d')!.scale(dpr, dpr);
  c.setAttribute('role', 'img');
  c.setAttribute('aria-label', label);
  return c;
}

const u16 = (v: number): number => v & 0xffff;

class QueueView {
  readonly root = el('section', 'queue');
  private readonly title = el('h2');
  private readonly grid: HTMLCanvasElement;
  private readonly gridCtx: CanvasRenderingContext2D;
  private readonly strips = canvas(STRIP_W, 2 * STRIP_H + 6, 'strips', 'avail and used rings');
  private readonly stripText = el('div', 'strip-text');
  private readonly timeline = canvas(TIMELINE_W, TIMELINE_H, 'timeline', 'kicks (up) and interrupts (down) per frame');
  private readonly stats = el('dl', 'stats');
  private readonly statCells = new Map<string, HTMLElement>();
  private readonly table = el('table', 'recent');
  private readonly tbody = el('tbody');
  private readonly rate = new Sparkline('req/s');
  private drawnSlots = '';
  private size = -1;
  private selected = -1;
  private newestId = -1;
  private readonly rows: HTMLTableRowElement[] = [];
  private readonly firstSeen = new Map<number, number>();
  private seenFrames = 0;
  private unhighlight: ReturnType<typeof setTimeout> | undefined;
  private prev: { usedIdx: number; timeMs: number; kicks: number; interrupts: number } | undefined;

  constructor(private readonly queueIndex: number, private readonly onPick: (queue: number, head: number) => void) {
    this.grid = canvas(GRID_COLS * (CELL + GAP), CELL + GAP, 'grid', 'descriptor table');
    this.gridCtx = this.grid.getContext('2d')!;
    this.grid.tabIndex = 0;
    this.grid.addEventListener('click', (e) => {
      const r = this.grid.getBoundingClientRect();
      const col = Math.floor((e.clientX - r.left) / (CELL + GAP));
      const row = Math.floor((e.clientY - r.top) / (CELL + GAP));
      const i = row * this.cols() + col;
      if (col < this.cols() && i >= 0 && i < this.drawnSlots.length) this.select(i, true);
    });
    this.grid.addEventListener('keydown', (e) => {
      if (this.drawnSlots.length === 0) return;
      const n = this.drawnSlots.length;
      const step: Record<string, number> = { ArrowLeft: -1, ArrowRight: 1, ArrowUp: -this.cols(), ArrowDown: this.cols() };
      if (e.key in step) {
        e.preventDefault();
        this.select(Math.min(n - 1, Math.max(0, (this.selected < 0 ? 0 : this.selected) + step[e.key]!)), false);
      } else if (e.key === 'Enter' || e.key === ' ') {
        e.preventDefault();
        if (this.selected >= 0) this.onPick(this.queueIndex, this.selected);
      }
    });
    const legend = el('div', 'legend-row');
    for (const s of SLOT_STATES) {
      const item = el('span', `legend legend-${s}`, SLOT_LABEL[s]);
      legend.append(item);
    }
    const side = el('div', 'queue-side');
    const spark = el('div', 'spark-row');
    spark.append(this.rate.element, this.rate.label);
    side.append(this.stats, spark, this.strips, this.stripText, el('div', 'caption', 'kicks ▲ / interrupts ▼ per frame'), this.timeline);
    const gridBox = el('div', 'grid-box');
    gridBox.append(this.grid, legend);
    const body = el('div', 'queue-body');
    body.append(gridBox, side);
    const head = el('tr');
    for (const h of ['#', 'head', 'opcode', 'session', 'src', 'dst', 'status', 'latency', 'note']) head.append(el('th', undefined, h));
    const thead = el('thead');
    thead.append(head);
    this.table.append(thead, this.tbody);
    this.root.append(this.title, body, this.table);
    palette.listeners.push(() => {
      this.drawnSlots = '';
    });
  }

  private cols(): number {
    return Math.min(GRID_COLS, Math.max(1, this.size));
  }

  private select(i: number, pick: boolean): void {
    const old = this.selected;
    this.selected = i;
    if (old >= 0) this.paintCell(old);
    this.paintCell(i);
    const state = slotStateOf(this.drawnSlots[i] ?? '') ?? 'free';
    this.grid.setAttribute('aria-label', `descriptor table: slot ${i} selected, ${SLOT_LABEL[state]} (Enter decodes its chain)`);
    if (pick) this.onPick(this.queueIndex, i);
  }

  /** Selects slot `i` and asks its chain (restoring a selection); false while the slot is not drawn yet. */
  selectSlot(i: number): boolean {
    if (i < 0 || i >= this.drawnSlots.length) return false;
    this.select(i, true);
    return true;
  }

  private paintCell(i: number): void {
    const cols = this.cols();
    const x = (i % cols) * (CELL + GAP);
    const y = Math.floor(i / cols) * (CELL + GAP);
    const ctx = this.gridCtx;
    ctx.fillStyle = palette.slot(slotStateOf(this.drawnSlots[i] ?? '') ?? 'free');
    ctx.clearRect(x, y, CELL + GAP, CELL + GAP);
    ctx.fillRect(x, y, CELL, CELL);
    if (i === this.selected) {
      ctx.strokeStyle = palette.get('--vscode-focusBorder', '#007fd4');
      ctx.lineWidth = 2;
      ctx.strokeRect(x + 1, y + 1, CELL - 2, CELL - 2);
    }
  }

  /** Repaints only the cells whose state changed; returns how many were painted. */
  private drawGrid(q: QueueFrame): number {
    if (q.size !== this.size) {
      this.size = q.size;
      const cols = this.cols();
      const rows = Math.max(1, Math.ceil(q.slots.length / cols));
      const dpr = Math.max(1, Math.min(2, window.devicePixelRatio || 1));
      this.grid.width = cols * (CELL + GAP) * dpr;
      this.grid.height = rows * (CELL + GAP) * dpr;
      this.grid.style.width = `${cols * (CELL + GAP)}px`;
      this.grid.style.height = `${rows * (CELL + GAP)}px`;
      this.gridCtx.setTransform(dpr, 0, 0, dpr, 0, 0);
      this.drawnSlots = '';
      this.grid.hidden = q.slots.length === 0;
    }
    const old = this.drawnSlots;
    this.drawnSlots = q.slots;
    let painted = 0;
    for (let i = 0; i < q.slots.length; i++) {
      if (old[i] === q.slots[i] && old.length === q.slots.length) continue;
      this.paintCell(i);
      painted++;
    }
    return painted;
  }

  private drawStrips(q: QueueFrame): void {
    const c = this.strips.getContext('2d')!;
    const size = Math.max(1, q.size);
    const w = STRIP_W / size;
    c.clearRect(0, 0, STRIP_W, 2 * STRIP_H + 6);
    const base = palette.get('--vscode-editorWidget-border', '#8884');
    // A window of ring entries is at most two rectangles (it may wrap past the end of the ring).
    const span = (y: number, from: number, count: number, color: string): void => {
      const n = Math.min(count, size);
      if (n <= 0) return;
      const start = from % size;
      const first = Math.min(n, size - start);
      c.fillStyle = color;
      c.fillRect(start * w, y, Math.max(first * w, 1), STRIP_H);
      if (n > first) c.fillRect(0, y, Math.max((n - first) * w, 1), STRIP_H);
    };
    const mark = (y: number, idx: number, color: string, up: boolean): void => {
      const x = ((idx % size) + 0.5) * w;
      c.fillStyle = color;
      c.beginPath();
      if (up) { c.moveTo(x - 4, y + STRIP_H); c.lineTo(x + 4, y + STRIP_H); c.lineTo(x, y + STRIP_H - 6); }
      else { c.moveTo(x - 4, y); c.lineTo(x + 4, y); c.lineTo(x, y + 6); }
      c.fill();
    };
    c.fillStyle = base;
    c.fillRect(0, 0, STRIP_W, STRIP_H);
    c.fillRect(0, STRIP_H + 6, STRIP_W, STRIP_H);
    const fg = palette.get('--vscode-foreground', '#ccc');
    if (q.availIdx !== null) span(0, q.lastAvailIdx, u16(q.availIdx - q.lastAvailIdx), palette.slot('posted'));
    if (q.usedEvent !== null) {
      const pending = u16(q.usedIdx - q.usedEvent);
      if (pending <= size) span(STRIP_H + 6, q.usedEvent, pending, palette.slot('returned'));
    }
    if (q.availIdx !== null) mark(0, q.availIdx, fg, false);
    mark(0, q.lastAvailIdx, palette.slot('device'), true);
    mark(STRIP_H + 6, q.usedIdx, fg, false);
    if (q.usedEvent !== null) mark(STRIP_H + 6, q.usedEvent, palette.slot('device'), true);
  }

  private drawStripText(q: QueueFrame): void {
    const flags = (v: number | null, bit: string): string => (v === null ? '?' : `0x${v.toString(16)}${v & 1 ? ` (${bit})` : ''}`);
    setText(this.stripText,
      `avail ring: idx ${q.availIdx ?? '?'} ▼ · last_avail / avail_event ${q.lastAvailIdx}${q.availEvent !== null && q.availEvent !== q.lastAvailIdx ? ` / ${q.availEvent}` : ''} ▲ · flags ${flags(q.availFlags, 'NO_INTERRUPT')}\n` +
      `used ring: idx ${q.usedIdx} ▼ · used_event ${q.usedEvent ?? '?'} ▲ · flags ${flags(q.usedFlags, 'NO_NOTIFY')}`);
  }

  private tick(kicks: number, interrupts: number): void {
    const c = this.timeline.getContext('2d')!;
    const dpr = this.timeline.width / TIMELINE_W;
    // Scroll left by one tick: copy the canvas onto itself (no per-tick DOM).
    c.save();
    c.setTransform(1, 0, 0, 1, 0, 0);
    c.globalCompositeOperation = 'copy';
    c.drawImage(this.timeline, -TICK_W * dpr, 0);
    c.restore();
    const x = TIMELINE_W - TICK_W;
    c.clearRect(x, 0, TICK_W, TIMELINE_H);
    const mid = TIMELINE_H / 2;
    const h = (n: number): number => (n <= 0 ? 0 : Math.min(mid - 1, 3 + Math.log2(1 + n) * 3));
    c.fillStyle = palette.slot('posted');
    c.fillRect(x, mid - h(kicks), TICK_W - 1, h(kicks));
    c.fillStyle = palette.slot('returned');
    c.fillRect(x, mid, TICK_W - 1, h(interrupts));
  }

  private stat(key: string, value: string, cls?: string): void {
    let dd = this.statCells.get(key);
    if (!dd) {
      this.stats.append(el('dt', cls, key));
      dd = el('dd');
      this.stats.append(dd);
      this.statCells.set(key, dd);
    }
    setText(dd, value);
  }

  /** Reuses MAX_RECENT rows and only rewrites the cells that changed (no per-frame DOM churn). */
  private drawRecent(q: QueueFrame, nowMs: number): void {
    const newest = q.recent[0]?.id ?? -1;
    if (newest === this.newestId && this.rows.length >= q.recent.length) return;
    this.newestId = newest;
    while (this.rows.length < q.recent.length) {
      const tr = el('tr');
      tr.tabIndex = 0;
      tr.title = 'Enter or click: decode this request\'s chain';
      for (let k = 0; k < 9; k++) tr.append(el('td'));
      const pick = (): void => this.onPick(this.queueIndex, Number(tr.dataset.head));
      tr.addEventListener('click', pick);
      tr.addEventListener('keydown', (e) => {
        if (e.key === 'Enter') pick();
      });
      this.tbody.append(tr);
      this.rows.push(tr);
    }
    for (const r of q.recent) if (!this.firstSeen.has(r.id)) this.firstSeen.set(r.id, nowMs);
    // Forget ids no longer listed (bounded map).
    if (this.firstSeen.size > 64) {
      const keep = new Set(q.recent.map((r) => r.id));
      for (const id of this.firstSeen.keys()) if (!keep.has(id)) this.firstSeen.delete(id);
    }
    this.rows.forEach((tr, i) => {
      const r = q.recent[i];
      tr.hidden = !r;
      if (!r) return;
      tr.dataset.head = String(r.head);
      const bad = r.status !== 'OK' || r.rejected !== '';
      const fresh = nowMs - (this.firstSeen.get(r.id) ?? 0) < 1000 && this.seenFrames > 1;
      const cls = [bad ? 'bad' : '', fresh ? 'new' : '', r.fault ? 'fault' : ''].filter(Boolean).join(' ');
      if (tr.className !== cls) tr.className = cls;
      const note = r.rejected ? `rejected: ${r.rejected}` : r.fault ? `fault: ${r.fault}` : '';
      const cells = [String(r.id), String(r.head), r.opcode, r.session, String(r.srcLen), String(r.dstLen), r.status, `${r.latencyUs} µs`, note];
      cells.forEach((v, k) => setText(tr.cells[k]!, v));
    });
    // The highlight lasts a moment even when no frame follows (an idle view draws nothing).
    clearTimeout(this.unhighlight);
    this.unhighlight = setTimeout(() => {
      for (const tr of this.rows) if (tr.classList.contains('new')) tr.classList.remove('new');
    }, 1100);
  }

  /** Draws the frame's canvases (every frame); returns how many slot cells were painted. */
  update(q: QueueFrame, frame: RingsFrame): number {
    const painted = this.drawGrid(q);
    this.drawStrips(q);
    if (this.prev && frame.timeMs > this.prev.timeMs) {
      this.rate.push((u16(q.usedIdx - this.prev.usedIdx) * 1000) / (frame.timeMs - this.prev.timeMs));
      if (q.source === 'backend') this.tick(Math.max(0, frame.kicks - this.prev.kicks), Math.max(0, frame.interrupts - this.prev.interrupts));
    }
    this.prev = { usedIdx: q.usedIdx, timeMs: frame.timeMs, kicks: frame.kicks, interrupts: frame.interrupts };
    this.seenFrames++;
    return painted;
  }

  /** Writes the frame's text: title, counters, index readouts, the recent requests (at the text rate). */
  updateText(q: QueueFrame): void {
    setText(this.title, `${q.label} · queue ${q.index} · size ${q.size}${q.source === 'qmp' ? ' · from QMP (QEMU services it)' : ''}`);
    this.drawStripText(q);
    this.rate.showLabel();
    const counts: Record<SlotState, number> = { free: 0, posted: 0, device: 0, returned: 0 };
    for (const ch of q.slots) counts[slotStateOf(ch) ?? 'free']++;
    this.stat('avail idx', q.availIdx === null ? '? (not reported)' : String(q.availIdx), 'key-avail');
    this.stat('used idx', String(q.usedIdx), 'key-used');
    this.stat('last avail', String(q.lastAvailIdx), 'key-last');
    this.stat('posted, not taken', q.availIdx === null ? '?' : String(u16(q.availIdx - q.lastAvailIdx))); // u16 distance (virtio 1.2 §2.7.6)
    this.stat('in flight', String(q.inFlight));
    if (q.slots.length > 0) for (const s of SLOT_STATES) this.stat(`${SLOT_LABEL[s]}`, String(counts[s]), `legend legend-${s}`);
    this.drawRecent(q, performance.now());
  }

  resetMotion(): void {
    this.prev = undefined;
  }
}

/** True when a queue in `seen` has never had its text written (it just appeared). */
function newFirstQueue(seen: ReadonlySet<number>, written: ReadonlySet<number>): boolean {
  for (const q of seen) if (!written.has(q)) return true;
  return false;
}

function hexBytes(h: string | null): string {
  return h ? (h.match(/../g) ?? []).join(' ') : '—';
}

class ChainView {
  constructor(private readonly root: HTMLElement) {}

  error(message: string): void {
    this.root.replaceChildren(el('h2', undefined, 'Descriptor chain'), el('p', 'bad', message));
  }

  show(c: ChainDetail): void {
    const h = c.header;
    const rows: [string, string][] = [
      ['queue / head', `${c.queue} / slot ${c.head} — ${SLOT_LABEL[c.state]}`],
      ['request', c.request ? `#${c.request.id} ${c.request.opcode}, ${c.request.status}, ${c.request.latencyUs} µs` : 'none recorded at this head'],
      ['memory', { served: 'matches the request as served', stale: 'the guest has reused this memory since (bytes as they are now)', pending: 'posted, not served yet', unknown: 'no request recorded to compare' }[c.match]],
    ];
    if (c.rejected) rows.push(['rejected', c.rejected]);
    if (c.fault) rows.push(['fault', c.fault]);
    if (c.error) rows.push(['error', c.error]);
    if (h) {
      rows.push(['opcode', h.opcode], ['session', `${h.sessionId}${h.algorithm ? ` (${h.algorithm})` : ''}`], ['algo / flag / op_type', `${h.algo} / ${h.flag} / ${h.opType}`],
        ['lengths', `iv ${h.ivLen}, src ${h.srcLen}, dst ${h.dstLen}`], ['IV', hexBytes(c.iv)], ['src (first bytes)', hexBytes(c.srcPreview)], ['dst (first bytes)', hexBytes(c.dstPreview)]);
    }
    rows.push(['status byte', c.status ?? '—'], ['readable / writable', `${c.readableLength} B / ${c.writableLength} B`]);
    const dl = el('dl', 'chain-fields');
    for (const [k, v] of rows) dl.append(el('dt', undefined, k), el('dd', k === 'opcode' ? 'opcode' : k === 'lengths' ? 'lengths' : undefined, v));
    const t = el('table', 'descs');
    const head = el('tr');
    for (const x of ['table', 'i', 'addr', 'len', 'flags', 'next']) head.append(el('th', undefined, x));
    t.append(head);
    for (const d of c.descriptors) {
      const tr = el('tr', d.table === 'indirect' ? 'indirect' : undefined);
      for (const v of [d.table, String(d.i), d.addr, String(d.len), d.flags || '—', d.flags.includes('N') ? String(d.next) : '—']) tr.append(el('td', undefined, v));
      t.append(tr);
    }
    this.root.replaceChildren(el('h2', undefined, `Descriptor chain at slot ${c.head}`), dl, t);
    this.root.dataset.opcode = h?.opcode ?? '';
  }
}

class DevicesView {
  constructor(private readonly list: HTMLElement) {}
  show(devices: DeviceFrame[], message: string): void {
    const out: HTMLElement[] = [el('p', 'hint', message)];
    for (const d of devices) {
      const box = el('div', 'device');
      box.append(el('h3', undefined, `${d.name} — ${d.path}`));
      const t = el('table', 'descs');
      const head = el('tr');
      for (const x of ['queue', 'size', 'avail idx', 'last avail', 'used idx', 'in use', 'serviced by']) head.append(el('th', undefined, x));
      t.append(head);
      for (const q of d.queues) {
        const tr = el('tr');
        const cells = q.owner === 'backend'
          ? [String(q.index), '—', '—', '—', '—', '—', 'vhost-user backend (see its rings above)']
          : [String(q.index), String(q.size), q.availIdx === null ? '?' : String(q.availIdx), q.lastAvailIdx === null ? '?' : String(q.lastAvailIdx), String(q.usedIdx), String(q.inUse), 'QEMU'];
        for (const v of cells) tr.append(el('td', undefined, v));
        t.append(tr);
      }
      box.append(t);
      out.push(box);
    }
    this.list.replaceChildren(...out);
    this.list.dataset.devices = devices.map((d) => d.name).join(',');
  }
}

class RingsApp {
  private readonly queues = new Map<number, QueueView>();
  private readonly container = document.getElementById('queues')!;
  private readonly feed = document.getElementById('feed')!;
  private readonly meta = document.getElementById('meta')!;
  private readonly pauseButton = document.getElementById('pause') as HTMLButtonElement;
  private readonly scrub = document.getElementById('scrub') as HTMLInputElement;
  private readonly back = document.getElementById('back') as HTMLButtonElement;
  private readonly fwd = document.getElementById('fwd') as HTMLButtonElement;
  private readonly posText = document.getElementById('pos')!;
  private readonly recordButton = document.getElementById('record') as HTMLButtonElement;
  private readonly openButton = document.getElementById('open') as HTMLButtonElement;
  private readonly chain = new ChainView(document.getElementById('chain')!);
  private readonly devices = new DevicesView(document.getElementById('devices-list')!);
  private readonly bytes = new Sparkline('B/s');
  private live = true;
  private replay = false;
  private recording = false;
  private pos = 0;
  private count = 0;
  private prevBytes: { bytes: number; timeMs: number } | undefined;
  private drawTimes: number[] = [];
  private pending: Extract<ToWebview, { type: 'frame' }> | undefined;
  /** kept by VS Code across reloads (the serializer gets it back); untrusted when it comes back */
  private readonly state: PanelState = parsePanelState(vscode.getState());
  /** a selection saved before a reload, applied when its queue is drawn */
  private restore = this.state.selected;
  private metaAt = -Infinity;
  private unacked = 0;
  private ack: Extract<FromWebview, { type: 'drawn' }> | undefined;
  private ackAt = -Infinity;
  private ackTimer: ReturnType<typeof setTimeout> | undefined;
  /** the newest drawn frame, whose text is written at most every TEXT_MS while live */
  private textFrame: { frame: RingsFrame; pos: number; count: number; live: boolean; rateMs: number } | undefined;
  private textAt = -Infinity;
  private textTimer: ReturnType<typeof setTimeout> | undefined;
  /** queues whose text has been written (a queue that appears gets its text at once) */
  private textQueues = new Set<number>();

  constructor() {
    document.getElementById('throughput')!.append(this.bytes.element, this.bytes.label);
    this.pauseButton.addEventListener('click', () => this.togglePause());
    this.scrub.addEventListener('input', () => vscode.postMessage({ type: 'seek', pos: Number(this.scrub.value) }));
    this.back.addEventListener('click', () => this.step(-1));
    this.fwd.addEventListener('click', () => this.step(1));
    this.recordButton.addEventListener('click', () => vscode.postMessage({ type: 'record', on: !this.recording }));
    this.openButton.addEventListener('click', () => vscode.postMessage({ type: 'openTrace' }));
    document.getElementById('devices-refresh')!.addEventListener('click', () => vscode.postMessage({ type: 'devices' }));
    document.addEventListener('keydown', (e) => {
      const target = e.target as HTMLElement | null;
      if (target && (target.tagName === 'INPUT' || target.tagName === 'CANVAS' || target.tagName === 'TR' || target.tagName === 'BUTTON')) return;
      if (e.key === 'ArrowLeft') this.step(-1);
      else if (e.key === 'ArrowRight') this.step(1);
      else if (e.key === ' ') {
        e.preventDefault();
        this.togglePause();
      }
    });
    window.addEventListener('message', (event: MessageEvent<ToWebview>) => this.onMessage(event.data));
    this.save({});
    vscode.postMessage({ type: 'ready' });
    vscode.postMessage({ type: 'devices' });
  }

  private togglePause(): void {
    vscode.postMessage({ type: this.live || (this.replay && this.pauseButton.textContent === 'Pause') ? 'pause' : 'resume' });
  }

  private step(d: number): void {
    if (this.count === 0) return;
    vscode.postMessage({ type: 'seek', pos: Math.min(this.count - 1, Math.max(0, this.pos + d)) });
  }

  private onMessage(msg: ToWebview): void {
    switch (msg.type) {
      case 'feed':
        if (msg.state === 'paused' || msg.state === 'live') this.save({ paused: msg.state === 'paused' });
        setText(this.feed, msg.message);
        this.feed.className = `feed feed-${msg.state}`;
        this.replay = msg.state === 'replay';
        setText(this.openButton, this.replay ? 'Back to live' : 'Open trace');
        this.recordButton.disabled = this.replay;
        break;
      case 'frame':
        // Coalesce: frames that arrive faster than the screen refreshes are replaced, only the
        // newest is drawn at the next animation frame (none while the page is hidden).
        if (!this.pending) requestAnimationFrame(() => {
          const f = this.pending;
          this.pending = undefined;
          if (f) this.draw(f.frame, f.cursor.pos, f.cursor.count, f.cursor.live, f.rateMs);
        });
        this.pending = msg;
        break;
      case 'chain':
        this.chain.show(msg.chain);
        break;
      case 'chainError':
        this.chain.error(msg.message);
        break;
      case 'devices':
        this.devices.show(msg.devices, msg.message);
        break;
      case 'recording':
        this.recording = msg.file !== null;
        setText(this.recordButton, this.recording ? `Stop recording (${msg.frames} frames, ${(msg.bytes / 1024).toFixed(1)} KiB)` : 'Record');
        break;
      case 'state':
        this.save({ trace: msg.trace ?? undefined });
        break;
    }
  }

  private save(change: PanelState): void {
    Object.assign(this.state, change);
    const sel = this.state.selected;
    document.body.dataset.selected = sel ? `${sel.queue}:${sel.head}` : '';
    document.body.dataset.source = this.state.trace ? 'trace' : 'live';
    vscode.setState({ ...this.state });
  }

  private pick(queue: number, head: number): void {
    this.restore = undefined;
    this.save({ selected: { queue, head } });
    vscode.postMessage({ type: 'chain', queue, head });
  }

  private draw(frame: RingsFrame, pos: number, count: number, live: boolean, rateMs: number): void {
    const jumped = !live || !this.live;
    this.live = live;
    this.pos = pos;
    this.count = count;
    setText(this.pauseButton, live ? 'Pause' : this.replay ? 'Play' : 'Live');
    let slotsDrawn = 0;
    const seen = new Set<number>();
    for (const q of frame.queues) {
      seen.add(q.index);
      let view = this.queues.get(q.index);
      if (!view) {
        view = new QueueView(q.index, (queue, head) => this.pick(queue, head));
        this.queues.set(q.index, view);
        // Data queues first, in index order (the control queue is the last one).
        const after = [...this.queues.entries()].filter(([i]) => i > q.index).sort(([a], [b]) => a - b)[0];
        if (after) this.container.insertBefore(view.root, after[1].root);
        else this.container.append(view.root);
      }
      if (jumped) view.resetMotion();
      slotsDrawn += view.update(q, frame);
      if (this.restore?.queue === q.index && view.selectSlot(this.restore.head)) this.restore = undefined;
    }
    for (const [index, view] of this.queues) {
      if (!seen.has(index)) { view.root.remove(); this.queues.delete(index); }
    }
    if (!jumped && this.prevBytes && frame.timeMs > this.prevBytes.timeMs && frame.bytes >= this.prevBytes.bytes) {
      this.bytes.push(((frame.bytes - this.prevBytes.bytes) * 1000) / (frame.timeMs - this.prevBytes.timeMs));
    }
    this.prevBytes = { bytes: frame.bytes, timeMs: frame.timeMs };
    const now = performance.now();
    this.drawTimes.push(now);
    while (this.drawTimes.length && now - this.drawTimes[0]! > 2000) this.drawTimes.shift();
    // Text at most every TEXT_MS while live, in the same animation frame as a canvas update (a text
    // update of its own would be one more frame to composite). When no frame follows (the view goes
    // idle), a timer writes the newest frame's text a moment later.
    this.textFrame = { frame, pos, count, live, rateMs };
    if (jumped || newFirstQueue(seen, this.textQueues) || now - this.textAt >= TEXT_MS) this.drawText();
    else this.textTimer ??= setTimeout(() => requestAnimationFrame(() => this.drawText()), TEXT_MS - (now - this.textAt) + TEXT_LATE_MS);
    document.body.dataset.seq = String(frame.seq);
    document.body.dataset.pos = String(pos);
    this.unacked++;
    this.ack = { type: 'drawn', seq: frame.seq, queues: frame.queues.length, slotsDrawn, frames: this.unacked };
    // Live frames are acknowledged in batches; a frame the user asked for (seek, pause) at once.
    if (!live || now - this.ackAt >= ACK_MS) this.flushAck();
    else if (!this.ackTimer) this.ackTimer = setTimeout(() => this.flushAck(), ACK_MS);
  }

  /** Writes the newest drawn frame's text: position, per-queue counters and requests, readouts. */
  private drawText(): void {
    clearTimeout(this.textTimer);
    this.textTimer = undefined;
    const t = this.textFrame;
    if (!t) return;
    const { frame, pos, count, live, rateMs } = t;
    const now = performance.now();
    this.textAt = now;
    this.scrub.max = String(Math.max(0, count - 1));
    this.scrub.value = String(pos);
    setText(this.posText, `frame ${pos + 1} / ${count}${live ? ' (live)' : ''}`);
    this.textQueues = new Set<number>();
    for (const q of frame.queues) {
      this.queues.get(q.index)?.updateText(q);
      this.textQueues.add(q.index);
    }
    this.bytes.showLabel();
    // The readout changes once a second, not per frame (each text change re-lays out the header).
    if (now - this.metaAt >= 1000 || !live) {
      this.metaAt = now;
      const fps = this.drawTimes.length / 2;
      setText(this.meta, `engine ${frame.engine} · backend pid ${frame.backendPid ?? '-'} · ${frame.requests} requests · ${fps.toFixed(1)} updates/s${rateMs ? ` (asks every ${rateMs} ms)` : ''}`);
    }
  }

  private flushAck(): void {
    clearTimeout(this.ackTimer);
    this.ackTimer = undefined;
    if (!this.ack) return;
    this.ackAt = performance.now();
    vscode.postMessage(this.ack);
    this.ack = undefined;
    this.unacked = 0;
  }
}

new RingsApp();
