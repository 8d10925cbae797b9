import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import * as vscode from 'vscode';

/** The webview may only load from these folders of the extension. */
export function localResourceRoots(extensionUri: vscode.Uri): vscode.Uri[] {
  return [vscode.Uri.joinPath(extensionUri, 'dist'), vscode.Uri.joinPath(extensionUri, 'media')];
}

function escapeAttr(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;');
}

/**
 * The HTML page of a Model Surgeon webview (the editor's dist/webview.js by default, or another bundle). Strict CSP: scripts only with the nonce; styles from the
 * extension or adopted stylesheets (the app and @vscode-elements use constructable stylesheets, so no
 * 'unsafe-inline' is needed); fonts (codicons) only from the extension.
 */
export function webviewHtml(
  webview: vscode.Webview,
  extensionUri: vscode.Uri,
  title: string,
  page: { script: string; loading: string } = { script: 'webview.js', loading: 'Loading model…' },
): string {
  const nonce = randomBytes(18).toString('base64url');
  const script = webview.asWebviewUri(vscode.Uri.joinPath(extensionUri, 'dist', page.script));
  const codiconFile = vscode.Uri.joinPath(extensionUri, 'dist', 'codicon.css');
  const codicon = existsSync(codiconFile.fsPath)
    ? `<link id="vscode-codicon-stylesheet" rel="stylesheet" nonce="${nonce}" href="${escapeAttr(
        webview.asWebviewUri(codiconFile).toString(),
      )}">`
    : '';
  const csp = [
    "default-src 'none'",
    `img-src ${webview.cspSource} data:`,
    `style-src ${webview.cspSource} 'nonce-${nonce}'`,
    `font-src ${webview.cspSource}`,
    `script-src 'nonce-${nonce}'`,
  ].join('; ');
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="${csp}">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
${codicon}
<title>${escapeAttr(title)}</title>
</head>
<body>
<div id="app" aria-busy="true"><p class="loading">${escapeAttr(page.loading)}</p></div>
<script type="module" nonce="${nonce}" src="${escapeAttr(script.toString())}"></script>
</body>
</html>`;
}
