/**
 * The driver's problems in VS Code's Problems panel. "Build Driver" builds guest/driver (the
 * workspace's copy when the workspace has one, else the extension's) through the lab core, then runs
 * checkpatch over the same folder, and fills one diagnostic collection per tool from their output
 * (parsed by extension/lab/driver/diagnostics.ts). With vlab.driver.buildOnSave, saving a .c or .h of
 * that folder runs it too. One build at a time: a request during a build runs once more after it.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import * as vscode from 'vscode';
import { runCheckpatch } from '../lab/driver/checkpatch';
import { parseCompilerProblems, type Problem, type ProblemSeverity } from '../lab/driver/diagnostics';
import { DriverError, type DriverBuildTarget, buildDriver, driverBuildDir, driverSourceDir } from '../lab/driver/driver';
import { findGuestKernel } from '../lab/host/host';

export interface DriverBuildSummary {
  readonly ok: boolean;
  readonly sourceDir: string;
  readonly errors: number;
  readonly warnings: number;
  /** checkpatch findings; undefined when checkpatch could not run (the reason is in the log). */
  readonly checkpatch: number | undefined;
  readonly compileCommands: string | undefined;
  readonly message: string;
}

const SEVERITY: Record<ProblemSeverity, vscode.DiagnosticSeverity> = {
  error: vscode.DiagnosticSeverity.Error,
  warning: vscode.DiagnosticSeverity.Warning,
  info: vscode.DiagnosticSeverity.Information,
};

function position(line: number, column: number | undefined): vscode.Position {
  return new vscode.Position(Math.max(0, line - 1), Math.max(0, (column ?? 1) - 1));
}

export function toDiagnostic(p: Problem): vscode.Diagnostic {
  const start = position(p.line, p.column);
  // Without a column the whole line is marked.
  const range = new vscode.Range(start, p.column ? start : start.translate(0, Number.MAX_SAFE_INTEGER));
  const d = new vscode.Diagnostic(range, p.message, SEVERITY[p.severity]);
  d.source = p.source;
  if (p.code) d.code = p.code;
  if (p.related.length) {
    d.relatedInformation = p.related.map((r) => new vscode.DiagnosticRelatedInformation(new vscode.Location(vscode.Uri.file(r.file), position(r.line, r.column)), r.message));
  }
  return d;
}

function fill(collection: vscode.DiagnosticCollection, problems: readonly Problem[]): void {
  const byFile = new Map<string, vscode.Diagnostic[]>();
  for (const p of problems) {
    const list = byFile.get(p.file) ?? [];
    list.push(toDiagnostic(p));
    byFile.set(p.file, list);
  }
  collection.clear();
  collection.set([...byFile].map(([file, list]) => [vscode.Uri.file(file), list]));
}

export class DriverProblems implements vscode.Disposable {
  private readonly gcc = vscode.languages.createDiagnosticCollection('vlab-gcc');
  private readonly checkpatch = vscode.languages.createDiagnosticCollection('vlab-checkpatch');
  private readonly saveListener: vscode.Disposable;
  private running: Promise<DriverBuildSummary> | undefined;
  private queued: Promise<DriverBuildSummary> | undefined;

  constructor(
    private readonly workspace: string,
    private readonly target: () => DriverBuildTarget,
    private readonly log: vscode.OutputChannel,
    private readonly buildOnSave: () => boolean,
  ) {
    this.saveListener = vscode.workspace.onDidSaveTextDocument((doc) => this.saved(doc));
  }

  /** The driver sources built: the workspace's guest/driver (a clone being edited), else the extension's. */
  get sourceDir(): string {
    const own = join(this.workspace, 'guest', 'driver');
    return existsSync(join(own, 'Kbuild')) ? own : driverSourceDir();
  }

  /** Builds (after the running build, when there is one) and fills the Problems panel. */
  build(): Promise<DriverBuildSummary> {
    if (!this.running) {
      const progress = vscode.window.withProgress({ location: vscode.ProgressLocation.Window, title: 'VirtIO Lab: building the driver' }, () => this.buildOnce());
      const running = Promise.resolve(progress).finally(() => { this.running = undefined; });
      this.running = running;
      return running;
    }
    this.queued ??= this.running.catch(() => undefined).then(() => {
      this.queued = undefined;
      return this.build();
    });
    return this.queued;
  }

  /** Problems from the `vlab` CLI's output (Build & Reload Driver): its file:line lines, relative to `cwd`. */
  showCompilerOutput(output: string, cwd: string): void {
    const dir = this.sourceDir;
    fill(this.gcc, parseCompilerProblems(output, { stagedDir: dir, sourceDir: dir, cwd }));
  }

  private async buildOnce(): Promise<DriverBuildSummary> {
    const sourceDir = this.sourceDir;
    const target = this.target();
    this.log.appendLine(`== Build driver: ${sourceDir}`);
    let output = '';
    const onOutput = (line: string): void => {
      this.log.appendLine(line);
      if (output.length < 4 * 1024 * 1024) output += `${line}\n`;
    };
    let compileCommands: string | undefined;
    let failure: DriverError | undefined;
    try {
      compileCommands = (await buildDriver(target, { sourceDir, onOutput })).compileCommands;
    } catch (err) {
      if (!(err instanceof DriverError) || err.kind !== 'build') throw err;
      failure = err;
    }
    const problems = parseCompilerProblems(output, { stagedDir: driverBuildDir(target), sourceDir, cwd: findGuestKernel(target.host).buildDir });
    fill(this.gcc, problems);
    const checkpatch = await this.runCheckpatch(sourceDir);
    const errors = problems.filter((p) => p.severity === 'error').length;
    const warnings = problems.filter((p) => p.severity === 'warning').length;
    const found = checkpatch === undefined ? '' : `, ${checkpatch} checkpatch finding(s)`;
    const message = failure
      ? `the driver build failed: ${errors || 'no'} compiler error(s)${found}${errors ? ' (see Problems)' : `: ${failure.message}`}`
      : `driver built: ${warnings} warning(s)${found}`;
    this.log.appendLine(message);
    return { ok: !failure, sourceDir, errors, warnings, checkpatch, compileCommands, message };
  }

  private async runCheckpatch(sourceDir: string): Promise<number | undefined> {
    try {
      const r = await runCheckpatch(sourceDir);
      if (r.skipped) {
        this.log.appendLine(`checkpatch skipped: ${r.skipped}`);
        this.checkpatch.clear();
        return undefined;
      }
      fill(this.checkpatch, r.problems);
      return r.problems.length;
    } catch (err) {
      this.log.appendLine(`checkpatch: ${(err as Error).message}`);
      return undefined;
    }
  }

  private saved(doc: vscode.TextDocument): void {
    if (!this.buildOnSave() || doc.uri.scheme !== 'file' || !/\.[ch]$/.test(doc.uri.fsPath)) return;
    if (dirname(doc.uri.fsPath) !== this.sourceDir) return;
    this.build().then(
      (r) => { vscode.window.setStatusBarMessage(`VirtIO Lab: ${r.message}`, 5000); },
      (err: unknown) => { this.log.appendLine(`Build driver on save failed: ${(err as Error).message}`); },
    );
  }

  dispose(): void {
    this.saveListener.dispose();
    this.gcc.dispose();
    this.checkpatch.dispose();
  }
}
