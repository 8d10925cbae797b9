/**
 * Activation probing (ONNX): run the model once per batch with onnxruntime and capture every activation
 * layer's output in the same run, by adding those internal tensors to the graph outputs (onnxruntime-node
 * 1.30 accepts a ValueInfo with just the name, with optimizations on or off; the probing copy is never saved,
 * so no types need filling). Per channel: APoZ (fraction <= 0), mean, variance, min, max; per layer: mean and
 * variance (the depth profile). Statistics stream (streaming-stats.ts): memory does not grow with samples.
 *
 * Two ways, per tensor: NCHW-like tensors (rank >= 3, channels on axis 1, static channel count) are reduced
 * inside onnxruntime (probe-reduce.ts: training-mode BatchNormalization for mean / variance, ReduceMax /
 * ReduceMin, and ReduceSum of Greater(Y, 0) for the positive count), so only a few numbers per channel leave
 * the engine; the others ([N, C] layers, channels-last tensors, unknown shapes, or everything when the engine
 * refuses the reductions or a batch holds NaN / infinite values) are copied out and reduced here in float64
 * (WebAssembly SIMD kernels, streaming-stats.ts). A model read from a file reaches onnxruntime as the file's
 * bytes with the probe's nodes appended (OnnxModel.runtimeBytes), not re-encoded.
 * Cost (scripts/bench/probe.ts, probe / plain inference in the same run): FCN-ResNet50 ~1.2x on 32 samples;
 * memory-bound models pay for every extra read of their activations: PaddleOCR's classifier ~2.5-2.9x, where
 * one ReduceMax per activation alone costs ~1.35-1.75x and copying the activations out ~2.5-3.5x.
 */
import type * as OrtTypes from 'onnxruntime-node';
import { ENGINE_NAME, firstLine, loadOrt, sessionPair, tensorNumbers } from '../engines/onnxruntime';
import { ModelError } from '../errors';
import { emptyGraph } from '../formats/onnx/codec';
import { buildGraphView } from '../formats/onnx/graph';
import { defaultOpset, isDefaultDomain, producers, type OnnxModel } from '../formats/onnx/model';
import type { GraphProto } from '../formats/onnx/proto';
import type { DepthProfileRow, ProbeLayerReport, ProbeReport, ValueSummary, VerifyReport } from '../types';
import { OutputComparison, verifyReport } from '../engines/output-errors';
import { openProbeInputs, type FeedTensor, type InputSource, type OpenInputsOptions, type ProbeInputs } from './probe-inputs';
import { MAX_REDUCED_COUNT, MIN_REDUCE_OPSET, reductionGraph, type ReduceOutputs, type ReduceSpec } from './probe-reduce';
import { ChannelStats, channelLayout, summarizeChannels } from './streaming-stats';
import { releaseScratchKernels } from './wasm-kernels';

type Ort = ReturnType<typeof loadOrt>;

/** canonical ops probed by default */
export const ACTIVATION_OPS = new Set([
  'Relu', 'Relu6', 'LeakyRelu', 'PRelu', 'Elu', 'Selu', 'Celu', 'Gelu', 'Sigmoid', 'HardSigmoid', 'HardSwish', 'Tanh',
  'Softplus', 'Softsign', 'Mish', 'ThresholdedRelu', 'Clip',
]);

export interface ProbeOptions extends OpenInputsOptions {
  /** layer names (or tensor names) to probe instead of every activation layer; [] probes no layer */
  layers?: string[];
  /** extra tensors to probe, reported in `values`; `axis` overrides the channel axis */
  values?: { name: string; axis?: number }[];
  /** APoZ at or above which a channel counts as dead (default 1: never positive on any probe) */
  apozThreshold?: number;
  /** onnxruntime graph optimizations (default 'all'; probed tensors are kept as outputs either way) */
  optimization?: 'disabled' | 'basic' | 'extended' | 'all';
  signal?: AbortSignal;
  /**
   * per-channel statistics inside onnxruntime where the tensor allows (default true; probe-reduce.ts); false
   * copies every probed activation out and reduces it here in float64 (slower, exact sums)
   */
  inGraph?: boolean;
  /** called after each batch */
  onProgress?: (samplesDone: number, samplesTotal: number) => void;
}

