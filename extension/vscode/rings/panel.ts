/**
 * "Show Virtqueue Rings": one webview panel fed by the backend's telemetry subscription (data
 * queues) and the lab's QMP status (control queue), or by a recorded trace (replay).
 *
 * Cheap to leave open: a frame is posted only when something moved; after a second without motion
 * the subscription drops to IDLE_MS and comes back to the configured rate at the first change; a
 * hidden panel unsubscribes. The panel keeps the last MAX_HISTORY frames: pause freezes the view
 * and the scrubber seeks through them. Descriptor detail is asked from the backend per click.
 */
import * as fs from 'node:fs';
import * as vscode from 'vscode';
import { telemetryRequest } from '../../../backend/telemetry/client';
import { readSnapshot, type AvailRingHeader, type BackendSnapshot, type TelemetryError } from '../../../backend/telemetry/schema';
import { TraceRecorder } from '../../../backend/telemetry/trace';
import { readTraceFile } from '../../../backend/telemetry/trace-file';
import type { VirtioDeviceQueues, VirtioDeviceStatus, VirtioQueueStatus } from '../../lab/qemu/qmp-virtio';
import { renderWebview, webviewOptions } from '../webview-html';
import { frameFromSnapshot, sameMotion, withAvailRing } from './frames';
import { MAX_DEVICES, MAX_HISTORY, parseFromWebview, parsePanelState, type ChainDetail, type DeviceFrame, type FeedState, type HistoryCursor, type RingsFrame, type ToWebview } from './messages';
import { RINGS_BODY } from './page';
import { TelemetryFeed } from './telemetry-feed';

/** Slowest moving rate of a panel that is visible but not the active editor. */
const BACKGROUND_MS = 200;
/** Subscription rate while nothing moves. */
export const IDLE_MS = 1000;
/** How often the control queue's avail ring header is asked from the backend (it moves only on session setup). */
const CONTROL_AVAIL_MS = 1000;
/** Unchanged snapshots before the rate drops. */
const IDLE_AFTER = 10;

export interface RingsSource {
  /** the running backend's telemetry socket, undefined when none (stopped, or the builtin backend) */
  telemetrySocket(): string | undefined;
  /** last device status read over QMP */
  device(): VirtioDeviceStatus | null | undefined;
  /** every virtio device of the VM (QMP), on demand */
  devices(): Promise<VirtioDeviceQueues[]>;
  /** fires whenever the lab status was re-read (state changes, restarts) */
  readonly onDidChangeStatus: vscode.Event<unknown>;
}

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
  recording: { file: string; frames: number; bytes: number } | undefined;
  trace: string | undefined;
  /** the last chain detail (or error) sent to the webview */
  lastChain: ChainDetail | string | undefined;
}

type ControlQueue = Extract<VirtioQueueStatus, { owner: 'qemu' }>;

function deviceFrames(list: readonly VirtioDeviceQueues[]): DeviceFrame[] {
  return list.slice(0, MAX_DEVICES).map((d) => ({
    name: d.name.slice(0, 48),
    path: d.path.slice(0, 120),
    queues: d.queues.slice(0, 64).map((q) => (q.owner === 'qemu'
      ? { index: q.index, size: q.size, availIdx: q.availIdx, usedIdx: q.usedIdx, lastAvailIdx: q.lastAvailIdx, inUse: q.inUse, owner: 'qemu' as const }
      : { index: q.index, size: 0, availIdx: null, usedIdx: 0, lastAvailIdx: null, inUse: 0, owner: 'backend' as const })),
  }));
}

export class RingsPanel implements vscode.Disposable {
  static readonly viewType = 'vlab.rings';
  private static current: RingsPanel | undefined;

