/**
 * Static shape inference for the common ONNX ops. A dim is a number when it is known for certain and null
 * otherwise; a whole shape is null when even the rank is unknown. Never a guess: ops it does not know give
 * null unless the file itself declares the shape in value_info / graph outputs.
 */
import type { GraphProto, NodeProto, ValueInfoProto } from './proto';
import { attr, attrFloat, attrInt, attrInts, attrString, type ConstantSource, dims, isDefaultDomain } from './model';
import { readTensorTyped, type ExternalDataResolver } from './tensor';

export type Shape = (number | null)[];

/** Shape of a declared value: static dims as numbers, symbolic dims resolved from `symbols` or null. */
export function declaredShape(vi: ValueInfoProto, symbols: Record<string, number>, symbolicDefault: number | null): Shape | null {
  const shape = vi.type?.tensorType?.shape;
  if (!shape) return null;
  return shape.dim.map((d) => {
    if (d.dimValue !== undefined) return Number(d.dimValue);
    if (d.dimParam !== undefined && d.dimParam in symbols) return symbols[d.dimParam];
    return symbolicDefault;
  });
}

export function inferShapes(
  graph: GraphProto,
  constants: Map<string, ConstantSource>,
  ext: ExternalDataResolver,
  symbols: Record<string, number> = {},
  /** shapes of graph inputs that replace the declared ones (null dims: unknown); e.g. a planner's input size */
  inputShapes: Record<string, Shape> = {},
): Map<string, Shape | null> {
  const shapes = new Map<string, Shape | null>();
  const declared = new Map<string, ValueInfoProto>();
  for (const vi of [...graph.valueInfo, ...graph.output]) if (vi.name) declared.set(vi.name, vi);
  for (const vi of graph.input) {
    if (!vi.name || constants.has(vi.name)) continue;
    const given = Object.prototype.hasOwnProperty.call(inputShapes, vi.name) ? inputShapes[vi.name] : undefined;
    shapes.set(vi.name, given ? [...given] : declaredShape(vi, symbols, 1));
  }
  for (const [name, c] of constants) shapes.set(name, dims(c.tensor));
  const overridden = Object.keys(inputShapes).length > 0;

  // small integer vectors computed from shapes (Shape -> Slice -> Concat -> Reshape chains of exporters)
  const values = new Map<string, number[]>();
  const intValues = (name: string | undefined): number[] | null => {
    if (!name) return null;
    const known = values.get(name);
    if (known) return known;
    const c = constants.get(name);
    if (!c) return null;
    try {
      const v = readTensorTyped(c.tensor, ext);
      return Array.from(v as ArrayLike<number | bigint>, (x) => Number(x));
    } catch {
      return null;
    }
  };

  for (const node of graph.node) {
    let out: (Shape | null)[] = [];
    try {
      out = isDefaultDomain(node.domain) ? inferNode(node, (n) => (n ? shapes.get(n) ?? null : null), intValues) : [];
    } catch {
      out = [];
    }
    if (isDefaultDomain(node.domain)) {
      const v = propagateValue(node, (n) => (n ? shapes.get(n) ?? null : null), intValues);
      if (v && node.output[0]) values.set(node.output[0], v);
    }
    node.output.forEach((name, i) => {
      if (!name || constants.has(name)) return;
      let s = out[i] ?? null;
      // declared shapes of intermediate values were written for the declared input shapes: not used when overridden
      if ((s === null || s.includes(null)) && !overridden) {
        const vi = declared.get(name);
        const d = vi ? declaredShape(vi, symbols, null) : null;
        if (d && (s === null || d.length === s.length)) s = s ? s.map((x, k) => x ?? d[k]) : d;
      }
      shapes.set(name, s);
    });
  }
  return shapes;
}

const SAME_SHAPE = new Set([
  'Relu', 'LeakyRelu', 'Selu', 'Elu', 'Celu', 'Gelu', 'Sigmoid', 'HardSigmoid', 'HardSwish', 'Tanh', 'Softmax',
  'LogSoftmax', 'Softplus', 'Softsign', 'Identity', 'Dropout', 'BatchNormalization', 'InstanceNormalization',
  'LayerNormalization', 'GroupNormalization', 'Clip', 'Neg', 'Abs', 'Exp', 'Log', 'Sqrt', 'Reciprocal', 'Erf',
  'Cast', 'PRelu', 'LRN', 'Mish', 'Floor', 'Ceil', 'Round', 'Sign', 'Not', 'ThresholdedRelu', 'Hardmax', 'Sin',
  'Cos', 'QuantizeLinear', 'DequantizeLinear',
]);
const BROADCAST = new Set(['Add', 'Sub', 'Mul', 'Div', 'Pow', 'Max', 'Min', 'Sum', 'Mean', 'Equal', 'Less', 'Greater',
  'And', 'Or', 'Xor', 'Where', 'PRelu', 'Mod', 'LessOrEqual', 'GreaterOrEqual']);

