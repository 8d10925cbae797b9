/**
 * Fold BatchNormalization into the Conv1D/Conv2D/Conv3D, DepthwiseConv2D (kernel [kh, kw, in, mult], output
 * channel in * mult + m), Conv*Transpose (kernel [kh, kw, out, in]) or Dense layer before it, for every
 * Keras-topology format. Handles center/scale false, any epsilon, the axis check, use_bias false (a bias is
 * added and use_bias set), Sequential and functional models (consumers rewired, Keras 2 and Keras 3 inbound
 * node formats) and nested models. Also: freeze BatchNorm (trainable false = inference mode in Keras 2+).
 */
import { batchNormAffine, foldBias, scaleKernel } from '../../rewrites/batchnorm-math';
import type { FoldCandidate, FoldPlan, SkippedCandidate } from '../../types';
import { activationName, callKwargs, flattenModel, isDepthwise, isTranspose, type Shape } from './graph';
import { arr, clone, isObject, num, str, type Json, type JsonObject } from './json';
import { bytesPerElement, float32Weight, KerasModel, quantizeWeight, weightToFloat32, type KWeight } from './model';
import { buildGraph, consumersOf, type KGraph, type KLayer } from './topology';

const FOLDABLE = new Set(['Conv1D', 'Conv2D', 'Conv3D', 'Convolution2D', 'DepthwiseConv2D', 'DepthwiseConv1D', 'Conv1DTranspose', 'Conv2DTranspose', 'Conv3DTranspose', 'Dense']);
const FLOAT = new Set(['float32', 'float16', 'float64']);

interface Action {
  graph: KGraph;
  bn: KLayer;
  producer: KLayer;
  candidate: FoldCandidate;
}

export interface KerasFoldOptions {
  /** re-quantize rewritten tensors whose source was quantized (TF.js affine uint8/uint16) instead of float32 */
  requantize?: 'uint8' | 'uint16';
}

export interface KerasFoldOutcome {
  model: KerasModel;
  plan: FoldPlan;
  notes: string[];
  requantize_max_error: number | null;
}

export const display = (g: KGraph, name: string) => [...g.scope, name].join('/');

/** the BatchNorm's axis as one number (-1 when absent); null when it normalizes several axes */
export function bnAxis(c: JsonObject): number | null {
  const a = c.axis;
  if (typeof a === 'number') return a;
  const l = arr(a);
  if (l && l.length === 1 && typeof l[0] === 'number') return l[0];
  return a === undefined ? -1 : null;
}

