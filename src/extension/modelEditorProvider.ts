import * as vscode from 'vscode';
import { ModelError, type Model } from '../core/api';
import type { InspectReport, Severity } from '../core/types';
import { fixTitle } from '../protocol/fixes';
import { EditorSession } from './editorSession';
import { reportError } from './errors';
import type { InputDimsStore } from './inputDims';
import { baseName } from './loading';
import { ModelDocument, type DocumentChange } from './modelDocument';
import { MODEL_VIEW_TYPE, VIEW_TYPES, viewTypeFor } from './modelFiles';
import { localResourceRoots, webviewHtml } from './webviewHtml';

/** The command a diagnostic's code link runs: `[key]` of ModelEditorProvider.findingLinks. */
export const REVEAL_FINDING_COMMAND = 'modelSurgeon.revealFinding';

const SEVERITY: Record<Severity, vscode.DiagnosticSeverity> = {
  error: vscode.DiagnosticSeverity.Error,
  warning: vscode.DiagnosticSeverity.Warning,
  info: vscode.DiagnosticSeverity.Information,
};

/**
 * The Model Surgeon custom editor. Documents wrap immutable core Models; every webview of a document is an
 * EditorSession and gets the new report whenever the model changes (edit, undo, redo, revert). Registered
 * under two view types with the same behaviour: one for .onnx/.h5/.keras (the default editor) and one for
 * TF.js model.json files (an option: they are JSON too). What a file holds is decided by its content.
 */
export class ModelEditorProvider implements vscode.Disposable {
  static readonly viewType = MODEL_VIEW_TYPE;

  private readonly sessions = new Map<ModelDocument, Set<EditorSession>>();
  private readonly disposables: vscode.Disposable[] = [];
  private lastActive: EditorSession | undefined;

  /**
   * Edit events per view type: VS Code looks every event's document up among the documents of the view type
   * whose registration the event came through (one shared event fails with "No custom document found").
   */
  private readonly editEvents = new Map<string, vscode.EventEmitter<vscode.CustomDocumentEditEvent<ModelDocument>>>();
  private readonly viewTypeOf = new WeakMap<ModelDocument, string>();

  private readonly _onDidChangeDocumentModel = new vscode.EventEmitter<ModelDocument>();
  /** an open document's model changed (the explorer shows the in-memory model of open documents) */
  readonly onDidChangeDocumentModel = this._onDidChangeDocumentModel.event;

  private readonly _onDidOpenSession = new vscode.EventEmitter<EditorSession>();

  /** what each Problems-panel code link (command:modelSurgeon.revealFinding?[key]) points at */
  private readonly findingLinks = new Map<number, { uri: vscode.Uri; code: string; layer: string }>();
  private nextLinkKey = 1;

  constructor(
    private readonly extensionUri: vscode.Uri,
    private readonly log: vscode.LogOutputChannel,
    private readonly diagnostics: vscode.DiagnosticCollection,
    private readonly dims: InputDimsStore,
  ) {
    this.disposables.push(this._onDidChangeDocumentModel, this._onDidOpenSession);
  }

  static register(provider: ModelEditorProvider): vscode.Disposable {
    return vscode.Disposable.from(
      ...VIEW_TYPES.map((viewType) =>
        vscode.window.registerCustomEditorProvider(viewType, provider.forViewType(viewType), {
          supportsMultipleEditorsPerDocument: true,
          webviewOptions: { retainContextWhenHidden: false, enableFindWidget: true },
        }),
      ),
    );
  }

  /** The CustomEditorProvider VS Code sees for one view type: shared behaviour, its own edit events. */
  forViewType(viewType: string): vscode.CustomEditorProvider<ModelDocument> {
    let events = this.editEvents.get(viewType);
    if (!events) {
      events = new vscode.EventEmitter<vscode.CustomDocumentEditEvent<ModelDocument>>();
      this.editEvents.set(viewType, events);
      this.disposables.push(events);
    }
    return {
      onDidChangeCustomDocument: events.event,
      openCustomDocument: (uri, openContext, token) => this.openCustomDocument(viewType, uri, openContext, token),
      resolveCustomEditor: (document, panel, token) => this.resolveCustomEditor(document, panel, token),
      saveCustomDocument: (document, token) => document.save(token),
      saveCustomDocumentAs: (document, destination, token) => document.saveAs(destination, token),
      revertCustomDocument: (document, token) => document.revert(token),
      backupCustomDocument: (document, context, token) => document.backup(context.destination, token),
    };
  }

