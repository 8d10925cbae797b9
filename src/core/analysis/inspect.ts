/** Builds the InspectReport (per-layer statistics, BN summaries, totals, findings) from a GraphView. */
import type { GraphView, LayerView, WeightView } from '../graph/graph';
import type { BatchNormSummary, Finding, InspectReport, LayerReport, TensorSummary } from '../types';
import { statsParallel } from './parallel-stats';
import { rangeOf, weightStats } from './stats';
import { kernelWeightStats } from './wasm-kernels';

export const LOW_VARIANCE = 1e-8;
export const LOW_GAMMA = 1e-6;
/** |gamma|/sqrt(var+eps) above this loses most float16 precision once folded (float16 max is 65504) */
export const HUGE_FOLD_SCALE = 1e3;

export interface InspectOptions {
  /** skip per-tensor statistics (for a quick structural view) */
  stats?: boolean;
}

export function buildReport(view: GraphView, opts: InspectOptions = {}): InspectReport {
  const withStats = opts.stats !== false;
  return finish(view, view.layers.map((l) => layerReport(l, withStats)));
}

/** the same report, with the weight statistics of large models computed on two cores; `meanwhile` runs while the worker starts */
export async function buildReportAsync(view: GraphView, opts: InspectOptions = {}, meanwhile?: () => void): Promise<InspectReport> {
  const layers = view.layers.map((l) => layerReport(l, false));
  if (opts.stats === false) meanwhile?.();
  else {
    const jobs: { w: WeightView; t: TensorSummary }[] = [];
    view.layers.forEach((l, i) =>
      l.weights.forEach((w, k) => {
        if (layers[i].weights[k].shape.reduce((p, v) => p * v, 1) > 0) jobs.push({ w, t: layers[i].weights[k] });
      }),
    );
    const stats = await statsParallel(
      jobs.map(({ w }) => ({ shape: w.statsShape ?? w.shape, channelAxis: w.channelAxis, groups: w.groups, count: w.shape.reduce((p, v) => p * v, 1), read: () => w.read(), peek: () => w.peek(), shared: () => w.shared?.() ?? null })),
      undefined,
      meanwhile,
    );
    jobs.forEach((j, k) => (j.t.stats = stats[k]));
  }
  return finish(view, layers);
}

function finish(view: GraphView, layers: LayerReport[]): InspectReport {
  const findings = [...findingsFor(layers), ...(view.findings ?? [])];
  let macs: number | null = 0;
  for (const l of layers) macs = macs === null || l.macs === null ? null : macs + l.macs;
  return {
    format: view.format,
    model: view.summary,
    layers,
    totals: { params: layers.reduce((s, l) => s + l.params, 0), macs, layers: layers.length },
    findings,
  };
}

/** the kernels when the tensor sits in a kernel memory (large ONNX files), else the JavaScript reference */
function tensorStats(w: WeightView, data: Float32Array | undefined) {
  const sh = data ? null : w.shared?.();
  const fast = sh ? kernelWeightStats(sh.buffer, sh.byteOffset, sh.length, w.statsShape ?? w.shape, w.channelAxis, w.groups) : null;
  return fast ?? weightStats(data ?? w.peek(), w.statsShape ?? w.shape, w.channelAxis, w.groups);
}

function layerReport(l: LayerView, withStats: boolean): LayerReport {
  const weights: TensorSummary[] = [];
  let params = 0;
  const cache = new Map<WeightView, Float32Array>();
  const read = (w: WeightView) => {
    let d = cache.get(w);
    if (!d) cache.set(w, (d = w.read()));
    return d;
  };
  for (const w of l.weights) {
    const count = w.shape.reduce((p, v) => p * v, 1);
    params += count;
    weights.push({
      name: w.name,
      role: w.role,
      dtype: w.dtype,
      shape: w.shape,
      channel_axis: w.channelAxis,
      bytes: w.bytes,
      source: w.source,
      ...(w.quantized ? { quantized: w.quantized } : {}),
      stats: withStats && count > 0 ? tensorStats(w, cache.get(w)) : null,
    });
  }
  const report: LayerReport = {
    name: l.name,
    index: l.index,
    op: l.op,
    native_op: l.nativeOp,
    inputs: l.inputs,
    outputs: l.outputs,
    params,
    macs: l.macs,
    output_shape: l.outputShape,
    weights,
    batchnorm: l.op === 'BatchNorm' ? batchNormSummary(l, read) : null,
  };
  return report;
}

