/**
 * BatchNorm audit (format-neutral, on a DoctorGraphView built at the input size and batch to audit).
 *
 * The central quantity is the EFFECTIVE BATCH of a BatchNorm: in training it computes, per channel, the
 * mean and variance over every element of its input except the channel axis -- N x H x W values after a
 * conv, but only N after a Dense layer, a Flatten, global pooling or on 1x1 feature maps. At an effective
 * batch of 1 the batch variance is 0: PyTorch refuses ("Expected more than 1 value per channel when
 * training"), other frameworks output beta for every sample and update the running statistics from one
 * value. Inference with the stored running statistics is not affected, which is why this is a hazard for
 * fine-tuning a model, not a bug in it.
 *
 * Fold information comes from the format's rewrite plans (passed in), so every "cannot be folded" finding
 * carries the rewrite's own reason.
 */
import type { BatchNormAuditReport, BatchNormAuditRow, BatchNormContext, Finding, FixId, FoldPlan, RewritePlan, ValueSummary } from '../types';
import { activationInputs, defaultBatchNormAxis, weightNames, wiring, type Dims, type DoctorGraphView, type DoctorLayerView } from './doctor-view';
import { HUGE_FOLD_SCALE, LOW_GAMMA, LOW_VARIANCE } from './inspect';

/** BN error grows steeply below this many samples per batch (Wu & He, "Group Normalization", ECCV 2018, Fig. 1) */
export const SMALL_BATCH = 16;

export interface BatchNormAuditOptions {
  batchSize: number;
  batchSource: BatchNormAuditReport['batch_source'];
  /** the format's fold plans; without them no fold / unfoldable information is reported */
  backward?: FoldPlan;
  forward?: FoldPlan;
  affine?: RewritePlan;
  evalMode?: RewritePlan;
  /** fix ids that exist for this format (default: the ONNX ones) */
  available?: FixId[];
}

const ONNX_FIXES: FixId[] = ['fold-batchnorm', 'fold-batchnorm-forward', 'batchnorm-to-affine', 'batchnorm-eval-mode'];

/** ops a value passes through unchanged in layout (walking back to find where a [N, C] / 1x1 tensor came from) */
const PASS_THROUGH = new Set([
  'Relu', 'Relu6', 'LeakyRelu', 'Selu', 'Elu', 'Gelu', 'Sigmoid', 'Tanh', 'HardSigmoid', 'HardSwish', 'Clip', 'Identity',
  'Dropout', 'BatchNorm', 'Add', 'Sub', 'Mul', 'Div', 'Cast', 'PRelu', 'Softplus', 'Mish', 'Swish', 'Activation',
]);
const GLOBAL_POOL = new Set(['GlobalAveragePool', 'GlobalMaxPool', 'GlobalLpPool', 'ReduceMean', 'ReduceMax', 'ReduceSum', 'GlobalAveragePooling2D', 'GlobalMaxPooling2D', 'GlobalAveragePooling1D', 'GlobalMaxPooling1D']);
const DENSE = new Set(['Dense', 'MatMul', 'Gemm', 'Linear']);
const FLATTEN = new Set(['Flatten', 'Reshape', 'Squeeze']);

/**
 * The concrete input shapes an audit runs at (every format): declared dims, symbolic ones from `dims` (else
 * unknown), the batch dim from `batchSize` or the model, assumed 1 when it is symbolic; and where the batch
 * size came from.
 */
export function auditInputShapes(
  inputs: ValueSummary[],
  opts: { batchSize?: number; dims?: Record<string, number>; inputShapes?: Record<string, number[]> },
): { shapes: Record<string, Dims>; batch: number | null; source: BatchNormAuditReport['batch_source'] } {
  let source: BatchNormAuditReport['batch_source'] = opts.batchSize !== undefined ? 'option' : 'model';
  let batch: number | null = opts.batchSize ?? null;
  const shapes: Record<string, Dims> = {};
  for (const input of inputs) {
    const declared = opts.inputShapes?.[input.name] ?? input.shape;
    if (!declared) continue;
    const s: Dims = declared.map((d) => (typeof d === 'number' ? (d > 0 ? d : null) : d !== null && opts.dims && d in opts.dims ? opts.dims[d] : null));
    if (s.length) {
      if (opts.batchSize !== undefined) s[0] = opts.batchSize;
      else if (s[0] === null) {
        s[0] = 1;
        source = 'assumed';
      }
      batch ??= s[0];
    }
    shapes[input.name] = s;
  }
  return { shapes, batch, source };
}