export function broadcast(shapes: (Shape | null)[]): Shape | null {
  if (shapes.some((s) => s === null)) return null;
  const rank = Math.max(...shapes.map((s) => (s as Shape).length));
  const out: Shape = [];
  for (let k = 0; k < rank; k++) {
    let d: number | null = 1;
    for (const s of shapes as Shape[]) {
      const v = s[s.length - rank + k];
      if (v === undefined || v === 1) continue;
      if (v === null) d = d === 1 ? null : d;
      else if (d === 1 || d === null) d = d === null ? null : v;
      else if (d !== v) return null;
    }
    out.push(d);
  }
  return out;
}

function convOut(inDim: number | null, k: number, stride: number, dilation: number, padBegin: number, padEnd: number): number | null {
  if (inDim === null) return null;
  return Math.floor((inDim + padBegin + padEnd - dilation * (k - 1) - 1) / stride) + 1;
}

function autoPadOut(inDim: number | null, stride: number): number | null {
  return inDim === null ? null : Math.ceil(inDim / stride);
}

function inferNode(
  node: NodeProto,
  shapeOf: (name: string | undefined) => Shape | null,
  intValues: (name: string | undefined) => number[] | null,
): (Shape | null)[] {
  const op = node.opType ?? '';
  const x = shapeOf(node.input[0]);
  /** ints from an attribute or from input `k`: undefined when neither is given, 'dynamic' when the input is computed */
  const listArg = (attrName: string, k: number): number[] | undefined | 'dynamic' => {
    const fromAttr = attrInts(node, attrName);
    if (fromAttr) return fromAttr;
    if (!node.input[k]) return undefined;
    return intValues(node.input[k]) ?? 'dynamic';
  };
  if (SAME_SHAPE.has(op)) {
    if (op === 'PRelu') return [broadcast([x, shapeOf(node.input[1])])];
    return [x, op === 'Dropout' ? x : null];
  }
  if (BROADCAST.has(op)) return [broadcast(node.input.map(shapeOf))];
  switch (op) {
    case 'Conv':
    case 'MaxPool':
    case 'AveragePool':
    case 'LpPool':
    case 'ConvInteger':
    case 'QLinearConv': {
      if (!x) return [null];
      const spatial = x.length - 2;
      const w = op.startsWith('Conv') || op === 'QLinearConv' ? shapeOf(node.input[op === 'QLinearConv' ? 3 : 1]) : null;
      const kernel = attrInts(node, 'kernel_shape') ?? (w ? (w.slice(2) as (number | null)[]) : null);
      if (!kernel || kernel.length !== spatial || kernel.includes(null)) return [null];
      const strides = attrInts(node, 'strides') ?? Array(spatial).fill(1);
      const dil = attrInts(node, 'dilations') ?? Array(spatial).fill(1);
      const pads = attrInts(node, 'pads') ?? Array(spatial * 2).fill(0);
      const autoPad = attrString(node, 'auto_pad') ?? 'NOTSET';
      const ceil = attrInt(node, 'ceil_mode', 0) === 1;
      const outC = w ? w[0] : x[1];
      const out: Shape = [x[0], outC];
      for (let i = 0; i < spatial; i++) {
        if (autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') out.push(autoPadOut(x[2 + i], strides[i]));
        else if (autoPad === 'VALID') out.push(convOut(x[2 + i], kernel[i] as number, strides[i], dil[i], 0, 0));
        else {
          const inD = x[2 + i];
          if (inD === null) out.push(null);
          else {
            const num = inD + pads[i] + pads[i + spatial] - dil[i] * ((kernel[i] as number) - 1) - 1;
            out.push((ceil ? Math.ceil(num / strides[i]) : Math.floor(num / strides[i])) + 1);
          }
        }
      }
      return [out, op === 'MaxPool' ? out : null];
    }
    case 'ConvTranspose': {
      const w = shapeOf(node.input[1]);
      if (!x || !w) return [null];
      const spatial = x.length - 2;
      const group = attrInt(node, 'group', 1);
      const outC = w[1] === null ? null : w[1] * group;
      const explicit = attrInts(node, 'output_shape');
      if (explicit) return [[x[0], outC, ...explicit.slice(-spatial)]];
      const kernel = attrInts(node, 'kernel_shape') ?? (w.slice(2) as (number | null)[]);
      const strides = attrInts(node, 'strides') ?? Array(spatial).fill(1);
      const dil = attrInts(node, 'dilations') ?? Array(spatial).fill(1);
      const pads = attrInts(node, 'pads') ?? Array(spatial * 2).fill(0);
      const outPad = attrInts(node, 'output_padding') ?? Array(spatial).fill(0);
      const autoPad = attrString(node, 'auto_pad') ?? 'NOTSET';
      const out: Shape = [x[0], outC];
      for (let i = 0; i < spatial; i++) {
        const inD = x[2 + i];
        const k = kernel[i];
        if (inD === null || k === null || k === undefined) out.push(null);
        else if (autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') out.push(inD * strides[i]);
        else out.push(strides[i] * (inD - 1) + outPad[i] + ((k - 1) * dil[i] + 1) - pads[i] - pads[i + spatial]);
      }
      return [out];
    }
    case 'GlobalAveragePool':
    case 'GlobalMaxPool':
    case 'GlobalLpPool':
      return [x ? [x[0], x[1], ...x.slice(2).map(() => 1)] : null];
    case 'Gemm': {
      const a = x;
      const b = shapeOf(node.input[1]);
      if (!a || !b || a.length !== 2 || b.length !== 2) return [null];
      const m = attrInt(node, 'transA', 0) ? a[1] : a[0];
      const n = attrInt(node, 'transB', 0) ? b[0] : b[1];
      return [[m, n]];
    }
    case 'MatMul':
    case 'MatMulInteger': {
      const a = x;
      const b = shapeOf(node.input[1]);
      if (!a || !b) return [null];
      const a2 = a.length === 1 ? [1, a[0]] : a;
      const b2 = b.length === 1 ? [b[0], 1] : b;
      const batch = broadcast([a2.slice(0, -2), b2.slice(0, -2)]);
      if (!batch) return [null];
      const out: Shape = [...batch, a2[a2.length - 2], b2[b2.length - 1]];
      if (a.length === 1) out.splice(out.length - 2, 1);
      if (b.length === 1) out.splice(out.length - 1, 1);
      return [out];
    }
    case 'Flatten': {
      if (!x) return [null];
      let axis = attrInt(node, 'axis', 1);
      if (axis < 0) axis += x.length;
      const prod = (s: Shape) => (s.includes(null) ? null : (s as number[]).reduce((p, v) => p * v, 1));
      return [[prod(x.slice(0, axis)), prod(x.slice(axis))]];
    }
    case 'Reshape': {
      const target = intValues(node.input[1]);
      if (!target) return [null];
      const allowZero = attrInt(node, 'allowzero', 0) === 1;
      const out: Shape = target.map((v, i) => (v === 0 && !allowZero ? (x ? x[i] ?? null : null) : v));
      const minus = out.indexOf(-1);
      if (minus >= 0) {
        const total = x && !x.includes(null) ? (x as number[]).reduce((p, v) => p * v, 1) : null;
        const known = out.filter((_, i) => i !== minus);
        if (total === null || known.includes(null)) out[minus] = null;
        else out[minus] = total / (known as number[]).reduce((p, v) => p * v, 1);
      }
      return [out];
    }
    case 'Transpose': {
      if (!x) return [null];
      const perm = attrInts(node, 'perm') ?? x.map((_, i) => x.length - 1 - i);
      return [perm.map((p) => x[p] ?? null)];
    }
    case 'Concat': {
      const ins = node.input.map(shapeOf);
      if (ins.some((s) => s === null)) return [null];
      const first = ins[0] as Shape;
      let axis = attrInt(node, 'axis', 0);
      if (axis < 0) axis += first.length;
      const out = [...first];
      let sum: number | null = 0;
      for (const s of ins as Shape[]) sum = sum === null || s[axis] === null ? null : sum + (s[axis] as number);
      out[axis] = sum;
      return [out];
    }
    case 'Squeeze': {
      if (!x) return [null];
      const axes = listArg('axes', 1);
      if (axes === 'dynamic') return [null];
      if (!axes) return x.includes(null) ? [null] : [x.filter((d) => d !== 1)];
      const norm = axes.map((a) => (a < 0 ? a + x.length : a));
      return [x.filter((_, i) => !norm.includes(i))];
    }
    case 'Unsqueeze': {
      if (!x) return [null];
      const axes = listArg('axes', 1);
      if (!axes || axes === 'dynamic') return [null];
      const rank = x.length + axes.length;
      const norm = axes.map((a) => (a < 0 ? a + rank : a));
      const out: Shape = [];
      let j = 0;
      for (let i = 0; i < rank; i++) out.push(norm.includes(i) ? 1 : x[j++] ?? null);
      return [out];
    }
    case 'Slice':
      return [x ? sliceShape(node, x, intValues) : null];
    case 'Shape': {
      if (!x) return [null];
      const clamp = (v: number) => Math.min(Math.max(v < 0 ? v + x.length : v, 0), x.length);
      const start = clamp(attrInt(node, 'start', 0));
      const end = clamp(attrInt(node, 'end', x.length));
      return [[Math.max(0, end - start)]];
    }
    case 'Pad': {
      if (!x) return [null];
      const pads = listArg('pads', 1);
      if (!pads || pads === 'dynamic' || pads.length !== x.length * 2 || node.input[3]) return [null];
      return [x.map((d, i) => (d === null ? null : d + pads[i] + pads[i + x.length]))];
    }
    case 'Upsample':
    case 'Resize': {
      if (!x) return [null];
      const sizes = op === 'Resize' ? intValues(node.input[3]) : null;
      if (sizes && sizes.length === x.length) return [sizes];
      const scalesName = op === 'Resize' ? node.input[2] : node.input[1];
      const scales = scalesFloat(node, scalesName, intValues);
      if (!scales || scales.length !== x.length) return [null];
      return [x.map((d, i) => (d === null ? null : Math.floor(d * scales[i])))];
    }
    case 'ReduceMean':
    case 'ReduceSum':
    case 'ReduceMax':
    case 'ReduceMin':
    case 'ReduceProd':
    case 'ReduceL2': {
      if (!x) return [null];
      const keep = attrInt(node, 'keepdims', 1) === 1;
      const given = listArg('axes', 1);
      if (given === 'dynamic') return [null];
      if ((!given || given.length === 0) && attrInt(node, 'noop_with_empty_axes', 0) === 1) return [x];
      const axes = given && given.length ? given : x.map((_, i) => i);
      const norm = axes.map((a) => (a < 0 ? a + x.length : a));
      const out: Shape = [];
      x.forEach((d, i) => {
        if (!norm.includes(i)) out.push(d);
        else if (keep) out.push(1);
      });
      return [out];
    }
    case 'Split': {
      if (!x) return node.output.map(() => null);
      let axis = attrInt(node, 'axis', 0);
      if (axis < 0) axis += x.length;
      const split = listArg('split', 1);
      if (split === 'dynamic') return node.output.map(() => null);
      const n = node.output.length;
      return node.output.map((_, i) => {
        const out = [...x];
        if (split) out[axis] = split[i];
        else out[axis] = x[axis] === null || (x[axis] as number) % n !== 0 ? null : (x[axis] as number) / n;
        return out;
      });
    }
    default:
      return [];
  }
}

function scalesFloat(node: NodeProto, name: string | undefined, intValues: (n: string | undefined) => number[] | null): number[] | null {
  const a = attr(node, 'scales');
  if (a && a.floats.length) return a.floats;
  if (attrFloat(node, 'height_scale', 0)) return null;
  return name ? intValues(name) : null;
}

const MAX_VALUE_LENGTH = 16;

/** the value of small int vectors derived from static shapes; null when not known exactly */
function propagateValue(
  node: NodeProto,
  shapeOf: (name: string | undefined) => Shape | null,
  intValues: (name: string | undefined) => number[] | null,
): number[] | null {
  const ins = () => node.input.map((i) => intValues(i));
  switch (node.opType) {
    case 'Shape': {
      const x = shapeOf(node.input[0]);
      if (!x || x.includes(null)) return null;
      const clamp = (v: number) => Math.min(Math.max(v < 0 ? v + x.length : v, 0), x.length);
      return (x as number[]).slice(clamp(attrInt(node, 'start', 0)), clamp(attrInt(node, 'end', x.length)));
    }
    case 'Cast':
    case 'Identity':
      return intValues(node.input[0]);
    case 'Concat': {
      const parts = ins();
      if (parts.some((p) => p === null)) return null;
      const out = (parts as number[][]).flat();
      return out.length <= MAX_VALUE_LENGTH ? out : null;
    }
    case 'Unsqueeze':
    case 'Squeeze':
      return intValues(node.input[0]);
    case 'Gather': {
      const data = intValues(node.input[0]);
      const idx = intValues(node.input[1]);
      if (!data || !idx || attrInt(node, 'axis', 0) !== 0) return null;
      const out = idx.map((i) => data[i < 0 ? i + data.length : i]);
      return out.some((v) => v === undefined) ? null : out;
    }
    case 'Slice': {
      const data = intValues(node.input[0]);
      if (!data) return null;
      const args = sliceArgs(node, intValues, 1);
      if (!args) return null;
      const { starts, ends, axes, steps } = args;
      if (axes.some((a) => a !== 0 && a !== -1)) return null;
      const r = sliceRange(data.length, starts[0], ends[0], steps[0]);
      const out: number[] = [];
      for (let i = r.start; r.step > 0 ? i < r.end : i > r.end; i += r.step) out.push(data[i]);
      return out;
    }
    case 'Add':
    case 'Sub':
    case 'Mul':
    case 'Div': {
      const [a, b] = ins();
      if (!a || !b || (a.length !== b.length && a.length !== 1 && b.length !== 1)) return null;
      const n = Math.max(a.length, b.length);
      const out: number[] = [];
      for (let i = 0; i < n; i++) {
        const p = a[a.length === 1 ? 0 : i];
        const q = b[b.length === 1 ? 0 : i];
        out.push(node.opType === 'Add' ? p + q : node.opType === 'Sub' ? p - q : node.opType === 'Mul' ? p * q : q === 0 ? NaN : Math.trunc(p / q));
      }
      return out.some(Number.isNaN) ? null : out;
    }
    default:
      return null;
  }
}

function sliceArgs(
  node: NodeProto,
  intValues: (name: string | undefined) => number[] | null,
  rank: number,
): { starts: number[]; ends: number[]; axes: number[]; steps: number[] } | null {
  const fromAttr = attrInts(node, 'starts');
  const starts = fromAttr ?? intValues(node.input[1]);
  const ends = attrInts(node, 'ends') ?? (fromAttr ? null : intValues(node.input[2]));
  if (!starts || !ends || starts.length !== ends.length) return null;
  const axesIn = fromAttr ? attrInts(node, 'axes') : node.input[3] ? intValues(node.input[3]) : undefined;
  if (axesIn === null) return null;
  const stepsIn = fromAttr ? undefined : node.input[4] ? intValues(node.input[4]) : undefined;
  if (stepsIn === null) return null;
  const axes = axesIn ?? starts.map((_, i) => i);
  const steps = stepsIn ?? starts.map(() => 1);
  if (axes.length !== starts.length || steps.length !== starts.length || steps.includes(0)) return null;
  return { starts, ends, axes: axes.map((a) => (a < 0 ? a + rank : a)), steps };
}

/** numpy-style clamping of a slice over a dim of size n */
function sliceRange(n: number, start: number, end: number, step: number): { start: number; end: number; step: number } {
  const norm = (v: number, lo: number, hi: number) => Math.min(Math.max(v < 0 ? v + n : v, lo), hi);
  if (step > 0) return { start: norm(start, 0, n), end: norm(end, 0, n), step };
  return { start: norm(start, -1, n - 1), end: norm(end, -1, n - 1), step };
}

export function sliceShape(
  node: NodeProto,
  x: Shape,
  intValues: (name: string | undefined) => number[] | null,
): Shape | null {
  const args = sliceArgs(node, intValues, x.length);
  if (!args) return null;
  const out = [...x];
  args.axes.forEach((axis, i) => {
    const d = x[axis];
    if (d === null || d === undefined) {
      out[axis] = null;
      return;
    }
    const r = sliceRange(d, args.starts[i], args.ends[i], args.steps[i]);
    out[axis] = Math.max(0, Math.ceil((r.end - r.start) / r.step));
  });
  return out;
}
