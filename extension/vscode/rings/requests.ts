/**
 * What the webview asks on demand: the decoded descriptor chain at one head (from the backend's
 * telemetry socket) and the VM's virtio devices (QMP), each turned into the message the webview
 * shows, errors included; everything from the outside capped.
 */
import { telemetryRequest } from '../../../backend/telemetry/client';
import type { VirtioDeviceQueues } from '../../lab/qemu/qmp-virtio';
import { withBackendAvail } from './avail-poll';
import { MAX_DEVICES, type DeviceFrame, type ToWebview } from './messages';
import type { RingsSource } from './source';

type ChainMessage = Extract<ToWebview, { type: 'chain' | 'chainError' }>;

/** The decoded chain at `head` of `queue`; a replay (`replaying`) or a lab without backend telemetry has none. */
export async function readChain(socket: string | undefined, replaying: boolean, queue: number, head: number): Promise<ChainMessage> {
  if (replaying || !socket) {
    return { type: 'chainError', message: replaying ? 'a trace holds snapshots only: descriptor chains are read from a running backend' : 'no backend telemetry: descriptor chains come from the TypeScript backend' };
  }
  try {
    const reply = await telemetryRequest(socket, { type: 'chain', queue, head });
    if (reply.type === 'chain') return { type: 'chain', chain: reply };
    return { type: 'chainError', message: reply.message.slice(0, 200) };
  } catch (err) {
    return { type: 'chainError', message: (err as Error).message.slice(0, 200) };
  }
}

function deviceFrames(list: readonly VirtioDeviceQueues[]): DeviceFrame[] {
  return list.slice(0, MAX_DEVICES).map((d) => ({
    name: d.name.slice(0, 48),
    path: d.path.slice(0, 120),
    queues: d.queues.slice(0, 64).map((q) => (q.owner === 'qemu'
      ? { index: q.index, size: q.size, availIdx: q.availIdx, usedIdx: q.usedIdx, lastAvailIdx: q.lastAvailIdx, inUse: q.inUse, owner: 'qemu' as const }
      : { index: q.index, size: 0, availIdx: null, usedIdx: 0, lastAvailIdx: null, inUse: 0, owner: 'backend' as const })),
  }));
}

/** Every virtio device of the VM as QEMU lists it; an empty list and the reason when they cannot be read. */
export async function readDevices(source: Pick<RingsSource, 'devices' | 'telemetrySocket'>): Promise<Extract<ToWebview, { type: 'devices' }>> {
  try {
    const socket = source.telemetrySocket();
    const list = await Promise.all((await source.devices()).map((d) => withBackendAvail(d, socket)));
    const devices = deviceFrames(list);
    return { type: 'devices', devices, message: `${devices.length} virtio devices (QMP)` };
  } catch (err) {
    return { type: 'devices', devices: [], message: `cannot list the virtio devices: ${(err as Error).message.slice(0, 200)}` };
  }
}
