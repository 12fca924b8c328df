/**
 * "Show Virtqueue Rings": one webview panel fed by the backend's telemetry subscription (data
 * queues) and the lab's QMP status (control queue), or by a recorded trace (replay). This file is
 * the panel's lifecycle (createOrShow / revive / dispose, as in VS Code's webview sample) and the
 * wiring of its parts: which snapshots become frames and the feed's rate (motion.ts), the frame
 * history and scrubber (history.ts), trace record and replay (recording.ts, trace-dialogs.ts), the
 * control queue's avail idx (avail-poll.ts), the chain and device requests (requests.ts) and its
 * stats (stats.ts).
 *
 * Cheap to leave open: a frame is posted only when something moved; after a second without motion
 * the subscription drops to IDLE_MS and comes back to the configured rate at the first change; a
 * hidden panel unsubscribes. The panel keeps the last MAX_HISTORY frames: pause freezes the view
 * and the scrubber seeks through them. Descriptor detail is asked from the backend per click.
 */
import * as fs from 'node:fs';
import * as vscode from 'vscode';
import { renderWebview, webviewOptions } from '../webview-html';
import { ControlAvailPoll, controlDevice } from './avail-poll';
import { FrameHistory, type HistoryEntry } from './history';
import { MotionGate } from './motion';
import { parseFromWebview, parsePanelState, type DeviceFrame, type HistoryCursor, type RingsFrame, type ToWebview } from './messages';
import { RINGS_BODY } from './page';
import { loadTrace, TraceRecording, type RecordingProgress } from './recording';
import { readChain, readDevices } from './requests';
import type { RingsSource } from './source';
import { PanelStats, type RingsStats } from './stats';
import { TelemetryFeed } from './telemetry-feed';
import { askRecordFile, askTraceFile } from './trace-dialogs';
import type { BackendSnapshot } from '../../../backend/telemetry/schema';

export { IDLE_MS } from './motion';
export type { RingsSource } from './source';
export type { RingsStats } from './stats';

export class RingsPanel implements vscode.Disposable {
  static readonly viewType = 'vlab.rings';
  private static current: RingsPanel | undefined;

  private readonly disposables: vscode.Disposable[] = [];
  private disposed = false;
  private readonly feed: TelemetryFeed;
  private readonly motion: MotionGate;
  private readonly history = new FrameHistory();
  private readonly control: ControlAvailPoll;
  private readonly statsData = new PanelStats();
  private recorder: TraceRecording | undefined;
  /** the trace file replayed; undefined: live */
  private trace: string | undefined;
  /** revived paused: freeze on the first frame shown */
  private pauseWhenShown = false;

  static createOrShow(extensionUri: vscode.Uri, source: RingsSource, refreshMs: number): RingsPanel {
    if (RingsPanel.current) {
      RingsPanel.current.panel.reveal();
      return RingsPanel.current;
    }
    const panel = vscode.window.createWebviewPanel(RingsPanel.viewType, 'Virtqueue Rings', vscode.ViewColumn.Active, webviewOptions(extensionUri, true));
    RingsPanel.current = new RingsPanel(panel, extensionUri, source, refreshMs);
    return RingsPanel.current;
  }

  /** Restores a panel VS Code kept across a window reload (the serializer's half). */
  static revive(panel: vscode.WebviewPanel, extensionUri: vscode.Uri, source: RingsSource, refreshMs: number, state: unknown): RingsPanel {
    RingsPanel.current?.dispose();
    panel.webview.options = webviewOptions(extensionUri, true);
    const p = new RingsPanel(panel, extensionUri, source, refreshMs);
    RingsPanel.current = p;
    // The webview restores its selected slot itself (from the same state); the source and pause are ours.
    const saved = parsePanelState(state);
    if (saved.trace && fs.existsSync(saved.trace)) p.openTrace(saved.trace);
    else if (saved.paused) p.pauseWhenShown = true;
    return p;
  }

  static get instance(): RingsPanel | undefined {
    return RingsPanel.current;
  }

