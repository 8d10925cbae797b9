/**
 * ONNX entry points of the BatchNorm / Dropout doctor and the memory planner: builds the DoctorGraphView
 * (shapes of every output, Dropout semantics) and runs the format-neutral analyses with the ONNX rewrite
 * plans, so every "cannot be folded / removed" finding carries the rewrite's own reason.
 */
import { auditBatchNorm, auditInputShapes } from '../../analysis/batchnorm-audit';
import type { DoctorGraphView, DoctorLayerView } from '../../analysis/doctor-view';
import { auditDropout } from '../../analysis/dropout-audit';
import { planMemory, type MemoryPlanOptions } from '../../analysis/memory-planner';
import type { BatchNormAuditReport, DropoutAuditReport, MemoryPlanReport } from '../../types';
import { planFold } from './fold-batchnorm';
import { buildGraphView } from './graph';
import { constantTensors, isDefaultDomain, type OnnxModel } from './model';
import { planBatchNormEvalMode } from './rewrite-bn-eval-mode';
import { planContext } from './rewrite-common';
import { dropoutInfo, planRemoveDropout } from './rewrite-dropout';
import { planFoldForward } from './rewrite-fold-bn-forward';
import { planBatchNormToAffine } from './rewrite-standalone-bn';
import { inferShapes, type Shape } from './shapes';

export interface DoctorViewOptions {
  /** values for symbolic input dims by name */
  dims?: Record<string, number>;
  /** input shapes replacing the declared ones; null dims stay unknown (no default of 1) */
  inputShapes?: Record<string, Shape>;
}

/** GraphView + every output's shape + Dropout semantics. Without inputShapes, symbolic dims default to 1 (as inspect does). */
export function buildDoctorView(model: OnnxModel, opts: DoctorViewOptions = {}): DoctorGraphView {
  const graph = model.graph;
  const dims = opts.dims ?? {};
  const view = buildGraphView(model, dims, opts.inputShapes ? { inputShapes: opts.inputShapes } : {}) as DoctorGraphView;
  const shapes = inferShapes(graph, constantTensors(graph), model.external, dims, opts.inputShapes);
  const ctx = planContext(model);
  const nodes = graph.node.filter((n) => !(n.opType === 'Constant' && isDefaultDomain(n.domain)));
  view.layers.forEach((l: DoctorLayerView, i) => {
    const node = nodes[i];
    l.outputShapes = node.output.map((o) => (o ? shapes.get(o) ?? null : null));
    if (l.op === 'BatchNorm') l.axis = 1;
    if (node.opType === 'Dropout' && isDefaultDomain(node.domain)) {
      const info = dropoutInfo(ctx, node);
      l.dropout = { rate: info.rate, mode: info.mode };
      if (info.legacyIsTest !== undefined) l.dropout.legacyIsTest = info.legacyIsTest;
      if (node.output[1]) l.dropout.maskOutput = 1;
    }
  });
  const inputs: Record<string, Shape | null> = {};
  for (const i of view.summary.inputs) inputs[i.name] = shapes.get(i.name) ?? null;
  view.inputShapes = inputs;
  return view;
}

export interface OnnxBatchNormAuditOptions {
  /** batch size to audit at (default: the model's static batch dimension, else 1) */
  batchSize?: number;
  /** values for symbolic dims (e.g. height and width); symbolic dims without a value stay unknown */
  dims?: Record<string, number>;
  /** full input shapes (batchSize still applies to dim 0) */
  inputShapes?: Record<string, number[]>;
}

/** the BatchNorm audit of an ONNX model at its own input size (or the given one) */
export function auditOnnxBatchNorm(model: OnnxModel, opts: OnnxBatchNormAuditOptions = {}): BatchNormAuditReport {
  const { shapes, batch, source } = auditInputShapes(buildGraphView(model).summary.inputs, opts);
  const view = buildDoctorView(model, { inputShapes: shapes });
  return auditBatchNorm(view, {
    batchSize: batch ?? 1,
    batchSource: batch === null ? 'assumed' : source,
    backward: planFold(model),
    forward: planFoldForward(model),
    affine: planBatchNormToAffine(model),
    evalMode: planBatchNormEvalMode(model),
  });
}

export function auditOnnxDropout(model: OnnxModel): DropoutAuditReport {
  return auditDropout(buildDoctorView(model), { removal: planRemoveDropout(model) });
}

/** memory plan of an ONNX model; shapes are re-inferred at every size it looks at */
export function planOnnxMemory(model: OnnxModel, opts: MemoryPlanOptions = {}): MemoryPlanReport {
  const base = buildDoctorView(model, opts.dims ? { dims: opts.dims } : {});
  return planMemory(base, (inputShapes) => buildDoctorView(model, { inputShapes }), opts);
}
