/**
 * Activation probing for the Keras-topology formats (TF.js layers, Keras .h5, .keras): the model runs in
 * TF.js as a multi-output layers model whose outputs are every activation layer's output (tf.model over the
 * loaded model's symbolic tensors), batch by batch on the probe inputs (openProbeInputs: NHWC images, seeded
 * random...). Statistics stream per channel on the last axis (Keras is channels-last), as for ONNX. On the
 * WebAssembly backend the activations are read in place in its heap, one at a time, not downloaded
 * (scripts/bench/probe.ts: mobilenet_v2 probe 1.3-1.7x -> 1.13-1.23x plain predict, peak RSS 2.2 -> 1.2 GB).
 * Activation layers: ReLU / LeakyReLU / ELU / PReLU / ThresholdedReLU layers, Activation layers other than
 * linear / softmax, and layers with a fused `activation` (Conv2D / Dense with activation='relu': that layer's
 * output). Only the outermost model's layers are probed (a nested model's layers are not addressable).
 */
import type * as TfCore from '@tensorflow/tfjs-core';
import type * as TfLayers from '@tensorflow/tfjs-layers';
import { openProbeInputs, type FeedTensor, type InputSource, type OpenInputsOptions, type ProbeInputs } from '../../analysis/probe-inputs';
import { ChannelStats, channelLayout, summarizeChannels } from '../../analysis/streaming-stats';
import { releaseScratchKernels } from '../../analysis/wasm-kernels';
import { loadTfjs, tfLayers, type Tf } from '../../engines/tfjs';
import { firstLine } from '../../engines/onnxruntime';
import { ModelError } from '../../errors';
import type { ProbeLayerReport, ProbeReport, ValueSummary, VerifyReport } from '../../types';
import { OutputComparison, verifyReport } from '../../engines/output-errors';
import type { ProbeOptions } from '../../analysis/probe';
import { buildKerasView } from './graph';
import { str } from './json';
import type { KerasModel } from './model';
import { kerasRunnable } from './runnable';
import { buildGraph, type KLayer } from './topology';

const ACTIVATION_LAYERS = new Set(['ReLU', 'LeakyReLU', 'ELU', 'PReLU', 'ThresholdedReLU']);
const NOT_ACTIVATIONS = new Set(['linear', 'softmax', 'log_softmax']);

/** the activation a layer applies ('relu', 'selu', ...; ReLU layers: 'relu'), or null */
export function layerActivation(l: KLayer): string | null {
  if (ACTIVATION_LAYERS.has(l.className)) return l.className.toLowerCase();
  const a = str(l.config.activation);
  if (!a || NOT_ACTIVATIONS.has(a)) return null;
  return a;
}

/** the op name a probe report gives a layer: 'ReLU', 'Activation(relu)', 'Dense+relu' */
export function probeOpName(l: KLayer): string {
  if (ACTIVATION_LAYERS.has(l.className)) return l.className;
  const a = str(l.config.activation) ?? 'linear';
  return l.className === 'Activation' ? `Activation(${a})` : `${l.className}+${a}`;
}

/** the outermost model's layers whose output is an activation, in config order */
export function kerasActivationLayers(model: KerasModel): KLayer[] {
  return buildGraph(model.modelConfig).layers.filter((l) => !l.sub && l.className !== 'InputLayer' && layerActivation(l) !== null);
}

export function kerasInputs(model: KerasModel, source: InputSource | ProbeInputs, opts: OpenInputsOptions): { inputs: ProbeInputs; summaries: ValueSummary[] } {
  const summaries = buildKerasView(model, opts.dims ?? {}).summary.inputs;
  if ('batches' in source) return { inputs: source, summaries };
  return { inputs: openProbeInputs(source, summaries, opts), summaries };
}

/** the model loaded into TF.js as a layers model */
export async function loadKerasLayersModel(tf: Tf, model: KerasModel, summaries: ValueSummary[], what: string): Promise<TfLayers.LayersModel> {
  const r = kerasRunnable(model, summaries);
  if (r.kind !== 'layers') throw new ModelError('internal: a Keras model runs as a layers model');
  try {
    return await tfLayers().loadLayersModel(tf.io.fromMemory({ modelTopology: r.topology, weightSpecs: r.specs, weightData: r.data }), { strict: true });
  } catch (err) {
    throw new ModelError(`TensorFlow.js cannot load the ${what} model: ${firstLine(err)}`);
  }
}

