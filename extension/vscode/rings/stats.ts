/**
 * What the rings panel reports about itself (RingsPanel.stats(), read by the extension-host tests
 * and the measurements in docs/extension.md): what it posted to the webview, what the webview
 * acknowledged as drawn, and the feed state it showed last.
 */
import type { ChainDetail, FeedState, FromWebview, HistoryCursor, RingsFrame, ToWebview } from './messages';
import type { RecordingProgress } from './recording';

export interface RingsStats {
  framesPosted: number;
  framesDrawn: number;
  snapshotsReceived: number;
  /** snapshots in which nothing moved (not posted) */
  snapshotsSkipped: number;
  lastDrawn: { seq: number; slotsDrawn: number; queues: number } | undefined;
  /** first queue's usedIdx per posted frame, newest 200 */
  usedIdxTrail: number[];
  feedState: FeedState;
  /** the subscription's current interval */
  rateMs: number;
  cursor: HistoryCursor;
  /** the frame shown (what the webview was sent last) */
  shown: RingsFrame | undefined;
  recording: RecordingProgress | undefined;
  trace: string | undefined;
  /** the last chain detail (or error) sent to the webview */
  lastChain: ChainDetail | string | undefined;
}

const TRAIL = 200;

/** The counters the panel keeps; the rest of RingsStats is read from its parts when asked. */
export class PanelStats {
  private framesPosted = 0;
  private framesDrawn = 0;
  private lastDrawn: RingsStats['lastDrawn'];
  private readonly usedIdxTrail: number[] = [];
  /** the state of the last feed message posted */
  feedState: FeedState = 'connecting';
  private shown: RingsFrame | undefined;
  private lastChain: RingsStats['lastChain'];

  /** Every message the panel posts to the webview. */
  posted(message: ToWebview): void {
    switch (message.type) {
      case 'frame': {
        this.framesPosted++;
        this.shown = message.frame;
        const first = message.frame.queues[0];
        if (first) {
          this.usedIdxTrail.push(first.usedIdx);
          if (this.usedIdxTrail.length > TRAIL) this.usedIdxTrail.shift();
        }
        break;
      }
      case 'feed':
        this.feedState = message.state;
        break;
      case 'chain':
        this.lastChain = message.chain;
        break;
      case 'chainError':
        this.lastChain = message.message;
        break;
      default:
        break;
    }
  }

  /** The webview's acknowledgement of drawn frames. */
  drawn(ack: Extract<FromWebview, { type: 'drawn' }>): void {
    this.framesDrawn += ack.frames;
    this.lastDrawn = { seq: ack.seq, slotsDrawn: ack.slotsDrawn, queues: ack.queues };
  }

  report(parts: Pick<RingsStats, 'snapshotsReceived' | 'snapshotsSkipped' | 'rateMs' | 'cursor' | 'recording' | 'trace'>): RingsStats {
    return {
      framesPosted: this.framesPosted, framesDrawn: this.framesDrawn, lastDrawn: this.lastDrawn,
      usedIdxTrail: [...this.usedIdxTrail], feedState: this.feedState, shown: this.shown, lastChain: this.lastChain, ...parts,
    };
  }
}
