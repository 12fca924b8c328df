/**
 * Every failure a command meets ends here: a notification with the core's message and fix, and
 * "Show Logs" / "Check Host" actions. Cancellation by the user is not an error.
 */
import * as vscode from 'vscode';
import { LabError } from '../lab/common/errors';
import { CommandId } from './command-ids';

export function isCancellation(err: unknown): boolean {
  return (err instanceof LabError && err.kind === 'cancelled') || (err instanceof Error && err.name === 'AbortError');
}

export function describeError(err: unknown): string {
  if (err instanceof LabError) return err.fix ? `${err.message} (fix: ${err.fix})` : err.message;
  return err instanceof Error ? err.message : String(err);
}

/** Logs and notifies; does not wait for the user to answer the notification. */
export function reportError(what: string, err: unknown, log: vscode.OutputChannel): void {
  if (isCancellation(err)) {
    log.appendLine(`${what}: cancelled`);
    return;
  }
  const message = describeError(err);
  log.appendLine(`${what} failed: ${message}`);
  if (err instanceof LabError && err.details) {
    for (const [k, v] of Object.entries(err.details)) if (v) log.appendLine(`--- ${k}\n${v}`);
  }
  void vscode.window.showErrorMessage(`VirtIO Lab: ${what} failed: ${message}`, 'Show Logs', 'Check Host').then((choice) => {
    if (choice === 'Show Logs') void vscode.commands.executeCommand(CommandId.showLogs);
    else if (choice === 'Check Host') void vscode.commands.executeCommand(CommandId.checkHost);
  });
}
