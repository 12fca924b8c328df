/**
 * Messages between the extension and the rings webview, declared once and imported by both sides
 * (the webview bundle is built from media/rings/). No vscode or node imports here; slot
 * states are the telemetry schema's (backend/telemetry/schema.ts), passed through as one character
 * per slot.
 *
 * Everything that crosses the boundary is plain JSON. Messages from the webview are untrusted
 * (a webview is web content): parseFromWebview() accepts only the shapes below.
 */
import type { ChainDetail } from '../../../backend/telemetry/schema';

export type { ChainDetail } from '../../../backend/telemetry/schema';

export interface RecentRequest {
  /** backend request number: a request keeps it across frames (highlighting, selection) */
  id: number;
  head: number;
  /** e.g. "CIPHER_ENCRYPT", "REJECTED" */
  opcode: string;
  session: string;
  srcLen: number;
  dstLen: number;
  /** e.g. "OK", "BADMSG", "ERR", "-" */
  status: string;
  latencyUs: number;
  /** why the chain was rejected, or "" */
  rejected: string;
  /** the fault-injection rule that hit it, or "" */
  fault: string;
}

export interface QueueFrame {
  index: number;
  /** "dataq0", "controlq" */
  label: string;
  /** who services the queue: the backend's telemetry or QEMU (read over QMP) */
  source: 'backend' | 'qmp';
  size: number;
  /** free-running u16 indexes (virtio 1.2 §2.7.6, §2.7.8); null when unknown */
  availIdx: number | null;
  usedIdx: number;
  lastAvailIdx: number;
  usedEvent: number | null;
  availEvent: number | null;
  availFlags: number | null;
  usedFlags: number | null;
  inFlight: number;
  /** SLOT_CHAR (telemetry schema) per descriptor slot, at most MAX_SLOTS characters; empty when unknown */
  slots: string;
  /** newest first, at most MAX_RECENT */
  recent: RecentRequest[];
}

/** A virtio device of the VM as QEMU lists it (x-query-virtio), with the queues QEMU services. */
export interface DeviceFrame {
  name: string;
  path: string;
  queues: { index: number; size: number; availIdx: number | null; usedIdx: number; lastAvailIdx: number | null; inUse: number; owner: 'qemu' | 'backend' }[];
}

export interface RingsFrame {
  seq: number;
  /** extension clock, ms (the trace's clock when replaying) */
  timeMs: number;
  engine: string;
  backendPid: number | null;
  /** total bytes processed by the backend (for the throughput sparkline) */
  bytes: number;
  requests: number;
  kicks: number;
  interrupts: number;
  queues: QueueFrame[];
}

export type FeedState = 'connecting' | 'live' | 'waiting' | 'paused' | 'unavailable' | 'replay';

/** Where the shown frame is in the panel's history. */
export interface HistoryCursor {
  /** 0-based position of the shown frame */
  pos: number;
  /** frames kept (at most MAX_HISTORY, or the whole trace when replaying) */
  count: number;
  live: boolean;
}

export type ToWebview =
  | { type: 'frame'; frame: RingsFrame; cursor: HistoryCursor; rateMs: number }
  | { type: 'feed'; state: FeedState; message: string }
  | { type: 'chain'; chain: ChainDetail }
  | { type: 'chainError'; message: string }
  | { type: 'devices'; devices: DeviceFrame[]; message: string }
  | { type: 'recording'; file: string | null; frames: number; bytes: number }
  /** what the webview keeps in its VS Code state, so the serializer can restore a replay */
  | { type: 'state'; trace: string | null };

export type FromWebview =
  | { type: 'ready' }
  | { type: 'pause' }
  | { type: 'resume' }
  /** show the frame at this history position (pauses) */
  | { type: 'seek'; pos: number }
  /** the decoded chain of one head slot (asked from the backend on demand) */
  | { type: 'chain'; queue: number; head: number }
  | { type: 'record'; on: boolean }
  | { type: 'openTrace' }
  | { type: 'devices' }
  /**
   * acknowledges drawn frames (batched: `frames` drawn since the previous ack, the last one `seq`):
   * lets tests (and the frame-rate readout) see what reached the screen
   */
  | { type: 'drawn'; seq: number; queues: number; slotsDrawn: number; frames: number };

/**
 * What the webview keeps in its VS Code state (vscode.setState), and what the serializer gets back
 * after a window reload: the source (a trace file, or live), live pause, and the selected slot.
 */
export interface PanelState {
  trace?: string;
  paused?: boolean;
  selected?: { queue: number; head: number };
}

export const MAX_SLOTS = 1024; // VIRTQUEUE_MAX_SIZE in QEMU 7.2
export const MAX_RECENT = 16;
export const MAX_QUEUES = 16;
export const MAX_HISTORY = 600;
export const MAX_DEVICES = 32;

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isCount(v: unknown, max: number): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= max;
}

/** Validates a saved panel state (it comes back from the webview: untrusted); unknown fields are dropped. */
export function parsePanelState(raw: unknown): PanelState {
  if (!isRecord(raw)) return {};
  const out: PanelState = {};
  if (typeof raw.trace === 'string' && raw.trace.length > 0 && raw.trace.length <= 4096) out.trace = raw.trace;
  if (raw.paused === true) out.paused = true;
  const sel = raw.selected;
  if (isRecord(sel) && isCount(sel.queue, MAX_QUEUES) && isCount(sel.head, MAX_SLOTS - 1)) out.selected = { queue: sel.queue, head: sel.head };
  return out;
}

/** Validates a message from the webview; anything else is dropped (returns undefined). */
export function parseFromWebview(raw: unknown): FromWebview | undefined {
  if (!isRecord(raw) || typeof raw.type !== 'string') return undefined;
  switch (raw.type) {
    case 'ready':
    case 'pause':
    case 'resume':
    case 'openTrace':
    case 'devices':
      return { type: raw.type };
    case 'seek':
      return isCount(raw.pos, 1_000_000) ? { type: 'seek', pos: raw.pos } : undefined;
    case 'chain':
      return isCount(raw.queue, MAX_QUEUES) && isCount(raw.head, MAX_SLOTS - 1) ? { type: 'chain', queue: raw.queue, head: raw.head } : undefined;
    case 'record':
      return typeof raw.on === 'boolean' ? { type: 'record', on: raw.on } : undefined;
    case 'drawn':
      if (isCount(raw.seq, Number.MAX_SAFE_INTEGER) && isCount(raw.queues, MAX_QUEUES) && isCount(raw.slotsDrawn, MAX_SLOTS * MAX_QUEUES) && isCount(raw.frames, 10_000) && raw.frames > 0) {
        return { type: 'drawn', seq: raw.seq, queues: raw.queues, slotsDrawn: raw.slotsDrawn, frames: raw.frames };
      }
      return undefined;
    default:
      return undefined;
  }
}