function analyse(model: KerasModel, root: KGraph): { plan: FoldPlan; actions: Action[] } {
  const candidates: FoldCandidate[] = [];
  const skipped: SkippedCandidate[] = [];
  const actions: Action[] = [];
  // output shapes by layer path (for the BN axis check)
  const shapes = new Map<string, Shape | null>();
  try {
    for (const f of flattenModel(root, 1).layers) shapes.set(f.path.join('/'), f.outShape);
  } catch {
    // shapes are only a help here
  }
  const visit = (g: KGraph) => {
    const cons = consumersOf(g);
    const outputs = new Set(g.outputs.map((r) => r.layer));
    const byName = new Map(g.layers.map((l) => [l.name, l]));
    for (const l of g.layers) {
      if (l.sub) visit(l.sub);
      if (l.className !== 'BatchNormalization') continue;
      const layer = display(g, l.name);
      const skip = (reason: string) => skipped.push({ layer, reason });
      if (l.calls.length !== 1 || l.calls[0].length !== 1) {
        skip(l.calls.length > 1 ? `it is a shared layer called ${l.calls.length} times` : 'it does not read exactly one tensor');
        continue;
      }
      if (callKwargs(l, 0).training === true) {
        skip('it is called with training=True: it normalizes with batch statistics also at inference, which no folded layer can do');
        continue;
      }
      const ref = l.calls[0][0];
      const p = byName.get(ref.layer);
      if (!p || p.className === 'InputLayer') {
        skip('its input is a model input: there is no layer before it to fold into (a standalone BatchNorm)');
        continue;
      }
      const pName = display(g, p.name);
      if (p.sub) {
        skip(`its input is the output of the nested model ${pName}, not a single linear layer`);
        continue;
      }
      if (!FOLDABLE.has(p.className)) {
        skip(`${pName} (${p.className}) is not a layer BatchNorm can be folded into`);
        continue;
      }
      if (p.calls.length !== 1) {
        skip(`${pName} is a shared layer called ${p.calls.length} times`);
        continue;
      }
      const act = activationName(p.config.activation) ?? 'linear';
      if (act !== 'linear') {
        skip(`${pName} applies its '${act}' activation before the BatchNorm, so the BatchNorm does not see a linear output`);
        continue;
      }
      const others = (cons.get(p.name) ?? []).filter((c) => c.layer !== l);
      if (others.length || outputs.has(p.name)) {
        skip(outputs.has(p.name) ? `the output of ${pName} is also a model output; folding would change it` : `the output of ${pName} is also used by ${others.map((o) => display(g, o.layer.name)).join(', ')}; folding would change what they see`);
        continue;
      }
      const cf = str(p.config.data_format) === 'channels_first';
      const axis = bnAxis(l.config);
      const outShape = shapes.get([...g.scope, p.name].join('/')) ?? null;
      const rank = outShape ? outShape.length : null;
      const channelAxis = cf && p.className !== 'Dense' ? 1 : rank === null ? -1 : rank - 1;
      const axisOk = axis !== null && (axis === channelAxis || (rank !== null && (axis < 0 ? axis + rank : axis) === (channelAxis < 0 ? channelAxis + rank : channelAxis)) || (rank === null && axis === -1 && !cf));
      if (!axisOk) {
        skip(`it normalizes axis ${JSON.stringify(l.config.axis)} but the channels of ${pName} are on axis ${channelAxis}`);
        continue;
      }
      const pw = model.weightsOf([...g.scope, p.name]);
      const kernel = pw.find((w) => w.key === 'kernel' || w.key === 'depthwise_kernel');
      const bw = model.weightsOf([...g.scope, l.name]);
      const mean = bw.find((w) => w.key === 'moving_mean');
      const variance = bw.find((w) => w.key === 'moving_variance');
      if (!kernel || !mean || !variance) {
        skip(`the weights of ${!kernel ? pName : layer} are missing from the file`);
        continue;
      }
      if (![kernel, mean, variance].every((w) => FLOAT.has(w.dtype))) {
        skip('its weights are not floating point');
        continue;
      }
      const channels = mean.shape.reduce((a, b) => a * b, 1);
      const ks = kernel.shape;
      const cout = isDepthwise(p.className) ? ks[ks.length - 2] * ks[ks.length - 1] : isTranspose(p.className) ? ks[ks.length - 2] : ks[ks.length - 1];
      if (cout !== channels) {
        skip(`${pName} has ${cout} output channels but the BatchNorm has ${channels}`);
        continue;
      }
      candidates.push({ batchnorm: layer, into: pName, into_op: p.className });
      actions.push({ graph: g, bn: l, producer: p, candidate: candidates[candidates.length - 1] });
    }
  };
  visit(root);
  return { plan: { candidates, skipped }, actions };
}

/** the plan of applyKerasFold, chains (Conv -> BN -> BN) included */
export function planKerasFold(model: KerasModel): FoldPlan {
  const first = analyse(model, buildGraph(model.modelConfig)).plan;
  // a BN reading a foldable BN folds once that one has: only then is the repeated apply needed
  const chained = first.skipped.some((s) => first.candidates.some((c) => s.reason.startsWith(`${c.batchnorm} (BatchNormalization)`)));
  return chained ? applyKerasFold(model).plan : first;
}

/** storage name for a bias added next to `kernel`, in the container's convention */
function biasName(model: KerasModel, kernel: KWeight, existing: Set<string>): string {
  let name: string;
  if (model.format === 'keras') {
    const m = /^(.*\/vars\/)(\d+)$/.exec(kernel.storeName);
    name = m ? `${m[1]}${Number(m[2]) + 1}` : `${kernel.storeName}_bias`;
  } else {
    const i = kernel.storeName.lastIndexOf('/');
    const suffix = model.format === 'keras-h5' && /:\d+$/.test(kernel.storeName) ? 'bias:0' : 'bias';
    name = i >= 0 ? `${kernel.storeName.slice(0, i + 1)}${suffix}` : `${kernel.storeName}_bias`;
  }
  while (existing.has(name)) name += '_';
  return name;
}

export function keras3(entry: JsonObject): boolean {
  return isObject(entry.module) || typeof entry.module === 'string' || (arr(entry.inbound_nodes) ?? []).some((n) => isObject(n));
}

