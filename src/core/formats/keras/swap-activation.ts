/**
 * Activation swap for the Keras-topology formats: ReLU / ReLU6 / LeakyReLU (ReLU and LeakyReLU layers,
 * Activation layers, fused `activation` in Conv / Dense configs) -> SELU / ELU / GELU (Keras activation names
 * TF.js layers 4.22 runs: 'selu', 'elu', 'gelu') or LeakyReLU (a LeakyReLU layer; as a fused activation
 * string 'leaky_relu' does not run in TF.js, so fused ones are refused rather than written unverifiable).
 * SELU recipe: BatchNorms folded first (the Keras fold), Dropout -> AlphaDropout (TF.js layers and Keras 2
 * .h5; identity at inference either way), optionally LeCun-normal re-initialisation of every kernel (seeded)
 * for training from scratch. Names of the swapped layers are kept, so probes before and after line up.
 */
import { depthProfile } from '../../analysis/probe';
import type { InputSource, OpenInputsOptions } from '../../analysis/probe-inputs';
import { ModelError } from '../../errors';
import type { SkippedCandidate } from '../../types';
import { Rng } from '../../util/random';
import type { SwapMeasurement, SwapOptions, SwapSource } from '../onnx/swap-activation';
import { applyKerasFold, keras3 } from './fold';
import { clone, num, str, type JsonObject } from './json';
import { float32Weight, type KerasModel, type KWeight } from './model';
import { compareKerasOnInputs, probeKeras } from './probe';
import { allLayers } from './rewrite-dropout';
import { buildGraph, type KLayer } from './topology';

export interface KerasSwapOptions extends SwapOptions {
  /** re-initialise every Dense / Conv kernel LeCun-normal (truncated, std sqrt(1 / fan_in)) and zero the biases */
  reinit?: boolean;
  /** seed of the re-initialisation (default 1) */
  seed?: number;
}

export interface KerasSwapResult {
  model: KerasModel;
  layers: string[];
  swapped: number;
  removed_bn: number;
  replaced_dropout: number;
  skipped: SkippedCandidate[];
  notes: string[];
}

/** what a layer applies, as a swap source, or a reason it is a ReLU we do not touch */
function sourceOf(l: KLayer): { kind: SwapSource; fused: boolean } | { reason: string } | null {
  const c = l.config;
  if (l.className === 'ReLU') {
    const max = num(c.max_value);
    const slope = num(c.negative_slope) ?? 0;
    if ((num(c.threshold) ?? 0) !== 0) return { reason: `ReLU with threshold ${String(c.threshold)}` };
    if (max !== undefined && max !== 6) return { reason: `ReLU with max_value ${max}` };
    if (slope !== 0) return max === undefined ? { kind: 'leaky-relu', fused: false } : { reason: 'ReLU with both max_value and negative_slope' };
    return { kind: max === 6 ? 'relu6' : 'relu', fused: false };
  }
  if (l.className === 'LeakyReLU') return { kind: 'leaky-relu', fused: false };
  const a = str(c.activation);
  const kind: SwapSource | null = a === 'relu' ? 'relu' : a === 'relu6' ? 'relu6' : a === 'leaky_relu' ? 'leaky-relu' : null;
  if (!kind) return null;
  return { kind, fused: l.className !== 'Activation' };
}

function baseConfig(c: JsonObject): JsonObject {
  const out: JsonObject = {};
  for (const k of ['name', 'trainable', 'dtype']) if (c[k] !== undefined) out[k] = c[k];
  return out;
}

/** LeCun normal as Keras draws it: truncated at 2 std, std = sqrt(1 / fan_in) / 0.8796 */
function lecunNormal(rng: Rng, n: number, fanIn: number): Float32Array {
  const std = Math.sqrt(1 / Math.max(1, fanIn)) / 0.87962566103423978;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    let v = rng.normal();
    while (Math.abs(v) > 2) v = rng.normal();
    out[i] = v * std;
  }
  return out;
}

