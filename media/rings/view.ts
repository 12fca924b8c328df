/**
 * The rings webview (browser side), its entry: takes the panel's messages, keeps the view's state
 * with VS Code (setState), and wires the parts that draw. Per queue (queue-view.ts): the descriptor
 * table as a grid of slots coloured by state (grid.ts), the avail and used rings as strips
 * (strips.ts), kick / interrupt ticks on a scrolling timeline (timeline.ts) and the recent requests
 * (recent-table.ts). Click or keyboard-select a slot or a request → its decoded chain
 * (chain-view.ts); the VM's virtio devices (devices-view.ts); the header's pause, history scrubber,
 * record and replay (controls.ts). Built into media/build/rings.js by webpack; DOM is built with
 * createElement/textContent only. Colours are the theme's (palette.ts).
 *
 * Per frame this file decides what is drawn when: frames are coalesced to one per animation frame,
 * canvases follow every frame, text is paced (TEXT_MS), drawn frames are acknowledged in batches
 * (drawn-acks.ts).
 */
import { parsePanelState, type FromWebview, type PanelState, type RingsFrame, type ToWebview } from '../../extension/vscode/rings/messages';
import { ChainView } from './chain-view';
import { Controls } from './controls';
import { DevicesView } from './devices-view';
import { setText } from './dom';
import { DrawnAcks } from './drawn-acks';
import { QueueView } from './queue-view';
import { Sparkline } from './sparkline';

interface VsCodeApi {
  postMessage(message: FromWebview): void;
  setState(state: unknown): void;
  getState(): unknown;
}
declare function acquireVsCodeApi(): VsCodeApi;

const vscode = acquireVsCodeApi();
const post = (message: FromWebview): void => vscode.postMessage(message);
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

/** True when a queue in `seen` has never had its text written (it just appeared). */
function newFirstQueue(seen: ReadonlySet<number>, written: ReadonlySet<number>): boolean {
  for (const q of seen) if (!written.has(q)) return true;
  return false;
}

class RingsApp {
  private readonly queues = new Map<number, QueueView>();
  private readonly container = document.getElementById('queues')!;
  private readonly meta = document.getElementById('meta')!;
  private readonly controls = new Controls(post);
  private readonly chain = new ChainView(document.getElementById('chain')!);
  private readonly devices = new DevicesView(document.getElementById('devices-list')!);
  private readonly bytes = new Sparkline('B/s');
  private readonly acks = new DrawnAcks(post);
  private prevBytes: { bytes: number; timeMs: number } | undefined;
  private drawTimes: number[] = [];
  private pending: Extract<ToWebview, { type: 'frame' }> | undefined;
  /** kept by VS Code across reloads (the serializer gets it back); untrusted when it comes back */
  private readonly state: PanelState = parsePanelState(vscode.getState());
  /** a selection saved before a reload, applied when its queue is drawn */
  private restore = this.state.selected;
  private metaAt = -Infinity;
  /** the newest drawn frame, whose text is written at most every TEXT_MS while live */
  private textFrame: { frame: RingsFrame; pos: number; count: number; live: boolean; rateMs: number } | undefined;
  private textAt = -Infinity;
  private textTimer: ReturnType<typeof setTimeout> | undefined;
  /** queues whose text has been written (a queue that appears gets its text at once) */
  private textQueues = new Set<number>();

  constructor() {
    document.getElementById('throughput')!.append(this.bytes.element, this.bytes.label);
    window.addEventListener('message', (event: MessageEvent<ToWebview>) => this.onMessage(event.data));
    this.save({});
    post({ type: 'ready' });
    post({ type: 'devices' });
  }

  private onMessage(msg: ToWebview): void {
    switch (msg.type) {
      case 'feed':
        if (msg.state === 'paused' || msg.state === 'live') this.save({ paused: msg.state === 'paused' });
        this.controls.showFeed(msg.state, msg.message);
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
        this.controls.showRecording(msg.file, msg.frames, msg.bytes);
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
    post({ type: 'chain', queue, head });
  }

  private draw(frame: RingsFrame, pos: number, count: number, live: boolean, rateMs: number): void {
    const jumped = !live || !this.controls.isLive;
    this.controls.showCursor(pos, count, live);
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
    // Live frames are acknowledged in batches; a frame the user asked for (seek, pause) at once.
    this.acks.drawn(frame.seq, frame.queues.length, slotsDrawn, now, !live);
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
    this.controls.showPosition(pos, count, live);
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
}

new RingsApp();
