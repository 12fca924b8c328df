/**
 * Draws the kicks (up) and interrupts (down) per frame on a timeline that scrolls left by one tick
 * each frame (the canvas is copied onto itself: no per-tick DOM), with its caption.
 */
import { canvas, el } from './dom';
import { palette } from './palette';

const TIMELINE_W = 320;
const TIMELINE_H = 36;
const TICK_W = 3;

export class KickTimeline {
  readonly caption = el('div', 'caption', 'kicks ▲ / interrupts ▼ per frame');
  readonly canvas = canvas(TIMELINE_W, TIMELINE_H, 'timeline', 'kicks (up) and interrupts (down) per frame');

  tick(kicks: number, interrupts: number): void {
    const c = this.canvas.getContext('2d')!;
    const dpr = this.canvas.width / TIMELINE_W;
    // Scroll left by one tick: copy the canvas onto itself (no per-tick DOM).
    c.save();
    c.setTransform(1, 0, 0, 1, 0, 0);
    c.globalCompositeOperation = 'copy';
    c.drawImage(this.canvas, -TICK_W * dpr, 0);
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
}
