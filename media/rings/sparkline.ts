/**
 * Draws a rate history (requests/s of a queue, bytes/s of the backend) on a small canvas, one path
 * per update (no SVG re-layout), with the newest value as a text label written at the text rate.
 */
import { canvas, el, setText } from './dom';
import { palette } from './palette';

const SPARK_POINTS = 120;
const SPARK_W = 160;
const SPARK_H = 30;

function formatRate(v: number): string {
  if (v >= 1e6) return `${(v / 1e6).toFixed(1)}M`;
  if (v >= 1e3) return `${(v / 1e3).toFixed(1)}k`;
  return v.toFixed(v < 10 ? 1 : 0);
}

export class Sparkline {
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
