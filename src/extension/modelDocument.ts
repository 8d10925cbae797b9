import * as vscode from 'vscode';
import * as core from '../core/api';
import type { Model } from '../core/api';
import type { FoldPlan, InspectReport } from '../core/types';
import type { DocumentView } from '../protocol/messages';
import { CancelledError, logError, userMessage } from './errors';
import { baseDirOf, baseName, fileSize, loadModelFromUri, saveModelToUri } from './loading';
import { runWithProgress } from './progress';

/** Files above this size load under a cancellable notification; smaller ones under the status-bar spinner. */
const LARGE_FILE_BYTES = 32 * 1024 * 1024;

export type ModelChangeReason = 'edit' | 'undo' | 'redo' | 'revert' | 'reload';

type LoadState = { kind: 'loaded'; model: Model } | { kind: 'error'; message: string };

interface Analysis {
  report: InspectReport;
  foldPlan: FoldPlan;
}

/**
 * The custom editor's document: a thin, stateful wrapper around the pure, immutable core `Model`.
 * Every rewrite produces a new Model; an edit just moves between Model objects, so undo/redo are exact.
 */
export class ModelDocument implements vscode.CustomDocument {
  static async create(
    uri: vscode.Uri,
    openContext: vscode.CustomDocumentOpenContext,
    log: vscode.LogOutputChannel,
  ): Promise<ModelDocument> {
    const name = baseName(uri);
    let state: LoadState;
    let saved: Model | undefined;
    try {
      if (openContext.backupId) {
        // hot exit: the backup holds the bytes of the unsaved model
        const backup = vscode.Uri.parse(openContext.backupId);
        log.info(`Restoring ${uri.toString(true)} from backup ${backup.toString(true)}`);
        const bytes = await vscode.workspace.fs.readFile(backup);
        state = { kind: 'loaded', model: core.loadModelBytes(bytes, baseDirOf(uri), name) };
      } else if (openContext.untitledDocumentData) {
        state = { kind: 'loaded', model: core.loadModelBytes(openContext.untitledDocumentData, baseDirOf(uri), name) };
      } else {
        const model = await ModelDocument.loadWithProgress(uri);
        state = { kind: 'loaded', model };
        saved = model;
      }
      log.info(`Opened ${uri.toString(true)}`);
    } catch (err) {
      logError(log, `Opening ${name}`, err);
      state = { kind: 'error', message: userMessage(err, `Cannot open ${name}`) };
    }
    return new ModelDocument(uri, state, saved, log);
  }

  private static async loadWithProgress(uri: vscode.Uri): Promise<Model> {
    const size = await fileSize(uri);
    const large = (size ?? 0) > LARGE_FILE_BYTES;
    return runWithProgress(
      { title: `Opening ${baseName(uri)}…`, location: large ? 'notification' : 'window', cancellable: large },
      () => loadModelFromUri(uri),
    );
  }

  private state: LoadState;
  /** the Model that matches the file on disk (undefined when unknown, e.g. restored from a backup) */
  private savedModel: Model | undefined;
  private lastSave = 0;
  private readonly analyses = new WeakMap<Model, Promise<Analysis>>();
  private readonly watcher: vscode.FileSystemWatcher | undefined;

  private readonly _onDidChangeModel = new vscode.EventEmitter<ModelChangeReason>();
  /** the current Model (or load state) changed */
  readonly onDidChangeModel = this._onDidChangeModel.event;
  private readonly _onDidDispose = new vscode.EventEmitter<void>();
  readonly onDidDispose = this._onDidDispose.event;

  private constructor(
    readonly uri: vscode.Uri,
    state: LoadState,
    saved: Model | undefined,
    private readonly log: vscode.LogOutputChannel,
  ) {
    this.state = state;
    this.savedModel = saved;
    if (uri.scheme === 'file') {
      // reload when the file changes on disk and we have no unsaved changes
      this.watcher = vscode.workspace.createFileSystemWatcher(
        new vscode.RelativePattern(vscode.Uri.joinPath(uri, '..'), baseName(uri)),
        true,
        false,
        true,
      );
      this.watcher.onDidChange(() => this.onFileChangedOnDisk());
    }
  }

  get fileName(): string {
    return baseName(this.uri);
  }

  /** the current model; undefined when the file could not be opened */
  get model(): Model | undefined {
    return this.state.kind === 'loaded' ? this.state.model : undefined;
  }

  /** one clear line when the file could not be opened */
  get loadError(): string | undefined {
    return this.state.kind === 'error' ? this.state.message : undefined;
  }

