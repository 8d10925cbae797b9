/**
 * The one protocol between the extension host and the Model Surgeon webview.
 *
 * Rules: no `vscode`, no DOM imports (this folder type-checks under both the host and the webview tsconfig);
 * every message is a member of a discriminated union on `type`; the webview only ever receives summaries
 * (InspectReport, FoldPlan, VerifyReport, SizeDelta, layer names) — never tensors.
 *
 * Wire format: `Envelope<Body>` = `{ messageId?, inReplyTo?, body }`. A request carries a `messageId`; its reply
 * carries `inReplyTo` = that id. Events carry neither requirement (they may carry a messageId for tracing).
 */
import type {
  BatchNormAuditReport,
  BatchNormChannels,
  DropoutAuditReport,
  Finding,
  FixId,
  FoldPlan,
  InspectReport,
  MemoryPlanReport,
  OptimizerKind,
  RewritePlan,
  SizeDelta,
  VerifyReport,
} from '../core/types';

export interface Envelope<T> {
  messageId?: number;
  inReplyTo?: number;
  body: T;
}

// ---------------------------------------------------------------------------------------------------------------
// Shared payloads

/** What the editor shows for a successfully loaded model. */
export interface DocumentView {
  /** base name of the file, for titles */
  fileName: string;
  report: InspectReport;
  /** the current Fold BatchNorm plan (cheap; drives the "Fold BatchNorm (N foldable)" button) */
  foldPlan: FoldPlan;
  /** false when the document cannot be edited (e.g. read-only file system) */
  editable: boolean;
  /** the file on disk (not the in-memory model): its size, and whether the current model is what it holds */
  file: FileState;
  /** the symbolic dims of the model's inputs with the values the analysis (and the fold verification) used */
  inputDims: InputDim[];
  /** the concrete input shapes the output shapes and MACs of `report` refer to */
  inputShapes: InputShape[];
  /**
   * what runs the model to verify rewrites: `onnxruntime-node` for ONNX; for TF.js / Keras the TensorFlow.js
   * backend (VerifyReport.engine, e.g. `tfjs-wasm`) once a verification has run in this window, else null
   */
  engine: string | null;
  /** Freeze BatchNorm: null when the format has no such setting (only the Keras-family formats have it) */
  freeze: FreezeState | null;
  /**
   * the fix ids (Finding.fix) this editor can preview and apply on this model: fold-batchnorm, freeze-batchnorm
   * (Keras family) and the doctor's rewrites for the format; a finding whose fix is not listed shows why
   */
  fixes: string[];
}

/** Freeze BatchNorm availability for a Keras-family model. */
export interface FreezeState {
  /** BatchNorm layers (nested models included) */
  batchnorms: number;
  /** BatchNorm layers that are still trainable (what Freeze BatchNorm would change) */
  freezable: number;
}

export interface FileState {
  /** size of the file on disk; null when there is none (or it cannot be read) */
  bytes: number | null;
  /** true when the current model is exactly what the file holds (no unsaved changes) */
  saved: boolean;
}

/** A symbolic input dimension (ONNX dim_param) and the value used for it. */
export interface InputDim {
  name: string;
  value: number;
}

export interface InputShape {
  name: string;
  shape: number[];
}

/** Why a document's view changed. `label` is the edit's label for edit / undo / redo, else null. */
export type DocumentChangeReason = 'edit' | 'undo' | 'redo' | 'revert' | 'reload' | 'save' | 'dims' | 'disk';
export interface DocumentChange {
  reason: DocumentChangeReason;
  label: string | null;
}

export type VerificationState =
  | { state: 'running' }
  | { state: 'done'; report: VerifyReport }
  | { state: 'failed'; message: string }
  | { state: 'cancelled' }
  /** nothing to verify: the plan has no candidates */
  | { state: 'skipped'; message: string };

/** A fold preview: what would fold, the size change, and (once it ran) the verification. */
export interface FoldPreview {
  previewId: number;
  plan: FoldPlan;
  size: SizeDelta;
  /** facts from the rewrite, e.g. quantized TF.js weights written as float32 and the size change */
  notes: string[];
  verification: VerificationState;
}

/** A Freeze BatchNorm preview: the layers that get `trainable: false` (inference outputs do not change). */
export interface FreezePreview {
  previewId: number;
  /** the BatchNorm layers that would be frozen (nested ones as `outer/inner`) */
  layers: string[];
  /** BatchNorm layers that are frozen already */
  alreadyFrozen: number;
}

