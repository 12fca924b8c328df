/**
 * Draws the decoded descriptor chain of a picked slot (its request, header fields, IV and data
 * previews, and every descriptor of the chain, indirect ones marked), or why it could not be read.
 */
import { SLOT_LABEL } from '../../backend/telemetry/schema';
import type { ChainDetail } from '../../extension/vscode/rings/messages';
import { el } from './dom';

function hexBytes(h: string | null): string {
  return h ? (h.match(/../g) ?? []).join(' ') : '—';
}

const MATCH_TEXT: Record<ChainDetail['match'], string> = {
  served: 'matches the request as served',
  stale: 'the guest has reused this memory since (bytes as they are now)',
  pending: 'posted, not served yet',
  unknown: 'no request recorded to compare',
};

export class ChainView {
  constructor(private readonly root: HTMLElement) {}

  error(message: string): void {
    this.root.replaceChildren(el('h2', undefined, 'Descriptor chain'), el('p', 'bad', message));
  }

  show(c: ChainDetail): void {
    const h = c.header;
    const rows: [string, string][] = [
      ['queue / head', `${c.queue} / slot ${c.head} — ${SLOT_LABEL[c.state]}`],
      ['request', c.request ? `#${c.request.id} ${c.request.opcode}, ${c.request.status}, ${c.request.latencyUs} µs` : 'none recorded at this head'],
      ['memory', MATCH_TEXT[c.match]],
    ];
    if (c.rejected) rows.push(['rejected', c.rejected]);
    if (c.fault) rows.push(['fault', c.fault]);
    if (c.error) rows.push(['error', c.error]);
    if (h) {
      rows.push(['opcode', h.opcode], ['session', `${h.sessionId}${h.algorithm ? ` (${h.algorithm})` : ''}`], ['algo / flag / op_type', `${h.algo} / ${h.flag} / ${h.opType}`],
        ['lengths', `iv ${h.ivLen}, src ${h.srcLen}, dst ${h.dstLen}`], ['IV', hexBytes(c.iv)], ['src (first bytes)', hexBytes(c.srcPreview)], ['dst (first bytes)', hexBytes(c.dstPreview)]);
    }
    rows.push(['status byte', c.status ?? '—'], ['readable / writable', `${c.readableLength} B / ${c.writableLength} B`]);
    const dl = el('dl', 'chain-fields');
    for (const [k, v] of rows) dl.append(el('dt', undefined, k), el('dd', k === 'opcode' ? 'opcode' : k === 'lengths' ? 'lengths' : undefined, v));
    const t = el('table', 'descs');
    const head = el('tr');
    for (const x of ['table', 'i', 'addr', 'len', 'flags', 'next']) head.append(el('th', undefined, x));
    t.append(head);
    for (const d of c.descriptors) {
      const tr = el('tr', d.table === 'indirect' ? 'indirect' : undefined);
      for (const v of [d.table, String(d.i), d.addr, String(d.len), d.flags || '—', d.flags.includes('N') ? String(d.next) : '—']) tr.append(el('td', undefined, v));
      t.append(tr);
    }
    this.root.replaceChildren(el('h2', undefined, `Descriptor chain at slot ${c.head}`), dl, t);
    this.root.dataset.opcode = h?.opcode ?? '';
  }
}
