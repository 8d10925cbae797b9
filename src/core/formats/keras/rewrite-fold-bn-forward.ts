/**
 * Forward BatchNorm fold and BatchNorm -> affine for the Keras-topology formats (TF.js layers, Keras 2 .h5,
 * Keras 3 .keras), the Keras side of the ONNX rewrite-fold-bn-forward.ts / rewrite-standalone-bn.ts.
 *
 * fold-batchnorm-forward: inference BN(x) = s*x + t per channel (channels-last), so for the ONE layer reading
 * it, W (s*x + t) + b = (W diag(s)) x + (W t + b): the kernel rows of input channel c are scaled by s[c] and
 * the bias gains sum over the kernel of W * t (a bias is added, use_bias set, when there was none).
 * - Conv1D/2D/3D and DepthwiseConv1D/2D (output channel c*mult + m) only with 'valid' padding or 1x1 kernels:
 *   with 'same' padding and a larger kernel the border taps read zeros of the NORMALIZED input, which after
 *   folding would be zeros of the raw input (BN output t, not 0). groups > 1 and channels_first are skipped.
 * - Dense directly, or through a channels-last Flatten: feature (h*W + w)*C + c gets channel c (NHWC order).
 * BNs the backward fold removes are left to it; shared layers, training=True calls, several readers and model
 * outputs are skipped with the reason. Chains (BN -> BN -> Conv) fold completely: apply repeats until nothing
 * changes and the plan is what the repeated apply does.
 *
 * batchnorm-to-affine: a BN that folds in neither direction, on a 4-D NHWC tensor, becomes
 * DepthwiseConv2D(kernel_size 1, depth_multiplier 1, use_bias) with kernel = s, bias = t (exact, runs in
 * tfjs-layers and Keras). On [N, C] tensors it stays: Keras core has no per-feature affine layer (a Dense
 * would need a C x C kernel, mostly zeros); rank 3 would need DepthwiseConv1D, which tfjs-layers 4.22 lacks.
 */
import { batchNormAffine, type Affine } from '../../rewrites/batchnorm-math';
import type { FoldCandidate, FoldPlan, RewriteCandidate, RewritePlan, SkippedCandidate } from '../../types';
import { bnAxis, display, keras3, planKerasFold, rewire } from './fold';
import { callKwargs, flattenModel, type Shape } from './graph';
import { arr, clone, num, str, type Json, type JsonObject } from './json';
import { float32Weight, weightToFloat32, type KerasModel, type KWeight } from './model';
import { allLayers } from './rewrite-dropout';
import { buildGraph, consumersOf, type KGraph, type KLayer } from './topology';

const CONV = new Set(['Conv1D', 'Conv2D', 'Conv3D', 'Convolution2D', 'Convolution1D']);
const DEPTHWISE = new Set(['DepthwiseConv2D', 'DepthwiseConv1D']);
const FLOAT = new Set(['float32', 'float16', 'float64']);
const prod = (a: number[]) => a.reduce((p, v) => p * v, 1);

interface FwdAction {
  graph: KGraph;
  bn: KLayer;
  target: KLayer;
  flatten: KLayer | null;
  candidate: FoldCandidate;
}

/** input shape of every layer's first call, by display name */
function inputShapes(root: KGraph): Map<string, Shape | null> {
  const shapes = new Map<string, Shape | null>();
  try {
    for (const f of flattenModel(root, 1).layers) shapes.set(f.name, f.inputShapes[0] ?? null);
  } catch {
    // unknown shapes are reported per layer
  }
  return shapes;
}

/** why a BN cannot be rewritten at all (either way); null when it can */
function bnBlocker(model: KerasModel, g: KGraph, l: KLayer, shape: Shape | null): string | null {
  if (l.calls.length !== 1) return l.calls.length > 1 ? `it is a shared layer called ${l.calls.length} times` : 'it is not called in the model';
  if (l.calls[0].length !== 1) return 'it does not read exactly one tensor';
  if (callKwargs(l, 0).training === true) return 'it is called with training=True: it normalizes with batch statistics also at inference, which no folded layer can do';
  if (!shape) return 'its input shape is unknown';
  const axis = bnAxis(l.config);
  if (axis === null || (axis !== -1 && axis !== shape.length - 1)) return `it normalizes axis ${JSON.stringify(l.config.axis)}, not the last (channels-last) axis`;
  const bw = model.weightsOf([...g.scope, l.name]);
  const mean = bw.find((w) => w.key === 'moving_mean');
  const variance = bw.find((w) => w.key === 'moving_variance');
  if (!mean || !variance) return 'its moving mean/variance are missing from the file';
  if (!bw.every((w) => FLOAT.has(w.dtype))) return 'its weights are not floating point';
  return null;
}

