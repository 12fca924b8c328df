/**
 * Draws the virtio devices of the VM as QEMU lists them (QMP): per device a table of its queues with
 * their indexes, or who services the queue when the vhost-user backend does.
 */
import type { DeviceFrame } from '../../extension/vscode/rings/messages';
import { el } from './dom';

export class DevicesView {
  constructor(private readonly list: HTMLElement) {}

  show(devices: DeviceFrame[], message: string): void {
    const out: HTMLElement[] = [el('p', 'hint', message)];
    for (const d of devices) {
      const box = el('div', 'device');
      box.append(el('h3', undefined, `${d.name} — ${d.path}`));
      const t = el('table', 'descs');
      const head = el('tr');
      for (const x of ['queue', 'size', 'avail idx', 'last avail', 'used idx', 'in use', 'serviced by']) head.append(el('th', undefined, x));
      t.append(head);
      for (const q of d.queues) {
        const tr = el('tr');
        const cells = q.owner === 'backend'
          ? [String(q.index), '—', '—', '—', '—', '—', 'vhost-user backend (see its rings above)']
          : [String(q.index), String(q.size), q.availIdx === null ? '?' : String(q.availIdx), q.lastAvailIdx === null ? '?' : String(q.lastAvailIdx), String(q.usedIdx), String(q.inUse), 'QEMU'];
        for (const v of cells) tr.append(el('td', undefined, v));
        t.append(tr);
      }
      box.append(t);
      out.push(box);
    }
    this.list.replaceChildren(...out);
    this.list.dataset.devices = devices.map((d) => d.name).join(',');
  }
}
