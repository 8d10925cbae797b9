/**
 * Keras-family entry points of the BatchNorm / Dropout doctor and the memory planner (TF.js layers, Keras 2
 * .h5, Keras 3 .keras), mirroring formats/onnx/doctor.ts: a DoctorGraphView built from the model config
 * (shapes from batch_input_shape / the given input shapes and per-layer rules, channels-last; the BatchNorm
 * axis from its config; Dropout semantics: every Keras dropout layer is the identity at inference unless it is
 * called with training=True), the format-neutral analyses run on it with the Keras rewrite plans, and Keras
 * wording where the neutral text speaks of ONNX export modes.
 */
import { auditBatchNorm, auditInputShapes } from '../../analysis/batchnorm-audit';
import type { DoctorGraphView, DoctorLayerView } from '../../analysis/doctor-view';
import { auditDropout } from '../../analysis/dropout-audit';
import { planMemory, type MemoryPlanOptions } from '../../analysis/memory-planner';
import type { BatchNormAuditReport, DropoutAuditReport, Finding, FixId, MemoryPlanReport } from '../../types';
import { bnAxis, planKerasFold } from './fold';
import { activationName, buildKerasViewParts, canonicalKerasOp, type Shape } from './graph';
import { num } from './json';
import type { KerasModel } from './model';
import { DROPOUT_CLASSES, planKerasRemoveDropout } from './rewrite-dropout';
import { planKerasBatchNormToAffine, planKerasFoldForward } from './rewrite-fold-bn-forward';

export interface KerasDoctorViewOptions {
  /** values for symbolic input dims by name ('batch', '<input>_dim<k>') */
  dims?: Record<string, number>;
  /** shapes of the model inputs by name, replacing the declared ones */
  inputShapes?: Record<string, Shape>;
  /**
   * memory planner: a layer with a fused non-linear activation (Conv2D(activation='relu'), Dense(...,
   * 'softmax')) becomes two layers, the layer (its pre-activation output) and `<name>/<activation>`, because
   * Keras computes and keeps both tensors
   */
  splitActivations?: boolean;
}

/** GraphView + every output's shape + BatchNorm axis + Dropout semantics, at the declared or given input shapes */
export function buildKerasDoctorView(model: KerasModel, opts: KerasDoctorViewOptions = {}): DoctorGraphView {
  const { view, flat, inputShapes } = buildKerasViewParts(model, opts.dims ?? {}, opts.inputShapes ?? {});
  const layers: DoctorLayerView[] = [];
  view.layers.forEach((l, i) => {
    const f = flat[i];
    const c = f.layer.config;
    // every weight of a Keras layer is a variable (a parameter), whatever its key
    const d: DoctorLayerView = { ...l, weights: l.weights.map((w) => (w.role === 'weight' ? { ...w, role: 'kernel' } : w)), outputShapes: [l.outputShape] };
    if (f.layer.className === 'BatchNormalization') {
      const axis = bnAxis(c);
      if (axis !== null) d.axis = axis;
    }
    if (DROPOUT_CLASSES.has(f.layer.className)) d.dropout = { rate: num(c.rate) ?? null, mode: f.callKwargs.training === true ? 'training' : 'inference' };
    const act = f.layer.className === 'Activation' ? undefined : activationName(c.activation);
    if (opts.splitActivations && act && act !== 'linear') {
      const pre = `${f.outputName}:preact`;
      layers.push({ ...d, outputs: [pre] });
      layers.push({
        name: `${f.name}/${act}`,
        index: 0,
        op: canonicalKerasOp('Activation', { activation: act }),
        nativeOp: 'Activation',
        inputs: [pre],
        outputs: [f.outputName],
        weights: [],
        outputShape: l.outputShape,
        outputShapes: [l.outputShape],
        macs: 0,
      });
      return;
    }
    layers.push(d);
  });
  layers.forEach((l, i) => (l.index = i));
  return { ...view, layers, inputShapes };
}

export interface KerasAuditOptions {
  batchSize?: number;
  dims?: Record<string, number>;
  inputShapes?: Record<string, number[]>;
}

/** the concrete input shapes to audit at, and where the batch size came from (as the ONNX audit does) */
function auditShapes(model: KerasModel, opts: KerasAuditOptions): ReturnType<typeof auditInputShapes> {
  return auditInputShapes(buildKerasViewParts(model, opts.dims ?? {}).view.summary.inputs, opts);
}

