/**
 * Fold BatchNormalization into the linear layer that produces its input (ONNX):
 * Conv (any group count, depthwise), ConvTranspose (output channels on axis 1 per group), Gemm (transB 0/1,
 * alpha/beta, C of shape [N], [1,N], [M,N] or scalar, or missing), MatMul with a constant 2-D weight (the BN
 * becomes an Add of the folded shift) and MatMul + Add. Weights may live in initializers or Constant nodes.
 * Everything else is reported as skipped with its reason.
 */
import { batchNormAffine, foldBias, foldBiasLastAxis, scaleKernel, type Affine } from '../../rewrites/batchnorm-math';
import type { FoldCandidate, FoldPlan, SkippedCandidate } from '../../types';
import {
  attrFloat,
  attrInt,
  constantTensors,
  consumers,
  dims,
  isDefaultDomain,
  referencedNames,
  type ConstantSource,
  type OnnxModel,
} from './model';
import type { GraphProto, ModelProto, NodeProto, TensorProto } from './proto';
import { planContext } from './rewrite-common';
import { inferShapes } from './shapes';
import { makeTensorLike, readTensorAsFloat32 } from './tensor';

type Kind = 'Conv' | 'ConvTranspose' | 'Gemm' | 'MatMul' | 'MatMulAdd';

interface Action {
  bn: NodeProto;
  /** the node whose output BN reads (for MatMulAdd: the Add) */
  producer: NodeProto;
  /** MatMulAdd only: the MatMul feeding the Add, and which Add input is the bias */
  matmul?: NodeProto;
  biasInput?: number;
  kind: Kind;
  candidate: FoldCandidate;
}

interface Analysis {
  plan: FoldPlan;
  actions: Action[];
}