export function auditBatchNorm(view: DoctorGraphView, opts: BatchNormAuditOptions): BatchNormAuditReport {
  const { producer } = wiring(view);
  const weights = weightNames(view);
  const available = new Set(opts.available ?? ONNX_FIXES);
  const index = <T extends { batchnorm: string }>(list: T[] | undefined) => new Map((list ?? []).map((c) => [c.batchnorm, c]));
  const back = index(opts.backward?.candidates);
  const fwd = index(opts.forward?.candidates);
  const affine = new Set((opts.affine?.candidates ?? []).map((c) => c.layer));
  const evalMode = new Set((opts.evalMode?.candidates ?? []).map((c) => c.layer));
  const skipReason = (plan: { skipped: { layer: string; reason: string }[] } | undefined, layer: string) => plan?.skipped.find((s) => s.layer === layer)?.reason ?? null;

  const rows: BatchNormAuditRow[] = [];
  const findings: Finding[] = [];
  for (const l of view.layers) {
    if (l.op !== 'BatchNorm') continue;
    const shape = l.outputShape;
    const rank = shape?.length ?? 0;
    let axis = l.axis ?? defaultBatchNormAxis(view);
    if (axis < 0) axis += rank;
    const get = (role: string) => l.weights.find((w) => w.role === role);
    const read = (role: string) => {
      const w = get(role);
      try {
        return w ? w.read() : null;
      } catch {
        return null;
      }
    };
    const gamma = read('gamma');
    const variance = read('variance');
    const channels = (gamma ?? variance ?? read('mean'))?.length ?? (shape && shape[axis] !== undefined ? shape[axis] ?? 0 : 0);
    const eff = shape && !shape.some((d, k) => k !== axis && d === null) ? (shape as number[]).reduce((p, d, k) => (k === axis ? p : p * d), 1) : null;
    const context = contextOf(view, l, shape, axis, producer, weights);
    const src = producer.get(activationInputs(l, weights)[0] ?? '');
    const eps = l.epsilon ?? 1e-5;
    const lowVar: number[] = [];
    const lowGamma: number[] = [];
    const negGamma: number[] = [];
    let maxScale: number | null = null;
    let maxAt: number | null = null;
    for (let c = 0; c < channels; c++) {
      const g = gamma ? gamma[c] : 1;
      if (variance && Math.abs(variance[c]) <= LOW_VARIANCE) lowVar.push(c);
      if (gamma && Math.abs(g) <= LOW_GAMMA) lowGamma.push(c);
      if (gamma && g < 0) negGamma.push(c);
      if (variance) {
        const s = Math.abs(g) / Math.sqrt(variance[c] + eps);
        if (maxScale === null || s > maxScale) {
          maxScale = s;
          maxAt = c;
        }
      }
    }
    const b = back.get(l.name);
    const f = fwd.get(l.name);
    const row: BatchNormAuditRow = {
      layer: l.name,
      channels,
      input_shape: shape,
      context,
      effective_batch: eff,
      producer: src?.name ?? null,
      producer_op: src?.op ?? null,
      training_mode: l.trainingMode === true,
      fold: b ? 'backward' : f ? 'forward' : affine.has(l.name) ? 'affine' : null,
      fold_into: b?.into ?? f?.into ?? null,
      backward_blocker: b ? null : skipReason(opts.backward, l.name),
      forward_blocker: f ? null : skipReason(opts.forward, l.name),
      low_variance_channels: lowVar,
      low_gamma_channels: lowGamma,
      negative_gamma_channels: negGamma,
      max_fold_scale: maxScale,
      max_fold_scale_channel: maxAt,
    };
    rows.push(row);
    findings.push(...findingsFor(row, opts, available, evalMode.has(l.name)));
  }
  findings.push(...channelFindings(rows));
  return { batch_size: opts.batchSize, batch_source: opts.batchSource, input_shapes: view.inputShapes ?? {}, rows, findings };
}

