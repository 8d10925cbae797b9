/**
 * The format-neutral view of a model that analyses work on: layers with canonical op names and weights by
 * role with their channel axis. Each format builds one from its native representation; tensor data is read
 * on demand (`read()`), so building a view costs nothing for large models.
 */
import type { CanonicalOp, Finding, ModelFormat, ModelSummary, WeightRole } from '../types';

export interface WeightView {
  name: string;
  role: WeightRole;
  dtype: string;
  shape: number[];
  /** axis of output channels (kernels) or channels (BN parameters); null if none */
  channelAxis: number | null;
  /**
   * ConvTranspose-style kernels keep output channels on axis 1 *per group*: output channel of element
   * (i on axis 0, j on axis 1) is floor(i / (shape[0] / groups)) * shape[1] + j. 1 otherwise.
   */
  groups: number;
  /**
   * the layout per-channel statistics use when it differs from `shape` (channelAxis refers to it): Keras
   * depthwise kernels [kh, kw, in, mult] are viewed as [kh, kw, in * mult] (output channel in * mult + m)
   */
  statsShape?: number[];
  /** stored quantized (TF.js): values are dequantized for every analysis */
  quantized?: 'uint8' | 'uint16' | 'float16';
  source: 'initializer' | 'constant' | 'external';
  bytes: number;
  /** the values as float32 (dequantized / converted) in a fresh array; throws a one-line error if unreadable */
  read(): Float32Array;
  /**
   * The values as float32 without allocating when possible (a view into the file buffer or a shared scratch
   * buffer): valid only until the next peek() of any weight, never to be kept or modified.
   */
  peek(): Float32Array;
  /**
   * Where the float32 values already sit in shared memory (a model file read into a SharedArrayBuffer), so a
   * worker thread can read them without a copy; null/absent otherwise. `byteOffset` may be unaligned.
   */
  shared?(): SharedFloat32 | null;
}

export interface SharedFloat32 {
  buffer: SharedArrayBuffer;
  byteOffset: number;
  /** number of float32 elements */
  length: number;
}

export interface LayerView {
  name: string;
  index: number;
  op: CanonicalOp;
  nativeOp: string;
  inputs: string[];
  outputs: string[];
  weights: WeightView[];
  outputShape: (number | null)[] | null;
  macs: number | null;
  /** BatchNorm only */
  epsilon?: number;
  trainingMode?: boolean;
}

export interface GraphView {
  format: ModelFormat;
  summary: ModelSummary;
  layers: LayerView[];
  /** format-specific findings (e.g. BatchNorm already fused into convolutions in a TF.js graph model) */
  findings?: Finding[];
}