interface Target {
  name: string;
  op: string;
  output: string;
  /** channel axis; null: decide from the runtime rank */
  axis: number | null;
  extra: boolean;
  stats?: ChannelStats;
  shape?: number[];
  fixedAxis?: number;
  /** statistics computed inside onnxruntime (probe-reduce.ts) */
  reduce?: ReduceSpec;
}

/** the model's real inputs (initializers that are also listed as inputs left out) */
export function feedInputs(model: OnnxModel, dims: Record<string, number> = {}): ValueSummary[] {
  return buildGraphView(model, dims).summary.inputs;
}

const CHANNEL_FIRST = new Set(['Conv', 'ConvTranspose', 'BatchNormalization', 'InstanceNormalization', 'MaxPool', 'AveragePool', 'GlobalAveragePool', 'GlobalMaxPool', 'LpPool', 'Resize', 'Upsample', 'Pad', 'GroupNormalization', 'LRN']);
const CHANNEL_LAST = new Set(['MatMul', 'Gemm', 'LayerNormalization', 'Attention']);

/**
 * The channel axis of a tensor of rank `rank`: the last axis for rank <= 2; for higher ranks 1 (NCHW) unless
 * the nearest layer that defines it (walking back through elementwise ops) is a MatMul / LayerNorm, whose
 * features are on the last axis ([N, T, features]).
 */
export function channelAxisOf(graph: GraphProto, value: string, rank: number, prods = producers(graph)): number {
  if (rank <= 2) return Math.max(0, rank - 1);
  let name = value;
  for (let hop = 0; hop < 16; hop++) {
    const p = prods.get(name);
    if (!p || !isDefaultDomain(p.domain)) return 1;
    const op = p.opType ?? '';
    if (CHANNEL_FIRST.has(op)) return 1;
    if (CHANNEL_LAST.has(op)) return rank - 1;
    if (op === 'Transpose' || op === 'Reshape' || op === 'Flatten') return 1;
    name = p.input[0];
    if (!name) return 1;
  }
  return 1;
}

/** model bytes for onnxruntime with `names` added to the graph outputs (external data inlined) */
export function runtimeBytesWithOutputs(model: OnnxModel, names: string[]): Uint8Array {
  return model.runtimeBytes(names.length ? { ...emptyGraph(), output: names.map((name) => ({ name, metadataProps: [] })) } : undefined);
}

export function toOrtFeeds(ort: Ort, feeds: Record<string, FeedTensor>): Record<string, OrtTypes.Tensor> {
  const out: Record<string, OrtTypes.Tensor> = {};
  for (const [k, f] of Object.entries(feeds)) out[k] = new ort.Tensor(f.type, f.data as Float32Array, f.dims);
  return out;
}

/** the probe inputs for a model whose input summaries are `summaries` (default: from its graph view) */
function resolveInputs(model: OnnxModel, source: InputSource | ProbeInputs, opts: OpenInputsOptions, summaries = feedInputs(model, opts.dims)): { inputs: ProbeInputs; summaries: ValueSummary[] } {
  if ('batches' in source) return { inputs: source, summaries };
  return { inputs: openProbeInputs(source, summaries, opts), summaries };
}

/**
 * Probes an ONNX model's activations on the given inputs.
 * @param model the model (not modified)
 * @param source where samples come from (random, images, .npy/.npz, JSON, arrays) or already opened inputs
 * @param opts sample count, batch size, layers / extra tensors to probe, APoZ threshold, symbolic dims
 * @returns per-layer, per-channel statistics (`dead`, `constant`, `apoz`, `mean`, `var`, `max`, ...)
 */