/** what the BN's statistics are computed over, and why */
function contextOf(view: DoctorGraphView, l: DoctorLayerView, shape: Dims | null, axis: number, producer: Map<string, DoctorLayerView>, weights: Set<string>): BatchNormContext {
  if (!shape) return 'unknown';
  const spatialOf = (s: Dims | null | undefined) => (s ? s.filter((_, k) => k !== 0 && k !== axis) : null);
  const spatial = spatialOf(shape)!;
  const input = (x: DoctorLayerView) => activationInputs(x, weights)[0];
  if (spatial.length === 0) {
    // [N, C]: where did it come from?
    let cur: DoctorLayerView = l;
    for (let hops = 0; hops < 64; hops++) {
      const p = producer.get(input(cur) ?? '');
      if (!p) return 'vector';
      if (DENSE.has(p.op) || DENSE.has(p.nativeOp)) return 'dense';
      if (FLATTEN.has(p.op) || FLATTEN.has(p.nativeOp)) return 'flattened';
      if (!PASS_THROUGH.has(p.op)) return 'vector';
      cur = p;
    }
    return 'vector';
  }
  if (spatial.includes(null) || spatial.some((d) => (d as number) > 1)) return 'spatial';
  // 1x1 maps: at any input size (after global pooling) or only at this one?
  const shapeOfValue = (name: string | undefined): Dims | null => {
    if (!name) return null;
    const p = producer.get(name);
    if (!p) return view.inputShapes?.[name] ?? null;
    const k = p.outputs.indexOf(name);
    return (p.outputShapes?.[k] ?? (k === 0 ? p.outputShape : null)) ?? null;
  };
  let cur: DoctorLayerView = l;
  for (let hops = 0; hops < 64; hops++) {
    const p = producer.get(input(cur) ?? '');
    if (!p) return 'spatial-1x1';
    if (GLOBAL_POOL.has(p.op) || GLOBAL_POOL.has(p.nativeOp)) return 'global-pooled';
    const before = spatialOf(shapeOfValue(input(p)));
    if (!before || before.length !== spatial.length || before.some((d) => d !== 1)) return 'spatial-1x1';
    cur = p;
  }
  return 'spatial-1x1';
}

const CONTEXT_TEXT: Record<BatchNormContext, string> = {
  spatial: 'its input has spatial extent',
  'spatial-1x1': 'its feature maps are 1x1 at this input size',
  'global-pooled': 'it follows global pooling (1x1 feature maps at any input size)',
  flattened: 'it normalizes a flattened [N, C] tensor',
  dense: 'it follows a fully connected layer ([N, C] tensor)',
  vector: 'it normalizes an [N, C] tensor',
  unknown: 'its input shape is unknown',
};