function affineOf(model: KerasModel, path: string[], config: JsonObject): Affine {
  const bw = model.weightsOf(path);
  const get = (k: string) => bw.find((w) => w.key === k);
  const gamma = get('gamma');
  const beta = get('beta');
  return batchNormAffine(gamma ? weightToFloat32(gamma) : null, beta ? weightToFloat32(beta) : null, weightToFloat32(get('moving_mean') as KWeight), weightToFloat32(get('moving_variance') as KWeight), num(config.epsilon) ?? 1e-3);
}

function analyseForward(model: KerasModel, root: KGraph): { plan: FoldPlan; actions: FwdAction[] } {
  const shapes = inputShapes(root);
  const backward = new Set(planKerasFold(model).candidates.map((c) => c.batchnorm));
  const candidates: FoldCandidate[] = [];
  const skipped: SkippedCandidate[] = [];
  const actions: FwdAction[] = [];
  for (const { graph: g, layer: l, name } of allLayers(root)) {
    if (l.className !== 'BatchNormalization') continue;
    const skip = (reason: string) => skipped.push({ layer: name, reason });
    if (backward.has(name)) {
      skip('it folds into the layer before it (fold-batchnorm removes it entirely)');
      continue;
    }
    const shape = shapes.get(name) ?? null;
    const blocked = bnBlocker(model, g, l, shape);
    if (blocked || !shape) {
      skip(blocked ?? 'its input shape is unknown');
      continue;
    }
    const cons = consumersOf(g);
    const isOutput = (n: string) => g.outputs.some((r) => r.layer === n);
    const readers = cons.get(l.name) ?? [];
    if (isOutput(l.name)) {
      skip('its output is a model output: there is no layer after it to fold into');
      continue;
    }
    if (readers.length !== 1) {
      skip(readers.length ? `its output is read by ${readers.length} layers (${readers.map((r) => display(g, r.layer.name)).join(', ')}); only a single reader is folded` : 'nothing reads its output');
      continue;
    }
    let target = readers[0].layer;
    let flatten: KLayer | null = null;
    const C = shape[shape.length - 1];
    if (target.className === 'Flatten') {
      flatten = target;
      const fName = display(g, flatten.name);
      if (str(flatten.config.data_format) === 'channels_first') {
        skip(`${fName} flattens channels-first, so features are not in NHWC order`);
        continue;
      }
      const fr = cons.get(flatten.name) ?? [];
      if (flatten.calls.length !== 1 || fr.length !== 1 || isOutput(flatten.name) || fr[0].layer.className !== 'Dense') {
        skip(`${fName} is not read by exactly one Dense layer`);
        continue;
      }
      target = fr[0].layer;
    }
    const tName = display(g, target.name);
    if (target.sub || !(CONV.has(target.className) || DEPTHWISE.has(target.className) || target.className === 'Dense')) {
      skip(`the layer after it, ${tName} (${target.className}), is not a Conv/Dense layer it can be folded into`);
      continue;
    }
    if (target.calls.length !== 1) {
      skip(`${tName} is a shared layer called ${target.calls.length} times`);
      continue;
    }
    const tc = target.config;
    if (target.className !== 'Dense') {
      if (str(tc.data_format) === 'channels_first') {
        skip(`${tName} is channels-first`);
        continue;
      }
      if ((num(tc.groups) ?? 1) !== 1) {
        skip(`${tName} is a grouped convolution (groups=${String(tc.groups)})`);
        continue;
      }
      const padding = str(tc.padding) ?? 'valid';
      const ks = (arr(tc.kernel_size) ?? [tc.kernel_size]).map((v) => Number(v));
      const pointwise = ks.every((k) => k === 1);
      if (padding !== 'valid' && !(padding === 'same' && pointwise)) {
        skip(
          `${tName} uses '${padding}' padding with a ${ks.join('x')} kernel: its border taps read zero padding of the normalized input, which after folding would be zero padding of the raw input (BatchNorm output = shift, not 0), so folding is not exact`,
        );
        continue;
      }
    }
    const kernel = model.weightsOf([...g.scope, target.name]).find((w) => w.key === 'kernel' || w.key === 'depthwise_kernel');
    if (!kernel || !FLOAT.has(kernel.dtype)) {
      skip(`the kernel of ${tName} is ${kernel ? 'not floating point' : 'missing from the file'}`);
      continue;
    }
    const ksh = kernel.shape;
    if (target.className === 'Dense') {
      const spatial = flatten ? shape.slice(1, -1) : [];
      if (C === null || spatial.some((d) => d === null) || ksh[0] !== prod(spatial as number[]) * C) {
        skip(`the input features of ${tName} (${ksh[0]}) do not match the BatchNorm's ${flatten ? 'flattened ' : ''}channels`);
        continue;
      }
    } else if (ksh[ksh.length - 2] !== C) {
      skip(`${tName} takes ${ksh[ksh.length - 2]} input channels but the BatchNorm has ${String(C)}`);
      continue;
    }
    const candidate: FoldCandidate = { batchnorm: name, into: tName, into_op: target.className, direction: 'forward' };
    if (flatten) candidate.note = `through ${display(g, flatten.name)} (NHWC feature order)`;
    candidates.push(candidate);
    actions.push({ graph: g, bn: l, target, flatten, candidate });
  }
  return { plan: { candidates, skipped }, actions };
}