function analyse(model: OnnxModel): Analysis {
  // constants without initializers that are also graph inputs (IR >= 4: defaults the caller may override)
  const { graph, nameOf, constants, cons, prods, graphOutputs, isFloatConst } = planContext(model);
  const candidates: FoldCandidate[] = [];
  const skipped: SkippedCandidate[] = [];
  const actions: Action[] = [];
  /** BN node -> its candidate, for chains */
  const planned = new Map<NodeProto, FoldCandidate>();
  let shapes: ReturnType<typeof inferShapes> | null = null;
  const usedOnlyBy = (value: string, node: NodeProto) => {
    const c = cons.get(value) ?? [];
    return !graphOutputs.has(value) && c.length === 1 && c[0] === node;
  };
  const otherUsers = (value: string, node: NodeProto) =>
    (cons.get(value) ?? []).filter((n) => n !== node).map((n) => nameOf.get(n) ?? n.opType ?? '?');

  for (const bn of graph.node) {
    if (bn.opType !== 'BatchNormalization' || !isDefaultDomain(bn.domain)) continue;
    const layer = nameOf.get(bn) ?? 'BatchNormalization';
    const skip = (reason: string) => skipped.push({ layer, reason });
    if (attrInt(bn, 'training_mode', 0) === 1) {
      skip('exported in training mode (training_mode=1): it normalizes with the statistics of each batch, which no fold can reproduce');
      continue;
    }
    if (bn.output.slice(1).some((o) => o && (cons.get(o)?.length || graphOutputs.has(o)))) {
      skip('its running-mean/variance outputs are used, so the node cannot be removed');
      continue;
    }
    if (![1, 2, 3, 4].every((k) => isFloatConst(bn.input[k]))) {
      skip('its scale, bias, mean or variance is not a constant tensor');
      continue;
    }
    const channels = dims(constants.get(bn.input[3])!.tensor).reduce((p, v) => p * v, 1);
    const x = bn.input[0];
    const p = prods.get(x);
    if (!p) {
      skip('its input is a graph input: there is no layer before it to fold into (a standalone BatchNorm)');
      continue;
    }
    const pName = nameOf.get(p) ?? p.opType ?? '?';
    if (!usedOnlyBy(x, bn)) {
      const others = otherUsers(x, bn);
      skip(
        graphOutputs.has(x)
          ? `the output of ${pName} is also a graph output; folding would change it`
          : `the output of ${pName} is also used by ${others.join(', ')}; folding would change what they see`,
      );
      continue;
    }
    if (p.output[0] !== x || !isDefaultDomain(p.domain)) {
      skip(`${pName} (${p.opType}) is not a layer BatchNorm can be folded into`);
      continue;
    }
    const chained = planned.get(p);
    if (p.opType === 'BatchNormalization' && chained) {
      // a chain (Conv -> BN -> BN): once the BN before it has folded, this one reads the layer directly
      const candidate: FoldCandidate = { ...chained, batchnorm: layer, note: `folds after ${pName} has folded into ${chained.into} (a chain)` };
      candidates.push(candidate);
      planned.set(bn, candidate);
      continue;
    }
    const into = (kind: Kind, extra: Partial<Action> = {}) => {
      const candidate: FoldCandidate = { batchnorm: layer, into: pName, into_op: p.opType ?? '' };
      if (extra.matmul) candidate.into = nameOf.get(extra.matmul) ?? candidate.into;
      if (extra.matmul) candidate.into_op = 'MatMul+Add';
      candidates.push(candidate);
      planned.set(bn, candidate);
      actions.push({ bn, producer: p, kind, candidate, ...extra });
    };
    const weightChannels = (name: string, axis: (s: number[]) => number): number | null => {
      const s = dims(constants.get(name)!.tensor);
      return s.length ? axis(s) : null;
    };
    switch (p.opType) {
      case 'Conv':
      case 'ConvTranspose': {
        if (!isFloatConst(p.input[1])) {
          skip(`the weights of ${pName} are not a constant float tensor (computed at run time or quantized)`);
          break;
        }
        if (p.input[2] && !isFloatConst(p.input[2])) {
          skip(`the bias of ${pName} is not a constant tensor`);
          break;
        }
        const group = attrInt(p, 'group', 1);
        const cout = p.opType === 'Conv' ? weightChannels(p.input[1], (s) => s[0]) : weightChannels(p.input[1], (s) => (s.length > 1 ? s[1] * group : -1));
        if (cout !== channels) {
          skip(`${pName} has ${cout ?? 'unknown'} output channels but the BatchNorm has ${channels}`);
          break;
        }
        into(p.opType);
        break;
      }
      case 'Gemm': {
        if (!isFloatConst(p.input[1])) {
          skip(`the weight matrix of ${pName} is not a constant float tensor`);
          break;
        }
        if (p.input[2] && !isFloatConst(p.input[2])) {
          skip(`the bias C of ${pName} is not a constant tensor`);
          break;
        }
        const n = weightChannels(p.input[1], (s) => (attrInt(p, 'transB', 0) ? s[0] : s[1]));
        if (n !== channels) {
          skip(`${pName} has ${n ?? 'unknown'} output features but the BatchNorm has ${channels}`);
          break;
        }
        const c = p.input[2] ? dims(constants.get(p.input[2])!.tensor) : [];
        if (c.length > 0 && c[c.length - 1] !== channels && c[c.length - 1] !== 1) {
          skip(`the bias C of ${pName} has shape [${c.join(', ')}], which does not broadcast along the features`);
          break;
        }
        into('Gemm');
        break;
      }
      case 'MatMul':
      case 'Add': {
        let matmul = p;
        let biasInput: number | undefined;
        if (p.opType === 'Add') {
          const k = isFloatConst(p.input[1]) ? 1 : isFloatConst(p.input[0]) ? 0 : -1;
          const mm = k >= 0 ? prods.get(p.input[1 - k]) : undefined;
          if (k < 0 || !mm || mm.opType !== 'MatMul' || !isDefaultDomain(mm.domain) || !usedOnlyBy(mm.output[0], p)) {
            skip(`${pName} (Add) is not the bias of a MatMul, so there is no linear layer to fold into`);
            break;
          }
          const b = dims(constants.get(p.input[k])!.tensor);
          const nb = b.reduce((q, v) => q * v, 1);
          if (!(nb === channels && b[b.length - 1] === channels) && nb !== 1) {
            skip(`the bias added by ${pName} has shape [${b.join(', ')}], not one value per feature`);
            break;
          }
          matmul = mm;
          biasInput = k;
        }
        const mmName = nameOf.get(matmul) ?? 'MatMul';
        if (!isFloatConst(matmul.input[1]) || dims(constants.get(matmul.input[1])!.tensor).length !== 2) {
          skip(`the weight of ${mmName} is not a constant 2-D float matrix`);
          break;
        }
        if (dims(constants.get(matmul.input[1])!.tensor)[1] !== channels) {
          skip(`${mmName} has ${dims(constants.get(matmul.input[1])!.tensor)[1]} output features but the BatchNorm has ${channels}`);
          break;
        }
        shapes ??= inferShapes(graph, constants, model.external);
        const xs = shapes.get(matmul.input[0]);
        if (!xs || xs.length !== 2) {
          skip(
            xs
              ? `${mmName} has a ${xs.length}-D input: BatchNorm normalizes axis 1, which is not the axis ${mmName} produces`
              : `the rank of ${mmName}'s input is unknown, so it cannot be shown that BatchNorm's channel axis is its feature axis`,
          );
          break;
        }
        if (p.opType === 'Add') into('MatMulAdd', { matmul, biasInput });
        else into('MatMul');
        break;
      }
      default:
        skip(`${pName} (${p.opType}) is not linear per channel; only Conv, ConvTranspose, Gemm and MatMul(+Add) can absorb a BatchNorm`);
    }
  }
  return { plan: { candidates, skipped }, actions };
}