export async function probeOnnx(model: OnnxModel, source: InputSource | ProbeInputs, opts: ProbeOptions = {}): Promise<ProbeReport> {
  const t0 = performance.now();
  const threshold = opts.apozThreshold ?? 1;
  if (!(threshold > 0 && threshold <= 1)) throw new ModelError(`APoZ threshold ${threshold} must be in (0, 1]`);
  const view = buildGraphView(model, opts.dims ?? {});
  const graph = model.graph;
  const prods = producers(graph);
  const targets: Target[] = [];
  const layerByName = new Map(view.layers.map((l) => [l.name, l]));
  const layerByOutput = new Map<string, (typeof view.layers)[number]>();
  for (const l of view.layers) for (const o of l.outputs) if (o) layerByOutput.set(o, l);
  const constants = new Set(graph.initializer.map((t) => t.name ?? ''));
  if (opts.layers) {
    for (const n of opts.layers) {
      const l = layerByName.get(n) ?? layerByOutput.get(n);
      if (!l) throw new ModelError(`no layer or tensor named '${n}' to probe`);
      const output = layerByName.has(n) ? l.outputs[0] : n;
      targets.push({ name: l.name, op: l.op, output, axis: null, extra: false });
    }
  } else {
    for (const l of view.layers) if (ACTIVATION_OPS.has(l.op) && l.outputs[0]) targets.push({ name: l.name, op: l.op, output: l.outputs[0], axis: null, extra: false });
  }
  const inputNames = new Set(view.summary.inputs.map((i) => i.name));
  for (const v of opts.values ?? []) {
    if (constants.has(v.name) && !inputNames.has(v.name)) throw new ModelError(`'${v.name}' is a weight, not an activation: nothing to probe`);
    const l = layerByOutput.get(v.name);
    if (!l && !inputNames.has(v.name)) throw new ModelError(`no tensor named '${v.name}' to probe`);
    targets.push({ name: v.name, op: l?.op ?? 'input', output: v.name, axis: v.axis ?? null, extra: true });
  }
  const { inputs } = resolveInputs(model, source, opts, view.summary.inputs);
  const ort = loadOrt();
  const abort = () => {
    if (opts.signal?.aborted) throw new ModelError('probing cancelled');
  };
  abort();
  // statistics inside onnxruntime for float tensors with their channels on axis 1 and a static channel count
  // (probe-reduce.ts); the rest, and everything when that cannot run, is copied out and reduced here
  const staticShape = (t: Target): (number | null)[] | null => {
    const input = view.summary.inputs.find((i) => i.name === t.output);
    if (input) return input.shape ? input.shape.map((d) => (typeof d === 'number' ? d : null)) : null;
    const l = layerByOutput.get(t.output);
    return l && l.outputs[0] === t.output && l.outputShape ? l.outputShape : null;
  };
  if (defaultOpset(model.proto) >= MIN_REDUCE_OPSET && opts.inGraph !== false) {
    for (const t of targets) {
      const shape = staticShape(t);
      // [N, C] activations (MLP layers) stay on the copy path: measured faster there (a few values per channel)
      if (!shape || shape.length < 3) continue;
      const rank = shape.length;
      const axis = t.axis ?? channelAxisOf(graph, t.output, rank, prods);
      const channels = shape[1];
      if ((axis !== 1 && axis !== 1 - rank) || typeof channels !== 'number' || channels < 1) continue;
      // float32 counts are exact below 2^24 values per channel and batch (unknown dims: checked on the first batch)
      const perChannel = shape.reduce<number>((p, d, k) => (k === 1 ? p : p * (typeof d === 'number' ? d : 1)), 1);
      if (perChannel >= MAX_REDUCED_COUNT) continue;
      t.reduce = { value: t.output, rank, channels, op: t.op };
    }
  }
  const notes: string[] = [];
  const open = async (inGraph: boolean) => {
    const specs = inGraph ? [...new Map(targets.flatMap((t) => (t.reduce ? [[t.reduce.value, t.reduce] as const] : []))).values()] : [];
    const raw = [...new Set(targets.filter((t) => !(inGraph && t.reduce) && !inputNames.has(t.output)).map((t) => t.output))];
    const { extension, outputs } = reductionGraph(model.proto, specs, raw);
    const session = await createProbeSession(ort, model.runtimeBytes(extension), opts.optimization ?? 'all');
    return { session, reduced: new Map(specs.map((sp, k) => [sp.value, outputs[k]])) };
  };
  let inGraph = targets.some((t) => t.reduce);
  let session: OrtTypes.InferenceSession;
  let reduced: Map<string, ReduceOutputs>;
  /** a session that copies every activation out, from now on (statistics gathered so far are dropped) */
  const copyOut = (why: string) => {
    notes.push(`activations copied out of onnxruntime for their statistics (${why})`);
    inGraph = false;
    for (const t of targets) {
      t.stats = undefined;
      t.fixedAxis = undefined;
      t.shape = undefined;
    }
    return open(false);
  };
  try {
    ({ session, reduced } = await open(inGraph));
  } catch (err) {
    if (!inGraph) throw err;
    ({ session, reduced } = await copyOut(`its in-graph statistics could not run on this model: ${firstLine(err)}`));
  }
  let done = 0;
  try {
    const accumulate = (res: OrtTypes.InferenceSession.ReturnType, feeds: Record<string, FeedTensor>) => {
      for (const t of targets) {
        const red = inGraph && t.reduce ? reduced.get(t.reduce.value) : undefined;
        if (red) {
          const get = (name: string) => {
            const r = res[name];
            if (!r) throw new ModelError(`onnxruntime did not return the statistics of '${t.output}'`);
            return tensorNumbers(r.type, r.data);
          };
          const dims = Array.from(get(red.shape), Number);
          const { outer, inner } = channelLayout(dims, 1);
          const count = outer * inner;
          if (count >= MAX_REDUCED_COUNT) throw new InGraphUnfit(`'${t.output}' has ${count} values per channel in one batch, too many to count exactly in float32`);
          if (t.fixedAxis === undefined) {
            t.fixedAxis = 1;
            t.shape = dims;
            t.stats = new ChannelStats(dims[1]);
          }
          const [mean, variance] = [get(red.mean), get(red.variance)];
          // NaN / infinite activations: ReduceMax / ReduceMin skip a NaN, so the block could pass for a constant
          for (let c = 0; c < mean.length; c++) if (!Number.isFinite(mean[c]) || !Number.isFinite(variance[c])) throw new InGraphUnfit(`'${t.output}' has non-finite values`);
          t.stats!.addMoments(count, { mean, variance, min: get(red.min), max: get(red.max), positive: get(red.positive) });
          continue;
        }
        let dims: number[];
        let values: ArrayLike<number>;
        const fed = feeds[t.output];
        if (fed) {
          dims = fed.dims;
          values = tensorNumbers(fed.type, fed.data);
        } else {
          const r = res[t.output];
          if (!r) throw new ModelError(`onnxruntime did not return the probed tensor '${t.output}'`);
          dims = [...r.dims];
          values = tensorNumbers(r.type, r.data);
        }
        if (t.fixedAxis === undefined) {
          const rank = dims.length;
          const axis = t.axis ?? channelAxisOf(graph, t.output, rank, prods);
          t.fixedAxis = axis < 0 ? axis + rank : axis;
          if (t.fixedAxis < 0 || t.fixedAxis >= Math.max(rank, 1)) throw new ModelError(`channel axis ${axis} is out of range for '${t.output}' of rank ${rank}`);
          t.shape = dims;
          t.stats = new ChannelStats(channelLayout(dims, t.fixedAxis).channels);
        }
        t.stats!.add(values, channelLayout(dims, t.fixedAxis));
      }
    };
    // a batch the in-graph statistics cannot describe (at any batch), or the first batch failing with them:
    // the copy path, from the first batch again
    for (let restart = true; restart; ) {
      restart = false;
      done = 0;
      for (const batch of inputs.batches()) {
        abort();
        let why: string | null = null;
        try {
          accumulate(await session.run(toOrtFeeds(ort, batch.feeds)), batch.feeds);
        } catch (err) {
          if (inGraph && err instanceof InGraphUnfit) why = err.message;
          else if (inGraph && done === 0) why = `its in-graph statistics failed to run: ${firstLine(err)}`;
          else throw runFailure(batch.feeds, err);
        }
        if (why !== null) {
          await session.release().catch(() => undefined);
          ({ session, reduced } = await copyOut(why));
          restart = true;
          break;
        }
        done += batch.count;
        opts.onProgress?.(done, inputs.samples);
      }
    }
  } finally {
    await session.release().catch(() => undefined);
    releaseScratchKernels();
  }
  if (inGraph) {
    const n = targets.filter((t) => t.reduce).length;
    notes.unshift(`${n} of ${targets.length} probed tensors reduced inside onnxruntime (mean and variance in float32, ~1e-6 relative; extremes and counts exact), the rest copied out and reduced in float64`);
  }
  const layers: ProbeLayerReport[] = [];
  const values: ProbeLayerReport[] = [];
  for (const t of targets) (t.extra ? values : layers).push(summarize(t, threshold));
  const report: ProbeReport = {
    layers,
    samples: done,
    batch_size: inputs.batchSize,
    source: inputs.description,
    input_shapes: inputs.inputShapes,
    apoz_threshold: threshold,
    engine: ENGINE_NAME,
    seconds: (performance.now() - t0) / 1000,
    notes: [...inputs.notes, ...notes],
  };
  if (values.length) report.values = values;
  if (threshold === 1) report.notes.push(`dead = never positive on any of the ${done} probe samples; a unit dead on these inputs may fire on others`);
  return report;
}

