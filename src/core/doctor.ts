/**
 * The BatchNorm / Dropout doctor and the memory planner behind the public API: audits for every format
 * (ONNX and the Keras family with their own views and rewrite plans; TF.js graph models with the generic
 * view), the memory planner (ONNX: NCHW, Keras family: NHWC), and the one-click fixes findings point at
 * (`fix` ids), each verified like any other rewrite (or, for the ones that change the function on purpose,
 * with the measured deviation reported).
 */
import type { Model } from './api';
import { auditBatchNorm } from './analysis/batchnorm-audit';
import type { DoctorGraphView } from './analysis/doctor-view';
import { auditDropout } from './analysis/dropout-audit';
import type { MemoryPlanOptions } from './analysis/memory-planner';
import { ModelError } from './errors';
import type { FormatHandler } from './formats/handler';
import { auditKerasBatchNorm, auditKerasDropout, planKerasMemory } from './formats/keras/doctor';
import { KerasModel } from './formats/keras/model';
import { applyKerasDropoutRate, applyKerasRemoveDropout, planKerasDropoutRate, planKerasRemoveDropout } from './formats/keras/rewrite-dropout';
import { applyKerasBatchNormToAffine, applyKerasFoldForward, planKerasBatchNormToAffine, planKerasFoldForward } from './formats/keras/rewrite-fold-bn-forward';
import { applyKerasReplaceBatchNorm, planKerasReplaceBatchNorm } from './formats/keras/rewrite-groupnorm';
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
  } else if (model instanceof KerasModel) {
    const fixes: FixId[] = ['fold-batchnorm', 'fold-batchnorm-forward', 'batchnorm-to-affine', ...(handler.freeze ? (['freeze-batchnorm'] as FixId[]) : []), 'replace-batchnorm-groupnorm'];
    batchnorm = auditKerasBatchNorm(model, opts, fixes);
    dropout = auditKerasDropout(model, opts.dims ? { dims: opts.dims } : {});
  } else {
    // TF.js graph models: the handler's view (channels-last BatchNorm axis) and its fold plan; no ONNX-only fixes
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
  if (model instanceof OnnxModel) return planOnnxMemory(model, opts);
  if (model instanceof KerasModel) return planKerasMemory(model, opts);
  throw new ModelError(`the memory planner supports ONNX, TF.js layers and Keras models in this version (this is a ${model.format} model)`);
}

/** the rewrites a finding's `fix` can name, besides fold-batchnorm / freeze-batchnorm (they have their own API) */
export type DoctorRewrite = 'fold-batchnorm-forward' | 'batchnorm-to-affine' | 'batchnorm-eval-mode' | 'remove-dropout' | 'replace-batchnorm-groupnorm' | 'set-dropout-rate';
export const DOCTOR_REWRITES: readonly DoctorRewrite[] = ['fold-batchnorm-forward', 'batchnorm-to-affine', 'batchnorm-eval-mode', 'remove-dropout', 'replace-batchnorm-groupnorm', 'set-dropout-rate'];
/** the rewrites each format family has */
export const ONNX_REWRITES: readonly DoctorRewrite[] = ['fold-batchnorm-forward', 'batchnorm-to-affine', 'batchnorm-eval-mode', 'remove-dropout'];
export const KERAS_REWRITES: readonly DoctorRewrite[] = ['fold-batchnorm-forward', 'batchnorm-to-affine', 'remove-dropout', 'replace-batchnorm-groupnorm', 'set-dropout-rate'];

/** settings of the rewrites that take any (Keras / TF.js layers models) */
export interface FixOptions {
  /** set-dropout-rate: the new rate, in [0, 1) (required) */
  rate?: number;
  /** Keras rewrites: only these layers (doctor names; nested models as outer/inner); default all */
  layers?: string[];
  /** replace-batchnorm-groupnorm: GroupNormalization groups (default 32; the largest divisor of the channel count not above it) */
  groups?: number;
}

export interface DoctorRewriteResult {
  model: Model;
  plan: FoldPlan | RewritePlan;
  /** how many layers the rewrite changed */
  applied: number;
  /** false for rewrites that change the model's function on purpose (batchnorm-eval-mode, replace-batchnorm-groupnorm) */
  preserves_outputs: boolean;
  /** facts worth telling (e.g. that the result needs fine-tuning); may be empty */
  notes: string[];
  /** why the result cannot be run with the format's engine (then there is no measured deviation); null when it can */
  unverifiable: string | null;
}

const NO_GROUPNORM_ENGINE =
  'TensorFlow.js (tfjs-layers 4.22) has no GroupNormalization layer, so the rewritten model cannot be run here and its deviation from the original is NOT measured (Keras 3 and tf.keras >= 2.11 load and run it)';