export function planFold(model: OnnxModel): FoldPlan {
  return analyse(model).plan;
}

/** Apply every foldable BN; repeats so chains (Conv -> BN -> BN) fold completely. */
export function applyFold(model: OnnxModel): { model: OnnxModel; plan: FoldPlan } {
  const first = analyse(model);
  let current = model;
  let analysis = first;
  const done: FoldCandidate[] = [];
  for (let round = 0; analysis.actions.length > 0 && round < 64; round++) {
    current = current.derive(applyActions(current, analysis.actions));
    done.push(...analysis.actions.map((a) => a.candidate));
    analysis = analyse(current);
  }
  return { model: current, plan: { candidates: done, skipped: analysis.plan.skipped } };
}

/** Edits a graph copy-on-write (shared with the other ONNX rewrites). */
export class GraphEditor {
  readonly nodes: NodeProto[];
  readonly initializers: TensorProto[];
  private readonly taken: Set<string>;
  private readonly constants: Map<string, ConstantSource>;
  private readonly cons: Map<string, NodeProto[]>;
  private readonly outputs: Set<string>;

  constructor(
    private readonly model: OnnxModel,
    readonly graph: GraphProto,
  ) {
    this.nodes = [...graph.node];
    this.initializers = [...graph.initializer];
    this.constants = constantTensors(graph);
    this.cons = consumers(graph);
    this.outputs = new Set(graph.output.map((o) => o.name ?? ''));
    this.taken = referencedNames(graph);
    for (const n of graph.node) for (const o of n.output) this.taken.add(o);
    for (const t of graph.initializer) if (t.name) this.taken.add(t.name);
    for (const i of graph.input) if (i.name) this.taken.add(i.name);
  }

  read(name: string): Float32Array {
    return readTensorAsFloat32(this.constants.get(name)!.tensor, this.model.external);
  }
  tensor(name: string): TensorProto {
    return this.constants.get(name)!.tensor;
  }

  freshName(base: string): string {
    let name = base;
    for (let k = 1; this.taken.has(name); k++) name = `${base}_${k}`;
    this.taken.add(name);
    return name;
  }

  /** a value can be renamed when it is no graph output and no subgraph reads it */
  renamable(name: string): boolean {
    if (this.outputs.has(name)) return false;
    for (const n of this.nodes)
      for (const a of n.attribute) for (const g of a.g ? [a.g, ...a.graphs] : a.graphs) if (referencedNames(g).has(name)) return false;
    return true;
  }

  /** every top-level node reading `from` reads `to` instead */
  renameReaders(from: string, to: string): void {
    for (const n of [...this.nodes]) {
      if (!n.input.includes(from)) continue;
      this.replaceNode(n, { ...n, input: n.input.map((i) => (i === from ? to : i)) });
    }
  }

  /** original node -> its latest version, so actions planned on the original graph find their node */
  private readonly latest = new Map<NodeProto, NodeProto>();
  private readonly origin = new Map<NodeProto, NodeProto>();

  /** replace node `old` (by identity) with `updated` */
  replaceNode(old: NodeProto, updated: NodeProto): void {
    const i = this.nodes.indexOf(old);
    if (i >= 0) this.nodes[i] = updated;
    const orig = this.origin.get(old) ?? old;
    this.origin.set(updated, orig);
    this.latest.set(orig, updated);
  }
  removeNode(node: NodeProto): void {
    const i = this.nodes.indexOf(node);
    if (i >= 0) this.nodes.splice(i, 1);
  }
  originOf(node: NodeProto): NodeProto {
    return this.origin.get(node) ?? node;
  }
  current(node: NodeProto): NodeProto {
    return this.latest.get(this.origin.get(node) ?? node) ?? node;
  }

