/**
 * A small, dependency-free SVG chart writer for the design report: a line chart over categorical x
 * values (linear or log10 y axis) and a horizontal bar chart. Pure functions of their input — the
 * same data gives the same bytes (fixed number formatting, no clocks, no randomness).
 */

export interface Series {
  readonly label: string;
  /** One value per category; undefined leaves a gap. */
  readonly values: readonly (number | undefined)[];
  readonly color: string;
  readonly dashed?: boolean;
}

export interface LineChartSpec {
  readonly title: string;
  readonly xLabel: string;
  readonly yLabel: string;
  readonly categories: readonly string[];
  readonly series: readonly Series[];
  readonly logY: boolean;
  /** Small print under the plot: machine, accelerator, provenance. */
  readonly footer: readonly string[];
}

export interface Bar {
  readonly label: string;
  readonly value: number;
  readonly color: string;
}

export interface BarChartSpec {
  readonly title: string;
  readonly xLabel: string;
  readonly bars: readonly Bar[];
  /** Printed after each bar's value, e.g. " s". */
  readonly unit: string;
  readonly footer: readonly string[];
}

export const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b'] as const;

const W = 760;
const FONT = 'font-family="DejaVu Sans, Arial, sans-serif"';

export function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** 3 significant digits at most, with k/M suffixes: stable text for axis ticks and labels. */
export function fmtNum(v: number): string {
  const a = Math.abs(v);
  const trim = (x: number, d: number): string => x.toFixed(d).replace(/\.?0+$/, '');
  if (a >= 1e6) return `${trim(v / 1e6, a >= 1e8 ? 0 : a >= 1e7 ? 1 : 2)}M`;
  if (a >= 1e3) return `${trim(v / 1e3, a >= 1e5 ? 0 : a >= 1e4 ? 1 : 2)}k`;
  if (a >= 100) return v.toFixed(0);
  if (a >= 10) return trim(v, 1);
  if (a >= 1) return trim(v, 2);
  if (a === 0) return '0';
  return trim(v, 3);
}

function f(v: number): string {
  return (Math.round(v * 10) / 10).toFixed(1);
}

function niceLinearTicks(max: number): number[] {
  if (max <= 0) return [0, 1];
  const raw = max / 5;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const ticks: number[] = [];
  for (let t = 0; t <= max + step * 0.999; t += step) ticks.push(Math.round(t / step) * step);
  return ticks;
}

const FOOTER_CHARS = 118;

/** Greedy word wrap at `width` characters (a word longer than that gets a line of its own). */
export function wrap(text: string, width: number): string[] {
  const out: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (line && line.length + 1 + word.length > width) {
      out.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line) out.push(line);
  return out;
}

function wrapAll(lines: readonly string[]): string[] {
  return lines.flatMap((l) => wrap(l, FOOTER_CHARS));
}

function footerLines(lines: readonly string[], y0: number): string {
  return wrapAll(lines).map((l, i) => `<text x="16" y="${f(y0 + i * 14)}" font-size="10.5" fill="#444" ${FONT}>${esc(l)}</text>`).join('\n');
}

