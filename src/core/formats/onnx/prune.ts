/**
 * Structured pruning of ONNX models: output channels / units are removed physically, with every tensor that
 * is indexed by them, so the pruned model is smaller and faster, not just masked.
 *
 * Dependency analysis (Torch-Pruning's DepGraph idea, on the ONNX graph): every output channel of a linear
 * layer (Conv, ConvTranspose, Gemm, MatMul with a constant weight) is an "atom". Walking the graph in order,
 * each tensor gets a channel map (atom of each channel, along its channel axis): per-channel ops keep the map
 * (BatchNorm, activations, pooling, Pad, Resize, constants broadcast per channel...), Flatten / Reshape repeat
 * each atom over the positions it spreads to (channel c of NCHW -> H*W consecutive features), Concat
 * concatenates maps, depthwise convolutions tie output channels to their input channel, and binary ops
 * (residual Add, SE-block Mul...) union the atoms channel by channel. Atoms that reach anything pruning cannot
 * rewrite (graph outputs, Shape, Softmax over channels, grouped convolutions, unknown ops...) are blocked.
 * A channel set (union-find class) is removed everywhere at once or not at all.
 *
 * Removal: producers lose weight rows (Conv axis 0 + bias, Gemm per transB, MatMul columns), per-channel
 * parameters are sliced (BN gamma/beta/mean/var, PRelu slopes, per-channel constants), depthwise filters go
 * and the group count drops, consumers lose input columns (Conv axis 1, Gemm/MatMul rows) and a removed input
 * that is a constant c (measured by probing the consumer's input) adds c x its weights to the consumer's bias:
 * that is what makes removing dead units exact (after ReLU a dead unit is exactly 0; a unit stuck at c != 0,
 * e.g. BN beta after a zeroed conv, folds into the next bias). A conv consumer with zero padding sees c only
 * inside the image, so a non-zero constant is only folded into unpadded convolutions.
 */
import { probeOnnx } from '../../analysis/probe';
import type { InputSource } from '../../analysis/probe-inputs';
import { ModelError } from '../../errors';
import type { PruneCriterion, PruneGroup, PrunePlan, PruneSize, ProbeLayerReport, ProbeReport, SkippedCandidate } from '../../types';
import { GraphEditor } from './fold-batchnorm';
import { buildGraphView, uniqueLayerNames } from './graph';
import { attr, attrFloat, attrInt, attrInts, attrString, constantTensors, defaultOpset, dims as tensorDims, isDefaultDomain, referencedNames, type ConstantSource, type OnnxModel } from './model';
import type { ModelProto, NodeProto, TensorProto } from './proto';
import { inferShapes, type Shape } from './shapes';
import { makeTensorLike, readTensorTyped, tensorByteLength } from './tensor';

// ---------------------------------------------------------------- options and results

export interface PruneOptions {
  /**
   * 'dead': every channel that is constant on the probe inputs (dead ReLU units are constant 0) -- exact on
   * those inputs; 'l1' / 'l2': smallest weight norms of the producing layers; 'bn-gamma': smallest |gamma| of
   * the BatchNorms (network slimming); 'apoz': highest fraction of non-positive activations
   */
  criterion: PruneCriterion;
  /** fraction of each group's channels (scope 'layer') or of all prunable channels (scope 'global') to remove */
  ratio?: number;
  /** instead of a ratio: remove channels with score <= threshold (l1, l2, bn-gamma) or APoZ >= threshold (apoz) */
  threshold?: number;
  scope?: 'layer' | 'global';
  /** probe inputs for 'dead' / 'apoz' and for bias compensation (default: seeded normal(0, 1), like verify) */
  inputs?: InputSource;
  /** an existing probe to reuse when it covers the tensors needed */
  probe?: ProbeReport;
  samples?: number;
  batchSize?: number;
  /** values of symbolic input dims */
  dims?: Record<string, number>;
  /**
   * non-exact criteria: fold the probed mean of each removed input into the consumer's bias (default true when
   * probe data is at hand; exact for constant channels, a first-order correction otherwise)
   */
  compensate?: boolean;
  /** restrict pruning to groups containing these layers */
  layers?: string[];
  signal?: AbortSignal;
}

export interface PruneResult extends PruneSize {
  model: OnnxModel;
  plan: PrunePlan;
  /** output channels removed per layer (same as plan.removed) */
  removed: Record<string, number>;
  /** the probe that was used (run or reused), if any */
  probe: ProbeReport | null;
  seconds: number;
}

// ---------------------------------------------------------------- atoms (union-find over channels)

interface Creator {
  node: NodeProto;
  row: number;
}

class Atoms {
  parent: number[] = [];
  blocked: (string | null)[] = [];
  creator: (Creator | null)[] = [];

  fresh(n: number, node: NodeProto | null): Int32Array {
    const out = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      out[i] = this.parent.length;
      this.parent.push(this.parent.length);
      this.blocked.push(null);
      this.creator.push(node ? { node, row: i } : null);
    }
    return out;
  }

  find(a: number): number {
    const p = this.parent;
    let r = a;
    while (p[r] !== r) r = p[r];
    while (p[a] !== r) {
      const next = p[a];
      p[a] = r;
      a = next;
    }
    return r;
  }

  union(a: number, b: number): void {
    const ra = this.find(a);
    const rb = this.find(b);
    if (ra !== rb) this.parent[rb] = ra;
  }

  block(map: Int32Array, reason: string): void {
    for (const a of map) if (this.blocked[a] === null) this.blocked[a] = reason;
  }
}

/** channels of one tensor: the atom of each channel along `axis` */
interface Space {
  value: string;
  map: Int32Array;
  axis: number;
  rank: number;
}

type LinearKind = 'conv' | 'depthwise' | 'convT' | 'gemm' | 'matmul';

interface LinearEdit {
  node: NodeProto;
  kind: LinearKind;
  /** the tracked input whose channels it reads (null: an untracked input) */
  input: Space | null;
  output: Space;
}

interface ParamEdit {
  node: NodeProto;
  slot: number;
  space: Space;
  /** axis of the constant that runs along the channels */
  constAxis: number;
}

interface ReshapeEdit {
  node: NodeProto;
  output: Space;
  /** index into the target shape holding the channel-bearing dim */
  index: number;
}

interface Analysis {
  atoms: Atoms;
  spaces: Map<string, Space>;
  linear: LinearEdit[];
  params: ParamEdit[];
  reshapes: ReshapeEdit[];
  nameOf: Map<NodeProto, string>;
  constants: Map<string, ConstantSource>;
  /** activation outputs (for APoZ) */
  activations: Set<string>;
}

