/**
 * The extension's handle on the workspace's lab: one core `Lab`, its status re-read on a timer
 * (the VM outlives VS Code and can be driven by `vlab` in a terminal too), long operations with a
 * cancellable progress notification, and context keys for `when` clauses.
 */
import { join } from 'node:path';
import * as vscode from 'vscode';
import type { Lab, LabProgress, LabStatus, LabState } from '../lab/lab';
import { labWithDriver } from '../lab/with-driver';
import type { SshSession } from '../lab/guest/ssh';
import type { LabSettings } from './settings';

export type Busy = 'starting' | 'stopping' | 'restarting' | 'building' | undefined;

export class LabController implements vscode.Disposable {
  private currentLab: Lab;
  private current: LabStatus | undefined;
  private busyWith: Busy;
  private timer: NodeJS.Timeout | undefined;
  private refreshing: Promise<LabStatus> | undefined;
  private disposed = false;
  /** true once this window started the VM: deactivation stops only what we started */
  private startedHere = false;
  private readonly statusEmitter = new vscode.EventEmitter<LabStatus>();
  readonly onDidChangeStatus = this.statusEmitter.event;

  constructor(
    readonly workspace: string,
    private readonly extensionPath: string,
    private readonly settings: () => LabSettings,
    private readonly log: vscode.OutputChannel,
  ) {
    this.currentLab = this.createLab();
  }

  private createLab(): Lab {
    const lab = labWithDriver(this.workspace, {
      env: { ...process.env, ...this.settings().env },
      // The bundle lives in dist/, so the core cannot find the launcher and guest files from its own path.
      vlabScript: join(this.extensionPath, 'bin', 'vlab.js'),
      initDir: join(this.extensionPath, 'guest', 'init'),
    });
    lab.on('progress', (p: LabProgress) => this.log.appendLine(`[${p.step}] ${p.message}`));
    return lab;
  }

  /** The core lab (re-created when host settings such as the QEMU path change). */
  get lab(): Lab {
    return this.currentLab;
  }

  /** Host settings (QEMU path, kernel) are read when the core lab is made: make a new one. */
  settingsChanged(): void {
    if (!this.busyWith) {
      this.currentLab.removeAllListeners();
      this.currentLab = this.createLab();
    }
    this.refresh().catch(() => undefined);
  }

  get status(): LabStatus | undefined {
    return this.current;
  }

  get state(): LabState {
    return this.current?.state ?? 'stopped';
  }

  get busy(): Busy {
    return this.busyWith;
  }

  /** Starts the periodic refresh (faster while running). */
  startPolling(): void {
    this.refresh().catch(() => undefined); // reported in the output; the timer retries
  }

  refresh(): Promise<LabStatus> {
    this.refreshing ??= this.readStatus().finally(() => { this.refreshing = undefined; });
    return this.refreshing;
  }

  private async readStatus(): Promise<LabStatus> {
    clearTimeout(this.timer);
    let status: LabStatus | undefined;
    try {
      status = await this.lab.status({ device: true, telemetry: true });
    } catch (err) {
      // e.g. an unreadable state.json: keep showing the last status and try again on the timer.
      this.log.appendLine(`reading the lab status failed: ${(err as Error).message}`);
      status = this.current;
    }
    if (!status) {
      this.timer = setTimeout(() => this.refresh().catch(() => undefined), 5000);
      throw new Error('the lab status cannot be read (see the VirtIO Lab output)');
    }
    if (this.disposed) return status;
    this.current = status;
    void this.setContext();
    this.statusEmitter.fire(status);
    const live = status.state === 'running' || status.state === 'booting' || this.busyWith !== undefined;
    this.timer = setTimeout(() => this.refresh().catch(() => undefined), live ? this.settings().statusRefreshMs : 5000);
    return status;
  }

  private async setContext(): Promise<void> {
    await vscode.commands.executeCommand('setContext', 'vlab.state', this.state);
    await vscode.commands.executeCommand('setContext', 'vlab.busy', this.busyWith ?? '');
    await vscode.commands.executeCommand('setContext', 'vlab.backend', this.current?.backend.kind ?? '');
  }

  /** Runs a lab operation under a cancellable progress notification. */
  async withProgress<T>(busy: NonNullable<Busy>, title: string, op: (signal: AbortSignal, report: (p: LabProgress) => void) => Promise<T>): Promise<T> {
    if (this.busyWith) throw new Error(`the lab is busy (${this.busyWith}); try again when that has finished`);
    this.busyWith = busy;
    void this.setContext();
    this.log.appendLine(`== ${title}`);
    try {
      return await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title, cancellable: true }, async (progress, token) => {
        const controller = new AbortController();
        const sub = token.onCancellationRequested(() => controller.abort());
        try {
          return await op(controller.signal, (p) => {
            progress.report({ message: p.message });
            this.refresh().catch(() => undefined);
          });
        } finally {
          sub.dispose();
        }
      });
    } finally {
      this.busyWith = undefined;
      await this.refresh().catch(() => undefined);
    }
  }

  async start(): Promise<LabStatus> {
    const { up } = this.settings();
    return this.withProgress('starting', 'VirtIO Lab: starting the VM', async (signal, report) => {
      const result = await this.lab.up(up, { signal, onProgress: report });
      if (!result.already) this.startedHere = true;
      return result.status;
    });
  }

  async stop(): Promise<void> {
    await this.withProgress('stopping', 'VirtIO Lab: stopping the VM', async (signal, report) => {
      await this.lab.down({ signal, onProgress: report });
      this.startedHere = false;
    });
  }

  async restart(): Promise<LabStatus> {
    const { up } = this.settings();
    return this.withProgress('restarting', 'VirtIO Lab: restarting the VM', async (signal, report) => {
      await this.lab.down({ signal, onProgress: report });
      const result = await this.lab.up(up, { signal, onProgress: report });
      this.startedHere = true;
      return result.status;
    });
  }

  async buildGuest(): Promise<void> {
    await this.withProgress('building', 'VirtIO Lab: building the guest', async (signal, report) => {
      await this.lab.buildGuest({ signal, onProgress: report });
    });
  }

  /** A new SSH session to the guest (caller closes it). */
  ssh(): Promise<SshSession> {
    return this.lab.ssh({ timeoutMs: 10_000 });
  }

  get telemetrySocket(): string | undefined {
    const s = this.current;
    return s?.state === 'running' && s.backend.kind === 'ts' && s.backend.pid !== undefined ? this.lab.paths.telemetrySocket : undefined;
  }

  /** Deactivation: stop the VM only if this window started it (and the setting allows). */
  async shutdown(): Promise<void> {
    this.disposed = true;
    clearTimeout(this.timer);
    if (this.startedHere && this.settings().stopVmOnExit) {
      try {
        await this.lab.down({});
      } catch (err) {
        this.log.appendLine(`stopping the VM on exit failed: ${(err as Error).message}`);
      }
    }
  }

  dispose(): void {
    this.disposed = true;
    clearTimeout(this.timer);
    this.statusEmitter.dispose();
  }
}
