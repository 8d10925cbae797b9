/** The API VS Code injects into webviews (see the webview guide); typed for this app. */
interface VsCodeWebviewApi<State> {
  postMessage(message: unknown): void;
  getState(): State | undefined;
  setState<T extends State>(state: T): T;
}

declare function acquireVsCodeApi<State = unknown>(): VsCodeWebviewApi<State>;

/** esbuild bundles .css files as text (see scripts/build.mjs: loader { '.css': 'text' }). */
declare module '*.css' {
  const text: string;
  export default text;
}