const UNARY = new Set([
  'Relu', 'LeakyRelu', 'Elu', 'Selu', 'Celu', 'Gelu', 'Sigmoid', 'HardSigmoid', 'HardSwish', 'Tanh', 'Softplus',
  'Softsign', 'Mish', 'ThresholdedRelu', 'Identity', 'Abs', 'Neg', 'Exp', 'Log', 'Sqrt', 'Reciprocal', 'Erf',
  'Floor', 'Ceil', 'Round', 'Sign', 'Sin', 'Cos', 'Cast', 'Clip', 'Dropout', 'Shrink',
]);
const ACTIVATIONS = new Set(['Relu', 'LeakyRelu', 'Elu', 'Selu', 'Celu', 'Gelu', 'Sigmoid', 'HardSigmoid', 'HardSwish', 'Tanh', 'Softplus', 'Softsign', 'Mish', 'ThresholdedRelu', 'Clip', 'PRelu']);
const BINARY = new Set(['Add', 'Sub', 'Mul', 'Div', 'Pow', 'Max', 'Min', 'Sum', 'Mean', 'PRelu']);
const POOLS = new Set(['MaxPool', 'AveragePool', 'LpPool', 'GlobalAveragePool', 'GlobalMaxPool', 'GlobalLpPool']);
const REDUCES = new Set(['ReduceMean', 'ReduceSum', 'ReduceMax', 'ReduceMin', 'ReduceProd', 'ReduceL1', 'ReduceL2', 'ReduceLogSum', 'ReduceLogSumExp', 'ReduceSumSquare']);
const FLOATS = new Set([1, 10, 11, 16]);

function repeatMap(map: Int32Array, times: number): Int32Array {
  if (times === 1) return map;
  const out = new Int32Array(map.length * times);
  for (let c = 0; c < map.length; c++) out.fill(map[c], c * times, (c + 1) * times);
  return out;
}

const prodOf = (s: (number | null)[]): number | null => (s.includes(null) ? null : (s as number[]).reduce((p, v) => p * v, 1));

function intsOf(ctx: { constants: Map<string, ConstantSource>; model: OnnxModel }, name: string | undefined): number[] | null {
  if (!name) return null;
  const c = ctx.constants.get(name);
  if (!c) return null;
  try {
    return Array.from(readTensorTyped(c.tensor, ctx.model.external) as ArrayLike<number | bigint>, Number);
  } catch {
    return null;
  }
}

