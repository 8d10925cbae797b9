/**
 * Remove Dropout from an ONNX inference model. ONNX Dropout is inverted dropout (kept units are scaled by
 * 1/(1-p) during training), so at inference it is the identity and removing it changes no output.
 *
 * Refused, with the reason: a mask output that something reads (or that is a graph output), a training_mode
 * input that is the constant true (the model drops at random at inference, e.g. Monte-Carlo dropout) or that is
 * computed / a graph input (the caller decides). Opset < 7 Dropout with is_test=0 is removed with a note: the
 * spec calls it training behaviour, but runtimes run it as the identity at inference.
 * Graph output names are kept: when the Dropout's output is a graph output, the layer before it produces
 * that name instead, or (its input is a graph input/output) an Identity takes the Dropout's place.
 */
import type { RewriteCandidate, RewritePlan, SkippedCandidate } from '../../types';
import { GraphEditor } from './fold-batchnorm';
import { attrFloat, attrInt, isDefaultDomain, type OnnxModel } from './model';
import type { NodeProto } from './proto';
import { finishModel, planContext, type PlanContext } from './rewrite-common';
import { readTensorAsFloat32, readTensorTyped } from './tensor';

/** what an ONNX Dropout node does, from its opset, attributes and inputs */
export interface OnnxDropoutInfo {
  rate: number | null;
  mode: 'inference' | 'training' | 'dynamic';
  /** opset < 7 only */
  legacyIsTest?: number;
  /** the value deciding training_mode when it is not a constant */
  modeSource?: string;
}

export function dropoutInfo(ctx: PlanContext, node: NodeProto): OnnxDropoutInfo {
  if (ctx.opset >= 12) {
    let rate: number | null = 0.5;
    if (node.input[1]) {
      const c = ctx.constants.get(node.input[1]);
      rate = null;
      if (c) {
        try {
          const v = readTensorAsFloat32(c.tensor, ctx.model.external);
          if (v.length === 1) rate = v[0];
        } catch {
          rate = null;
        }
      }
    }
    const t = node.input[2];
    if (!t) return { rate, mode: 'inference' };
    const c = ctx.constants.get(t);
    if (!c) return { rate, mode: 'dynamic', modeSource: t };
    try {
      const v = readTensorTyped(c.tensor, ctx.model.external) as ArrayLike<number | bigint>;
      return { rate, mode: v.length === 1 && Number(v[0]) !== 0 ? 'training' : 'inference' };
    } catch {
      return { rate, mode: 'dynamic', modeSource: t };
    }
  }
  const rate = Math.fround(attrFloat(node, 'ratio', 0.5));
  if (ctx.opset < 7) {
    const isTest = attrInt(node, 'is_test', 0);
    return { rate, mode: isTest ? 'inference' : 'training', legacyIsTest: isTest };
  }
  // opset 7..11: no training flag in the graph; the runtime runs inference semantics
  return { rate, mode: 'inference' };
}

interface Analysis {
  plan: RewritePlan;
  nodes: NodeProto[];
}

function analyse(model: OnnxModel): Analysis {
  const ctx = planContext(model);
  const candidates: RewriteCandidate[] = [];
  const skipped: SkippedCandidate[] = [];
  const nodes: NodeProto[] = [];
  for (const node of model.graph.node) {
    if (node.opType !== 'Dropout' || !isDefaultDomain(node.domain)) continue;
    const layer = ctx.name(node);
    const info = dropoutInfo(ctx, node);
    const mask = node.output[1];
    if (mask && (ctx.readersOf(mask).length || ctx.graphOutputs.has(mask))) {
      const users = ctx.readersOf(mask).map((n) => ctx.name(n));
      skipped.push({
        layer,
        reason: `its mask output is ${ctx.graphOutputs.has(mask) ? 'a graph output' : `read by ${users.join(', ')}`}: at inference the mask is all true, but removing the node would leave that reader without an input`,
      });
      continue;
    }
    if (info.mode === 'training' && info.legacyIsTest === undefined) {
      skipped.push({
        layer,
        reason: 'its training_mode input is the constant true: it drops activations at random at inference (Monte-Carlo dropout, or an export from train()); removing it would change what the model computes. Re-export in eval mode if that was not intended',
      });
      continue;
    }
    if (info.mode === 'dynamic') {
      skipped.push({ layer, reason: `its training_mode input '${info.modeSource}' is decided at run time (a graph input or computed value), so the caller may ask for dropout` });
      continue;
    }
    if (!node.input[0]) {
      skipped.push({ layer, reason: 'it has no data input' });
      continue;
    }
    const rate = info.rate === null ? 'a computed rate' : `p=${round(info.rate)}`;
    const note =
      info.legacyIsTest === 0
        ? `opset ${ctx.opset} Dropout without is_test=1 (training behaviour by the letter of the spec); runtimes run it as the identity at inference, which removing it makes explicit`
        : info.legacyIsTest === 1
          ? `opset ${ctx.opset} Dropout with is_test=1`
          : undefined;
    const c: RewriteCandidate = { layer, action: `removed (${rate}; identity at inference)` };
    if (note) c.note = note;
    candidates.push(c);
    nodes.push(node);
  }
  return { plan: { rewrite: 'remove-dropout', candidates, skipped }, nodes };
}

export function planRemoveDropout(model: OnnxModel): RewritePlan {
  return analyse(model).plan;
}

export function applyRemoveDropout(model: OnnxModel): { model: OnnxModel; plan: RewritePlan } {
  const { plan, nodes } = analyse(model);
  if (nodes.length === 0) return { model, plan };
  const ed = new GraphEditor(model, model.graph);
  const graphInputs = new Set(model.graph.input.map((i) => i.name ?? ''));
  const graphOutputs = new Set(model.graph.output.map((o) => o.name ?? ''));
  const dropped = new Set<string>();
  const gone = new Set<string>();
  plan.candidates.forEach((cand, k) => {
    const d = ed.current(nodes[k]);
    const x = d.input[0];
    const y = d.output[0];
    for (const extra of d.input.slice(1)) if (extra) dropped.add(extra);
    if (!y) {
      ed.removeNode(d);
      return;
    }
    if (ed.renamable(y)) {
      ed.removeNode(d);
      ed.renameReaders(y, x);
      gone.add(y);
      return;
    }
    // y must keep its name (a graph output or read inside a subgraph)
    const p = ed.nodes.find((n) => n.output.includes(x));
    if (p && !graphInputs.has(x) && !graphOutputs.has(x) && ed.renamable(x)) {
      ed.removeNode(d);
      ed.replaceNode(p, { ...p, output: p.output.map((o) => (o === x ? y : o)) });
      ed.renameReaders(x, y);
      gone.add(x);
      cand.action += `; ${cand.layer}'s output name '${y}' now comes from the layer before it`;
      return;
    }
    const identity: NodeProto = { input: [x], output: [y], name: d.name, opType: 'Identity', attribute: [], metadataProps: [] };
    if (d.domain !== undefined) identity.domain = d.domain;
    ed.replaceNode(d, identity);
    cand.action = `replaced by Identity (its input '${x}' is a graph input or output and '${y}' must keep its name)`;
  });
  return { model: model.derive(finishModel(model, ed, dropped, gone)), plan };
}

function round(v: number): number {
  return Math.round(v * 1e4) / 1e4;
}