  private readonly disposables: vscode.Disposable[] = [];
  private disposed = false;
  private readonly feed: TelemetryFeed;
  private paused = false;
  private seq = 0;
  private history: { frame: RingsFrame; snapshot: BackendSnapshot | undefined; control: ControlQueue | undefined; atMs: number }[] = [];
  private pos = -1;
  private idle = 0;
  private last: RingsFrame | undefined;
  private recorder: { rec: TraceRecorder; fd: number; file: string } | undefined;
  private trace: string | undefined;
  private playTimer: NodeJS.Timeout | undefined;
  /** revived paused: freeze on the first frame shown */
  private pauseWhenShown = false;
  private controlAvail: AvailRingHeader | TelemetryError | undefined;
  private controlAskedAt = 0;
  private controlAsking = false;
  private readonly statsData: RingsStats = {
    framesPosted: 0, framesDrawn: 0, snapshotsReceived: 0, snapshotsSkipped: 0, lastDrawn: undefined, usedIdxTrail: [],
    feedState: 'connecting', rateMs: 0, cursor: { pos: 0, count: 0, live: true }, shown: undefined, recording: undefined, trace: undefined, lastChain: undefined,
  };

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

  private constructor(private readonly panel: vscode.WebviewPanel, extensionUri: vscode.Uri, private readonly source: RingsSource, private readonly refreshMs: number) {
    panel.iconPath = vscode.Uri.joinPath(extensionUri, 'media', 'vlab.svg');
    panel.webview.html = renderWebview(panel.webview, extensionUri, {
      title: 'Virtqueue Rings',
      style: 'rings.css',
      script: 'build/rings.js',
      body: RINGS_BODY,
    });
    this.feed = new TelemetryFeed(() => source.telemetrySocket(), refreshMs);
    this.statsData.rateMs = refreshMs;
    this.feed.on('snapshot', (s) => this.onSnapshot(s));
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
    return {
      ...this.statsData, snapshotsReceived: this.feed.received, rateMs: this.feed.rateMs, usedIdxTrail: [...this.statsData.usedIdxTrail],
      cursor: this.cursor(), recording: this.recorder ? { file: this.recorder.file, frames: this.recorder.rec.frames, bytes: this.recorder.rec.bytes } : undefined, trace: this.trace,
    };
  }

  /** Frames the panel keeps (live: the last MAX_HISTORY that moved; replay: the trace's). */
  frames(): RingsFrame[] {
    return this.history.map((h) => h.frame);
  }

  private post(message: ToWebview): void {
    if (message.type === 'chain') this.statsData.lastChain = message.chain;
    if (message.type === 'chainError') this.statsData.lastChain = message.message;
    void this.panel.webview.postMessage(message);
  }

  private cursor(): HistoryCursor {
    return { pos: Math.max(0, this.pos), count: this.history.length, live: !this.paused && this.trace === undefined };
  }

  /**
   * The subscription's interval while things move: the configured rate while the panel is the active
   * editor, a quarter of it while it is visible beside another one the user works in.
   */
  private movingRateMs(): number {
    return this.panel.active ? this.refreshMs : Math.max(4 * this.refreshMs, BACKGROUND_MS);
  }

  private onVisibility(): void {
    // Hidden: nobody looks, so nobody asks the backend (the webview is discarded too).
    if (this.trace !== undefined) return;
    if (this.panel.visible) {
      if (this.idle < IDLE_AFTER) this.feed.setInterval(this.movingRateMs());
      this.feed.start();
    } else if (!this.recorder) this.feed.stop();
  }

  private onFeedState(state: 'connecting' | 'live' | 'waiting', detail: string): void {
    if (this.trace !== undefined) return;
    if (state === 'waiting' && !this.source.telemetrySocket()) {
      this.statsData.feedState = 'unavailable';
      const device = this.source.device();
      this.post({ type: 'feed', state: 'unavailable', message: device ? 'no backend telemetry (builtin backend): queues from QMP' : 'VM not running: waiting for it to start' });
      if (device) this.addFrame(undefined);
      return;
    }
    this.statsData.feedState = this.paused ? 'paused' : state;
    this.post({ type: 'feed', state: this.statsData.feedState, message: state === 'live' ? (this.paused ? 'paused' : 'live') : `${state}: ${detail}` });
  }

