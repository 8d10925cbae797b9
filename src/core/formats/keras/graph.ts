/**
 * Keras-topology model -> format-neutral GraphView: canonical ops, weights by role with channels-last
 * channel axes, output shapes inferred from the config (batch_input_shape + per-layer rules for common
 * layers; anything else stays unknown), MACs with the README's definitions. Nested models are expanded
 * inline, their layers named `outer/inner`.
 */
import type { GraphView, LayerView, WeightView } from '../../graph/graph';
import type { CanonicalOp, Finding, ModelSummary, ValueSummary, WeightRole } from '../../types';
import { arr, num, obj, str, type Json, type JsonObject } from './json';
import { bytesPerElement, weightToFloat32, type KerasModel, type KWeight } from './model';
import { batchShapeOf, buildGraph, type KGraph, type KLayer, type TensorRef } from './topology';

export type Shape = (number | null)[];

const SIMPLE: Record<string, CanonicalOp> = {
  Conv1D: 'Conv',
  Conv2D: 'Conv',
  Conv3D: 'Conv',
  Convolution2D: 'Conv',
  DepthwiseConv2D: 'DepthwiseConv',
  DepthwiseConv1D: 'DepthwiseConv',
  Conv1DTranspose: 'ConvTranspose',
  Conv2DTranspose: 'ConvTranspose',
  Conv3DTranspose: 'ConvTranspose',
  Deconvolution2D: 'ConvTranspose',
  Dense: 'Dense',
  BatchNormalization: 'BatchNorm',
  LayerNormalization: 'LayerNorm',
  GroupNormalization: 'GroupNorm',
  Dropout: 'Dropout',
  SpatialDropout1D: 'Dropout',
  SpatialDropout2D: 'Dropout',
  SpatialDropout3D: 'Dropout',
  GaussianDropout: 'Dropout',
  AlphaDropout: 'Dropout',
  Add: 'Add',
  Subtract: 'Sub',
  Multiply: 'Mul',
  Concatenate: 'Concat',
  MaxPooling1D: 'MaxPool',
  MaxPooling2D: 'MaxPool',
  MaxPool2D: 'MaxPool',
  AveragePooling1D: 'AveragePool',
  AveragePooling2D: 'AveragePool',
  AvgPool2D: 'AveragePool',
  GlobalAveragePooling1D: 'GlobalAveragePool',
  GlobalAveragePooling2D: 'GlobalAveragePool',
  GlobalMaxPooling1D: 'GlobalMaxPool',
  GlobalMaxPooling2D: 'GlobalMaxPool',
  Flatten: 'Flatten',
  Reshape: 'Reshape',
  Permute: 'Transpose',
  ZeroPadding1D: 'Pad',
  ZeroPadding2D: 'Pad',
  UpSampling2D: 'Upsample',
  LeakyReLU: 'LeakyRelu',
  ELU: 'Elu',
  Softmax: 'Softmax',
  PReLU: 'PRelu',
};

const ACTIVATIONS: Record<string, CanonicalOp> = {
  relu: 'Relu',
  relu6: 'Relu6',
  sigmoid: 'Sigmoid',
  tanh: 'Tanh',
  softmax: 'Softmax',
  selu: 'Selu',
  elu: 'Elu',
  gelu: 'Gelu',
  linear: 'Identity',
  hard_sigmoid: 'HardSigmoid',
  hard_swish: 'HardSwish',
  swish: 'Swish',
  silu: 'Swish',
  leaky_relu: 'LeakyRelu',
};

/** activation name of a config value: 'relu' or Keras 3 {class_name: 'function', config: 'relu'} */
export function activationName(v: Json | undefined): string | undefined {
  if (typeof v === 'string') return v;
  const o = obj(v);
  return str(o?.config) ?? str(obj(o?.config)?.name) ?? str(o?.class_name);
}

