import * as vscode from 'vscode';
import * as core from '../core/api';
import type { FoldResult, FreezeResult, Model, RewriteResult } from '../core/api';
import { withinTolerance } from '../core/engines/onnxruntime';
import type { OptimizerKind, VerifyReport } from '../core/types';
import { fixEditLabel, fixTitle } from '../protocol/fixes';
import { formatError } from '../protocol/format';
import type {
  DocumentChange,
  FixPreview,
  FixSettings,
  FoldPreview,
  FreezePreview,
  HostToWebview,
  InitMessage,
  PlannerSettings,
  VerificationState,
  WebviewRequestReplies,
  WebviewToHost,
} from '../protocol/messages';
import { isWebviewToHostEnvelope } from '../protocol/messages';
import { Messenger } from '../protocol/messenger';
import { auditAt, batchNormChannels, doctorRewriteFor, memoryPlan } from './doctor';
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

/** What `modelSurgeon.applyFix` with `{ preview: false }` returns to its caller. */
export interface FixCommandResult {
  fix: string;
  /** layers the fix changed (0: nothing to do, no edit was made) */
  applied: number;
  /** the undoable edit's label, e.g. "Remove Dropout (2)"; null when nothing changed */
  label: string | null;
  /** measured by running the model before and after; null when nothing ran (nothing changed, or unverifiable) */
  max_abs_error: number | null;
  max_rel_error: number | null;
  /** false for fixes that change the outputs on purpose: the errors are then the deviation they cause */
  preserves_outputs: boolean;
  unverifiable: string | null;
  engine?: string;
  notes: string[];
}

