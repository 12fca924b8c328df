/**
 * The page header's controls (static markup from extension/vscode/rings/page.ts): pause / play /
 * live, the history scrubber with its one-frame steps and position, record, open trace / back to
 * live, the feed badge, the device list's Refresh, and the page's keys (← → step, Space pauses).
 * They post the user's requests to the panel and show what the panel reports back.
 */
import type { FeedState, FromWebview } from '../../extension/vscode/rings/messages';
import { setText } from './dom';

export class Controls {
  private readonly feed = document.getElementById('feed')!;
  private readonly pauseButton = document.getElementById('pause') as HTMLButtonElement;
  private readonly scrub = document.getElementById('scrub') as HTMLInputElement;
  private readonly back = document.getElementById('back') as HTMLButtonElement;
  private readonly fwd = document.getElementById('fwd') as HTMLButtonElement;
  private readonly posText = document.getElementById('pos')!;
  private readonly recordButton = document.getElementById('record') as HTMLButtonElement;
  private readonly openButton = document.getElementById('open') as HTMLButtonElement;
  private live = true;
  private replay = false;
  private recording = false;
  private pos = 0;
  private count = 0;

  constructor(private readonly post: (message: FromWebview) => void) {
    this.pauseButton.addEventListener('click', () => this.togglePause());
    this.scrub.addEventListener('input', () => this.post({ type: 'seek', pos: Number(this.scrub.value) }));
    this.back.addEventListener('click', () => this.step(-1));
    this.fwd.addEventListener('click', () => this.step(1));
    this.recordButton.addEventListener('click', () => this.post({ type: 'record', on: !this.recording }));
    this.openButton.addEventListener('click', () => this.post({ type: 'openTrace' }));
    document.getElementById('devices-refresh')!.addEventListener('click', () => this.post({ type: 'devices' }));
    document.addEventListener('keydown', (e) => {
      const target = e.target as HTMLElement | null;
      if (target && (target.tagName === 'INPUT' || target.tagName === 'CANVAS' || target.tagName === 'TR' || target.tagName === 'BUTTON')) return;
      if (e.key === 'ArrowLeft') this.step(-1);
      else if (e.key === 'ArrowRight') this.step(1);
      else if (e.key === ' ') {
        e.preventDefault();
        this.togglePause();
      }
    });
  }

  /** whether the last drawn frame was live (following the feed) */
  get isLive(): boolean {
    return this.live;
  }

  private togglePause(): void {
    this.post({ type: this.live || (this.replay && this.pauseButton.textContent === 'Pause') ? 'pause' : 'resume' });
  }

  private step(d: number): void {
    if (this.count === 0) return;
    this.post({ type: 'seek', pos: Math.min(this.count - 1, Math.max(0, this.pos + d)) });
  }

  /** The feed's state (live, paused, replay, …) in the badge; a replay cannot record. */
  showFeed(state: FeedState, message: string): void {
    setText(this.feed, message);
    this.feed.className = `feed feed-${state}`;
    this.replay = state === 'replay';
    setText(this.openButton, this.replay ? 'Back to live' : 'Open trace');
    this.recordButton.disabled = this.replay;
  }

  showRecording(file: string | null, frames: number, bytes: number): void {
    this.recording = file !== null;
    setText(this.recordButton, this.recording ? `Stop recording (${frames} frames, ${(bytes / 1024).toFixed(1)} KiB)` : 'Record');
  }

  /** A frame at history position `pos` of `count` was drawn (every frame). */
  showCursor(pos: number, count: number, live: boolean): void {
    this.live = live;
    this.pos = pos;
    this.count = count;
    setText(this.pauseButton, live ? 'Pause' : this.replay ? 'Play' : 'Live');
  }

  /** The scrubber and the position readout (at the text rate). */
  showPosition(pos: number, count: number, live: boolean): void {
    this.scrub.max = String(Math.max(0, count - 1));
    this.scrub.value = String(pos);
    setText(this.posText, `frame ${pos + 1} / ${count}${live ? ' (live)' : ''}`);
  }
}
