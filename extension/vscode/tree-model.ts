/**
 * What the "VirtIO Lab" view shows, as plain data: VM, Backend, Device, Sessions and Chats, built
 * from one status read. Empty while the lab is stopped so the view's welcome content (with its
 * Start VM button) shows. The backend's telemetry comes typed and capped by the schema's reader
 * (backend/telemetry/schema.ts readSnapshot); labels are cut to what a tree row shows.
 * No vscode import: unit-tested in plain Node.
 */
import { COUNTER_NAMES } from '../../backend/telemetry/schema';
import type { LabStatus } from '../lab/lab';
import type { VirtioDeviceStatus } from '../lab/qemu/qmp-virtio';

export interface ChatInfo {
  id: number;
  label: string;
  detail: string;
  kind?: 'pair' | 'server';
}

export interface LabNode {
  id: string;
  label: string;
  description?: string;
  tooltip?: string;
  icon?: string;
  contextValue?: string;
  command?: { command: string; title: string };
  children?: LabNode[];
}

const MAX_LABEL = 120;
const MAX_CHILDREN = 64;

function short(v: string | number): string {
  const s = String(v);
  return s.length > MAX_LABEL ? `${s.slice(0, MAX_LABEL - 1)}…` : s;
}

function leaf(id: string, label: string, description?: string | number, icon?: string): LabNode {
  return { id, label, ...(description !== undefined ? { description: short(description) } : {}), ...(icon ? { icon } : {}) };
}

function duration(sec: number): string {
  const h = Math.floor(sec / 3600);
  const m = Math.floor((sec % 3600) / 60);
  const s = sec % 60;
  return h ? `${h}h ${m}m` : m ? `${m}m ${s}s` : `${s}s`;
}

const STATE_ICON: Record<string, string> = { running: 'vm-running', booting: 'loading~spin', stopping: 'loading~spin', failed: 'error', stopped: 'vm-outline' };

function vmNode(s: LabStatus): LabNode {
  const children: LabNode[] = [leaf('vm.state', 'state', s.reason ? `${s.state}: ${s.reason}` : s.state)];
  if (s.accel) children.push(leaf('vm.accel', 'accelerator', `${s.accel.kind} (${s.accel.why})`));
  if (s.uptimeSec !== undefined) children.push(leaf('vm.uptime', 'uptime', duration(s.uptimeSec)));
  if (s.bootSec !== undefined) children.push(leaf('vm.boot', 'boot time', `${s.bootSec.toFixed(1)} s`));
  if (s.qemu.pid !== undefined) children.push(leaf('vm.pid', 'QEMU pid', s.qemu.pid));
  if (s.ssh.port !== undefined) children.push(leaf('vm.ssh', 'ssh', `${s.ssh.host}:${s.ssh.port}`));
  if (s.kernelVersion) children.push(leaf('vm.kernel', 'kernel', s.kernelVersion));
  children.push(leaf('vm.driver', 'guest driver', s.guestDriver));
  return {
    id: 'vm', label: 'VM', description: s.state, icon: STATE_ICON[s.state] ?? 'vm', contextValue: `vm-${s.state}`,
    ...(s.reason ? { tooltip: s.reason } : {}), children,
  };
}

function backendNode(s: LabStatus): LabNode {
  const t = s.backend.telemetry;
  const children: LabNode[] = [leaf('backend.kind', 'kind', s.backend.kind === 'ts' ? 'TypeScript vhost-user' : "QEMU's cryptodev-backend-builtin")];
  if (s.backend.pid !== undefined) children.push(leaf('backend.pid', 'pid', s.backend.pid));
  if (t) {
    children.push(leaf('backend.engine', 'engine', t.engine.reason ? `${short(t.engine.name)} (${short(t.engine.reason)})` : t.engine.name));
    children.push(leaf('backend.uptime', 'uptime', duration(Math.round(t.uptimeMs / 1000))));
    const counters = COUNTER_NAMES.map((k) => leaf(`backend.counter.${k}`, k, t.counters[k]));
    children.push({ id: 'backend.counters', label: 'counters', children: counters });
  } else if (s.backend.kind === 'ts' && s.state === 'running') {
    children.push(leaf('backend.telemetry', 'telemetry', 'not answering'));
  }
  return { id: 'backend', label: 'Backend', description: s.backend.kind, icon: 'server-process', contextValue: `backend-${s.backend.kind}`, children };
}

function deviceNode(d: VirtioDeviceStatus | null | undefined): LabNode {
  if (!d) return { id: 'device', label: 'Device', description: d === null ? 'no virtio-crypto device' : 'unknown', icon: 'circuit-board' };
  const queues = d.queues.slice(0, MAX_CHILDREN).map((q): LabNode => q.owner === 'qemu'
    ? leaf(`device.q${q.index}`, `queue ${q.index}`, `size ${q.size} · avail ${q.availIdx ?? '?'} · used ${q.usedIdx} · in use ${q.inUse}`, 'list-ordered')
    : leaf(`device.q${q.index}`, `queue ${q.index}`, 'serviced by the backend (see rings)', 'list-ordered'));
  return {
    id: 'device', label: 'Device', description: `${d.name} · ${d.started ? 'started' : 'not started'}${d.broken ? ' · BROKEN' : ''}`,
    icon: d.broken ? 'error' : 'circuit-board', contextValue: 'device',
    command: { command: 'vlab.showRings', title: 'Show Virtqueue Rings' },
    children: [
      leaf('device.status', 'status', d.status.join(' | ') || '(none)'),
      leaf('device.backend', 'backend object', d.backendType ?? '?'),
      leaf('device.features', 'driver features', [...d.guestFeatures.transports, ...d.guestFeatures.device].join(', ') || '(none yet)'),
      leaf('device.offered', 'offered features', [...d.hostFeatures.transports, ...d.hostFeatures.device].join(', ')),
      { id: 'device.queues', label: 'queues', description: String(d.numQueues), children: queues },
    ],
  };
}

function sessionsNode(s: LabStatus): LabNode {
  const sessions = s.backend.telemetry?.sessions ?? [];
  const children = sessions.slice(0, MAX_CHILDREN).map((r): LabNode => {
    const id = short(r.id);
    return leaf(`session.${id}`, `session ${id}`, [r.algorithm, r.direction].map(short).join(' · '), 'key');
  });
  return { id: 'sessions', label: 'Sessions', description: String(sessions.length), icon: 'key', children };
}

function chatsNode(chats: readonly ChatInfo[]): LabNode {
  return {
    id: 'chats', label: 'Chats', description: String(chats.length), icon: 'comment-discussion', contextValue: 'chats',
    children: chats.map((c) => ({ ...leaf(`chat.${c.id}`, c.label, c.detail, 'comment'), contextValue: `chat-${c.kind ?? 'pair'}` })),
  };
}

/** The tree for a status (pure: unit-tested without VS Code's UI). */
export function buildTree(s: LabStatus | undefined, chats: readonly ChatInfo[]): LabNode[] {
  if (!s || (s.state === 'stopped' && chats.length === 0)) return [];
  const nodes = [vmNode(s)];
  if (s.state === 'running') nodes.push(backendNode(s), deviceNode(s.device), sessionsNode(s));
  nodes.push(chatsNode(chats));
  return nodes;
}

