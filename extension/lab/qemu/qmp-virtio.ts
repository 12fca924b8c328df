/**
 * Typed reads of a virtio-crypto device's state through QEMU's (unstable, debug) QMP commands
 * `x-query-virtio`, `x-query-virtio-status` and `x-query-virtio-queue-status` (QEMU >= 7.0).
 *
 * Safety rule: with a vhost-user backend, `x-query-virtio-queue-status` on a queue that the backend owns
 * makes QEMU send VHOST_USER_GET_VRING_BASE to read last_avail_idx — and by the vhost-user spec that
 * request STOPS the ring. So queues owned by a vhost backend are never queried that way; their live
 * indexes are the backend's (read its telemetry). Only QEMU-owned queues (virtio-crypto's control queue,
 * or all queues with cryptodev-backend-builtin) are read here.
 */
import { QmpClient, QmpError } from './qmp';

/** Feature bits as QEMU decodes them: names like "VIRTIO_F_VERSION_1" (QEMU's prose after ':' dropped). */
export interface VirtioFeatureSet {
  /** Transport-level features (VIRTIO_F_*, VIRTIO_RING_F_*). */
  transports: string[];
  /** Device-type features QEMU can name (QEMU 7.2 names none for virtio-crypto). */
  device: string[];
  /** Device-type feature bits QEMU cannot name, as a number (exact up to bit 52). 0 when none. */
  unknownDeviceBits: number;
}

/** One virtqueue. Index values are free-running u16 counters (virtio 1.2 §2.7). */
export type VirtioQueueStatus = VirtioQemuQueueStatus | VirtioBackendQueueStatus;

/** A queue that QEMU itself services: its indexes are read from QEMU. */
export interface VirtioQemuQueueStatus {
  index: number;
  owner: 'qemu';
  /** Ring size (vring.num): QEMU's default (1024 for virtio-crypto) until the driver chooses one. */
  size: number;
  /** Guest-physical addresses of the descriptor table, driver (avail) and device (used) areas; 0 before the driver sets them. */
  descAddr: number;
  availAddr: number;
  usedAddr: number;
  /** Next avail ring entry QEMU will consume; null when QEMU does not report it (vhost started: it only reports the vhost queues'). */
  lastAvailIdx: number | null;
  /** avail->idx as QEMU last read it from guest memory; null when QEMU does not report it (same case). */
  shadowAvailIdx: number | null;
  /**
   * avail->idx as QEMU last read it (its shadow copy), or null when QEMU does not report it. Never 0
   * by default: QEMU 7.2 leaves shadow-avail-idx out of the control queue's status once the vhost
   * device started, which showed as "avail 0, used 324".
   */
  availIdx: number | null;
  /** used->idx QEMU has published. */
  usedIdx: number;
  /** used idx at the last guest notification, valid only when signalledUsedValid. */
  signalledUsed: number;
  signalledUsedValid: boolean;
  /** Requests popped from the ring and not yet completed. */
  inUse: number;
}

/** A queue serviced by a vhost(-user) backend: QEMU does not know its indexes (see module comment). */
export interface VirtioBackendQueueStatus {
  index: number;
  owner: 'backend';
}

export interface VirtioDeviceStatus {
  /** Canonical QOM path of the virtio device, e.g. "/machine/peripheral/crypto0/virtio-backend". */
  path: string;
  /** QEMU's device name ("virtio-crypto"). */
  name: string;
  /** Virtio device ID (20 = crypto). */
  deviceId: number;
  /** QOM type of the cryptodev backend object ("cryptodev-backend-builtin", "cryptodev-vhost-user"), or null if unknown. */
  backendType: string | null;
  /** Device status bits set by the driver, by name: VIRTIO_CONFIG_S_ACKNOWLEDGE, _DRIVER, _FEATURES_OK, _DRIVER_OK, ... */
  status: string[];
  /** True once the driver set DRIVER_OK (and QEMU started the device). */
  started: boolean;
  /** QEMU marked the device broken (a ring error). */
  broken: boolean;
  /** The vhost backend is running (always false with the builtin backend). */
  vhostStarted: boolean;
  vmRunning: boolean;
  /** Offered by the device. */
  hostFeatures: VirtioFeatureSet;
  /** Accepted by the driver (empty before feature negotiation). */
  guestFeatures: VirtioFeatureSet;
  /** Offered by the backend (vhost); empty with the builtin backend. */
  backendFeatures: VirtioFeatureSet;
  /** Number of virtqueues: data queues followed by one control queue (virtio 1.2 §5.9.2). */
  numQueues: number;
  queues: VirtioQueueStatus[];
}