  /**
   * Writes new data for the constant `name` read by `user` input slot `slot`. In place when nobody else reads
   * it; otherwise as a new initializer that only `user` reads (the shared original stays untouched).
   * Returns the updated user node.
   */
  setConstant(user: NodeProto, slot: number, name: string, data: Float32Array, shape: number[], like: TensorProto): NodeProto {
    const src = this.constants.get(name);
    const exclusive = src !== undefined && !src.alias && !this.outputs.has(name) && (this.cons.get(name) ?? []).every((n) => this.originOf(n) === this.originOf(user));
    if (src && exclusive) {
      const t: TensorProto = { ...makeTensorLike(src.tensor, data, shape), name: src.tensor.name };
      if (src.node) {
        const node = src.node;
        const updated: NodeProto = { ...node, attribute: [{ name: 'value', type: 4, t, floats: [], ints: [], strings: [], tensors: [], graphs: [], sparseTensors: [], typeProtos: [] }] };
        this.replaceNode(node, updated);
        src.node = updated;
      } else {
        const i = this.initializers.indexOf(src.tensor);
        this.initializers[i] = t;
      }
      src.tensor = t;
      return user;
    }
    const fresh = this.freshName(name ? `${name}_folded` : `${user.name || user.output[0] || 'layer'}_bias`);
    const t: TensorProto = { ...makeTensorLike(like, data, shape), name: fresh };
    this.initializers.push(t);
    this.constants.set(fresh, { tensor: t });
    const input = [...user.input];
    while (input.length <= slot) input.push('');
    input[slot] = fresh;
    const updated = { ...user, input };
    this.replaceNode(user, updated);
    return updated;
  }

  /**
   * The rewritten model: the named constants nobody reads any more are dropped (with their graph-input entries,
   * which IR < 4 has for every initializer), and the value_info of `gone` values (vanished or reshaped) too.
   */
  finish(dropped: Iterable<string>, gone: Iterable<string>): ModelProto {
    const droppedSet = new Set(dropped);
    this.dropIfUnused([...droppedSet]);
    const goneSet = new Set(gone);
    const keptInit = new Set(this.initializers.map((t) => t.name));
    const graph: GraphProto = {
      ...this.graph,
      node: this.nodes,
      initializer: this.initializers,
      input: this.graph.input.filter((i) => !(droppedSet.has(i.name ?? '') && !keptInit.has(i.name))),
      valueInfo: this.graph.valueInfo.filter((v) => !goneSet.has(v.name ?? '')),
    };
    return { ...this.model.proto, graph };
  }

  /** drop initializers / Constant nodes nobody reads any more (only those named) */
  dropIfUnused(names: string[]): void {
    const used = referencedNames({ ...this.graph, node: this.nodes });
    for (const name of names) {
      if (!name || used.has(name)) continue;
      const src = this.constants.get(name);
      if (!src) continue;
      if (src.node) this.removeNode(src.node);
      else {
        const i = this.initializers.indexOf(src.tensor);
        if (i >= 0) this.initializers.splice(i, 1);
      }
      this.constants.delete(name);
    }
  }
}

