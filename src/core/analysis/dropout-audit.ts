/**
 * Dropout audit (format-neutral, on a DoctorGraphView).
 *
 * Dropout as every current framework implements it is INVERTED dropout: during training it zeroes a fraction
 * p of the activations and scales the kept ones by 1/(1-p), so their expected value is unchanged and at
 * inference it is the identity -- nothing is rescaled at inference (the original 2014 formulation scaled the
 * weights by 1-p at test time instead). A Dropout node in an inference graph is therefore a no-op.
 *
 * The scaling keeps the MEAN but not the VARIANCE: for an activation with mean c and variance v, inverted
 * dropout with keep probability q = 1-p gives variance (v + c^2)/q - c^2 in training (v/q = v/(1-p) for c = 0)
 * but v at inference. A BatchNorm downstream stores the training-time variance as its running variance and
 * applies it at inference, where the variance is smaller: the "variance shift" of Li, Chen, Hu, Yang,
 * "Understanding the Disharmony between Dropout and Batch Normalization by Variance Shift" (CVPR 2019).
 * It passes through convolutions and linear layers, grows with p, and disappears when Dropout comes after
 * the last BatchNorm.
 */
import type { DropoutAuditReport, DropoutAuditRow, Finding, FixId, RewritePlan } from '../types';
import { wiring, type DoctorGraphView, type DoctorLayerView } from './doctor-view';

export const HIGH_DROPOUT_RATE = 0.5;

export interface DropoutAuditOptions {
  /** the format's Dropout removal plan; without it `removable` is false and no fix is offered */
  removal?: RewritePlan;
  /** rates >= this next to a BatchNorm are reported as high (default 0.5) */
  highRate?: number;
  available?: FixId[];
}

export function auditDropout(view: DoctorGraphView, opts: DropoutAuditOptions = {}): DropoutAuditReport {
  const { readers, outputs } = wiring(view);
  const high = opts.highRate ?? HIGH_DROPOUT_RATE;
  const available = new Set<FixId>(opts.available ?? ['remove-dropout']);
  const removable = new Set((opts.removal?.candidates ?? []).map((c) => c.layer));
  const blockers = new Map((opts.removal?.skipped ?? []).map((s) => [s.layer, s.reason]));
  const rows: DropoutAuditRow[] = [];
  const findings: Finding[] = [];
  for (const l of view.layers) {
    if (l.op !== 'Dropout') continue;
    const info = l.dropout ?? { rate: null, mode: 'inference' as const };
    const maskName = info.maskOutput !== undefined ? l.outputs[info.maskOutput] : undefined;
    const maskUsed = !!maskName && ((readers.get(maskName)?.length ?? 0) > 0 || outputs.has(maskName));
    const { bns, hops } = downstreamBatchNorms(l, readers);
    const row: DropoutAuditRow = {
      layer: l.name,
      rate: info.rate,
      mode: info.mode,
      legacy_is_test: info.legacyIsTest ?? null,
      mask_used: maskUsed,
      feeds_batchnorm: bns,
      hops_to_batchnorm: bns.length ? hops : null,
      removable: removable.has(l.name),
      blocker: removable.has(l.name) ? null : blockers.get(l.name) ?? null,
    };
    rows.push(row);
    findings.push(...findingsFor(row, high, available));
  }
  return { rows, findings };
}

/** the first BatchNorm on every path downstream of the Dropout, and the fewest layers in between */
function downstreamBatchNorms(d: DoctorLayerView, readers: Map<string, DoctorLayerView[]>): { bns: string[]; hops: number } {
  const found: string[] = [];
  let best = Infinity;
  const seen = new Set<DoctorLayerView>([d]);
  let frontier: DoctorLayerView[] = [d];
  for (let depth = 0; frontier.length && depth < 10000; depth++) {
    const next: DoctorLayerView[] = [];
    for (const l of frontier) {
      // only the data output carries the shift (not a mask, not BN running statistics)
      for (const r of readers.get(l.outputs[0] ?? '') ?? []) {
        if (seen.has(r)) continue;
        seen.add(r);
        if (r.op === 'BatchNorm') {
          found.push(r.name);
          best = Math.min(best, depth);
        } else next.push(r);
      }
    }
    frontier = next;
  }
  return { bns: found, hops: best === Infinity ? 0 : best };
}

