/**
 * The "Driver Check" tree view over the plain model of ./grade-tree.ts, and what its link rows open:
 * a request in the rings view (selected in its descriptor grid) or a log file at a line.
 */
import * as vscode from 'vscode';
import type { EvidenceLink, GradeReport } from '../../lab/check/grade-report';
import { buildGradeTree, gradeSummary, type GradeNode } from './grade-tree';

export class GradeTreeProvider implements vscode.TreeDataProvider<GradeNode>, vscode.Disposable {
  static readonly viewId = 'vlab.check';
  private readonly changed = new vscode.EventEmitter<void>();
  readonly onDidChangeTreeData = this.changed.event;
  private roots: GradeNode[] = [];
  private report: GradeReport | undefined;

  show(report: GradeReport): void {
    this.report = report;
    this.roots = buildGradeTree(report);
    this.changed.fire();
  }

  get shown(): GradeReport | undefined {
    return this.report;
  }

  get summary(): string | undefined {
    return this.report ? gradeSummary(this.report) : undefined;
  }

  getChildren(node?: GradeNode): GradeNode[] {
    return node ? [...(node.children ?? [])] : this.roots;
  }

  getTreeItem(node: GradeNode): vscode.TreeItem {
    const failing = node.icon === 'error';
    const collapsible = node.children?.length
      ? failing ? vscode.TreeItemCollapsibleState.Expanded : vscode.TreeItemCollapsibleState.Collapsed
      : vscode.TreeItemCollapsibleState.None;
    const item = new vscode.TreeItem(node.label, collapsible);
    item.id = node.id;
    if (node.description !== undefined) item.description = node.description;
    item.tooltip = node.tooltip ?? node.label;
    if (node.icon) item.iconPath = new vscode.ThemeIcon(node.icon, failing ? new vscode.ThemeColor('testing.iconFailed') : undefined);
    if (node.command) item.command = { command: node.command.command, title: node.command.title, arguments: [...node.command.arguments] };
    return item;
  }

  dispose(): void {
    this.changed.dispose();
  }
}

/** Opens a log link: the file at its (1-based) line. */
export async function openLogLink(link: Extract<EvidenceLink, { kind: 'log' }>): Promise<void> {
  const doc = await vscode.workspace.openTextDocument(vscode.Uri.file(link.file));
  const line = Math.min(Math.max(0, link.line - 1), Math.max(0, doc.lineCount - 1));
  const at = new vscode.Range(line, 0, line, 0);
  await vscode.window.showTextDocument(doc, { preview: true, selection: at });
}