/** removes a layer from its graph; its readers read its input */
function removeLayer(g: KGraph, l: KLayer): void {
  const idx = g.entries.indexOf(l.entry);
  if (g.sequential) {
    const first = g.layers.find((x) => x.className !== 'InputLayer') === l && !g.layers.some((x) => x.className === 'InputLayer');
    const next = g.layers[g.layers.indexOf(l) + 1];
    if (first && next) {
      for (const k of ['batch_input_shape', 'batch_shape', 'input_shape', 'input_dtype']) if (l.config[k] !== undefined && next.config[k] === undefined) next.config[k] = l.config[k];
    }
  } else {
    const src = l.calls[0][0];
    rewire(g, l.name, src.layer, src.node, src.tensor);
  }
  if (idx >= 0) g.entries.splice(idx, 1);
  g.layers = g.layers.filter((x) => x !== l);
}

function zeros(entry: JsonObject): JsonObject {
  return keras3(entry) ? { module: 'keras.initializers', class_name: 'Zeros', config: {}, registered_name: null } : { class_name: 'Zeros', config: {} };
}

function newWeightName(model: KerasModel, ref: KWeight, key: string, names: Set<string>): string {
  let name = /moving_mean/.test(ref.storeName) ? ref.storeName.replace(/moving_mean(?!.*moving_mean)/, key) : `${ref.storeName}_${key}`;
  if (model.format === 'keras') name = `${ref.storeName}_${key}`;
  while (names.has(name)) name += '_';
  names.add(name);
  return name;
}

