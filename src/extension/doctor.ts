/**
 * The BatchNorm / Dropout doctor and the memory planner for the editor: which fixes a model has, the audit at
 * a batch size, one BatchNorm's per-channel parameters, the memory plan. Thin wrappers over the core; only
 * summaries and small per-channel vectors leave this module.
 */
import * as core from '../core/api';
import type { DoctorRewrite, Model } from '../core/api';
import type { FormatHandler } from '../core/formats/handler';
import { kerasHandler } from '../core/formats/keras/handler';
import { onnxHandler } from '../core/formats/onnx/handler';
import { tfjsGraphHandler } from '../core/formats/tfjs-graph/handler';
import type { MemoryPlanReport } from '../core/types';
import { fixTitle } from '../protocol/fixes';
import type { AuditView, BatchNormChannels, PlannerSettings } from '../protocol/messages';

/** The doctor rewrites of the model's format family (what `core.applyFix` accepts for it). */
export function formatRewrites(model: Model): readonly DoctorRewrite[] {
  switch (model.format) {
    case 'onnx':
      return core.ONNX_REWRITES;
    case 'keras':
    case 'keras-h5':
    case 'tfjs-layers':
      return core.KERAS_REWRITES;
    default:
      return [];
  }
}

/** Every fix id this editor can preview and apply on the model. */
export function availableFixes(model: Model): string[] {
  return ['fold-batchnorm', ...(core.canFreezeBatchNorm(model) ? ['freeze-batchnorm'] : []), ...formatRewrites(model)];
}

/**
 * A fix id from a finding, a command argument or the webview, checked against the core's current list and
 * the model's format: a doctor rewrite id, or a ModelError that says what is possible instead.
 */
export function doctorRewriteFor(model: Model, id: string): DoctorRewrite {
  const known = core.DOCTOR_REWRITES as readonly string[];
  if (!known.includes(id)) {
    const all = [...new Set(['fold-batchnorm', 'freeze-batchnorm', ...known])].join(', ');
    throw new core.ModelError(`Model Surgeon does not know the fix '${id}' (this version has: ${all}).`);
  }
  const rewrite = id as DoctorRewrite;
  if (!formatRewrites(model).includes(rewrite)) {
    const have = availableFixes(model).join(', ');
    throw new core.ModelError(`${fixTitle(id)} (${id}) is not available for ${model.format} models; for this model: ${have}.`);
  }
  return rewrite;
}

/** The audits at a batch size (null: the model's own batch size, else 1). */
export function auditAt(model: Model, batchSize: number | null, dims: Record<string, number>): AuditView {
  const r = core.audit(model, { ...(batchSize !== null ? { batchSize } : {}), dims });
  return { batchnorm: r.batchnorm, dropout: r.dropout, findings: r.findings };
}

const HANDLERS = [onnxHandler, kerasHandler, tfjsGraphHandler] as FormatHandler[];

/** More channels than this is not a BatchNorm we chart (and not a "small vector" to send to the webview). */
const MAX_BN_CHANNELS = 1 << 16;

/**
 * gamma, beta, running mean / variance and the fold scale |gamma| / sqrt(var + eps) per channel of ONE
 * BatchNorm layer, read through the format's graph view (the core's public API has no such call yet).
 */
export function batchNormChannels(model: Model, layer: string, dims: Record<string, number>): BatchNormChannels {
  const handler = HANDLERS.find((h) => h.owns(model));
  if (!handler) throw new core.ModelError(`${model.format} models are not supported here`);
  const view = handler.graphView(model, dims);
  const l = view.layers.find((x) => x.name === layer);
  if (!l) throw new core.ModelError(`Layer "${layer}" is not in this model.`);
  if (l.op !== 'BatchNorm') throw new core.ModelError(`Layer "${layer}" is a ${l.op}, not a BatchNorm.`);
  const read = (role: string): number[] | null => {
    const w = l.weights.find((x) => x.role === role);
    if (!w) return null;
    const n = w.shape.reduce((p, v) => p * v, 1);
    if (n > MAX_BN_CHANNELS) throw new core.ModelError(`${layer}: ${n} values in its ${role} (more than ${MAX_BN_CHANNELS}); not charted.`);
    return Array.from(w.read());
  };
  const variance = read('variance');
  if (!variance) throw new core.ModelError(`${layer} has no running variance (its statistics are computed at run time).`);
  const channels = variance.length;
  const gamma = read('gamma') ?? new Array<number>(channels).fill(1);
  const epsilon = l.epsilon ?? 1e-5;
  const foldScale = variance.map((v, c) => Math.abs(gamma[c] ?? 1) / Math.sqrt(v + epsilon));
  return { layer, channels, epsilon, gamma, beta: read('beta'), mean: read('mean'), variance, foldScale };
}

/** The memory plan for the planner panel's settings. */
export function memoryPlan(model: Model, s: PlannerSettings, dims: Record<string, number>): MemoryPlanReport {
  return core.planMemory(model, {
    dims,
    optimizer: s.optimizer,
    dtypeBytes: s.dtypeBytes,
    crops: s.crops,
    ...(s.height !== undefined ? { height: s.height } : {}),
    ...(s.width !== undefined ? { width: s.width } : {}),
    ...(s.batch !== undefined ? { batch: s.batch } : {}),
    ...(s.budgetBytes !== undefined ? { budget: s.budgetBytes } : {}),
  });
}
