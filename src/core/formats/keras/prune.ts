/**
 * Structured pruning of Keras-topology models (TF.js layers, .h5, .keras), criterion 'dead': units / filters
 * that are constant on the probe inputs (a dead ReLU unit is exactly 0) are removed physically along simple
 * chains of the outermost model:
 *   Dense | Conv2D | SeparableConv2D -> [BatchNormalization | DepthwiseConv2D | activation | Dropout | pooling]*
 *     -> [Flatten] -> [Dropout | activation]* -> Dense | Conv2D | SeparableConv2D
 * The producer loses kernel columns (last axis) and bias entries, a BatchNorm in the chain its gamma / beta /
 * moving statistics, a depthwise convolution (MobileNet's inverted residuals; depth multiplier m: channel c
 * becomes its outputs c * m ... c * m + m - 1) its kernel slice [.., .., c, :] and those biases (the channels
 * are observed after it, so constants there are still exact), the
 * consumer its kernel input rows (Dense axis 0; Conv2D axis 2; after Flatten, channel c is rows c, c + C,
 * c + 2C ... in NHWC order; SeparableConv2D: its depthwise slice c and pointwise rows c * m + j; a
 * SeparableConv2D producer loses pointwise columns), and a removed unit that is a non-zero constant v adds v x its
 * weights to the consumer's bias (only for Dense consumers and unpadded convolutions: zero padding would see
 * 0, not v, at the borders). `units` / `filters` are updated (Keras 3: also build_config and tensor shapes).
 * Coupled channels (every criterion; channels last): outputs feeding several layers, residual Add
 * (channel c of every input and of the output tied) and Concatenate (input channel c is output channel offset
 * + c) form dependency groups (union-find over channels, the DepGraph idea). 'dead' removes a group only when
 * it is constant on the probe at every Add / Concatenate input and every reader's input (a channel dead in one
 * Add member only is kept); a non-zero constant is folded into each reader's bias as above. 'l1' / 'l2' score a
 * group by the sum of its producers' channel norms and apply the ratio / threshold group by group. Producers
 * lose kernel columns and biases, BatchNorms on any tied tensor their channels, every reader its input rows.
 * 'bn-gamma' scores a group by the sum of |gamma| of the BatchNorms on its tensors, 'apoz' by the smallest APoZ
 * among its probed activations (groups with nothing to score are kept).
 * Refused with a reason: depthwise convolutions reading a coupled tensor, layers feeding a model output, shared
 * layers, nested models, channels-first layers, anything else in the path.
 * Quantized TF.js weights are sliced in their stored form (same scale / min: the kept values are unchanged);
 * a consumer bias that receives folded constants is written as float32.
 */
import type { PruneOptions } from '../onnx/prune';
import { ModelError } from '../../errors';
import type { PruneGroup, PrunePlan, PruneSize, ProbeLayerReport, ProbeReport, SkippedCandidate } from '../../types';
import { bnAxis, kerasSize } from './fold';
import { buildKerasView } from './graph';
import { arr, clone, isObject, num, str, type Json, type JsonObject } from './json';
import { bytesPerElement, float32Weight, weightToFloat32, type KerasModel, type KWeight } from './model';
import { layerActivation, probeKeras } from './probe';
import { buildGraph, consumersOf, type KLayer } from './topology';

export interface KerasPruneResult extends PruneSize {
  model: KerasModel;
  plan: PrunePlan;
  removed: Record<string, number>;
  probe: ProbeReport | null;
  seconds: number;
}

const PRODUCERS = new Set(['Dense', 'Conv2D', 'SeparableConv2D']);
/** a producer's output kernel: its last axis holds the output channels */
const OUT_KERNEL = new Set(['kernel', 'pointwise_kernel']);
const ELEMENTWISE = new Set(['ReLU', 'LeakyReLU', 'ELU', 'ThresholdedReLU', 'Activation', 'Dropout', 'SpatialDropout2D', 'GaussianDropout', 'GaussianNoise', 'AlphaDropout']);
const POOLING = new Set(['MaxPooling2D', 'AveragePooling2D', 'GlobalAveragePooling2D', 'GlobalMaxPooling2D', 'ZeroPadding2D', 'Cropping2D', 'UpSampling2D']);
const COUPLING = new Set(['Add', 'Concatenate', 'Multiply', 'Subtract', 'Average', 'Maximum', 'Minimum']);

interface Chain {
  producer: KLayer;
  /** layers between producer and consumer, in order */
  path: KLayer[];
  /** BatchNormalizations in the path (before any Flatten) */
  bns: KLayer[];
  /** depthwise convolutions in the path: producer channel c owns their kernel slice [.., .., c, :] and outputs */
  dws: KLayer[];
  flatten: boolean;
  consumer: KLayer;
  /** the layer whose output the consumer reads channel by channel (before Flatten) */
  observe: string;
  /** the producer's channels */
  channels: number;
  /**
   * channels per producer channel where the consumer reads (the product of the depth multipliers in the path):
   * producer channel c is channels c * mult ... c * mult + mult - 1 there
   */
  mult: number;
  /** the same for each path layer's output */
  multOf: Map<KLayer, number>;
}

/** keep[c] repeated k times: the mask of the k channels each producer channel became */
function expand(keep: Uint8Array, k: number): Uint8Array {
  if (k === 1) return keep;
  const out = new Uint8Array(keep.length * k);
  for (let i = 0; i < out.length; i++) out[i] = keep[Math.floor(i / k)];
  return out;
}

function channelsOf(l: KLayer): number | undefined {
  return num(l.className === 'Dense' ? l.config.units : l.config.filters);
}

function isOneByOne(l: KLayer): boolean {
  const k = arr(l.config.kernel_size);
  return !!k && k.every((v) => v === 1);
}