export function canonicalKerasOp(className: string, config: JsonObject): CanonicalOp {
  if (className === 'ReLU') {
    const max = num(config.max_value);
    const slope = num(config.negative_slope) ?? 0;
    const threshold = num(config.threshold) ?? 0;
    if (max === 6 && slope === 0 && threshold === 0) return 'Relu6';
    if (max === undefined && slope === 0 && threshold === 0) return 'Relu';
    if (max === undefined && slope > 0) return 'LeakyRelu';
    return 'Clip';
  }
  if (className === 'Activation') return ACTIVATIONS[activationName(config.activation) ?? ''] ?? className;
  return SIMPLE[className] ?? className;
}

const ROLE: Record<string, WeightRole> = {
  kernel: 'kernel',
  depthwise_kernel: 'kernel',
  pointwise_kernel: 'kernel',
  bias: 'bias',
  gamma: 'gamma',
  beta: 'beta',
  moving_mean: 'mean',
  moving_variance: 'variance',
};

const CONV_RANK: Record<string, number> = { Conv1D: 1, Conv2D: 2, Conv3D: 3, Convolution2D: 2, DepthwiseConv2D: 2, DepthwiseConv1D: 1, SeparableConv2D: 2, SeparableConv1D: 1, Conv1DTranspose: 1, Conv2DTranspose: 2, Conv3DTranspose: 3, Deconvolution2D: 2 };

export function isTranspose(cls: string): boolean {
  return cls.endsWith('Transpose') || cls === 'Deconvolution2D';
}
export function isDepthwise(cls: string): boolean {
  return cls.startsWith('DepthwiseConv');
}

/** the output-channel axis of a kernel of this layer class (channels-last layouts), and a stats layout */
export function kernelChannelAxis(cls: string, key: string, shape: number[]): { axis: number | null; statsShape?: number[] } {
  const r = shape.length;
  if (r === 0) return { axis: null };
  if (isDepthwise(cls) || key === 'depthwise_kernel') {
    // [k..., in, mult]: output channel in * mult + m, i.e. the last two axes flattened
    if (r < 2) return { axis: r - 1 };
    return { axis: r - 2, statsShape: [...shape.slice(0, r - 2), shape[r - 2] * shape[r - 1]] };
  }
  if (isTranspose(cls)) return { axis: Math.max(0, r - 2) };
  return { axis: r - 1 };
}

function weightView(model: KerasModel, w: KWeight, cls: string, fmt: KerasModel['format']): WeightView {
  const role = ROLE[w.key] ?? 'weight';
  let axis: number | null = null;
  let statsShape: number[] | undefined;
  if (role === 'kernel') ({ axis, statsShape } = kernelChannelAxis(cls, w.key, w.shape));
  else if (role !== 'weight' && w.shape.length === 1) axis = 0;
  const count = w.shape.reduce((p, v) => p * v, 1);
  let cached: Float32Array | null = null;
  const view: WeightView = {
    name: w.storeName,
    role,
    dtype: w.dtype,
    shape: w.shape,
    channelAxis: axis,
    groups: 1,
    source: fmt === 'tfjs-layers' ? 'external' : 'initializer',
    bytes: count * bytesPerElement(w),
    read: () => {
      try {
        return weightToFloat32(w);
      } catch (err) {
        throw new Error(`${model.format}: ${err instanceof Error ? err.message : String(err)}`);
      }
    },
    peek: () => (cached ??= weightToFloat32(w)),
  };
  if (statsShape) view.statsShape = statsShape;
  if (w.quantization) view.quantized = w.quantization.dtype;
  return view;
}

const prod = (s: Shape | null): number | null => (s === null || s.includes(null) ? null : (s as number[]).reduce((p, v) => p * v, 1));

function tuple(v: Json | undefined, rank: number, dflt: number): number[] {
  if (typeof v === 'number') return new Array<number>(rank).fill(v);
  const a = arr(v);
  if (a && a.length === rank && a.every((x) => typeof x === 'number')) return a as number[];
  if (a && a.length === 1 && typeof a[0] === 'number') return new Array<number>(rank).fill(a[0]);
  return new Array<number>(rank).fill(dflt);
}

function channelsFirst(config: JsonObject): boolean {
  return str(config.data_format) === 'channels_first';
}

