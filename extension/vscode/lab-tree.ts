/** The "VirtIO Lab" tree view over the plain model of ./tree-model.ts. */
import * as vscode from 'vscode';
import type { LabStatus } from '../lab/lab';
import { buildTree, type ChatInfo, type LabNode } from './tree-model';

export type { ChatInfo, LabNode } from './tree-model';

export class LabTreeProvider implements vscode.TreeDataProvider<LabNode>, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<void>();
  readonly onDidChangeTreeData = this.changed.event;
  private roots: LabNode[] = [];

  update(status: LabStatus | undefined, chats: readonly ChatInfo[]): void {
    this.roots = buildTree(status, chats);
    this.changed.fire();
  }

  getChildren(node?: LabNode): LabNode[] {
    return node ? node.children ?? [] : this.roots;
  }

  getTreeItem(node: LabNode): vscode.TreeItem {
    const collapsible = node.children?.length
      ? (node.id === 'vm' || node.id === 'backend' || node.id === 'chats' ? vscode.TreeItemCollapsibleState.Expanded : vscode.TreeItemCollapsibleState.Collapsed)
      : vscode.TreeItemCollapsibleState.None;
    const item = new vscode.TreeItem(node.label, collapsible);
    item.id = node.id;
    if (node.description !== undefined) item.description = node.description;
    item.tooltip = node.tooltip ?? (node.description ? `${node.label}: ${node.description}` : node.label);
    if (node.icon) item.iconPath = new vscode.ThemeIcon(node.icon);
    if (node.contextValue) item.contextValue = node.contextValue;
    if (node.command) item.command = node.command;
    return item;
  }

  dispose(): void {
    this.changed.dispose();
  }
}
