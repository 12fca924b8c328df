/**
 * Draws a queue's recent requests as a table (newest first; new ones highlighted for a moment, bad
 * and faulted ones marked). Rows are reused and only changed cells rewritten (no per-frame DOM
 * churn). Click or Enter on a row picks its head slot (its decoded chain is asked for).
 */
import type { QueueFrame } from '../../extension/vscode/rings/messages';
import { el, setText } from './dom';

const COLUMNS = ['#', 'head', 'opcode', 'session', 'src', 'dst', 'status', 'latency', 'note'];

export class RecentTable {
  readonly root = el('table', 'recent');
  private readonly tbody = el('tbody');
  private newestId = -1;
  private readonly rows: HTMLTableRowElement[] = [];
  private readonly firstSeen = new Map<number, number>();
  private unhighlight: ReturnType<typeof setTimeout> | undefined;

  /** `onPick(head)`: a row was clicked or Enter pressed on it */
  constructor(private readonly onPick: (head: number) => void) {
    const head = el('tr');
    for (const h of COLUMNS) head.append(el('th', undefined, h));
    const thead = el('thead');
    thead.append(head);
    this.root.append(thead, this.tbody);
  }

  /** Reuses MAX_RECENT rows and only rewrites the cells that changed; `highlight`: mark requests first seen under a second ago. */
  draw(q: QueueFrame, nowMs: number, highlight: boolean): void {
    const newest = q.recent[0]?.id ?? -1;
    if (newest === this.newestId && this.rows.length >= q.recent.length) return;
    this.newestId = newest;
    while (this.rows.length < q.recent.length) {
      const tr = el('tr');
      tr.tabIndex = 0;
      tr.title = 'Enter or click: decode this request\'s chain';
      for (let k = 0; k < COLUMNS.length; k++) tr.append(el('td'));
      const pick = (): void => this.onPick(Number(tr.dataset.head));
      tr.addEventListener('click', pick);
      tr.addEventListener('keydown', (e) => {
        if (e.key === 'Enter') pick();
      });
      this.tbody.append(tr);
      this.rows.push(tr);
    }
    for (const r of q.recent) if (!this.firstSeen.has(r.id)) this.firstSeen.set(r.id, nowMs);
    // Forget ids no longer listed (bounded map).
    if (this.firstSeen.size > 64) {
      const keep = new Set(q.recent.map((r) => r.id));
      for (const id of this.firstSeen.keys()) if (!keep.has(id)) this.firstSeen.delete(id);
    }
    this.rows.forEach((tr, i) => {
      const r = q.recent[i];
      tr.hidden = !r;
      if (!r) return;
      tr.dataset.head = String(r.head);
      const bad = r.status !== 'OK' || r.rejected !== '';
      const fresh = nowMs - (this.firstSeen.get(r.id) ?? 0) < 1000 && highlight;
      const cls = [bad ? 'bad' : '', fresh ? 'new' : '', r.fault ? 'fault' : ''].filter(Boolean).join(' ');
      if (tr.className !== cls) tr.className = cls;
      const note = r.rejected ? `rejected: ${r.rejected}` : r.fault ? `fault: ${r.fault}` : '';
      const cells = [String(r.id), String(r.head), r.opcode, r.session, String(r.srcLen), String(r.dstLen), r.status, `${r.latencyUs} µs`, note];
      cells.forEach((v, k) => setText(tr.cells[k]!, v));
    });
    // The highlight lasts a moment even when no frame follows (an idle view draws nothing).
    clearTimeout(this.unhighlight);
    this.unhighlight = setTimeout(() => {
      for (const tr of this.rows) if (tr.classList.contains('new')) tr.classList.remove('new');
    }, 1100);
  }
}