function convLength(len: number | null, k: number, stride: number, dilation: number, padding: string): number | null {
  if (len === null) return null;
  const dk = dilation * (k - 1) + 1;
  if (padding === 'same' || padding === 'causal') return Math.ceil(len / stride);
  // a 'valid' window larger than its input: the model does not run at this size (unknown, never negative)
  return len >= dk ? Math.floor((len - dk) / stride) + 1 : null;
}

function deconvLength(len: number | null, k: number, stride: number, dilation: number, padding: string, outPad: number | null): number | null {
  if (len === null) return null;
  const dk = dilation * (k - 1) + 1;
  if (outPad === null) return padding === 'valid' ? len * stride + Math.max(dk - stride, 0) : len * stride;
  const pad = padding === 'same' ? Math.floor(dk / 2) : 0;
  return (len - 1) * stride + dk - 2 * pad + outPad;
}

/** [batch, spatial..., channels] view of a shape for either data format */
function split(shape: Shape, rank: number, cf: boolean): { spatial: Shape; channels: number | null } | null {
  if (shape.length !== rank + 2) return null;
  return cf ? { spatial: shape.slice(2), channels: shape[1] } : { spatial: shape.slice(1, rank + 1), channels: shape[rank + 1] };
}
function join(batch: number | null, spatial: Shape, channels: number | null, cf: boolean): Shape {
  return cf ? [batch, channels, ...spatial] : [batch, ...spatial, channels];
}

function normAxis(axis: number, rank: number): number {
  return axis < 0 ? axis + rank : axis;
}

