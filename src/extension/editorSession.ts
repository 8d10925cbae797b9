import * as vscode from 'vscode';
import * as core from '../core/api';
import type { FoldResult, FreezeResult, Model } from '../core/api';
import { withinTolerance } from '../core/engines/onnxruntime';
import type { VerifyReport } from '../core/types';
import { formatError } from '../protocol/format';
import type {
  DocumentChange,
  FoldPreview,
  FreezePreview,
  HostToWebview,
  InitMessage,
  VerificationState,
  WebviewRequestReplies,
  WebviewToHost,
} from '../protocol/messages';
import { isWebviewToHostEnvelope } from '../protocol/messages';
import { Messenger } from '../protocol/messenger';
import { recordEngine } from './engines';
import { CancelledError, logError, userMessage } from './errors';
import type { ModelDocument } from './modelDocument';
import { runWithProgress } from './progress';

/** Relative tolerance of a scripted fold: every output within 1e-6 + FOLD_RTOL x its largest |value|. */
export const FOLD_RTOL = 1e-4;

/** Verifications that end sooner only show the status-bar spinner (see ProgressOptions.notifyAfterMs). */
const NOTIFY_AFTER_MS = 1000;

/** What `modelSurgeon.foldBatchNorm` with `{ preview: false }` returns to its caller. */
export interface FoldCommandResult {
  folded: number;
  skipped: number;
  max_abs_error: number;
  max_rel_error: number;
  /** the engine that verified the fold (e.g. onnxruntime-node, tfjs-wasm); absent when nothing was folded */
  engine?: string;
  /** facts from the rewrite (e.g. quantized TF.js weights written as float32, with the size change) */
  notes: string[];
}

/** What `modelSurgeon.freezeBatchNorm` with `{ preview: false }` returns to its caller. */
export interface FreezeCommandResult {
  /** number of BatchNorm layers set to trainable: false */
  frozen: number;
  layers: string[];
}

interface PendingFreeze {
  readonly preview: FreezePreview;
  readonly base: Model;
  readonly result: FreezeResult;
}

interface PendingPreview {
  /** what the webview shows; `verification` is updated in place so a reloaded webview gets the latest */
  readonly preview: FoldPreview;
  /** the model the plan was made on: applying is refused once the document moved on */
  readonly base: Model;
  /** the input dims the verification runs with */
  readonly dims: Record<string, number>;
  readonly result: FoldResult;
  readonly abort: AbortController;
}

let nextPreviewId = 1;

/** The core's notes name CLI options; in the editor, say where that option lives. */
export function editorNote(note: string): string {
  return note.replace(/Re-quantize with --requantize ([\w|]+)\.?/, 'The CLI can re-quantize them instead: model-surgeon fold-bn --requantize $1.');
}

/**
 * One webview panel showing a ModelDocument. Owns the message channel (ready handshake first: nothing is
 * posted before the webview asked for `init`) and this editor's Fold BatchNorm preview.
 */
export class EditorSession implements vscode.Disposable {
  private readonly messenger: Messenger<HostToWebview, WebviewToHost>;
  private readonly disposables: vscode.Disposable[] = [];
  /** the webview answered the handshake and has not been hidden (= destroyed) since */
  private ready = false;
  private pendingReveal: string | undefined;
  private preview: PendingPreview | undefined;
  private freeze: PendingFreeze | undefined;
  private readonly _onDidBecomeReady = new vscode.EventEmitter<void>();
  readonly onDidBecomeReady = this._onDidBecomeReady.event;
  /** last layer selected in the webview */
  selectedLayer: string | null = null;

  constructor(
    readonly document: ModelDocument,
    readonly panel: vscode.WebviewPanel,
    private readonly log: vscode.LogOutputChannel,
    private readonly fireEdit: (edit: vscode.CustomDocumentEditEvent<ModelDocument>) => void,
  ) {
    this.messenger = new Messenger<HostToWebview, WebviewToHost>(
      (message) => {
        try {
          return this.panel.webview.postMessage(message);
        } catch {
          return false; // disposed
        }
      },
      (body, messageId) => this.onMessage(body, messageId),
    );
    this.disposables.push(
      panel.webview.onDidReceiveMessage((data: unknown) => {
        if (isWebviewToHostEnvelope(data)) this.messenger.handle(data);
        else this.log.warn(`Ignored a malformed message from the ${document.fileName} webview`);
      }),
      // without retainContextWhenHidden a hidden webview is destroyed; it handshakes again when shown
      panel.onDidChangeViewState(() => {
        if (!panel.visible) this.ready = false;
      }),
    );
  }

