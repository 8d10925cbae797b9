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