/** output shape of one call of a layer, and its MACs; null when not inferable */
export function inferLayer(l: KLayer, inputs: (Shape | null)[]): { out: Shape | null; macs: number | null } {
  const c = l.config;
  const cls = l.className;
  const x = inputs[0] ?? null;
  const rank = CONV_RANK[cls];
  if (rank !== undefined) {
    if (!x) return { out: null, macs: null };
    const cf = channelsFirst(c);
    const s = split(x, rank, cf);
    if (!s) return { out: null, macs: null };
    const k = tuple(c.kernel_size, rank, 1);
    const st = tuple(c.strides, rank, 1);
    const dil = tuple(c.dilation_rate, rank, 1);
    const pad = str(c.padding) ?? 'valid';
    const ksize = k.reduce((p, v) => p * v, 1);
    if (isTranspose(cls)) {
      const op = c.output_padding === null || c.output_padding === undefined ? null : tuple(c.output_padding, rank, 0);
      const spatial = s.spatial.map((d, i) => deconvLength(d, k[i], st[i], dil[i], pad, op ? op[i] : null));
      const filters = num(c.filters) ?? null;
      const out = join(x[0], spatial, filters, cf);
      const groups = num(c.groups) ?? 1;
      const inEl = prod(x);
      return { out, macs: inEl === null || filters === null ? null : (inEl * filters * ksize) / groups };
    }
    const spatial = s.spatial.map((d, i) => convLength(d, k[i], st[i], dil[i], pad));
    let filters: number | null;
    let macsPer: number | null;
    if (isDepthwise(cls)) {
      const mult = num(c.depth_multiplier) ?? 1;
      filters = s.channels === null ? null : s.channels * mult;
      macsPer = ksize;
    } else if (cls.startsWith('Separable')) {
      const mult = num(c.depth_multiplier) ?? 1;
      filters = num(c.filters) ?? null;
      // depthwise part (per intermediate channel) + pointwise part, per output position
      const mid = s.channels === null ? null : s.channels * mult;
      const out = join(x[0], spatial, filters, cf);
      const pos = prod([x[0], ...spatial]);
      return { out, macs: pos === null || mid === null || filters === null ? null : pos * mid * ksize + pos * mid * filters };
    } else {
      filters = num(c.filters) ?? null;
      const groups = num(c.groups) ?? 1;
      macsPer = s.channels === null ? null : (s.channels / groups) * ksize;
    }
    const out = join(x[0], spatial, filters, cf);
    const o = prod(out);
    return { out, macs: o === null || macsPer === null ? null : o * macsPer };
  }
  switch (cls) {
    case 'InputLayer':
      return { out: batchShapeOf(c), macs: 0 };
    case 'Dense': {
      if (!x) return { out: null, macs: null };
      const units = num(c.units) ?? null;
      const out = [...x.slice(0, -1), units];
      const o = prod(out);
      const kdim = x[x.length - 1];
      return { out, macs: o === null || kdim === null ? null : o * kdim };
    }
    case 'BatchNormalization':
      return { out: x, macs: prod(x) };
    case 'Activation':
    case 'ReLU':
    case 'LeakyReLU':
    case 'ELU':
    case 'PReLU':
    case 'Softmax':
    case 'ThresholdedReLU':
    case 'Dropout':
    case 'SpatialDropout1D':
    case 'SpatialDropout2D':
    case 'SpatialDropout3D':
    case 'GaussianDropout':
    case 'GaussianNoise':
    case 'AlphaDropout':
    case 'LayerNormalization':
    case 'GroupNormalization':
    case 'UnitNormalization':
    case 'ActivityRegularization':
    case 'Masking':
      return { out: x, macs: 0 };
    case 'Add':
    case 'Subtract':
    case 'Multiply':
    case 'Average':
    case 'Maximum':
    case 'Minimum': {
      const known = inputs.filter((s): s is Shape => !!s);
      if (known.length !== inputs.length || known.length === 0) return { out: null, macs: 0 };
      const r = Math.max(...known.map((s) => s.length));
      const out: Shape = [];
      for (let i = 0; i < r; i++) {
        let d: number | null = 1;
        for (const s of known) {
          const v = s[i - (r - s.length)] ?? 1;
          if (v === null) d = d === 1 ? null : d;
          else if (v !== 1) d = v;
        }
        out.push(d);
      }
      return { out, macs: 0 };
    }
    case 'Concatenate': {
      if (inputs.length === 0 || inputs.some((s) => !s)) return { out: null, macs: 0 };
      const shapes = inputs as Shape[];
      const r = shapes[0].length;
      const ax = normAxis(num(c.axis) ?? -1, r);
      const out = [...shapes[0]];
      let sum: number | null = 0;
      for (const s of shapes) sum = sum === null || s[ax] === null ? null : sum + (s[ax] as number);
      out[ax] = sum;
      return { out, macs: 0 };
    }
    case 'Flatten': {
      if (!x) return { out: null, macs: 0 };
      return { out: [x[0], prod(x.slice(1))], macs: 0 };
    }
    case 'Reshape': {
      const t = arr(c.target_shape);
      if (!x || !t) return { out: null, macs: 0 };
      const total = prod(x.slice(1));
      const dims = t.map((d) => (typeof d === 'number' ? d : -1));
      const known = dims.filter((d) => d >= 0).reduce((p, v) => p * v, 1);
      return { out: [x[0], ...dims.map((d) => (d >= 0 ? d : total === null || known === 0 ? null : total / known))], macs: 0 };
    }
    case 'ZeroPadding1D':
    case 'ZeroPadding2D':
    case 'Cropping1D':
    case 'Cropping2D': {
      const r = cls.endsWith('1D') ? 1 : 2;
      if (!x) return { out: null, macs: 0 };
      const cf = channelsFirst(c);
      const s = split(x, r, cf);
      if (!s) return { out: null, macs: 0 };
      const p = c.padding ?? c.cropping;
      const pairs: number[][] = [];
      for (let i = 0; i < r; i++) {
        if (typeof p === 'number') pairs.push([p, p]);
        else {
          const a = arr(p) ?? [];
          const e = r === 1 ? a : a[i];
          if (typeof e === 'number') pairs.push([e, e]);
          else {
            const ea = arr(e) ?? [1, 1];
            pairs.push([num(ea[0]) ?? 0, num(ea[1]) ?? 0]);
          }
        }
      }
      const sign = cls.startsWith('Crop') ? -1 : 1;
      const spatial = s.spatial.map((d, i) => (d === null ? null : d + sign * (pairs[i][0] + pairs[i][1])));
      return { out: join(x[0], spatial, s.channels, cf), macs: 0 };
    }
    case 'MaxPooling1D':
    case 'MaxPooling2D':
    case 'MaxPool2D':
    case 'AveragePooling1D':
    case 'AveragePooling2D':
    case 'AvgPool2D': {
      const r = cls.includes('1D') ? 1 : 2;
      if (!x) return { out: null, macs: 0 };
      const cf = channelsFirst(c);
      const s = split(x, r, cf);
      if (!s) return { out: null, macs: 0 };
      const k = tuple(c.pool_size, r, 2);
      const st = c.strides === null || c.strides === undefined ? k : tuple(c.strides, r, 1);
      const pad = str(c.padding) ?? 'valid';
      const spatial = s.spatial.map((d, i) => convLength(d, k[i], st[i], 1, pad));
      return { out: join(x[0], spatial, s.channels, cf), macs: 0 };
    }
    case 'GlobalAveragePooling1D':
    case 'GlobalAveragePooling2D':
    case 'GlobalMaxPooling1D':
    case 'GlobalMaxPooling2D': {
      const r = cls.includes('1D') ? 1 : 2;
      if (!x) return { out: null, macs: 0 };
      const cf = channelsFirst(c);
      const s = split(x, r, cf);
      if (!s) return { out: null, macs: 0 };
      if (c.keepdims === true) return { out: join(x[0], s.spatial.map(() => 1), s.channels, cf), macs: 0 };
      return { out: [x[0], s.channels], macs: 0 };
    }
    case 'UpSampling2D': {
      if (!x) return { out: null, macs: 0 };
      const cf = channelsFirst(c);
      const s = split(x, 2, cf);
      if (!s) return { out: null, macs: 0 };
      const f = tuple(c.size, 2, 2);
      return { out: join(x[0], s.spatial.map((d, i) => (d === null ? null : d * f[i])), s.channels, cf), macs: 0 };
    }
    default:
      return { out: null, macs: 0 };
  }
}