  private constructor(private readonly panel: vscode.WebviewPanel, extensionUri: vscode.Uri, private readonly source: RingsSource, refreshMs: number) {
    panel.iconPath = vscode.Uri.joinPath(extensionUri, 'media', 'vlab.svg');
    panel.webview.html = renderWebview(panel.webview, extensionUri, {
      title: 'Virtqueue Rings',
      style: 'rings.css',
      script: 'build/rings.js',
      body: RINGS_BODY,
    });
    this.feed = new TelemetryFeed(() => source.telemetrySocket(), refreshMs);
    this.motion = new MotionGate(this.feed, refreshMs, () => panel.active);
    this.control = new ControlAvailPoll(source);
    this.feed.on('snapshot', (s) => this.addFrame(s));
    this.feed.on('state', (state, detail) => this.onFeedState(state, detail));
    this.disposables.push(
      panel.onDidDispose(() => this.dispose()),
      panel.webview.onDidReceiveMessage((raw: unknown) => void this.onMessage(raw)),
      panel.onDidChangeViewState(() => this.onVisibility()),
      source.onDidChangeStatus(() => this.onStatus()),
    );
    if (panel.visible) this.feed.start();
  }

  stats(): RingsStats {
    return this.statsData.report({ snapshotsReceived: this.feed.received, snapshotsSkipped: this.motion.skipped, rateMs: this.feed.rateMs, cursor: this.cursor(), recording: this.recorder?.progress(), trace: this.trace });
  }

  /** Frames the panel keeps (live: the last MAX_HISTORY that moved; replay: the trace's). */
  frames(): RingsFrame[] {
    return this.history.frames();
  }

  private post(message: ToWebview): void {
    this.statsData.posted(message);
    void this.panel.webview.postMessage(message);
  }

  private cursor(): HistoryCursor {
    return this.history.cursor(this.trace !== undefined);
  }

  private onVisibility(): void {
    // Hidden: nobody looks, so nobody asks the backend (the webview is discarded too).
    if (this.trace !== undefined) return;
    if (this.panel.visible) {
      this.motion.viewChanged();
      this.feed.start();
    } else if (!this.recorder) this.feed.stop();
  }

  private onFeedState(state: 'connecting' | 'live' | 'waiting', detail: string): void {
    if (this.trace !== undefined) return;
    if (state === 'waiting' && !this.source.telemetrySocket()) {
      const device = this.source.device();
      this.post({ type: 'feed', state: 'unavailable', message: device ? 'no backend telemetry (builtin backend): queues from QMP' : 'VM not running: waiting for it to start' });
      if (device) this.addFrame(undefined);
      return;
    }
    const paused = this.history.isPaused;
    this.post({ type: 'feed', state: paused ? 'paused' : state, message: state === 'live' ? (paused ? 'paused' : 'live') : `${state}: ${detail}` });
  }

  private onStatus(): void {
    // After a restart the backend re-creates its socket: reconnect now rather than at the next backoff.
    if (this.trace === undefined && this.statsData.feedState !== 'live' && this.source.telemetrySocket()) this.feed.reconnect();
  }

  /** A new snapshot (undefined: QMP only): kept and shown when something moved; the rate follows the motion. */
  private addFrame(snapshot: BackendSnapshot | undefined): void {
    const control = this.control.controlQueue();
    const frame = this.motion.next(snapshot, controlDevice(control));
    if (!frame) return;
    const entry = { frame, snapshot, control, atMs: frame.timeMs };
    const follows = this.history.add(entry);
    if (this.recorder && snapshot !== undefined) this.record(entry);
    if (follows) {
      this.show();
      if (this.pauseWhenShown) {
        this.pauseWhenShown = false;
        this.setPaused(true);
      }
    }
  }

  private record(entry: HistoryEntry): void {
    this.recorder!.add(entry);
    this.post({ type: 'recording', ...this.recorder!.progress() });
  }

  /** Posts the frame at the history's cursor. */
  private show(): void {
    const h = this.history.shown();
    if (!h) return;
    this.post({ type: 'frame', frame: h.frame, cursor: this.cursor(), rateMs: this.trace === undefined ? this.feed.rateMs : 0 });
  }

  /** Pause: the view freezes on the shown frame; frames keep arriving into the history. */
  setPaused(paused: boolean): void {
    this.history.setPaused(paused);
    if (this.trace !== undefined) {
      if (!paused) this.history.play(() => this.show());
      return;
    }
    this.post({ type: 'feed', state: paused ? 'paused' : 'live', message: paused ? 'paused' : 'live' });
    if (!paused) {
      this.history.toNewest();
      this.show();
    }
  }