function applyForwardOnce(model: KerasModel): { model: KerasModel; plan: FoldPlan } {
  const config = clone(model.modelConfig);
  const root = buildGraph(config);
  const { plan, actions } = analyseForward(model, root);
  let weights = [...model.weights];
  const names = new Set(weights.map((w) => w.storeName));
  for (const a of actions) {
    const { graph: g, bn, target } = a;
    const tPath = [...g.scope, target.name].join('/');
    const bPath = [...g.scope, bn.name];
    const aff = affineOf(model, bPath, bn.config);
    const C = aff.scale.length;
    const kernel = weights.find((w) => w.layerPath.join('/') === tPath && (w.key === 'kernel' || w.key === 'depthwise_kernel')) as KWeight;
    const bias = weights.find((w) => w.layerPath.join('/') === tPath && w.key === 'bias');
    const ks = kernel.shape;
    const depthwise = DEPTHWISE.has(target.className);
    // kernel viewed as [K, C, M]: Conv [..k, C, Cout], Depthwise [..k, C, mult], Dense [S*C, U] (feature (s, c))
    const M = ks[ks.length - 1];
    const K = prod(ks) / (C * M);
    const outs = depthwise ? C * M : M;
    const w = weightToFloat32(kernel);
    const nk = new Float32Array(w.length);
    const add = new Float64Array(outs);
    for (let k = 0, i = 0; k < K; k++) {
      for (let c = 0; c < C; c++) {
        const s = aff.scale[c];
        const t = aff.shift[c];
        for (let m = 0; m < M; m++, i++) {
          nk[i] = w[i] * s;
          add[depthwise ? c * M + m : m] += w[i] * t;
        }
      }
    }
    const ob = bias ? weightToFloat32(bias) : null;
    const nb = new Float32Array(outs);
    for (let o = 0; o < outs; o++) nb[o] = (ob ? ob[o] : 0) + add[o];
    const plain = (base: KWeight, values: Float32Array) => float32Weight({ storeName: base.storeName, layerPath: base.layerPath, key: base.key, shape: base.shape, ...(base.group !== undefined ? { group: base.group } : {}) }, values);
    const drop = new Set(weights.filter((x) => x.layerPath.join('/') === bPath.join('/')));
    const next: KWeight[] = [];
    for (const x of weights) {
      if (drop.has(x)) continue;
      if (x === kernel) {
        next.push(plain(kernel, nk));
        if (!bias) {
          let name: string;
          if (model.format === 'keras') name = `${kernel.storeName}_bias`;
          else {
            const i = kernel.storeName.lastIndexOf('/');
            const suffix = model.format === 'keras-h5' && /:\d+$/.test(kernel.storeName) ? 'bias:0' : 'bias';
            name = i >= 0 ? `${kernel.storeName.slice(0, i + 1)}${suffix}` : `${kernel.storeName}_bias`;
          }
          while (names.has(name)) name += '_';
          names.add(name);
          next.push(plain({ ...kernel, storeName: name, key: 'bias', shape: [outs] }, nb));
        }
        continue;
      }
      if (x === bias) {
        next.push(plain(bias, nb));
        continue;
      }
      next.push(x);
    }
    weights = next;
    const tc = target.config;
    if (tc.use_bias !== true) {
      tc.use_bias = true;
      if (tc.bias_initializer === undefined || tc.bias_initializer === null) tc.bias_initializer = zeros(target.entry);
      if (!('bias_regularizer' in tc)) tc.bias_regularizer = null;
      if (!('bias_constraint' in tc)) tc.bias_constraint = null;
    }
    removeLayer(g, bn);
  }
  return { model: model.derive(config, weights), plan };
}

/** repeats a one-pass rewrite until nothing changes; candidates of every pass, the skips of the last */
function repeat(model: KerasModel, once: (m: KerasModel) => { model: KerasModel; plan: FoldPlan }): { model: KerasModel; plan: FoldPlan } {
  let r = once(model);
  const done: FoldCandidate[] = [...r.plan.candidates];
  let current = r.model;
  for (let round = 0; r.plan.candidates.length > 0 && round < 64; round++) {
    r = once(current);
    if (!r.plan.candidates.length) break;
    done.push(...r.plan.candidates);
    current = r.model;
  }
  const folded = new Set(done.map((c) => c.batchnorm));
  return { model: current, plan: { candidates: done, skipped: r.plan.skipped.filter((s) => !folded.has(s.layer)) } };
}

export function applyKerasFoldForward(model: KerasModel): { model: KerasModel; plan: FoldPlan } {
  return repeat(model, applyForwardOnce);
}

export function planKerasFoldForward(model: KerasModel): FoldPlan {
  return applyKerasFoldForward(model).plan;
}

interface AffineAction {
  graph: KGraph;
  layer: KLayer;
}