export function auditKerasBatchNorm(model: KerasModel, opts: KerasAuditOptions = {}, available: FixId[] = ['fold-batchnorm', 'fold-batchnorm-forward', 'batchnorm-to-affine', 'freeze-batchnorm', 'replace-batchnorm-groupnorm']): BatchNormAuditReport {
  const { shapes, batch, source } = auditShapes(model, opts);
  const view = buildKerasDoctorView(model, { inputShapes: shapes });
  const backward = planKerasFold(model);
  const forward = planKerasFoldForward(model);
  const affine = planKerasBatchNormToAffine(model);
  const report = auditBatchNorm(view, { batchSize: batch ?? 1, batchSource: batch === null ? 'assumed' : source, backward, forward, affine, available });
  // Keras global pooling drops the spatial axes ([N, C], not [N, 1, 1, C]): the neutral audit calls that a
  // plain [N, C] tensor; say where it comes from
  const pooled = new Set(report.rows.filter((r) => r.context === 'vector' && afterGlobalPooling(view, r.layer)).map((r) => r.layer));
  for (const r of report.rows) if (pooled.has(r.layer)) r.context = 'global-pooled';
  report.findings = report.findings.map((f) => kerasBatchNormWording(f, pooled));
  return report;
}

const GLOBAL_POOL = new Set(['GlobalAveragePool', 'GlobalMaxPool']);
const SHAPE_KEEPING = new Set(['Relu', 'Relu6', 'LeakyRelu', 'Selu', 'Elu', 'Gelu', 'Sigmoid', 'Tanh', 'HardSigmoid', 'HardSwish', 'Swish', 'Clip', 'Identity', 'Dropout', 'BatchNorm', 'PRelu']);

/** whether a layer's input comes from global pooling (through activations / dropout / BatchNorm) */
function afterGlobalPooling(view: DoctorGraphView, layer: string): boolean {
  const byOutput = new Map(view.layers.map((l) => [l.outputs[0], l]));
  let cur = view.layers.find((l) => l.name === layer);
  for (let hops = 0; cur && hops < 64; hops++) {
    const p = byOutput.get(cur.inputs[0] ?? '');
    if (!p) return false;
    if (GLOBAL_POOL.has(p.op)) return true;
    if (!SHAPE_KEEPING.has(p.op)) return false;
    cur = p;
  }
  return false;
}

function kerasBatchNormWording(f: Finding, pooled: Set<string>): Finding {
  if ((f.code === 'bn-batch1-hazard' || f.code === 'bn-no-spatial-extent') && pooled.has(f.layers[0])) {
    const layer = f.layers[0];
    f = {
      ...f,
      message: f.message.replace(`${layer}: it normalizes an [N, C] tensor`, `${layer}: it follows global pooling (one value per channel and sample at any input size)`),
      details: { ...(f.details ?? {}), context: 'global-pooled' },
    };
  }
  if (f.code === 'bn-training-mode') {
    const layer = f.layers[0];
    return {
      ...f,
      message:
        `${layer} is called with training=True in the model config: it normalizes with the mean and variance of each batch also in predict(), instead of the moving statistics stored in the file, so one sample's output depends on the rest of the batch and at batch size 1 (or 1x1 maps) the variance is 0. ` +
        'Intentional only for special setups; calling it without training=True makes it use the moving statistics (the outputs change, by design). It cannot be folded while it uses batch statistics.',
    };
  }
  if (f.code === 'bn-unfoldable') {
    // the neutral text names the ONNX affine form (Mul + Add); in Keras it is a 1x1 DepthwiseConv2D
    const affine = f.fix === 'batchnorm-to-affine';
    return {
      ...f,
      message:
        f.message.replace(' It can still become one constant per-channel scale and shift (Mul + Add).', '') +
        (affine
          ? ' It can still become one constant per-channel scale and shift: a DepthwiseConv2D with a 1x1 kernel (batchnorm-to-affine).'
          : ' It stays a BatchNormalization layer (for fine-tuning: freeze-batchnorm, or replace-batchnorm-groupnorm).'),
    };
  }
  return f;
}

const VARIANT: Record<string, string> = {
  Dropout: 'In fit() it zeroes a fraction p of the activations and scales the kept ones by 1/(1-p) (inverted dropout), so nothing is rescaled at inference.',
  SpatialDropout1D: 'In fit() it drops whole feature maps (channels) with probability p and scales the kept ones by 1/(1-p), for convolutional features whose neighbouring values are correlated.',
  SpatialDropout2D: 'In fit() it drops whole feature maps (channels) with probability p and scales the kept ones by 1/(1-p), for convolutional features whose neighbouring values are correlated.',
  SpatialDropout3D: 'In fit() it drops whole feature maps (channels) with probability p and scales the kept ones by 1/(1-p), for convolutional features whose neighbouring values are correlated.',
  GaussianDropout: 'In fit() it multiplies every activation by noise with mean 1 and variance p/(1-p) (Gaussian dropout), so nothing is rescaled at inference.',
  AlphaDropout: "In fit() it sets dropped activations to SELU's negative saturation value and applies an affine correction that keeps the mean and variance of zero-mean, unit-variance (SELU) inputs.",
};