/** Settings of a doctor fix (Keras-family rewrites); the host ignores what a fix does not take. */
export interface FixSettings {
  /** set-dropout-rate: the new rate in [0, 1) */
  rate?: number;
  /** replace-batchnorm-groupnorm: GroupNormalization groups (default 32) */
  groups?: number;
}

/** Verification of a doctor fix: the shared states plus, once done, whether it is within the tolerance. */
export interface FixVerification {
  verification: VerificationState;
  /**
   * fixes that keep the outputs: whether every output is within 1e-6 + rtol x |output| (Apply needs it);
   * null while not verified, and for fixes that change the outputs on purpose (their error is the deviation)
   */
  withinTolerance: boolean | null;
}

/** A doctor fix preview (remove-dropout, batchnorm-eval-mode, ...): plan, size, notes, verification. */
export interface FixPreview extends FixVerification {
  previewId: number;
  fixId: FixId;
  /** human name, e.g. "Remove Dropout" */
  title: string;
  /** fold-batchnorm-forward plans are FoldPlans (BatchNorm -> into); the others RewritePlans (layer: action) */
  plan: FoldPlan | RewritePlan;
  /** layers the rewrite changes */
  applied: number;
  size: SizeDelta;
  /** false for fixes that change the model's function on purpose (batchnorm-eval-mode, replace-batchnorm-groupnorm) */
  preservesOutputs: boolean;
  /** why the result cannot be run (no measured deviation); null when it can */
  unverifiable: string | null;
  notes: string[];
  /** the settings it was planned with */
  settings: FixSettings;
  /** relative tolerance Apply requires of fixes that keep the outputs */
  rtol: number;
}

/** The BatchNorm and Dropout audits at one batch size (core AuditReport). */
export interface AuditView {
  batchnorm: BatchNormAuditReport;
  dropout: DropoutAuditReport;
  findings: Finding[];
}

export type { BatchNormChannels } from '../core/types';

/** What the memory planner panel asks for (unset: the model's own size / batch). */
export interface PlannerSettings {
  height?: number;
  width?: number;
  batch?: number;
  /** bytes of GPU memory (the budget) */
  budgetBytes?: number;
  optimizer: OptimizerKind;
  /** 4: float32, 2: float16 */
  dtypeBytes: 2 | 4;
  /** square crop sizes to compare with the full image */
  crops: number[];
}

// ---------------------------------------------------------------------------------------------------------------
// Host -> webview

/** Reply to `ready`: everything the webview needs to render from scratch (also after it was reloaded). */
export interface InitMessage {
  type: 'init';
  /** base name of the file (also when it could not be opened) */
  fileName: string;
  document: DocumentView | null;
  /** set when the file could not be opened; one clear line, never a stack trace */
  loadError: string | null;
  /** the fold preview that was open in this editor before the webview was reloaded */
  foldPreview: FoldPreview | null;
  /** likewise the Freeze BatchNorm preview */
  freezePreview: FreezePreview | null;
  /** likewise the doctor fix preview */
  fixPreview: FixPreview | null;
}

/** The document's view changed (edit, undo, redo, revert, save, new input dims, another editor's rewrite). */
export interface DocumentChangedMessage {
  type: 'documentChanged';
  document: DocumentView;
  change: DocumentChange;
}

/** The document could not be (re)loaded, e.g. revert found a broken file. */
export interface LoadErrorMessage {
  type: 'loadError';
  fileName: string;
  message: string;
}

/**
 * Scroll to and select a layer row; from a Problems-panel link also highlight the finding with that code
 * (`layer` is '' for a finding that names no layer).
 */
export interface RevealLayerMessage {
  type: 'revealLayer';
  layer: string;
  finding?: string;
}

/** Show a fold preview (reply to `requestFoldPreview`, or an event when the command started it). */
export interface FoldPreviewMessage {
  type: 'foldPreview';
  preview: FoldPreview;
}

/** The verification of a preview progressed. */
export interface FoldVerificationMessage {
  type: 'foldVerification';
  previewId: number;
  verification: VerificationState;
}

/** The host dropped a preview (applied, cancelled from the host, or made stale by a model change). */
export interface FoldClosedMessage {
  type: 'foldClosed';
  previewId: number;
  /** stale: the model changed; dims: the input dims changed, so the verification no longer applies */
  reason: 'applied' | 'cancelled' | 'stale' | 'dims';
}

/** Reply to `applyFold` when the edit was made. */
export interface FoldAppliedMessage {
  type: 'foldApplied';
  previewId: number;
  label: string;
}

/** Show a Freeze BatchNorm preview (reply to `requestFreezePreview`, or an event when the command started it). */
export interface FreezePreviewMessage {
  type: 'freezePreview';
  preview: FreezePreview;
}

