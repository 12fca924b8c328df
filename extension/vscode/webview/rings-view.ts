/**
 * The rings webview (browser side). Draws each virtqueue as a ring of descriptor slots coloured by
 * state, the avail/used indexes as hands, in-flight count, recent requests and throughput
 * sparklines. Built into media/build/rings.js by webpack; shares its message types with the
 * extension through ../rings/messages.ts. DOM is built with createElement/textContent only.
 */
import { SLOT_STATES, type FromWebview, type QueueFrame, type RingsFrame, type ToWebview } from '../rings/messages';

interface VsCodeApi {
  postMessage(message: FromWebview): void;
}
declare function acquireVsCodeApi(): VsCodeApi;

const vscode = acquireVsCodeApi();
const SVG = 'http://www.w3.org/2000/svg';
const RING_R = 100;
const SPARK_POINTS = 120;
const MAX_MARKERS = 256;

const codeToState: Record<string, string> = { f: 'free', a: 'avail', b: 'backend', u: 'used' };

function el<K extends keyof HTMLElementTagNameMap>(tag: K, cls?: string, textContent?: string): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (textContent !== undefined) e.textContent = textContent;
  return e;
}

function svg<K extends keyof SVGElementTagNameMap>(tag: K, attrs: Record<string, string | number>): SVGElementTagNameMap[K] {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  return e;
}

function polar(angle: number, r: number): [number, number] {
  return [Math.sin(angle) * r, -Math.cos(angle) * r];
}

/** Wedge path for slot i of n, between radii r0 and r1. */
function wedge(i: number, n: number, r0: number, r1: number): string {
  const gap = n > 256 ? 0 : 0.08;
  const a0 = ((i + gap / 2) / n) * 2 * Math.PI;
  const a1 = ((i + 1 - gap / 2) / n) * 2 * Math.PI;
  const [x0, y0] = polar(a0, r1);
  const [x1, y1] = polar(a1, r1);
  const [x2, y2] = polar(a1, r0);
  const [x3, y3] = polar(a0, r0);
  const f = (v: number): string => v.toFixed(2);
  return `M${f(x0)} ${f(y0)}A${r1} ${r1} 0 0 1 ${f(x1)} ${f(y1)}L${f(x2)} ${f(y2)}A${r0} ${r0} 0 0 0 ${f(x3)} ${f(y3)}Z`;
}

class Sparkline {
  private readonly values: number[] = [];
  readonly element = svg('svg', { class: 'spark', viewBox: `0 0 ${SPARK_POINTS} 30`, preserveAspectRatio: 'none' });
  private readonly line = svg('polyline', { class: 'spark-line', points: '' });
  readonly label = el('span', 'spark-label');

  constructor(private readonly unit: string) {
    this.element.append(this.line);
  }

  push(v: number): void {
    this.values.push(v);
    if (this.values.length > SPARK_POINTS) this.values.shift();
    const max = Math.max(1, ...this.values);
    const start = SPARK_POINTS - this.values.length;
    this.line.setAttribute('points', this.values.map((x, i) => `${start + i},${(29 - (x / max) * 28).toFixed(1)}`).join(' '));
    this.label.textContent = `${formatRate(v)} ${this.unit}`;
  }
}

function formatRate(v: number): string {
  if (v >= 1e6) return `${(v / 1e6).toFixed(1)}M`;
  if (v >= 1e3) return `${(v / 1e3).toFixed(1)}k`;
  return v.toFixed(v < 10 ? 1 : 0);
}

