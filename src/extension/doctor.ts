/**
 * The BatchNorm / Dropout doctor and the memory planner for the editor: which fixes a model has, the audit at
 * a batch size, one BatchNorm's per-channel parameters, the memory plan. Thin wrappers over the core; only
 * summaries and small per-channel vectors leave this module.
 */
import * as core from '../core/api';
import type { DoctorRewrite, Model } from '../core/api';
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

/** gamma, beta, running statistics and fold scale per channel of ONE BatchNorm layer (from the core) */
export function batchNormChannels(model: Model, layer: string, dims: Record<string, number>): BatchNormChannels {
  return core.batchNormChannels(model, layer, dims);
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