/** The host dropped a Freeze BatchNorm preview (cancelled from the host, or made stale by a model change). */
export interface FreezeClosedMessage {
  type: 'freezeClosed';
  previewId: number;
  reason: 'cancelled' | 'stale';
}

/** Reply to `applyFreeze` when the edit was made. */
export interface FreezeAppliedMessage {
  type: 'freezeApplied';
  previewId: number;
  label: string;
}

/** Show a doctor fix preview (reply to `requestFixPreview`, or an event when `modelSurgeon.applyFix` started it). */
export interface FixPreviewMessage {
  type: 'fixPreview';
  preview: FixPreview;
}

/** The verification of a fix preview progressed. */
export interface FixVerificationMessage extends FixVerification {
  type: 'fixVerification';
  previewId: number;
}

/** The host dropped a fix preview. */
export interface FixClosedMessage {
  type: 'fixClosed';
  previewId: number;
  reason: 'applied' | 'cancelled' | 'stale' | 'dims';
}

/** Reply to `applyFix` when the edit was made. */
export interface FixAppliedMessage {
  type: 'fixApplied';
  previewId: number;
  label: string;
}

/** Reply to `requestAudit`. */
export interface AuditMessage {
  type: 'audit';
  report: AuditView;
}

/** Reply to `requestBatchNormChannels`. */
export interface BatchNormChannelsMessage {
  type: 'batchNormChannels';
  channels: BatchNormChannels;
}

/** Reply to `requestMemoryPlan`. */
export interface MemoryPlanMessage {
  type: 'memoryPlan';
  report: MemoryPlanReport;
}

/** Reply to `setInputDims`: the values were stored; a `documentChanged` with the new analysis follows. */
export interface InputDimsSetMessage {
  type: 'inputDimsSet';
}

/** Reply to a request that failed; `message` is one clear line. */
export interface ErrorReplyMessage {
  type: 'error';
  message: string;
}

export type HostToWebview =
  | InitMessage
  | DocumentChangedMessage
  | LoadErrorMessage
  | RevealLayerMessage
  | FoldPreviewMessage
  | FoldVerificationMessage
  | FoldClosedMessage
  | FoldAppliedMessage
  | FreezePreviewMessage
  | FreezeClosedMessage
  | FreezeAppliedMessage
  | InputDimsSetMessage
  | FixPreviewMessage
  | FixVerificationMessage
  | FixClosedMessage
  | FixAppliedMessage
  | AuditMessage
  | BatchNormChannelsMessage
  | MemoryPlanMessage
  | ErrorReplyMessage;

// ---------------------------------------------------------------------------------------------------------------
// Webview -> host

/** Request: the webview's script runs and can receive messages. Reply: `init`. */
export interface ReadyRequest {
  type: 'ready';
}

/** Request: plan Fold BatchNorm and start verifying it. Reply: `foldPreview` or `error`. */
export interface RequestFoldPreview {
  type: 'requestFoldPreview';
}

/** Request: apply a verified preview as an undoable edit. Reply: `foldApplied` or `error`. */
export interface ApplyFoldRequest {
  type: 'applyFold';
  previewId: number;
}

/** Event: the user closed the preview (cancels a running verification). */
export interface CancelFoldEvent {
  type: 'cancelFold';
  previewId: number;
}

/** Request: list what Freeze BatchNorm would change. Reply: `freezePreview` or `error`. */
export interface RequestFreezePreview {
  type: 'requestFreezePreview';
}

/** Request: apply a Freeze BatchNorm preview as an undoable edit. Reply: `freezeApplied` or `error`. */
export interface ApplyFreezeRequest {
  type: 'applyFreeze';
  previewId: number;
}

/** Event: the user closed the Freeze BatchNorm preview. */
export interface CancelFreezeEvent {
  type: 'cancelFreeze';
  previewId: number;
}

/** Event: the selected layer changed (the host uses it as the default for commands). */
export interface LayerSelectedEvent {
  type: 'layerSelected';
  layer: string | null;
}

/** Request: values for the symbolic input dims (positive integers; missing names mean 1). Reply: `inputDimsSet` or `error`. */
export interface SetInputDimsRequest {
  type: 'setInputDims';
  dims: Record<string, number>;
}

/** Request: plan a doctor fix (a finding's `fix`) and start verifying it. Reply: `fixPreview` or `error`. */
export interface RequestFixPreview {
  type: 'requestFixPreview';
  fixId: string;
  settings: FixSettings;
}