/** rewires every reference to layer `from` (any node) to `to` node `toNode` (and tensor `toTensor` when given) in inbound nodes and outputs */
export function rewire(g: KGraph, from: string, to: string, toNode: number, toTensor?: number): void {
  const fix = (v: Json): Json => {
    if (Array.isArray(v)) {
      if (v.length >= 3 && v[0] === from && typeof v[1] === 'number' && typeof v[2] === 'number') {
        const copy = [...v];
        copy[0] = to;
        copy[1] = toNode;
        if (toTensor !== undefined) copy[2] = toTensor;
        return copy;
      }
      return v.map(fix);
    }
    if (isObject(v)) {
      const o: JsonObject = {};
      for (const k of Object.keys(v)) o[k] = fix(v[k]);
      return o;
    }
    return v;
  };
  for (const l of g.layers) if (l.entry.inbound_nodes !== undefined) l.entry.inbound_nodes = fix(l.entry.inbound_nodes);
  if (g.config) {
    if (g.config.output_layers !== undefined) g.config.output_layers = fix(g.config.output_layers);
  }
}

/**
 * Folds every foldable BN; repeats until nothing folds, so chains (Conv -> BN -> BN) fold completely (the
 * candidates of every pass, the skips of the last).
 */
export function applyKerasFold(model: KerasModel, opts: KerasFoldOptions = {}): KerasFoldOutcome {
  let r = applyKerasFoldOnce(model, opts);
  const candidates = [...r.plan.candidates];
  const notes = [...r.notes];
  let reqErr = r.requantize_max_error;
  let current = r.model;
  for (let round = 0; r.plan.candidates.length > 0 && round < 64; round++) {
    r = applyKerasFoldOnce(current, opts);
    if (!r.plan.candidates.length) break;
    candidates.push(...r.plan.candidates);
    for (const n of r.notes) if (!notes.includes(n)) notes.push(n);
    if (r.requantize_max_error !== null) reqErr = Math.max(reqErr ?? 0, r.requantize_max_error);
    current = r.model;
  }
  const folded = new Set(candidates.map((c) => c.batchnorm));
  return { model: current, plan: { candidates, skipped: r.plan.skipped.filter((s) => !folded.has(s.layer)) }, notes, requantize_max_error: reqErr };
}

