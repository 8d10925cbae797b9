/**
 * Fold a BatchNormalization into the layer(s) that FOLLOW it (ONNX): BN(x) = s*x + t per channel, so for a
 * following linear layer  W (s*x + t) + b = (W diag(s)) x + (W t + b):  scale the kernel's INPUT-channel
 * axis by s and add W t to the bias.
 *
 * Exact only when the following layer sees every BN output value through the same taps:
 * - Conv without zero padding (or with a shift t that is 0): with padding the conv pads the BN OUTPUT with
 *   zeros; after folding it would pad x with zeros, which is BN output t (not 0) at the border, so the border
 *   outputs would change. 1x1 kernels without pads are always exact; strides/dilations/groups are fine
 *   (input channel of kernel column i in group g is g*(Cin/g) + i).
 * - Gemm reading the BN output as A (transA=0): B's rows (transB=0) or columns (transB=1) are the features.
 * - Flatten(axis=1) / Reshape to [N, C*S] followed by Gemm: feature c*S + j (NCHW flattens channel-major) gets
 *   channel c's scale and shift, S = the number of spatial positions (known statically).
 * ConvTranspose is not folded: how many kernel taps reach an output position varies at the borders, so W t
 * is not one bias per channel. Every reader of the BN output must qualify (each gets its own folded copy of a
 * shared weight). Chains (BN -> BN -> Conv) fold completely: the plan counts the first BN once the second
 * has folded, apply repeats until nothing changes.
 */
import { batchNormAffine, type Affine } from '../../rewrites/batchnorm-math';
import type { FoldCandidate, FoldPlan, SkippedCandidate } from '../../types';
import { GraphEditor } from './fold-batchnorm';
import { attrFloat, attrInt, attrInts, attrString, dims, type OnnxModel } from './model';
import type { NodeProto } from './proto';
import { batchNormBlocker, finishModel, isOp, planContext, type PlanContext } from './rewrite-common';
import { inferShapes, type Shape } from './shapes';
import { readTensorAsFloat32 } from './tensor';

type Target =
  | { kind: 'Conv'; node: NodeProto }
  | { kind: 'Gemm'; node: NodeProto }
  | { kind: 'FlattenGemm'; flatten: NodeProto; gemms: NodeProto[]; spatial: number };

interface Action {
  bn: NodeProto;
  targets: Target[];
  candidate: FoldCandidate;
}

const prod = (a: number[]) => a.reduce((p, v) => p * v, 1);

function affineOf(ctx: PlanContext, bn: NodeProto): Affine {
  const r = (k: number) => readTensorAsFloat32(ctx.constants.get(bn.input[k])!.tensor, ctx.model.external);
  return batchNormAffine(r(1), r(2), r(3), r(4), attrFloat(bn, 'epsilon', 1e-5));
}

