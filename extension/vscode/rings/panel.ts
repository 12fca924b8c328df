/**
 * "Show Virtqueue Rings": one webview panel fed by the backend's telemetry subscription (data
 * queues) and the lab's QMP status (control queue). Frames are forwarded at the configured
 * rate; pause keeps the newest snapshot so "step" can show exactly one more.
 */
import * as vscode from 'vscode';
import type { VirtioDeviceStatus } from '../../core/qmp-virtio';
import { renderWebview, webviewOptions } from '../webview-html';
import { frameFromSnapshot } from './frames';
import { parseFromWebview, type FeedState, type ToWebview } from './messages';
import { TelemetryFeed } from './telemetry-feed';

export interface RingsSource {
  /** the running backend's telemetry socket, undefined when none (stopped, or the builtin backend) */
  telemetrySocket(): string | undefined;
  /** last device status read over QMP */
  device(): VirtioDeviceStatus | null | undefined;
  /** fires whenever the lab status was re-read (state changes, restarts) */
  readonly onDidChangeStatus: vscode.Event<unknown>;
}

export interface RingsStats {
  framesPosted: number;
  framesDrawn: number;
  snapshotsReceived: number;
  lastDrawn: { seq: number; slotsDrawn: number; queues: number } | undefined;
  /** extension-clock times of the last drawn acknowledgements (at most 200) */
  drawnAtMs: number[];
  /** (seq, first queue's usedIdx) per posted frame, newest 200 */
  usedIdxTrail: number[];
  feedState: FeedState;
}

export class RingsPanel implements vscode.Disposable {
  static readonly viewType = 'vlab.rings';
  private static current: RingsPanel | undefined;

  private readonly disposables: vscode.Disposable[] = [];
  private disposed = false;
  private readonly feed: TelemetryFeed;
  private paused = false;
  private latest: unknown;
  private seq = 0;
  private readonly statsData: RingsStats = { framesPosted: 0, framesDrawn: 0, snapshotsReceived: 0, lastDrawn: undefined, drawnAtMs: [], usedIdxTrail: [], feedState: 'connecting' };

  static createOrShow(extensionUri: vscode.Uri, source: RingsSource, refreshMs: number): RingsPanel {
    if (RingsPanel.current) {
      RingsPanel.current.panel.reveal();
      return RingsPanel.current;
    }
    const panel = vscode.window.createWebviewPanel(RingsPanel.viewType, 'Virtqueue Rings', vscode.ViewColumn.Active, webviewOptions(extensionUri, true));
    RingsPanel.current = new RingsPanel(panel, extensionUri, source, refreshMs);
    return RingsPanel.current;
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
      body: `<header><h1>Virtqueue rings</h1><button id="pause">Pause</button><button id="step" disabled>Step</button>
<span id="feed" class="feed">connecting…</span><span id="throughput"></span><span id="meta"></span></header>
<main id="queues"></main>`,
    });
    this.feed = new TelemetryFeed(() => source.telemetrySocket(), refreshMs);
    this.feed.on('snapshot', (s) => this.onSnapshot(s));
    this.feed.on('state', (state, detail) => this.onFeedState(state, detail));
    this.disposables.push(
      panel.onDidDispose(() => this.dispose()),
      panel.webview.onDidReceiveMessage((raw: unknown) => this.onMessage(raw)),
      source.onDidChangeStatus(() => this.onStatus()),
    );
    this.feed.start();
  }

  stats(): RingsStats {
    return { ...this.statsData, snapshotsReceived: this.feed.received, drawnAtMs: [...this.statsData.drawnAtMs], usedIdxTrail: [...this.statsData.usedIdxTrail] };
  }

  private post(message: ToWebview): void {
    void this.panel.webview.postMessage(message);
  }

  private onFeedState(state: 'connecting' | 'live' | 'waiting', detail: string): void {
    if (state === 'waiting' && !this.source.telemetrySocket()) {
      this.statsData.feedState = 'unavailable';
      const device = this.source.device();
      this.post({ type: 'feed', state: 'unavailable', message: device ? 'no backend telemetry (builtin backend): queues from QMP' : 'VM not running: waiting for it to start' });
      if (device) this.postFrame(undefined);
      return;
    }
    this.statsData.feedState = this.paused ? 'paused' : state;
    this.post({ type: 'feed', state: this.statsData.feedState, message: state === 'live' ? (this.paused ? 'paused' : 'live') : `${state}: ${detail}` });
  }

  private onStatus(): void {
    // After a restart the backend re-creates its socket: reconnect now rather than at the next backoff.
    if (this.statsData.feedState !== 'live' && this.source.telemetrySocket()) this.feed.reconnect();
  }

  private onSnapshot(snapshot: unknown): void {
    this.latest = snapshot;
    if (!this.paused) this.postFrame(snapshot);
  }

  private postFrame(snapshot: unknown): void {
    const frame = frameFromSnapshot(snapshot, ++this.seq, Date.now(), this.source.device());
    this.statsData.framesPosted++;
    const first = frame.queues[0];
    if (first) {
      this.statsData.usedIdxTrail.push(first.usedIdx);
      if (this.statsData.usedIdxTrail.length > 200) this.statsData.usedIdxTrail.shift();
    }
    this.post({ type: 'frame', frame });
  }

  private onMessage(raw: unknown): void {
    const msg = parseFromWebview(raw);
    if (!msg) return; // untrusted: unknown shapes are dropped
    switch (msg.type) {
      case 'ready':
        if (this.latest !== undefined) this.postFrame(this.latest);
        break;
      case 'pause':
        this.paused = true;
        if (this.statsData.feedState === 'live') this.statsData.feedState = 'paused';
        this.post({ type: 'feed', state: 'paused', message: 'paused' });
        break;
      case 'resume':
        this.paused = false;
        if (this.statsData.feedState === 'paused' || this.statsData.feedState === 'live') {
          this.statsData.feedState = 'live';
          this.post({ type: 'feed', state: 'live', message: 'live' });
        }
        break;
      case 'step':
        if (this.paused && this.latest !== undefined) this.postFrame(this.latest);
        break;
      case 'drawn':
        this.statsData.framesDrawn++;
        this.statsData.lastDrawn = { seq: msg.seq, slotsDrawn: msg.slotsDrawn, queues: msg.queues };
        this.statsData.drawnAtMs.push(Date.now());
        if (this.statsData.drawnAtMs.length > 200) this.statsData.drawnAtMs.shift();
        break;
    }
  }

  dispose(): void {
    // Runs once: closing the panel fires onDidDispose, which calls back here.
    if (this.disposed) return;
    this.disposed = true;
    if (RingsPanel.current === this) RingsPanel.current = undefined;
    this.feed.stop();
    this.feed.removeAllListeners();
    this.panel.dispose();
    while (this.disposables.length) this.disposables.pop()?.dispose();
  }
}