function onnxOnly(model: Model, id: DoctorRewrite): OnnxModel {
  if (model instanceof OnnxModel) {
    if (!ONNX_REWRITES.includes(id)) throw new ModelError(`${id} is available for Keras and TF.js layers models (this is an ONNX model)`);
    return model;
  }
  throw new ModelError(`${id} is available for ONNX models in this version (this is a ${model.format} model)`);
}

function kerasRateOptions(opts: FixOptions): { rate: number; layers?: string[] } {
  if (opts.rate === undefined) throw new ModelError('set-dropout-rate needs the new rate (e.g. --rate 0.2)');
  return { rate: opts.rate, ...(opts.layers ? { layers: opts.layers } : {}) };
}

export function planDoctorRewrite(model: Model, id: DoctorRewrite, opts: FixOptions = {}): FoldPlan | RewritePlan {
  if (model instanceof KerasModel && KERAS_REWRITES.includes(id)) {
    const filter = opts.layers ? { layers: opts.layers } : {};
    if (id === 'fold-batchnorm-forward') return planKerasFoldForward(model);
    if (id === 'batchnorm-to-affine') return planKerasBatchNormToAffine(model);
    if (id === 'remove-dropout') return planKerasRemoveDropout(model, filter);
    if (id === 'set-dropout-rate') return planKerasDropoutRate(model, kerasRateOptions(opts));
    return planKerasReplaceBatchNorm(model, { ...filter, ...(opts.groups !== undefined ? { groups: opts.groups } : {}) });
  }
  const m = onnxOnly(model, id);
  switch (id) {
    case 'fold-batchnorm-forward':
      return planFoldForward(m);
    case 'batchnorm-to-affine':
      return planBatchNormToAffine(m);
    case 'batchnorm-eval-mode':
      return planBatchNormEvalMode(m);
    default:
      return planRemoveDropout(m);
  }
}

export function applyDoctorRewrite(model: Model, id: DoctorRewrite, opts: FixOptions = {}): DoctorRewriteResult {
  if (model instanceof KerasModel && KERAS_REWRITES.includes(id)) {
    const filter = opts.layers ? { layers: opts.layers } : {};
    if (id === 'fold-batchnorm-forward' || id === 'batchnorm-to-affine') {
      const r = id === 'fold-batchnorm-forward' ? applyKerasFoldForward(model) : applyKerasBatchNormToAffine(model);
      return { model: r.model, plan: r.plan, applied: r.plan.candidates.length, preserves_outputs: true, notes: [], unverifiable: null };
    }
    if (id === 'remove-dropout') {
      const r = applyKerasRemoveDropout(model, filter);
      return { model: r.model, plan: r.plan, applied: r.plan.candidates.length, preserves_outputs: true, notes: [], unverifiable: null };
    }
    if (id === 'set-dropout-rate') {
      const r = applyKerasDropoutRate(model, kerasRateOptions(opts));
      const notes = r.plan.candidates.length ? ['the dropout rate is a training-time setting: inference outputs are unchanged (the verification shows it), training with the written model uses the new rate'] : [];
      return { model: r.model, plan: r.plan, applied: r.plan.candidates.length, preserves_outputs: true, notes, unverifiable: null };
    }
    const r = applyKerasReplaceBatchNorm(model, { ...filter, ...(opts.groups !== undefined ? { groups: opts.groups } : {}) });
    const notes: string[] = [];
    const unverifiable = r.kinds.has('GroupNormalization') ? NO_GROUPNORM_ENGINE : null;
    if (r.plan.candidates.length) {
      notes.push(
        'replacing BatchNorm changes the function: gamma and beta are kept, but each sample is now normalized with its own statistics instead of the moving mean/variance the network was trained with. Fine-tune the model (a few epochs at a low learning rate) before using it' +
          (unverifiable ? '.' : '; the measured deviation shows how far it starts from the original.'),
      );
    }
    if (unverifiable) notes.push(unverifiable);
    return { model: r.model, plan: r.plan, applied: r.plan.candidates.length, preserves_outputs: false, notes, unverifiable };
  }
  const m = onnxOnly(model, id);
  const r =
    id === 'fold-batchnorm-forward'
      ? applyFoldForward(m)
      : id === 'batchnorm-to-affine'
        ? applyBatchNormToAffine(m)
        : id === 'batchnorm-eval-mode'
          ? applyBatchNormEvalMode(m)
          : applyRemoveDropout(m);
  return { model: r.model, plan: r.plan, applied: r.plan.candidates.length, preserves_outputs: id !== 'batchnorm-eval-mode', notes: [], unverifiable: null };
}