function analyse(model: OnnxModel): { plan: FoldPlan; actions: Action[] } {
  const ctx = planContext(model);
  let shapes: Map<string, Shape | null> | null = null;
  const shapeOf = (v: string) => {
    shapes ??= inferShapes(model.graph, ctx.constants, model.external);
    return shapes.get(v) ?? null;
  };
  const actions: Action[] = [];
  const skipped = new Map<NodeProto, string>();
  /** BN -> the BN that is its only reader (a possible chain) */
  const chainNext = new Map<NodeProto, NodeProto>();
  const order: NodeProto[] = [];

  for (const bn of model.graph.node) {
    if (!isOp(bn, 'BatchNormalization')) continue;
    order.push(bn);
    const blocker = batchNormBlocker(ctx, bn);
    if (blocker) {
      skipped.set(bn, blocker);
      continue;
    }
    const channels = prod(dims(ctx.constants.get(bn.input[3])!.tensor));
    const y = bn.output[0];
    if (ctx.graphOutputs.has(y)) {
      skipped.set(bn, 'its output is a graph output: folding it into the next layer would change that output');
      continue;
    }
    const readers = ctx.readersOf(y);
    if (readers.length === 0) {
      skipped.set(bn, 'nothing reads its output');
      continue;
    }
    if (readers.length === 1 && isOp(readers[0], 'BatchNormalization') && readers[0].input[0] === y) {
      chainNext.set(bn, readers[0]);
      skipped.set(bn, `${ctx.name(readers[0])} (BatchNormalization) reads its output; it folds forward only if that one does (a chain)`);
      continue;
    }
    let affine: Affine | null = null;
    const shiftIsZero = () => {
      affine ??= affineOf(ctx, bn);
      return affine.shift.every((v) => v === 0);
    };
    const targets: Target[] = [];
    let reason: string | null = null;
    for (const r of readers) {
      const res = targetFor(ctx, r, y, channels, bn, shapeOf, shiftIsZero);
      if (typeof res === 'string') {
        reason = res;
        break;
      }
      targets.push(res);
    }
    if (reason) {
      skipped.set(bn, reason);
      continue;
    }
    const into = targets.flatMap((t) => (t.kind === 'FlattenGemm' ? t.gemms : [t.node]));
    const candidate: FoldCandidate = {
      batchnorm: ctx.name(bn),
      into: into.map((n) => ctx.name(n)).join(', '),
      into_op: [...new Set(targets.map((t) => (t.kind === 'FlattenGemm' ? `${t.flatten.opType}+Gemm` : t.kind)))].join(', '),
      direction: 'forward',
    };
    const shared = sharedWeights(ctx, into);
    if (shared.length) candidate.note = `${shared.join('; ')}: the folded layer gets its own copy`;
    actions.push({ bn, targets, candidate });
  }

  // chains: a BN whose only reader is a BN that folds forward folds after it
  const planned = new Map<NodeProto, FoldCandidate>(actions.map((a) => [a.bn, a.candidate]));
  const chained: FoldCandidate[] = [];
  for (let changed = true; changed; ) {
    changed = false;
    for (const [bn, next] of chainNext) {
      const c = planned.get(next);
      if (planned.has(bn) || !c) continue;
      const cand: FoldCandidate = { ...c, batchnorm: ctx.name(bn), note: `folds after ${ctx.name(next)} has folded into ${c.into} (a chain)` };
      planned.set(bn, cand);
      chained.push(cand);
      skipped.delete(bn);
      changed = true;
    }
  }
  const candidates = order.filter((bn) => planned.has(bn)).map((bn) => planned.get(bn)!);
  const skips: SkippedCandidate[] = order.filter((bn) => skipped.has(bn)).map((bn) => ({ layer: ctx.name(bn), reason: skipped.get(bn)! }));
  return { plan: { candidates, skipped: skips }, actions };
}

function sharedWeights(ctx: PlanContext, into: NodeProto[]): string[] {
  const out: string[] = [];
  for (const n of into) {
    const w = n.input[1];
    const others = ctx.readersOf(w).filter((o) => o !== n);
    if (others.length || ctx.constants.get(w)?.alias) out.push(`weight '${w}' of ${ctx.name(n)} is also used by ${others.map((o) => ctx.name(o)).join(', ') || 'an Identity alias'}`);
  }
  return out;
}