function findingsFor(row: BatchNormAuditRow, opts: BatchNormAuditOptions, available: Set<FixId>, evalFix: boolean): Finding[] {
  const out: Finding[] = [];
  const layers = [row.layer];
  const n = opts.batchSize;
  const batchWord = opts.batchSource === 'assumed' ? `batch size ${n} (the model's batch dimension is symbolic; 1 is the worst case it allows)` : `batch size ${n}`;
  // the fix for THIS model: remove the BN for inference; the fine-tuning fixes belong to Keras/TF.js
  const removal: FixId | undefined = row.fold === 'backward' ? 'fold-batchnorm' : row.fold === 'forward' ? 'fold-batchnorm-forward' : row.fold === 'affine' ? 'batchnorm-to-affine' : undefined;
  const batchFixes = (): Pick<Finding, 'fix' | 'fixes'> => {
    const fixes: FixId[] = [...(removal ? [removal] : []), 'freeze-batchnorm', 'replace-batchnorm-groupnorm'];
    const fix = fixes.find((x) => available.has(x));
    return fix ? { fix, fixes } : { fixes };
  };
  const remedies =
    `For inference, ${removal ? `remove it (${removal === 'batchnorm-to-affine' ? 'a constant per-channel scale and shift' : 'fold it into ' + row.fold_into})` : 'keep running statistics (eval mode)'}; ` +
    'for fine-tuning, freeze it (use the running statistics and keep gamma/beta fixed or trainable) or replace it by GroupNorm/LayerNorm, which normalize per sample (both Keras/TF.js rewrites; a replacement needs fine-tuning)';
  const noSpatial = row.context !== 'spatial' && row.context !== 'unknown';
  if (row.effective_batch !== null && row.effective_batch <= 1 && !row.training_mode) {
    out.push({
      severity: 'warning',
      code: 'bn-batch1-hazard',
      message:
        `${row.layer}: ${CONTEXT_TEXT[row.context]}, so in training it computes each channel's mean and variance over ${row.effective_batch} value at ${batchWord}. ` +
        `Its batch variance is then 0: PyTorch stops with "Expected more than 1 value per channel when training", other frameworks output beta for every sample and update the running statistics from a single value. ` +
        `Inference with the stored running statistics is unaffected; this matters when the model is trained or fine-tuned at this batch size (a BN after a convolution sees N x H x W values instead). ${remedies}.`,
      layers,
      ...batchFixes(),
      details: { effective_batch: row.effective_batch, batch_size: n, channels: row.channels, context: row.context },
    });
  } else if (noSpatial && row.effective_batch !== null && !row.training_mode) {
    out.push({
      severity: 'info',
      code: 'bn-no-spatial-extent',
      message:
        `${row.layer}: ${CONTEXT_TEXT[row.context]}, so it normalizes over the batch alone: ${row.effective_batch} value(s) per channel at ${batchWord} (a BN after a convolution sees N x H x W). ` +
        `Training needs a batch of at least 2 and its statistics get noisy at small batches (Wu & He 2018: BatchNorm's error rises steeply below about ${SMALL_BATCH} samples per device); at batch 1 it fails. ${remedies}.`,
      layers,
      ...batchFixes(),
      details: { effective_batch: row.effective_batch, batch_size: n, channels: row.channels, context: row.context },
    });
  }
  if (row.training_mode) {
    const f: Finding = {
      severity: 'warning',
      code: 'bn-training-mode',
      message:
        `${row.layer} is exported in training mode: it normalizes with the mean and variance of each batch instead of the running statistics stored in the file, so one sample's output depends on the rest of the batch and at batch size 1 (or 1x1 maps) the variance is 0. ` +
        'Usually an export from model.train(); switching it to inference mode makes it compute what model.eval() computes (the outputs change, by design).',
      layers,
      details: { channels: row.channels },
    };
    if (evalFix && available.has('batchnorm-eval-mode')) {
      f.fix = 'batchnorm-eval-mode';
      f.fixes = ['batchnorm-eval-mode'];
    }
    out.push(f);
  } else if (row.fold === null || row.fold === 'affine') {
    if (opts.backward && opts.forward) {
      const f: Finding = {
        severity: 'info',
        code: 'bn-unfoldable',
        message:
          `${row.layer} cannot be folded into a neighbouring layer. Into the layer before it: ${row.backward_blocker ?? 'no plan'}. Into the layer after it: ${row.forward_blocker ?? 'no plan'}.` +
          (row.fold === 'affine' ? ' It can still become one constant per-channel scale and shift (Mul + Add).' : ''),
        layers,
        details: { backward: row.backward_blocker ?? '', forward: row.forward_blocker ?? '' },
      };
      if (row.fold === 'affine' && available.has('batchnorm-to-affine')) {
        f.fix = 'batchnorm-to-affine';
        f.fixes = ['batchnorm-to-affine'];
      }
      out.push(f);
    }
  }
  return out;
}

