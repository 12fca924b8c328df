/**
 * Theme colours for the rings view's canvases, read from the CSS variables VS Code injects and
 * re-read when the theme changes (listeners repaint what they cached).
 */
import type { SlotState } from '../../backend/telemetry/schema';

class Palette {
  private cache = new Map<string, string>();
  constructor() {
    new MutationObserver(() => {
      this.cache.clear();
      for (const l of this.listeners) l();
    }).observe(document.body, { attributes: true, attributeFilter: ['class'] });
  }
  readonly listeners: (() => void)[] = [];
  get(name: string, fallback: string): string {
    let v = this.cache.get(name);
    if (v === undefined) {
      v = getComputedStyle(document.body).getPropertyValue(name).trim() || fallback;
      this.cache.set(name, v);
    }
    return v;
  }
  slot(s: SlotState): string {
    switch (s) {
      case 'posted': return this.get('--vscode-charts-blue', '#3794ff');
      case 'device': return this.get('--vscode-charts-orange', '#d18616');
      case 'returned': return this.get('--vscode-charts-green', '#89d185');
      default: return this.get('--vscode-editorWidget-border', '#8884');
    }
  }
}

export const palette = new Palette();