  get isReady(): boolean {
    return this.ready && this.panel.visible;
  }

  /** Post an event; before the handshake only a reveal request is kept (init carries all other state). */
  post(message: HostToWebview): void {
    if (this.isReady) {
      this.messenger.sendEvent(message);
    } else if (message.type === 'revealLayer') {
      this.pendingReveal = message.layer;
    }
  }

  revealLayer(layer: string): void {
    this.post({ type: 'revealLayer', layer });
  }

  private onMessage(body: WebviewToHost, messageId: number | undefined): void {
    switch (body.type) {
      case 'ready':
        void this.onReady(messageId);
        break;
      case 'requestFoldPreview':
        void this.replyTo<'requestFoldPreview'>(messageId, 'Fold BatchNorm', async () => ({
          type: 'foldPreview',
          preview: await this.startFoldPreview(),
        }));
        break;
      case 'applyFold':
        void this.replyTo<'applyFold'>(messageId, 'Fold BatchNorm', async () => this.applyFold(body.previewId));
        break;
      case 'cancelFold':
        this.cancelFold(body.previewId, false);
        break;
      case 'requestFreezePreview':
        void this.replyTo<'requestFreezePreview'>(messageId, 'Freeze BatchNorm', async () => ({
          type: 'freezePreview',
          preview: await this.startFreezePreview(),
        }));
        break;
      case 'applyFreeze':
        void this.replyTo<'applyFreeze'>(messageId, 'Freeze BatchNorm', async () => this.applyFreeze(body.previewId));
        break;
      case 'cancelFreeze':
        if (this.freeze?.preview.previewId === body.previewId) this.freeze = undefined;
        break;
      case 'layerSelected':
        this.selectedLayer = body.layer;
        break;
      case 'setInputDims':
        void this.replyTo<'setInputDims'>(messageId, 'Input dimensions', async () => {
          await this.document.setDims(body.dims);
          return { type: 'inputDimsSet' };
        });
        break;
      default: {
        const unknown: never = body;
        this.log.warn(`Unknown webview message ${JSON.stringify(unknown)}`);
      }
    }
  }

  private async replyTo<K extends keyof WebviewRequestReplies>(
    messageId: number | undefined,
    context: string,
    work: () => Promise<WebviewRequestReplies[K]>,
  ): Promise<void> {
    let reply: WebviewRequestReplies[K] | { type: 'error'; message: string };
    try {
      reply = await work();
    } catch (err) {
      logError(this.log, context, err);
      reply = { type: 'error', message: userMessage(err, context) };
    }
    if (messageId !== undefined) this.messenger.reply(messageId, reply);
  }

  private async onReady(messageId: number | undefined): Promise<void> {
    this.ready = false;
    let init: InitMessage;
    // the document may change while the (possibly slow) first inspect runs: build until it is current
    for (;;) {
      const version = this.document.version;
      init = await this.buildInit();
      if (this.document.version === version) break;
    }
    if (messageId !== undefined) this.messenger.reply(messageId, init);
    this.ready = true;
    if (this.pendingReveal !== undefined) {
      this.messenger.sendEvent({ type: 'revealLayer', layer: this.pendingReveal });
      this.pendingReveal = undefined;
    }
    this._onDidBecomeReady.fire();
  }

  private async buildInit(): Promise<InitMessage> {
    const foldPreview = this.preview?.preview ?? null;
    const freezePreview = this.freeze?.preview ?? null;
    try {
      const document = (await this.document.view()) ?? null;
      return {
        type: 'init',
        fileName: this.document.fileName,
        document,
        loadError: document ? null : (this.document.loadError ?? null),
        foldPreview,
        freezePreview,
      };
    } catch (err) {
      logError(this.log, `Inspecting ${this.document.fileName}`, err);
      return {
        type: 'init',
        fileName: this.document.fileName,
        document: null,
        loadError: userMessage(err, `Cannot inspect ${this.document.fileName}`),
        foldPreview: null,
        freezePreview: null,
      };
    }
  }