class QueueView {
  readonly root = el('section', 'queue');
  private readonly title = el('h2');
  private readonly ring = svg('svg', { class: 'ring', viewBox: '-120 -120 240 240', role: 'img' });
  private readonly slotGroup = svg('g', { class: 'slots' });
  /** a dot outside the ring for every slot that is not free: one slot of 1024 is too thin to see */
  private readonly markerGroup = svg('g', { class: 'markers' });
  private readonly availHand = svg('line', { class: 'hand hand-avail', x1: 0, y1: 0, x2: 0, y2: -RING_R });
  private readonly usedHand = svg('line', { class: 'hand hand-used', x1: 0, y1: 0, x2: 0, y2: -RING_R });
  private readonly lastAvailHand = svg('line', { class: 'hand hand-last', x1: 0, y1: 0, x2: 0, y2: -RING_R + 18 });
  private readonly center = svg('text', { class: 'center', x: 0, y: 6, 'text-anchor': 'middle' });
  private readonly stats = el('dl', 'stats');
  private readonly rate = new Sparkline('req/s');
  private readonly table = el('table', 'recent');
  private slotPaths: SVGPathElement[] = [];
  private prev: { usedIdx: number; timeMs: number } | undefined;

  constructor() {
    this.ring.append(this.slotGroup, this.markerGroup, this.lastAvailHand, this.usedHand, this.availHand, svg('circle', { class: 'hub', r: 4 }), this.center);
    const spark = el('div', 'spark-row');
    spark.append(this.rate.element, this.rate.label);
    const body = el('div', 'queue-body');
    const side = el('div', 'queue-side');
    side.append(this.stats, spark);
    body.append(this.ring, side);
    this.root.append(this.title, body, this.table);
  }

  /** Returns how many slot wedges were drawn. */
  update(q: QueueFrame, timeMs: number): number {
    this.title.textContent = `${q.label} · queue ${q.index} · size ${q.size}${q.source === 'qmp' ? ' · from QMP' : ''}`;
    const n = q.slots.length;
    if (n !== this.slotPaths.length) {
      this.slotGroup.replaceChildren();
      this.slotPaths = [];
      for (let i = 0; i < n; i++) {
        const p = svg('path', { d: wedge(i, n, RING_R - 16, RING_R), class: 'slot slot-free' });
        this.slotPaths.push(p);
        this.slotGroup.append(p);
      }
      if (n === 0) this.slotGroup.append(svg('circle', { class: 'slot slot-unknown', r: RING_R - 8, fill: 'none', 'stroke-width': 16 }));
    }
    for (let i = 0; i < n; i++) {
      const cls = `slot slot-${codeToState[q.slots[i]!] ?? 'free'}`;
      const p = this.slotPaths[i]!;
      if (p.getAttribute('class') !== cls) p.setAttribute('class', cls);
    }
    this.markerGroup.replaceChildren();
    let markers = 0;
    for (let i = 0; i < n && markers < MAX_MARKERS; i++) {
      const state = codeToState[q.slots[i]!] ?? 'free';
      if (state === 'free') continue;
      const [x, y] = polar(((i + 0.5) / n) * 2 * Math.PI, RING_R + 7);
      this.markerGroup.append(svg('circle', { class: `marker slot-${state}`, cx: x.toFixed(1), cy: y.toFixed(1), r: 3.5 }));
      markers++;
    }
    const size = Math.max(1, q.size);
    const angle = (idx: number): string => `rotate(${(((idx % size) / size) * 360).toFixed(2)})`;
    this.availHand.setAttribute('transform', angle(q.availIdx));
    this.usedHand.setAttribute('transform', angle(q.usedIdx));
    this.lastAvailHand.setAttribute('transform', angle(q.lastAvailIdx));
    this.center.textContent = `${q.inFlight} in flight`;

    const counts: Record<string, number> = { free: 0, avail: 0, backend: 0, used: 0 };
    for (const c of q.slots) counts[codeToState[c] ?? 'free']!++;
    this.stats.replaceChildren();
    const row = (k: string, v: string, cls?: string): void => {
      const dt = el('dt', cls, k);
      this.stats.append(dt, el('dd', undefined, v));
    };
    row('avail idx', String(q.availIdx), 'key-avail');
    row('used idx', String(q.usedIdx), 'key-used');
    row('last avail', String(q.lastAvailIdx), 'key-last');
    row('posted, not taken', String((q.availIdx - q.lastAvailIdx) & 0xffff)); // u16 distance (virtio 1.2 §2.7.6)
    row('in flight', String(q.inFlight));
    if (n > 0) for (const s of SLOT_STATES) row(`${s} slots`, String(counts[s]), `legend legend-${s}`);

    if (this.prev && timeMs > this.prev.timeMs) {
      const done = (q.usedIdx - this.prev.usedIdx) & 0xffff; // u16 wrap (virtio 1.2 §2.7.8)
      this.rate.push((done * 1000) / (timeMs - this.prev.timeMs));
    }
    this.prev = { usedIdx: q.usedIdx, timeMs };

    this.table.replaceChildren();
    if (q.recent.length) {
      const head = el('tr');
      for (const h of ['opcode', 'session', 'src', 'dst', 'status', 'latency']) head.append(el('th', undefined, h));
      this.table.append(head);
      for (const r of [...q.recent].reverse()) {
        const tr = el('tr', r.status === 'OK' ? undefined : 'bad');
        for (const v of [r.opcode, r.session, String(r.srcLen), String(r.dstLen), r.status, `${r.latencyUs} µs`]) tr.append(el('td', undefined, v));
        this.table.append(tr);
      }
    }
    return n;
  }
}