/** the chain from a producer to its consumer, or why there is none we can prune */
function findChain(p: KLayer, consumers: ReturnType<typeof consumersOf>, outputs: Set<string>): Chain | string {
  if (p.calls.length > 1) return 'shared layer (called more than once)';
  if (p.className === 'Conv2D' && (num(p.config.groups) ?? 1) !== 1) return 'grouped convolution';
  if (str(p.config.data_format) === 'channels_first') return 'channels_first convolution';
  const C = channelsOf(p);
  if (!C) return 'no units / filters in its config';
  const path: KLayer[] = [];
  const bns: KLayer[] = [];
  const dws: KLayer[] = [];
  const multOf = new Map<KLayer, number>();
  let mult = 1;
  let flatten = false;
  let cur = p;
  let observe = p.name;
  for (let hop = 0; hop < 32; hop++) {
    if (outputs.has(cur.name)) return `${cur === p ? 'it feeds' : `'${cur.name}' feeds`} a model output`;
    const cons = consumers.get(cur.name) ?? [];
    if (cons.length === 0) return `'${cur.name}' has no consumer`;
    if (cons.length > 1) {
      const kinds = cons.map((c) => c.layer.className);
      return `'${cur.name}' feeds ${cons.length} layers (${[...new Set(kinds)].join(', ')}): residual / branch coupling is not handled`;
    }
    const next = cons[0].layer;
    if (next.calls.length > 1) return `'${next.name}' is a shared layer`;
    if (str(next.config.data_format) === 'channels_first') return `'${next.name}' is channels_first: only channels-last models are pruned`;
    if (next.sub) return `'${next.name}' is a nested model`;
    const cls = next.className;
    if (COUPLING.has(cls)) return `'${next.name}' (${cls}) couples channels: residual / concat coupling is not handled`;
    if (cls === 'DepthwiseConv2D' && !flatten) {
      // input channel i becomes outputs i * m ... i * m + m - 1 (kernel slice [.., .., i, :], those bias entries)
      const m = num(next.config.depth_multiplier) ?? 1;
      if (!Number.isInteger(m) || m < 1) return `'${next.name}' (DepthwiseConv2D) has depth multiplier ${String(next.config.depth_multiplier)}`;
      mult *= m;
      dws.push(next);
      multOf.set(next, mult);
      path.push(next);
      cur = next;
      observe = next.name;
      continue;
    }
    if (cls !== 'SeparableConv2D' && (cls.startsWith('DepthwiseConv') || cls.startsWith('SeparableConv'))) return `'${next.name}' (${cls}) is depthwise: channels tied through the depth multiplier are not handled`;
    if (cls === 'Dense' || ((cls === 'Conv2D' || cls === 'SeparableConv2D') && !flatten)) {
      if (cls === 'Conv2D' && ((num(next.config.groups) ?? 1) !== 1 || str(next.config.data_format) === 'channels_first')) return `'${next.name}' is a grouped or channels_first convolution`;
      return { producer: p, path, bns, dws, flatten, consumer: next, observe, channels: C, mult, multOf };
    }
    if (cls === 'Flatten' && !flatten) {
      flatten = true;
      path.push(next);
      multOf.set(next, mult);
      cur = next;
      continue;
    }
    if (cls === 'BatchNormalization' && !flatten) {
      const ax = bnAxis(next.config);
      const spatial = p.className !== 'Dense' && !path.some((l) => l.className.startsWith('Global'));
      const ok = ax === -1 || ax === (spatial ? 3 : 1);
      if (!ok) return `'${next.name}' normalizes axis ${JSON.stringify(next.config.axis)}, not the channels`;
      bns.push(next);
    } else if (ELEMENTWISE.has(cls) || (POOLING.has(cls) && !flatten)) {
      if (cls === 'Activation' && /softmax/.test(str(next.config.activation) ?? '')) return `'${next.name}' is a softmax over the channels`;
    } else return `'${next.name}' (${cls}) in the path is not handled`;
    path.push(next);
    multOf.set(next, mult);
    cur = next;
    if (!flatten) observe = next.name;
  }
  return 'path too long';
}

/** how a consumer reads its C input channels */
interface ConsumerKernel {
  /** input rows per channel: spatial positions after a Flatten, the depth multiplier of a SeparableConv2D */
  perChannel: number;
  /** a constant on a removed channel can be folded into the bias (it has one, and no zero padding) */
  canFold: boolean;
  hasBias: boolean;
  /** drops the channels with keep[c] = 0, adds value[c] x their weights to the bias; returns how many were folded */
  apply(keep: Uint8Array, value: Float64Array, edit: (w: KWeight) => WeightEdit): number;
}

/**
 * Dense / Conv2D: kernel rows (Dense axis 0, Conv2D axis 2; row r is channel r % C). SeparableConv2D: its
 * depthwise slice [.., .., c, :] and pointwise rows c * m + j; a constant v on channel c reaches the bias as
 * v * (sum of the depthwise taps of c, j) * pointwise[c * m + j, :].
 */
function consumerKernel(l: KLayer, C: number, weights: KWeight[]): ConsumerKernel | string {
  const bias = weights.find((w) => w.key === 'bias');
  const unpadded = str(l.config.padding) !== 'same' || isOneByOne(l);
  if (l.className === 'SeparableConv2D') {
    const dk = weights.find((w) => w.key === 'depthwise_kernel');
    const pk = weights.find((w) => w.key === 'pointwise_kernel');
    if (!dk || !pk || dk.shape.length !== 4 || dk.shape[2] !== C || pk.shape.length !== 4 || pk.shape[2] !== C * dk.shape[3]) return `consumer '${l.name}' has no depthwise kernel reading ${C} channels`;
    const m = dk.shape[3];
    return {
      perChannel: m,
      canFold: !!bias && unpadded,
      hasBias: !!bias,
      apply(keep, value, edit) {
        edit(dk).keeps[2] = keep;
        const rowKeep = new Uint8Array(C * m);
        for (let r = 0; r < C * m; r++) rowKeep[r] = keep[Math.floor(r / m)];
        edit(pk).keeps[2] = rowKeep;
        if (!bias || !value.some((v) => v !== 0)) return 0;
        const d = weightToFloat32(dk);
        const pw = weightToFloat32(pk);
        const F = pk.shape[3];
        const taps = dk.shape[0] * dk.shape[1];
        const e = edit(bias);
        e.add ??= new Float64Array(F);
        let folded = 0;
        for (let c = 0; c < C; c++) {
          const v = value[c];
          if (v === 0) continue;
          folded++;
          for (let j = 0; j < m; j++) {
            let tapSum = 0;
            for (let t = 0; t < taps; t++) tapSum += d[(t * C + c) * m + j];
            for (let o = 0; o < F; o++) e.add[o] += v * tapSum * pw[(c * m + j) * F + o];
          }
        }
        return folded;
      },
    };
  }
  const k = weights.find((w) => w.key === 'kernel');
  const axis = l.className === 'Dense' ? 0 : 2;
  if (!k || k.shape[axis] % C !== 0) return `consumer '${l.name}' has no kernel reading ${C} channels`;
  const rows = k.shape[axis];
  return {
    perChannel: rows / C,
    canFold: !!bias && (l.className === 'Dense' || unpadded),
    hasBias: !!bias,
    apply(keep, value, edit) {
      const rowKeep = new Uint8Array(rows);
      for (let r = 0; r < rows; r++) rowKeep[r] = keep[r % C];
      edit(k).keeps[axis] = rowKeep;
      if (!bias || !value.some((v) => v !== 0)) return 0;
      const kv = weightToFloat32(k);
      const O = k.shape[k.shape.length - 1];
      const e = edit(bias);
      e.add ??= new Float64Array(O);
      const inner = k.shape.slice(0, axis).reduce((a, b) => a * b, 1);
      for (let r = 0; r < rows; r++) {
        const v = value[r % C];
        if (v === 0) continue;
        for (let sp = 0; sp < inner; sp++) {
          const base = (sp * rows + r) * O;
          for (let o = 0; o < O; o++) e.add[o] += v * kv[base + o];
        }
      }
      let folded = 0;
      for (let c = 0; c < C; c++) if (value[c] !== 0) folded++;
      return folded;
    },
  };
}