/** Request: apply a fix preview as an undoable edit. Reply: `fixApplied` or `error`. */
export interface ApplyFixRequest {
  type: 'applyFix';
  previewId: number;
}

/** Event: the user closed the fix preview (cancels a running verification). */
export interface CancelFixEvent {
  type: 'cancelFix';
  previewId: number;
}

/** Request: the BatchNorm / Dropout audits at a batch size (null: the model's own). Reply: `audit` or `error`. */
export interface RequestAudit {
  type: 'requestAudit';
  batchSize: number | null;
}

/** Request: per-channel gamma / variance / fold scale of one BatchNorm layer. Reply: `batchNormChannels` or `error`. */
export interface RequestBatchNormChannels {
  type: 'requestBatchNormChannels';
  layer: string;
}

/** Request: the memory and batch-size plan. Reply: `memoryPlan` or `error`. */
export interface RequestMemoryPlan {
  type: 'requestMemoryPlan';
  settings: PlannerSettings;
}

export type WebviewToHost =
  | ReadyRequest
  | RequestFoldPreview
  | ApplyFoldRequest
  | CancelFoldEvent
  | RequestFreezePreview
  | ApplyFreezeRequest
  | CancelFreezeEvent
  | LayerSelectedEvent
  | SetInputDimsRequest
  | RequestFixPreview
  | ApplyFixRequest
  | CancelFixEvent
  | RequestAudit
  | RequestBatchNormChannels
  | RequestMemoryPlan;

// ---------------------------------------------------------------------------------------------------------------
// Request/reply typing

/** For each webview->host request: the replies the host may send. */
export interface WebviewRequestReplies {
  ready: InitMessage;
  requestFoldPreview: FoldPreviewMessage | ErrorReplyMessage;
  applyFold: FoldAppliedMessage | ErrorReplyMessage;
  requestFreezePreview: FreezePreviewMessage | ErrorReplyMessage;
  applyFreeze: FreezeAppliedMessage | ErrorReplyMessage;
  setInputDims: InputDimsSetMessage | ErrorReplyMessage;
  requestFixPreview: FixPreviewMessage | ErrorReplyMessage;
  applyFix: FixAppliedMessage | ErrorReplyMessage;
  requestAudit: AuditMessage | ErrorReplyMessage;
  requestBatchNormChannels: BatchNormChannelsMessage | ErrorReplyMessage;
  requestMemoryPlan: MemoryPlanMessage | ErrorReplyMessage;
}

export type WebviewRequest = Extract<WebviewToHost, { type: keyof WebviewRequestReplies }>;
export type WebviewEvent = Exclude<WebviewToHost, WebviewRequest>;
export type ReplyTo<R extends WebviewRequest> = WebviewRequestReplies[R['type']];

const HOST_TO_WEBVIEW_TYPES: ReadonlySet<string> = new Set<HostToWebview['type']>([
  'init', 'documentChanged', 'loadError', 'revealLayer', 'foldPreview', 'foldVerification', 'foldClosed',
  'foldApplied', 'freezePreview', 'freezeClosed', 'freezeApplied', 'inputDimsSet', 'fixPreview', 'fixVerification',
  'fixClosed', 'fixApplied', 'audit', 'batchNormChannels', 'memoryPlan', 'error',
]);
const WEBVIEW_TO_HOST_TYPES: ReadonlySet<string> = new Set<WebviewToHost['type']>([
  'ready', 'requestFoldPreview', 'applyFold', 'cancelFold', 'requestFreezePreview', 'applyFreeze', 'cancelFreeze',
  'layerSelected', 'setInputDims', 'requestFixPreview', 'applyFix', 'cancelFix', 'requestAudit', 'requestBatchNormChannels',
  'requestMemoryPlan',
]);

function isRecord(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null;
}

function isEnvelopeOf(x: unknown, types: ReadonlySet<string>): boolean {
  if (!isRecord(x)) return false;
  if (x.messageId !== undefined && typeof x.messageId !== 'number') return false;
  if (x.inReplyTo !== undefined && typeof x.inReplyTo !== 'number') return false;
  const body = x.body;
  return isRecord(body) && typeof body.type === 'string' && types.has(body.type);
}

/** Structural check of a message received by the webview (postMessage data is untyped). */
export function isHostToWebviewEnvelope(x: unknown): x is Envelope<HostToWebview> {
  return isEnvelopeOf(x, HOST_TO_WEBVIEW_TYPES);
}

/** Structural check of a message received by the host. */
export function isWebviewToHostEnvelope(x: unknown): x is Envelope<WebviewToHost> {
  return isEnvelopeOf(x, WEBVIEW_TO_HOST_TYPES);
}
