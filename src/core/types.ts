/**
 * Public report types of the core. Field names are snake_case because these objects ARE the CLI's JSON
 * contract (`model-surgeon inspect --json` prints an InspectReport as it is) and what the webview receives.
 * Summaries only: no whole tensors ever travel in these objects.
 */

export type ModelFormat = 'onnx' | 'tfjs-layers' | 'tfjs-graph' | 'keras-h5' | 'keras';

/** Canonical op names shared by every format. Unknown native ops keep their native name. */
export type CanonicalOp =
  | 'Conv' | 'ConvTranspose' | 'DepthwiseConv' | 'Dense' | 'BatchNorm' | 'Relu' | 'Relu6' | 'LeakyRelu'
  | 'Selu' | 'Elu' | 'Gelu' | 'Sigmoid' | 'Tanh' | 'Softmax' | 'Dropout' | 'Add' | 'Mul' | 'Sub' | 'Div'
  | 'Concat' | 'MaxPool' | 'AveragePool' | 'GlobalAveragePool' | 'GlobalMaxPool' | 'Flatten' | 'Reshape'
  | 'Transpose' | 'Pad' | 'Resize' | 'Clip' | 'HardSigmoid' | 'HardSwish' | 'Identity' | 'Constant'
  | 'Shape' | 'Gather' | 'Slice' | 'Squeeze' | 'Unsqueeze' | 'ReduceMean' | 'LayerNorm' | 'GroupNorm'
  | 'InstanceNorm' | 'MatMul' | 'Upsample' | 'Split' | (string & {});

export type WeightRole = 'kernel' | 'bias' | 'gamma' | 'beta' | 'mean' | 'variance' | 'weight';

export type Severity = 'error' | 'warning' | 'info';

export interface Histogram {
  min: number;
  max: number;
  /** equal-width bins over [min, max] */
  counts: number[];
}

export interface WeightStats {
  count: number;
  mean: number;
  std: number;
  min: number;
  max: number;
  /** fraction of elements exactly 0 */
  zero_fraction: number;
  /** NaN and infinite elements (left out of every other statistic) */
  non_finite: number;
  /** fraction with |x| <= 1e-6 * max|x| (and exactly-zero ones) */
  near_zero_fraction: number;
  histogram: Histogram;
  /** L2 norm per output channel (along channel_axis); null when the tensor has no channel axis */
  channel_l2: number[] | null;
}

export interface TensorSummary {
  name: string;
  role: WeightRole;
  dtype: string;
  shape: number[];
  /** axis holding output channels (kernel) or channels (BN params); null if none */
  channel_axis: number | null;
  bytes: number;
  /** where the data lives: initializer, Constant node, external file */
  source: 'initializer' | 'constant' | 'external';
  /** TF.js weights stored quantized (uint8/uint16 affine, or float16); statistics are of the dequantized values */
  quantized?: 'uint8' | 'uint16' | 'float16';
  stats: WeightStats | null;
}

export interface RangeSummary {
  mean: number;
  min: number;
  max: number;
}

export interface BatchNormSummary {
  channels: number;
  epsilon: number;
  gamma: RangeSummary | null;
  beta: RangeSummary | null;
  running_mean: RangeSummary | null;
  running_var: RangeSummary | null;
  /** channels whose running variance is ~0 (<= 1e-8) */
  low_variance_channels: number[];
  /** channels whose |gamma| is ~0 (<= 1e-6) */
  low_gamma_channels: number[];
  negative_gamma_channels: number;
  /** max over channels of |gamma| / sqrt(var + eps) */
  max_fold_scale: number | null;
  /** ONNX training_mode=1 or extra outputs */
  training_mode: boolean;
}

export interface LayerReport {
  /** unique layer name (node name, or a generated one `op_index` when the file has none) */
  name: string;
  index: number;
  op: CanonicalOp;
  /** the format's own op type, e.g. ONNX "Gemm", Keras "Conv2D" */
  native_op: string;
  inputs: string[];
  outputs: string[];
  params: number;
  /** multiply-accumulates for one inference at the probe input shape; null when shapes are unknown */
  macs: number | null;
  /** statically inferred shape of the first output; null entries are unknown dims; null if unknown */
  output_shape: (number | null)[] | null;
  weights: TensorSummary[];
  batchnorm: BatchNormSummary | null;
}

export interface Finding {
  severity: Severity;
  code: string;
  message: string;
  layers: string[];
  /** id of the rewrite that fixes it for this model, when one exists (e.g. 'fold-batchnorm', 'remove-dropout') */
  fix?: string;
  /** every fix id that addresses it, best first, including ones for other formats (e.g. 'freeze-batchnorm') */
  fixes?: string[];
  /** numbers behind the message (effective batch, rate, channels...), for tooltips and CI scripts */
  details?: Record<string, number | string>;
}