export interface FlatLayer {
  layer: KLayer;
  graph: KGraph;
  /** display name: nested layers as outer/inner */
  name: string;
  path: string[];
  outShape: Shape | null;
  macs: number | null;
  /** value names of the tensors its first call reads (the names other layers' `outputName` use) */
  inputNames: string[];
  /** value name of its first call's output: the display name */
  outputName: string;
  /** shapes of the tensors its first call reads */
  inputShapes: (Shape | null)[];
  /** keyword arguments of its first call (Keras 2: the 4th element of each inbound ref; Keras 3: `kwargs`) */
  callKwargs: JsonObject;
}

/** value name of a layer's output: the display path, plus `:call:tensor` for later calls / other tensors */
const valueName = (scope: string[], layer: string, node: number, tensor: number) => [...scope, layer].join('/') + (node || tensor ? `:${node}:${tensor}` : '');

/** keyword arguments of one call of a layer (training=True and the like) */
export function callKwargs(l: KLayer, call: number): JsonObject {
  const nodes = arr(l.entry.inbound_nodes);
  const n = nodes?.[call];
  const out: JsonObject = {};
  if (Array.isArray(n)) {
    const refs = n.length > 0 && typeof n[0] === 'string' ? [n] : n;
    for (const r of refs) {
      const kw = Array.isArray(r) ? obj(r[3]) : undefined;
      if (kw) Object.assign(out, kw);
    }
  } else {
    const kw = obj(obj(n)?.kwargs);
    if (kw) Object.assign(out, kw);
  }
  return out;
}

interface Value {
  shape: Shape | null;
  name: string;
}

/**
 * Walks a model graph in order, inferring shapes; nested models are expanded with their inputs bound to the
 * outer call's inputs (their layers named outer/inner, a reader of a nested model reads the inner layer's
 * output). `batch` fills unknown batch dims of the inputs; `inputShapes` replaces the shapes of the model's
 * inputs by name (e.g. a planner's input size).
 */