function targetFor(
  ctx: PlanContext,
  r: NodeProto,
  y: string,
  channels: number,
  bn: NodeProto,
  shapeOf: (v: string) => Shape | null,
  shiftIsZero: () => boolean,
): Target | string {
  const rName = `${ctx.name(r)} (${r.opType})`;
  const linear = ['Conv', 'ConvTranspose', 'Gemm', 'Flatten', 'Reshape'].some((op) => isOp(r, op));
  if (linear && (r.input.indexOf(y) !== 0 || r.input.lastIndexOf(y) !== 0)) return `${rName} reads its output as something other than its data input`;
  if (isOp(r, 'Conv')) {
    const w = r.input[1];
    if (!ctx.isFloatConst(w)) return `the weights of ${rName} are not a constant float tensor`;
    if (r.input[2] && !ctx.isFloatConst(r.input[2])) return `the bias of ${rName} is not a constant tensor`;
    const ws = dims(ctx.constants.get(w)!.tensor);
    const group = attrInt(r, 'group', 1);
    if (ws.length < 3 || ws[1] * group !== channels) return `${rName} has ${ws.length > 1 ? ws[1] * group : '?'} input channels but the BatchNorm has ${channels}`;
    const kernel = ws.slice(2);
    const autoPad = attrString(r, 'auto_pad') ?? 'NOTSET';
    const pads = attrInts(r, 'pads') ?? [];
    const padded = autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER' ? kernel.some((k) => k > 1) : autoPad !== 'VALID' && pads.some((p) => p !== 0);
    if (padded && !shiftIsZero()) {
      return `${rName} pads its input with zeros (${autoPad !== 'NOTSET' ? `auto_pad ${autoPad}` : `pads [${pads.join(', ')}]`}): after folding it would pad x with zeros, which is the BatchNorm's shift (not 0) at the border, so border outputs would change. Exact only without padding (or with 1x1 kernels)`;
    }
    return { kind: 'Conv', node: r };
  }
  if (isOp(r, 'ConvTranspose')) {
    return `${rName}: how many kernel taps reach each output position varies at the borders, so the shift cannot become one bias per channel`;
  }
  if (isOp(r, 'Gemm')) {
    const bad = gemmProblem(ctx, r, channels);
    return bad ? `${rName} ${bad}` : { kind: 'Gemm', node: r };
  }
  if (isOp(r, 'Flatten') || isOp(r, 'Reshape')) {
    const xs = shapeOf(bn.input[0]);
    const fs = shapeOf(r.output[0]);
    if (!xs || xs.length < 2 || xs.slice(2).some((d) => d === null)) return `the spatial size of the BatchNorm's input is unknown, so the ${r.opType}'s feature order cannot be mapped to channels`;
    const spatial = prod(xs.slice(2) as number[]);
    if (isOp(r, 'Flatten')) {
      let axis = attrInt(r, 'axis', 1);
      if (axis < 0) axis += xs.length;
      if (axis !== 1) return `${rName} flattens from axis ${axis}, not 1, so its features are not channel-major`;
    } else if (!fs || fs.length !== 2 || fs[1] !== channels * spatial || fs[0] !== xs[0]) {
      return `${rName} does not reshape [N, C, ...] to [N, C x spatial]`;
    }
    const f = r.output[0];
    if (ctx.graphOutputs.has(f)) return `the output of ${rName} is a graph output`;
    const gemms = ctx.readersOf(f);
    if (gemms.length === 0) return `nothing reads the output of ${rName}`;
    for (const g of gemms) {
      if (!isOp(g, 'Gemm') || g.input.indexOf(f) !== 0 || g.input.lastIndexOf(f) !== 0) return `${ctx.name(g)} (${g.opType}) reads the output of ${rName}; only Gemm (as its input A) can absorb the flattened BatchNorm`;
      const bad = gemmProblem(ctx, g, channels * spatial);
      if (bad) return `${ctx.name(g)} (Gemm) ${bad}`;
    }
    return { kind: 'FlattenGemm', flatten: r, gemms, spatial };
  }
  return `${rName} reads its output and is not a linear layer (only Conv, Gemm, Flatten/Reshape->Gemm can absorb it${isOp(r, 'Relu') ? '; BN followed by ReLU would need the ReLU to commute with the scale, which a negative gamma or any shift breaks' : ''})`;
}

function gemmProblem(ctx: PlanContext, g: NodeProto, features: number): string | null {
  if (attrInt(g, 'transA', 0) !== 0) return 'has transA=1 (its features are not on axis 1 of A)';
  const b = g.input[1];
  if (!ctx.isFloatConst(b)) return 'has a weight matrix that is not a constant float tensor';
  if (g.input[2] && !ctx.isFloatConst(g.input[2])) return 'has a bias C that is not a constant tensor';
  const bs = dims(ctx.constants.get(b)!.tensor);
  if (bs.length !== 2) return 'has a weight that is not 2-D';
  const k = attrInt(g, 'transB', 0) ? bs[1] : bs[0];
  if (k !== features) return `has ${k} input features where the BatchNorm provides ${features}`;
  if (g.input[2]) {
    const cs = dims(ctx.constants.get(g.input[2])!.tensor);
    if (cs.length > 2) return 'has a bias C of rank > 2';
  }
  return null;
}

export function planFoldForward(model: OnnxModel): FoldPlan {
  return analyse(model).plan;
}

export function applyFoldForward(model: OnnxModel): { model: OnnxModel; plan: FoldPlan } {
  let analysis = analyse(model);
  const first = analysis.plan;
  let current = model;
  const done: FoldCandidate[] = [];
  for (let round = 0; analysis.actions.length > 0 && round < 64; round++) {
    current = current.derive(applyActions(current, analysis.actions));
    done.push(...analysis.actions.map((a) => a.candidate));
    analysis = analyse(current);
  }
  // chain members are reported with the note of the plan
  const notes = new Map(first.candidates.map((c) => [c.batchnorm, c.note]));
  for (const c of done) {
    const n = notes.get(c.batchnorm);
    if (n) c.note = n;
  }
  return { model: current, plan: { candidates: done, skipped: analysis.plan.skipped } };
}

