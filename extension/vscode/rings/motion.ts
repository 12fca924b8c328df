/**
 * Which snapshots become frames, and the rate the telemetry feed asks at. A snapshot becomes a frame
 * (numbered from 1) only when something moved. The rate is the configured one while something
 * moves and the panel is the active editor, slower while it is visible beside another editor, and
 * IDLE_MS after IDLE_AFTER snapshots in which nothing moved (back at the first change).
 */
import type { VirtioDeviceStatus } from '../../lab/qemu/qmp-virtio';
import { frameFromSnapshot, sameMotion } from './frames';
import type { RingsFrame } from './messages';
import type { TelemetryFeed } from './telemetry-feed';
import type { BackendSnapshot } from '../../../backend/telemetry/schema';

/** Slowest moving rate of a panel that is visible but not the active editor. */
const BACKGROUND_MS = 200;
/** Subscription rate while nothing moves. */
export const IDLE_MS = 1000;
/** Unchanged snapshots before the rate drops. */
const IDLE_AFTER = 10;

export class MotionGate {
  private seq = 0;
  private last: RingsFrame | undefined;
  private idle = 0;
  /** snapshots in which nothing moved (no frame) */
  skipped = 0;

  /** `active()`: whether the panel is the active editor */
  constructor(private readonly feed: Pick<TelemetryFeed, 'setInterval'>, private readonly refreshMs: number, private readonly active: () => boolean) {}

  /** the number of the newest frame (0 before the first) */
  get lastSeq(): number {
    return this.seq;
  }

  /**
   * The frame of a snapshot (undefined: QMP only) and the control queue's status, or undefined when
   * nothing moved since the previous frame.
   */
  next(snapshot: BackendSnapshot | undefined, device: VirtioDeviceStatus | undefined): RingsFrame | undefined {
    const frame = frameFromSnapshot(snapshot, this.seq + 1, Date.now(), device);
    if (sameMotion(this.last, frame)) {
      this.skipped++;
      if (++this.idle >= IDLE_AFTER) this.feed.setInterval(Math.max(IDLE_MS, this.refreshMs));
      return undefined;
    }
    this.idle = 0;
    this.feed.setInterval(this.movingRateMs());
    this.seq++;
    this.last = frame;
    return frame;
  }

  /** The next snapshot becomes a frame whatever it holds (back to live after a replay). */
  forget(): void {
    this.last = undefined;
  }

  /** The panel was shown or changed focus (an idle feed stays idle). */
  viewChanged(): void {
    if (this.idle < IDLE_AFTER) this.feed.setInterval(this.movingRateMs());
  }

  /**
   * The subscription's interval while things move: the configured rate while the panel is the active
   * editor, a quarter of it while it is visible beside another one the user works in.
   */
  private movingRateMs(): number {
    return this.active() ? this.refreshMs : Math.max(4 * this.refreshMs, BACKGROUND_MS);
  }
}