export function flattenModel(
  root: KGraph,
  batch: number,
  dims: Record<string, number> = {},
  inputShapes: Record<string, Shape> = {},
): { layers: FlatLayer[]; shapes: Map<string, Shape | null>; inputs: ValueSummary[]; inputShapes: Record<string, Shape | null> } {
  const flat: FlatLayer[] = [];
  const inputs: ValueSummary[] = [];
  const concreteInputs: Record<string, Shape | null> = {};
  const walk = (g: KGraph, bound: Value[] | null, depth: number): Value[] => {
    const values = new Map<string, Value>();
    const key = (r: TensorRef) => `${r.layer}:${r.node}:${r.tensor}`;
    const byName = new Map(g.layers.map((l) => [l.name, l]));
    g.inputs.forEach((r, i) => {
      let v: Value = { shape: null, name: valueName(g.scope, r.layer, 0, 0) };
      const l = byName.get(r.layer);
      if (bound) v = bound[i] ?? { shape: null, name: v.name };
      else {
        let s: Shape | null = null;
        if (l) s = batchShapeOf(l.config);
        else if (g.sequential && g.layers[0]) s = batchShapeOf(g.layers[0].config);
        const name = r.layer;
        if (s) {
          const sym = s.map((d, k) => (d === null ? (k === 0 ? 'batch' : `${name}_dim${k}`) : d));
          s = sym.map((d) => (typeof d === 'number' ? d : d === 'batch' ? dims.batch ?? batch : dims[d] ?? null));
          if (depth === 0) inputs.push({ name, dtype: str(l?.config.dtype) ?? 'float32', shape: sym });
        }
        const given = Object.prototype.hasOwnProperty.call(inputShapes, name) ? inputShapes[name] : undefined;
        if (given) s = [...given];
        if (depth === 0) concreteInputs[name] = s;
        v = { shape: s, name: v.name };
      }
      values.set(key(r), v);
      values.set(`${r.layer}:0:0`, v);
      values.set(`${r.layer}:last:${r.tensor}`, v);
    });
    for (const l of g.layers) {
      if (l.className === 'InputLayer') continue;
      const path = [...g.scope, l.name];
      let first: FlatLayer | null = null;
      let macsSum: number | null = 0;
      l.calls.forEach((refs, call) => {
        // node indices may count calls made outside this model (a nested model built on its own first):
        // fall back to the layer's latest call
        const ins = refs.map((r) => values.get(key(r)) ?? values.get(`${r.layer}:last:${r.tensor}`) ?? { shape: null, name: valueName(g.scope, r.layer, r.node, r.tensor) });
        let outs: Value[];
        let macs: number | null = 0;
        if (l.sub) {
          if (call === 0) outs = walk(l.sub, ins, depth + 1);
          else outs = l.sub.outputs.map((_, t) => ({ shape: null, name: valueName(g.scope, l.name, call, t) }));
        } else {
          const r = inferLayer(l, ins.map((v) => v.shape));
          outs = [{ shape: r.out, name: valueName(g.scope, l.name, call, 0) }];
          macs = r.macs;
        }
        outs.forEach((v, t) => {
          values.set(`${l.name}:${call}:${t}`, v);
          values.set(`${l.name}:last:${t}`, v);
        });
        macsSum = macsSum === null || macs === null ? null : macsSum + macs;
        if (call === 0 && !l.sub)
          first = {
            layer: l,
            graph: g,
            name: path.join('/'),
            path,
            outShape: outs[0]?.shape ?? null,
            macs: null,
            inputNames: ins.map((v) => v.name),
            outputName: outs[0]?.name ?? path.join('/'),
            inputShapes: ins.map((v) => v.shape),
            callKwargs: callKwargs(l, 0),
          };
      });
      if (l.calls.length === 0 && !l.sub) first = { layer: l, graph: g, name: path.join('/'), path, outShape: null, macs: null, inputNames: [], outputName: path.join('/'), inputShapes: [], callKwargs: {} };
      if (first) {
        (first as FlatLayer).macs = macsSum;
        flat.push(first);
      }
    }
    return g.outputs.map((r) => values.get(key(r)) ?? values.get(`${r.layer}:last:${r.tensor}`) ?? { shape: null, name: valueName(g.scope, r.layer, r.node, r.tensor) });
  };
  const outValues = walk(root, null, 0);
  const out = new Map<string, Shape | null>();
  root.outputs.forEach((r, i) => out.set(r.layer, outValues[i].shape));
  return { layers: flat, shapes: out, inputs, inputShapes: concreteInputs };
}