function applyActions(model: OnnxModel, actions: Action[]) {
  const ctx = planContext(model);
  const ed = new GraphEditor(model, model.graph);
  const dropped = new Set<string>();
  const gone = new Set<string>();
  for (const a of actions) {
    const bn = a.bn;
    const affine = affineOf(ctx, bn);
    const x = bn.input[0];
    const y = bn.output[0];
    for (const t of a.targets) {
      if (t.kind === 'Conv') {
        const node = foldConv(ed, ed.current(t.node), affine);
        ed.replaceNode(node, { ...node, input: [x, ...node.input.slice(1)] });
      } else if (t.kind === 'Gemm') {
        const node = foldGemm(ed, ed.current(t.node), affine, 1);
        ed.replaceNode(node, { ...node, input: [x, ...node.input.slice(1)] });
      } else {
        for (const g of t.gemms) foldGemm(ed, ed.current(g), affine, t.spatial);
        const f = ed.current(t.flatten);
        ed.replaceNode(f, { ...f, input: [x, ...f.input.slice(1)] });
      }
    }
    ed.removeNode(ed.current(bn));
    gone.add(y);
    for (const k of [1, 2, 3, 4]) dropped.add(bn.input[k]);
  }
  return finishModel(model, ed, dropped, gone);
}

/** W[o, i, k...] *= s[cin(o, i)];  b[o] += sum_{i,k} W[o, i, k] * t[cin(o, i)] */
function foldConv(ed: GraphEditor, conv: NodeProto, affine: Affine): NodeProto {
  const wName = conv.input[1];
  const wT = ed.tensor(wName);
  const shape = dims(wT);
  const w = ed.read(wName);
  const group = attrInt(conv, 'group', 1);
  const [cout, cinPerGroup] = shape;
  const inner = prod(shape.slice(2));
  const coutPerGroup = cout / group;
  const out = new Float32Array(w.length);
  const extra = new Float64Array(cout);
  for (let o = 0; o < cout; o++) {
    const base = Math.floor(o / coutPerGroup) * cinPerGroup;
    let acc = 0;
    for (let i = 0; i < cinPerGroup; i++) {
      const s = affine.scale[base + i];
      const t = affine.shift[base + i];
      const off = (o * cinPerGroup + i) * inner;
      for (let k = 0; k < inner; k++) {
        out[off + k] = w[off + k] * s;
        acc += w[off + k] * t;
      }
    }
    extra[o] = acc;
  }
  let node = ed.setConstant(conv, 1, wName, out, shape, wT);
  const bName = node.input[2];
  const b = bName ? ed.read(bName) : null;
  const bias = new Float32Array(cout);
  for (let o = 0; o < cout; o++) bias[o] = (b ? b[o] : 0) + extra[o];
  node = bName ? ed.setConstant(node, 2, bName, bias, [cout], ed.tensor(bName)) : ed.setConstant(node, 2, '', bias, [cout], wT);
  return node;
}

/**
 * Y = alpha * A B + beta * C with A = x*s + t per feature (feature f has channel floor(f / spatial)):
 * B rows (transB=0) / columns (transB=1) scaled by s; C' = beta*C + alpha * (t B), beta dropped.
 */
function foldGemm(ed: GraphEditor, gemm: NodeProto, affine: Affine, spatial: number): NodeProto {
  const bName = gemm.input[1];
  const bT = ed.tensor(bName);
  const shape = dims(bT);
  const b = ed.read(bName);
  const transB = attrInt(gemm, 'transB', 0) === 1;
  const alpha = attrFloat(gemm, 'alpha', 1);
  const beta = attrFloat(gemm, 'beta', 1);
  const [k, m] = transB ? [shape[1], shape[0]] : shape;
  const scaled = new Float32Array(b.length);
  const d = new Float64Array(m);
  for (let f = 0; f < k; f++) {
    const c = Math.floor(f / spatial);
    const s = affine.scale[c];
    const t = affine.shift[c];
    for (let j = 0; j < m; j++) {
      const idx = transB ? j * k + f : f * m + j;
      scaled[idx] = b[idx] * s;
      d[j] += b[idx] * t;
    }
  }
  let node = ed.setConstant(gemm, 1, bName, scaled, shape, bT);
  const cName = node.input[2];
  if (cName) {
    const c = ed.read(cName);
    const cs = dims(ed.tensor(cName));
    const rows = cs.length === 2 ? cs[0] : 1;
    const outShape = cs.length === 2 ? [rows, m] : [m];
    const folded = new Float32Array(rows * m);
    for (let r = 0; r < rows; r++) {
      for (let j = 0; j < m; j++) {
        const cv = c.length === 1 ? c[0] : cs.length === 2 ? c[r * cs[1] + (cs[1] === 1 ? 0 : j)] : c[j];
        folded[r * m + j] = beta * cv + alpha * d[j];
      }
    }
    node = ed.setConstant(node, 2, cName, folded, outShape, ed.tensor(cName));
  } else {
    node = ed.setConstant(node, 2, '', Float32Array.from(d, (v) => alpha * v), [m], bT);
  }
  const updated: NodeProto = { ...node, attribute: node.attribute.filter((a) => a.name !== 'beta') };
  ed.replaceNode(node, updated);
  return updated;
}