interface PendingFix {
  readonly preview: FixPreview;
  readonly base: Model;
  readonly dims: Record<string, number>;
  readonly result: RewriteResult;
  readonly abort: AbortController;
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
  private pendingReveal: Extract<HostToWebview, { type: 'revealLayer' }> | undefined;
  private preview: PendingPreview | undefined;
  private freeze: PendingFreeze | undefined;
  private fix: PendingFix | undefined;
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
      this.pendingReveal = message;
    }
  }

  revealLayer(layer: string, finding?: string): void {
    this.post({ type: 'revealLayer', layer, ...(finding !== undefined ? { finding } : {}) });
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
      case 'requestFixPreview':
        void this.replyTo<'requestFixPreview'>(messageId, fixTitle(String(body.fixId)), async () => ({
          type: 'fixPreview',
          preview: await this.startFixPreview(String(body.fixId), body.settings),
        }));
        break;
      case 'applyFix':
        void this.replyTo<'applyFix'>(messageId, 'Apply fix', async () => this.applyFixPreview(body.previewId));
        break;
      case 'cancelFix':
        this.cancelFix(body.previewId, false);
        break;
      case 'requestAudit':
        void this.replyTo<'requestAudit'>(messageId, 'BatchNorm audit', async () => {
          const model = await this.currentModel();
          const batch = positiveInt(body.batchSize, 1 << 20);
          return { type: 'audit', report: auditAt(model, batch ?? null, this.document.dims) };
        });
        break;
      case 'requestBatchNormChannels':
        void this.replyTo<'requestBatchNormChannels'>(messageId, 'BatchNorm channels', async () => {
          const model = await this.currentModel();
          return { type: 'batchNormChannels', channels: batchNormChannels(model, String(body.layer), this.document.dims) };
        });
        break;
      case 'requestMemoryPlan':
        void this.replyTo<'requestMemoryPlan'>(messageId, 'Memory planner', async () => {
          const model = await this.currentModel();
          const settings = sanitizePlannerSettings(body.settings);
          const report = await runWithProgress(
            { title: `Planning memory for ${this.document.fileName}…`, location: 'window', cancellable: false },
            async () => memoryPlan(model, settings, this.document.dims),
          );
          return { type: 'memoryPlan', report };
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
      this.messenger.sendEvent(this.pendingReveal);
      this.pendingReveal = undefined;
    }
    this._onDidBecomeReady.fire();
  }

  private async currentModel(): Promise<Model> {
    await this.document.whenIdle();
    const model = this.document.model;
    if (!model) throw new core.ModelError(this.document.loadError ?? `${this.document.fileName} is not open.`);
    return model;
  }

  private async buildInit(): Promise<InitMessage> {
    const foldPreview = this.preview?.preview ?? null;
    const freezePreview = this.freeze?.preview ?? null;
    const fixPreview = this.fix?.preview ?? null;
    try {
      const document = (await this.document.view()) ?? null;
      return {
        type: 'init',
        fileName: this.document.fileName,
        document,
        loadError: document ? null : (this.document.loadError ?? null),
        foldPreview,
        freezePreview,
        fixPreview,
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
        fixPreview: null,
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

  // ------------------------------------------------------------------------------------------------------------
  // Doctor fixes (a finding's `fix`: remove-dropout, fold-batchnorm-forward, batchnorm-to-affine,
  // batchnorm-eval-mode, replace-batchnorm-groupnorm, set-dropout-rate): plan + rewrite -> preview with the
  // verification running in the background -> apply as an undoable edit. Fixes that keep the outputs must be
  // within FOLD_RTOL; fixes that change them on purpose show the measured deviation and a warning instead.

  /** Plan a doctor fix on the current model and start verifying it. Idempotent while a live preview of it exists. */
  async startFixPreview(fixId: string, rawSettings: unknown): Promise<FixPreview> {
    const model = await this.currentModel();
    const rewrite = doctorRewriteFor(model, fixId);
    const settings = sanitizeFixSettings(rawSettings);
    if (rewrite === 'set-dropout-rate' && settings.rate === undefined) settings.rate = 0.1;
    const current = this.fix;
    if (current && current.base === model && current.preview.fixId === rewrite && sameSettings(current.preview.settings, settings)) {
      const st = current.preview.verification.state;
      if (st === 'running' || st === 'done' || st === 'skipped') return current.preview;
    }
    if (current) this.dropFix('cancelled', false);

    const title = fixTitle(rewrite);
    const result = await runWithProgress({ title: `Planning ${title} on ${this.document.fileName}…`, location: 'window', cancellable: false }, async () =>
      core.applyFix(model, rewrite, settings),
    );
    const n = result.applied;
    const verification: VerificationState =
      n === 0
        ? { state: 'skipped', message: `Nothing to change: no layer qualifies for ${title}.` }
        : result.unverifiable
          ? { state: 'skipped', message: `Not verified: ${result.unverifiable}.` }
          : { state: 'running' };
    const pending: PendingFix = {
      preview: {
        previewId: nextPreviewId++,
        fixId: rewrite,
        title,
        plan: result.plan,
        applied: n,
        size: result.size,
        preservesOutputs: result.preserves_outputs,
        unverifiable: result.unverifiable,
        notes: result.notes.filter((note) => note !== result.unverifiable).map(editorNote),
        settings,
        rtol: FOLD_RTOL,
        verification,
        withinTolerance: null,
      },
      base: model,
      dims: this.document.dims,
      result,
      abort: new AbortController(),
    };
    this.fix = pending;
    this.log.info(`${title} on ${this.document.fileName}: ${n} to change, ${result.plan.skipped.length} skipped`);
    for (const sk of result.plan.skipped) this.log.debug(`  skip ${sk.layer}: ${sk.reason}`);
    if (verification.state === 'running') void this.verifyFix(pending);
    return pending.preview;
  }

  private async verifyFix(pending: PendingFix): Promise<void> {
    const { title, applied } = pending.preview;
    let verification: VerificationState;
    let within: boolean | null = null;
    try {
      const report = await runWithProgress(
        {
          title: `Verifying ${title} (${applied}) on ${this.document.fileName}…`,
          location: 'notification',
          cancellable: true,
          notifyAfterMs: NOTIFY_AFTER_MS,
          signal: pending.abort.signal,
        },
        (signal) => core.verify(pending.base, pending.result.model, { dims: pending.dims, signal }),
      );
      verification = { state: 'done', report };
      within = pending.preview.preservesOutputs ? withinTolerance(report, FOLD_RTOL) : null;
      recordEngine(report.engine);
      this.log.info(
        `Verified ${title} (${applied}) on ${this.document.fileName}: max abs error ${formatError(report.max_abs_error)}, ` +
          `max rel error ${formatError(report.max_rel_error)}${pending.preview.preservesOutputs ? '' : ' (a deviation on purpose)'}, ${report.engine}`,
      );
    } catch (err) {
      if (err instanceof CancelledError || pending.abort.signal.aborted) {
        verification = { state: 'cancelled' };
      } else {
        logError(this.log, `Verifying ${title} on ${this.document.fileName}`, err);
        verification = { state: 'failed', message: userMessage(err, 'Verification failed') };
      }
    }
    pending.preview.verification = verification;
    pending.preview.withinTolerance = within;
    if (this.fix === pending) {
      this.post({ type: 'fixVerification', previewId: pending.preview.previewId, verification, withinTolerance: within });
    }
  }

  private applyFixPreview(previewId: number): WebviewRequestReplies['applyFix'] {
    const pending = this.fix;
    if (!pending || pending.preview.previewId !== previewId) throw new core.ModelError('This preview is no longer open; run the fix again.');
    const p = pending.preview;
    if (this.document.model !== pending.base) {
      this.dropFix('stale', true);
      throw new core.ModelError(`The model changed since this preview was made; run ${p.title} again.`);
    }
    if (p.applied === 0) throw new core.ModelError(`Nothing to change: no layer qualifies for ${p.title}.`);
    const v = p.verification;
    if (v.state === 'running') throw new core.ModelError('Verification is still running; apply once it has finished.');
    const unverifiableOk = v.state === 'skipped' && p.unverifiable !== null;
    if (v.state !== 'done' && !unverifiableOk) throw new core.ModelError('Only a verified rewrite can be applied.');
    if (p.preservesOutputs && p.withinTolerance === false) {
      throw new core.ModelError(`${p.title} was not applied: the rewritten model's outputs differ beyond the tolerance (1e-6 + ${FOLD_RTOL} x |output|).`);
    }
    if (!this.document.editable) throw new core.ModelError(`${this.document.fileName} is read-only.`);
    const label = fixEditLabel(p.fixId, p.applied);
    this.fix = undefined; // before the edit, so the change listener does not report it as stale
    this.fireEdit(this.document.makeEdit(label, pending.result.model));
    this.log.info(`Applied ${label} to ${this.document.fileName}`);
    return { type: 'fixApplied', previewId, label };
  }

  /**
   * Rewrite, verify and apply a doctor fix as one undoable edit, for `modelSurgeon.applyFix` with
   * `{ preview: false }`. Fixes that keep the outputs must be within FOLD_RTOL (else a ModelError, nothing
   * changes); fixes that change them on purpose are applied and return the measured deviation.
   */
  async fixAndApply(fixId: string, rawSettings: unknown): Promise<FixCommandResult> {
    const model = await this.currentModel();
    const name = this.document.fileName;
    if (!this.document.editable) throw new core.ModelError(`${name} is read-only.`);
    const rewrite = doctorRewriteFor(model, fixId);
    const settings = sanitizeFixSettings(rawSettings);
    const title = fixTitle(rewrite);
    const result = await runWithProgress({ title: `${title} on ${name}…`, location: 'window', cancellable: false }, async () =>
      core.applyFix(model, rewrite, settings),
    );
    const base: FixCommandResult = {
      fix: rewrite,
      applied: result.applied,
      label: null,
      max_abs_error: null,
      max_rel_error: null,
      preserves_outputs: result.preserves_outputs,
      unverifiable: result.unverifiable,
      notes: result.notes,
    };
    if (result.applied === 0) {
      this.log.info(`${title} on ${name}: nothing to change (${result.plan.skipped.length} skipped)`);
      void vscode.window.showInformationMessage(`Nothing to change in ${name}: no layer qualifies for ${title}.`);
      return base;
    }
    let report: VerifyReport | null = null;
    if (!result.unverifiable) {
      const dims = this.document.dims;
      report = await runWithProgress(
        { title: `Verifying ${title} (${result.applied}) on ${name}…`, location: 'notification', cancellable: true, notifyAfterMs: NOTIFY_AFTER_MS },
        (signal) => core.verify(model, result.model, { dims, signal }),
      );
      recordEngine(report.engine);
      const errors = `max abs error ${formatError(report.max_abs_error)}, max rel error ${formatError(report.max_rel_error)}`;
      this.log.info(`Verified ${title} (${result.applied}) on ${name}: ${errors}, ${report.engine}`);
      if (result.preserves_outputs && !withinTolerance(report, FOLD_RTOL)) {
        throw new core.ModelError(`${title} was not applied to ${name}: the outputs differ too much (${errors}; tolerance 1e-6 + ${FOLD_RTOL} x |output|).`);
      }
    }
    if (this.document.model !== model) throw new core.ModelError(`${name} changed while ${title} was being verified; nothing was applied.`);
    const label = fixEditLabel(rewrite, result.applied);
    this.fireEdit(this.document.makeEdit(label, result.model));
    this.log.info(`Applied ${label} to ${name}`);
    return {
      ...base,
      label,
      max_abs_error: report?.max_abs_error ?? null,
      max_rel_error: report?.max_rel_error ?? null,
      ...(report ? { engine: report.engine } : {}),
    };
  }

  /** Cancel this editor's fix preview (from the webview's Cancel button, or the host). */
  cancelFix(previewId: number | undefined, notify: boolean): void {
    if (this.fix && (previewId === undefined || this.fix.preview.previewId === previewId)) this.dropFix('cancelled', notify);
  }

  private dropFix(reason: 'cancelled' | 'stale' | 'dims', notify: boolean): void {
    const pending = this.fix;
    if (!pending) return;
    this.fix = undefined;
    pending.abort.abort();
    if (notify) this.post({ type: 'fixClosed', previewId: pending.preview.previewId, reason });
  }

  /**
   * The document changed: a preview made on another model can no longer be applied, and one verified with
   * other input dims no longer says anything about the dims the user now looks at.
   */
  onDocumentChanged(change: DocumentChange): void {
    if (this.freeze && this.freeze.base !== this.document.model) this.dropFreeze('stale', true);
    if (this.fix) {
      if (this.fix.base !== this.document.model) this.dropFix('stale', true);
      else if (change.reason === 'dims') this.dropFix('dims', true);
    }
    if (!this.preview) return;
    if (this.preview.base !== this.document.model) this.dropPreview('stale', true);
    else if (change.reason === 'dims') this.dropPreview('dims', true);
  }

  dispose(): void {
    this.dropFix('cancelled', false);
    this.dropFreeze('cancelled', false);
    this.dropPreview('cancelled', false);
    this.messenger.dispose();
    this._onDidBecomeReady.dispose();
    for (const d of this.disposables) d.dispose();
  }
}

/** A positive integer up to `max`, else undefined (webview input is checked again on this side). */
function positiveInt(v: unknown, max: number): number | undefined {
  return typeof v === 'number' && Number.isInteger(v) && v >= 1 && v <= max ? v : undefined;
}

/** Only the settings a fix takes, with valid values (a rate outside [0, 1) is a clear error, not a clamp). */
export function sanitizeFixSettings(raw: unknown): FixSettings {
  const out: FixSettings = {};
  if (typeof raw !== 'object' || raw === null) return out;
  const r = raw as Record<string, unknown>;
  if (r.rate !== undefined && r.rate !== null) {
    if (typeof r.rate !== 'number' || !(r.rate >= 0 && r.rate < 1)) throw new core.ModelError(`The dropout rate must be a number from 0 to below 1, not ${String(r.rate)}.`);
    out.rate = r.rate;
  }
  const groups = positiveInt(r.groups, 4096);
  if (groups !== undefined) out.groups = groups;
  return out;
}

function sameSettings(a: FixSettings, b: FixSettings): boolean {
  return a.rate === b.rate && a.groups === b.groups;
}

const OPTIMIZERS: readonly OptimizerKind[] = ['adam', 'sgd-momentum', 'sgd', 'none'];

/** The planner's settings with every value checked (anything invalid falls back to the model's default). */
export function sanitizePlannerSettings(raw: unknown): PlannerSettings {
  const r = (typeof raw === 'object' && raw !== null ? raw : {}) as Record<string, unknown>;
  const optimizer = OPTIMIZERS.find((o) => o === r.optimizer) ?? 'adam';
  const crops = Array.isArray(r.crops) ? r.crops.map((c) => positiveInt(c, 65_536)).filter((c): c is number => c !== undefined).slice(0, 8) : [];
  const budget = typeof r.budgetBytes === 'number' && Number.isFinite(r.budgetBytes) && r.budgetBytes > 0 ? Math.floor(r.budgetBytes) : undefined;
  const out: PlannerSettings = { optimizer, dtypeBytes: r.dtypeBytes === 2 ? 2 : 4, crops };
  const height = positiveInt(r.height, 65_536);
  const width = positiveInt(r.width, 65_536);
  const batch = positiveInt(r.batch, 1 << 20);
  if (height !== undefined) out.height = height;
  if (width !== undefined) out.width = width;
  if (batch !== undefined) out.batch = batch;
  if (budget !== undefined) out.budgetBytes = budget;
  return out;
}
