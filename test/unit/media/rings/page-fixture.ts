/**
 * The rings panel's page (same body, stylesheet and the real webpack bundle) for a test to load into
 * Chromium without VS Code: acquireVsCodeApi records what the view posts in `window.posted`.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { RINGS_BODY } from '../../../../extension/vscode/rings/page';
import { repoRoot as root } from '../../../extension/harness/workbench';

export const bundle = join(root, 'media', 'build', 'rings.js');

export function ringsPage(): string {
  const css = readFileSync(join(root, 'media', 'rings.css'), 'utf8');
  const js = readFileSync(bundle, 'utf8');
  return `<!DOCTYPE html><html><head><meta charset="UTF-8"><style>${css}</style></head><body>${RINGS_BODY}
<script>window.posted = []; window.acquireVsCodeApi = () => ({ postMessage: (m) => window.posted.push(m), setState() {}, getState() { return undefined; } });</script>
<script>${js.replace(/<\/script/g, '<\\/script')}</script></body></html>`;
}
