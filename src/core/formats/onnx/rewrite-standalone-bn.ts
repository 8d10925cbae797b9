/**
 * A BatchNormalization that folds neither into the layer before it nor into the layer(s) after it becomes one
 * per-channel affine map:  Mul(x, scale) -> Add(., shift)  with constants of shape [C, 1, ..., 1] (rank-1
 * trailing ones, so they broadcast along axis 1 of an [N, C, ...] input; [C] for [N, C]).
 *
 * Why Mul+Add and not a 1x1 depthwise Conv: it is exact and rank-agnostic (BatchNorm1d on [N, C] and [N, C, L],
 * 2-D and 3-D maps alike; a Conv cannot take [N, C]), it works in every opset (opset < 7 through Mul/Add's
 * broadcast/axis attributes), and it has no kernel layout to get wrong. Runtimes fuse a Mul+Add with
 * constants into a neighbouring conv when one becomes possible, and quantizers treat it as an ordinary
 * elementwise pair. The gain is modest and honest: one node becomes two, but the four BN tensors become
 * two, the runtime no longer recomputes 1/sqrt(var+eps), and runtimes without BatchNormalization support
 * can run it.
 *
 * Only BNs that cannot fold (the fold rewrites remove them entirely) are candidates; the others are listed as
 * skipped with the rewrite that removes them.
 */
import { batchNormAffine } from '../../rewrites/batchnorm-math';
import type { RewriteCandidate, RewritePlan, SkippedCandidate } from '../../types';
import { GraphEditor, planFold } from './fold-batchnorm';
import { attrFloat, dims, type OnnxModel } from './model';
import type { AttributeProto, NodeProto, TensorProto } from './proto';
import { batchNormBlocker, finishModel, isOp, planContext } from './rewrite-common';
import { planFoldForward } from './rewrite-fold-bn-forward';
import { inferShapes } from './shapes';
import { makeTensorLike, readTensorAsFloat32 } from './tensor';

interface Action {
  bn: NodeProto;
  rank: number;
}

function analyse(model: OnnxModel): { plan: RewritePlan; actions: Action[] } {
  const ctx = planContext(model);
  const backward = new Map(planFold(model).candidates.map((c) => [c.batchnorm, c]));
  const forward = new Map(planFoldForward(model).candidates.map((c) => [c.batchnorm, c]));
  const shapes = inferShapes(model.graph, ctx.constants, model.external);
  const candidates: RewriteCandidate[] = [];
  const skipped: SkippedCandidate[] = [];
  const actions: Action[] = [];
  for (const bn of model.graph.node) {
    if (!isOp(bn, 'BatchNormalization')) continue;
    const layer = ctx.name(bn);
    const blocker = batchNormBlocker(ctx, bn);
    if (blocker) {
      skipped.push({ layer, reason: blocker });
      continue;
    }
    const b = backward.get(layer);
    if (b) {
      skipped.push({ layer, reason: `it folds into ${b.into} (fold-batchnorm removes it entirely)` });
      continue;
    }
    const f = forward.get(layer);
    if (f) {
      skipped.push({ layer, reason: `it folds forward into ${f.into} (fold-batchnorm-forward removes it entirely)` });
      continue;
    }
    const xs = shapes.get(bn.input[0]);
    if (!xs) {
      skipped.push({ layer, reason: 'the rank of its input is unknown, so the shape of the per-channel constants ([C, 1, ...]) is unknown' });
      continue;
    }
    if (xs.length < 2) {
      skipped.push({ layer, reason: `its input has rank ${xs.length}; BatchNormalization needs [N, C, ...]` });
      continue;
    }
    const c = prod(dims(ctx.constants.get(bn.input[3])!.tensor));
    const shape = ctx.opset < 7 ? [c] : [c, ...Array<number>(xs.length - 2).fill(1)];
    candidates.push({ layer, action: `Mul + Add with per-channel constants of shape [${shape.join(', ')}] (x * scale + shift)` });
    actions.push({ bn, rank: xs.length });
  }
  return { plan: { rewrite: 'batchnorm-to-affine', candidates, skipped }, actions };
}

const prod = (a: number[]) => a.reduce((p, v) => p * v, 1);

export function planBatchNormToAffine(model: OnnxModel): RewritePlan {
  return analyse(model).plan;
}

export function applyBatchNormToAffine(model: OnnxModel): { model: OnnxModel; plan: RewritePlan } {
  const { plan, actions } = analyse(model);
  if (!actions.length) return { model, plan };
  const ctx = planContext(model);
  const ed = new GraphEditor(model, model.graph);
  const dropped = new Set<string>();
  const legacy = ctx.opset < 7;
  const legacyInputs: string[] = [];
  for (const { bn, rank } of actions) {
    const read = (k: number) => readTensorAsFloat32(ctx.constants.get(bn.input[k])!.tensor, model.external);
    const affine = batchNormAffine(read(1), read(2), read(3), read(4), attrFloat(bn, 'epsilon', 1e-5));
    const c = affine.scale.length;
    const shape = legacy ? [c] : [c, ...Array<number>(rank - 2).fill(1)];
    const like: TensorProto = ctx.constants.get(bn.input[1])!.tensor;
    const base = bn.name || bn.output[0];
    const scaleName = ed.freshName(`${base}_scale`);
    const shiftName = ed.freshName(`${base}_shift`);
    ed.initializers.push({ ...makeTensorLike(like, Float32Array.from(affine.scale), shape), name: scaleName });
    ed.initializers.push({ ...makeTensorLike(like, Float32Array.from(affine.shift), shape), name: shiftName });
    if (Number(model.proto.irVersion ?? 0n) < 4) {
      // IR < 4: every initializer must also be a graph input
      legacyInputs.push(scaleName, shiftName);
    }
    const attrs: AttributeProto[] = legacy ? [intAttr('broadcast', 1), intAttr('axis', 1)] : [];
    const scaled = ed.freshName(`${bn.output[0]}_scaled`);
    const mul: NodeProto = { input: [bn.input[0], scaleName], output: [scaled], name: `${base}_mul`, opType: 'Mul', attribute: attrs, metadataProps: [] };
    const add: NodeProto = { input: [scaled, shiftName], output: [bn.output[0]], name: bn.name ?? '', opType: 'Add', attribute: attrs.map((a) => ({ ...a })), metadataProps: [] };
    if (bn.domain !== undefined) {
      mul.domain = bn.domain;
      add.domain = bn.domain;
    }
    const cur = ed.current(bn);
    ed.replaceNode(cur, add);
    ed.nodes.splice(ed.nodes.indexOf(add), 0, mul);
    for (const k of [1, 2, 3, 4]) dropped.add(bn.input[k]);
  }
  const proto = finishModel(model, ed, dropped, []);
  if (legacyInputs.length && proto.graph) {
    const added = legacyInputs.map((name) => {
      const t = ed.initializers.find((i) => i.name === name)!;
      return { name, type: { tensorType: { elemType: t.dataType ?? 1, shape: { dim: dims(t).map((d) => ({ dimValue: BigInt(d) })) } } }, metadataProps: [] };
    });
    proto.graph = { ...proto.graph, input: [...proto.graph.input, ...added] };
  }
  return { model: model.derive(proto), plan };
}

function intAttr(name: string, i: number): AttributeProto {
  return { name, type: 2, i: BigInt(i), floats: [], ints: [], strings: [], tensors: [], graphs: [], sparseTensors: [], typeProtos: [] };
}
