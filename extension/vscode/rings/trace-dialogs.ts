/** The file dialogs of the rings panel's Record and Open trace buttons. */
import * as vscode from 'vscode';

/** Where to write a new trace; undefined when the user cancels. */
export async function askRecordFile(): Promise<string | undefined> {
  const uri = await vscode.window.showSaveDialog({ title: 'Record rings trace', filters: { 'Rings trace': ['jsonl'] }, defaultUri: vscode.Uri.file(`rings-${new Date().toISOString().replace(/[:.]/g, '-')}.jsonl`) });
  return uri?.fsPath;
}

/** Which trace to replay; undefined when the user cancels. */
export async function askTraceFile(): Promise<string | undefined> {
  const [uri] = (await vscode.window.showOpenDialog({ title: 'Open rings trace', filters: { 'Rings trace': ['jsonl', 'json'] }, canSelectMany: false })) ?? [];
  return uri?.fsPath;
}
