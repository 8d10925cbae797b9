/**
 * Memory and batch-size planner (format-neutral). Shapes are re-inferred for every input size / batch it
 * looks at through `viewAt`, so everything is exact for the graph as written, not extrapolated from a
 * layer table.
 *
 * Inference: walk the layers in topological order; a tensor is allocated when its layer runs and freed
 * after its last reader. The peak of the live total (graph inputs included: the caller holds them) is the
 * activation memory. Views share their input's memory (Flatten, Reshape, Squeeze, Unsqueeze, Identity and
 * inference-mode Dropout).
 *
 * Training: what autograd keeps for the backward pass, per op, following PyTorch's derivative formulas
 * (tools/autograd/derivatives.yaml): Conv/ConvTranspose/Gemm/MatMul keep their input; BatchNorm keeps its
 * input plus a per-channel mean and 1/std; ReLU/Sigmoid/Tanh/Softmax keep their output; other activations
 * keep their input; MaxPool keeps its input and int64 indices of its output's size; AveragePool keeps its
 * input; Dropout keeps a mask (as PyTorch on CPU: one float per element; CUDA's fused kernel keeps 1 byte);
 * Mul/Div keep the activation operands that the other operand's gradient needs; Add, Concat, reshapes,
 * global average pooling (a mean) and Resize keep nothing. A tensor kept by two layers (e.g. a ReLU output
 * that the next conv also keeps) counts once. Unknown ops keep their inputs (said in `notes`).
 * Training total = weights + gradients + optimizer state + kept activations (+ the graph inputs) + the
 * largest gradient pair in flight during backward. Parameters are the weights by role (kernel, bias, BN
 * gamma/beta/mean/variance; mean/variance are buffers without gradients) plus PRelu slopes and non-scalar
 * constant operands of Mul/Add/Sub/Div; op settings stored as constants (Dropout ratio, Clip bounds, Resize
 * scales, a scalar divisor) are not.
 */
import { ModelError } from '../errors';
import type { CropRow, MemoryEstimate, MemoryPlanReport, MemoryPlanRow, OptimizerKind } from '../types';
import { activationInputs, defaultBatchNormAxis, weightNames, wiring, type DoctorGraphView, type DoctorLayerView } from './doctor-view';

export interface MemoryPlanOptions {
  /** batch size (default: the model's static batch dimension, else 1) */
  batch?: number;
  /** spatial size of rank-4 image inputs (default: the model's static size) */
  height?: number;
  width?: number;
  /** values for symbolic input dims by name */
  dims?: Record<string, number>;
  /** full input shapes (batch/height/width still apply on top) */
  inputShapes?: Record<string, number[]>;
  /** bytes per activation element: 4 (float32, default) or 2 (float16 / bfloat16) */
  dtypeBytes?: number;
  /** default 'adam' */
  optimizer?: OptimizerKind;
  /** memory to fit, e.g. "12GiB", "16 GB", "512MiB" or a number of bytes */
  budget?: number | string;
  /** square crop sizes to compare with the full image, e.g. [224, 320, 512] */
  crops?: number[];
  /** layout of rank-4 inputs (default NCHW for ONNX, NHWC for Keras/TF.js) */
  layout?: 'NCHW' | 'NHWC';
}

export type ViewAt = (inputShapes: Record<string, number[]>) => DoctorGraphView;

export const DEFAULT_CROPS = [224, 320, 512];

const UNITS: Record<string, number> = { b: 1, kb: 1e3, mb: 1e6, gb: 1e9, tb: 1e12, kib: 2 ** 10, mib: 2 ** 20, gib: 2 ** 30, tib: 2 ** 40 };