  private onStatus(): void {
    // After a restart the backend re-creates its socket: reconnect now rather than at the next backoff.
    if (this.trace === undefined && this.statsData.feedState !== 'live' && this.source.telemetrySocket()) this.feed.reconnect();
  }

  private onSnapshot(snapshot: BackendSnapshot): void {
    this.addFrame(snapshot);
  }

  /**
   * The crypto device's control queue as QMP reports it; when QEMU leaves its avail idx out (7.2,
   * vhost started), the idx the backend last read from the guest's avail ring (asked at most once
   * a second, never awaited on the frame path).
   */
  private controlQueue(): ControlQueue | undefined {
    const q = this.source.device()?.queues.at(-1);
    if (q?.owner !== 'qemu') return undefined;
    const socket = this.source.telemetrySocket();
    if (q.availIdx === null && q.availAddr > 0 && socket && !this.controlAsking && Date.now() - this.controlAskedAt >= CONTROL_AVAIL_MS) {
      this.controlAsking = true;
      this.controlAskedAt = Date.now();
      telemetryRequest(socket, { type: 'avail-allow', addr: q.availAddr })
        .then((reply) => { this.controlAvail = reply; }, () => undefined)
        .finally(() => { this.controlAsking = false; });
    }
    return withAvailRing(q, this.controlAvail);
  }

  /** A new snapshot: kept and shown when something moved; the rate follows the motion. */
  private addFrame(snapshot: BackendSnapshot | undefined): void {
    const control = this.controlQueue();
    const frame = frameFromSnapshot(snapshot, this.seq + 1, Date.now(), control ? { queues: [control] } as unknown as VirtioDeviceStatus : undefined);
    if (sameMotion(this.last, frame)) {
      this.statsData.snapshotsSkipped++;
      if (++this.idle >= IDLE_AFTER) this.feed.setInterval(Math.max(IDLE_MS, this.refreshMs));
      return;
    }
    this.idle = 0;
    this.feed.setInterval(this.movingRateMs());
    this.seq++;
    this.last = frame;
    this.history.push({ frame, snapshot, control, atMs: frame.timeMs });
    if (this.history.length > MAX_HISTORY) {
      this.history.shift();
      if (this.paused) this.pos = Math.max(0, this.pos - 1);
    }
    if (this.recorder && snapshot !== undefined) this.record(snapshot, control, frame.timeMs);
    if (!this.paused) {
      this.pos = this.history.length - 1;
      this.show();
      if (this.pauseWhenShown) {
        this.pauseWhenShown = false;
        this.setPaused(true);
      }
    }
  }

  private record(snapshot: BackendSnapshot, control: ControlQueue | undefined, atMs: number): void {
    const r = this.recorder!;
    r.rec.add({ ...snapshot }, atMs, control ? { control } : undefined, true);
    this.post({ type: 'recording', file: r.file, frames: r.rec.frames, bytes: r.rec.bytes });
  }

  private show(): void {
    const h = this.history[this.pos];
    if (!h) return;
    this.statsData.framesPosted++;
    this.statsData.shown = h.frame;
    const first = h.frame.queues[0];
    if (first) {
      this.statsData.usedIdxTrail.push(first.usedIdx);
      if (this.statsData.usedIdxTrail.length > 200) this.statsData.usedIdxTrail.shift();
    }
    this.post({ type: 'frame', frame: h.frame, cursor: this.cursor(), rateMs: this.trace === undefined ? this.feed.rateMs : 0 });
  }

  /** Pause: the view freezes on the shown frame; frames keep arriving into the history. */
  setPaused(paused: boolean): void {
    this.stopPlay();
    this.paused = paused;
    if (this.trace !== undefined) {
      if (!paused) this.play();
      return;
    }
    this.statsData.feedState = paused ? 'paused' : 'live';
    this.post({ type: 'feed', state: this.statsData.feedState, message: paused ? 'paused' : 'live' });
    if (!paused) {
      this.pos = this.history.length - 1;
      this.show();
    }
  }