  // ------------------------------------------------------------------------------------------------------------
  // Fold BatchNorm: plan -> preview (+ verification running in the background) -> apply as an undoable edit

  /** Plan the fold on the current model and start verifying it. Idempotent while a live preview exists. */
  async startFoldPreview(): Promise<FoldPreview> {
    await this.document.whenIdle();
    const model = this.document.model;
    if (!model) throw new core.ModelError(this.document.loadError ?? `${this.document.fileName} is not open.`);
    const current = this.preview;
    if (current && current.base === model) {
      const s = current.preview.verification.state;
      if (s === 'running' || s === 'done' || s === 'skipped') return current.preview;
    }
    if (current) this.dropPreview('cancelled', false);

    const result = await runWithProgress(
      { title: `Planning Fold BatchNorm on ${this.document.fileName}…`, location: 'window', cancellable: false },
      async () => core.foldBatchNorm(model),
    );
    const n = result.plan.candidates.length;
    const verification: VerificationState =
      n > 0
        ? { state: 'running' }
        : { state: 'skipped', message: 'Nothing to fold: no BatchNorm layer can be folded into a neighbour.' };
    const pending: PendingPreview = {
      preview: { previewId: nextPreviewId++, plan: result.plan, size: result.size, notes: result.notes.map(editorNote), verification },
      base: model,
      dims: this.document.dims,
      result,
      abort: new AbortController(),
    };
    this.preview = pending;
    this.log.info(`Fold BatchNorm on ${this.document.fileName}: ${n} foldable, ${result.plan.skipped.length} skipped`);
    for (const c of result.plan.candidates) this.log.debug(`  fold ${c.batchnorm} -> ${c.into} (${c.into_op})`);
    for (const s of result.plan.skipped) this.log.debug(`  skip ${s.layer}: ${s.reason}`);
    for (const note of result.notes) this.log.info(`  note: ${note}`);
    if (n > 0) void this.verify(pending);
    return pending.preview;
  }

  /** Run original and folded model on probe inputs (cancellable from the notification and the webview). */
  private async verify(pending: PendingPreview): Promise<void> {
    const n = pending.preview.plan.candidates.length;
    let verification: VerificationState;
    try {
      const report = await runWithProgress(
        {
          title: `Verifying Fold BatchNorm (${n}) on ${this.document.fileName}…`,
          location: 'notification',
          cancellable: true,
          notifyAfterMs: NOTIFY_AFTER_MS,
          signal: pending.abort.signal,
        },
        (signal) => core.verify(pending.base, pending.result.model, { dims: pending.dims, signal }),
      );
      verification = { state: 'done', report };
      recordEngine(report.engine);
      this.log.info(
        `Verified Fold BatchNorm (${n}) on ${this.document.fileName}: max abs error ${formatError(report.max_abs_error)}, ` +
          `max rel error ${formatError(report.max_rel_error)}, ${report.samples} samples, ${report.engine}, seed ${report.seed}`,
      );
    } catch (err) {
      if (err instanceof CancelledError || pending.abort.signal.aborted) {
        verification = { state: 'cancelled' };
        this.log.info(`Verification of Fold BatchNorm on ${this.document.fileName} cancelled`);
      } else {
        logError(this.log, `Verifying Fold BatchNorm on ${this.document.fileName}`, err);
        verification = { state: 'failed', message: userMessage(err, 'Verification failed') };
      }
    }
    pending.preview.verification = verification;
    if (this.preview === pending) {
      this.post({ type: 'foldVerification', previewId: pending.preview.previewId, verification });
    }
  }