/** A crypto device listed by x-query-virtio. */
export interface VirtioDeviceRef {
  path: string;
  name: string;
}

const VIRTIO_CRYPTO_NAME = 'virtio-crypto';
/** Cap on queues read per device; virtio-crypto has max_dataqueues + 1 and QEMU caps at VIRTIO_QUEUE_MAX (1024). */
const MAX_QUEUES = 1024;

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function protocolError(command: string, what: string): QmpError {
  return new QmpError('protocol', `unexpected ${command} reply: ${what}`, { command });
}

function num(obj: Record<string, unknown>, key: string, command: string): number {
  const v = obj[key];
  if (typeof v !== 'number') throw protocolError(command, `field ${key} is not a number`);
  return v;
}

function bool(obj: Record<string, unknown>, key: string): boolean {
  return obj[key] === true;
}

/** "VIRTIO_F_VERSION_1: Device compliant for v1 spec (legacy)" -> "VIRTIO_F_VERSION_1". */
function names(v: unknown): string[] {
  if (!Array.isArray(v)) return [];
  return v.filter((s): s is string => typeof s === 'string').map((s) => s.split(':', 1)[0]!.trim());
}

function featureSet(v: unknown): VirtioFeatureSet {
  const r = isRecord(v) ? v : {};
  return {
    transports: names(r.transports),
    device: names(r['dev-features']),
    unknownDeviceBits: typeof r['unknown-dev-features'] === 'number' ? r['unknown-dev-features'] : 0,
  };
}

/** Lists the virtio-crypto devices. Throws QmpError (see QmpClient.execute). */
export async function listVirtioCryptoDevices(qmp: QmpClient): Promise<VirtioDeviceRef[]> {
  const reply = await qmp.execute('x-query-virtio');
  if (!Array.isArray(reply)) throw protocolError('x-query-virtio', 'not a list');
  return reply
    .filter(isRecord)
    .filter((d) => d.name === VIRTIO_CRYPTO_NAME && typeof d.path === 'string')
    .map((d) => ({ path: d.path as string, name: d.name as string }));
}

/** The QOM path of the first virtio-crypto device, or null when the VM has none. */
export async function findVirtioCryptoPath(qmp: QmpClient): Promise<string | null> {
  const devices = await listVirtioCryptoDevices(qmp);
  return devices[0]?.path ?? null;
}

/** QOM type of the cryptodev object the device is linked to, or null if QEMU does not say. */
async function cryptodevBackendType(qmp: QmpClient, path: string): Promise<string | null> {
  try {
    const link = await qmp.execute('qom-get', { path, property: 'cryptodev' });
    if (typeof link !== 'string' || link === '') return null;
    const type = await qmp.execute('qom-get', { path: link, property: 'type' });
    return typeof type === 'string' ? type : null;
  } catch (err) {
    if (err instanceof QmpError && err.kind === 'command') return null;
    throw err;
  }
}

function parseQueue(index: number, reply: unknown): VirtioQemuQueueStatus {
  const c = 'x-query-virtio-queue-status';
  if (!isRecord(reply)) throw protocolError(c, 'not an object');
  return {
    index,
    owner: 'qemu',
    size: num(reply, 'vring-num', c),
    descAddr: num(reply, 'vring-desc', c),
    availAddr: num(reply, 'vring-avail', c),
    usedAddr: num(reply, 'vring-used', c),
    lastAvailIdx: typeof reply['last-avail-idx'] === 'number' ? reply['last-avail-idx'] : null,
    shadowAvailIdx: typeof reply['shadow-avail-idx'] === 'number' ? reply['shadow-avail-idx'] : null,
    availIdx: typeof reply['shadow-avail-idx'] === 'number' ? reply['shadow-avail-idx'] : null,
    usedIdx: num(reply, 'used-idx', c),
    signalledUsed: num(reply, 'signalled-used', c),
    signalledUsedValid: bool(reply, 'signalled-used-valid'),
    inUse: num(reply, 'inuse', c),
  };
}

/**
 * One QEMU-serviced queue. Never x-query-virtio-queue-element: QEMU 7.2 walks the descriptor chain
 * at last_avail_idx even when the driver has not posted one there, and a stale `next` in that slot
 * makes it call virtio_error() — the device is marked BROKEN (seen: the crypto control queue stopped
 * taking session requests).
 */
async function readQemuQueue(qmp: QmpClient, path: string, index: number): Promise<VirtioQemuQueueStatus> {
  return parseQueue(index, await qmp.execute('x-query-virtio-queue-status', { path, queue: index }));
}