/** copies the elements of `bytes` (shape dims, `size` bytes each) whose index on axis k is kept by keeps[k] */
function sliceBytes(bytes: Uint8Array, dims: number[], size: number, keeps: (Uint8Array | null)[]): { bytes: Uint8Array; dims: number[] } {
  const idx = dims.map((d, k) => {
    const keep = keeps[k];
    const out: number[] = [];
    for (let i = 0; i < d; i++) if (!keep || keep[i]) out.push(i);
    return out;
  });
  const outDims = idx.map((x) => x.length);
  const strides = new Array<number>(dims.length).fill(1);
  for (let k = dims.length - 2; k >= 0; k--) strides[k] = strides[k + 1] * dims[k + 1];
  const total = outDims.reduce((a, b) => a * b, 1);
  const out = new Uint8Array(total * size);
  let o = 0;
  const rec = (k: number, base: number) => {
    if (k === dims.length) {
      out.set(bytes.subarray(base * size, base * size + size), o);
      o += size;
      return;
    }
    for (const i of idx[k]) rec(k + 1, base + i * strides[k]);
  };
  if (dims.length === 0) return { bytes: bytes.slice(), dims };
  // the innermost kept axis copied in runs when it is whole
  const last = dims.length - 1;
  if (!keeps[last]) {
    const run = dims[last] * size;
    const recRows = (k: number, base: number) => {
      if (k === last) {
        out.set(bytes.subarray(base * size, base * size + run), o);
        o += run;
        return;
      }
      for (const i of idx[k]) recRows(k + 1, base + i * strides[k]);
    };
    recRows(0, 0);
  } else rec(0, 0);
  return { bytes: out, dims: outDims };
}

interface WeightEdit {
  keeps: (Uint8Array | null)[];
  /** added to the values before slicing (full length) */
  add?: Float64Array;
}

/** Keras 3: shapes recorded in build_config and in call tensors, last dim `from` -> `to` */
function fixRecordedShapes(entry: JsonObject, from: number, to: number, inbound: boolean): void {
  const visit = (v: Json, key: string) => {
    if (Array.isArray(v)) {
      if ((key === 'shape' || key === 'input_shape' || key === 'batch_shape') && v.length > 0 && v[v.length - 1] === from && v.every((x) => x === null || typeof x === 'number')) {
        v[v.length - 1] = to;
        return;
      }
      for (const x of v) visit(x, key === 'input_shape' ? key : '');
      return;
    }
    if (!isObject(v)) return;
    for (const k of Object.keys(v)) visit(v[k], k);
  };
  if (isObject(entry.build_config)) visit(entry.build_config, '');
  if (inbound && entry.inbound_nodes !== undefined) visit(entry.inbound_nodes, '');
}

/** Keras 3: the recorded shape of one input of a layer (the tensors from `from` and, multi-input, build_config's shape `index`) */
function fixReadShape(entry: JsonObject, input: string, index: number | null, from: number, to: number): void {
  const setLast = (v: Json | undefined) => {
    if (Array.isArray(v) && v.length > 0 && v[v.length - 1] === from && v.every((x) => x === null || typeof x === 'number')) v[v.length - 1] = to;
  };
  const visit = (v: Json) => {
    if (Array.isArray(v)) return v.forEach(visit);
    if (!isObject(v)) return;
    if (v.class_name === '__keras_tensor__' && isObject(v.config) && arr(v.config.keras_history)?.[0] === input) return setLast(v.config.shape);
    for (const k of Object.keys(v)) visit(v[k]);
  };
  if (entry.inbound_nodes !== undefined) visit(entry.inbound_nodes);
  if (isObject(entry.build_config)) {
    const shape = entry.build_config.input_shape;
    if (index === null) setLast(shape);
    else if (Array.isArray(shape) && Array.isArray(shape[index])) setLast(shape[index]);
  }
}

function sizeWithMacs(model: KerasModel): { params: number; bytes: number; macs: number | null } {
  const s = kerasSize(model);
  let macs: number | null = 0;
  try {
    for (const l of buildKerasView(model).layers) macs = macs === null || l.macs === null ? null : macs + l.macs;
  } catch {
    macs = null;
  }
  return { params: s.params, bytes: s.bytes, macs };
}

// ---------------------------------------------------------------- coupled channels (residual Add, Concatenate)

/** a Dense / Conv2D reading channels of a component node (through a Flatten for Dense) */
interface Sink {
  layer: KLayer;
  /** the component node it reads */
  node: string;
  flatten: KLayer | null;
}

/**
 * Layer outputs tied channel by channel through channel-preserving layers, Add (same channel in every input
 * and the output) and Concatenate (input channel c is output channel offset + c); channels-last only.
 */
interface Component {
  /** layer output -> first index of its channels in the union-find, and its channel count */
  nodes: Map<string, { base: number; n: number; layer: KLayer }>;
  parent: number[];
  sources: KLayer[];
  sinks: Sink[];
  /** nodes whose per-channel constancy decides removal: inputs of Add / Concatenate and of the sinks */
  observe: Set<string>;
}

