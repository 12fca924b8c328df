/**
 * Reads docs/report/data/*.json and produces every figure of docs/report.md. Deterministic: the
 * same files give byte-identical SVG, so a test can regenerate and compare.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DATA_FILES, parseBackend, parseBoot, parseChat, parseE2e } from './data';
import { type Figure, backendFigure, bootFigure, chatFigure, e2eFigure } from './figures';
import { backendTable, bootTable, chatTable, e2eTable, spliceGenerated } from './tables';

export const REPORT_DATA_DIR = join('docs', 'report', 'data');
export const REPORT_FIGURES_DIR = join('docs', 'report', 'figures');
export const REPORT_MARKDOWN = join('docs', 'report.md');

function load(dataDir: string, file: string): unknown {
  return JSON.parse(readFileSync(join(dataDir, file), 'utf8')) as unknown;
}

/** Every figure that can be drawn from the data present (a missing file means no figure, not an error). */
export function buildFigures(dataDir: string): Figure[] {
  const figs: Figure[] = [];
  const has = (f: string): boolean => existsSync(join(dataDir, f));
  if (has(DATA_FILES.e2e)) figs.push(e2eFigure(parseE2e(load(dataDir, DATA_FILES.e2e), DATA_FILES.e2e)));
  if (has(DATA_FILES.backend)) figs.push(backendFigure(parseBackend(load(dataDir, DATA_FILES.backend), DATA_FILES.backend)));
  if (has(DATA_FILES.chat)) figs.push(chatFigure(parseChat(load(dataDir, DATA_FILES.chat), DATA_FILES.chat)));
  if (has(DATA_FILES.boot)) figs.push(bootFigure(parseBoot(load(dataDir, DATA_FILES.boot), DATA_FILES.boot)));
  return figs;
}

export function writeFigures(dataDir: string, figuresDir: string): Figure[] {
  const figs = buildFigures(dataDir);
  mkdirSync(figuresDir, { recursive: true });
  for (const fig of figs) writeFileSync(join(figuresDir, fig.file), fig.svg);
  return figs;
}

/** The figure files a Markdown document embeds (`![..](report/figures/x.svg)`), in order. */
export function embeddedFigures(markdown: string): string[] {
  const out: string[] = [];
  const re = /!\[[^\]]*\]\(([^)\s]+\.svg)\)/g;
  for (let m = re.exec(markdown); m; m = re.exec(markdown)) out.push(m[1]);
  return out;
}

/** The generated number tables, by block name (`<!-- generated:NAME -->` in docs/report.md). */
export function buildTables(dataDir: string): Map<string, string> {
  const out = new Map<string, string>();
  const has = (f: string): boolean => existsSync(join(dataDir, f));
  if (has(DATA_FILES.e2e)) out.set('e2e', e2eTable(parseE2e(load(dataDir, DATA_FILES.e2e), DATA_FILES.e2e)));
  if (has(DATA_FILES.backend)) out.set('backend', backendTable(parseBackend(load(dataDir, DATA_FILES.backend), DATA_FILES.backend)));
  if (has(DATA_FILES.chat)) out.set('chat', chatTable(parseChat(load(dataDir, DATA_FILES.chat), DATA_FILES.chat)));
  if (has(DATA_FILES.boot)) out.set('boot', bootTable(parseBoot(load(dataDir, DATA_FILES.boot), DATA_FILES.boot)));
  return out;
}

/** Rewrites the generated blocks of a Markdown file in place; returns whether anything changed. */
export function updateMarkdown(file: string, dataDir: string): boolean {
  if (!existsSync(file)) return false;
  const before = readFileSync(file, 'utf8');
  const after = spliceGenerated(before, buildTables(dataDir));
  if (after !== before) writeFileSync(file, after);
  return after !== before;
}