function feedTensors(tf: Tf, lm: TfLayers.LayersModel, feeds: Record<string, FeedTensor>): TfCore.Tensor[] {
  const names = Object.keys(feeds);
  return lm.inputs.map((inp, k) => {
    const f = feeds[lm.inputNames?.[k] ?? ''] ?? feeds[inp.name.split('/')[0]] ?? (names.length === lm.inputs.length ? feeds[names[k]] : undefined);
    if (!f) throw new ModelError(`no probe data for model input '${lm.inputNames?.[k] ?? inp.name}'`);
    const data = f.data instanceof Float32Array || f.data instanceof Int32Array ? f.data : Float32Array.from(f.data as ArrayLike<number>, Number);
    return tf.tensor(data, f.dims, f.data instanceof Int32Array ? 'int32' : 'float32');
  });
}

/** TF.js hands out a fresh typed array per data() call: float32 is used as it is, other types converted */
function asFloat32(d: ArrayLike<number>): Float32Array {
  return d instanceof Float32Array ? d : Float32Array.from(d);
}

/**
 * Runs a (multi-output) layers model on one batch and hands its outputs to `use` while they are alive (they
 * are disposed after it returns); TF.js failures become one-line ModelErrors.
 */
async function withOutputs<T>(tf: Tf, m: TfLayers.LayersModel, feeds: Record<string, FeedTensor>, use: (outputs: TfCore.Tensor[]) => Promise<T>): Promise<T> {
  const xs = feedTensors(tf, m, feeds);
  try {
    const out = tf.tidy(() => {
      const y = m.predict(xs.length === 1 ? xs[0] : xs);
      return Array.isArray(y) ? y : [y];
    });
    try {
      return await use(out);
    } finally {
      out.forEach((t) => t.dispose());
    }
  } catch (err) {
    if (err instanceof ModelError) throw err;
    const shapes = Object.entries(feeds).map(([k, v]) => `${k}=[${v.dims.join('x')}]`).join(', ');
    throw new ModelError(`TensorFlow.js failed to run the model on probe inputs ${shapes}: ${firstLine(err)}`);
  } finally {
    xs.forEach((t) => t.dispose());
  }
}

/** runs a (multi-output) layers model on one batch, returns every output as numbers with its shape */
export function runBatch(tf: Tf, m: TfLayers.LayersModel, feeds: Record<string, FeedTensor>): Promise<{ data: Float32Array; dims: number[] }[]> {
  return withOutputs(tf, m, feeds, (out) => Promise.all(out.map(async (t) => ({ data: asFloat32(await t.data()), dims: [...t.shape] }))));
}

/** what the WebAssembly backend (tfjs-backend-wasm 4.x) exposes of where a tensor lives in its heap */
interface WasmHeapBackend {
  getMemoryOffset(dataId: object): number;
  wasm: { HEAPU8: Uint8Array };
}

function isWasmHeapBackend(b: unknown): b is WasmHeapBackend {
  const w = b as Partial<WasmHeapBackend> | null;
  return typeof w?.getMemoryOffset === 'function' && w.wasm?.HEAPU8 instanceof Uint8Array;
}

/**
 * A float32 tensor's values as a view of its memory in the WebAssembly backend's heap (no copy), or null on
 * other backends. The view is valid until the tensor is disposed or the heap grows: use it at once, in the
 * same synchronous block. Downloading every activation of a batch instead allocated a fresh array per
 * activation (224 MB per batch of 16 on mobilenet_v2).
 */
function heapView(tf: Tf, t: TfCore.Tensor): Float32Array | null {
  const backend = tf.backend();
  if (t.dtype !== 'float32' || !isWasmHeapBackend(backend)) return null;
  const offset = backend.getMemoryOffset(t.dataId);
  const heap = backend.wasm.HEAPU8;
  if (offset % 4 !== 0 || offset + t.size * 4 > heap.byteLength) return null;
  return new Float32Array(heap.buffer, heap.byteOffset + offset, t.size);
}

interface Target {
  name: string;
  op: string;
  stats?: ChannelStats;
  shape?: number[];
  axis?: number;
}