/** A virtio device of the VM with the queues QEMU services (vhost-owned queues are listed, not queried). */
export interface VirtioDeviceQueues {
  path: string;
  name: string;
  deviceId: number;
  /** the vhost backend serves queues [vhostFirst, vhostFirst + vhostCount) */
  vhost: { first: number; count: number } | null;
  queues: VirtioQueueStatus[];
}

/**
 * Every virtio device of the VM (virtio-net, virtio-9p, virtio-crypto, …) and its queues' indexes.
 * Queues a vhost backend serves are never queried with x-query-virtio-queue-status (module comment).
 */
export async function listVirtioDevices(qmp: QmpClient, maxDevices = 32): Promise<VirtioDeviceQueues[]> {
  const list = await qmp.execute('x-query-virtio');
  if (!Array.isArray(list)) throw protocolError('x-query-virtio', 'not a list');
  const out: VirtioDeviceQueues[] = [];
  for (const d of list.filter(isRecord).slice(0, maxDevices)) {
    if (typeof d.path !== 'string') continue;
    const c = 'x-query-virtio-status';
    const reply = await qmp.execute(c, { path: d.path });
    if (!isRecord(reply)) throw protocolError(c, 'not an object');
    const numQueues = Math.min(num(reply, 'num-vqs', c), 64);
    const vd = isRecord(reply['vhost-dev']) ? reply['vhost-dev'] : null;
    // A virtio-crypto device with a vhost-user cryptodev: the data queues belong to the backend even
    // before QEMU starts the vhost device (then vhost-dev is absent); the last queue is the control queue.
    const crypto = reply.name === VIRTIO_CRYPTO_NAME && (await cryptodevBackendType(qmp, d.path)) === 'cryptodev-vhost-user';
    const vhost = vd && typeof vd['vq-index'] === 'number' && typeof vd.nvqs === 'number'
      ? { first: vd['vq-index'], count: vd.nvqs }
      : crypto ? { first: 0, count: numQueues - 1 } : null;
    const queues: VirtioQueueStatus[] = [];
    for (let index = 0; index < numQueues; index++) {
      if (vhost && index >= vhost.first && index < vhost.first + vhost.count) queues.push({ index, owner: 'backend' });
      else queues.push(await readQemuQueue(qmp, d.path, index));
    }
    out.push({ path: d.path, name: typeof reply.name === 'string' ? reply.name : String(d.name), deviceId: num(reply, 'device-id', c), vhost, queues });
  }
  return out;
}

/**
 * Reads the device's status and every queue QEMU services (vhost-owned data queues are reported with
 * owner 'backend' and not queried; see the module comment). `path` defaults to the first virtio-crypto
 * device. Resolves null when there is no virtio-crypto device. Throws QmpError.
 */
export async function readVirtioCryptoStatus(qmp: QmpClient, path?: string): Promise<VirtioDeviceStatus | null> {
  const devicePath = path ?? (await findVirtioCryptoPath(qmp));
  if (devicePath === null) return null;
  const c = 'x-query-virtio-status';
  const reply = await qmp.execute(c, { path: devicePath });
  if (!isRecord(reply)) throw protocolError(c, 'not an object');
  const backendType = await cryptodevBackendType(qmp, devicePath);
  const numQueues = Math.min(num(reply, 'num-vqs', c), MAX_QUEUES);
  // Decide ownership from the backend's type, not from vhost-started: the driver may start the vhost
  // device between two QMP calls, and a single GET_VRING_BASE would stop the backend's ring.
  const vhostBacked = backendType === 'cryptodev-vhost-user' || isRecord(reply['vhost-dev']);
  const controlQueue = numQueues - 1;

  const queues: VirtioQueueStatus[] = [];
  for (let index = 0; index < numQueues; index++) {
    if (vhostBacked && index !== controlQueue) {
      queues.push({ index, owner: 'backend' });
      continue;
    }
    queues.push(await readQemuQueue(qmp, devicePath, index));
  }

  const statusBits = isRecord(reply.status) ? names(reply.status.statuses) : [];
  return {
    path: devicePath,
    name: typeof reply.name === 'string' ? reply.name : VIRTIO_CRYPTO_NAME,
    deviceId: num(reply, 'device-id', c),
    backendType,
    status: statusBits,
    started: bool(reply, 'started'),
    broken: bool(reply, 'broken'),
    vhostStarted: bool(reply, 'vhost-started'),
    vmRunning: bool(reply, 'vm-running'),
    hostFeatures: featureSet(reply['host-features']),
    guestFeatures: featureSet(reply['guest-features']),
    backendFeatures: featureSet(reply['backend-features']),
    numQueues,
    queues,
  };
}