/** "12GiB" -> 12884901888; "16 GB" -> 16e9; plain numbers are bytes */
export function parseBytes(v: number | string): number {
  if (typeof v === 'number') {
    if (!(v > 0) || !Number.isFinite(v)) throw new ModelError(`memory budget must be a positive number of bytes, not ${v}`);
    return Math.floor(v);
  }
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]i?b|b)?\s*$/i.exec(v);
  if (!m) throw new ModelError(`cannot read memory size '${v}' (examples: 12GiB, 16GB, 512MiB, 1000000)`);
  const bytes = Number(m[1]) * UNITS[(m[2] ?? 'b').toLowerCase()];
  if (!(bytes > 0)) throw new ModelError(`memory budget must be positive, not '${v}'`);
  return Math.floor(bytes);
}

const VIEW_OPS = new Set(['Flatten', 'Reshape', 'Squeeze', 'Unsqueeze', 'Identity']);
const KEEP_INPUTS = new Set(['Conv', 'ConvTranspose', 'DepthwiseConv', 'Dense', 'MatMul', 'Gemm', 'Conv1D', 'Conv2D', 'SeparableConv2D']);
const KEEP_OUTPUT = new Set(['Relu', 'Sigmoid', 'Tanh', 'Softmax', 'LogSoftmax']);
const KEEP_INPUT0 = new Set([
  'LeakyRelu', 'Elu', 'Selu', 'Gelu', 'HardSigmoid', 'HardSwish', 'Clip', 'Relu6', 'PRelu', 'Softplus', 'Mish', 'Swish',
  'AveragePool', 'LayerNorm', 'GroupNorm', 'InstanceNorm', 'Erf', 'Sqrt', 'Exp', 'Log', 'Abs', 'Neg', 'Reciprocal',
]);
const KEEP_NOTHING = new Set([
  'Add', 'Sub', 'Concat', 'Split', 'Slice', 'Pad', 'Flatten', 'Reshape', 'Transpose', 'Squeeze', 'Unsqueeze', 'Identity',
  'Resize', 'Upsample', 'Shape', 'Cast', 'Gather', 'Constant', 'ConstantOfShape', 'Expand', 'Tile', 'GlobalAveragePool',
  'ReduceMean', 'ReduceSum', 'Range', 'Equal', 'Where', 'Not', 'Less', 'Greater', 'NonZero', 'Floor', 'Ceil', 'Round',
]);

interface Evaluation {
  rows: MemoryPlanRow[];
  peak: number;
  peakLayer: string | null;
  saved: number;
  workspace: number;
  params: number;
  paramBytes: number;
  trainable: number;
  trainableBytes: number;
  unknown: string[];
  unknownOps: Set<string>;
}