function applyActions(model: OnnxModel, actions: Action[]): typeof model.proto {
  const graph = model.graph;
  const ed = new GraphEditor(model, graph);
  const dropped = new Set<string>();
  const gone = new Set<string>();
  for (const a of actions) {
    const bn = a.bn;
    const affine = batchNormAffine(
      ed.read(bn.input[1]),
      ed.read(bn.input[2]),
      ed.read(bn.input[3]),
      ed.read(bn.input[4]),
      attrFloat(bn, 'epsilon', 1e-5),
    );
    const y = bn.output[0];
    let last: NodeProto;
    switch (a.kind) {
      case 'Conv':
      case 'ConvTranspose':
        last = foldConv(ed, ed.current(a.producer), affine, a.kind === 'ConvTranspose');
        break;
      case 'Gemm':
        last = foldGemm(ed, ed.current(a.producer), affine);
        break;
      case 'MatMul': {
        const mm = scaleMatMul(ed, ed.current(a.producer), affine);
        // the BN becomes the Add of the folded shift
        const wLike = ed.tensor(mm.input[1]);
        const shiftName = ed.freshName(`${bn.name || y}_shift`);
        const shift = { ...makeTensorLike(wLike, Float32Array.from(affine.shift), [affine.shift.length]), name: shiftName };
        ed.initializers.push(shift);
        const add: NodeProto = { input: [mm.output[0], shiftName], output: [y], name: bn.name, opType: 'Add', attribute: [], metadataProps: [] };
        ed.replaceNode(bn, add);
        for (const k of [1, 2, 3, 4]) dropped.add(bn.input[k]);
        continue;
      }
      case 'MatMulAdd': {
        scaleMatMul(ed, ed.current(a.matmul!), affine);
        const add = ed.current(a.producer);
        const k = a.biasInput!;
        const biasName = add.input[k];
        const b = ed.read(biasName);
        const folded = b.length === 1 ? foldBias(new Float32Array(affine.scale.length).fill(b[0]), affine) : foldBiasLastAxis(b, affine);
        const shape = b.length === 1 ? [affine.scale.length] : dims(ed.tensor(biasName));
        last = ed.setConstant(add, k, biasName, folded, shape, ed.tensor(biasName));
        break;
      }
    }
    const x = last.output[0];
    if (ed.renamable(y)) {
      // keep the layer's own output name: readers of the BN output read it directly
      ed.renameReaders(y, x);
      gone.add(y);
    } else {
      // a graph output (or read inside a subgraph) keeps its name: the layer now produces it
      ed.replaceNode(last, { ...last, output: [y, ...last.output.slice(1)] });
      gone.add(x);
    }
    ed.removeNode(bn);
    for (const k of [1, 2, 3, 4]) dropped.add(bn.input[k]);
  }
  return ed.finish(dropped, gone);
}

function foldConv(ed: GraphEditor, conv: NodeProto, affine: Affine, transposed: boolean): NodeProto {
  const wName = conv.input[1];
  const wT = ed.tensor(wName);
  const shape = dims(wT);
  const group = attrInt(conv, 'group', 1);
  const kernel = scaleKernel(ed.read(wName), shape, transposed ? 1 : 0, affine.scale, transposed ? group : 1);
  let node = ed.setConstant(conv, 1, wName, kernel, shape, wT);
  const bName = node.input[2];
  const bias = foldBias(bName ? ed.read(bName) : null, affine);
  if (bName) node = ed.setConstant(node, 2, bName, bias, [bias.length], ed.tensor(bName));
  else node = ed.setConstant(node, 2, '', bias, [bias.length], wT);
  return node;
}

function foldGemm(ed: GraphEditor, gemm: NodeProto, affine: Affine): NodeProto {
  const wName = gemm.input[1];
  const wT = ed.tensor(wName);
  const shape = dims(wT);
  const transB = attrInt(gemm, 'transB', 0) === 1;
  let node = ed.setConstant(gemm, 1, wName, scaleKernel(ed.read(wName), shape, transB ? 0 : 1, affine.scale), shape, wT);
  const beta = attrFloat(gemm, 'beta', 1);
  const cName = node.input[2];
  if (cName) {
    const c = ed.read(cName);
    const cShape = dims(ed.tensor(cName));
    const n = affine.scale.length;
    const folded =
      c.length === 1 ? foldBias(new Float32Array(n).fill(c[0]), affine, beta) : cShape[cShape.length - 1] === 1 ? foldBiasLastAxis(broadcastLast(c, n), affine, beta) : foldBiasLastAxis(c, affine, beta);
    const outShape = c.length === 1 ? [n] : cShape[cShape.length - 1] === 1 ? [...cShape.slice(0, -1), n] : cShape;
    node = ed.setConstant(node, 2, cName, folded, outShape, ed.tensor(cName));
  } else {
    node = ed.setConstant(node, 2, '', foldBias(null, affine), [affine.scale.length], wT);
  }
  // the folded C already includes beta
  const updated: NodeProto = { ...node, attribute: node.attribute.filter((x) => x.name !== 'beta') };
  ed.replaceNode(node, updated);
  return updated;
}

function broadcastLast(c: Float32Array, n: number): Float32Array {
  const out = new Float32Array(c.length * n);
  for (let i = 0; i < c.length; i++) out.fill(c[i], i * n, (i + 1) * n);
  return out;
}

function scaleMatMul(ed: GraphEditor, mm: NodeProto, affine: Affine): NodeProto {
  const wName = mm.input[1];
  const wT = ed.tensor(wName);
  const shape = dims(wT);
  return ed.setConstant(mm, 1, wName, scaleKernel(ed.read(wName), shape, 1, affine.scale), shape, wT);
}
