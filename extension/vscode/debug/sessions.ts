/**
 * The running "vlab-kernel" debug sessions, seen through a DebugAdapterTracker:
 *
 *   - halted: a `stopped` event halts the whole guest (the gdbstub stops every vCPU) until a
 *     `continued` event or a continue/step request; the status bar and the rings view say
 *     "halted (debugger)" meanwhile;
 *   - the driver's request timeout: while a session is attached, the guest driver's `timeout_ms` is 0
 *     (no ETIMEDOUT for a request that is slow because the guest sat at a breakpoint), the value it had
 *     is written back when the last session ends;
 *   - after "Reload driver": the module's symbols are moved to its new section addresses (planGdb
 *     again; remove-symbol-file + add-symbol-file run in gdb while the guest is paused for it), so the
 *     user's breakpoints in guest/driver bind again.
 */
import * as vscode from 'vscode';
import { planGdb } from '../../lab/debug/plan';
import type { SshSession } from '../../lab/guest/ssh';
import type { Lab } from '../../lab/lab';
import { MODULE_NAME } from '../../lab/driver/driver';
import { type CdtAttachArguments, DEBUG_TYPE, rebindCommands } from './adapter-args';

/** The driver's module parameter (docs/driver.md "Request lifetime"). */
const TIMEOUT_PARAM = `/sys/module/${MODULE_NAME}/parameters/timeout_ms`;
/** cdt-gdb-adapter 1.7.0's request that runs one gdb (MI or CLI) command and returns its console output. */
const EXECUTE_COMMAND = 'cdt-gdb-tests/executeCommand';
const RESUMING_REQUESTS = new Set(['continue', 'next', 'stepIn', 'stepOut', 'reverseContinue', 'stepBack']);

interface Tracked {
  readonly session: vscode.DebugSession;
  halted: boolean;
  moduleText: string | undefined;
  /** Resolves the next time the guest stops (set while a pause for a re-bind waits). */
  onStop: (() => void) | undefined;
}

interface DapMessage {
  readonly type?: string;
  readonly event?: string;
  readonly command?: string;
  readonly success?: boolean;
}

export class KernelDebugSessions implements vscode.Disposable {
  private readonly tracked = new Map<string, Tracked>();
  private readonly changed = new vscode.EventEmitter<void>();
  readonly onDidChange = this.changed.event;
  private readonly disposables: vscode.Disposable[] = [];
  /** timeout_ms as it was before the first session set it to 0 (undefined: not held). */
  private savedTimeout: string | undefined;

  constructor(private readonly lab: () => Lab, private readonly log: vscode.OutputChannel) {
    this.disposables.push(
      vscode.debug.registerDebugAdapterTrackerFactory(DEBUG_TYPE, { createDebugAdapterTracker: (session) => this.tracker(session) }),
      vscode.debug.onDidTerminateDebugSession((session) => void this.ended(session)),
    );
  }

  /** "halted (debugger)" while any session holds the guest stopped. */
  get haltedText(): string | undefined {
    return [...this.tracked.values()].some((t) => t.halted && this.attributes(t.session).kind === 'live') ? 'halted (debugger)' : undefined;
  }

  get active(): number {
    return this.tracked.size;
  }

  private attributes(session: vscode.DebugSession): CdtAttachArguments['vlab'] {
    const v = (session.configuration as Partial<CdtAttachArguments>).vlab;
    return v ?? { kind: 'live', holdDriverTimeout: false, sourceMap: [], planOptions: {} };
  }

  private tracker(session: vscode.DebugSession): vscode.DebugAdapterTracker {
    const t: Tracked = { session, halted: false, moduleText: this.attributes(session).moduleText, onStop: undefined };
    this.tracked.set(session.id, t);
    const set = (halted: boolean): void => {
      if (t.halted === halted) return;
      t.halted = halted;
      this.changed.fire();
    };
    return {
      onDidSendMessage: (m: DapMessage) => {
        if (m.type !== 'event') return;
        if (m.event === 'stopped') {
          set(true);
          const resolve = t.onStop;
          t.onStop = undefined;
          resolve?.();
        } else if (m.event === 'continued') set(false);
      },
      onWillReceiveMessage: (m: DapMessage) => {
        if (m.type === 'request' && m.command && RESUMING_REQUESTS.has(m.command)) set(false);
      },
      onExit: () => set(false),
    };
  }

  private async ended(session: vscode.DebugSession): Promise<void> {
    if (!this.tracked.delete(session.id)) return;
    this.changed.fire();
    if (this.attributes(session).kind === 'live' && this.tracked.size === 0) await this.resumeGuest();
    if (this.tracked.size === 0) await this.releaseDriverTimeout();
  }