function evaluate(view: DoctorGraphView, dtypeBytes: number): Evaluation {
  const weights = weightNames(view);
  const { readers, outputs: graphOutputs } = wiring(view);
  const numel = new Map<string, number | null>();
  const count = (s: (number | null)[] | null | undefined): number | null => (s && !s.includes(null) ? (s as number[]).reduce((p, v) => p * v, 1) : null);
  for (const [name, s] of Object.entries(view.inputShapes ?? {})) numel.set(name, count(s));
  for (const l of view.layers) {
    l.outputs.forEach((o, k) => {
      if (o) numel.set(o, count(l.outputShapes ? l.outputShapes[k] : k === 0 ? l.outputShape : null));
    });
  }
  const bytes = (name: string) => (numel.get(name) ?? 0) * dtypeBytes;
  // storage roots: views read their input's memory
  const root = new Map<string, string>();
  const rootOf = (n: string): string => root.get(n) ?? n;
  const isView = (l: DoctorLayerView) => VIEW_OPS.has(l.op) || (l.op === 'Dropout' && (l.dropout?.mode ?? 'inference') === 'inference');
  // in training Dropout makes a new tensor: only true views share storage there
  const trainRoot = new Map<string, string>();
  const trainRootOf = (n: string): string => trainRoot.get(n) ?? n;
  for (const l of view.layers) {
    const src = activationInputs(l, weights)[0];
    if (!l.outputs[0] || !src) continue;
    if (isView(l)) root.set(l.outputs[0], rootOf(src));
    if (VIEW_OPS.has(l.op)) trainRoot.set(l.outputs[0], trainRootOf(src));
  }
  const graphInputs = Object.keys(view.inputShapes ?? {}).filter((n) => !weights.has(n));
  const lastUse = new Map<string, number>();
  view.layers.forEach((l, i) => {
    for (const a of activationInputs(l, weights)) lastUse.set(rootOf(a), i);
  });
  for (const o of graphOutputs) lastUse.set(rootOf(o), Infinity);
  for (const n of graphInputs) lastUse.set(rootOf(n), Infinity);

  let live = 0;
  const counted = new Set<string>();
  for (const n of graphInputs) {
    if (!counted.has(rootOf(n))) {
      counted.add(rootOf(n));
      live += bytes(rootOf(n));
    }
  }
  const savedKeys = new Set<string>();
  let savedTotal = 0;
  // the batch is in memory in training whether or not a layer keeps it
  for (const n of graphInputs) {
    const k = `v:${trainRootOf(n)}`;
    if (!savedKeys.has(k)) {
      savedKeys.add(k);
      savedTotal += bytes(n);
    }
  }
  let peak = live;
  let peakLayer: string | null = null;
  let workspace = 0;
  const unknown: string[] = [];
  const unknownOps = new Set<string>();
  const rows: MemoryPlanRow[] = [];
  const seenWeights = new Set<string>();
  let params = 0;
  let paramBytes = 0;
  let trainable = 0;
  let trainableBytes = 0;

  view.layers.forEach((l, i) => {
    const acts = activationInputs(l, weights);
    if (l.outputs[0] && numel.get(l.outputs[0]) === null && l.op !== 'Constant') unknown.push(l.name);
    // inference
    const view_ = isView(l);
    let created = 0;
    l.outputs.forEach((o, k) => {
      if (!o || (view_ && k === 0)) return;
      const used = (readers.get(o)?.length ?? 0) > 0 || graphOutputs.has(o);
      if (used || k === 0) created += bytes(o);
    });
    const during = live + created;
    if (during > peak) {
      peak = during;
      peakLayer = l.name;
    }
    live = during;
    l.outputs.forEach((o, k) => {
      if (!o || (view_ && k === 0)) return;
      const used = (readers.get(o)?.length ?? 0) > 0 || graphOutputs.has(o);
      if (!used && k === 0) live -= bytes(o);
    });
    const freed = new Set<string>();
    for (const a of acts) {
      const r = rootOf(a);
      if (lastUse.get(r) === i && !freed.has(r)) {
        freed.add(r);
        live -= bytes(r);
      }
    }
    // training: what this layer keeps for backward
    const items = keptFor(l, acts, weights, dtypeBytes, bytes, numel, view, unknownOps);
    let added = 0;
    const labels: string[] = [];
    for (const it of items) {
      const key = it.value ? `v:${trainRootOf(it.value)}` : `l:${l.name}:${it.label}`;
      labels.push(it.label);
      if (savedKeys.has(key)) continue;
      savedKeys.add(key);
      added += it.bytes;
    }
    savedTotal += added;
    const grads = acts.reduce((s, a) => s + bytes(a), 0) + (l.outputs[0] ? bytes(l.outputs[0]) : 0);
    if (grads > workspace) workspace = grads;
    let lp = 0;
    let lb = 0;
    for (const w of l.weights) {
      const n = w.shape.reduce((p, v) => p * v, 1);
      if (!isParameter(l, w.role, n)) continue;
      lp += n;
      lb += w.bytes;
      if (seenWeights.has(w.name)) continue;
      seenWeights.add(w.name);
      params += n;
      paramBytes += w.bytes;
      if (w.role !== 'mean' && w.role !== 'variance' && /float/.test(w.dtype)) {
        trainable += n;
        trainableBytes += w.bytes;
      }
    }
    rows.push({
      layer: l.name,
      op: l.op,
      output_shape: l.outputShape,
      output_bytes: created,
      live_bytes: during,
      saved_bytes: added,
      saved: labels,
      saved_total_bytes: savedTotal,
      params: lp,
      param_bytes: lb,
    });
  });
  return { rows, peak, peakLayer, saved: savedTotal, workspace, params, paramBytes, trainable, trainableBytes, unknown, unknownOps };
}

