/**
 * Put BatchNormalization nodes exported in training mode into inference mode: drop training_mode=1 and the
 * running-mean/variance outputs (opset 9-13 signal training mode by those extra outputs alone).
 * This CHANGES the outputs by design: a training-mode BN normalizes with the statistics of each batch, the
 * rewritten one with the running statistics stored in the file -- what PyTorch's model.eval() computes.
 * So it is checked against eval-mode outputs, not against the original model. Refused when something
 * reads the running-statistic outputs.
 */
import type { RewriteCandidate, RewritePlan, SkippedCandidate } from '../../types';
import { GraphEditor } from './fold-batchnorm';
import { attrInt, isDefaultDomain, type OnnxModel } from './model';
import type { NodeProto } from './proto';
import { finishModel, planContext } from './rewrite-common';

export function isTrainingBatchNorm(node: NodeProto): boolean {
  return attrInt(node, 'training_mode', 0) === 1 || node.output.slice(1).some((o) => !!o);
}

function analyse(model: OnnxModel): { plan: RewritePlan; nodes: NodeProto[] } {
  const ctx = planContext(model);
  const candidates: RewriteCandidate[] = [];
  const skipped: SkippedCandidate[] = [];
  const nodes: NodeProto[] = [];
  for (const bn of model.graph.node) {
    if (bn.opType !== 'BatchNormalization' || !isDefaultDomain(bn.domain) || !isTrainingBatchNorm(bn)) continue;
    const layer = ctx.name(bn);
    const used = bn.output.slice(1).filter((o) => o && (ctx.readersOf(o).length || ctx.graphOutputs.has(o)));
    if (used.length) {
      const who = used.flatMap((o) => (ctx.graphOutputs.has(o) ? [`graph output ${o}`] : ctx.readersOf(o).map((n) => ctx.name(n))));
      skipped.push({ layer, reason: `its running-statistic outputs are used (${who.join(', ')}), so it must stay a training-mode node` });
      continue;
    }
    candidates.push({
      layer,
      action: 'inference mode: normalizes with the running mean/variance stored in the file (as model.eval() does) instead of the statistics of each batch',
    });
    nodes.push(bn);
  }
  return { plan: { rewrite: 'batchnorm-eval-mode', candidates, skipped }, nodes };
}

export function planBatchNormEvalMode(model: OnnxModel): RewritePlan {
  return analyse(model).plan;
}

export function applyBatchNormEvalMode(model: OnnxModel): { model: OnnxModel; plan: RewritePlan } {
  const { plan, nodes } = analyse(model);
  if (!nodes.length) return { model, plan };
  const ed = new GraphEditor(model, model.graph);
  const gone = new Set<string>();
  for (const bn of nodes) {
    const cur = ed.current(bn);
    for (const o of cur.output.slice(1)) if (o) gone.add(o);
    ed.replaceNode(cur, { ...cur, output: [cur.output[0]], attribute: cur.attribute.filter((a) => a.name !== 'training_mode') });
  }
  return { model: model.derive(finishModel(model, ed, [], gone)), plan };
}
