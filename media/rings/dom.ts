/**
 * DOM and canvas helpers the rings view's parts share: elements built with createElement and
 * textContent only, text writes that skip unchanged text (no re-layout), canvases sized for the
 * screen's pixel ratio, and the u16 distance of free-running ring indexes.
 */

export function el<K extends keyof HTMLElementTagNameMap>(tag: K, cls?: string, textContent?: string): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (textContent !== undefined) e.textContent = textContent;
  return e;
}

export function setText(e: HTMLElement, text: string): void {
  if (e.textContent !== text) e.textContent = text;
}

/** The device pixel ratio canvases are drawn at (1 to 2). */
export function canvasScale(): number {
  return Math.max(1, Math.min(2, window.devicePixelRatio || 1));
}

/** A canvas of w × h CSS pixels, drawn at the screen's pixel ratio, labelled for screen readers. */
export function canvas(w: number, h: number, cls: string, label: string): HTMLCanvasElement {
  const c = el('canvas', cls);
  const dpr = canvasScale();
  c.width = w * dpr;
  c.height = h * dpr;
  c.style.width = `${w}px`;
  c.style.height = `${h}px`;
  c.getContext('2d')!.scale(dpr, dpr);
  c.setAttribute('role', 'img');
  c.setAttribute('aria-label', label);
  return c;
}

/** Free-running ring indexes are u16 (virtio 1.2 §2.7.6): distances wrap. */
export const u16 = (v: number): number => v & 0xffff;