function analyse(model: OnnxModel, dimsIn: Record<string, number>): Analysis {
  const graph = model.graph;
  const names = uniqueLayerNames(graph.node);
  const nameOf = new Map<NodeProto, string>(graph.node.map((n, i) => [n, names[i]]));
  const constants = constantTensors(graph);
  if (Number(model.proto.irVersion ?? 0n) >= 4) for (const i of graph.input) if (i.name) constants.delete(i.name);
  const shapes = inferShapes(graph, constants, model.external, dimsIn);
  const opset = defaultOpset(model.proto);
  const atoms = new Atoms();
  const spaces = new Map<string, Space>();
  const linear: LinearEdit[] = [];
  const params: ParamEdit[] = [];
  const reshapes: ReshapeEdit[] = [];
  const activations = new Set<string>();
  const ctx = { constants, model };
  const isFloatConst = (name: string | undefined) => {
    const c = name ? constants.get(name) : undefined;
    return !!c && FLOATS.has(c.tensor.dataType ?? 0);
  };
  const shapeOf = (name: string): Shape | null => shapes.get(name) ?? null;
  const usedOutputs = new Set<string>();
  for (const n of graph.node) for (const i of n.input) if (i) usedOutputs.add(i);
  for (const o of graph.output) if (o.name) usedOutputs.add(o.name);

  for (const node of graph.node) {
    const layer = nameOf.get(node)!;
    const op = node.opType ?? '';
    const tracked = node.input.map((i) => (i ? spaces.get(i) : undefined));
    const blockInputs = (why: string) => {
      for (const s of tracked) if (s) atoms.block(s.map, why);
    };
    const set = (value: string | undefined, s: Omit<Space, 'value'>) => {
      if (value) spaces.set(value, { ...s, value });
    };
    const same = (k = 0, out = 0) => {
      const s = tracked[k];
      if (s) set(node.output[out], { map: s.map, axis: s.axis, rank: s.rank });
    };
    if (!tracked.some((s) => s) && !['Conv', 'ConvTranspose', 'Gemm', 'MatMul'].includes(op)) continue;
    if (!isDefaultDomain(node.domain)) {
      blockInputs(`read by ${layer} (${node.domain}.${op}), an op pruning does not know`);
      continue;
    }
    if (node.attribute.some((a) => a.g || a.graphs.length)) {
      blockInputs(`read by ${layer} (${op}) with subgraphs`);
      continue;
    }
    if (ACTIVATIONS.has(op) && node.output[0]) activations.add(node.output[0]);
    const x = tracked[0];
    switch (op) {
      case 'Conv':
      case 'ConvTranspose': {
        const wT = constants.get(node.input[1]);
        const okW = isFloatConst(node.input[1]) && (!node.input[2] || isFloatConst(node.input[2]));
        if (!okW || !wT) {
          blockInputs(`${layer} has no constant float weights`);
          break;
        }
        const w = tensorDims(wT.tensor);
        const group = attrInt(node, 'group', 1);
        if (op === 'ConvTranspose') {
          if (group !== 1) {
            blockInputs(`${layer} is a grouped ConvTranspose (group ${group})`);
            break;
          }
          let input: Space | null = null;
          if (x) {
            if (x.axis === 1 && x.map.length === w[0]) input = x;
            else atoms.block(x.map, `${layer} reads them on an unexpected axis`);
          }
          const out = { value: node.output[0], map: atoms.fresh(w[1], node), axis: 1, rank: w.length };
          spaces.set(out.value, out);
          linear.push({ node, kind: 'convT', input, output: out });
          break;
        }
        if (group === 1) {
          let input: Space | null = null;
          if (x) {
            if (x.axis === 1 && x.map.length === w[1]) input = x;
            else atoms.block(x.map, `${layer} reads them on an unexpected axis`);
          }
          const out = { value: node.output[0], map: atoms.fresh(w[0], node), axis: 1, rank: w.length };
          spaces.set(out.value, out);
          linear.push({ node, kind: 'conv', input, output: out });
        } else if (x && x.axis === 1 && group === x.map.length && w[1] === 1 && w[0] % group === 0) {
          // depthwise (any channel multiplier): output channel c * m + k comes from input channel c
          const out = { value: node.output[0], map: repeatMap(x.map, w[0] / group), axis: 1, rank: w.length };
          spaces.set(out.value, out);
          linear.push({ node, kind: 'depthwise', input: x, output: out });
        } else blockInputs(`${layer} is a grouped convolution (group ${group}): its groups would become unequal`);
        break;
      }
      case 'Gemm': {
        const bT = constants.get(node.input[1]);
        if (!bT || !isFloatConst(node.input[1]) || (node.input[2] && !isFloatConst(node.input[2])) || attrInt(node, 'transA', 0) !== 0) {
          blockInputs(`${layer} (Gemm) has no constant float weights or transposes its input`);
          break;
        }
        const b = tensorDims(bT.tensor);
        if (b.length !== 2) {
          blockInputs(`${layer} (Gemm) has a weight of rank ${b.length}`);
          break;
        }
        const transB = attrInt(node, 'transB', 0) === 1;
        const K = transB ? b[1] : b[0];
        const N = transB ? b[0] : b[1];
        let input: Space | null = null;
        if (x) {
          if (x.rank === 2 && x.axis === 1 && x.map.length === K) input = x;
          else atoms.block(x.map, `${layer} (Gemm) reads them on an unexpected axis`);
        }
        const out = { value: node.output[0], map: atoms.fresh(N, node), axis: 1, rank: 2 };
        spaces.set(out.value, out);
        linear.push({ node, kind: 'gemm', input, output: out });
        break;
      }
      case 'MatMul': {
        const bT = constants.get(node.input[1]);
        const b = bT ? tensorDims(bT.tensor) : null;
        if (!bT || !b || b.length !== 2 || !isFloatConst(node.input[1]) || tracked[1]) {
          blockInputs(`${layer} (MatMul) has no constant 2-D float weight`);
          break;
        }
        const xs = shapeOf(node.input[0]);
        if (!xs || xs.length < 2) {
          blockInputs(`${layer} (MatMul) input rank is unknown or 1`);
          break;
        }
        let input: Space | null = null;
        if (x) {
          if (x.axis === x.rank - 1 && x.map.length === b[0]) input = x;
          else atoms.block(x.map, `${layer} (MatMul) contracts another axis than their channel axis`);
        }
        const out = { value: node.output[0], map: atoms.fresh(b[1], node), axis: xs.length - 1, rank: xs.length };
        spaces.set(out.value, out);
        linear.push({ node, kind: 'matmul', input, output: out });
        break;
      }
      case 'BatchNormalization':
      case 'InstanceNormalization': {
        const slots = op === 'BatchNormalization' ? [1, 2, 3, 4] : [1, 2];
        const training = attrInt(node, 'training_mode', 0) === 1 || node.output.slice(1).some((o) => o && usedOutputs.has(o));
        if (!x || x.axis !== 1 || training || !slots.every((k) => isFloatConst(node.input[k]))) {
          blockInputs(`${layer} (${op}) is in training mode, has non-constant parameters or another channel axis`);
          break;
        }
        const out: Space = { value: node.output[0], map: x.map, axis: 1, rank: x.rank };
        spaces.set(out.value, out);
        for (const k of slots) params.push({ node, slot: k, space: out, constAxis: 0 });
        break;
      }
      case 'Dropout':
        if (node.output[1] && usedOutputs.has(node.output[1])) blockInputs(`${layer} (Dropout) has its mask output used`);
        else same();
        break;
      case 'Clip':
        if ([1, 2].some((k) => node.input[k] && !constants.has(node.input[k]))) blockInputs(`${layer} (Clip) has computed bounds`);
        else same();
        break;
      case 'Softmax':
      case 'LogSoftmax':
      case 'Hardmax': {
        if (!x) break;
        let axis = attrInt(node, 'axis', opset >= 13 ? -1 : 1);
        if (axis < 0) axis += x.rank;
        // before opset 13 the input is coerced to 2-D at `axis`: everything from it on is normalized together
        if (opset < 13 ? x.axis >= axis : x.axis === axis) blockInputs(`${layer} (${op}) normalizes across the channels`);
        else same();
        break;
      }
      case 'Pad': {
        if (!x) break;
        const pads = attrInts(node, 'pads') ?? intsOf(ctx, node.input[1]);
        if (!pads || node.input[3] || pads.length !== 2 * x.rank || pads[x.axis] !== 0 || pads[x.axis + x.rank] !== 0) blockInputs(`${layer} (Pad) pads the channel axis or has computed pads`);
        else same();
        break;
      }
      case 'Resize':
      case 'Upsample': {
        if (!x) break;
        // Resize takes scales as input 1 in opset 10, input 2 (after roi) from opset 11; Upsample as input 1
        const scalesName = op === 'Resize' && opset >= 11 ? node.input[2] : node.input[1];
        const a = attr(node, 'scales');
        const scales = a && a.floats.length ? a.floats : scalesName ? (constants.get(scalesName) ? Array.from(readTensorTyped(constants.get(scalesName)!.tensor, model.external) as Float32Array) : null) : null;
        if ((op === 'Resize' && opset >= 11 && node.input[3]) || !scales || scales[x.axis] !== 1) blockInputs(`${layer} (${op}) resizes with target sizes or a channel scale`);
        else same();
        break;
      }
      case 'Flatten': {
        if (!x) break;
        let fa = attrInt(node, 'axis', 1);
        if (fa < 0) fa += x.rank;
        const xs = shapeOf(node.input[0]);
        const tail = xs ? prodOf(xs.slice(x.axis + 1)) : null;
        if (fa !== x.axis || tail === null) {
          blockInputs(`${layer} (Flatten) merges the channels with another axis`);
          break;
        }
        set(node.output[0], { map: repeatMap(x.map, tail), axis: 1, rank: 2 });
        break;
      }
      case 'Reshape': {
        if (!x) break;
        const xs = shapeOf(node.input[0]);
        const ys = shapeOf(node.output[0]);
        const target = intsOf(ctx, node.input[1]);
        const C = x.map.length;
        if (!xs || !ys || !target || xs.includes(null) || ys.includes(null) || target.length !== ys.length) {
          blockInputs(`${layer} (Reshape) has a computed or unknown target shape`);
          break;
        }
        // channel c of the input is one contiguous block of `tail` elements; in the output it must cover
        // S whole consecutive entries of one axis b (the same number of elements before that axis)
        const before = prodOf(xs.slice(0, x.axis))!;
        const tail = prodOf(xs.slice(x.axis + 1))!;
        let b = -1;
        let acc = 1;
        for (let k = 0; k < ys.length && acc <= before; k++) {
          const d = ys[k] as number;
          if (acc === before && d % C === 0 && d * prodOf(ys.slice(k + 1))! === C * tail) {
            b = k;
            break;
          }
          acc *= d;
        }
        const S = b >= 0 ? (ys[b] as number) / C : 0;
        // a 0 in the target copies the input dim: right only where that dim is the channel dim itself
        if (b < 0 || (target[b] === 0 && !(b === x.axis && S === 1))) {
          blockInputs(`${layer} (Reshape) splits or merges the channels in a way pruning does not follow`);
          break;
        }
        const t = target[b];
        const out: Space = { value: node.output[0], map: repeatMap(x.map, S), axis: b, rank: ys.length };
        spaces.set(out.value, out);
        if (t > 0) reshapes.push({ node, output: out, index: b });
        break;
      }
      case 'Squeeze':
      case 'Unsqueeze': {
        if (!x) break;
        const axes = attrInts(node, 'axes') ?? intsOf(ctx, node.input[1]);
        const ys = shapeOf(node.output[0]);
        if (!axes || !ys) {
          blockInputs(`${layer} (${op}) has computed axes`);
          break;
        }
        if (op === 'Squeeze') {
          const norm = axes.map((a) => (a < 0 ? a + x.rank : a));
          if (norm.includes(x.axis)) {
            blockInputs(`${layer} (Squeeze) removes the channel axis`);
            break;
          }
          set(node.output[0], { map: x.map, axis: x.axis - norm.filter((a) => a < x.axis).length, rank: ys.length });
        } else {
          const rank = ys.length;
          const norm = new Set(axes.map((a) => (a < 0 ? a + rank : a)));
          let k = 0;
          let axis = -1;
          for (let i = 0; i < rank; i++) {
            if (norm.has(i)) continue;
            if (k === x.axis) axis = i;
            k++;
          }
          set(node.output[0], { map: x.map, axis, rank });
        }
        break;
      }
      case 'Transpose': {
        if (!x) break;
        const perm = attrInts(node, 'perm') ?? Array.from({ length: x.rank }, (_, i) => x.rank - 1 - i);
        set(node.output[0], { map: x.map, axis: perm.indexOf(x.axis), rank: x.rank });
        break;
      }
      case 'Concat': {
        const ys = shapeOf(node.output[0]);
        if (!ys) {
          blockInputs(`${layer} (Concat) output shape is unknown`);
          break;
        }
        let axis = attrInt(node, 'axis', 0);
        if (axis < 0) axis += ys.length;
        const live = tracked.filter((s): s is Space => !!s);
        if (live.some((s) => s.rank !== ys.length || s.axis !== live[0].axis)) {
          blockInputs(`${layer} (Concat) joins tensors with different channel axes`);
          break;
        }
        const chAxis = live[0].axis;
        if (axis === chAxis) {
          const parts: Int32Array[] = [];
          let ok = true;
          node.input.forEach((name, k) => {
            const s = tracked[k];
            if (s) parts.push(s.map);
            else {
              const d = shapeOf(name)?.[axis];
              if (typeof d !== 'number') ok = false;
              else {
                const fixed = atoms.fresh(d, null);
                atoms.block(fixed, `a constant or untracked input of ${layer} (Concat)`);
                parts.push(fixed);
              }
            }
          });
          if (!ok) {
            blockInputs(`${layer} (Concat) has inputs of unknown size`);
            break;
          }
          const map = new Int32Array(parts.reduce((p, m) => p + m.length, 0));
          let off = 0;
          for (const m of parts) {
            map.set(m, off);
            off += m.length;
          }
          set(node.output[0], { map, axis: chAxis, rank: ys.length });
        } else {
          if (live.length !== node.input.filter((i) => i).length || live.some((s) => s.map.length !== live[0].map.length)) {
            blockInputs(`${layer} (Concat) joins them with tensors whose channels cannot be pruned`);
            break;
          }
          for (const s of live.slice(1)) for (let c = 0; c < s.map.length; c++) atoms.union(live[0].map[c], s.map[c]);
          set(node.output[0], { map: live[0].map, axis: chAxis, rank: ys.length });
        }
        break;
      }
      case 'Split': {
        if (!x) break;
        let axis = attrInt(node, 'axis', 0);
        if (axis < 0) axis += x.rank;
        if (axis === x.axis) blockInputs(`${layer} (Split) splits the channels`);
        else for (let k = 0; k < node.output.length; k++) same(0, k);
        break;
      }
      case 'Slice': {
        if (!x) break;
        const fromAttr = attrInts(node, 'starts');
        const starts = fromAttr ?? intsOf(ctx, node.input[1]);
        const axes = fromAttr ? attrInts(node, 'axes') : node.input[3] ? intsOf(ctx, node.input[3]) : undefined;
        const norm = starts && axes !== null ? (axes ?? starts.map((_, i) => i)).map((a) => (a < 0 ? a + x.rank : a)) : null;
        if (!norm || norm.includes(x.axis)) blockInputs(`${layer} (Slice) slices the channel axis or has computed axes`);
        else same();
        break;
      }
      case 'Shape': {
        if (!x) break;
        const clamp = (v: number) => Math.min(Math.max(v < 0 ? v + x.rank : v, 0), x.rank);
        const start = clamp(attrInt(node, 'start', 0));
        const end = clamp(attrInt(node, 'end', x.rank));
        if (x.axis >= start && x.axis < end) blockInputs(`read by ${layer} (Shape): the channel count is used as a value`);
        break;
      }
      default: {
        if (POOLS.has(op)) {
          if (!x || x.axis !== 1) blockInputs(`${layer} (${op}) pools another axis`);
          else if (node.output[1] && usedOutputs.has(node.output[1])) blockInputs(`${layer} (${op}) has its indices output used`);
          else same();
          break;
        }
        if (REDUCES.has(op)) {
          if (!x) break;
          const axes = attrInts(node, 'axes') ?? intsOf(ctx, node.input[1]);
          const keep = attrInt(node, 'keepdims', 1) === 1;
          const norm = axes?.map((a) => (a < 0 ? a + x.rank : a));
          if (!norm || norm.length === 0 || norm.includes(x.axis) || tracked.slice(1).some((s) => s)) {
            blockInputs(`${layer} (${op}) reduces over the channels`);
            break;
          }
          set(node.output[0], { map: x.map, axis: keep ? x.axis : x.axis - norm.filter((a) => a < x.axis).length, rank: keep ? x.rank : x.rank - norm.length });
          break;
        }
        if (UNARY.has(op)) {
          if (tracked.slice(1).some((s) => s)) blockInputs(`${layer} (${op}) has channel-indexed extra inputs`);
          else same();
          break;
        }
        if (BINARY.has(op)) {
          binary(node, layer);
          break;
        }
        blockInputs(`read by ${layer} (${op}), an op pruning does not handle`);
      }
    }
    if (op === 'LRN') blockInputs(`${layer} (LRN) mixes neighbouring channels`);
  }

  function binary(node: NodeProto, layer: string): void {
    const tracked = node.input.map((i) => (i ? spaces.get(i) : undefined));
    const live = tracked.filter((s): s is Space => !!s);
    const ys = shapes.get(node.output[0]) ?? null;
    const blockAll = (why: string) => {
      for (const s of live) atoms.block(s.map, why);
    };
    if (!ys) {
      blockAll(`${layer} (${node.opType}) output shape is unknown`);
      return;
    }
    const r = ys.length;
    const aligned = live.map((s) => s.axis + (r - s.rank));
    if (aligned.some((a) => a !== aligned[0])) {
      blockAll(`${layer} (${node.opType}) combines tensors with different channel axes`);
      return;
    }
    const axis = aligned[0];
    const C = ys[axis];
    if (typeof C !== 'number') {
      blockAll(`${layer} (${node.opType}) channel count is unknown`);
      return;
    }
    const full = live.filter((s) => s.map.length === C);
    if (live.some((s) => s.map.length !== C && s.map.length !== 1)) {
      blockAll(`${layer} (${node.opType}) combines tensors with different channel counts`);
      return;
    }
    let ok = true;
    const paramSlots: { slot: number; constAxis: number }[] = [];
    node.input.forEach((name, k) => {
      if (!name || tracked[k]) return;
      const s = shapes.get(name) ?? null;
      const kAxis = s ? axis - (r - s.length) : -1;
      const d = s && kAxis >= 0 ? s[kAxis] : 1;
      if (d === 1) return;
      if (constants.has(name) && d === C && FLOATS.has(constants.get(name)!.tensor.dataType ?? 0)) paramSlots.push({ slot: k, constAxis: kAxis });
      else ok = false;
    });
    if (!ok) {
      blockAll(`${layer} (${node.opType}) combines them with a tensor whose channels cannot be pruned`);
      return;
    }
    if (full.length === 0) return; // only broadcast (1-channel) inputs are tracked: the output is not
    for (const s of full.slice(1)) for (let c = 0; c < C; c++) atoms.union(full[0].map[c], s.map[c]);
    const out: Space = { value: node.output[0], map: full[0].map, axis, rank: r };
    spaces.set(out.value, out);
    for (const p of paramSlots) params.push({ node, slot: p.slot, space: out, constAxis: p.constAxis });
  }

  // what leaves the graph cannot change shape; what a subgraph reads from outside neither
  for (const o of graph.output) {
    const s = o.name ? spaces.get(o.name) : undefined;
    if (s) atoms.block(s.map, `reaches the graph output ${o.name}`);
  }
  for (const n of graph.node) {
    for (const a of n.attribute) {
      for (const g of a.g ? [a.g, ...a.graphs] : a.graphs) {
        for (const name of referencedNames(g)) {
          const s = spaces.get(name);
          if (s) atoms.block(s.map, `read inside a subgraph of ${nameOf.get(n)}`);
        }
      }
    }
  }
  return { atoms, spaces, linear, params, reshapes, nameOf, constants, activations };
}