export interface ValueSummary {
  name: string;
  dtype: string;
  /** numbers for static dims, strings for symbolic ones, null for unknown */
  shape: (number | string | null)[] | null;
}

export interface ModelSummary {
  ir_version: number | null;
  opsets: { domain: string; version: number }[];
  producer: string;
  producer_version: string;
  graph_name: string;
  inputs: ValueSummary[];
  outputs: ValueSummary[];
  /** size of the file(s) on disk, null for an unsaved model */
  file_bytes: number | null;
  weight_bytes: number;
}

export interface InspectReport {
  format: ModelFormat;
  model: ModelSummary;
  layers: LayerReport[];
  totals: { params: number; macs: number | null; layers: number };
  findings: Finding[];
}

export interface SkippedCandidate {
  layer: string;
  reason: string;
}

export interface FoldCandidate {
  /** the BatchNorm layer */
  batchnorm: string;
  /** the layer it folds into */
  into: string;
  /** op of the layer it folds into */
  into_op: string;
  /** 'backward' (into the layer before it, the default) or 'forward' (into the layer(s) after it) */
  direction?: 'backward' | 'forward';
  /** e.g. that a shared weight is copied, or that it folds once the BatchNorm next to it has folded (chains) */
  note?: string;
}

export interface FoldPlan {
  candidates: FoldCandidate[];
  skipped: SkippedCandidate[];
}

export interface SizeDelta {
  params_before: number;
  params_after: number;
  bytes_before: number;
  bytes_after: number;
  layers_before: number;
  layers_after: number;
}

export interface OutputError {
  name: string;
  max_abs_error: number;
  max_rel_error: number;
  /** largest |value| of this output in the original model (what max_rel_error is relative to) */
  max_reference: number;
}

export interface VerifyReport {
  max_abs_error: number;
  max_rel_error: number;
  samples: number;
  seed: number;
  engine: string;
  outputs: OutputError[];
  /** the concrete input shapes used (symbolic dims resolved) */
  input_shapes: Record<string, number[]>;
}

export interface VerifyOptions {
  samples?: number;
  seed?: number;
  /** values for symbolic input dims by name, e.g. { batch: 1, height: 48 }; unknown symbolic dims default to 1 */
  dims?: Record<string, number>;
  signal?: AbortSignal;
}

// ------------------------------------------------------------------------------------------------------------
// BatchNorm / Dropout doctor and memory planner (issue #4)
// ------------------------------------------------------------------------------------------------------------

/** Fix ids used in findings. Those marked (Keras/TF.js) are offered for those formats only. */
export type FixId =
  | 'fold-batchnorm'
  | 'fold-batchnorm-forward'
  | 'batchnorm-to-affine'
  | 'batchnorm-eval-mode'
  | 'remove-dropout'
  | 'freeze-batchnorm'
  | 'replace-batchnorm-groupnorm'
  /** Keras/TF.js: change the rate of Dropout layers (a training-time setting; inference unchanged) */
  | 'set-dropout-rate';

/** A generic rewrite plan (the fold rewrites keep using FoldPlan). */
export interface RewriteCandidate {
  /** the layer that is removed or replaced */
  layer: string;
  /** what happens to it, in words (e.g. 'removed; readers read its input') */
  action: string;
  note?: string;
}

export interface RewritePlan {
  /** fix id of the rewrite */
  rewrite: FixId;
  candidates: RewriteCandidate[];
  skipped: SkippedCandidate[];
}

/** where a BatchNorm's statistics come from: how many values per channel one batch gives it */
export type BatchNormContext =
  /** after a conv-like layer: N x spatial positions per channel */
  | 'spatial'
  /** spatial dims that are all 1 at this input size (small input or deep downsampling) */
  | 'spatial-1x1'
  /** after global pooling (GlobalAveragePool, ReduceMean over H, W...): 1x1 at any input size */
  | 'global-pooled'
  /** on a [N, C] tensor made by Flatten / Reshape */
  | 'flattened'
  /** on a [N, C] tensor made by a Dense / Gemm / MatMul layer */
  | 'dense'
  /** on another [N, C] tensor (e.g. a graph input) */
  | 'vector'
  /** shapes unknown (symbolic dims without values) */
  | 'unknown';

