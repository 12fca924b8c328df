/**
 * Bar chart of benchmark results as SVG markup (no script needed in the webview). Each group
 * shows the measured value beside the reference measured in the same run. Pure: unit-tested.
 */
export interface BenchGroup {
  /** e.g. "AES-256-CBC 4 KiB, depth 64" */
  label: string;
  unit: string;
  bars: { label: string; value: number; reference?: boolean }[];
}

function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

function fmt(v: number): string {
  if (!Number.isFinite(v)) return '?';
  if (Math.abs(v) >= 1e9) return `${(v / 1e9).toFixed(2)}G`;
  if (Math.abs(v) >= 1e6) return `${(v / 1e6).toFixed(2)}M`;
  if (Math.abs(v) >= 1e3) return `${(v / 1e3).toFixed(1)}k`;
  return v.toFixed(v < 10 ? 2 : 0);
}

const ROW_H = 22;
const LABEL_W = 220;
const BAR_W = 380;
const WIDTH = LABEL_W + BAR_W + 90;

export function benchChartSvg(groups: readonly BenchGroup[]): string {
  let y = 10;
  const parts: string[] = [];
  for (const g of groups) {
    const max = Math.max(1e-9, ...g.bars.map((b) => (Number.isFinite(b.value) ? b.value : 0)));
    parts.push(`<text class="group" x="0" y="${y + 14}">${esc(g.label)} (${esc(g.unit)})</text>`);
    y += ROW_H;
    for (const b of g.bars) {
      const w = Number.isFinite(b.value) && b.value > 0 ? Math.max(1, (b.value / max) * BAR_W) : 0;
      parts.push(
        `<text class="bar-label" x="${LABEL_W - 8}" y="${y + 14}" text-anchor="end">${esc(b.label)}</text>`,
        `<rect class="bar ${b.reference ? 'bar-reference' : 'bar-measured'}" x="${LABEL_W}" y="${y + 3}" width="${w.toFixed(1)}" height="${ROW_H - 6}"><title>${esc(b.label)}: ${esc(fmt(b.value))} ${esc(g.unit)}</title></rect>`,
        `<text class="bar-value" x="${(LABEL_W + w + 6).toFixed(1)}" y="${y + 14}">${esc(fmt(b.value))}</text>`,
      );
      y += ROW_H;
    }
    y += 10;
  }
  return `<svg class="bench-chart" xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${y}" viewBox="0 0 ${WIDTH} ${y}" role="img">${parts.join('')}</svg>`;
}
