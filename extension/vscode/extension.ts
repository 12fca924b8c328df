/** VS Code entry: wires the lab's face together; no lab logic lives here. */
import * as vscode from 'vscode';

export function activate(context: vscode.ExtensionContext): void {
  context.subscriptions.push(vscode.commands.registerCommand('vlab.startVm', () => undefined));
}

export function deactivate(): void {
  // nothing yet
}
