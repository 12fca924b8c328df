/** HTML shell for the lab's webviews: strict CSP, one nonce per render, local assets only. */
import { randomBytes } from 'node:crypto';
import * as vscode from 'vscode';

export interface WebviewPage {
  title: string;
  /** file under media/ (e.g. "rings.css") */
  style: string;
  /** file under media/ (e.g. "build/rings.js"), or none for a static page */
  script?: string;
  /** trusted markup built by the extension (never contains webview- or guest-supplied text unescaped) */
  body: string;
}

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

export function mediaRoot(extensionUri: vscode.Uri): vscode.Uri {
  return vscode.Uri.joinPath(extensionUri, 'media');
}

export function webviewOptions(extensionUri: vscode.Uri, scripts: boolean): vscode.WebviewOptions & vscode.WebviewPanelOptions {
  return { enableScripts: scripts, localResourceRoots: [mediaRoot(extensionUri)], retainContextWhenHidden: false };
}

export function renderWebview(webview: vscode.Webview, extensionUri: vscode.Uri, page: WebviewPage): string {
  const nonce = randomBytes(16).toString('base64');
  const asset = (file: string): string => webview.asWebviewUri(vscode.Uri.joinPath(mediaRoot(extensionUri), ...file.split('/'))).toString();
  const csp = [
    "default-src 'none'",
    `style-src ${webview.cspSource}`,
    `img-src ${webview.cspSource} data:`,
    `script-src 'nonce-${nonce}'`,
  ].join('; ');
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="${csp}">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<link rel="stylesheet" href="${asset(page.style)}">
<title>${escapeHtml(page.title)}</title>
</head>
<body>
${page.body}
${page.script ? `<script nonce="${nonce}" src="${asset(page.script)}"></script>` : ''}
</body>
</html>`;
}