/** a block the in-graph statistics cannot describe (too many values to count, NaN or infinite values) */
class InGraphUnfit extends Error {}

function runFailure(feeds: Record<string, FeedTensor>, err: unknown): ModelError {
  const shapes = Object.entries(feeds).map(([k, v]) => `${k}=[${v.dims.join('x')}]`).join(', ');
  return new ModelError(`onnxruntime failed to run the model on probe inputs ${shapes}: ${firstLine(err)}`);
}

export async function createProbeSession(ort: Ort, bytes: Uint8Array, optimization: 'disabled' | 'basic' | 'extended' | 'all'): Promise<OrtTypes.InferenceSession> {
  try {
    return await ort.InferenceSession.create(bytes, { graphOptimizationLevel: optimization, logSeverityLevel: 3 });
  } catch (err) {
    throw new ModelError(`onnxruntime cannot load the model for probing: ${firstLine(err)}`);
  }
}

function summarize(t: Target, threshold: number): ProbeLayerReport {
  return summarizeChannels(t.stats, threshold, { name: t.name, op: t.op, output: t.output, shape: t.shape, channelAxis: t.fixedAxis ?? 1 });
}

/**
 * Runs two ONNX models on the same probe inputs (e.g. the distribution a pruning was planned on) and compares
 * every output of `a` with the same-named output of `b`, like verifyOnnx does on seeded normal inputs.
 */