export function summaryOf(model: KerasModel, root: KGraph, inputs: ValueSummary[], outShapes: Map<string, Shape | null>): ModelSummary {
  let producer = '';
  let version = '';
  const ct = model.container;
  if (ct.kind === 'tfjs-layers') {
    const topo = obj(ct.json.modelTopology) ?? {};
    producer = str(ct.json.convertedBy) ?? str(ct.json.generatedBy) ?? 'TensorFlow.js';
    version = str(topo.keras_version) ? `keras ${str(topo.keras_version)}` : '';
  } else {
    producer = 'keras';
    version = kerasVersion(model) ?? '';
  }
  let weightBytes = 0;
  for (const w of model.weights) weightBytes += w.shape.reduce((p, v) => p * v, 1) * bytesPerElement(w);
  return {
    ir_version: null,
    opsets: [],
    producer,
    producer_version: version,
    graph_name: str(root.config?.name) ?? str(model.modelConfig.name) ?? '',
    inputs,
    outputs: root.outputs.map((r) => ({ name: r.layer, dtype: 'float32', shape: outShapes.get(r.layer) ?? null })),
    file_bytes: model.fileBytes,
    weight_bytes: weightBytes,
  };
}

export function kerasVersion(model: KerasModel): string | undefined {
  const ct = model.container;
  if (ct.kind === 'keras-h5') return str(ct.tree.attrs.find((a) => a.name === 'keras_version')?.value);
  if (ct.kind === 'keras') return str(obj(ct.config.__metadata)?.keras_version) ?? undefined;
  return undefined;
}

export interface KerasViewParts {
  view: GraphView;
  root: KGraph;
  /** the flattened layers, in the order of view.layers */
  flat: FlatLayer[];
  /** concrete shapes of the model inputs the shapes were inferred from */
  inputShapes: Record<string, Shape | null>;
}

/** the GraphView and what it was built from; `inputShapes` replaces the model inputs' shapes by name */
export function buildKerasViewParts(model: KerasModel, dims: Record<string, number> = {}, inputShapes: Record<string, Shape> = {}): KerasViewParts {
  const root = buildGraph(model.modelConfig);
  const { layers: flat, shapes, inputs, inputShapes: concrete } = flattenModel(root, 1, dims, inputShapes);
  const layers: LayerView[] = flat.map((f, index) => {
    const l = f.layer;
    const weights = model.weightsOf(f.path).map((w) => weightView(model, w, l.className, model.format));
    const view: LayerView = {
      name: f.name,
      index,
      op: canonicalKerasOp(l.className, l.config),
      nativeOp: l.className,
      inputs: f.inputNames,
      outputs: [f.outputName],
      weights,
      outputShape: f.outShape,
      macs: f.macs,
    };
    if (l.className === 'BatchNormalization') {
      view.epsilon = num(l.config.epsilon) ?? 1e-3;
      // a BN called with training=True normalizes with batch statistics also in predict()
      view.trainingMode = f.callKwargs.training === true;
    }
    return view;
  });
  const findings: Finding[] = [];
  const quantized = model.weights.filter((w) => w.quantization);
  if (quantized.length) {
    const kinds = [...new Set(quantized.map((w) => w.quantization?.dtype))].join('/');
    const names = new Set(quantized.map((w) => w.layerPath.join('/')));
    findings.push({
      severity: 'info',
      code: 'weights-quantized',
      message: `${quantized.length} weight tensor(s) are stored ${kinds}-quantized; statistics are of the dequantized values, and rewritten tensors are written as float32 unless re-quantized.`,
      layers: flat.filter((f) => names.has(f.path.join('/'))).map((f) => f.name),
    });
  }
  return { view: { format: model.format, summary: summaryOf(model, root, inputs, shapes), layers, findings }, root, flat, inputShapes: concrete };
}

export function buildKerasView(model: KerasModel, dims: Record<string, number> = {}): GraphView {
  return buildKerasViewParts(model, dims).view;
}

/** float32 values of a weight (for rewrites) */
export function readWeight(w: KWeight): Float32Array {
  return weightToFloat32(w);
}