const CHANNEL_WISE = (cls: string) => ELEMENTWISE.has(cls) || cls === 'BatchNormalization' || (POOLING.has(cls) && !cls.startsWith('Global'));

function findRoot(parent: number[], i: number): number {
  while (parent[i] !== i) i = parent[i] = parent[parent[i]];
  return i;
}

/** the component holding producer p's output channels, or why it cannot be pruned */
function findComponent(p: KLayer, byName: Map<string, KLayer>, consumers: ReturnType<typeof consumersOf>, outputs: Set<string>): Component | string {
  const memo = new Map<string, number | undefined>();
  const count = (l: KLayer): number | undefined => {
    if (memo.has(l.name)) return memo.get(l.name);
    memo.set(l.name, undefined);
    let n: number | undefined;
    if (PRODUCERS.has(l.className)) n = channelsOf(l);
    else if (CHANNEL_WISE(l.className) || l.className === 'Add') {
      const i = byName.get(l.calls[0]?.[0]?.layer ?? '');
      n = i ? count(i) : undefined;
    } else if (l.className === 'Concatenate') {
      n = 0;
      for (const r of l.calls[0] ?? []) {
        const i = byName.get(r.layer);
        const c = i ? count(i) : undefined;
        if (c === undefined) {
          n = undefined;
          break;
        }
        n += c;
      }
    }
    memo.set(l.name, n);
    return n;
  };
  const comp: Component = { nodes: new Map(), parent: [], sources: [], sinks: [], observe: new Set() };
  const queue: KLayer[] = [];
  const add = (l: KLayer): number | string => {
    const have = comp.nodes.get(l.name);
    if (have) return have.base;
    const n = count(l);
    if (!n) return `cannot tell the channels of '${l.name}'`;
    const base = comp.parent.length;
    for (let c = 0; c < n; c++) comp.parent.push(base + c);
    comp.nodes.set(l.name, { base, n, layer: l });
    queue.push(l);
    return base;
  };
  const union = (a: number, b: number) => {
    const ra = findRoot(comp.parent, a);
    const rb = findRoot(comp.parent, b);
    if (ra !== rb) comp.parent[ra] = rb;
  };
  /** ties node `to` (channel offset + c) to node `from` (channel c) */
  const tie = (from: KLayer, to: KLayer, offset: number): string | null => {
    const a = add(from);
    const b = add(to);
    if (typeof a === 'string') return a;
    if (typeof b === 'string') return b;
    const n = comp.nodes.get(from.name)!.n;
    for (let c = 0; c < n; c++) union(a + c, b + offset + c);
    return null;
  };
  const first = add(p);
  if (typeof first === 'string') return first;
  while (queue.length) {
    const l = queue.shift()!;
    if (comp.nodes.size > 256) return 'coupled component too large';
    if (outputs.has(l.name)) return `'${l.name}' feeds a model output`;
    if (l.calls.length > 1) return `'${l.name}' is a shared layer`;
    if (l.sub) return `'${l.name}' is a nested model`;
    const cls = l.className;
    // backward: what the node's channels come from
    if (PRODUCERS.has(cls)) {
      if ((num(l.config.groups) ?? 1) !== 1 || str(l.config.data_format) === 'channels_first') return `'${l.name}' is a grouped or channels_first convolution`;
      if (!comp.sources.includes(l)) comp.sources.push(l);
    } else if (CHANNEL_WISE(cls) || cls === 'Add' || cls === 'Concatenate') {
      if (cls === 'BatchNormalization' && bnAxis(l.config) !== -1 && bnAxis(l.config) !== 3) return `'${l.name}' normalizes axis ${JSON.stringify(l.config.axis)}, not the channels`;
      if (cls === 'Activation' && /softmax/.test(str(l.config.activation) ?? '')) return `'${l.name}' is a softmax over the channels`;
      if (cls === 'Concatenate') {
        const ax = num(l.config.axis) ?? -1;
        if (ax !== -1 && ax !== 3) return `'${l.name}' concatenates axis ${ax}, not the channels`;
      }
      let offset = 0;
      for (const r of l.calls[0] ?? []) {
        const i = byName.get(r.layer);
        if (!i || r.tensor !== 0) return `'${l.name}' reads a tensor that cannot be traced`;
        const why = tie(i, l, cls === 'Concatenate' ? offset : 0);
        if (why) return why;
        if (cls === 'Add' || cls === 'Concatenate') comp.observe.add(i.name);
        offset += comp.nodes.get(i.name)!.n;
      }
    } else return `'${l.name}' (${cls}) produces coupled channels that are not handled`;
    // forward: who reads them
    const cons = consumers.get(l.name) ?? [];
    if (cons.length === 0) return `'${l.name}' has no consumer`;
    for (const { layer: x } of cons) {
      if (x.calls.length > 1) return `'${x.name}' is a shared layer`;
      if (x.sub) return `'${x.name}' is a nested model`;
      const xc = x.className;
      if (xc !== 'SeparableConv2D' && (xc.startsWith('DepthwiseConv') || xc.startsWith('SeparableConv'))) return `'${x.name}' (${xc}) is depthwise: channels tied through the depth multiplier are not handled`;
      if (PRODUCERS.has(xc)) {
        if ((num(x.config.groups) ?? 1) !== 1 || str(x.config.data_format) === 'channels_first') return `'${x.name}' is a grouped or channels_first convolution`;
        comp.sinks.push({ layer: x, node: l.name, flatten: null });
        comp.observe.add(l.name);
      } else if (xc === 'Flatten') {
        const fc = consumers.get(x.name) ?? [];
        if (fc.length !== 1 || fc[0].layer.className !== 'Dense' || outputs.has(x.name)) return `'${x.name}' (Flatten) does not feed a single Dense`;
        comp.sinks.push({ layer: fc[0].layer, node: l.name, flatten: x });
        comp.observe.add(l.name);
      } else if (CHANNEL_WISE(xc) || xc === 'Add' || xc === 'Concatenate') {
        const why = add(x);
        if (typeof why === 'string') return why;
      } else return `'${x.name}' (${xc}) reads coupled channels and is not handled`;
    }
  }
  return comp;
}