export async function compareOnInputs(a: OnnxModel, b: OnnxModel, source: InputSource | ProbeInputs, opts: OpenInputsOptions & { signal?: AbortSignal } = {}): Promise<VerifyReport> {
  const { inputs } = resolveInputs(a, source, opts);
  const ort = loadOrt();
  const [sa, sb] = await sessionPair(ort, a.runtimeBytes(), b.runtimeBytes());
  try {
    const errs = new Map(sa.outputNames.map((n) => [n, new OutputComparison(n)]));
    let samples = 0;
    for (const batch of inputs.batches()) {
      if (opts.signal?.aborted) throw new ModelError('verification cancelled');
      const feeds = toOrtFeeds(ort, batch.feeds);
      let ra: OrtTypes.InferenceSession.ReturnType;
      let rb: OrtTypes.InferenceSession.ReturnType;
      try {
        ra = await sa.run(feeds);
        rb = await sb.run(feeds);
      } catch (err) {
        throw new ModelError(`onnxruntime failed to run the models on the probe inputs: ${firstLine(err)}`);
      }
      samples += batch.count;
      for (const name of sa.outputNames) errs.get(name)!.add(tensorNumbers(ra[name].type, ra[name].data), tensorNumbers(rb[name].type, rb[name].data));
    }
    const seed = 'kind' in source && source.kind === 'random' ? (source.seed ?? 1) : 0;
    return verifyReport([...errs.values()], { samples, seed, engine: ENGINE_NAME, input_shapes: inputs.inputShapes });
  } finally {
    await Promise.allSettled([sa.release(), sb.release()]);
  }
}

/**
 * Rows of the activation mean/variance-by-depth profile of two probes of related models (e.g. before and after
 * an activation swap), matched by probed tensor name (rewrites keep activation output names).
 */
export function depthProfile(before: ProbeReport, after: ProbeReport): DepthProfileRow[] {
  const byOutput = new Map(after.layers.map((l) => [l.output, l]));
  return before.layers.map((l) => {
    const a = byOutput.get(l.output);
    return {
      layer: l.name,
      op_before: l.op,
      op_after: a ? a.op : null,
      mean_before: l.layer_mean,
      var_before: l.layer_var,
      mean_after: a ? a.layer_mean : null,
      var_after: a ? a.layer_var : null,
    };
  });
}