  /** Shows history frame `pos` (pauses a live view). */
  seek(pos: number): void {
    if (this.history.length === 0) return;
    this.history.stopPlay();
    if (!this.history.isPaused) this.setPaused(true);
    this.history.seek(pos);
    this.show();
  }

  get position(): number {
    return this.history.position;
  }

  /** Starts writing every frame that moves to `file` (trace format: backend/telemetry/trace.ts); returns the seq of the first frame the trace will hold. */
  startRecording(file: string): number {
    this.stopRecording();
    this.recorder = TraceRecording.open(file);
    const h = this.history.newest();
    if (h?.snapshot !== undefined) this.record(h);
    this.post({ type: 'recording', ...this.recorder.progress() });
    return h?.snapshot !== undefined ? h.frame.seq : this.motion.lastSeq + 1;
  }

  /** Stops recording; `lastSeq` is the seq of the last frame written. */
  stopRecording(): (RecordingProgress & { lastSeq: number }) | undefined {
    const r = this.recorder;
    if (!r) return undefined;
    this.recorder = undefined;
    r.close();
    const done = r.progress();
    this.post({ type: 'recording', ...done, file: null });
    if (!this.panel.visible) this.feed.stop();
    return { ...done, lastSeq: this.motion.lastSeq };
  }

  /** Replays a trace offline: the live feed stops, the history is the trace's frames. */
  openTrace(file: string): number {
    const trace = loadTrace(file);
    this.stopRecording();
    this.feed.stop();
    this.trace = file;
    this.history.replace(trace.entries);
    this.post({ type: 'feed', state: 'replay', message: trace.feedMessage });
    this.post({ type: 'state', trace: file });
    this.show();
    return this.history.length;
  }

  /** Back to the live feed (after a replay). */
  goLive(): void {
    this.history.clear();
    this.trace = undefined;
    this.motion.forget();
    this.post({ type: 'state', trace: null });
    this.feed.start();
  }

  /** The decoded chain at one head (from the backend, on demand). */
  async requestChain(queue: number, head: number): Promise<void> {
    this.post(await readChain(this.source.telemetrySocket(), this.trace !== undefined, queue, head));
  }

  async requestDevices(): Promise<DeviceFrame[]> {
    const message = await readDevices(this.source);
    this.post(message);
    return message.devices;
  }

  private async onMessage(raw: unknown): Promise<void> {
    const msg = parseFromWebview(raw);
    if (!msg) return; // untrusted: unknown shapes are dropped
    switch (msg.type) {
      case 'ready':
        if (this.history.position >= 0) this.show();
        if (this.trace !== undefined) this.post({ type: 'state', trace: this.trace });
        break;
      case 'pause':
        this.setPaused(true);
        break;
      case 'resume':
        this.setPaused(false);
        break;
      case 'seek':
        this.seek(msg.pos);
        break;
      case 'chain':
        await this.requestChain(msg.queue, msg.head);
        break;
      case 'devices':
        await this.requestDevices();
        break;
      case 'record':
        if (!msg.on) this.stopRecording();
        else {
          const file = await askRecordFile();
          if (file) this.startRecording(file);
          else this.post({ type: 'recording', file: null, frames: 0, bytes: 0 });
        }
        break;
      case 'openTrace': {
        if (this.trace !== undefined) {
          this.goLive();
          break;
        }
        const file = await askTraceFile();
        if (file) {
          try {
            this.openTrace(file);
          } catch (err) {
            void vscode.window.showErrorMessage(`VirtIO Lab: ${(err as Error).message}`);
          }
        }
        break;
      }
      case 'drawn':
        this.statsData.drawn(msg);
        break;
    }
  }

  dispose(): void {
    // Runs once: closing the panel fires onDidDispose, which calls back here.
    if (this.disposed) return;
    this.disposed = true;
    if (RingsPanel.current === this) RingsPanel.current = undefined;
    this.history.stopPlay();
    this.stopRecording();
    this.feed.stop();
    this.feed.removeAllListeners();
    this.panel.dispose();
    while (this.disposables.length) this.disposables.pop()?.dispose();
  }
}