/** L1 or L2 norm of each output channel of a kernel whose last axis holds the C output channels */
function channelNorms(k: Float32Array, C: number, kind: 'l1' | 'l2'): Float64Array {
  const out = new Float64Array(C);
  for (let i = 0; i < k.length; i++) out[i % C] += kind === 'l1' ? Math.abs(k[i]) : k[i] * k[i];
  if (kind === 'l2') for (let c = 0; c < C; c++) out[c] = Math.sqrt(out[c]);
  return out;
}

/** how groups of coupled channels are scored when the criterion is not 'dead' */
interface GroupCriterion {
  kind: 'l1' | 'l2' | 'bn-gamma' | 'apoz';
  kernel: (l: KLayer) => Float32Array;
  gamma: (l: KLayer) => Float32Array | null;
  activated: (l: KLayer) => boolean;
  ratio?: number;
  threshold?: number;
}

/** per component: which channels go (removable in every observed node of their group), folded values */
function planComponent(
  comp: Component,
  stats: Map<string, ProbeLayerReport>,
  sinkKernel: (l: KLayer, C: number) => ConsumerKernel | string,
  norm: GroupCriterion | null,
): { keep: Map<string, Uint8Array>; reason?: string; kept: number; groups: number } {
  const N = comp.parent.length;
  const root = (i: number) => findRoot(comp.parent, i);
  const blocked = new Uint8Array(N);
  const blockAll = (reason: string) => ({ keep: new Map<string, Uint8Array>(), reason, kept: 0, groups: 0 });
  let score: Float64Array | null = null;
  if (norm) {
    // a score per group (the lowest go): l1 / l2: the sum over the producers of each one's channel norm;
    // bn-gamma: the sum of |gamma| over the BatchNorms on any tied tensor (network slimming); apoz: minus the
    // smallest APoZ among the probed activations of the group (a channel is only as idle as its busiest member).
    // Groups with nothing to score (no BatchNorm, no activation) are kept.
    score = new Float64Array(N);
    const scored = new Uint8Array(N);
    if (norm.kind === 'l1' || norm.kind === 'l2') {
      for (const src of comp.sources) {
        const node = comp.nodes.get(src.name)!;
        const per = channelNorms(norm.kernel(src), node.n, norm.kind);
        for (let c = 0; c < node.n; c++) score[root(node.base + c)] += per[c];
      }
      scored.fill(1);
    } else if (norm.kind === 'bn-gamma') {
      for (const node of comp.nodes.values()) {
        const g = node.layer.className === 'BatchNormalization' ? norm.gamma(node.layer) : null;
        if (!g || g.length !== node.n) continue;
        for (let c = 0; c < node.n; c++) {
          const r = root(node.base + c);
          score[r] += Math.abs(g[c]);
          scored[r] = 1;
        }
      }
    } else {
      for (const name of comp.observe) {
        const node = comp.nodes.get(name)!;
        if (!norm.activated(node.layer)) continue;
        const s = stats.get(name);
        if (!s || s.channels !== node.n || s.count === 0) return blockAll(`'${name}' was not probed with ${node.n} channels`);
        for (let c = 0; c < node.n; c++) {
          const r = root(node.base + c);
          score[r] = scored[r] ? Math.max(score[r], -s.apoz[c]) : -s.apoz[c];
          scored[r] = 1;
        }
      }
    }
    const sc = score;
    const all = [...new Set([...Array(N).keys()].map(root))];
    const roots = all.filter((r) => scored[r]).sort((a, b) => sc[a] - sc[b] || a - b);
    if (!roots.length) return blockAll(norm.kind === 'bn-gamma' ? 'no BatchNorm scales these coupled channels' : 'no probed activation carries these coupled channels');
    blocked.fill(1);
    const t = norm.threshold;
    const go = t !== undefined ? roots.filter((r) => (norm.kind === 'apoz' ? -sc[r] >= t : sc[r] <= t)) : roots.slice(0, Math.floor((norm.ratio ?? 0) * all.length));
    for (const r of go) blocked[r] = 0;
  } else for (const name of comp.observe) {
    const node = comp.nodes.get(name)!;
    const s = stats.get(name);
    if (!s || s.channels !== node.n || s.count === 0) return blockAll(`'${name}' was not probed with ${node.n} channels`);
    for (let c = 0; c < node.n; c++) if (!(s.min[c] === s.max[c] && Number.isFinite(s.min[c]))) blocked[root(node.base + c)] = 1;
  }
  for (const sk of comp.sinks) {
    const node = comp.nodes.get(sk.node)!;
    const consumer = sinkKernel(sk.layer, node.n);
    if (typeof consumer === 'string') return blockAll(consumer);
    if (norm) continue;
    const canFold = consumer.canFold;
    const s = stats.get(sk.node)!;
    for (let c = 0; c < node.n; c++) if (s.min[c] !== 0 && !canFold) blocked[root(node.base + c)] = 1;
  }
  // a layer keeps at least one channel (by norm: its best-scoring group)
  for (const node of comp.nodes.values()) {
    let any = false;
    for (let c = 0; c < node.n && !any; c++) if (blocked[root(node.base + c)]) any = true;
    let best = 0;
    if (score) for (let c = 1; c < node.n; c++) if (score[root(node.base + c)] > score[root(node.base + best)]) best = c;
    if (!any) blocked[root(node.base + best)] = 1;
  }
  const keep = new Map<string, Uint8Array>();
  for (const [name, node] of comp.nodes) {
    const k = new Uint8Array(node.n);
    for (let c = 0; c < node.n; c++) k[c] = blocked[root(node.base + c)];
    keep.set(name, k);
  }
  const roots = new Set<number>();
  const kept = new Set<number>();
  for (let i = 0; i < N; i++) {
    roots.add(root(i));
    if (blocked[root(i)]) kept.add(root(i));
  }
  return { keep, kept: kept.size, groups: roots.size };
}

