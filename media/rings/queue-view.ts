/**
 * Draws one virtqueue: its title, counters, request-rate sparkline, descriptor grid (grid.ts), ring
 * strips (strips.ts), kick/interrupt timeline (timeline.ts) and recent requests (recent-table.ts).
 * The canvases follow every frame (update); the text is written at the text rate (updateText).
 */
import { SLOT_LABEL, SLOT_STATES, slotStateOf, type SlotState } from '../../backend/telemetry/schema';
import type { QueueFrame, RingsFrame } from '../../extension/vscode/rings/messages';
import { el, setText, u16 } from './dom';
import { DescriptorGrid } from './grid';
import { RecentTable } from './recent-table';
import { Sparkline } from './sparkline';
import { RingStrips } from './strips';
import { KickTimeline } from './timeline';

export class QueueView {
  readonly root = el('section', 'queue');
  private readonly title = el('h2');
  private readonly grid: DescriptorGrid;
  private readonly strips = new RingStrips();
  private readonly timeline = new KickTimeline();
  private readonly stats = el('dl', 'stats');
  private readonly statCells = new Map<string, HTMLElement>();
  private readonly recent: RecentTable;
  private readonly rate = new Sparkline('req/s');
  private seenFrames = 0;
  private prev: { usedIdx: number; timeMs: number; kicks: number; interrupts: number } | undefined;

  /** `onPick(queue, head)`: a slot or a recent request of this queue was picked */
  constructor(private readonly queueIndex: number, onPick: (queue: number, head: number) => void) {
    this.grid = new DescriptorGrid((head) => onPick(this.queueIndex, head));
    this.recent = new RecentTable((head) => onPick(this.queueIndex, head));
    const side = el('div', 'queue-side');
    const spark = el('div', 'spark-row');
    spark.append(this.rate.element, this.rate.label);
    side.append(this.stats, spark, this.strips.canvas, this.strips.text, this.timeline.caption, this.timeline.canvas);
    const body = el('div', 'queue-body');
    body.append(this.grid.root, side);
    this.root.append(this.title, body, this.recent.root);
  }

  /** Selects slot `i` and asks its chain (restoring a selection); false while the slot is not drawn yet. */
  selectSlot(i: number): boolean {
    return this.grid.selectSlot(i);
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

  /** Draws the frame's canvases (every frame); returns how many slot cells were painted. */
  update(q: QueueFrame, frame: RingsFrame): number {
    const painted = this.grid.draw(q);
    this.strips.draw(q);
    if (this.prev && frame.timeMs > this.prev.timeMs) {
      this.rate.push((u16(q.usedIdx - this.prev.usedIdx) * 1000) / (frame.timeMs - this.prev.timeMs));
      if (q.source === 'backend') this.timeline.tick(Math.max(0, frame.kicks - this.prev.kicks), Math.max(0, frame.interrupts - this.prev.interrupts));
    }
    this.prev = { usedIdx: q.usedIdx, timeMs: frame.timeMs, kicks: frame.kicks, interrupts: frame.interrupts };
    this.seenFrames++;
    return painted;
  }

  /** Writes the frame's text: title, counters, index readouts, the recent requests (at the text rate). */
  updateText(q: QueueFrame): void {
    setText(this.title, `${q.label} · queue ${q.index} · size ${q.size}${q.source === 'qmp' ? ' · from QMP (QEMU services it)' : ''}`);
    this.strips.drawText(q);
    this.rate.showLabel();
    const counts: Record<SlotState, number> = { free: 0, posted: 0, device: 0, returned: 0 };
    for (const ch of q.slots) counts[slotStateOf(ch) ?? 'free']++;
    this.stat('avail idx', q.availIdx === null ? '? (not reported)' : String(q.availIdx), 'key-avail');
    this.stat('used idx', String(q.usedIdx), 'key-used');
    this.stat('last avail', String(q.lastAvailIdx), 'key-last');
    this.stat('posted, not taken', q.availIdx === null ? '?' : String(u16(q.availIdx - q.lastAvailIdx))); // u16 distance (virtio 1.2 §2.7.6)
    this.stat('in flight', String(q.inFlight));
    if (q.slots.length > 0) for (const s of SLOT_STATES) this.stat(`${SLOT_LABEL[s]}`, String(counts[s]), `legend legend-${s}`);
    // Requests first seen under a second ago are highlighted, except in the queue's first frame.
    this.recent.draw(q, performance.now(), this.seenFrames > 1);
  }

  /** Forgets the previous frame (after a jump: no rate or tick across it). */
  resetMotion(): void {
    this.prev = undefined;
  }
}
