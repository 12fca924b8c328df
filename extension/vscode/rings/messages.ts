/**
 * Messages between the extension and the rings webview, declared once and imported by both sides
 * (the webview bundle is built from ../webview/rings-view.ts). No vscode or node imports here.
 *
 * Everything that crosses the boundary is plain JSON. Messages from the webview are untrusted
 * (a webview is web content): parseFromWebview() accepts only the shapes below.
 */

/** Where a descriptor-table slot is in its life (virtio 1.2 §2.7 split virtqueue). */
export type SlotState =
  /** not part of any chain the driver has posted */
  | 'free'
  /** posted by the driver in the avail ring, not yet taken by the device */
  | 'avail'
  /** taken by the device (backend), request in progress */
  | 'backend'
  /** completed into the used ring, not yet reaped by the driver */
  | 'used';

export const SLOT_STATES: readonly SlotState[] = ['free', 'avail', 'backend', 'used'];
/** One character per slot keeps a 1024-slot frame small: f, a, b, u. */
export const SLOT_CODE: Readonly<Record<SlotState, string>> = { free: 'f', avail: 'a', backend: 'b', used: 'u' };

export interface RecentRequest {
  /** e.g. "CIPHER_ENCRYPT", "CREATE_SESSION" */
  opcode: string;
  session: string;
  srcLen: number;
  dstLen: number;
  /** e.g. "OK", "BADMSG", "ERR" */
  status: string;
  latencyUs: number;
}

export interface QueueFrame {
  index: number;
  /** "dataq0", "controlq" */
  label: string;
  /** who services the queue: the backend's telemetry or QEMU (the control queue, read over QMP) */
  source: 'backend' | 'qmp';
  size: number;
  /** free-running u16 indexes (virtio 1.2 §2.7.6, §2.7.8) */
  availIdx: number;
  usedIdx: number;
  lastAvailIdx: number;
  inFlight: number;
  /** SLOT_CODE per descriptor slot, at most MAX_SLOTS characters; empty when unknown */
  slots: string;
  /** newest last, at most MAX_RECENT */
  recent: RecentRequest[];
}

export interface RingsFrame {
  seq: number;
  /** extension clock, ms */
  timeMs: number;
  engine: string;
  backendPid: number | null;
  /** total bytes processed by the backend (for the throughput sparkline) */
  bytes: number;
  queues: QueueFrame[];
}

export type FeedState = 'connecting' | 'live' | 'waiting' | 'paused' | 'unavailable';

export type ToWebview =
  | { type: 'frame'; frame: RingsFrame }
  | { type: 'feed'; state: FeedState; message: string };

export type FromWebview =
  | { type: 'ready' }
  | { type: 'pause' }
  | { type: 'resume' }
  | { type: 'step' }
  /** acknowledges a drawn frame: lets tests (and the frame-rate readout) see what reached the screen */
  | { type: 'drawn'; seq: number; queues: number; slotsDrawn: number };

export const MAX_SLOTS = 1024; // VIRTQUEUE_MAX_SIZE in QEMU 7.2
export const MAX_RECENT = 16;
export const MAX_QUEUES = 16;

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isCount(v: unknown, max: number): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= max;
}

/** Validates a message from the webview; anything else is dropped (returns undefined). */
export function parseFromWebview(raw: unknown): FromWebview | undefined {
  if (!isRecord(raw) || typeof raw.type !== 'string') return undefined;
  switch (raw.type) {
    case 'ready':
    case 'pause':
    case 'resume':
    case 'step':
      return { type: raw.type };
    case 'drawn':
      if (isCount(raw.seq, Number.MAX_SAFE_INTEGER) && isCount(raw.queues, MAX_QUEUES) && isCount(raw.slotsDrawn, MAX_SLOTS * MAX_QUEUES)) {
        return { type: 'drawn', seq: raw.seq, queues: raw.queues, slotsDrawn: raw.slotsDrawn };
      }
      return undefined;
    default:
      return undefined;
  }
}