/** Probes a Keras-topology model's activations (channels on the last axis) with TF.js. */
export async function probeKeras(model: KerasModel, source: InputSource | ProbeInputs, opts: ProbeOptions = {}): Promise<ProbeReport> {
  const t0 = performance.now();
  const threshold = opts.apozThreshold ?? 1;
  if (!(threshold > 0 && threshold <= 1)) throw new ModelError(`APoZ threshold ${threshold} must be in (0, 1]`);
  if (opts.values?.length) throw new ModelError('probing extra tensors (values) is not available for Keras models; name layers instead');
  const top = buildGraph(model.modelConfig).layers.filter((l) => !l.sub && l.className !== 'InputLayer');
  const byName = new Map(top.map((l) => [l.name, l]));
  const targets: Target[] = [];
  if (opts.layers) {
    for (const n of opts.layers) {
      const l = byName.get(n);
      if (!l) throw new ModelError(`no layer named '${n}' to probe (layers of nested models cannot be probed)`);
      targets.push({ name: l.name, op: probeOpName(l) });
    }
  } else for (const l of top) if (layerActivation(l) !== null) targets.push({ name: l.name, op: probeOpName(l) });
  const { inputs, summaries } = kerasInputs(model, source, opts);
  const { tf, engine } = await loadTfjs();
  const abort = () => {
    if (opts.signal?.aborted) throw new ModelError('probing cancelled');
  };
  abort();
  const notes = [...inputs.notes];
  const lm = await loadKerasLayersModel(tf, model, summaries, 'probed');
  let probeModel: TfLayers.LayersModel | null = null;
  let done = 0;
  try {
    const outputs: TfLayers.SymbolicTensor[] = [];
    const kept: Target[] = [];
    for (const t of targets) {
      try {
        const o = lm.getLayer(t.name).output;
        if (Array.isArray(o)) throw new Error('several outputs');
        outputs.push(o);
        kept.push(t);
      } catch (err) {
        if (opts.layers) throw new ModelError(`layer '${t.name}' cannot be probed: ${firstLine(err)} (shared layers and multi-output layers are not probed)`);
        notes.push(`${t.name}: not probed (${firstLine(err)}; shared or multi-output layer)`);
      }
    }
    targets.splice(0, targets.length, ...kept);
    if (outputs.length) {
      probeModel = tfLayers().model({ inputs: lm.inputs, outputs });
      for (const batch of inputs.batches()) {
        abort();
        await withOutputs(tf, probeModel, batch.feeds, async (outs) => {
          for (const [k, t] of targets.entries()) {
            const dims = [...outs[k].shape];
            // channels on the last axis; a scalar output is one channel (channelLayout of [] is 1 x 1 x 1)
            const axis = Math.max(0, dims.length - 1);
            const layout = channelLayout(dims, axis);
            if (!t.stats) {
              t.axis = axis;
              t.shape = dims;
              t.stats = new ChannelStats(layout.channels);
            }
            const view = heapView(tf, outs[k]);
            t.stats.add(view ?? asFloat32(await outs[k].data()), layout);
          }
        });
        done += batch.count;
        opts.onProgress?.(done, inputs.samples);
      }
    }
  } finally {
    // the probing model shares the loaded model's layers: disposing it releases their weights
    if (probeModel) probeModel.dispose();
    else lm.dispose();
    releaseScratchKernels();
  }
  const report: ProbeReport = {
    layers: targets.map((t) => summarize(t, threshold)),
    samples: done,
    batch_size: inputs.batchSize,
    source: inputs.description,
    input_shapes: inputs.inputShapes,
    apoz_threshold: threshold,
    engine,
    seconds: (performance.now() - t0) / 1000,
    notes,
  };
  if (threshold === 1) report.notes.push(`dead = never positive on any of the ${done} probe samples; a unit dead on these inputs may fire on others`);
  return report;
}

function summarize(t: Target, threshold: number): ProbeLayerReport {
  return summarizeChannels(t.stats, threshold, { name: t.name, op: t.op, output: t.name, shape: t.shape, channelAxis: t.axis ?? 0 });
}

/** Runs two Keras-topology models on the same probe inputs with TF.js and compares their outputs by position. */
export async function compareKerasOnInputs(a: KerasModel, b: KerasModel, source: InputSource | ProbeInputs, opts: OpenInputsOptions & { signal?: AbortSignal } = {}): Promise<VerifyReport> {
  const { inputs, summaries } = kerasInputs(a, source, opts);
  const { tf, engine } = await loadTfjs();
  const ma = await loadKerasLayersModel(tf, a, summaries, 'original');
  let mb: TfLayers.LayersModel | undefined;
  try {
    mb = await loadKerasLayersModel(tf, b, summaries, 'rewritten');
    if (mb.outputs.length !== ma.outputs.length) throw new ModelError(`the rewritten model has ${mb.outputs.length} output(s), the original ${ma.outputs.length}`);
    const names = ma.outputNames?.length ? ma.outputNames : ma.outputs.map((o) => o.name.split('/')[0]);
    const errs = names.map((n) => new OutputComparison(n));
    let samples = 0;
    for (const batch of inputs.batches()) {
      if (opts.signal?.aborted) throw new ModelError('verification cancelled');
      const ra = await runBatch(tf, ma, batch.feeds);
      const rb = await runBatch(tf, mb, batch.feeds);
      samples += batch.count;
      ra.forEach((x, k) => errs[k].add(x.data, rb[k]?.data));
    }
    const seed = 'kind' in source && source.kind === 'random' ? (source.seed ?? 1) : 0;
    return verifyReport(errs, { samples, seed, engine, input_shapes: inputs.inputShapes });
  } finally {
    ma.dispose();
    mb?.dispose();
  }
}