  get editable(): boolean {
    return this.state.kind === 'loaded' && vscode.workspace.fs.isWritableFileSystem(this.uri.scheme) !== false;
  }

  /** Report + fold plan of a model (cached per Model object; inspect of big models runs under progress). */
  analyze(model: Model): Promise<Analysis> {
    let a = this.analyses.get(model);
    if (!a) {
      a = runWithProgress({ title: `Inspecting ${this.fileName}…`, location: 'window', cancellable: false }, async () => {
        const started = Date.now();
        const report = await core.inspectAsync(model);
        const foldPlan = core.planFoldBatchNorm(model);
        this.log.debug(`Inspected ${this.fileName}: ${report.totals.layers} layers in ${Date.now() - started} ms`);
        return { report, foldPlan };
      });
      this.analyses.set(model, a);
      a.catch(() => this.analyses.delete(model));
    }
    return a;
  }

  /** The webview's view of a model (defaults to the current one). */
  async view(model: Model | undefined = this.model): Promise<DocumentView | undefined> {
    if (!model) return undefined;
    const { report, foldPlan } = await this.analyze(model);
    return { fileName: this.fileName, report, foldPlan, editable: this.editable };
  }

  /**
   * Make `next` the current model as an undoable edit. Returns the event the provider must fire through
   * onDidChangeCustomDocument.
   */
  makeEdit(label: string, next: Model): vscode.CustomDocumentEditEvent<ModelDocument> {
    const before = this.model;
    if (!before) throw new core.ModelError(`${this.fileName} is not open.`);
    this.setModel(next, 'edit');
    return {
      document: this,
      label,
      undo: () => this.setModel(before, 'undo'),
      redo: () => this.setModel(next, 'redo'),
    };
  }

  private setModel(model: Model, reason: ModelChangeReason): void {
    this.state = { kind: 'loaded', model };
    this._onDidChangeModel.fire(reason);
  }

  async save(token: vscode.CancellationToken): Promise<void> {
    await this.saveTo(this.uri, token);
    this.savedModel = this.model;
  }

  async saveAs(destination: vscode.Uri, token: vscode.CancellationToken): Promise<void> {
    await this.saveTo(destination, token);
  }

  private async saveTo(target: vscode.Uri, token: vscode.CancellationToken): Promise<void> {
    const model = this.model;
    if (!model) throw new core.ModelError(`${this.fileName} could not be opened, so it cannot be saved.`);
    if (token.isCancellationRequested) throw new CancelledError('Saving');
    this.lastSave = Date.now();
    await runWithProgress({ title: `Saving ${baseName(target)}…`, location: 'window', cancellable: false }, () =>
      saveModelToUri(model, target),
    );
    this.lastSave = Date.now();
    this.log.info(`Saved ${target.toString(true)}`);
  }

  /** Reload from disk (File: Revert, or the file changed on disk while we had no unsaved changes). */
  async revert(_token?: vscode.CancellationToken, reason: ModelChangeReason = 'revert'): Promise<void> {
    try {
      const model = await ModelDocument.loadWithProgress(this.uri);
      this.savedModel = model;
      this.state = { kind: 'loaded', model };
      this.log.info(`Reloaded ${this.uri.toString(true)}`);
    } catch (err) {
      logError(this.log, `Reloading ${this.fileName}`, err);
      this.savedModel = undefined;
      this.state = { kind: 'error', message: userMessage(err, `Cannot open ${this.fileName}`) };
    }
    this._onDidChangeModel.fire(reason);
  }

  /** Hot exit: write the current model's bytes to the backup destination. */
  async backup(destination: vscode.Uri, token: vscode.CancellationToken): Promise<vscode.CustomDocumentBackup> {
    const model = this.model;
    if (model && !token.isCancellationRequested) {
      await vscode.workspace.fs.writeFile(destination, core.serialize(model));
    }
    return {
      id: destination.toString(),
      delete: async () => {
        try {
          await vscode.workspace.fs.delete(destination);
        } catch {
          // already gone
        }
      },
    };
  }

  private onFileChangedOnDisk(): void {
    if (Date.now() - this.lastSave < 5000) return; // our own save
    if (this.state.kind === 'loaded' && this.state.model !== this.savedModel) return; // unsaved changes win
    void this.revert(undefined, 'reload');
  }

  dispose(): void {
    this.watcher?.dispose();
    this._onDidDispose.fire();
    this._onDidDispose.dispose();
    this._onDidChangeModel.dispose();
  }
}
