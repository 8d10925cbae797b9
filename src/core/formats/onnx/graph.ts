/** ONNX ModelProto -> format-neutral GraphView (canonical ops, weight roles, shapes, MACs). */
import type { GraphView, LayerView, SharedFloat32, WeightView } from '../../graph/graph';
import type { CanonicalOp, ModelSummary, ValueSummary, WeightRole } from '../../types';
import { attrFloat, attrInt, constantTensors, dims, isDefaultDomain, type ConstantSource, type OnnxModel } from './model';
import type { NodeProto, TensorProto, ValueInfoProto } from './proto';
import { inferShapes, type Shape } from './shapes';
import { dtypeName, readTensorAsFloat32, tensorByteLength } from './tensor';

const CANONICAL: Record<string, CanonicalOp> = {
  Gemm: 'Dense',
  BatchNormalization: 'BatchNorm',
  LayerNormalization: 'LayerNorm',
  GroupNormalization: 'GroupNorm',
  InstanceNormalization: 'InstanceNorm',
};

const FLOAT_TYPES = new Set(['float32', 'float16', 'bfloat16', 'float64']);

/** weight roles by input position, per native op */
const ROLES: Record<string, (WeightRole | undefined)[]> = {
  Conv: [undefined, 'kernel', 'bias'],
  ConvTranspose: [undefined, 'kernel', 'bias'],
  Gemm: [undefined, 'kernel', 'bias'],
  MatMul: [undefined, 'kernel'],
  BatchNormalization: [undefined, 'gamma', 'beta', 'mean', 'variance'],
  InstanceNormalization: [undefined, 'gamma', 'beta'],
  LayerNormalization: [undefined, 'gamma', 'beta'],
  GroupNormalization: [undefined, 'gamma', 'beta'],
  PRelu: [undefined, 'weight'],
};

export function canonicalOp(node: NodeProto, kernelShape: number[] | null, inputChannels: number | null): CanonicalOp {
  const op = node.opType ?? '';
  if (!isDefaultDomain(node.domain)) return op;
  if (op === 'Conv') {
    const group = attrInt(node, 'group', 1);
    if (group > 1 && kernelShape && kernelShape[1] === 1 && (inputChannels === null || inputChannels === group)) return 'DepthwiseConv';
    return 'Conv';
  }
  if (op === 'Clip') return 'Clip';
  return CANONICAL[op] ?? op;
}

export function uniqueLayerNames(nodes: NodeProto[]): string[] {
  const seen = new Map<string, number>();
  return nodes.map((n, i) => {
    const base = n.name || `${n.opType ?? 'node'}_${i}`;
    const k = seen.get(base) ?? 0;
    seen.set(base, k + 1);
    return k === 0 ? base : `${base}#${k}`;
  });
}

export interface GraphViewOptions {
  /** shapes of graph inputs replacing the declared ones (e.g. another input size); null dims stay unknown */
  inputShapes?: Record<string, Shape>;
}

export function buildGraphView(model: OnnxModel, symbols: Record<string, number> = {}, opts: GraphViewOptions = {}): GraphView {
  const graph = model.graph;
  const constants = constantTensors(graph);
  const shapes = inferShapes(graph, constants, model.external, symbols, opts.inputShapes);
  const names = uniqueLayerNames(graph.node);
  const layers: LayerView[] = [];
  graph.node.forEach((node, i) => {
    if (node.opType === 'Constant' && isDefaultDomain(node.domain)) return;
    layers.push(layerView(model, node, names[i], layers.length, constants, shapes));
  });
  return { format: 'onnx', summary: summarize(model, constants), layers };
}

function weightView(model: OnnxModel, name: string, src: ConstantSource, role: WeightRole, channelAxis: number | null, groups: number): WeightView {
  const t = src.tensor;
  return {
    name,
    role,
    dtype: dtypeName(t.dataType ?? 0),
    shape: dims(t),
    channelAxis,
    groups,
    source: t.dataLocation === 1 ? 'external' : src.node ? 'constant' : 'initializer',
    bytes: tensorByteLength(t),
    read: () => readTensorAsFloat32(t, model.external),
    peek: () => peekFloat32(t, model),
    shared: () => sharedFloat32(t),
  };
}

/** float32 raw_data that lives in a SharedArrayBuffer (see api.readModelFile): a worker can read it in place */
function sharedFloat32(t: TensorProto): SharedFloat32 | null {
  const raw = t.rawData;
  if (t.dataType !== 1 || !raw || t.dataLocation === 1 || !LITTLE_ENDIAN || raw.byteLength % 4 !== 0) return null;
  if (!(raw.buffer instanceof SharedArrayBuffer)) return null;
  return { buffer: raw.buffer, byteOffset: raw.byteOffset, length: raw.byteLength / 4 };
}

let scratch = new ArrayBuffer(0);
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** float32 raw_data viewed in place when aligned, else copied into a reused scratch buffer; other dtypes convert */
function peekFloat32(t: TensorProto, model: OnnxModel): Float32Array {
  const raw = t.rawData;
  if (t.dataType !== 1 || !raw || t.dataLocation === 1 || !LITTLE_ENDIAN || raw.byteLength % 4 !== 0) return readTensorAsFloat32(t, model.external);
  if (raw.byteOffset % 4 === 0) return new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4);
  if (scratch.byteLength < raw.byteLength) scratch = new ArrayBuffer(Math.max(raw.byteLength, scratch.byteLength * 2));
  new Uint8Array(scratch, 0, raw.byteLength).set(raw);
  return new Float32Array(scratch, 0, raw.byteLength / 4);
}