// ---------------------------------------------------------------- classes, scores, selection

interface ChannelClass {
  root: number;
  blocked: string | null;
  creators: Creator[];
  /** sorted names of the layers creating its atoms: the group key */
  key: string;
  score: number;
  eligible: boolean;
  /** why not eligible (for the report) */
  why?: string;
}

interface ConsumerRef {
  edit: LinearEdit;
  /** input channel positions of this class */
  positions: number[];
}

function padded(node: NodeProto): boolean {
  const pads = attrInts(node, 'pads');
  const autoPad = attrString(node, 'auto_pad') ?? 'NOTSET';
  return (autoPad !== 'NOTSET' && autoPad !== 'VALID') || (!!pads && pads.some((p) => p !== 0));
}

/** the per-channel statistics a probe holds for a tensor on a given axis */
function statsFor(probe: ProbeReport | null, value: string, axis: number): ProbeLayerReport | null {
  if (!probe) return null;
  for (const l of [...(probe.values ?? []), ...probe.layers]) if (l.output === value && l.channel_axis === axis) return l;
  return null;
}

function rowNorms(edit: LinearEdit, ed: GraphEditor, p: 1 | 2): Float64Array {
  const node = edit.node;
  const w = ed.read(node.input[1]);
  const d = tensorDims(ed.tensor(node.input[1]));
  const M = edit.output.map.length;
  const out = new Float64Array(M);
  const add = (o: number, v: number) => (out[o] += p === 1 ? Math.abs(v) : v * v);
  switch (edit.kind) {
    case 'conv':
    case 'depthwise': {
      const inner = w.length / d[0];
      for (let o = 0; o < d[0]; o++) for (let i = 0; i < inner; i++) add(o, w[o * inner + i]);
      break;
    }
    case 'convT': {
      const inner = d.slice(2).reduce((a, b) => a * b, 1);
      for (let c = 0; c < d[0]; c++) for (let o = 0; o < d[1]; o++) for (let i = 0; i < inner; i++) add(o, w[(c * d[1] + o) * inner + i]);
      break;
    }
    default: {
      const transB = edit.kind === 'gemm' && attrInt(node, 'transB', 0) === 1;
      const [R, Cc] = d;
      for (let r = 0; r < R; r++) for (let c = 0; c < Cc; c++) add(transB ? r : c, w[r * Cc + c]);
    }
  }
  if (p === 2) for (let o = 0; o < M; o++) out[o] = Math.sqrt(out[o]);
  return out;
}

