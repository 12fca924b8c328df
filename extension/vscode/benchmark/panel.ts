/** "Run Benchmark" results: a static webview (no script) with the SVG chart and the raw numbers. */
import * as vscode from 'vscode';
import { escapeHtml, renderWebview, webviewOptions } from '../webview-html';
import { benchChartSvg, type BenchGroup } from './chart';

export class BenchmarkPanel implements vscode.Disposable {
  static readonly viewType = 'vlab.benchmark';
  private static current: BenchmarkPanel | undefined;
  private readonly disposables: vscode.Disposable[] = [];
  private disposed = false;
  /** the groups last shown (for tests) */
  groups: readonly BenchGroup[] = [];

  static show(extensionUri: vscode.Uri, title: string, groups: readonly BenchGroup[], details: string): BenchmarkPanel {
    const existing = BenchmarkPanel.current;
    const panel = existing ?? new BenchmarkPanel(vscode.window.createWebviewPanel(BenchmarkPanel.viewType, 'Benchmark', vscode.ViewColumn.Active, webviewOptions(extensionUri, false)));
    BenchmarkPanel.current = panel;
    panel.render(extensionUri, title, groups, details);
    panel.panel.reveal();
    return panel;
  }

  static get instance(): BenchmarkPanel | undefined {
    return BenchmarkPanel.current;
  }

  private constructor(private readonly panel: vscode.WebviewPanel) {
    this.disposables.push(panel.onDidDispose(() => this.dispose()));
  }

  private render(extensionUri: vscode.Uri, title: string, groups: readonly BenchGroup[], details: string): void {
    this.groups = groups;
    this.panel.webview.html = renderWebview(this.panel.webview, extensionUri, {
      title: 'Benchmark',
      style: 'benchmark.css',
      body: `<h1>${escapeHtml(title)}</h1>
<p class="legend"><span class="key key-measured"></span> measured <span class="key key-reference"></span> reference (same run)</p>
${groups.length ? benchChartSvg(groups) : '<p>No results were reported.</p>'}
<details><summary>Raw output</summary><pre>${escapeHtml(details)}</pre></details>`,
    });
  }

  dispose(): void {
    // Runs once: closing the panel fires onDidDispose, which calls back here.
    if (this.disposed) return;
    this.disposed = true;
    if (BenchmarkPanel.current === this) BenchmarkPanel.current = undefined;
    while (this.disposables.length) this.disposables.pop()?.dispose();
    this.panel.dispose();
  }
}