/** per-channel statistics: one finding per code over all layers (the rows hold each layer's channels) */
function channelFindings(rows: BatchNormAuditRow[]): Finding[] {
  const out: Finding[] = [];
  const total = (pick: (r: BatchNormAuditRow) => number[]) => rows.reduce((s, r) => s + pick(r).length, 0);
  const where = (pick: (r: BatchNormAuditRow) => number[]) => rows.filter((r) => pick(r).length > 0);
  const perLayer = (pick: (r: BatchNormAuditRow) => number[]) =>
    where(pick)
      .map((r) => `${r.layer}: ${list(pick(r))}`)
      .join('; ');
  const lowVar = where((r) => r.low_variance_channels);
  if (lowVar.length) {
    const n = total((r) => r.low_variance_channels);
    out.push({
      severity: 'info',
      code: 'bn-zero-variance',
      message:
        `${n} BatchNorm channel(s) in ${lowVar.length} layer(s) have running variance ~0 (<= ${LOW_VARIANCE}) (${perLayer((r) => r.low_variance_channels)}): their input was constant during training (typically a filter that never fires, e.g. a dead ReLU before it). ` +
        `Such a channel outputs about beta, but any deviation from the stored mean is multiplied by |gamma|/sqrt(eps) (${Math.round(1 / Math.sqrt(1e-5))}x |gamma| at eps=1e-5), and folding multiplies its weights by the same factor. Pruning candidates, together with the filter before them.`,
      layers: lowVar.map((r) => r.layer),
      details: { channels: n, layers: lowVar.length },
    });
  }
  const lowGamma = where((r) => r.low_gamma_channels);
  if (lowGamma.length) {
    const n = total((r) => r.low_gamma_channels);
    out.push({
      severity: 'info',
      code: 'bn-zero-gamma',
      message:
        `${n} BatchNorm channel(s) in ${lowGamma.length} layer(s) have |gamma| ~0 (<= ${LOW_GAMMA}) (${perLayer((r) => r.low_gamma_channels)}): each outputs the constant beta whatever its input, so it carries no information. ` +
        "Pruning candidates (the network-slimming criterion); the constant beta must then be folded into the next layer's bias.",
      layers: lowGamma.map((r) => r.layer),
      details: { channels: n, layers: lowGamma.length },
    });
  }
  const neg = where((r) => r.negative_gamma_channels);
  if (neg.length) {
    const n = total((r) => r.negative_gamma_channels);
    out.push({
      severity: 'info',
      code: 'bn-negative-gamma',
      message:
        `${n} BatchNorm channel(s) in ${neg.length} layer(s) have gamma < 0, which flips the channel's sign. ` +
        'Folding handles it (the scale is negative), but moving a BatchNorm across a ReLU or max-pooling, or "folding" it through them, is wrong for these channels, and magnitude-based pruning must rank |gamma|, not gamma.',
      layers: neg.map((r) => r.layer),
      details: { channels: n, layers: neg.length },
    });
  }
  const huge = rows.filter((r) => r.max_fold_scale !== null && r.max_fold_scale > HUGE_FOLD_SCALE);
  if (huge.length) {
    const worst = huge.reduce((a, b) => ((b.max_fold_scale ?? 0) > (a.max_fold_scale ?? 0) ? b : a));
    out.push({
      severity: 'info',
      code: 'bn-large-fold-scale',
      message:
        `${huge.length} BatchNorm layer(s) scale some channel by |gamma|/sqrt(var+eps) > ${HUGE_FOLD_SCALE} (largest ${fmt(worst.max_fold_scale ?? 0)}, ${worst.layer} channel ${worst.max_fold_scale_channel}). ` +
        'Folding multiplies the neighbouring weights by that factor: in float16 (11-bit mantissa, max 65504) the folded weights can overflow or lose precision. Fold in float32, or keep these BatchNorms separate in a float16 model.',
      layers: huge.map((r) => r.layer),
      details: { max_fold_scale: worst.max_fold_scale ?? 0, layer: worst.layer, channel: worst.max_fold_scale_channel ?? -1 },
    });
  }
  return out;
}

function list(a: number[]): string {
  return a.length > 32 ? `${a.slice(0, 32).join(',')},... (${a.length})` : a.join(',');
}

function fmt(v: number): string {
  return v >= 100 ? String(Math.round(v)) : v.toPrecision(3);
}