/** op-specific constants (Dropout ratio, Clip bounds, Resize scales, a scalar divisor) are no parameters */
const LEARNED_OPERAND = new Set(['PRelu', 'Mul', 'Add', 'Sub', 'Div']);
function isParameter(l: DoctorLayerView, role: string, numel: number): boolean {
  if (role !== 'weight') return true;
  return l.op === 'PRelu' || (LEARNED_OPERAND.has(l.op) && numel > 1);
}

interface Kept {
  /** an activation (deduplicated by storage) or null for a layer-private tensor (mask, indices, statistics) */
  value: string | null;
  bytes: number;
  label: string;
}

function keptFor(
  l: DoctorLayerView,
  acts: string[],
  weights: Set<string>,
  dtypeBytes: number,
  bytes: (n: string) => number,
  numel: Map<string, number | null>,
  view: DoctorGraphView,
  unknownOps: Set<string>,
): Kept[] {
  const input = (a: string | undefined): Kept[] => (a ? [{ value: a, bytes: bytes(a), label: `input ${a}` }] : []);
  const output: Kept[] = l.outputs[0] ? [{ value: l.outputs[0], bytes: bytes(l.outputs[0]), label: `output ${l.outputs[0]}` }] : [];
  const outNumel = numel.get(l.outputs[0] ?? '') ?? 0;
  const op = l.op;
  if (KEEP_INPUTS.has(op) || KEEP_INPUTS.has(l.nativeOp)) return acts.flatMap((a) => input(a));
  if (op === 'BatchNorm') {
    const shape = l.outputShape;
    let axis = l.axis ?? defaultBatchNormAxis(view);
    if (shape && axis < 0) axis += shape.length;
    const c = l.weights.find((w) => w.role === 'mean' || w.role === 'variance' || w.role === 'gamma')?.shape.reduce((p, v) => p * v, 1) ?? (shape?.[axis] ?? 0);
    return [...input(acts[0]), { value: null, bytes: 2 * c * dtypeBytes, label: 'batch mean and 1/std per channel' }];
  }
  if (KEEP_OUTPUT.has(op)) return output;
  if (KEEP_INPUT0.has(op)) return input(acts[0]);
  if (op === 'MaxPool' || op === 'GlobalMaxPool') return [...input(acts[0]), { value: null, bytes: outNumel * 8, label: 'int64 indices of the maxima' }];
  if (op === 'Dropout') return [{ value: null, bytes: outNumel * dtypeBytes, label: 'dropout mask' }];
  if (op === 'Mul' || op === 'Div') {
    // d/da needs b and d/db needs a; a constant scalar operand needs nothing kept, a constant tensor
    // (possibly a learned scale) needs the activation it multiplies
    const constTensor = l.inputs.some((i) => i && weights.has(i) && (l.weights.find((w) => w.name === i)?.shape.reduce((p, v) => p * v, 1) ?? 1) > 1);
    if (acts.length >= 2 || constTensor) return acts.flatMap((a) => input(a));
    return [];
  }
  if (KEEP_NOTHING.has(op) || VIEW_OPS.has(op)) return [];
  unknownOps.add(op);
  return acts.flatMap((a) => input(a));
}

interface Resolved {
  shapes: Record<string, number[]>;
  batch: number;
  size: [number, number] | null;
}

