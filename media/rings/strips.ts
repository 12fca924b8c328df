/**
 * Draws a queue's avail and used rings as two strips: the posted window [last_avail, avail.idx) and
 * the returned window [used_event, used.idx), with the index markers (▼ the driver's, ▲ the
 * device's), and the text readout of the indexes and ring flags below them.
 */
import type { QueueFrame } from '../../extension/vscode/rings/messages';
import { canvas, el, setText, u16 } from './dom';
import { palette } from './palette';

const STRIP_W = 320;
const STRIP_H = 12;

export class RingStrips {
  readonly canvas = canvas(STRIP_W, 2 * STRIP_H + 6, 'strips', 'avail and used rings');
  readonly text = el('div', 'strip-text');

  /** Every frame. */
  draw(q: QueueFrame): void {
    const c = this.canvas.getContext('2d')!;
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

  /** At the text rate. */
  drawText(q: QueueFrame): void {
    const flags = (v: number | null, bit: string): string => (v === null ? '?' : `0x${v.toString(16)}${v & 1 ? ` (${bit})` : ''}`);
    setText(this.text,
      `avail ring: idx ${q.availIdx ?? '?'} ▼ · last_avail / avail_event ${q.lastAvailIdx}${q.availEvent !== null && q.availEvent !== q.lastAvailIdx ? ` / ${q.availEvent}` : ''} ▲ · flags ${flags(q.availFlags, 'NO_INTERRUPT')}\n` +
      `used ring: idx ${q.usedIdx} ▼ · used_event ${q.usedEvent ?? '?'} ▲ · flags ${flags(q.usedFlags, 'NO_NOTIFY')}`);
  }
}