class RingsApp {
  private readonly queues = new Map<number, QueueView>();
  private readonly container = document.getElementById('queues')!;
  private readonly feed = document.getElementById('feed')!;
  private readonly meta = document.getElementById('meta')!;
  private readonly pauseButton = document.getElementById('pause') as HTMLButtonElement;
  private readonly stepButton = document.getElementById('step') as HTMLButtonElement;
  private readonly bytes = new Sparkline('B/s');
  private paused = false;
  private prevBytes: { bytes: number; timeMs: number } | undefined;
  private drawTimes: number[] = [];

  constructor() {
    document.getElementById('throughput')!.append(this.bytes.element, this.bytes.label);
    this.pauseButton.addEventListener('click', () => {
      this.paused = !this.paused;
      this.pauseButton.textContent = this.paused ? 'Resume' : 'Pause';
      this.stepButton.disabled = !this.paused;
      vscode.postMessage({ type: this.paused ? 'pause' : 'resume' });
    });
    this.stepButton.addEventListener('click', () => vscode.postMessage({ type: 'step' }));
    window.addEventListener('message', (event: MessageEvent<ToWebview>) => this.onMessage(event.data));
    vscode.postMessage({ type: 'ready' });
  }

  private onMessage(msg: ToWebview): void {
    if (msg.type === 'feed') {
      this.feed.textContent = msg.message;
      this.feed.className = `feed feed-${msg.state}`;
      return;
    }
    if (msg.type === 'frame') this.draw(msg.frame);
  }

  private draw(frame: RingsFrame): void {
    let slotsDrawn = 0;
    const seen = new Set<number>();
    for (const q of frame.queues) {
      seen.add(q.index);
      let view = this.queues.get(q.index);
      if (!view) {
        view = new QueueView();
        this.queues.set(q.index, view);
        this.container.append(view.root);
      }
      slotsDrawn += view.update(q, frame.timeMs);
    }
    for (const [index, view] of this.queues) {
      if (!seen.has(index)) { view.root.remove(); this.queues.delete(index); }
    }
    if (this.prevBytes && frame.timeMs > this.prevBytes.timeMs && frame.bytes >= this.prevBytes.bytes) {
      this.bytes.push(((frame.bytes - this.prevBytes.bytes) * 1000) / (frame.timeMs - this.prevBytes.timeMs));
    }
    this.prevBytes = { bytes: frame.bytes, timeMs: frame.timeMs };
    const now = performance.now();
    this.drawTimes.push(now);
    while (this.drawTimes.length && now - this.drawTimes[0]! > 2000) this.drawTimes.shift();
    const fps = this.drawTimes.length / 2;
    this.meta.textContent = `engine ${frame.engine} · backend pid ${frame.backendPid ?? '-'} · frame ${frame.seq} · ${fps.toFixed(1)} updates/s`;
    document.body.dataset.seq = String(frame.seq);
    vscode.postMessage({ type: 'drawn', seq: frame.seq, queues: frame.queues.length, slotsDrawn });
  }
}

new RingsApp();