  private fireEdit(edit: vscode.CustomDocumentEditEvent<ModelDocument>): void {
    this.editEvents.get(this.viewTypeOf.get(edit.document) ?? MODEL_VIEW_TYPE)?.fire(edit);
  }

  /** Make `next` the document's model as one undoable edit (ModelDocument.makeEdit, fired through its view type). */
  applyModelEdit(document: ModelDocument, label: string, next: Model): void {
    this.fireEdit(document.makeEdit(label, next));
  }

  // ------------------------------------------------------------------------------------------------------------
  // CustomEditorProvider

  async openCustomDocument(
    viewType: string,
    uri: vscode.Uri,
    openContext: vscode.CustomDocumentOpenContext,
    _token: vscode.CancellationToken,
  ): Promise<ModelDocument> {
    const document = await ModelDocument.create(uri, openContext, this.log, this.dims);
    this.viewTypeOf.set(document, viewType);
    const sub = document.onDidChange((change) => void this.onDocumentChanged(document, change));
    const disposeSub = document.onDidDispose(() => {
      sub.dispose();
      disposeSub.dispose();
      this.sessions.delete(document);
      this.diagnostics.delete(uri);
      this.forgetFindingLinks(uri);
      this._onDidChangeDocumentModel.fire(document); // the explorer falls back to the file on disk
    });
    void this.publishDiagnostics(document);
    return document;
  }

  async resolveCustomEditor(
    document: ModelDocument,
    panel: vscode.WebviewPanel,
    _token: vscode.CancellationToken,
  ): Promise<void> {
    panel.webview.options = { enableScripts: true, localResourceRoots: localResourceRoots(this.extensionUri) };
    panel.webview.html = webviewHtml(panel.webview, this.extensionUri, document.fileName);

    const session = new EditorSession(document, panel, this.log, (edit) => this.fireEdit(edit));
    let set = this.sessions.get(document);
    if (!set) this.sessions.set(document, (set = new Set()));
    set.add(session);
    if (panel.active) this.lastActive = session;

    const viewState = panel.onDidChangeViewState(() => {
      if (panel.active) this.lastActive = session;
    });
    panel.onDidDispose(() => {
      viewState.dispose();
      this.sessions.get(document)?.delete(session);
      if (this.lastActive === session) this.lastActive = undefined;
      session.dispose();
    });
    this._onDidOpenSession.fire(session);
  }

  // ------------------------------------------------------------------------------------------------------------
  // document changes -> every webview of the document, the Problems panel, the explorer

  private async onDocumentChanged(document: ModelDocument, change: DocumentChange): Promise<void> {
    const sessions = [...(this.sessions.get(document) ?? [])];
    for (const s of sessions) s.onDocumentChanged(change);
    this._onDidChangeDocumentModel.fire(document);
    if (!document.model) {
      this.diagnostics.delete(document.uri);
      this.forgetFindingLinks(document.uri);
      const message = document.loadError ?? `Cannot open ${document.fileName}`;
      for (const s of sessions) s.post({ type: 'loadError', fileName: document.fileName, message });
      return;
    }
    const version = document.version;
    try {
      const view = await document.view();
      // superseded by a later change, which posts its own view
      if (!view || document.version !== version) return;
      for (const s of this.sessions.get(document) ?? []) s.post({ type: 'documentChanged', document: view, change });
      this.setDiagnostics(document.uri, view.report);
    } catch (err) {
      reportError(this.log, `Inspecting ${document.fileName}`, err);
    }
  }

  private async publishDiagnostics(document: ModelDocument): Promise<void> {
    if (!document.model) return;
    const version = document.version;
    try {
      const view = await document.view();
      if (view && document.version === version) this.setDiagnostics(document.uri, view.report);
    } catch {
      // reported when the webview asks for the same report
    }
  }

  /**
   * Findings (inspect's, merged with the BatchNorm / Dropout audits') -> the Problems panel. A diagnostic on a
   * binary file has nowhere to point (range: line 0), and clicking the row only opens the file: custom editors
   * get no selection. So the code is a link (`code.target`, which the Problems panel opens with commands
   * allowed) to `modelSurgeon.revealFinding`, which shows the finding and selects its first layer.
   */
  private setDiagnostics(uri: vscode.Uri, report: InspectReport): void {
    const range = new vscode.Range(0, 0, 0, 0);
    this.forgetFindingLinks(uri);
    this.diagnostics.set(
      uri,
      report.findings.map((f) => {
        const layers = f.layers.length ? ` [${f.layers.slice(0, 5).join(', ')}${f.layers.length > 5 ? ', …' : ''}]` : '';
        const fix = f.fix ? ` Fix: ${fixTitle(f.fix)} (in the Model Surgeon editor).` : '';
        const d = new vscode.Diagnostic(range, `${f.message}${layers}${fix}`, SEVERITY[f.severity]);
        d.source = 'Model Surgeon';
        const key = this.nextLinkKey++;
        this.findingLinks.set(key, { uri, code: f.code, layer: f.layers[0] ?? '' });
        d.code = { value: f.code, target: vscode.Uri.parse(`command:${REVEAL_FINDING_COMMAND}?${encodeURIComponent(JSON.stringify([key]))}`) };
        return d;
      }),
    );
  }