function applyKerasFoldOnce(model: KerasModel, opts: KerasFoldOptions): KerasFoldOutcome {
  const config = clone(model.modelConfig);
  const root = buildGraph(config);
  const { plan, actions } = analyse(model, root);
  let weights = [...model.weights];
  const names = new Set(weights.map((w) => w.storeName));
  let quantizedSources = 0;
  let extraBytes = 0;
  let reqErr: number | null = null;
  let kernelQuantized = false;
  const store = (orig: KWeight | undefined, base: KWeight, values: Float32Array): KWeight => {
    const plain = float32Weight({ storeName: base.storeName, layerPath: base.layerPath, key: base.key, shape: base.shape, ...(base.group !== undefined ? { group: base.group } : {}) }, values);
    const wasQuantized = !!orig?.quantization;
    if (wasQuantized) quantizedSources++;
    if (wasQuantized && opts.requantize) {
      const q = quantizeWeight(plain, values, opts.requantize);
      reqErr = Math.max(reqErr ?? 0, q.maxError);
      extraBytes += q.weight.bytes.byteLength - (orig ? orig.bytes.byteLength : 0);
      return q.weight;
    }
    if (!orig && opts.requantize && kernelQuantized) {
      const q = quantizeWeight(plain, values, opts.requantize);
      reqErr = Math.max(reqErr ?? 0, q.maxError);
      return q.weight;
    }
    if (orig?.quantization) extraBytes += plain.bytes.byteLength - orig.shape.reduce((p, v) => p * v, 1) * bytesPerElement(orig);
    return plain;
  };
  for (const a of actions) {
    const { graph: g, bn, producer: p } = a;
    const pPath = [...g.scope, p.name];
    const bPath = [...g.scope, bn.name];
    const pw = weights.filter((w) => w.layerPath.join('/') === pPath.join('/'));
    const bw = weights.filter((w) => w.layerPath.join('/') === bPath.join('/'));
    const kernel = pw.find((w) => w.key === 'kernel' || w.key === 'depthwise_kernel') as KWeight;
    const bias = pw.find((w) => w.key === 'bias');
    const get = (k: string) => bw.find((w) => w.key === k);
    const gamma = get('gamma');
    const beta = get('beta');
    const mean = get('moving_mean') as KWeight;
    const variance = get('moving_variance') as KWeight;
    const eps = num(bn.config.epsilon) ?? 1e-3;
    const affine = batchNormAffine(gamma ? weightToFloat32(gamma) : null, beta ? weightToFloat32(beta) : null, weightToFloat32(mean), weightToFloat32(variance), eps);
    const ks = kernel.shape;
    const r = ks.length;
    let layout: number[];
    let axis: number;
    if (isDepthwise(p.className)) {
      layout = [ks.slice(0, r - 2).reduce((x, y) => x * y, 1), ks[r - 2] * ks[r - 1]];
      axis = 1;
    } else if (isTranspose(p.className)) {
      layout = ks;
      axis = r - 2;
    } else {
      layout = ks;
      axis = r - 1;
    }
    kernelQuantized = !!kernel.quantization;
    const newKernel = store(kernel, kernel, scaleKernel(weightToFloat32(kernel), layout, axis, affine.scale));
    const biasValues = foldBias(bias ? weightToFloat32(bias) : null, affine);
    const drop = new Set<KWeight>(bw);
    const next: KWeight[] = [];
    for (const w of weights) {
      if (drop.has(w)) continue;
      if (w === kernel) {
        next.push(newKernel);
        if (!bias) {
          const name = biasName(model, kernel, names);
          names.add(name);
          const base: KWeight = { storeName: name, layerPath: kernel.layerPath, key: 'bias', dtype: 'float32', shape: [biasValues.length], bytes: new Uint8Array(0), ...(kernel.group !== undefined ? { group: kernel.group } : {}) };
          const nb = store(undefined, base, biasValues);
          next.push(nb);
        }
        continue;
      }
      if (w === bias) {
        next.push(store(bias, bias, biasValues));
        continue;
      }
      next.push(w);
    }
    weights = next;
    // config: the producer now has a bias; the BN leaves the topology
    const pc = p.config;
    if (pc.use_bias !== true) {
      pc.use_bias = true;
      if (pc.bias_initializer === undefined || pc.bias_initializer === null) pc.bias_initializer = keras3(p.entry) ? { module: 'keras.initializers', class_name: 'Zeros', config: {}, registered_name: null } : { class_name: 'Zeros', config: {} };
      if (!('bias_regularizer' in pc)) pc.bias_regularizer = null;
      if (!('bias_constraint' in pc)) pc.bias_constraint = null;
    }
    const idx = g.entries.indexOf(bn.entry);
    if (idx >= 0) g.entries.splice(idx, 1);
    g.layers = g.layers.filter((l) => l !== bn);
    // consumers of the BN now read the producer's output the BN read (same node index as the BN's input)
    if (!g.sequential) rewire(g, bn.name, p.name, bn.calls[0][0].node);
  }
  const notes: string[] = [];
  if (quantizedSources > 0) {
    notes.push(
      opts.requantize
        ? `${quantizedSources} rewritten tensor(s) had quantized sources; re-quantized as ${opts.requantize} (largest weight change ${(reqErr ?? 0).toExponential(2)}).`
        : `${quantizedSources} rewritten tensor(s) had quantized sources; they are written as float32 (${extraBytes >= 0 ? '+' : ''}${extraBytes} bytes). Re-quantize with --requantize uint8|uint16.`,
    );
  }
  return { model: model.derive(config, weights), plan, notes, requantize_max_error: reqErr };
}

/** BatchNorm layers set to trainable: false (Keras 2+ runs them in inference mode, also inside fit()) */
export function freezeKerasBatchNorm(model: KerasModel): { model: KerasModel; frozen: string[] } {
  const config = clone(model.modelConfig);
  const frozen: string[] = [];
  const visit = (g: KGraph) => {
    for (const l of g.layers) {
      if (l.sub) visit(l.sub);
      if (l.className === 'BatchNormalization' && l.config.trainable !== false) {
        l.config.trainable = false;
        frozen.push(display(g, l.name));
      }
    }
  };
  visit(buildGraph(config));
  return { model: model.derive(config, model.weights), frozen };
}

/** params, stored bytes and layers (InputLayers and nested-model wrappers not counted) */
export function kerasSize(model: KerasModel): { params: number; bytes: number; layers: number } {
  let params = 0;
  let bytes = 0;
  for (const w of model.weights) {
    const n = w.shape.reduce((p, v) => p * v, 1);
    params += n;
    bytes += n * bytesPerElement(w);
  }
  let layers = 0;
  const count = (g: KGraph) => {
    for (const l of g.layers) {
      if (l.sub) count(l.sub);
      else if (l.className !== 'InputLayer') layers++;
    }
  };
  count(buildGraph(model.modelConfig));
  return { params, bytes, layers };
}

