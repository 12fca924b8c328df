/**
 * Draws a queue's descriptor table as a grid of slots coloured by state (one canvas; only the cells
 * whose state changed are repainted) with its legend. A slot is selected by click or the arrow
 * keys; click or Enter picks it (its decoded chain is asked for).
 */
import { SLOT_LABEL, SLOT_STATES, slotStateOf } from '../../backend/telemetry/schema';
import type { QueueFrame } from '../../extension/vscode/rings/messages';
import { canvas, canvasScale, el } from './dom';
import { palette } from './palette';

const CELL = 9;
const GAP = 1;
const GRID_COLS = 32;

export class DescriptorGrid {
  /** the grid canvas and its legend */
  readonly root = el('div', 'grid-box');
  private readonly grid: HTMLCanvasElement;
  private readonly gridCtx: CanvasRenderingContext2D;
  private drawnSlots = '';
  private size = -1;
  private selected = -1;

  /** `onPick(head)`: a slot was clicked or Enter pressed on it */
  constructor(private readonly onPick: (head: number) => void) {
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
        if (this.selected >= 0) this.onPick(this.selected);
      }
    });
    const legend = el('div', 'legend-row');
    for (const s of SLOT_STATES) {
      const item = el('span', `legend legend-${s}`, SLOT_LABEL[s]);
      legend.append(item);
    }
    this.root.append(this.grid, legend);
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
    if (pick) this.onPick(i);
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
  draw(q: QueueFrame): number {
    if (q.size !== this.size) {
      this.size = q.size;
      const cols = this.cols();
      const rows = Math.max(1, Math.ceil(q.slots.length / cols));
      const dpr = canvasScale();
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
}
