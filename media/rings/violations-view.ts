/**
 * Draws the conformance oracle's violations (docs/checking.md) as a list: rule, clause, queue, head,
 * the offending values and how often the rule was broken. A row that names a request (queue and
 * head) is clickable (or Enter): it selects that request in its queue's descriptor grid. Rows are
 * rewritten only when the list changed (textContent only).
 */
import type { ConformanceFrame, ViolationItem } from '../../extension/vscode/rings/messages';
import { el, setText } from './dom';

const COLUMNS = ['rule', 'clause', 'queue', 'head', 'values', 'count'];

export class ViolationsView {
  private readonly summary = el('p', 'hint');
  private readonly table = el('table', 'violations-list');
  private readonly tbody = el('tbody');
  private drawnKey = '';

  /** `onPick(queue, head)`: a row naming a request was clicked or Enter pressed on it */
  constructor(root: HTMLElement, private readonly onPick: (queue: number, head: number) => void) {
    const head = el('tr');
    for (const h of COLUMNS) head.append(el('th', undefined, h));
    const thead = el('thead');
    thead.append(head);
    this.table.append(thead, this.tbody);
    this.table.hidden = true;
    setText(this.summary, 'No conformance report (the builtin backend, or a backend without the oracle).');
    root.append(this.summary, this.table);
  }

  /** Draws the frame's list (undefined: the backend sent no conformance section). */
  show(c: ConformanceFrame | undefined): void {
    const key = c ? `${c.enabled}:${c.violations}:${c.refusals}:${c.items.map((v) => `${v.seq}/${v.count}`).join(',')}` : '-';
    if (key === this.drawnKey) return;
    this.drawnKey = key;
    if (!c) {
      setText(this.summary, 'No conformance report (the builtin backend, or a backend without the oracle).');
      this.table.hidden = true;
      return;
    }
    const mode = c.enabled ? (c.strict ? ' · strict: such requests are answered with an error' : '') : ' · the oracle is off';
    setText(this.summary, `${c.violations} violation${c.violations === 1 ? '' : 's'} of driver rules, ${c.refusals} device-limit refusal${c.refusals === 1 ? '' : 's'}${mode}`);
    this.table.hidden = c.items.length === 0;
    this.tbody.replaceChildren(...c.items.map((v) => this.row(v)));
  }

  private row(v: ViolationItem): HTMLTableRowElement {
    const tr = el('tr', v.kind === 'device' ? 'device-limit' : 'bad');
    const cells = [v.rule, v.clause, v.queue === null ? '-' : String(v.queue), v.head === null ? '-' : String(v.head), v.values, String(v.count)];
    for (const c of cells) tr.append(el('td', undefined, c));
    tr.dataset.rule = v.rule;
    const { queue, head } = v;
    if (queue !== null && head !== null) {
      tr.tabIndex = 0;
      tr.classList.add('pick');
      tr.dataset.queue = String(queue);
      tr.dataset.head = String(head);
      tr.title = `Enter or click: select queue ${queue} head ${head} in the descriptor grid`;
      tr.addEventListener('click', () => this.onPick(queue, head));
      tr.addEventListener('keydown', (e) => {
        if (e.key === 'Enter') this.onPick(queue, head);
      });
    }
    return tr;
  }
}