function resolveInputs(base: DoctorGraphView, opts: MemoryPlanOptions, override: { batch?: number; size?: [number, number] } = {}): Resolved {
  const layout = opts.layout ?? (base.format === 'onnx' ? 'NCHW' : 'NHWC');
  const [hAxis, wAxis] = layout === 'NCHW' ? [2, 3] : [1, 2];
  const weights = weightNames(base);
  const shapes: Record<string, number[]> = {};
  let batch: number | null = null;
  let size: [number, number] | null = null;
  for (const input of base.summary.inputs) {
    if (weights.has(input.name)) continue;
    const given = opts.inputShapes?.[input.name];
    const declared = given ?? input.shape;
    if (!declared) throw new ModelError(`input '${input.name}' has no declared shape: give its shape`);
    const dims = declared.map((d) => (typeof d === 'number' ? (d > 0 ? d : null) : d !== null && opts.dims && d in opts.dims ? opts.dims[d] : null));
    if (dims.length > 0) {
      const b = override.batch ?? opts.batch ?? dims[0] ?? 1;
      dims[0] = b;
      batch ??= b;
    }
    if (dims.length === 4) {
      const h = override.size?.[0] ?? opts.height;
      const w = override.size?.[1] ?? opts.width;
      if (h !== undefined) dims[hAxis] = h;
      if (w !== undefined) dims[wAxis] = w;
      if (dims[hAxis] !== null && dims[wAxis] !== null) size ??= [dims[hAxis] as number, dims[wAxis] as number];
    }
    const k = dims.indexOf(null);
    if (k >= 0) {
      const d = declared[k];
      throw new ModelError(`input '${input.name}' has an unknown dimension ${k}${typeof d === 'string' ? ` ('${d}')` : ''}: give its size (batch, height/width or --dim ${typeof d === 'string' ? d : 'NAME'}=N)`);
    }
    shapes[input.name] = dims as number[];
  }
  return { shapes, batch: batch ?? 1, size };
}

function estimate(e: Evaluation, optimizer: OptimizerKind): { inference: MemoryEstimate; training: MemoryEstimate } {
  const grads = e.trainableBytes;
  const opt = optimizer === 'adam' ? 2 * e.trainableBytes : optimizer === 'sgd-momentum' ? e.trainableBytes : 0;
  return {
    inference: { param_bytes: e.paramBytes, activation_bytes: e.peak, gradient_bytes: 0, optimizer_bytes: 0, workspace_bytes: 0, total_bytes: e.paramBytes + e.peak },
    training: {
      param_bytes: e.paramBytes,
      activation_bytes: e.saved,
      gradient_bytes: grads,
      optimizer_bytes: opt,
      workspace_bytes: e.workspace,
      total_bytes: e.paramBytes + e.saved + grads + opt + e.workspace,
    },
  };
}

const MAX_BATCH = 1 << 20;