  /**
   * Fold, verify (cancellable notification) and apply as one undoable edit when every output is within
   * FOLD_RTOL; otherwise throw a ModelError and change nothing. For `modelSurgeon.foldBatchNorm` with
   * `{ preview: false }` (key bindings, scripts, tests).
   */
  async foldAndApply(): Promise<FoldCommandResult> {
    await this.document.whenIdle(); // e.g. File: Revert just before: fold what it restored
    const model = this.document.model;
    const name = this.document.fileName;
    if (!model) throw new core.ModelError(this.document.loadError ?? `${name} is not open.`);
    if (!this.document.editable) throw new core.ModelError(`${name} is read-only.`);
    const result = await runWithProgress(
      { title: `Folding BatchNorm in ${name}…`, location: 'window', cancellable: false },
      async () => core.foldBatchNorm(model),
    );
    const n = result.plan.candidates.length;
    const skipped = result.plan.skipped.length;
    if (n === 0) {
      this.log.info(`Fold BatchNorm on ${name}: nothing to fold (${skipped} skipped)`);
      void vscode.window.showInformationMessage(
        `Nothing to fold in ${name}: no BatchNorm layer can be folded into a neighbour${skipped ? ` (${skipped} skipped)` : ''}.`,
      );
      return { folded: 0, skipped, max_abs_error: 0, max_rel_error: 0, notes: result.notes };
    }
    const dims = this.document.dims;
    const report: VerifyReport = await runWithProgress(
      { title: `Verifying Fold BatchNorm (${n}) on ${name}…`, location: 'notification', cancellable: true, notifyAfterMs: NOTIFY_AFTER_MS },
      (signal) => core.verify(model, result.model, { dims, signal }),
    );
    recordEngine(report.engine);
    const errors = `max abs error ${formatError(report.max_abs_error)}, max rel error ${formatError(report.max_rel_error)}`;
    this.log.info(`Verified Fold BatchNorm (${n}) on ${name}: ${errors}, ${report.samples} samples, ${report.engine}, seed ${report.seed}`);
    if (!withinTolerance(report, FOLD_RTOL)) {
      throw new core.ModelError(
        `Fold BatchNorm was not applied to ${name}: the folded model's outputs differ too much (${errors}; ` +
          `tolerance 1e-6 + ${FOLD_RTOL} x |output|).`,
      );
    }
    if (this.document.model !== model) {
      throw new core.ModelError(`${name} changed while Fold BatchNorm was being verified; nothing was applied.`);
    }
    const label = `Fold BatchNorm (${n})`;
    this.fireEdit(this.document.makeEdit(label, result.model));
    this.log.info(`Applied ${label} to ${name}`);
    for (const note of result.notes) this.log.info(`  note: ${note}`);
    return {
      folded: n,
      skipped,
      max_abs_error: report.max_abs_error,
      max_rel_error: report.max_rel_error,
      engine: report.engine,
      notes: result.notes,
    };
  }

  private applyFold(previewId: number): WebviewRequestReplies['applyFold'] {
    const pending = this.preview;
    if (!pending || pending.preview.previewId !== previewId) {
      throw new core.ModelError('This preview is no longer open; run Fold BatchNorm again.');
    }
    if (this.document.model !== pending.base) {
      this.dropPreview('stale', true);
      throw new core.ModelError('The model changed since this preview was made; run Fold BatchNorm again.');
    }
    const v = pending.preview.verification;
    if (v.state === 'running') throw new core.ModelError('Verification is still running; apply once it has finished.');
    if (v.state !== 'done') throw new core.ModelError('Only a verified rewrite can be applied.');
    if (!this.document.editable) throw new core.ModelError(`${this.document.fileName} is read-only.`);
    const label = `Fold BatchNorm (${pending.preview.plan.candidates.length})`;
    this.preview = undefined; // before the edit, so the change listener does not report it as stale
    this.fireEdit(this.document.makeEdit(label, pending.result.model));
    this.log.info(`Applied ${label} to ${this.document.fileName}`);
    return { type: 'foldApplied', previewId, label };
  }

  /** Cancel this editor's preview (from the webview's Cancel button, or the host). */
  cancelFold(previewId: number | undefined, notify: boolean): void {
    if (this.preview && (previewId === undefined || this.preview.preview.previewId === previewId)) {
      this.dropPreview('cancelled', notify);
    }
  }

  private dropPreview(reason: 'cancelled' | 'stale' | 'dims', notify: boolean): void {
    const pending = this.preview;
    if (!pending) return;
    this.preview = undefined;
    pending.abort.abort();
    if (notify) this.post({ type: 'foldClosed', previewId: pending.preview.previewId, reason });
  }

  // ------------------------------------------------------------------------------------------------------------
  // Freeze BatchNorm (Keras-family formats): list the layers -> apply as an undoable edit. Nothing to verify:
  // `trainable` does not change what the model computes at inference.

