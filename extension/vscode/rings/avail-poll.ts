/**
 * The crypto device's control queue, which QEMU services (read over QMP). QEMU 7.2 leaves its avail
 * idx out once vhost started; the backend reads it from the guest's avail ring on request
 * ("avail-allow"). For the live frames that is asked at most once a second and never awaited on the
 * frame path (ControlAvailPoll); for the device list it is asked once per listing (withBackendAvail).
 */
import { telemetryRequest } from '../../../backend/telemetry/client';
import type { VirtioDeviceQueues, VirtioDeviceStatus, VirtioQueueStatus } from '../../lab/qemu/qmp-virtio';
import { withAvailRing } from './frames';
import type { RingsSource } from './source';
import type { AvailRingHeader, TelemetryError } from '../../../backend/telemetry/schema';

/** How often the control queue's avail ring header is asked from the backend (it moves only on session setup). */
const CONTROL_AVAIL_MS = 1000;

export type ControlQueue = Extract<VirtioQueueStatus, { owner: 'qemu' }>;

/** The device status a frame is built with when it shows only the control queue (frameFromSnapshot's `device`). */
export function controlDevice(control: ControlQueue | undefined): VirtioDeviceStatus | undefined {
  return control ? { queues: [control] } as unknown as VirtioDeviceStatus : undefined;
}

export class ControlAvailPoll {
  private reply: AvailRingHeader | TelemetryError | undefined;
  private askedAt = 0;
  private asking = false;

  constructor(private readonly source: Pick<RingsSource, 'device' | 'telemetrySocket'>) {}

  /**
   * The control queue as QMP reports it; when QEMU leaves its avail idx out, the idx the backend
   * last read (the answer to an earlier ask: this one starts the next ask when one is due).
   */
  controlQueue(): ControlQueue | undefined {
    const q = this.source.device()?.queues.at(-1);
    if (q?.owner !== 'qemu') return undefined;
    const socket = this.source.telemetrySocket();
    if (q.availIdx === null && q.availAddr > 0 && socket && !this.asking && Date.now() - this.askedAt >= CONTROL_AVAIL_MS) {
      this.asking = true;
      this.askedAt = Date.now();
      telemetryRequest(socket, { type: 'avail-allow', addr: q.availAddr })
        .then((reply) => { this.reply = reply; }, () => undefined)
        .finally(() => { this.asking = false; });
    }
    return withAvailRing(q, this.reply);
  }
}

/** A device of the VM's list, its control queue's avail idx read by the backend when QEMU leaves it out. */
export async function withBackendAvail(d: VirtioDeviceQueues, socket: string | undefined): Promise<VirtioDeviceQueues> {
  const q = d.queues.at(-1);
  if (d.name !== 'virtio-crypto' || q?.owner !== 'qemu' || q.availIdx !== null || q.availAddr <= 0 || !socket) return d;
  const reply = await telemetryRequest(socket, { type: 'avail-allow', addr: q.availAddr }).catch(() => undefined);
  return { ...d, queues: [...d.queues.slice(0, -1), withAvailRing(q, reply)] };
}