export function planMemory(base: DoctorGraphView, viewAt: ViewAt, opts: MemoryPlanOptions = {}): MemoryPlanReport {
  const dtypeBytes = opts.dtypeBytes ?? 4;
  const optimizer = opts.optimizer ?? 'adam';
  const main = resolveInputs(base, opts);
  const evalAt = (batch: number, size?: [number, number]) => {
    const r = resolveInputs(base, opts, size ? { batch, size } : { batch });
    return estimate(evaluate(viewAt(r.shapes), dtypeBytes), optimizer);
  };
  const e = evaluate(viewAt(main.shapes), dtypeBytes);
  const est = estimate(e, optimizer);
  const linear = (batch: number, size?: [number, number]) => {
    const a = batch === main.batch && !size ? est : evalAt(batch, size);
    const b = evalAt(batch + 1, size);
    const perInf = b.inference.total_bytes - a.inference.total_bytes;
    const perTrain = b.training.total_bytes - a.training.total_bytes;
    return {
      per: { inference_bytes: perInf, training_bytes: perTrain },
      fixed: { inference_bytes: a.inference.total_bytes - batch * perInf, training_bytes: a.training.total_bytes - batch * perTrain },
    };
  };
  const lin = linear(main.batch);
  const budgetBytes = opts.budget !== undefined ? parseBytes(opts.budget) : null;
  /** largest batch whose total fits, checked exactly around the linear estimate */
  const maxBatch = (kind: 'inference' | 'training', size?: [number, number]): number => {
    if (budgetBytes === null) return 0;
    const l = size ? linear(1, size) : lin;
    const per = kind === 'inference' ? l.per.inference_bytes : l.per.training_bytes;
    const fixed = kind === 'inference' ? l.fixed.inference_bytes : l.fixed.training_bytes;
    const total = (n: number) => evalAt(n, size)[kind].total_bytes;
    if (per <= 0) return total(1) <= budgetBytes ? MAX_BATCH : 0;
    let n = Math.min(MAX_BATCH, Math.max(0, Math.floor((budgetBytes - fixed) / per)));
    for (let k = 0; k < 64 && n >= 1 && total(n) > budgetBytes; k++) n--;
    for (let k = 0; k < 64 && n < MAX_BATCH && total(n + 1) <= budgetBytes; k++) n++;
    return n;
  };
  let crops: CropRow[] | null = null;
  if (opts.crops && opts.crops.length && main.size) {
    const full = main.size;
    const sizes: { size: [number, number]; full: boolean }[] = [...opts.crops.map((c) => ({ size: [c, c] as [number, number], full: false })), { size: full, full: true }];
    crops = sizes.map(({ size, full: isFull }) => {
      const l = linear(1, size);
      const mb = budgetBytes === null ? null : maxBatch('training', size);
      return {
        size,
        full_image: isFull,
        pixels: size[0] * size[1],
        training_bytes_per_image: l.per.training_bytes,
        inference_bytes_per_image: l.per.inference_bytes,
        max_batch_training: mb,
        pixels_per_step: mb === null ? null : mb * size[0] * size[1],
        crops_per_image: Math.ceil(full[0] / size[0]) * Math.ceil(full[1] / size[1]),
      };
    });
  }
  const notes = [
    `activations: ${dtypeBytes}-byte elements; graph inputs count (the caller holds them); Flatten/Reshape/Squeeze/Unsqueeze/Identity and inference Dropout share their input's memory`,
    'inference: a tensor is freed after its last reader; runtime scratch memory (convolution workspaces, im2col buffers), allocator caching and fragmentation are not counted',
    'training: tensors kept for backward as PyTorch keeps them -- inputs of Conv/Gemm/MatMul, BatchNorm input + per-channel mean and 1/std, outputs of ReLU/Sigmoid/Tanh/Softmax, inputs of other activations, MaxPool input + int64 indices, a Dropout mask of one activation element per value (PyTorch on CPU; CUDA keeps 1 byte), the activation operands of Mul/Div; nothing for Add, Concat, reshapes, global average pooling, Resize; a tensor kept twice counts once; the input batch counts',
    `training total = weights + gradients + optimizer state (${optimizer}: ${optimizer === 'adam' ? '2x' : optimizer === 'sgd-momentum' ? '1x' : '0x'} trainable weights) + kept activations + the largest gradient pair in flight during backward; in-place ops, activation checkpointing, mixed precision and framework overhead are not modelled`,
  ];
  if (e.unknownOps.size) notes.push(`ops without a known backward rule, counted as keeping their inputs: ${[...e.unknownOps].join(', ')}`);
  if (e.unknown.length) notes.push(`${e.unknown.length} layer(s) have unknown output shapes at this size and count as 0 bytes`);
  return {
    input_shapes: main.shapes,
    batch_size: main.batch,
    dtype_bytes: dtypeBytes,
    optimizer,
    params: e.params,
    trainable_params: e.trainable,
    layers: e.rows,
    peak_layer: e.peakLayer,
    inference: est.inference,
    training: est.training,
    per_sample: lin.per,
    fixed: lin.fixed,
    budget: budgetBytes === null ? null : { bytes: budgetBytes, max_batch_inference: maxBatch('inference'), max_batch_training: maxBatch('training') },
    crops,
    unknown_layers: e.unknown,
    notes,
  };
}