// ---------------------------------------------------------------- the public functions

function validate(opts: PruneOptions): void {
  const crits: PruneCriterion[] = ['dead', 'l1', 'l2', 'bn-gamma', 'apoz'];
  if (!crits.includes(opts.criterion)) throw new ModelError(`unknown pruning criterion '${opts.criterion}' (one of ${crits.join(', ')})`);
  if (opts.ratio !== undefined && !(opts.ratio >= 0 && opts.ratio < 1)) throw new ModelError(`pruning ratio ${opts.ratio} must be in [0, 1)`);
  if (opts.criterion !== 'dead' && opts.ratio === undefined && opts.threshold === undefined) {
    throw new ModelError(`criterion '${opts.criterion}' needs a ratio (fraction of channels to remove) or a threshold`);
  }
  if (opts.scope && opts.scope !== 'layer' && opts.scope !== 'global') throw new ModelError(`pruning scope '${opts.scope}' must be 'layer' or 'global'`);
}

interface Planned {
  plan: PrunePlan;
  analysis: Analysis;
  removedRoots: Set<number>;
  /** per consumer edit: the constant (or mean) of each removed input position, 0 when unknown */
  fills: Map<LinearEdit, Float64Array>;
  probe: ProbeReport | null;
}

async function makePlan(model: OnnxModel, opts: PruneOptions): Promise<Planned> {
  validate(opts);
  const dims = opts.dims ?? {};
  const an = analyse(model, dims);
  const { atoms, linear, params } = an;
  const ed = new GraphEditor(model, model.graph);
  const name = (n: NodeProto) => an.nameOf.get(n) ?? n.name ?? n.opType ?? '?';

  // classes
  const classes = new Map<number, ChannelClass>();
  const classOf = (atom: number): ChannelClass => {
    const root = atoms.find(atom);
    let c = classes.get(root);
    if (!c) {
      c = { root, blocked: null, creators: [], key: '', score: 0, eligible: true };
      classes.set(root, c);
    }
    return c;
  };
  for (let a = 0; a < atoms.parent.length; a++) {
    const c = classOf(a);
    if (atoms.blocked[a] !== null && c.blocked === null) c.blocked = atoms.blocked[a];
    const cr = atoms.creator[a];
    if (cr) c.creators.push(cr);
  }
  for (const c of classes.values()) c.key = [...new Set(c.creators.map((x) => name(x.node)))].sort().join(' + ');
  const restrict = opts.layers ? new Set(opts.layers) : null;
  if (restrict) {
    const known = new Set([...an.nameOf.values()]);
    for (const l of restrict) if (!known.has(l)) throw new ModelError(`no layer named '${l}'`);
    for (const c of classes.values()) if (!c.creators.some((x) => restrict.has(name(x.node)))) c.blocked ??= 'not among the layers selected for pruning';
  }

  // consumer references per class
  const refs = new Map<number, ConsumerRef[]>();
  for (const e of linear) {
    if (!e.input || e.kind === 'depthwise') continue;
    const byRoot = new Map<number, number[]>();
    e.input.map.forEach((a, j) => {
      const r = atoms.find(a);
      const list = byRoot.get(r);
      if (list) list.push(j);
      else byRoot.set(r, [j]);
    });
    for (const [r, positions] of byRoot) {
      const list = refs.get(r);
      if (list) list.push({ edit: e, positions });
      else refs.set(r, [{ edit: e, positions }]);
    }
  }

  // probing: the consumers' inputs (constants to fold), activation outputs (APoZ)
  const criterion = opts.criterion;
  const liveClasses = [...classes.values()].filter((c) => !c.blocked);
  const needObservations = criterion === 'dead' || (opts.compensate ?? true);
  const needed = new Map<string, number>();
  if (needObservations && liveClasses.length) {
    for (const c of liveClasses) for (const ref of refs.get(c.root) ?? []) needed.set(ref.edit.input!.value, ref.edit.input!.axis);
  }
  if (criterion === 'apoz') {
    for (const v of an.activations) {
      const s = an.spaces.get(v);
      if (s && [...s.map].some((a) => !classOf(a).blocked)) needed.set(v, s.axis);
    }
  }
  let probe = opts.probe ?? null;
  const missing = [...needed].filter(([v, axis]) => !statsFor(probe, v, axis));
  const mustProbe = criterion === 'dead' || criterion === 'apoz' || opts.inputs !== undefined || opts.compensate === true;
  if (missing.length && mustProbe) {
    const ran = await probeOnnx(model, opts.inputs ?? { kind: 'random' }, {
      samples: opts.samples,
      batchSize: opts.batchSize,
      dims,
      layers: [],
      values: missing.map(([v, axis]) => ({ name: v, axis })),
      signal: opts.signal,
    });
    probe = probe ? { ...probe, values: [...(probe.values ?? []), ...(ran.values ?? [])] } : ran;
  }
  const observed = (v: string, axis: number) => statsFor(probe, v, axis);

  // eligibility and scores
  const norms = new Map<LinearEdit, Float64Array>();
  const normOf = (e: LinearEdit) => {
    let n = norms.get(e);
    if (!n) norms.set(e, (n = rowNorms(e, ed, criterion === 'l2' ? 2 : 1)));
    return n;
  };
  if (criterion === 'l1' || criterion === 'l2') {
    for (const e of linear) {
      const n = normOf(e);
      e.output.map.forEach((a, o) => (classOf(a).score += n[o]));
    }
  } else if (criterion === 'bn-gamma') {
    const seen = new Set<number>();
    for (const p of params) {
      if (p.node.opType !== 'BatchNormalization' || p.slot !== 1) continue;
      const g = ed.read(p.node.input[1]);
      p.space.map.forEach((a, j) => {
        const c = classOf(a);
        c.score = seen.has(c.root) ? Math.max(c.score, Math.abs(g[j])) : Math.abs(g[j]);
        seen.add(c.root);
      });
    }
    for (const c of liveClasses) if (!seen.has(c.root)) reject(c, 'no BatchNorm scales these channels');
  } else if (criterion === 'apoz') {
    const seen = new Set<number>();
    for (const v of an.activations) {
      const s = an.spaces.get(v);
      const st = s ? observed(v, s.axis) : null;
      if (!s || !st) continue;
      s.map.forEach((a, j) => {
        const c = classOf(a);
        // score ascending = removed first: the negated smallest APoZ over the class's activations
        c.score = seen.has(c.root) ? Math.max(c.score, -st.apoz[j]) : -st.apoz[j];
        seen.add(c.root);
      });
    }
    for (const c of liveClasses) if (!seen.has(c.root)) reject(c, 'no probed activation carries these channels');
  }

  // constants at the consumers: exactness for 'dead', compensation otherwise
  const fillValue = new Map<LinearEdit, Float64Array>();
  const fillOf = (e: LinearEdit) => {
    let f = fillValue.get(e);
    if (!f) fillValue.set(e, (f = new Float64Array(e.input!.map.length)));
    return f;
  };
  for (const c of liveClasses) {
    for (const ref of refs.get(c.root) ?? []) {
      const e = ref.edit;
      const st = observed(e.input!.value, e.input!.axis);
      for (const j of ref.positions) {
        const constant = !!st && st.count > 0 && st.min[j] === st.max[j];
        const value = !st ? 0 : constant ? st.min[j] : (opts.compensate ?? true) ? st.mean[j] : 0;
        if (criterion === 'dead') {
          if (!constant) {
            reject(c, st ? `varies at the input of ${name(e.node)}` : `not probed at the input of ${name(e.node)}`);
            continue;
          }
          if (value !== 0 && (e.kind === 'convT' || (e.kind === 'conv' && padded(e.node)))) {
            reject(c, `constant ${value} at the input of ${name(e.node)}, which pads with zeros: folding it would be exact only inside the image`);
            continue;
          }
        }
        if (e.kind === 'convT') continue; // no bias compensation through a transposed convolution
        fillOf(e)[j] = value;
      }
    }
  }

  // selection
  const scope = opts.scope ?? 'layer';
  const groups = new Map<string, ChannelClass[]>();
  for (const c of classes.values()) {
    if (!c.key) continue;
    const list = groups.get(c.key);
    if (list) list.push(c);
    else groups.set(c.key, [c]);
  }
  const selected = new Set<number>();
  const candidates = (list: ChannelClass[]) => list.filter((c) => !c.blocked && c.eligible);
  if (criterion === 'dead') {
    for (const list of groups.values()) for (const c of candidates(list)) selected.add(c.root);
  } else if (opts.threshold !== undefined) {
    const t = opts.threshold;
    for (const list of groups.values()) for (const c of candidates(list)) if (criterion === 'apoz' ? -c.score >= t : c.score <= t) selected.add(c.root);
  } else {
    const ratio = opts.ratio ?? 0;
    if (scope === 'layer') {
      for (const list of groups.values()) {
        const n = Math.floor(ratio * list.length);
        candidates(list)
          .sort((a, b) => a.score - b.score)
          .slice(0, n)
          .forEach((c) => selected.add(c.root));
      }
    } else {
      const pool: { c: ChannelClass; s: number }[] = [];
      let total = 0;
      for (const list of groups.values()) {
        const cand = candidates(list);
        if (!cand.length) continue;
        total += list.length;
        // weight norms differ in scale from layer to layer: compare them relative to their group's mean
        const mean = cand.reduce((p, c) => p + c.score, 0) / cand.length;
        for (const c of cand) pool.push({ c, s: criterion === 'l1' || criterion === 'l2' ? (mean > 0 ? c.score / mean : 0) : c.score });
      }
      pool.sort((a, b) => a.s - b.s);
      pool.slice(0, Math.floor(ratio * total)).forEach((p) => selected.add(p.c.root));
    }
  }
  // never empty a tensor: keep the best-scoring channel of any tensor that would lose all of them
  for (let changed = true; changed; ) {
    changed = false;
    for (const s of an.spaces.values()) {
      if (s.map.length === 0) continue;
      let all = true;
      for (const a of s.map) if (!selected.has(atoms.find(a))) all = false;
      if (!all) continue;
      let best: ChannelClass | null = null;
      for (const a of s.map) {
        const c = classOf(a);
        if (!best || c.score > best.score) best = c;
      }
      selected.delete(best!.root);
      best!.why = `kept so that ${s.value} keeps at least one channel`;
      changed = true;
    }
  }

  // report
  const groupReports: PruneGroup[] = [];
  const skipped: SkippedCandidate[] = [];
  for (const [key, list] of groups) {
    const firstName = key.split(' + ')[0];
    const removed = list
      .filter((c) => selected.has(c.root))
      .map((c) => c.creators.find((x) => name(x.node) === firstName)?.row ?? -1)
      .sort((a, b) => a - b);
    const prunable = list.filter((c) => !c.blocked).length;
    const g: PruneGroup = { layers: key.split(' + '), channels: list.length, prunable, removed };
    if (prunable === 0) {
      g.reason = list[0].blocked ?? 'blocked';
      skipped.push({ layer: key, reason: g.reason });
    } else if (criterion === 'dead' && removed.length < prunable) {
      const why = list.find((c) => !c.blocked && !selected.has(c.root) && c.why)?.why;
      if (why && removed.length === 0) g.reason = why;
    } else if (removed.length === 0) {
      const why = list.find((c) => !c.blocked && !c.eligible)?.why;
      if (why) g.reason = why;
    }
    groupReports.push(g);
  }
  const removedRoots = selected;
  const removedPerLayer: Record<string, number> = {};
  const consumers: PrunePlan['consumers'] = [];
  const keepOf = (s: Space) => keepMask(s, atoms, removedRoots);
  const fills = new Map<LinearEdit, Float64Array>();
  for (const e of linear) {
    const outKeep = keepOf(e.output);
    const lost = outKeep ? outKeep.reduce((p, k) => p + (k ? 0 : 1), 0) : 0;
    if (lost) removedPerLayer[name(e.node)] = lost;
    if (e.input && e.kind !== 'depthwise') {
      const inKeep = keepOf(e.input);
      if (inKeep) {
        const f = fillValue.get(e) ?? new Float64Array(e.input.map.length);
        const used = new Float64Array(e.input.map.length);
        let folded = 0;
        inKeep.forEach((k, j) => {
          if (!k && f[j] !== 0) {
            used[j] = f[j];
            folded++;
          }
        });
        fills.set(e, used);
        consumers.push({ layer: name(e.node), removed_inputs: inKeep.reduce((p, k) => p + (k ? 0 : 1), 0), folded_constants: folded });
      }
    }
  }
  const notes: string[] = [];
  if (criterion === 'dead') notes.push('dead/constant is measured on the probe inputs: pruning is exact on inputs like them, not a proof for every input');
  else if (probe && (opts.compensate ?? true)) notes.push('removed channels that are not constant have their probed mean folded into the next bias (a first-order correction): the outputs change, verify and fine-tune');
  else notes.push('removing channels by weight magnitude changes the outputs: verify the deviation and fine-tune');
  if (probe) notes.push(`probe: ${probe.samples} sample(s) of ${probe.source}`);
  const plan: PrunePlan = {
    criterion,
    scope,
    ratio: opts.ratio ?? null,
    threshold: opts.threshold ?? null,
    exact: criterion === 'dead',
    groups: groupReports,
    removed: removedPerLayer,
    consumers,
    skipped,
    notes,
  };
  return { plan, analysis: an, removedRoots, fills, probe };
}