function findingsFor(row: DropoutAuditRow, high: number, available: Set<FixId>): Finding[] {
  const out: Finding[] = [];
  const layers = [row.layer];
  const p = row.rate;
  const pText = p === null ? 'a computed rate' : `p=${round(p)}`;
  const fix = (): Pick<Finding, 'fix' | 'fixes'> => (row.removable && available.has('remove-dropout') ? { fix: 'remove-dropout', fixes: ['remove-dropout'] } : {});
  const inverted =
    'Dropout here is inverted dropout: the kept activations are scaled by 1/(1-p) during training, so at inference it is the identity and nothing needs rescaling.';
  if (row.legacy_is_test !== null) {
    const training = row.legacy_is_test === 0;
    out.push({
      severity: training ? 'warning' : 'info',
      code: training ? 'dropout-legacy-training' : 'dropout-legacy-is-test',
      message: training
        ? `${row.layer} is an old-style (opset < 7) Dropout without is_test=1 (${pText}): by the letter of that spec it runs in training mode and drops activations at random; runtimes treat it as the identity if they run it at all (onnxruntime has no kernel for it and runs such a model only because its default graph optimizations delete Dropout nodes), so results depend on the runtime and its settings. ${inverted} Removing it makes the inference behaviour explicit.`
        : `${row.layer} is an old-style (opset < 7) Dropout with is_test=1 (${pText}): the identity at inference, but onnxruntime has no kernel for it (it runs only when its graph optimizations delete the node). ${inverted} It can be removed.`,
      layers,
      ...fix(),
      details: { rate: p ?? -1, is_test: row.legacy_is_test },
    });
  } else if (row.mode === 'training') {
    out.push({
      severity: 'warning',
      code: 'dropout-training-mode',
      message: `${row.layer} runs in training mode at inference (training_mode is the constant true, ${pText}): every run drops a random ${p === null ? 'fraction' : `${Math.round(p * 100)}%`} of its inputs and scales the rest by 1/(1-p), so outputs change from run to run. Intentional only for Monte-Carlo dropout; otherwise re-export with model.eval().`,
      layers,
      details: { rate: p ?? -1 },
    });
  } else if (row.mode === 'dynamic') {
    out.push({
      severity: 'info',
      code: 'dropout-training-mode-input',
      message: `${row.layer}'s training_mode comes from a graph input or computed value: the caller decides whether it drops (${pText}). With training_mode false it is the identity.`,
      layers,
      details: { rate: p ?? -1 },
    });
  }
  if (row.mask_used) {
    out.push({
      severity: 'warning',
      code: 'dropout-mask-used',
      message: `${row.layer}'s mask output is used: at inference the mask is all true (nothing is dropped), so whatever reads it gets a constant. Old exporters emitted such masks; the Dropout cannot be removed while something reads it.`,
      layers,
      details: { rate: p ?? -1 },
    });
  }
  if (row.mode === 'inference' && row.legacy_is_test === null && !row.mask_used) {
    out.push({
      severity: 'info',
      code: 'dropout-in-inference-graph',
      message: `${row.layer} (${pText}) is left in an inference graph, where it does nothing. ${inverted} Removing it changes no output and saves a node (and, in some runtimes, a copy).`,
      layers,
      ...fix(),
      details: { rate: p ?? -1 },
    });
  }
  if (row.feeds_batchnorm.length) {
    const isHigh = p !== null && p >= high;
    const ratio = p !== null && p < 1 ? 1 / (1 - p) : null;
    const where = row.hops_to_batchnorm ? `through ${row.hops_to_batchnorm} layer(s) (the shift passes through convolutions, linear layers and activations)` : 'directly';
    out.push({
      severity: 'warning',
      code: isHigh ? 'dropout-high-rate-near-bn' : 'dropout-before-bn',
      message:
        `${row.layer} (${pText}) feeds ${row.feeds_batchnorm.join(', ')} ${where}. In training, dropout keeps the mean but raises the variance of what the BatchNorm sees (${ratio ? `x${fmt(ratio)}` : 'by 1/(1-p)'} for zero-mean activations); the BatchNorm stores that as its running variance and applies it at inference, where dropout is off and the variance is smaller -- the "variance shift" (Li et al., CVPR 2019), which costs accuracy` +
        (isHigh ? `, and grows with the rate (p >= ${high} here)` : '') +
        '. Remedies (retraining): put Dropout after the last BatchNorm, lower the rate, or recompute the BatchNorm statistics with dropout off.',
      layers: [row.layer, ...row.feeds_batchnorm],
      details: { rate: p ?? -1, variance_ratio: ratio ?? -1, batchnorm: row.feeds_batchnorm.join(','), hops: row.hops_to_batchnorm ?? 0 },
    });
  }
  return out;
}

function round(v: number): number {
  return Math.round(v * 1e4) / 1e4;
}

function fmt(v: number): string {
  return v.toPrecision(3);
}