export function lineChart(spec: LineChartSpec): string {
  const left = 78;
  const right = 215;
  const top = 46;
  const plotH = 300;
  const plotW = W - left - right;
  const footerTop = top + plotH + 58;
  const H = footerTop + wrapAll(spec.footer).length * 14 + 8;
  const all = spec.series.flatMap((s) => s.values.filter((v): v is number => v !== undefined && Number.isFinite(v) && (!spec.logY || v > 0)));
  let yOf: (v: number) => number;
  let ticks: number[];
  if (spec.logY) {
    const lo = Math.floor(Math.log10(Math.min(...all, 1e12)));
    const hi = Math.max(lo + 1, Math.ceil(Math.log10(Math.max(...all, 1e-12))));
    ticks = [];
    for (let e = lo; e <= hi; e++) ticks.push(10 ** e);
    yOf = (v) => top + plotH - ((Math.log10(v) - lo) / (hi - lo)) * plotH;
  } else {
    ticks = niceLinearTicks(Math.max(...all, 0));
    const max = ticks[ticks.length - 1];
    yOf = (v) => top + plotH - (v / max) * plotH;
  }
  const n = spec.categories.length;
  const xOf = (i: number): number => left + (n === 1 ? plotW / 2 : 30 + (i * (plotW - 60)) / (n - 1));
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}">`);
  out.push(`<rect width="${W}" height="${H}" fill="#ffffff"/>`);
  out.push(`<text x="${W / 2}" y="24" text-anchor="middle" font-size="15" font-weight="bold" ${FONT}>${esc(spec.title)}</text>`);
  for (const t of ticks) {
    const y = yOf(t);
    out.push(`<line x1="${left}" y1="${f(y)}" x2="${left + plotW}" y2="${f(y)}" stroke="#e3e3e3"/>`);
    out.push(`<text x="${left - 6}" y="${f(y + 4)}" text-anchor="end" font-size="11" ${FONT}>${fmtNum(t)}</text>`);
  }
  out.push(`<rect x="${left}" y="${top}" width="${plotW}" height="${plotH}" fill="none" stroke="#888"/>`);
  spec.categories.forEach((c, i) => {
    out.push(`<line x1="${f(xOf(i))}" y1="${top + plotH}" x2="${f(xOf(i))}" y2="${top + plotH + 5}" stroke="#888"/>`);
    out.push(`<text x="${f(xOf(i))}" y="${top + plotH + 19}" text-anchor="middle" font-size="11" ${FONT}>${esc(c)}</text>`);
  });
  out.push(`<text x="${f(left + plotW / 2)}" y="${top + plotH + 38}" text-anchor="middle" font-size="12" ${FONT}>${esc(spec.xLabel)}</text>`);
  out.push(`<text transform="translate(18 ${f(top + plotH / 2)}) rotate(-90)" text-anchor="middle" font-size="12" ${FONT}>${esc(spec.yLabel + (spec.logY ? ' (log scale)' : ''))}</text>`);
  spec.series.forEach((s, si) => {
    const dash = s.dashed ? ' stroke-dasharray="6 4"' : '';
    let d = '';
    let pen = false;
    s.values.forEach((v, i) => {
      if (v === undefined || !Number.isFinite(v) || (spec.logY && v <= 0)) {
        pen = false;
        return;
      }
      d += `${pen ? 'L' : 'M'}${f(xOf(i))} ${f(yOf(v))} `;
      pen = true;
    });
    if (d) out.push(`<path d="${d.trim()}" fill="none" stroke="${s.color}" stroke-width="2"${dash}/>`);
    s.values.forEach((v, i) => {
      if (v === undefined || !Number.isFinite(v) || (spec.logY && v <= 0)) return;
      out.push(`<circle cx="${f(xOf(i))}" cy="${f(yOf(v))}" r="3.5" fill="${s.color}"><title>${esc(`${s.label}, ${spec.categories[i]}: ${fmtNum(v)}`)}</title></circle>`);
    });
    const ly = top + 10 + si * 20;
    const lx = left + plotW + 14;
    out.push(`<line x1="${lx}" y1="${ly}" x2="${lx + 24}" y2="${ly}" stroke="${s.color}" stroke-width="2"${dash}/>`);
    out.push(`<text x="${lx + 30}" y="${ly + 4}" font-size="11" ${FONT}>${esc(s.label)}</text>`);
  });
  out.push(footerLines(spec.footer, footerTop));
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}

export function barChart(spec: BarChartSpec): string {
  const left = 190;
  const right = 90;
  const top = 46;
  const barH = 22;
  const gap = 10;
  const plotW = W - left - right;
  const plotH = spec.bars.length * (barH + gap) + gap;
  const ticks = niceLinearTicks(Math.max(...spec.bars.map((b) => b.value), 0));
  const max = ticks[ticks.length - 1];
  const xOf = (v: number): number => left + (v / max) * plotW;
  const footerTop = top + plotH + 50;
  const H = footerTop + wrapAll(spec.footer).length * 14 + 8;
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}">`);
  out.push(`<rect width="${W}" height="${H}" fill="#ffffff"/>`);
  out.push(`<text x="${W / 2}" y="24" text-anchor="middle" font-size="15" font-weight="bold" ${FONT}>${esc(spec.title)}</text>`);
  for (const t of ticks) {
    out.push(`<line x1="${f(xOf(t))}" y1="${top}" x2="${f(xOf(t))}" y2="${top + plotH}" stroke="#e3e3e3"/>`);
    out.push(`<text x="${f(xOf(t))}" y="${top + plotH + 16}" text-anchor="middle" font-size="11" ${FONT}>${fmtNum(t)}</text>`);
  }
  spec.bars.forEach((b, i) => {
    const y = top + gap + i * (barH + gap);
    out.push(`<text x="${left - 8}" y="${f(y + barH / 2 + 4)}" text-anchor="end" font-size="11.5" ${FONT}>${esc(b.label)}</text>`);
    out.push(`<rect x="${left}" y="${y}" width="${f(Math.max(0.5, xOf(b.value) - left))}" height="${barH}" fill="${b.color}"/>`);
    out.push(`<text x="${f(xOf(b.value) + 6)}" y="${f(y + barH / 2 + 4)}" font-size="11.5" ${FONT}>${esc(`${fmtNum(b.value)}${spec.unit}`)}</text>`);
  });
  out.push(`<rect x="${left}" y="${top}" width="${plotW}" height="${plotH}" fill="none" stroke="#888"/>`);
  out.push(`<text x="${f(left + plotW / 2)}" y="${top + plotH + 34}" text-anchor="middle" font-size="12" ${FONT}>${esc(spec.xLabel)}</text>`);
  out.push(footerLines(spec.footer, footerTop));
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