export function auditKerasDropout(model: KerasModel, opts: { dims?: Record<string, number> } = {}): DropoutAuditReport {
  const view = buildKerasDoctorView(model, opts.dims ? { dims: opts.dims } : {});
  const report = auditDropout(view, { removal: planKerasRemoveDropout(model), available: ['remove-dropout'] });
  const cls = new Map(view.layers.map((l) => [l.name, l.nativeOp]));
  for (const r of report.rows) r.native_op = cls.get(r.layer) ?? 'Dropout';
  report.findings = report.findings.map((f) => {
    const row = report.rows.find((r) => r.layer === f.layers[0]);
    if (!row) return f;
    const kind = row.native_op ?? 'Dropout';
    const p = row.rate === null ? 'a computed rate' : `p=${Math.round(row.rate * 1e4) / 1e4}`;
    if (f.code === 'dropout-in-inference-graph') {
      return {
        ...f,
        message:
          `${row.layer} (${kind}, ${p}) is the identity at inference (predict, or a call with training=False): it only acts in fit(). ${VARIANT[kind] ?? VARIANT.Dropout} ` +
          'Removing it changes no inference output and saves a layer, but also removes its regularization from any further training; to keep training with another amount of dropout, change its rate instead (set-dropout-rate, a training-time setting).',
        fixes: row.removable ? ['remove-dropout', 'set-dropout-rate'] : ['set-dropout-rate'],
      };
    }
    if (f.code === 'dropout-training-mode') {
      return {
        ...f,
        message: `${row.layer} (${kind}, ${p}) is called with training=True in the model config: it drops at random also in predict(), so outputs change from run to run. Intentional for Monte-Carlo dropout; otherwise call it without training=True. It is not removed by remove-dropout (that would change the outputs).`,
      };
    }
    if (f.code === 'dropout-before-bn' || f.code === 'dropout-high-rate-near-bn') {
      const extra = kind === 'AlphaDropout' ? ' AlphaDropout is designed to keep the variance of zero-mean, unit-variance (SELU) inputs, so the shift is small when its input is such.' : kind === 'GaussianDropout' ? ' Gaussian dropout raises the variance by the same factor 1/(1-p) for zero-mean activations.' : '';
      return { ...f, message: f.message + extra, fixes: ['set-dropout-rate', 'remove-dropout'] };
    }
    return f;
  });
  return report;
}

/** memory plan of a Keras-family model (NHWC); shapes are re-inferred at every size it looks at */
export function planKerasMemory(model: KerasModel, opts: MemoryPlanOptions = {}): MemoryPlanReport {
  const at = (inputShapes?: Record<string, Shape>) => buildKerasDoctorView(model, { ...(opts.dims ? { dims: opts.dims } : {}), ...(inputShapes ? { inputShapes } : {}), splitActivations: true });
  const report = planMemory(at(), (inputShapes) => at(inputShapes), { layout: 'NHWC', ...opts });
  report.notes.push(
    'Keras/TF.js: channels-last (NHWC) inputs; a layer with a fused activation (e.g. Conv2D(activation="relu")) counts as the layer and "<name>/<activation>", because Keras computes and keeps both tensors; every dropout layer is the identity (a view) at inference and keeps a mask in training',
  );
  // a size the model cannot run at (Flatten -> Dense after a size change): say so, the shapes are still counted
  const view = at(report.input_shapes);
  for (const l of view.layers) {
    if (l.nativeOp !== 'Dense') continue;
    const kernel = l.weights.find((w) => w.role === 'kernel');
    const p = view.layers.find((x) => x.outputs[0] === l.inputs[0]);
    const inShape = p ? p.outputShape : view.inputShapes?.[l.inputs[0] ?? ''] ?? null;
    const k = inShape?.[inShape.length - 1];
    if (kernel && kernel.shape.length === 2 && typeof k === 'number' && k !== kernel.shape[0]) {
      report.notes.push(`at this input size ${l.name} receives ${k} features but its kernel takes ${kernel.shape[0]}: the model does not run at this size (a Flatten before a Dense fixes the input size)`);
    }
  }
  return report;
}
