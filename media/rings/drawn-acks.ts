/**
 * Acknowledges drawn frames to the panel ('drawn' messages): live frames in batches, at most every
 * ACK_MS (one message per frame cost as much as a frame), a frame the user asked for at once.
 * The acks let the tests and the panel's stats see what reached the screen.
 */
import type { FromWebview } from '../../extension/vscode/rings/messages';

/** Drawn frames are acknowledged in batches, at most this often. */
const ACK_MS = 500;

export class DrawnAcks {
  private unacked = 0;
  private ack: Extract<FromWebview, { type: 'drawn' }> | undefined;
  private ackAt = -Infinity;
  private ackTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(private readonly post: (message: FromWebview) => void) {}

  /** Frame `seq` was drawn at `now`; `atOnce`: acknowledge it now (not a live frame). */
  drawn(seq: number, queues: number, slotsDrawn: number, now: number, atOnce: boolean): void {
    this.unacked++;
    this.ack = { type: 'drawn', seq, queues, slotsDrawn, frames: this.unacked };
    if (atOnce || now - this.ackAt >= ACK_MS) this.flush();
    else if (!this.ackTimer) this.ackTimer = setTimeout(() => this.flush(), ACK_MS);
  }

  private flush(): void {
    clearTimeout(this.ackTimer);
    this.ackTimer = undefined;
    if (!this.ack) return;
    this.ackAt = performance.now();
    this.post(this.ack);
    this.ack = undefined;
    this.unacked = 0;
  }
}