export interface BatchNormAuditRow {
  layer: string;
  channels: number;
  /** shape of its input at the audited input size (null entries: unknown) */
  input_shape: (number | null)[] | null;
  context: BatchNormContext;
  /** values per channel its batch statistics are computed over in training: N x prod(spatial); null if unknown */
  effective_batch: number | null;
  /** the layer whose output it reads (null: a graph input) and that layer's op */
  producer: string | null;
  producer_op: string | null;
  training_mode: boolean;
  /** how it can be removed: 'backward' / 'forward' fold, 'affine' (Mul+Add), or null */
  fold: 'backward' | 'forward' | 'affine' | null;
  /** the layer(s) it folds into */
  fold_into: string | null;
  /** why it cannot fold backward / forward (null when it can, or when no plan was given) */
  backward_blocker: string | null;
  forward_blocker: string | null;
  low_variance_channels: number[];
  low_gamma_channels: number[];
  negative_gamma_channels: number[];
  /** max over channels of |gamma| / sqrt(var + eps) and the channel where it occurs */
  max_fold_scale: number | null;
  max_fold_scale_channel: number | null;
}

export interface BatchNormAuditReport {
  /** the batch size the effective batches are computed for */
  batch_size: number;
  /** where batch_size came from: the model's static input shape, the caller, or assumed 1 (symbolic batch) */
  batch_source: 'model' | 'option' | 'assumed';
  /** concrete input shapes used (null dims: symbolic without a value) */
  input_shapes: Record<string, (number | null)[] | null>;
  rows: BatchNormAuditRow[];
  findings: Finding[];
}

export type DropoutMode = 'inference' | 'training' | 'dynamic';

export interface DropoutAuditRow {
  layer: string;
  /** drop probability p */
  rate: number | null;
  /** 'inference': identity at inference; 'training': drops at random at inference; 'dynamic': a graph input decides */
  mode: DropoutMode;
  /** ONNX opset < 7: the is_test attribute (null when not legacy) */
  legacy_is_test: number | null;
  /** its mask output is read by a layer or is a graph output */
  mask_used: boolean;
  /** first BatchNorm layer(s) downstream of it (its training-time variance shift reaches them) */
  feeds_batchnorm: string[];
  /** layers between it and that BatchNorm (0 = directly) */
  hops_to_batchnorm: number | null;
  removable: boolean;
  /** why it cannot be removed (null when it can) */
  blocker: string | null;
  /** Keras/TF.js: the layer class (Dropout, SpatialDropout2D, GaussianDropout, AlphaDropout, ...) */
  native_op?: string;
}

export interface DropoutAuditReport {
  rows: DropoutAuditRow[];
  findings: Finding[];
}

export type OptimizerKind = 'none' | 'sgd' | 'sgd-momentum' | 'adam';

export interface MemoryPlanRow {
  layer: string;
  op: string;
  output_shape: (number | null)[] | null;
  /** bytes of the tensors it creates (views/aliases such as Flatten, Reshape, inference Dropout: 0) */
  output_bytes: number;
  /** inference: bytes of all live activations while it runs (its inputs + outputs + everything still needed later) */
  live_bytes: number;
  /** training: bytes it adds to what is kept for backward (tensors already kept by an earlier layer count once) */
  saved_bytes: number;
  /** what it keeps for backward, e.g. ['input conv1_out', 'mask'] */
  saved: string[];
  /** running total of saved_bytes (the activation memory at the end of the forward pass) */
  saved_total_bytes: number;
  params: number;
  param_bytes: number;
}

export interface MemoryEstimate {
  /** weights and BatchNorm buffers */
  param_bytes: number;
  /** inference: peak of live activations over the topological order (graph inputs included) */
  activation_bytes: number;
  /** training only: gradients (one per trainable parameter) */
  gradient_bytes: number;
  /** training only: optimizer state (SGD momentum 1x, Adam 2x trainable parameters) */
  optimizer_bytes: number;
  /** training only: largest gradient in flight during backward (grad of a layer's output + grad of its input) */
  workspace_bytes: number;
  total_bytes: number;
}

export interface CropRow {
  /** [H, W] of the crop, or of the full image for the last row */
  size: [number, number];
  full_image: boolean;
  pixels: number;
  training_bytes_per_image: number;
  inference_bytes_per_image: number;
  /** largest batch that fits the budget in training (null without a budget) */
  max_batch_training: number | null;
  /** labelled pixels one training step sees at that batch (max_batch_training x pixels) */
  pixels_per_step: number | null;
  /** crops it takes to tile one full image without overlap */
  crops_per_image: number;
}

export interface MemoryPlanReport {
  input_shapes: Record<string, number[]>;
  batch_size: number;
  /** bytes per activation element (4 = float32, 2 = float16) */
  dtype_bytes: number;
  optimizer: OptimizerKind;
  params: number;
  trainable_params: number;
  layers: MemoryPlanRow[];
  /** the layer where inference memory peaks */
  peak_layer: string | null;
  inference: MemoryEstimate;
  training: MemoryEstimate;
  /** memory that grows with each sample of a batch, and the part that does not (from the plan at N and N+1) */
  per_sample: { inference_bytes: number; training_bytes: number };
  fixed: { inference_bytes: number; training_bytes: number };
  budget: { bytes: number; max_batch_inference: number; max_batch_training: number } | null;
  crops: CropRow[] | null;
  /** layers whose output shape is unknown at this size (counted as 0 bytes) */
  unknown_layers: string[];
  /** what is counted and what is not */
  notes: string[];
}