function layerView(
  model: OnnxModel,
  node: NodeProto,
  name: string,
  index: number,
  constants: Map<string, ConstantSource>,
  shapes: Map<string, Shape | null>,
): LayerView {
  const op = node.opType ?? '';
  const roles = isDefaultDomain(node.domain) ? ROLES[op] : undefined;
  const weights: WeightView[] = [];
  const kernelSrc = constants.get(node.input[1] ?? '');
  const kernelShape = kernelSrc ? dims(kernelSrc.tensor) : null;
  node.input.forEach((input, k) => {
    const src = input ? constants.get(input) : undefined;
    if (!src) return;
    const role = roles?.[k] ?? 'weight';
    const dtype = dtypeName(src.tensor.dataType ?? 0);
    if (!FLOAT_TYPES.has(dtype) && role !== 'kernel' && role !== 'bias') return;
    const shape = dims(src.tensor);
    let axis: number | null = null;
    let groups = 1;
    if (role === 'kernel') {
      if (op === 'ConvTranspose') {
        axis = 1;
        groups = attrInt(node, 'group', 1);
      } else if (op === 'Gemm') axis = attrInt(node, 'transB', 0) ? 0 : 1;
      else if (op === 'MatMul') axis = shape.length - 1;
      else axis = 0;
    } else if (role !== 'weight' && shape.length === 1) axis = 0;
    if (shape.length === 0) axis = null;
    weights.push(weightView(model, input, src, role, axis, groups));
  });
  const xShape = shapes.get(node.input[0] ?? '') ?? null;
  const outShape = shapes.get(node.output[0] ?? '') ?? null;
  const layer: LayerView = {
    name,
    index,
    op: canonicalOp(node, kernelShape, xShape ? xShape[1] : null),
    nativeOp: node.domain && !isDefaultDomain(node.domain) ? `${node.domain}.${op}` : op,
    inputs: node.input,
    outputs: node.output,
    weights,
    outputShape: outShape,
    macs: macsOf(node, xShape, outShape, kernelShape, shapes),
  };
  if (op === 'BatchNormalization') {
    layer.epsilon = attrFloat(node, 'epsilon', 1e-5);
    layer.trainingMode = attrInt(node, 'training_mode', 0) === 1 || node.output.filter((o) => o).length > 1;
  }
  if (op === 'Clip' && isDefaultDomain(node.domain)) {
    const lo = clipBound(node, 1, 'min', constants, model);
    const hi = clipBound(node, 2, 'max', constants, model);
    if (lo === 0 && hi === 6) layer.op = 'Relu6';
  }
  return layer;
}

function clipBound(node: NodeProto, input: number, attrName: string, constants: Map<string, ConstantSource>, model: OnnxModel): number | null {
  const a = node.attribute.find((x) => x.name === attrName);
  if (a?.f !== undefined) return a.f;
  const src = constants.get(node.input[input] ?? '');
  if (!src) return null;
  try {
    const v = readTensorAsFloat32(src.tensor, model.external);
    return v.length === 1 ? v[0] : null;
  } catch {
    return null;
  }
}

const prod = (s: Shape | null): number | null => (s === null || s.includes(null) ? null : (s as number[]).reduce((p, v) => p * v, 1));

function macsOf(node: NodeProto, x: Shape | null, out: Shape | null, w: number[] | null, shapes: Map<string, Shape | null>): number | null {
  if (!isDefaultDomain(node.domain)) return 0;
  switch (node.opType) {
    case 'Conv': {
      const o = prod(out);
      const wShape = w ?? shapes.get(node.input[1] ?? '') ?? null;
      const k = wShape ? prod(wShape.slice(1)) : null;
      return o === null || k === null ? null : o * k;
    }
    case 'ConvTranspose': {
      const i = prod(x);
      const wShape = w ?? shapes.get(node.input[1] ?? '') ?? null;
      const k = wShape ? prod(wShape.slice(1)) : null;
      return i === null || k === null ? null : i * k;
    }
    case 'Gemm': {
      const o = prod(out);
      if (!x || x.length !== 2) return null;
      const k = attrInt(node, 'transA', 0) ? x[0] : x[1];
      return o === null || k === null ? null : o * k;
    }
    case 'MatMul': {
      const o = prod(out);
      const k = x && x.length ? x[x.length - 1] : null;
      return o === null || k === null ? null : o * k;
    }
    case 'BatchNormalization':
      return prod(out);
    default:
      return 0;
  }
}

function valueSummary(vi: ValueInfoProto): ValueSummary {
  const tt = vi.type?.tensorType;
  return {
    name: vi.name ?? '',
    dtype: tt ? dtypeName(tt.elemType ?? 0) : 'non-tensor',
    shape: tt?.shape ? tt.shape.dim.map((d) => (d.dimValue !== undefined ? Number(d.dimValue) : d.dimParam ?? null)) : null,
  };
}

function summarize(model: OnnxModel, constants: Map<string, ConstantSource>): ModelSummary {
  const p = model.proto;
  const g = model.graph;
  let weightBytes = 0;
  const counted = new Set<TensorProto>();
  for (const c of constants.values()) {
    if (counted.has(c.tensor)) continue;
    counted.add(c.tensor);
    weightBytes += tensorByteLength(c.tensor);
  }
  return {
    ir_version: p.irVersion !== undefined ? Number(p.irVersion) : null,
    opsets: p.opsetImport.map((o) => ({ domain: o.domain || 'ai.onnx', version: Number(o.version ?? 0n) })),
    producer: p.producerName ?? '',
    producer_version: p.producerVersion ?? '',
    graph_name: g.name ?? '',
    inputs: g.input.filter((i) => !constants.has(i.name ?? '')).map(valueSummary),
    outputs: g.output.map(valueSummary),
    file_bytes: model.fileBytes,
    weight_bytes: weightBytes,
  };
}
