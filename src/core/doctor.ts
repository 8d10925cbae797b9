/**
 * The BatchNorm / Dropout doctor and the memory planner behind the public API: audits for every format
 * (ONNX with every fold/rewrite plan; Keras/TF.js with the plans their handler has), the memory planner,
 * and the one-click fixes findings point at (`fix` ids), each verified like any other rewrite.
 */
import type { Model } from './api';
import { auditBatchNorm } from './analysis/batchnorm-audit';
import type { DoctorGraphView } from './analysis/doctor-view';
import { auditDropout } from './analysis/dropout-audit';
import type { MemoryPlanOptions } from './analysis/memory-planner';
import { ModelError } from './errors';
import type { FormatHandler } from './formats/handler';
import { auditOnnxBatchNorm, auditOnnxDropout, planOnnxMemory } from './formats/onnx/doctor';
import { OnnxModel } from './formats/onnx/model';
import { applyBatchNormEvalMode, planBatchNormEvalMode } from './formats/onnx/rewrite-bn-eval-mode';
import { applyRemoveDropout, planRemoveDropout } from './formats/onnx/rewrite-dropout';
import { applyFoldForward, planFoldForward } from './formats/onnx/rewrite-fold-bn-forward';
import { applyBatchNormToAffine, planBatchNormToAffine } from './formats/onnx/rewrite-standalone-bn';
import type { BatchNormAuditReport, DropoutAuditReport, Finding, FixId, FoldPlan, MemoryPlanReport, RewritePlan } from './types';

export interface AuditOptions {
  /** batch size to audit at (default: the model's static batch dimension, else 1) */
  batchSize?: number;
  /** values for symbolic input dims */
  dims?: Record<string, number>;
  /** full input shapes (batchSize still applies to dim 0) */
  inputShapes?: Record<string, number[]>;
}

export interface AuditReport {
  batchnorm: BatchNormAuditReport;
  dropout: DropoutAuditReport;
  /** every finding of both audits, errors first */
  findings: Finding[];
}

const SEVERITY_ORDER = { error: 0, warning: 1, info: 2 } as const;

export function auditWith(handler: FormatHandler, model: Model, opts: AuditOptions = {}): AuditReport {
  let batchnorm: BatchNormAuditReport;
  let dropout: DropoutAuditReport;
  if (model instanceof OnnxModel) {
    batchnorm = auditOnnxBatchNorm(model, opts);
    dropout = auditOnnxDropout(model);
  } else {
    // Keras / TF.js: the handler's view (channels-last BatchNorm axis) and its fold plan; no ONNX-only fixes
    const view = handler.graphView(model, opts.dims) as DoctorGraphView;
    const fixes: FixId[] = handler.freeze ? ['fold-batchnorm', 'freeze-batchnorm'] : ['fold-batchnorm'];
    batchnorm = auditBatchNorm(view, {
      batchSize: opts.batchSize ?? 1,
      batchSource: opts.batchSize !== undefined ? 'option' : 'assumed',
      backward: handler.planFold(model),
      available: fixes,
    });
    dropout = auditDropout(view, { available: [] });
  }
  const findings = [...batchnorm.findings, ...dropout.findings].sort((a, b) => SEVERITY_ORDER[a.severity] - SEVERITY_ORDER[b.severity]);
  return { batchnorm, dropout, findings };
}

/**
 * inspect's findings with the audit's: where both report the same code the audit's finding wins (it carries
 * per-layer details and the fix).
 */
export function mergeFindings(inspectFindings: Finding[], audit: Finding[]): Finding[] {
  const codes = new Set(audit.map((f) => f.code));
  return [...inspectFindings.filter((f) => !codes.has(f.code)), ...audit].sort((a, b) => SEVERITY_ORDER[a.severity] - SEVERITY_ORDER[b.severity]);
}

export function planMemoryFor(model: Model, opts: MemoryPlanOptions = {}): MemoryPlanReport {
  if (!(model instanceof OnnxModel)) throw new ModelError(`the memory planner supports ONNX models in this version (this is a ${model.format} model)`);
  return planOnnxMemory(model, opts);
}

/** the rewrites a finding's `fix` can name, besides fold-batchnorm / freeze-batchnorm (they have their own API) */
export type DoctorRewrite = 'fold-batchnorm-forward' | 'batchnorm-to-affine' | 'batchnorm-eval-mode' | 'remove-dropout';
export const DOCTOR_REWRITES: readonly DoctorRewrite[] = ['fold-batchnorm-forward', 'batchnorm-to-affine', 'batchnorm-eval-mode', 'remove-dropout'];

export interface DoctorRewriteResult {
  model: Model;
  plan: FoldPlan | RewritePlan;
  /** how many layers the rewrite changed */
  applied: number;
  /** false for rewrites that change the model's function on purpose (batchnorm-eval-mode) */
  preserves_outputs: boolean;
}

function onnxOnly(model: Model, id: DoctorRewrite): OnnxModel {
  if (model instanceof OnnxModel) return model;
  throw new ModelError(`${id} is available for ONNX models in this version (this is a ${model.format} model)`);
}

export function planDoctorRewrite(model: Model, id: DoctorRewrite): FoldPlan | RewritePlan {
  const m = onnxOnly(model, id);
  switch (id) {
    case 'fold-batchnorm-forward':
      return planFoldForward(m);
    case 'batchnorm-to-affine':
      return planBatchNormToAffine(m);
    case 'batchnorm-eval-mode':
      return planBatchNormEvalMode(m);
    case 'remove-dropout':
      return planRemoveDropout(m);
  }
}

export function applyDoctorRewrite(model: Model, id: DoctorRewrite): DoctorRewriteResult {
  const m = onnxOnly(model, id);
  const r =
    id === 'fold-batchnorm-forward'
      ? applyFoldForward(m)
      : id === 'batchnorm-to-affine'
        ? applyBatchNormToAffine(m)
        : id === 'batchnorm-eval-mode'
          ? applyBatchNormEvalMode(m)
          : applyRemoveDropout(m);
  return { model: r.model, plan: r.plan, applied: r.plan.candidates.length, preserves_outputs: id !== 'batchnorm-eval-mode' };
}