  /** Shows history frame `pos` (pauses a live view). */
  seek(pos: number): void {
    if (this.history.length === 0) return;
    this.stopPlay();
    if (!this.paused) this.setPaused(true);
    this.pos = Math.min(this.history.length - 1, Math.max(0, pos));
    this.show();
  }

  get position(): number {
    return this.pos;
  }

  /** Starts writing every frame that moves to `file` (trace format: backend/telemetry/trace.ts). */
  /** Returns the seq of the first frame the trace will hold. */
  startRecording(file: string): number {
    this.stopRecording();
    const fd = fs.openSync(file, 'w', 0o600);
    this.recorder = { fd, file, rec: new TraceRecorder((text) => fs.writeSync(fd, text), 'VS Code rings view') };
    const h = this.history.at(-1);
    if (h?.snapshot !== undefined) this.record(h.snapshot, h.control, h.atMs);
    this.post({ type: 'recording', file, frames: this.recorder.rec.frames, bytes: this.recorder.rec.bytes });
    return h?.snapshot !== undefined ? h.frame.seq : this.seq + 1;
  }

  /** Stops recording; `lastSeq` is the seq of the last frame written. */
  stopRecording(): { file: string; frames: number; bytes: number; lastSeq: number } | undefined {
    const r = this.recorder;
    if (!r) return undefined;
    this.recorder = undefined;
    fs.closeSync(r.fd);
    this.post({ type: 'recording', file: null, frames: r.rec.frames, bytes: r.rec.bytes });
    if (!this.panel.visible) this.feed.stop();
    return { file: r.file, frames: r.rec.frames, bytes: r.rec.bytes, lastSeq: this.seq };
  }

  /** Replays a trace offline: the live feed stops, the history is the trace's frames. */
  openTrace(file: string): number {
    const parsed = readTraceFile(file);
    this.stopRecording();
    this.feed.stop();
    this.stopPlay();
    this.trace = file;
    this.paused = true;
    this.history = parsed.entries.map((e, i) => {
      const control = e.control as ControlQueue | undefined;
      const snapshot = readSnapshot(e.snapshot);
      const frame = frameFromSnapshot(snapshot, i + 1, e.t, control ? { queues: [control] } as unknown as VirtioDeviceStatus : undefined);
      return { frame, snapshot, control, atMs: e.t };
    });
    this.pos = 0;
    this.statsData.feedState = 'replay';
    this.post({ type: 'feed', state: 'replay', message: `replaying ${file.split('/').pop() ?? file}: ${this.history.length} frames${parsed.skipped ? `, ${parsed.skipped} lines skipped` : ''}${parsed.truncated ? `, only the first ${(parsed.bytesRead / 2 ** 20).toFixed(0)} MiB / ${parsed.entries.length} frames read (replay caps)` : ''}` });
    this.post({ type: 'state', trace: file });
    this.show();
    return this.history.length;
  }

  /** Back to the live feed (after a replay). */
  goLive(): void {
    this.stopPlay();
    this.trace = undefined;
    this.history = [];
    this.pos = -1;
    this.last = undefined;
    this.paused = false;
    this.post({ type: 'state', trace: null });
    this.feed.start();
  }

  private play(): void {
    const step = (): void => {
      if (this.pos >= this.history.length - 1) {
        this.paused = true;
        this.show();
        return;
      }
      const dt = Math.min(1000, Math.max(20, this.history[this.pos + 1]!.atMs - this.history[this.pos]!.atMs));
      this.pos++;
      this.show();
      this.playTimer = setTimeout(step, dt);
    };
    if (this.pos >= this.history.length - 1) this.pos = 0;
    this.show();
    this.playTimer = setTimeout(step, 50);
  }