/** marks a class not eligible, keeping the first reason */
function reject(c: ChannelClass, why: string): void {
  if (!c.eligible) return;
  c.eligible = false;
  c.why = why;
}

function keepMask(s: Space, atoms: Atoms, removed: Set<number>): Uint8Array | null {
  if (removed.size === 0) return null;
  let any = false;
  const keep = new Uint8Array(s.map.length);
  for (let j = 0; j < s.map.length; j++) {
    const k = removed.has(atoms.find(s.map[j])) ? 0 : 1;
    keep[j] = k;
    if (!k) any = true;
  }
  return any ? keep : null;
}

/**
 * Plans a structured pruning: dependency groups, what each criterion selects, what is blocked and why.
 * Probes the model (onnxruntime) when the criterion or bias compensation needs activation statistics.
 */
export async function planPrune(model: OnnxModel, opts: PruneOptions): Promise<PrunePlan> {
  return (await makePlan(model, opts)).plan;
}

/**
 * Plans and applies a structured pruning. Immutable: returns a new model sharing every untouched message and
 * tensor with the input. Verification (both models in onnxruntime on the same probe inputs) is the caller's:
 * compareOnInputs(original, result.model, opts.inputs) or verifyOnnx.
 */
export async function applyPrune(model: OnnxModel, opts: PruneOptions): Promise<PruneResult> {
  const t0 = performance.now();
  const planned = await makePlan(model, opts);
  const pruned = planned.removedRoots.size ? model.derive(rewrite(model, planned)) : model;
  const before = sizeOf(model, opts.dims ?? {});
  const after = pruned === model ? before : sizeOf(pruned, opts.dims ?? {});
  return {
    model: pruned,
    plan: planned.plan,
    removed: planned.plan.removed,
    probe: planned.probe,
    params_before: before.params,
    params_after: after.params,
    macs_before: before.macs,
    macs_after: after.macs,
    bytes_before: before.bytes,
    bytes_after: after.bytes,
    seconds: (performance.now() - t0) / 1000,
  };
}