  /** Plan Freeze BatchNorm on the current model. Idempotent while a preview of the current model exists. */
  async startFreezePreview(): Promise<FreezePreview> {
    await this.document.whenIdle();
    const model = this.document.model;
    if (!model) throw new core.ModelError(this.document.loadError ?? `${this.document.fileName} is not open.`);
    if (this.freeze && this.freeze.base === model) return this.freeze.preview;
    const result = core.freezeBatchNorm(model);
    const view = await this.document.view();
    const total = view?.freeze?.batchnorms ?? result.frozen.length;
    const pending: PendingFreeze = {
      preview: { previewId: nextPreviewId++, layers: result.frozen, alreadyFrozen: Math.max(0, total - result.frozen.length) },
      base: model,
      result,
    };
    this.freeze = pending;
    this.log.info(`Freeze BatchNorm on ${this.document.fileName}: ${result.frozen.length} to freeze, ${pending.preview.alreadyFrozen} frozen already`);
    return pending.preview;
  }

  private applyFreeze(previewId: number): WebviewRequestReplies['applyFreeze'] {
    const pending = this.freeze;
    if (!pending || pending.preview.previewId !== previewId) {
      throw new core.ModelError('This preview is no longer open; run Freeze BatchNorm again.');
    }
    if (this.document.model !== pending.base) {
      this.dropFreeze('stale', true);
      throw new core.ModelError('The model changed since this preview was made; run Freeze BatchNorm again.');
    }
    if (pending.preview.layers.length === 0) throw new core.ModelError('Nothing to freeze: every BatchNorm layer is frozen already.');
    if (!this.document.editable) throw new core.ModelError(`${this.document.fileName} is read-only.`);
    const label = `Freeze BatchNorm (${pending.preview.layers.length})`;
    this.freeze = undefined; // before the edit, so the change listener does not report it as stale
    this.fireEdit(this.document.makeEdit(label, pending.result.model));
    this.log.info(`Applied ${label} to ${this.document.fileName}`);
    return { type: 'freezeApplied', previewId, label };
  }

  /**
   * Freeze and apply as one undoable edit, for `modelSurgeon.freezeBatchNorm` with `{ preview: false }`.
   * Throws a ModelError (nothing changes) for formats without the setting.
   */
  async freezeAndApply(): Promise<FreezeCommandResult> {
    await this.document.whenIdle();
    const model = this.document.model;
    const name = this.document.fileName;
    if (!model) throw new core.ModelError(this.document.loadError ?? `${name} is not open.`);
    if (!this.document.editable) throw new core.ModelError(`${name} is read-only.`);
    const result = core.freezeBatchNorm(model);
    const n = result.frozen.length;
    if (n === 0) {
      this.log.info(`Freeze BatchNorm on ${name}: nothing to freeze`);
      void vscode.window.showInformationMessage(`Nothing to freeze in ${name}: no trainable BatchNorm layer.`);
      return { frozen: 0, layers: [] };
    }
    const label = `Freeze BatchNorm (${n})`;
    this.fireEdit(this.document.makeEdit(label, result.model));
    this.log.info(`Applied ${label} to ${name}`);
    return { frozen: n, layers: result.frozen };
  }

  private dropFreeze(reason: 'cancelled' | 'stale', notify: boolean): void {
    const pending = this.freeze;
    if (!pending) return;
    this.freeze = undefined;
    if (notify) this.post({ type: 'freezeClosed', previewId: pending.preview.previewId, reason });
  }

  /**
   * The document changed: a preview made on another model can no longer be applied, and one verified with
   * other input dims no longer says anything about the dims the user now looks at.
   */
  onDocumentChanged(change: DocumentChange): void {
    if (this.freeze && this.freeze.base !== this.document.model) this.dropFreeze('stale', true);
    if (!this.preview) return;
    if (this.preview.base !== this.document.model) this.dropPreview('stale', true);
    else if (change.reason === 'dims') this.dropPreview('dims', true);
  }

  dispose(): void {
    this.dropFreeze('cancelled', false);
    this.dropPreview('cancelled', false);
    this.messenger.dispose();
    this._onDidBecomeReady.dispose();
    for (const d of this.disposables) d.dispose();
  }
}