function batchNormSummary(l: LayerView, read: (w: WeightView) => Float32Array): BatchNormSummary {
  const get = (role: string) => l.weights.find((w) => w.role === role);
  const eps = l.epsilon ?? 1e-5;
  const load = (role: string): Float32Array | null => {
    const w = get(role);
    try {
      return w ? read(w) : null;
    } catch {
      return null;
    }
  };
  const gamma = load('gamma');
  const beta = load('beta');
  const mean = load('mean');
  const variance = load('variance');
  const channels = (gamma ?? beta ?? mean ?? variance)?.length ?? 0;
  const lowVar: number[] = [];
  const lowGamma: number[] = [];
  let negGamma = 0;
  let maxScale: number | null = null;
  for (let c = 0; c < channels; c++) {
    const v = variance ? variance[c] : NaN;
    const g = gamma ? gamma[c] : 1;
    if (variance && Math.abs(v) <= LOW_VARIANCE) lowVar.push(c);
    if (gamma && Math.abs(g) <= LOW_GAMMA) lowGamma.push(c);
    if (gamma && g < 0) negGamma++;
    if (variance) {
      const s = Math.abs(g) / Math.sqrt(v + eps);
      if (maxScale === null || s > maxScale) maxScale = s;
    }
  }
  return {
    channels,
    epsilon: eps,
    gamma: gamma ? rangeOf(gamma) : null,
    beta: beta ? rangeOf(beta) : null,
    running_mean: mean ? rangeOf(mean) : null,
    running_var: variance ? rangeOf(variance) : null,
    low_variance_channels: lowVar,
    low_gamma_channels: lowGamma,
    negative_gamma_channels: negGamma,
    max_fold_scale: maxScale,
    training_mode: l.trainingMode === true,
  };
}

/** Finding codes are stable: they are documented in the README and used by CI scripts. */
function findingsFor(layers: LayerReport[]): Finding[] {
  const findings: Finding[] = [];
  const bns = layers.filter((l) => l.batchnorm);
  const nonFinite = layers.filter((l) => l.weights.some((w) => w.stats && w.stats.non_finite > 0));
  if (nonFinite.length) {
    findings.push({
      severity: 'error',
      code: 'weights-non-finite',
      message: `${nonFinite.length} layer(s) have NaN or infinite weights; the model's outputs cannot be trusted.`,
      layers: nonFinite.map((l) => l.name),
    });
  }
  const training = bns.filter((l) => l.batchnorm?.training_mode);
  if (training.length) {
    findings.push({
      severity: 'warning',
      code: 'bn-training-mode',
      message: `${training.length} BatchNorm layer(s) are exported in training mode: they normalize with the statistics of each batch instead of the stored running averages, so at batch size 1 their outputs depend on the single sample.`,
      layers: training.map((l) => l.name),
    });
  }
  const lowVar = bns.filter((l) => (l.batchnorm?.low_variance_channels.length ?? 0) > 0);
  if (lowVar.length) {
    const n = lowVar.reduce((s, l) => s + (l.batchnorm?.low_variance_channels.length ?? 0), 0);
    findings.push({
      severity: 'info',
      code: 'bn-zero-variance',
      message: `${n} BatchNorm channel(s) in ${lowVar.length} layer(s) have running variance ~0: their input was constant during training (often a dead channel); they are candidates for pruning.`,
      layers: lowVar.map((l) => l.name),
    });
  }
  const lowGamma = bns.filter((l) => (l.batchnorm?.low_gamma_channels.length ?? 0) > 0);
  if (lowGamma.length) {
    const n = lowGamma.reduce((s, l) => s + (l.batchnorm?.low_gamma_channels.length ?? 0), 0);
    findings.push({
      severity: 'info',
      code: 'bn-zero-gamma',
      message: `${n} BatchNorm channel(s) have |gamma| ~0: the channel's output is the constant beta whatever the input (network-slimming pruning candidates).`,
      layers: lowGamma.map((l) => l.name),
    });
  }
  const huge = bns.filter((l) => (l.batchnorm?.max_fold_scale ?? 0) > HUGE_FOLD_SCALE);
  if (huge.length) {
    findings.push({
      severity: 'info',
      code: 'bn-large-fold-scale',
      message: `${huge.length} BatchNorm layer(s) scale some channel by more than ${HUGE_FOLD_SCALE}x (|gamma|/sqrt(var+eps)); folded weights grow by that factor, which can overflow or lose precision in float16.`,
      layers: huge.map((l) => l.name),
    });
  }
  return findings;
}