/** parameters and bytes of the weights (initializers + Constant nodes), MACs of one inference */
export function sizeOf(model: OnnxModel, dims: Record<string, number> = {}): { params: number; bytes: number; macs: number | null } {
  let params = 0;
  let bytes = 0;
  const count = (t: TensorProto) => {
    params += t.dims.reduce((p, d) => p * Number(d), 1);
    bytes += tensorByteLength(t);
  };
  model.graph.initializer.forEach(count);
  for (const n of model.graph.node) {
    if (n.opType === 'Constant' && isDefaultDomain(n.domain)) {
      const t = n.attribute.find((a) => a.name === 'value')?.t;
      if (t) count(t);
    }
  }
  let macs: number | null = 0;
  for (const l of buildGraphView(model, dims).layers) macs = macs === null || l.macs === null ? null : macs + l.macs;
  return { params, bytes, macs };
}

// ---------------------------------------------------------------- the rewrite

/** keeps the entries of `data` (shape `dims`) whose index on axis k has keep[k][i] set (null: all) */
export function sliceAxes(data: Float32Array, dims: number[], keeps: (Uint8Array | null)[]): { data: Float32Array; dims: number[] } {
  let cur = data;
  let curDims = [...dims];
  keeps.forEach((keep, axis) => {
    if (!keep) return;
    const outer = curDims.slice(0, axis).reduce((p, v) => p * v, 1);
    const size = curDims[axis];
    const inner = curDims.slice(axis + 1).reduce((p, v) => p * v, 1);
    const kept = keep.reduce((p, k) => p + k, 0);
    const out = new Float32Array(outer * kept * inner);
    let o = 0;
    for (let i = 0; i < outer; i++) {
      for (let c = 0; c < size; c++) {
        if (!keep[c]) continue;
        const start = (i * size + c) * inner;
        out.set(cur.subarray(start, start + inner), o);
        o += inner;
      }
    }
    cur = out;
    curDims = [...curDims.slice(0, axis), kept, ...curDims.slice(axis + 1)];
  });
  return { data: cur, dims: curDims };
}

