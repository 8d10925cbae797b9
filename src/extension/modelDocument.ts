import * as vscode from 'vscode';
import * as core from '../core/api';
import type { Model } from '../core/api';
import type { FoldPlan, InspectReport } from '../core/types';
import { concreteInputShape, dimsKey, sanitizeDims, symbolicDimNames } from '../protocol/dims';
import type { DocumentChange, DocumentChangeReason, DocumentView, FreezeState } from '../protocol/messages';
import { availableFixes } from './doctor';
import { verificationEngine } from './engines';
import { CancelledError, logError, userMessage } from './errors';
import type { InputDimsStore } from './inputDims';
import {
  baseDirOf,
  baseName,
  diskStamp,
  fileSize,
  loadModelFromUri,
  modelBytesOnDisk,
  sameStamp,
  saveModelToUri,
  type DiskStamp,
} from './loading';
import { runWithProgress } from './progress';

/** Files above this size load under a cancellable notification; smaller ones under the status-bar spinner. */
const LARGE_FILE_BYTES = 32 * 1024 * 1024;

export type { DocumentChange, DocumentChangeReason };

type LoadState = { kind: 'loaded'; model: Model } | { kind: 'error'; message: string };

interface Analysis {
  report: InspectReport;
  foldPlan: FoldPlan;
  /** null when the format has no Freeze BatchNorm */
  freeze: FreezeState | null;
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
    dimsStore: InputDimsStore,
  ): Promise<ModelDocument> {
    const name = baseName(uri);
    let state: LoadState;
    let saved: Model | undefined;
    // stamped before reading: a change while we read shows up as a different stamp later
    const stamp = await diskStamp(uri);
    try {
      if (openContext.backupId) {
        // hot exit: the backup holds the bytes of the unsaved model
        const backup = vscode.Uri.parse(openContext.backupId);
        log.info(`Restoring ${uri.toString(true)} from backup ${backup.toString(true)}`);
        // (the file itself, or for a TF.js model the zip bundle of model.json + shards that serialize() wrote)
        const bytes = await vscode.workspace.fs.readFile(backup);
        state = { kind: 'loaded', model: await core.loadModelBytesAsync(bytes, baseDirOf(uri), name) };
      } else if (openContext.untitledDocumentData) {
        state = { kind: 'loaded', model: await core.loadModelBytesAsync(openContext.untitledDocumentData, baseDirOf(uri), name) };
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
    const bytes = await modelBytesOnDisk(uri, state.kind === 'loaded' ? state.model.format : undefined);
    return new ModelDocument(uri, state, saved, stamp, bytes, log, dimsStore);
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
  /** the file on disk as we last read or wrote it (null when there is none) */
  private disk: DiskStamp | null;
  /** bytes of the model on disk (TF.js: model.json + shards) when we last read or wrote it */
  private diskBytes: number | null;
  private saving = 0;
  /** reverts/reloads run one after another; commands wait for them (VS Code does not await a revert) */
  private reloads: Promise<void> = Promise.resolve();
  private _version = 0;
  /** per Model, per input dims (dimsKey) */
  private readonly analyses = new WeakMap<Model, Map<string, Promise<Analysis>>>();
  private readonly watcher: vscode.FileSystemWatcher | undefined;

  private readonly _onDidChange = new vscode.EventEmitter<DocumentChange>();
  /** what the document shows changed: the current Model (or load state), the file on disk, or the input dims */
  readonly onDidChange = this._onDidChange.event;
  private readonly _onDidDispose = new vscode.EventEmitter<void>();
  readonly onDidDispose = this._onDidDispose.event;

  private constructor(
    readonly uri: vscode.Uri,
    state: LoadState,
    saved: Model | undefined,
    disk: DiskStamp | null,
    diskBytes: number | null,
    private readonly log: vscode.LogOutputChannel,
    private readonly dimsStore: InputDimsStore,
  ) {
    this.state = state;
    this.savedModel = saved;
    this.disk = disk;
    this.diskBytes = diskBytes;
    if (uri.scheme === 'file') {
      // reload when the file changes on disk and we have no unsaved changes
      this.watcher = vscode.workspace.createFileSystemWatcher(
        new vscode.RelativePattern(vscode.Uri.joinPath(uri, '..'), baseName(uri)),
        true,
        false,
        true,
      );
      this.watcher.onDidChange(() => void this.onFileChangedOnDisk());
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

  /** increases with every change event; work started at an older version is stale */
  get version(): number {
    return this._version;
  }

  /** Resolves once no revert / reload from disk is running (VS Code fires File: Revert without awaiting it). */
  whenIdle(): Promise<void> {
    return this.reloads;
  }

  /** values of the symbolic input dims (names without a value mean 1), remembered per file */
  get dims(): Record<string, number> {
    return this.dimsStore.get(this.uri);
  }

  /** Store new values for the symbolic input dims; every view of the document is re-analysed with them. */
  async setDims(dims: Record<string, number>): Promise<void> {
    const before = dimsKey(this.dims);
    await this.dimsStore.set(this.uri, sanitizeDims(dims));
    if (dimsKey(this.dims) !== before) this.fire('dims');
  }

  private fire(reason: DocumentChangeReason, label: string | null = null): void {
    this._version++;
    this._onDidChange.fire({ reason, label });
  }

  get editable(): boolean {
    return this.state.kind === 'loaded' && vscode.workspace.fs.isWritableFileSystem(this.uri.scheme) !== false;
  }

  /** Report + fold plan of a model for some input dims (cached; inspect of big models runs under progress). */
  analyze(model: Model, dims: Record<string, number>): Promise<Analysis> {
    let perDims = this.analyses.get(model);
    if (!perDims) this.analyses.set(model, (perDims = new Map()));
    const key = dimsKey(dims);
    let a = perDims.get(key);
    if (!a) {
      a = runWithProgress({ title: `Inspecting ${this.fileName}…`, location: 'window', cancellable: false }, async () => {
        const started = Date.now();
        const report = await core.inspectAsync(model, { dims });
        const foldPlan = core.planFoldBatchNorm(model);
        const freeze: FreezeState | null = core.canFreezeBatchNorm(model)
          ? {
              batchnorms: report.layers.filter((l) => l.op === 'BatchNorm').length,
              freezable: core.freezeBatchNorm(model).frozen.length,
            }
          : null;
        this.log.debug(`Inspected ${this.fileName}: ${report.totals.layers} layers in ${Date.now() - started} ms`);
        return { report, foldPlan, freeze };
      });
      perDims.set(key, a);
      const cache = perDims;
      a.catch(() => cache.delete(key));
      // keep the analyses of a few dims per model (the user tries values; each report holds all statistics)
      while (perDims.size > 4) {
        const oldest = perDims.keys().next().value;
        if (oldest === undefined || oldest === key) break;
        perDims.delete(oldest);
      }
    }
    return a;
  }

  /** The webview's view of the current model (undefined when the file could not be opened). */
  async view(): Promise<DocumentView | undefined> {
    const model = this.model;
    if (!model) return undefined;
    const dims = this.dims;
    const { report, foldPlan, freeze } = await this.analyze(model, dims);
    const names = symbolicDimNames(report.model.inputs);
    return {
      fileName: this.fileName,
      report,
      foldPlan,
      editable: this.editable,
      file: { bytes: this.disk ? this.diskBytes : null, saved: this.savedModel !== undefined && model === this.savedModel },
      inputDims: names.map((name) => ({ name, value: dims[name] ?? 1 })),
      inputShapes: report.model.inputs.map((input) => ({ name: input.name, shape: concreteInputShape(input, dims) })),
      engine: verificationEngine(report.format),
      freeze,
      fixes: availableFixes(model),
    };
  }

  /**
   * Make `next` the current model as an undoable edit. Returns the event the provider must fire through
   * onDidChangeCustomDocument.
   */
  makeEdit(label: string, next: Model): vscode.CustomDocumentEditEvent<ModelDocument> {
    const before = this.model;
    if (!before) throw new core.ModelError(`${this.fileName} is not open.`);
    this.setModel(next, 'edit', label);
    return {
      document: this,
      label,
      undo: () => this.setModel(before, 'undo', label),
      redo: () => this.setModel(next, 'redo', label),
    };
  }

  private setModel(model: Model, reason: DocumentChangeReason, label: string): void {
    this.state = { kind: 'loaded', model };
    this.fire(reason, label);
  }

  async save(token: vscode.CancellationToken): Promise<void> {
    this.saving++;
    try {
      const model = await this.saveTo(this.uri, token);
      this.savedModel = model;
      this.disk = await diskStamp(this.uri);
      this.diskBytes = await modelBytesOnDisk(this.uri, model.format);
    } finally {
      this.saving--;
    }
    this.fire('save');
  }

  async saveAs(destination: vscode.Uri, token: vscode.CancellationToken): Promise<void> {
    // VS Code then opens `destination` in an editor of its own (read from disk); this document keeps its file
    await this.saveTo(destination, token);
  }

  /** Write the current model to `target`; returns the model written. */
  private async saveTo(target: vscode.Uri, token: vscode.CancellationToken): Promise<Model> {
    const model = this.model;
    if (!model) throw new core.ModelError(`${this.fileName} could not be opened, so it cannot be saved.`);
    if (token.isCancellationRequested) throw new CancelledError('Saving');
    await runWithProgress({ title: `Saving ${baseName(target)}…`, location: 'window', cancellable: false }, () =>
      saveModelToUri(model, target),
    );
    this.log.info(`Saved ${target.toString(true)}`);
    return model;
  }

  /** Reload from disk (File: Revert, or the file changed on disk while we had no unsaved changes). */
  revert(_token?: vscode.CancellationToken, reason: 'revert' | 'reload' = 'revert'): Promise<void> {
    const run = this.reloads.then(() => this.reload(reason));
    this.reloads = run.catch(() => undefined);
    return run;
  }

  private async reload(reason: 'revert' | 'reload'): Promise<void> {
    const version = this._version;
    const stamp = await diskStamp(this.uri);
    if (reason === 'reload' && sameStamp(stamp, this.disk)) return; // an earlier reload already read this version
    let next: LoadState;
    try {
      next = { kind: 'loaded', model: await ModelDocument.loadWithProgress(this.uri) };
    } catch (err) {
      logError(this.log, `Reloading ${this.fileName}`, err);
      next = { kind: 'error', message: userMessage(err, `Cannot open ${this.fileName}`) };
    }
    const bytes = await modelBytesOnDisk(this.uri, next.kind === 'loaded' ? next.model.format : this.model?.format);
    if (reason === 'reload' && this._version !== version && this.model !== this.savedModel) {
      // an edit arrived while we read the file: unsaved changes win over a change on disk
      this.savedModel = undefined;
      this.disk = stamp;
      this.diskBytes = bytes;
      this.fire('disk');
      return;
    }
    this.state = next;
    this.savedModel = next.kind === 'loaded' ? next.model : undefined;
    this.disk = stamp;
    this.diskBytes = bytes;
    if (next.kind === 'loaded') this.log.info(`Reloaded ${this.uri.toString(true)}`);
    this.fire(reason);
  }

  /**
   * Hot exit: write the current model's bytes to the backup destination (serialize(): the file's bytes, or for
   * a TF.js model a zip bundle of model.json + shards; create() reads either back with loadModelBytesAsync).
   */
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

  /** The file changed on disk: reload it unless we wrote it ourselves or have unsaved changes. */
  private async onFileChangedOnDisk(): Promise<void> {
    if (this.saving > 0) return; // our own save; its stamp is taken when it ends
    const stamp = await diskStamp(this.uri);
    // no real change (e.g. the late event of a copy made before opening, or of our own save)
    if (stamp === null || sameStamp(stamp, this.disk) || this.saving > 0) return;
    if (this.state.kind === 'loaded' && this.state.model !== this.savedModel) {
      // unsaved changes win; the summary still shows what is on disk now
      this.savedModel = undefined; // the file no longer holds any model we know
      this.disk = stamp;
      this.diskBytes = await modelBytesOnDisk(this.uri, this.model?.format);
      this.fire('disk');
      return;
    }
    await this.revert(undefined, 'reload');
  }

  dispose(): void {
    this.watcher?.dispose();
    this._onDidDispose.fire();
    this._onDidDispose.dispose();
    this._onDidChange.dispose();
  }
}