// ------------------------------------------------------------------------------------------------------------
// Activation probing, structured pruning, activation swap (issue #5)
// ------------------------------------------------------------------------------------------------------------

/** Per-channel activation statistics of one probed tensor, over every sample and position. */
export interface ProbeLayerReport {
  /** layer name (for `values`: the tensor name) */
  name: string;
  /** canonical op of the layer that produced it (e.g. Relu, Relu6, LeakyRelu) */
  op: string;
  /** the probed tensor */
  output: string;
  /** its shape in the first batch run */
  shape: number[];
  /** axis of the channels: 1 for [N, C, ...] conv outputs, the last for [N, features] / [N, T, features] */
  channel_axis: number;
  channels: number;
  /** never positive on any probe (or APoZ >= the threshold when one was set) */
  dead: number[];
  /** the same value everywhere on every probe, and not dead */
  constant: number[];
  /** the value of each `constant` channel, in the same order */
  constant_values: number[];
  /** fraction of values <= 0, per channel */
  apoz: number[];
  mean: number[];
  /** population variance */
  var: number[];
  max: number[];
  min: number[];
  /** over all channels: the depth profile */
  layer_mean: number;
  layer_var: number;
  /** values seen per channel (samples x positions) */
  count: number;
}

export interface ProbeReport {
  /** activation layers in graph order */
  layers: ProbeLayerReport[];
  /** extra tensors probed on request (e.g. pruning's observation points); absent when none */
  values?: ProbeLayerReport[];
  samples: number;
  batch_size: number;
  /** where the samples came from, in words */
  source: string;
  input_shapes: Record<string, number[]>;
  /** APoZ at or above which a channel counts as dead (1: never positive) */
  apoz_threshold: number;
  engine: string;
  seconds: number;
  notes: string[];
}

export type PruneCriterion = 'dead' | 'l1' | 'l2' | 'bn-gamma' | 'apoz';

/** One set of coupled layers whose output channels are pruned together (a dependency group). */
export interface PruneGroup {
  /** layers whose output channels belong to the group (producers; coupled through Add / Mul / Concat ...) */
  layers: string[];
  /** channels (coupled channel sets) in the group */
  channels: number;
  /** channels that may be removed (not blocked) */
  prunable: number;
  /** removed channels, as indices into the first layer's output channels */
  removed: number[];
  /** why nothing (or not everything selected) is removed, when that is the case */
  reason?: string;
}

export interface PrunePlan {
  criterion: PruneCriterion;
  scope: 'layer' | 'global';
  ratio: number | null;
  threshold: number | null;
  /** every removal is exact on the probe inputs (criterion 'dead') */
  exact: boolean;
  groups: PruneGroup[];
  /** output channels removed per layer (producers and depthwise convolutions) */
  removed: Record<string, number>;
  /** layers that read removed channels and what was folded into their bias */
  consumers: { layer: string; removed_inputs: number; folded_constants: number }[];
  skipped: SkippedCandidate[];
  notes: string[];
}

export interface PruneSize {
  params_before: number;
  params_after: number;
  /** null when a shape is unknown */
  macs_before: number | null;
  macs_after: number | null;
  bytes_before: number;
  bytes_after: number;
}

/** What a probe says about one depth of the network, before and after a rewrite */
export interface DepthProfileRow {
  layer: string;
  op_before: string;
  op_after: string | null;
  mean_before: number;
  var_before: number;
  mean_after: number | null;
  var_after: number | null;
}

export interface SwapSummary {
  /** activations replaced */
  swapped: number;
  /** BatchNorm layers removed (folded) by the SELU recipe */
  removed_bn: number;
  /** Dropout layers that would become AlphaDropout (identity at inference in both cases: left as they are) */
  replaced_dropout: number;
  /** activations left alone, with the reason */
  skipped: SkippedCandidate[];
  notes: string[];
}

/** Per-channel parameters of ONE BatchNorm layer (small vectors; never a whole weight tensor of another layer). */
export interface BatchNormChannels {
  layer: string;
  channels: number;
  epsilon: number;
  /** 1 per channel when the layer has no scale (Keras scale: false) */
  gamma: number[];
  beta: number[] | null;
  mean: number[] | null;
  variance: number[];
  /** |gamma| / sqrt(variance + epsilon): how much folding scales the producer's weights per channel */
  foldScale: number[];
}