/** Plans and applies pruning of dead (constant) units; verification is the caller's. */
export async function pruneKeras(model: KerasModel, opts: PruneOptions): Promise<KerasPruneResult> {
  const t0 = performance.now();
  if (opts.ratio !== undefined && !(opts.ratio >= 0 && opts.ratio < 1)) throw new ModelError(`pruning ratio ${opts.ratio} must be in [0, 1)`);
  if (opts.criterion !== 'dead' && opts.ratio === undefined && opts.threshold === undefined) throw new ModelError(`criterion '${opts.criterion}' needs a ratio (fraction of channels to remove) or a threshold`);
  const config = clone(model.modelConfig);
  const root = buildGraph(config);
  const consumers = consumersOf(root);
  const outputs = new Set(root.outputs.map((r) => r.layer));
  const skipped: SkippedCandidate[] = [];
  const chains: Chain[] = [];
  const wanted = opts.layers ? new Set(opts.layers) : null;
  for (const l of root.layers) {
    if (l.sub) {
      skipped.push({ layer: l.name, reason: 'nested model: its layers are not pruned' });
      continue;
    }
    if (!PRODUCERS.has(l.className)) continue;
    if (wanted && !wanted.has(l.name)) continue;
    const c = findChain(l, consumers, outputs);
    if (typeof c === 'string') skipped.push({ layer: l.name, reason: c });
    else chains.push(c);
  }
  if (wanted) for (const n of wanted) if (!root.layers.some((l) => l.name === n)) throw new ModelError(`no layer named '${n}' to prune`);
  const criterion = opts.criterion;
  // 'dead': producers whose channels are coupled through Add / Concatenate / fan-out, pruned group by group
  const comps: Component[] = [];
  if (criterion === 'dead' || criterion === 'l1' || criterion === 'l2' || criterion === 'bn-gamma' || criterion === 'apoz') {
    const byName = new Map(root.layers.map((l) => [l.name, l]));
    const inComp = new Set<string>();
    for (const s of skipped) {
      if (!/couples channels|feeds \d+ layers/.test(s.reason) || inComp.has(s.layer)) continue;
      const p = byName.get(s.layer);
      if (!p || !PRODUCERS.has(p.className)) continue;
      const c = findComponent(p, byName, consumers, outputs);
      if (typeof c === 'string') {
        s.reason = `${s.reason}; as a coupled group: ${c}`;
        continue;
      }
      if (wanted && !c.sources.every((x) => wanted.has(x.name))) {
        s.reason = `${s.reason}; its coupled group holds layers not asked for`;
        continue;
      }
      comps.push(c);
      for (const x of c.sources) inComp.add(x.name);
    }
    for (let i = skipped.length - 1; i >= 0; i--) if (inComp.has(skipped[i].layer)) skipped.splice(i, 1);
  }
  const observe = [...new Set([...chains.map((c) => c.observe), ...(criterion === 'dead' || criterion === 'apoz' ? comps.flatMap((c) => [...c.observe]) : [])])];
  let probe: ProbeReport | null = null;
  const mustProbe = criterion === 'dead' || criterion === 'apoz' || opts.inputs !== undefined || opts.compensate === true;
  if (observe.length) {
    const covered = opts.probe && observe.every((n) => opts.probe!.layers.some((l) => l.output === n));
    if (covered) probe = opts.probe!;
    else if (mustProbe) probe = await probeKeras(model, opts.inputs ?? { kind: 'random' }, { layers: observe, samples: opts.samples, batchSize: opts.batchSize, dims: opts.dims, signal: opts.signal });
  }
  const compensate = !!probe && (opts.compensate ?? true);
  const stats = new Map<string, ProbeLayerReport>((probe?.layers ?? []).map((l) => [l.output, l]));
  const edits = new Map<KWeight, WeightEdit>();
  const edit = (w: KWeight): WeightEdit => {
    let e = edits.get(w);
    if (!e) {
      e = { keeps: w.shape.map(() => null) };
      edits.set(w, e);
    }
    return e;
  };
  const groups: PruneGroup[] = [];
  const removed: Record<string, number> = {};
  const consumerRows: PrunePlan['consumers'] = [];
  const notes: string[] = [];
  const weightsOf = (l: KLayer) => model.weightsOf([l.name]);

  // eligibility, scores, the constants seen by each consumer
  interface Info {
    ch: Chain;
    s: ProbeLayerReport | null;
    consumer: ConsumerKernel;
    canFold: boolean;
    eligible: Uint8Array;
    score: Float64Array;
    remove: Uint8Array;
    group: PruneGroup;
  }
  const infos: Info[] = [];
  for (const ch of chains) {
    const C = ch.channels;
    const M = ch.mult;
    const W = C * M;
    const s = stats.get(ch.observe) ?? null;
    if (s && (s.channels !== W || s.count === 0)) {
      skipped.push({ layer: ch.producer.name, reason: `probed ${s.channels} channels at '${ch.observe}', expected ${W}` });
      continue;
    }
    if (!s && (criterion === 'dead' || criterion === 'apoz')) {
      skipped.push({ layer: ch.producer.name, reason: `'${ch.observe}' was not probed` });
      continue;
    }
    const cons = ch.consumer;
    const consumer = consumerKernel(cons, W, weightsOf(cons));
    if (typeof consumer === 'string') {
      skipped.push({ layer: ch.producer.name, reason: consumer });
      continue;
    }
    const canFold = consumer.canFold;
    const eligible = new Uint8Array(C).fill(1);
    const score = new Float64Array(C);
    const group: PruneGroup = { layers: [ch.producer.name, ...ch.dws.map((d) => d.name), ...ch.bns.map((b) => b.name)], channels: C, prunable: C, removed: [] };
    if (criterion === 'dead') {
      // producer channel c goes when every channel it became is constant (and, non-zero, foldable)
      let nonZero = 0;
      for (let c = 0; c < C; c++) {
        let ok = 1;
        for (let w = c * M; w < (c + 1) * M; w++) {
          const constant = s!.min[w] === s!.max[w] && Number.isFinite(s!.min[w]);
          if (constant && s!.min[w] !== 0 && !canFold) nonZero++;
          if (!(constant && (s!.min[w] === 0 || canFold))) ok = 0;
        }
        eligible[c] = ok;
      }
      if (nonZero) group.reason = `${nonZero} constant non-zero unit(s) kept: '${cons.name}' ${consumer.hasBias ? 'pads its input with zeros' : 'has no bias'} to fold them into`;
    } else if (criterion === 'l1' || criterion === 'l2') {
      score.set(channelNorms(weightToFloat32(weightsOf(ch.producer).find((w) => OUT_KERNEL.has(w.key))!), C, criterion));
    } else if (criterion === 'bn-gamma') {
      const bn = ch.bns.find((b) => weightsOf(b).some((w) => w.key === 'gamma'));
      if (!bn) {
        group.prunable = 0;
        group.reason = 'no BatchNorm scales these channels';
        eligible.fill(0);
      } else {
        // after a depth multiplier, the sum over the channels each producer channel became
        const k = ch.multOf.get(bn) ?? 1;
        weightToFloat32(weightsOf(bn).find((w) => w.key === 'gamma')!).forEach((g, i) => (score[Math.floor(i / k)] += Math.abs(g)));
      }
    } else if (criterion === 'apoz') {
      const upTo = [ch.producer, ...ch.path];
      const activated = upTo.slice(0, upTo.findIndex((l) => l.name === ch.observe) + 1).some((l) => layerActivation(l) !== null);
      if (!activated) {
        group.reason = 'no probed activation carries these channels';
        eligible.fill(0);
      } else for (let c = 0; c < C; c++) score[c] = -Math.min(...s!.apoz.slice(c * M, (c + 1) * M));
    } else throw new ModelError(`unknown pruning criterion '${String(criterion)}'`);
    group.prunable = eligible.reduce((a, b) => a + b, 0);
    infos.push({ ch, s, consumer, canFold, eligible, score, remove: new Uint8Array(C), group });
  }

  // selection
  const scope = opts.scope ?? 'layer';
  if (criterion === 'dead') {
    for (const f of infos) f.remove.set(f.eligible);
  } else if (opts.threshold !== undefined) {
    const t = opts.threshold;
    for (const f of infos) f.score.forEach((v, c) => (f.remove[c] = f.eligible[c] && (criterion === 'apoz' ? -v >= t : v <= t) ? 1 : 0));
  } else {
    const ratio = opts.ratio ?? 0;
    if (scope === 'layer') {
      for (const f of infos) {
        const order = [...f.score.keys()].filter((c) => f.eligible[c]).sort((a, b) => f.score[a] - f.score[b]);
        for (const c of order.slice(0, Math.floor(ratio * f.ch.channels))) f.remove[c] = 1;
      }
    } else {
      const pool: { f: Info; c: number; s: number }[] = [];
      let total = 0;
      for (const f of infos) {
        const cand = [...f.score.keys()].filter((c) => f.eligible[c]);
        if (!cand.length) continue;
        total += f.ch.channels;
        // weight norms differ in scale from layer to layer: compare them relative to their layer's mean
        const mean = cand.reduce((p, c) => p + f.score[c], 0) / cand.length;
        for (const c of cand) pool.push({ f, c, s: criterion === 'l1' || criterion === 'l2' ? (mean > 0 ? f.score[c] / mean : 0) : f.score[c] });
      }
      pool.sort((a, b) => a.s - b.s);
      for (const p of pool.slice(0, Math.floor(ratio * total))) p.f.remove[p.c] = 1;
    }
  }

  let approximate = 0;
  for (const f of infos) {
    const { ch, s, consumer, remove, group } = f;
    const C = ch.channels;
    const cons = ch.consumer;
    let count = remove.reduce((a, b) => a + b, 0);
    if (count === C) {
      // keep the best-scoring unit: a layer with zero units is not a model Keras loads
      let best = 0;
      for (let c = 1; c < C; c++) if (f.score[c] > f.score[best]) best = c;
      remove[best] = 0;
      count--;
    }
    for (let c = 0; c < C; c++) if (remove[c]) group.removed.push(c);
    groups.push(group);
    if (count === 0) {
      group.reason ??= criterion === 'dead' ? 'no unit is constant on the probe inputs' : 'nothing selected';
      continue;
    }
    // the value each removed unit is replaced by: its constant (exact) or, compensating, its probed mean
    // channels where the consumer reads: producer channel c became w = c * M ... c * M + M - 1
    const M = ch.mult;
    const W = C * M;
    const value = new Float64Array(W);
    for (let w = 0; w < W; w++) {
      if (!remove[Math.floor(w / M)] || !s) continue;
      const constant = s.min[w] === s.max[w];
      const v = constant ? s.min[w] : compensate ? s.mean[w] : 0;
      if (v !== 0 && !f.canFold) {
        approximate++;
        continue;
      }
      value[w] = v;
    }
    const keep = new Uint8Array(C);
    for (let c = 0; c < C; c++) keep[c] = remove[c] ? 0 : 1;
    // producer: kernel last axis, bias; BatchNorms: every per-channel vector; depthwise: kernel slices, biases
    for (const w of weightsOf(ch.producer)) {
      if (OUT_KERNEL.has(w.key)) edit(w).keeps[w.shape.length - 1] = keep;
      else if (w.key === 'bias') edit(w).keeps[0] = keep;
    }
    for (const bn of ch.bns) {
      const k = ch.multOf.get(bn) ?? 1;
      for (const w of weightsOf(bn)) if (w.shape.length === 1 && w.shape[0] === C * k) edit(w).keeps[0] = expand(keep, k);
    }
    for (const dw of ch.dws) {
      const out = ch.multOf.get(dw) ?? 1;
      const inM = out / (num(dw.config.depth_multiplier) ?? 1);
      for (const w of weightsOf(dw)) {
        if (w.shape.length === 4 && w.shape[2] === C * inM) edit(w).keeps[2] = expand(keep, inM);
        else if (w.shape.length === 1 && w.shape[0] === C * out) edit(w).keeps[0] = expand(keep, out);
      }
    }
    // consumer: input rows, constants folded into the bias
    const folded = consumer.apply(expand(keep, M), value, edit);
    consumerRows.push({ layer: cons.name, removed_inputs: count * M * consumer.perChannel, folded_constants: folded });
    // config; Keras 3 recorded shapes: each layer reads C x (the multiplier before it) channels
    const newC = C - count;
    ch.producer.config[ch.producer.className === 'Dense' ? 'units' : 'filters'] = newC;
    const S = consumer.perChannel;
    let afterFlatten = false;
    let before = 1;
    for (const l of [...ch.path, cons]) {
      if (afterFlatten) fixRecordedShapes(l.entry, S * W, S * newC * M, true);
      else fixRecordedShapes(l.entry, C * before, newC * before, true);
      if (l.className === 'Flatten') afterFlatten = true;
      before = ch.multOf.get(l) ?? before;
    }
    removed[ch.producer.name] = count;
  }
  const sinkKernel = (l: KLayer, C: number) => consumerKernel(l, C, weightsOf(l));
  const norm: GroupCriterion | null =
    criterion === 'dead'
      ? null
      : {
          kind: criterion,
          kernel: (l) => weightToFloat32(weightsOf(l).find((w) => OUT_KERNEL.has(w.key))!),
          gamma: (l) => {
            const g = weightsOf(l).find((w) => w.key === 'gamma');
            return g ? weightToFloat32(g) : null;
          },
          activated: (l) => layerActivation(l) !== null,
          ratio: opts.ratio,
          threshold: opts.threshold,
        };
  for (const comp of comps) {
    const plan = planComponent(comp, stats, sinkKernel, norm);
    const group: PruneGroup = { layers: [...comp.sources.map((l) => l.name), ...[...comp.nodes.values()].filter((n) => n.layer.className === 'BatchNormalization').map((n) => n.layer.name)], channels: plan.groups, prunable: plan.groups - plan.kept, removed: [] };
    groups.push(group);
    if (plan.reason) {
      group.prunable = 0;
      group.reason = plan.reason;
      continue;
    }
    const keepOf = (name: string) => plan.keep.get(name)!;
    const first = keepOf(comp.sources[0].name);
    for (let c = 0; c < first.length; c++) if (!first[c]) group.removed.push(c);
    if (plan.kept === plan.groups) {
      group.reason = norm ? 'nothing selected' : 'no coupled channel is constant in every member on the probe inputs';
      continue;
    }
    const kept = (k: Uint8Array) => k.reduce((a, b) => a + b, 0);
    for (const src of comp.sources) {
      const keep = keepOf(src.name);
      const n = kept(keep);
      if (n === keep.length) continue;
      for (const w of weightsOf(src)) {
        if (OUT_KERNEL.has(w.key)) edit(w).keeps[w.shape.length - 1] = keep;
        else if (w.key === 'bias') edit(w).keeps[0] = keep;
      }
      src.config[src.className === 'Dense' ? 'units' : 'filters'] = n;
      removed[src.name] = keep.length - n;
    }
    for (const node of comp.nodes.values()) {
      if (node.layer.className !== 'BatchNormalization') continue;
      const keep = keepOf(node.layer.name);
      for (const w of weightsOf(node.layer)) if (w.shape.length === 1 && w.shape[0] === node.n) edit(w).keeps[0] = keep;
    }
    // recorded shapes (Keras 3) of every layer reading a node
    const readers = new Set<KLayer>([...[...comp.nodes.values()].map((n) => n.layer), ...comp.sinks.map((s) => s.flatten ?? s.layer)]);
    for (const x of readers)
      (x.calls[0] ?? []).forEach((r, i, refs) => {
        const node = comp.nodes.get(r.layer);
        if (node) fixReadShape(x.entry, r.layer, refs.length > 1 ? i : null, node.n, kept(keepOf(r.layer)));
      });
    for (const sk of comp.sinks) {
      const node = comp.nodes.get(sk.node)!;
      const keep = keepOf(sk.node);
      const C = node.n;
      const consumer = sinkKernel(sk.layer, C) as ConsumerKernel; // checked by planComponent
      const s = stats.get(sk.node);
      const value = new Float64Array(C);
      if (!norm && s) for (let c = 0; c < C; c++) if (!keep[c]) value[c] = s.min[c];
      const folded = consumer.apply(keep, value, edit);
      const nk = kept(keep);
      if (sk.flatten) fixReadShape(sk.layer.entry, sk.flatten.name, null, consumer.perChannel * C, consumer.perChannel * nk);
      consumerRows.push({ layer: sk.layer.name, removed_inputs: (C - nk) * consumer.perChannel, folded_constants: folded });
    }
  }
  if (criterion !== 'dead') {
    if (compensate) notes.push('removed units that are not constant have their probed mean folded into the next bias (a first-order correction): the outputs change, verify and fine-tune');
    else notes.push(`pruning by ${criterion} changes the function: fine-tune after`);
    if (comps.length) {
      const how = criterion === 'bn-gamma' ? "the sum of |gamma| over their BatchNorms" : criterion === 'apoz' ? 'the smallest APoZ among their probed activations' : `the sum of their producers' ${criterion} norms`;
      notes.push(`coupled groups (residual Add / Concatenate) are scored by ${how}, the ratio applied group by group; their removed channels are not compensated`);
    }
    if (approximate) notes.push(`${approximate} removed unit(s) feed a convolution that pads with zeros or has no bias: not compensated`);
  }

  // weights
  let foldedFloat = 0;
  const weights = model.weights.map((w) => {
    const e = edits.get(w);
    if (!e) return w;
    if (e.add) {
      const v = weightToFloat32(w);
      for (let i = 0; i < v.length; i++) v[i] = Math.fround(v[i] + e.add[i]);
      const sl = sliceBytes(new Uint8Array(v.buffer), w.shape, 4, e.keeps);
      if (w.quantization) foldedFloat++;
      return float32Weight({ storeName: w.storeName, layerPath: w.layerPath, key: w.key, shape: sl.dims, ...(w.group !== undefined ? { group: w.group } : {}) }, new Float32Array(sl.bytes.buffer));
    }
    const sl = sliceBytes(w.bytes, w.shape, bytesPerElement(w), e.keeps);
    return { ...w, shape: sl.dims, bytes: sl.bytes };
  });
  if (foldedFloat) notes.push(`${foldedFloat} quantized bias(es) received folded constants and are written as float32`);
  const any = Object.keys(removed).length > 0;
  const pruned = any ? model.derive(config, weights) : model;
  const before = sizeWithMacs(model);
  const after = any ? sizeWithMacs(pruned) : before;
  const plan: PrunePlan = {
    criterion: opts.criterion,
    scope,
    ratio: opts.ratio ?? null,
    threshold: opts.threshold ?? null,
    exact: opts.criterion === 'dead',
    groups,
    removed,
    consumers: consumerRows,
    skipped,
    notes,
  };
  if (!chains.length && !comps.length) notes.push('no Dense / Conv2D chain that can be pruned (see skipped)');
  return {
    model: pruned,
    plan,
    removed,
    probe,
    params_before: before.params,
    params_after: after.params,
    macs_before: before.macs,
    macs_after: after.macs,
    bytes_before: before.bytes,
    bytes_after: after.bytes,
    seconds: (performance.now() - t0) / 1000,
  };
}
