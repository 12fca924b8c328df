/**
 * The frames the rings panel keeps and which one is shown: live, the cursor follows the newest of
 * the last MAX_HISTORY frames that moved; paused, it stays on its frame while frames keep arriving;
 * seek moves it. A replay holds a trace's frames and plays them at their recorded pace. No vscode
 * or I/O here: the panel shows the frame at the cursor (show callbacks, return values).
 */
import type { ControlQueue } from './avail-poll';
import { MAX_HISTORY, type HistoryCursor, type RingsFrame } from './messages';
import type { BackendSnapshot } from '../../../backend/telemetry/schema';

export interface HistoryEntry {
  frame: RingsFrame;
  /** the backend snapshot the frame was built from (undefined: QMP only), for a trace */
  snapshot: BackendSnapshot | undefined;
  control: ControlQueue | undefined;
  atMs: number;
}

/** Gaps between replayed frames are kept, within these bounds (ms). */
const PLAY_MIN_MS = 20;
const PLAY_MAX_MS = 1000;
/** The delay before a replay's first step (ms). */
const PLAY_START_MS = 50;

export class FrameHistory {
  private entries: HistoryEntry[] = [];
  private pos = -1;
  private paused = false;
  private playTimer: NodeJS.Timeout | undefined;

  /** the cursor (-1 before the first frame) */
  get position(): number {
    return this.pos;
  }

  get length(): number {
    return this.entries.length;
  }

  get isPaused(): boolean {
    return this.paused;
  }

  frames(): RingsFrame[] {
    return this.entries.map((h) => h.frame);
  }

  newest(): HistoryEntry | undefined {
    return this.entries.at(-1);
  }

  /** the entry at the cursor */
  shown(): HistoryEntry | undefined {
    return this.entries[this.pos];
  }

  /** Where the cursor is; `replaying`: the frames are a trace's (never live). */
  cursor(replaying: boolean): HistoryCursor {
    return { pos: Math.max(0, this.pos), count: this.entries.length, live: !this.paused && !replaying };
  }

  /** Keeps a frame that moved (the oldest goes past MAX_HISTORY); returns true when the cursor follows it (not paused). */
  add(entry: HistoryEntry): boolean {
    this.entries.push(entry);
    if (this.entries.length > MAX_HISTORY) {
      this.entries.shift();
      if (this.paused) this.pos = Math.max(0, this.pos - 1);
    }
    if (this.paused) return false;
    this.pos = this.entries.length - 1;
    return true;
  }

  /** Pauses or resumes (the cursor does not move; a replay stops playing). */
  setPaused(paused: boolean): void {
    this.stopPlay();
    this.paused = paused;
  }

  toNewest(): void {
    this.pos = this.entries.length - 1;
  }

  /** Moves the cursor to `pos`, clamped to the frames kept. */
  seek(pos: number): void {
    this.pos = Math.min(this.entries.length - 1, Math.max(0, pos));
  }

  /** Holds a trace's frames instead (paused on the first). */
  replace(entries: HistoryEntry[]): void {
    this.stopPlay();
    this.paused = true;
    this.entries = entries;
    this.pos = 0;
  }

  /** Forgets every frame (back to live, nothing shown yet). */
  clear(): void {
    this.stopPlay();
    this.entries = [];
    this.pos = -1;
    this.paused = false;
  }

  /**
   * Plays the frames from the cursor (from the first when at the end) at their recorded pace;
   * `show` is called for each; at the last frame the history pauses.
   */
  play(show: () => void): void {
    const step = (): void => {
      if (this.pos >= this.entries.length - 1) {
        this.paused = true;
        show();
        return;
      }
      const dt = Math.min(PLAY_MAX_MS, Math.max(PLAY_MIN_MS, this.entries[this.pos + 1]!.atMs - this.entries[this.pos]!.atMs));
      this.pos++;
      show();
      this.playTimer = setTimeout(step, dt);
    };
    if (this.pos >= this.entries.length - 1) this.pos = 0;
    show();
    this.playTimer = setTimeout(step, PLAY_START_MS);
  }

  stopPlay(): void {
    clearTimeout(this.playTimer);
    this.playTimer = undefined;
  }
}