export function swapKerasActivation(model: KerasModel, opts: KerasSwapOptions): KerasSwapResult {
  const to = opts.to;
  if (!['selu', 'elu', 'gelu', 'leaky-relu'].includes(to)) throw new ModelError(`cannot swap to '${to}' (selu, elu, gelu, leaky-relu)`);
  const from = new Set<SwapSource>(opts.from ?? ['relu', 'relu6', 'leaky-relu']);
  const notes: string[] = [];
  const skipped: SkippedCandidate[] = [];
  let base = model;
  let removedBn = 0;
  if (opts.foldBatchNorm ?? to === 'selu') {
    const f = applyKerasFold(model);
    base = f.model;
    removedBn = f.plan.candidates.length;
    notes.push(...f.notes);
    for (const s of f.plan.skipped) notes.push(`BatchNorm ${s.layer} not folded: ${s.reason}`);
  }
  const config = clone(base.modelConfig);
  const root = buildGraph(config);
  const wanted = opts.layers ? new Set(opts.layers) : null;
  const all = allLayers(root);
  if (wanted) for (const n of wanted) if (!all.some((x) => x.name === n)) throw new ModelError(`no layer named '${n}'`);
  const layers: string[] = [];
  const isKeras3File = model.format === 'keras';
  for (const { layer: l, name } of all) {
    if (l.sub || (wanted && !wanted.has(name))) continue;
    const s = sourceOf(l);
    if (!s) continue;
    if ('reason' in s) {
      skipped.push({ layer: name, reason: s.reason });
      continue;
    }
    if (!from.has(s.kind)) continue;
    if (to === 'leaky-relu' && s.kind === 'leaky-relu' && opts.alpha === undefined) continue;
    const e = l.entry;
    if (s.fused) {
      if (to === 'leaky-relu') {
        skipped.push({ layer: name, reason: `fused activation: 'leaky_relu' as an activation name does not run in TF.js 4.22, so the result could not be verified (use a separate LeakyReLU layer)` });
        continue;
      }
      if (to === 'elu' && opts.alpha !== undefined && opts.alpha !== 1) {
        skipped.push({ layer: name, reason: `fused activation 'elu' has alpha 1; alpha ${opts.alpha} needs a separate ELU layer` });
        continue;
      }
      l.config.activation = to;
    } else if (to === 'leaky-relu') {
      const alpha = opts.alpha ?? 0.01;
      e.class_name = 'LeakyReLU';
      e.config = { ...baseConfig(l.config), alpha, ...(isKeras3File || keras3(e) ? { negative_slope: alpha } : {}) };
    } else if (to === 'elu' && opts.alpha !== undefined && opts.alpha !== 1) {
      e.class_name = 'ELU';
      e.config = { ...baseConfig(l.config), alpha: opts.alpha };
    } else {
      e.class_name = 'Activation';
      e.config = { ...baseConfig(l.config), activation: to };
    }
    layers.push(name);
  }
  let replacedDropout = 0;
  if (to === 'selu') {
    const dropouts = all.filter((x) => x.layer.className === 'Dropout' && !(wanted && !wanted.has(x.name)));
    if (dropouts.length && model.format === 'keras') notes.push(`${dropouts.length} Dropout layer(s) kept: Keras 3 .keras files are written without AlphaDropout (not every Keras 3 release has it); both are the identity at inference`);
    else
      for (const { layer: l } of dropouts) {
        l.entry.class_name = 'AlphaDropout';
        const c: JsonObject = { ...baseConfig(l.config), rate: l.config.rate ?? 0.5 };
        if (l.config.noise_shape !== undefined) c.noise_shape = l.config.noise_shape;
        if (l.config.seed !== undefined) c.seed = l.config.seed;
        l.entry.config = c;
        replacedDropout++;
      }
  }
  let weights: KWeight[] = base.weights;
  if (opts.reinit) {
    const rng = new Rng(opts.seed ?? 1);
    const kernelOwners = new Set(all.filter((x) => /^(Dense|Conv[123]D|DepthwiseConv2D|SeparableConv2D)$/.test(x.layer.className)).map((x) => x.name));
    for (const x of all) {
      if (!kernelOwners.has(x.name)) continue;
      const c = x.layer.config;
      // LeCun normal as VarianceScaling (Keras's own definition of it; TF.js names the class differently)
      const cfg: JsonObject = { scale: 1, mode: 'fan_in', distribution: 'truncated_normal' };
      const init = (seed: number): JsonObject => (keras3(x.layer.entry) ? { module: 'keras.initializers', class_name: 'VarianceScaling', config: { ...cfg, seed }, registered_name: null } : { class_name: 'VarianceScaling', config: { ...cfg, seed } });
      for (const k of ['kernel_initializer', 'depthwise_initializer', 'pointwise_initializer']) if (c[k] !== undefined) c[k] = init(opts.seed ?? 1);
    }
    let n = 0;
    weights = base.weights.map((w) => {
      if (!kernelOwners.has(w.layerPath.join('/'))) return w;
      const size = w.shape.reduce((p, v) => p * v, 1);
      const meta = { storeName: w.storeName, layerPath: w.layerPath, key: w.key, shape: w.shape, ...(w.group !== undefined ? { group: w.group } : {}) };
      if (w.key === 'bias') return float32Weight(meta, new Float32Array(size));
      if (!/kernel$/.test(w.key)) return w;
      n++;
      const r = w.shape.length;
      // Dense / Conv: [..., in, out] -> fan_in = all but the last axis; depthwise [kh, kw, in, mult] -> kh * kw
      const fanIn = w.key === 'depthwise_kernel' ? w.shape.slice(0, r - 2).reduce((p, v) => p * v, 1) : size / w.shape[r - 1];
      return float32Weight(meta, lecunNormal(rng, size, fanIn));
    });
    notes.push(`${n} kernel(s) re-initialised LeCun-normal (seed ${opts.seed ?? 1}), biases zeroed: the model must be trained from scratch`);
  }
  if (layers.length === 0 && !skipped.length) notes.push(`no ${[...from].join(' / ')} activation to swap`);
  return { model: base.derive(config, weights), layers, swapped: layers.length, removed_bn: removedBn, replaced_dropout: replacedDropout, skipped, notes };
}

/** deviation of a swap on the probe inputs and the activation mean / variance by depth (matched by layer name) */
export async function measureKerasSwap(before: KerasModel, after: KerasModel, source: InputSource, opts: OpenInputsOptions & { signal?: AbortSignal } = {}): Promise<SwapMeasurement> {
  const deviation = await compareKerasOnInputs(before, after, source, opts);
  const p0 = await probeKeras(before, source, opts);
  const names = new Set(buildGraph(after.modelConfig).layers.map((l) => l.name));
  const p1 = await probeKeras(after, source, { ...opts, layers: p0.layers.map((l) => l.output).filter((n) => names.has(n)) });
  return { deviation, profile: depthProfile(p0, p1) };
}