  /**
   * cdt-gdb-adapter ends a remote session with gdb's `disconnect` (not `detach`): QEMU's gdbstub
   * keeps the VM stopped then (measured: no SSH for 120 s after the session's end). Stopping the
   * session means "the guest runs on", so a VM left stopped by the debugger ('debug', or 'paused' as
   * the gdbstub's connect leaves it) is continued over QMP.
   */
  private async resumeGuest(): Promise<void> {
    try {
      const qmp = await this.lab().qmp({ timeoutMs: 10_000 });
      try {
        const st = (await qmp.execute('query-status')) as { status?: unknown };
        if (st.status === 'debug' || st.status === 'paused') {
          await qmp.execute('cont');
          this.log.appendLine(`debugger detached: the guest was left ${String(st.status)}; continued it`);
        }
      } finally {
        qmp.close();
      }
    } catch (err) {
      this.log.appendLine(`debugger detached: checking that the guest runs failed: ${(err as Error).message}`);
    }
  }

  /**
   * Before attaching (the guest runs): timeout_ms to 0, the old value kept for the end. Returns what
   * was there ('' when the driver is not loaded: nothing to hold).
   */
  async holdDriverTimeout(): Promise<string> {
    const session = await this.lab().ssh({ timeoutMs: 15_000 });
    try {
      const r = await session.run({ shell: `p=${TIMEOUT_PARAM}; [ -w $p ] || exit 3; cat $p; echo 0 > $p` }, { timeoutMs: 15_000 });
      if (r.code === 3) return '';
      if (r.code !== 0) throw new Error(`setting ${TIMEOUT_PARAM} failed: ${r.stderr.trim() || `exit ${r.code}`}`);
      const was = r.stdout.trim();
      if (!/^\d{1,10}$/.test(was)) throw new Error(`${TIMEOUT_PARAM} read ${JSON.stringify(was.slice(0, 40))}`);
      // A second session, or a re-hold after a reload while the first holds it, keeps the first value.
      if (this.savedTimeout === undefined && was !== '0') this.savedTimeout = was;
      this.log.appendLine(`debugger: the driver's timeout_ms is 0 while attached (was ${was})`);
      return was;
    } finally {
      session.close();
    }
  }

  private async releaseDriverTimeout(): Promise<void> {
    const was = this.savedTimeout;
    if (was === undefined) return;
    this.savedTimeout = undefined;
    try {
      // gdb detaches as the session ends; until it has, the guest is still stopped and SSH waits.
      const session = await sshWithin(this.lab(), 90_000);
      try {
        // Only a 0 we wrote is put back: a value the user set meanwhile stays.
        await session.run({ shell: `p=${TIMEOUT_PARAM}; [ -w $p ] && [ "$(cat $p)" = 0 ] && echo ${was} > $p; true` }, { timeoutMs: 15_000 });
      } finally {
        session.close();
      }
      this.log.appendLine(`debugger detached: the driver's timeout_ms is ${was} again`);
    } catch (err) {
      this.log.appendLine(`debugger detached: restoring the driver's timeout_ms (${was}) failed: ${(err as Error).message}`);
    }
  }

  /**
   * After the driver was reloaded: each live session gets the module's symbols at its new addresses.
   * The guest is paused for it (gdb cannot re-insert breakpoints into a running remote target) and
   * continued after, unless it was halted already.
   */
  async afterDriverReload(): Promise<number> {
    let rebound = 0;
    const live = [...this.tracked.values()].filter((t) => this.attributes(t.session).kind === 'live');
    if (live.length === 0) return 0;
    if (live.some((t) => this.attributes(t.session).holdDriverTimeout)) await this.holdDriverTimeout();
    for (const t of live) {
      const plan = await planGdb(this.lab(), this.attributes(t.session).planOptions);
      const commands = rebindCommands(t.moduleText, plan);
      const wasHalted = t.halted;
      let threadId = 1;
      if (!wasHalted) {
        const threads = (await t.session.customRequest('threads')) as { threads?: { id: number }[] };
        threadId = threads.threads?.[0]?.id ?? 1;
        const stopped = new Promise<void>((resolve) => { t.onStop = resolve; });
        await t.session.customRequest('pause', { threadId });
        await withTimeout(stopped, 60_000, 'the guest did not stop for the symbol re-bind');
      }
      for (const command of commands) {
        this.log.appendLine(`debugger: ${command}`);
        await t.session.customRequest(EXECUTE_COMMAND, { command });
      }
      t.moduleText = plan.module?.sections['.text'];
      if (!wasHalted) await t.session.customRequest('continue', { threadId });
      rebound++;
    }
    return rebound;
  }

  dispose(): void {
    for (const d of this.disposables) d.dispose();
    this.changed.dispose();
  }
}

/** An SSH session, retried for `totalMs` (the guest may still be stopped by a detaching gdb). */
async function sshWithin(lab: Lab, totalMs: number): Promise<SshSession> {
  const deadline = Date.now() + totalMs;
  for (;;) {
    try {
      return await lab.ssh({ timeoutMs: 15_000 });
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([p, new Promise<T>((_, reject) => { timer = setTimeout(() => reject(new Error(what)), ms); })]).finally(() => clearTimeout(timer));
}