  private forgetFindingLinks(uri: vscode.Uri): void {
    const id = uri.toString();
    for (const [key, link] of this.findingLinks) if (link.uri.toString() === id) this.findingLinks.delete(key);
  }

  /** The target of a Problems-panel code link: open the file's editor, show the finding, select its first layer. */
  async revealFinding(key: number): Promise<void> {
    const link = this.findingLinks.get(key);
    if (!link) throw new ModelError('This problem is out of date; the model changed since it was reported.');
    const session = await this.showEditor(link.uri);
    session.revealLayer(link.layer, link.code);
  }

  /** Problems-panel link of a finding (tests, other commands): the key revealFinding takes, if it is current. */
  findingLinkKey(uri: vscode.Uri, code: string): number | undefined {
    const id = uri.toString();
    for (const [key, link] of this.findingLinks) if (link.code === code && link.uri.toString() === id) return key;
    return undefined;
  }

  // ------------------------------------------------------------------------------------------------------------
  // lookups used by commands and the explorer

  /** The focused Model Surgeon editor, if any. */
  activeSession(): EditorSession | undefined {
    for (const set of this.sessions.values()) {
      for (const s of set) if (s.panel.active) return s;
    }
    return undefined;
  }

  /** The active editor, else the most recently focused one still open. */
  activeOrLastSession(): EditorSession | undefined {
    return this.activeSession() ?? this.lastActive;
  }

  documentFor(uri: vscode.Uri): ModelDocument | undefined {
    const key = uri.toString();
    for (const doc of this.sessions.keys()) if (doc.uri.toString() === key) return doc;
    return undefined;
  }

  /** Best editor for a file: the active one, then a visible one, then any. */
  sessionFor(uri: vscode.Uri): EditorSession | undefined {
    const doc = this.documentFor(uri);
    const set = doc ? [...(this.sessions.get(doc) ?? [])] : [];
    return set.find((s) => s.panel.active) ?? set.find((s) => s.panel.visible) ?? set[0];
  }

  /** Show `uri` in a Model Surgeon editor (opening one if needed) and return its session. */
  async showEditor(uri: vscode.Uri): Promise<EditorSession> {
    const existing = this.sessionFor(uri);
    if (existing) {
      existing.panel.reveal(existing.panel.viewColumn, false);
      return existing;
    }
    const waiter = this.waitForSession(uri, 60_000);
    try {
      await vscode.commands.executeCommand('vscode.openWith', uri, viewTypeFor(uri));
      return this.sessionFor(uri) ?? (await waiter.session);
    } finally {
      waiter.dispose();
    }
  }

  private waitForSession(uri: vscode.Uri, timeoutMs: number): { session: Promise<EditorSession>; dispose(): void } {
    const key = uri.toString();
    let timer: ReturnType<typeof setTimeout> | undefined;
    let sub: vscode.Disposable | undefined;
    const dispose = (): void => {
      if (timer !== undefined) clearTimeout(timer);
      sub?.dispose();
    };
    const session = new Promise<EditorSession>((resolve, reject) => {
      timer = setTimeout(() => {
        dispose();
        reject(new ModelError(`Could not open ${baseName(uri)} in Model Surgeon.`));
      }, timeoutMs);
      sub = this._onDidOpenSession.event((s) => {
        if (s.document.uri.toString() !== key) return;
        dispose();
        resolve(s);
      });
    });
    session.catch(() => undefined); // observed by the caller when it awaits; never unhandled
    return { session, dispose };
  }

  /** Scroll to and select a layer in the file's editor, opening the editor if needed. */
  async revealLayer(uri: vscode.Uri, layer: string): Promise<void> {
    const session = await this.showEditor(uri);
    session.revealLayer(layer);
  }

  dispose(): void {
    for (const d of this.disposables) d.dispose();
  }
}