function analyseAffine(model: KerasModel, root: KGraph): { plan: RewritePlan; actions: AffineAction[] } {
  const shapes = inputShapes(root);
  const backward = new Map(planKerasFold(model).candidates.map((c) => [c.batchnorm, c.into]));
  const forward = new Map(planKerasFoldForward(model).candidates.map((c) => [c.batchnorm, c.into]));
  const candidates: RewriteCandidate[] = [];
  const skipped: SkippedCandidate[] = [];
  const actions: AffineAction[] = [];
  for (const { graph: g, layer: l, name } of allLayers(root)) {
    if (l.className !== 'BatchNormalization') continue;
    const skip = (reason: string) => skipped.push({ layer: name, reason });
    if (backward.has(name)) {
      skip(`it folds into ${backward.get(name)} (fold-batchnorm removes it entirely)`);
      continue;
    }
    if (forward.has(name)) {
      skip(`it folds forward into ${forward.get(name)} (fold-batchnorm-forward removes it entirely)`);
      continue;
    }
    const shape = shapes.get(name) ?? null;
    const blocked = bnBlocker(model, g, l, shape);
    if (blocked || !shape) {
      skip(blocked ?? 'its input shape is unknown');
      continue;
    }
    if (shape.length !== 4) {
      skip(
        shape.length === 2
          ? 'it normalizes an [N, C] tensor: Keras has no per-feature affine layer for it (a Dense would need a C x C kernel), so it stays a BatchNormalization'
          : `its input has rank ${shape.length}: only 4-D NHWC tensors become a DepthwiseConv2D (DepthwiseConv1D is missing from tfjs-layers 4.22)`,
      );
      continue;
    }
    candidates.push({ layer: name, action: `BatchNormalization -> DepthwiseConv2D(kernel_size 1, depth_multiplier 1, use_bias) with kernel = gamma/sqrt(var+eps), bias = beta - mean*kernel on ${shape[3] ?? '?'} channels` });
    actions.push({ graph: g, layer: l });
  }
  return { plan: { rewrite: 'batchnorm-to-affine', candidates, skipped }, actions };
}

export function planKerasBatchNormToAffine(model: KerasModel): RewritePlan {
  return analyseAffine(model, buildGraph(model.modelConfig)).plan;
}

export function applyKerasBatchNormToAffine(model: KerasModel): { model: KerasModel; plan: RewritePlan } {
  const config = clone(model.modelConfig);
  const root = buildGraph(config);
  const { plan, actions } = analyseAffine(model, root);
  let weights = [...model.weights];
  const names = new Set(weights.map((w) => w.storeName));
  for (const { graph: g, layer: l } of actions) {
    const path = [...g.scope, l.name];
    const aff = affineOf(model, path, l.config);
    const C = aff.scale.length;
    const k3 = keras3(l.entry);
    const init = (cls: string): JsonObject => (k3 ? { module: 'keras.initializers', class_name: cls, config: {}, registered_name: null } : { class_name: cls, config: {} });
    const old = l.config;
    const c: JsonObject = {};
    for (const k of ['name', 'trainable', 'dtype', 'batch_input_shape', 'batch_shape', 'input_shape']) if (old[k] !== undefined) c[k] = old[k];
    Object.assign(c, {
      kernel_size: [1, 1],
      strides: [1, 1],
      padding: 'valid',
      data_format: 'channels_last',
      dilation_rate: [1, 1],
      activation: 'linear',
      use_bias: true,
      depth_multiplier: 1,
      depthwise_initializer: init('Ones'),
      bias_initializer: init('Zeros'),
      depthwise_regularizer: null,
      bias_regularizer: null,
      activity_regularizer: null,
      depthwise_constraint: null,
      bias_constraint: null,
    } as Record<string, Json>);
    l.entry.class_name = 'DepthwiseConv2D';
    if (k3) l.entry.module = 'keras.layers';
    l.entry.config = c;
    const bw = weights.filter((w) => w.layerPath.join('/') === path.join('/'));
    const ref = bw.find((w) => w.key === 'moving_mean') as KWeight;
    const group = ref.group !== undefined ? { group: ref.group } : {};
    const kernel = float32Weight({ storeName: newWeightName(model, ref, 'depthwise_kernel', names), layerPath: ref.layerPath, key: 'depthwise_kernel', shape: [1, 1, C, 1], ...group }, Float32Array.from(aff.scale));
    const bias = float32Weight({ storeName: newWeightName(model, ref, 'bias', names), layerPath: ref.layerPath, key: 'bias', shape: [C], ...group }, Float32Array.from(aff.shift));
    const first = weights.indexOf(bw[0]);
    weights = weights.filter((w) => !bw.includes(w));
    weights.splice(first, 0, kernel, bias);
  }
  return { model: model.derive(config, weights), plan };
}
