/**
 * Entry of the Model Surgeon webview (bundled by esbuild to dist/webview.js, loaded as a module with the
 * page's CSP nonce). Styles are adopted as a constructable stylesheet, so the CSP needs no 'unsafe-inline'.
 */
import type { HostToWebview, WebviewToHost } from '../src/protocol/messages';
import { isHostToWebviewEnvelope } from '../src/protocol/messages';
import { Messenger } from '../src/protocol/messenger';
import { App, restoreState, type PersistedState } from './app';
import css from './styles.css';

const vscode = acquireVsCodeApi<PersistedState>();

const sheet = new CSSStyleSheet();
sheet.replaceSync(css);
document.adoptedStyleSheets = [...document.adoptedStyleSheets, sheet];

const root = document.getElementById('app') ?? document.body.appendChild(document.createElement('div'));

// `app` is only used by the callback, which runs after the handshake (i.e. after `app` exists)
const messenger = new Messenger<WebviewToHost, HostToWebview>(
  (message) => vscode.postMessage(message),
  (body) => app.onMessage(body),
);
const app = new App(root, messenger, restoreState(vscode.getState()), (s) => vscode.setState(s));

window.addEventListener('message', (event: MessageEvent<unknown>) => {
  if (isHostToWebviewEnvelope(event.data)) messenger.handle(event.data);
});

// theme switches change the --vscode-* variables and the body class: redraw canvases
new MutationObserver(() => app.onThemeChanged()).observe(document.body, {
  attributes: true,
  attributeFilter: ['class', 'data-vscode-theme-id'],
});

void app.start();