  private stopPlay(): void {
    clearTimeout(this.playTimer);
    this.playTimer = undefined;
  }

  /** The decoded chain at one head (from the backend, on demand). */
  async requestChain(queue: number, head: number): Promise<void> {
    const socket = this.source.telemetrySocket();
    if (this.trace !== undefined || !socket) {
      this.post({ type: 'chainError', message: this.trace !== undefined ? 'a trace holds snapshots only: descriptor chains are read from a running backend' : 'no backend telemetry: descriptor chains come from the TypeScript backend' });
      return;
    }
    try {
      const reply = await telemetryRequest(socket, { type: 'chain', queue, head });
      if (reply.type === 'chain') this.post({ type: 'chain', chain: reply });
      else this.post({ type: 'chainError', message: reply.message.slice(0, 200) });
    } catch (err) {
      this.post({ type: 'chainError', message: (err as Error).message.slice(0, 200) });
    }
  }

  async requestDevices(): Promise<DeviceFrame[]> {
    try {
      const socket = this.source.telemetrySocket();
      const list = await Promise.all((await this.source.devices()).map(async (d) => {
        // The crypto device's control queue: QEMU 7.2 leaves its avail idx out; the backend reads it.
        const q = d.queues.at(-1);
        if (d.name !== 'virtio-crypto' || q?.owner !== 'qemu' || q.availIdx !== null || q.availAddr <= 0 || !socket) return d;
        const reply = await telemetryRequest(socket, { type: 'avail-allow', addr: q.availAddr }).catch(() => undefined);
        return { ...d, queues: [...d.queues.slice(0, -1), withAvailRing(q, reply)] };
      }));
      const devices = deviceFrames(list);
      this.post({ type: 'devices', devices, message: `${devices.length} virtio devices (QMP)` });
      return devices;
    } catch (err) {
      this.post({ type: 'devices', devices: [], message: `cannot list the virtio devices: ${(err as Error).message.slice(0, 200)}` });
      return [];
    }
  }

  private async onMessage(raw: unknown): Promise<void> {
    const msg = parseFromWebview(raw);
    if (!msg) return; // untrusted: unknown shapes are dropped
    switch (msg.type) {
      case 'ready':
        if (this.pos >= 0) this.show();
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
          const uri = await vscode.window.showSaveDialog({ title: 'Record rings trace', filters: { 'Rings trace': ['jsonl'] }, defaultUri: vscode.Uri.file(`rings-${new Date().toISOString().replace(/[:.]/g, '-')}.jsonl`) });
          if (uri) this.startRecording(uri.fsPath);
          else this.post({ type: 'recording', file: null, frames: 0, bytes: 0 });
        }
        break;
      case 'openTrace': {
        if (this.trace !== undefined) {
          this.goLive();
          break;
        }
        const [uri] = (await vscode.window.showOpenDialog({ title: 'Open rings trace', filters: { 'Rings trace': ['jsonl', 'json'] }, canSelectMany: false })) ?? [];
        if (uri) {
          try {
            this.openTrace(uri.fsPath);
          } catch (err) {
            void vscode.window.showErrorMessage(`VirtIO Lab: ${(err as Error).message}`);
          }
        }
        break;
      }
      case 'drawn':
        this.statsData.framesDrawn += msg.frames;
        this.statsData.lastDrawn = { seq: msg.seq, slotsDrawn: msg.slotsDrawn, queues: msg.queues };
        break;
    }
  }

  dispose(): void {
    // Runs once: closing the panel fires onDidDispose, which calls back here.
    if (this.disposed) return;
    this.disposed = true;
    if (RingsPanel.current === this) RingsPanel.current = undefined;
    this.stopPlay();
    this.stopRecording();
    this.feed.stop();
    this.feed.removeAllListeners();
    this.panel.dispose();
    while (this.disposables.length) this.disposables.pop()?.dispose();
  }
}