function rewrite(model: OnnxModel, planned: Planned): ModelProto {
  const { analysis: an, removedRoots, fills } = planned;
  const { atoms } = an;
  const graph = model.graph;
  const ed = new GraphEditor(model, graph);
  const keepOf = (s: Space) => keepMask(s, atoms, removedRoots);
  const dropped = new Set<string>();
  const changedValues = new Set<string>();
  for (const s of an.spaces.values()) if (keepOf(s)) changedValues.add(s.value);
  const setWeight = (node: NodeProto, slot: number, data: Float32Array, shape: number[]) => {
    const cur = ed.current(node);
    const nameIn = cur.input[slot] ?? '';
    const like = nameIn ? ed.tensor(nameIn) : ed.tensor(cur.input[1]);
    return ed.setConstant(cur, slot, nameIn, data, shape, like);
  };

  for (const e of an.linear) {
    const outKeep = keepOf(e.output);
    const inKeep = e.input && e.kind !== 'depthwise' ? keepOf(e.input) : null;
    if (!outKeep && !inKeep) continue;
    const node = ed.current(e.node);
    const wName = node.input[1];
    const w = ed.read(wName);
    const wd = tensorDims(ed.tensor(wName));
    const fill = inKeep ? fills.get(e) ?? null : null;
    const M = e.output.map.length;
    // bias delta over the full output width from removed inputs that carried a constant
    let delta: Float64Array | null = null;
    if (fill && fill.some((v) => v !== 0)) {
      delta = new Float64Array(M);
      if (e.kind === 'conv') {
        const inner = wd.slice(2).reduce((p, v) => p * v, 1);
        for (let o = 0; o < M; o++) {
          for (let j = 0; j < wd[1]; j++) {
            if (fill[j] === 0) continue;
            let s = 0;
            const base = (o * wd[1] + j) * inner;
            for (let k = 0; k < inner; k++) s += w[base + k];
            delta[o] += fill[j] * s;
          }
        }
      } else {
        const transB = e.kind === 'gemm' && attrInt(node, 'transB', 0) === 1;
        const alpha = e.kind === 'gemm' ? attrFloat(node, 'alpha', 1) : 1;
        const K = transB ? wd[1] : wd[0];
        for (let j = 0; j < K; j++) {
          if (fill[j] === 0) continue;
          for (let o = 0; o < M; o++) delta[o] += alpha * fill[j] * (transB ? w[o * wd[1] + j] : w[j * wd[1] + o]);
        }
      }
    }
    let keeps: (Uint8Array | null)[];
    switch (e.kind) {
      case 'conv':
        keeps = [outKeep, inKeep];
        break;
      case 'depthwise':
        keeps = [outKeep];
        break;
      case 'convT':
        keeps = [inKeep, outKeep];
        break;
      case 'gemm':
        keeps = attrInt(node, 'transB', 0) === 1 ? [outKeep, inKeep] : [inKeep, outKeep];
        break;
      default:
        keeps = [inKeep, outKeep];
    }
    const nw = sliceAxes(w, wd, keeps);
    let cur = setWeight(node, 1, nw.data, nw.dims);
    // bias
    const biasSlot = e.kind === 'matmul' ? -1 : 2;
    if (biasSlot > 0) {
      const bName = cur.input[2];
      if (e.kind === 'gemm') {
        const beta = attrFloat(cur, 'beta', 1);
        if (bName) {
          const c = ed.read(bName);
          const cd = tensorDims(ed.tensor(bName));
          const perOut = cd.length > 0 && cd[cd.length - 1] === M && M > 1;
          if (delta || perOut) {
            let full: Float32Array;
            let fd: number[];
            if (perOut) {
              full = Float32Array.from(c);
              fd = cd;
            } else {
              // scalar / [1] / [m, 1] C broadcast to one value per output
              const rows = c.length;
              full = new Float32Array(rows * M);
              for (let r = 0; r < rows; r++) full.fill(c[r], r * M, (r + 1) * M);
              fd = cd.length >= 2 ? [...cd.slice(0, -1), M] : [M];
            }
            if (delta) {
              if (beta === 0) throw new ModelError(`${an.nameOf.get(e.node)}: Gemm with beta = 0 cannot absorb the removed inputs' constants`);
              for (let i = 0; i < full.length; i++) full[i] += delta[i % M] / beta;
            }
            const sliced = sliceAxes(full, fd, fd.map((_, k) => (k === fd.length - 1 ? outKeep : null)));
            cur = setWeight(cur, 2, sliced.data, sliced.dims);
          }
        } else if (delta) {
          const full = Float32Array.from(delta, (v) => v / (beta || 1));
          const sliced = sliceAxes(full, [M], [outKeep]);
          cur = ed.setConstant(cur, 2, '', sliced.data, sliced.dims, ed.tensor(cur.input[1]));
          if (beta === 0) cur = replaceAttrFloat(ed, cur, 'beta', 1);
        }
      } else if (bName || delta) {
        const b = bName ? Float32Array.from(ed.read(bName)) : new Float32Array(M);
        if (delta && e.kind !== 'convT') for (let o = 0; o < M; o++) b[o] += delta[o];
        const sliced = sliceAxes(b, [M], [outKeep]);
        cur = bName ? setWeight(cur, 2, sliced.data, sliced.dims) : ed.setConstant(cur, 2, '', sliced.data, sliced.dims, ed.tensor(cur.input[1]));
      }
    } else if (delta) {
      // MatMul: the folded constants become an Add after it
      const outName = cur.output[0];
      const mmOut = ed.freshName(`${outName}_matmul`);
      const biasName = ed.freshName(`${cur.name || outName}_pruned_bias`);
      const sliced = sliceAxes(Float32Array.from(delta), [M], [outKeep]);
      ed.initializers.push({ ...makeTensorLike(ed.tensor(cur.input[1]), sliced.data, sliced.dims), name: biasName });
      const mm: NodeProto = { ...cur, output: [mmOut, ...cur.output.slice(1)] };
      ed.replaceNode(cur, mm);
      const add: NodeProto = { input: [mmOut, biasName], output: [outName], name: ed.freshName(`${cur.name || outName}_bias_add`), opType: 'Add', attribute: [], metadataProps: [] };
      ed.nodes.splice(ed.nodes.indexOf(mm) + 1, 0, add);
      cur = mm;
    }
    if (e.kind === 'depthwise') {
      const kept = keepOf(e.input!);
      if (kept) cur = replaceAttrInt(ed, cur, 'group', kept.reduce((p, k) => p + k, 0));
    }
    dropped.add(wName);
  }

  for (const p of an.params) {
    const keep = keepOf(p.space);
    if (!keep) continue;
    const node = ed.current(p.node);
    const cName = node.input[p.slot];
    const data = ed.read(cName);
    const d = tensorDims(ed.tensor(cName));
    const sliced = sliceAxes(data, d, d.map((_, k) => (k === p.constAxis ? keep : null)));
    setWeight(node, p.slot, sliced.data, sliced.dims);
    dropped.add(cName);
  }

  for (const r of an.reshapes) {
    const keep = keepOf(r.output);
    if (!keep) continue;
    const node = ed.current(r.node);
    const tName = node.input[1];
    const t = ed.tensor(tName);
    const vals = Array.from(readTensorTyped(t, model.external) as ArrayLike<number | bigint>, Number);
    vals[r.index] = keep.reduce((p, k) => p + k, 0);
    const fresh = ed.freshName(`${tName}_pruned`);
    ed.initializers.push({ name: fresh, dims: [BigInt(vals.length)], dataType: 7, int64Data: BigInt64Array.from(vals.map(BigInt)), externalData: [], metadataProps: [] });
    ed.replaceNode(node, { ...node, input: node.input.map((x, k) => (k === 1 ? fresh : x)) });
    dropped.add(tName);
  }

  // shapes of pruned tensors changed: their value_info would be wrong
  return ed.finish(dropped, changedValues);
}

function replaceAttrInt(ed: GraphEditor, node: NodeProto, nameA: string, value: number): NodeProto {
  const attribute = node.attribute.filter((a) => a.name !== nameA);
  attribute.push({ name: nameA, type: 2, i: BigInt(value), floats: [], ints: [], strings: [], tensors: [], graphs: [], sparseTensors: [], typeProtos: [] });
  const updated = { ...node, attribute };
  ed.replaceNode(node, updated);
  return updated;
}

function replaceAttrFloat(ed: GraphEditor, node: NodeProto, nameA: string, value: number): NodeProto {
  const attribute = node.attribute.filter((a) => a.name !== nameA);
  attribute.push({ name: nameA, type: 1, f: value, floats: [], ints: [], strings: [], tensors: [], graphs: [], sparseTensors: [], typeProtos: [] });
  const updated = { ...node, attribute };
  ed.replaceNode(node, updated);
  return updated;
}

