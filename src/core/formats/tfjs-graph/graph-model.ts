/**
 * TF.js graph models: model.json with a GraphDef topology ({node: [{name, op, input, attr}], versions}) and
 * weight shards. Inspect + statistics: canonical ops, weights by role, NHWC shape inference for common ops,
 * MACs; and what the converter already did to BatchNorm: fused into _FusedConv2D / FusedDepthwiseConv2dNative
 * (the BN's scale folded into the kernel, its shift into the fused bias) or written out as Mul + Add. Graph
 * models are re-saved unchanged (no rewrites: there is no BatchNorm left to fold in them in practice).
 */
import type { Model } from '../../api';
import type { TfjsRunnable } from '../../engines/tfjs';
import { ModelError } from '../../errors';
import type { GraphView, LayerView, WeightView } from '../../graph/graph';
import type { CanonicalOp, Finding, FoldPlan, ValueSummary, WeightRole } from '../../types';
import { arr, clone, isObject, num, obj, str, type Json, type JsonObject } from '../keras/json';
import { bytesPerElement, weightToFloat32, type KWeight } from '../keras/model';
import { encodeManifest, readManifest, type EncodedLayers, type ShardReader } from '../keras/tfjs-layers';

export class TfjsGraphModel implements Model {
  readonly format = 'tfjs-graph' as const;
  constructor(
    readonly baseDir: string,
    readonly fileBytes: number | null,
    readonly json: JsonObject,
    readonly weights: KWeight[],
    readonly groups: { paths: string[]; shardBytes: number[] }[],
  ) {}
}

interface GNode {
  name: string;
  op: string;
  input: string[];
  attr: JsonObject;
}

export function isGraphModelJson(json: JsonObject): boolean {
  const topo = obj(json.modelTopology);
  return json.format === 'graph-model' || (!!topo && Array.isArray(topo.node));
}

export function readTfjsGraph(json: JsonObject, readShard: ShardReader, baseDir: string, fileBytes: number | null, what: string): TfjsGraphModel {
  const topo = obj(json.modelTopology);
  if (!topo || !Array.isArray(topo.node)) throw new ModelError(`${what}: graph model.json has no modelTopology.node list`);
  const { weights, groups, total } = readManifest(json, readShard, what, (p) => p);
  for (const w of weights) w.layerPath = [];
  return new TfjsGraphModel(baseDir, fileBytes === null ? null : fileBytes + total, json, weights, groups);
}

function nodes(m: TfjsGraphModel): GNode[] {
  const list = arr(obj(m.json.modelTopology)?.node) ?? [];
  return list.filter(isObject).map((n) => ({ name: str(n.name) ?? '', op: str(n.op) ?? '', input: (arr(n.input) ?? []).map((i) => str(i) ?? ''), attr: obj(n.attr) ?? {} }));
}

const b64 = (s: string | undefined) => (s ? Buffer.from(s, 'base64').toString('utf8') : '');
const attrStr = (n: GNode, k: string) => b64(str(obj(n.attr[k])?.s));
const attrInts = (n: GNode, k: string): number[] => (arr(obj(obj(n.attr[k])?.list)?.i) ?? []).map((v) => Number(v));
const attrStrs = (n: GNode, k: string): string[] => (arr(obj(obj(n.attr[k])?.list)?.s) ?? []).map((v) => b64(str(v)));
const attrBool = (n: GNode, k: string) => obj(n.attr[k])?.b === true;
const inputName = (i: string) => i.replace(/^\^/, '').replace(/:\d+$/, '');

const CANONICAL: Record<string, CanonicalOp> = {
  Conv2D: 'Conv',
  _FusedConv2D: 'Conv',
  Conv3D: 'Conv',
  DepthwiseConv2dNative: 'DepthwiseConv',
  FusedDepthwiseConv2dNative: 'DepthwiseConv',
  Conv2DBackpropInput: 'ConvTranspose',
  MatMul: 'MatMul',
  _FusedMatMul: 'Dense',
  BatchMatMulV2: 'MatMul',
  FusedBatchNorm: 'BatchNorm',
  FusedBatchNormV2: 'BatchNorm',
  FusedBatchNormV3: 'BatchNorm',
  Relu: 'Relu',
  Relu6: 'Relu6',
  Elu: 'Elu',
  Selu: 'Selu',
  Sigmoid: 'Sigmoid',
  Tanh: 'Tanh',
  Softmax: 'Softmax',
  LeakyRelu: 'LeakyRelu',
  Add: 'Add',
  AddV2: 'Add',
  BiasAdd: 'Add',
  Mul: 'Mul',
  Sub: 'Sub',
  RealDiv: 'Div',
  ConcatV2: 'Concat',
  MaxPool: 'MaxPool',
  AvgPool: 'AveragePool',
  Mean: 'ReduceMean',
  Reshape: 'Reshape',
  Squeeze: 'Squeeze',
  Pad: 'Pad',
  Transpose: 'Transpose',
  ResizeBilinear: 'Resize',
  ResizeNearestNeighbor: 'Resize',
  Identity: 'Identity',
};

type Shape = (number | null)[];
const prod = (s: Shape | null): number | null => (s === null || s.includes(null) ? null : (s as number[]).reduce((p, v) => p * v, 1));

function convLen(len: number | null, k: number, s: number, d: number, pad: string): number | null {
  if (len === null) return null;
  if (pad === 'SAME') return Math.ceil(len / s);
  if (pad === 'VALID') return Math.floor((len - (d * (k - 1) + 1)) / s) + 1;
  return null;
}

const BN_HINT = /batch_?norm|bn_offset|fusedbatchnorm|_bn\b|\/bn\//i;

export function buildTfjsGraphView(m: TfjsGraphModel, dims: Record<string, number> = {}): GraphView {
  const all = nodes(m);
  const byName = new Map(all.map((n) => [n.name, n]));
  const weightByName = new Map(m.weights.map((w) => [w.storeName, w]));
  const shapes = new Map<string, Shape | null>();
  const inputs: ValueSummary[] = [];
  const constShape = (name: string): number[] | null => weightByName.get(name)?.shape ?? null;
  const layers: LayerView[] = [];
  const consumers = new Map<string, GNode[]>();
  for (const n of all) for (const i of n.input) consumers.set(inputName(i), [...(consumers.get(inputName(i)) ?? []), n]);
  for (const n of all) {
    if (n.op === 'Const') {
      shapes.set(n.name, constShape(n.name));
      continue;
    }
    if (n.op === 'Placeholder') {
      const dimsList = arr(obj(obj(n.attr.shape)?.shape)?.dim) ?? [];
      const sym = dimsList.map((d, k) => {
        const v = Number(str(obj(d)?.size) ?? num(obj(d)?.size) ?? -1);
        return v >= 0 ? v : k === 0 ? 'batch' : `${n.name}_dim${k}`;
      });
      inputs.push({ name: n.name, dtype: (str(obj(n.attr.dtype)?.type) ?? 'DT_FLOAT') === 'DT_INT32' ? 'int32' : 'float32', shape: sym });
      shapes.set(n.name, sym.map((d) => (typeof d === 'number' ? d : d === 'batch' ? dims.batch ?? 1 : dims[d] ?? null)));
      continue;
    }
    const ins = n.input.filter((i) => !i.startsWith('^')).map(inputName);
    const x = shapes.get(ins[0] ?? '') ?? null;
    let out: Shape | null = null;
    let macs: number | null = 0;
    const kShape = constShape(ins[1] ?? '');
    const weights: WeightView[] = [];
    const role = (k: number): WeightRole => {
      if (/BatchNorm/.test(n.op)) return (['weight', 'gamma', 'beta', 'mean', 'variance'] as WeightRole[])[k] ?? 'weight';
      if (/Conv|MatMul/.test(n.op)) return k === 1 ? 'kernel' : k >= 2 ? 'bias' : 'weight';
      if (n.op === 'BiasAdd') return 'bias';
      return 'weight';
    };
    ins.forEach((name, k) => {
      const w = weightByName.get(name);
      if (!w) return;
      const r = role(k);
      let axis: number | null = w.shape.length === 1 ? 0 : null;
      let statsShape: number[] | undefined;
      if (r === 'kernel') {
        const rk = w.shape.length;
        if (/Depthwise/.test(n.op) && rk === 4) {
          axis = 2;
          statsShape = [w.shape[0], w.shape[1], w.shape[2] * w.shape[3]];
        } else if (n.op === 'Conv2DBackpropInput') axis = 2;
        else if (/MatMul/.test(n.op)) axis = attrBool(n, 'transpose_b') ? 0 : 1;
        else axis = rk - 1;
      }
      let cached: Float32Array | null = null;
      const view: WeightView = {
        name,
        role: r,
        dtype: w.dtype,
        shape: w.shape,
        channelAxis: axis,
        groups: 1,
        source: 'external',
        bytes: w.shape.reduce((p, v) => p * v, 1) * bytesPerElement(w),
        read: () => weightToFloat32(w),
        peek: () => (cached ??= weightToFloat32(w)),
      };
      if (statsShape) view.statsShape = statsShape;
      if (w.quantization) view.quantized = w.quantization.dtype;
      weights.push(view);
    });
    switch (n.op) {
      case 'Conv2D':
      case '_FusedConv2D':
      case 'DepthwiseConv2dNative':
      case 'FusedDepthwiseConv2dNative': {
        const st = attrInts(n, 'strides');
        const dl = attrInts(n, 'dilations');
        const pad = attrStr(n, 'padding');
        const nchw = attrStr(n, 'data_format') === 'NCHW';
        if (x && x.length === 4 && kShape && kShape.length === 4 && !nchw) {
          const depthwise = /Depthwise/.test(n.op);
          const cout = depthwise ? kShape[2] * kShape[3] : kShape[3];
          out = [x[0], convLen(x[1], kShape[0], st[1] ?? 1, dl[1] ?? 1, pad), convLen(x[2], kShape[1], st[2] ?? 1, dl[2] ?? 1, pad), cout];
          const o = prod(out);
          macs = o === null ? null : o * kShape[0] * kShape[1] * (depthwise ? 1 : kShape[2]);
        } else macs = null;
        break;
      }
      case 'MatMul':
      case '_FusedMatMul': {
        const b = kShape ?? shapes.get(ins[1] ?? '') ?? null;
        if (x && x.length === 2 && b && b.length === 2) {
          const ta = attrBool(n, 'transpose_a');
          const tb = attrBool(n, 'transpose_b');
          out = [ta ? x[1] : x[0], tb ? b[0] : b[1]];
          const o = prod(out);
          const K = ta ? x[0] : x[1];
          macs = o === null || K === null ? null : o * K;
        } else macs = null;
        break;
      }
      case 'FusedBatchNorm':
      case 'FusedBatchNormV2':
      case 'FusedBatchNormV3':
        out = x;
        macs = prod(x);
        break;
      case 'Relu':
      case 'Relu6':
      case 'Elu':
      case 'Selu':
      case 'Sigmoid':
      case 'Tanh':
      case 'Softmax':
      case 'LeakyRelu':
      case 'Identity':
      case 'BiasAdd':
        out = x;
        break;
      case 'Add':
      case 'AddV2':
      case 'Mul':
      case 'Sub':
      case 'RealDiv': {
        const y = shapes.get(ins[1] ?? '') ?? null;
        if (x && y) out = x.length >= y.length ? x : y;
        break;
      }
      case 'AvgPool':
      case 'MaxPool': {
        const k = attrInts(n, 'ksize');
        const st = attrInts(n, 'strides');
        const pad = attrStr(n, 'padding');
        if (x && x.length === 4 && k.length === 4) out = [x[0], convLen(x[1], k[1], st[1] ?? 1, 1, pad), convLen(x[2], k[2], st[2] ?? 1, 1, pad), x[3]];
        break;
      }
      case 'Squeeze': {
        const sd = attrInts(n, 'squeeze_dims');
        if (x) out = x.filter((d, i) => !(sd.length ? sd.map((a) => (a < 0 ? a + x.length : a)).includes(i) : d === 1));
        break;
      }
      default:
        break;
    }
    shapes.set(n.name, out);
    const layer: LayerView = {
      name: n.name,
      index: layers.length,
      op: CANONICAL[n.op] ?? n.op,
      nativeOp: n.op,
      inputs: ins,
      outputs: [n.name],
      weights,
      outputShape: out,
      macs,
    };
    if (/BatchNorm/.test(n.op)) {
      layer.epsilon = num(obj(n.attr.epsilon)?.f) ?? 1e-3;
      layer.trainingMode = attrBool(n, 'is_training');
    }
    layers.push(layer);
  }
  // findings: what happened to BatchNorm
  const findings: Finding[] = [];
  const fusedConv = all.filter((n) => /^_FusedConv2D$|^FusedDepthwiseConv2dNative$|^_FusedMatMul$/.test(n.op));
  const bnFused = fusedConv.filter((n) => attrStrs(n, 'fused_ops').some((o) => /BatchNorm/.test(o)) || BN_HINT.test(n.name) || n.input.some((i) => BN_HINT.test(i)));
  if (bnFused.length) {
    findings.push({
      severity: 'info',
      code: 'bn-already-folded',
      message: `${bnFused.length} fused convolution(s) carry a BatchNorm that the TF.js converter already folded in (its scale in the kernel, its shift in the fused bias): there is no BatchNorm left to fold.`,
      layers: bnFused.map((n) => n.name),
    });
  }
  const mulAdd: string[] = [];
  for (const n of all) {
    if (n.op !== 'Mul') continue;
    const ins = n.input.map(inputName);
    const src = ins.map((i) => byName.get(i)).find((p) => p && p.op !== 'Const');
    const constIn = ins.find((i) => byName.get(i)?.op === 'Const');
    if (!src || !constIn || !/Conv|MatMul/.test(src.op)) continue;
    const next = consumers.get(n.name) ?? [];
    if (next.length === 1 && /^(Add|AddV2|BiasAdd)$/.test(next[0].op) && next[0].input.map(inputName).some((i) => byName.get(i)?.op === 'Const')) mulAdd.push(n.name, next[0].name);
  }
  if (mulAdd.length) {
    findings.push({
      severity: 'info',
      code: 'bn-mul-add',
      message: `${mulAdd.length / 2} BatchNorm(s) are written out as Mul + Add after a convolution or MatMul (inference-mode BatchNorm as a per-channel scale and shift).`,
      layers: mulAdd,
    });
  }
  let weightBytes = 0;
  for (const w of m.weights) weightBytes += w.shape.reduce((p, v) => p * v, 1) * bytesPerElement(w);
  const outNames = all.filter((n) => n.op !== 'Const' && !consumers.has(n.name)).map((n) => n.name);
  return {
    format: 'tfjs-graph',
    summary: {
      ir_version: null,
      opsets: [],
      producer: str(m.json.convertedBy) ?? str(m.json.generatedBy) ?? 'TensorFlow.js',
      producer_version: str(m.json.generatedBy) ?? '',
      graph_name: '',
      inputs,
      outputs: outNames.map((name) => ({ name, dtype: 'float32', shape: shapes.get(name) ?? null })),
      file_bytes: m.fileBytes,
      weight_bytes: weightBytes,
    },
    layers,
    findings,
  };
}

export function planTfjsGraphFold(m: TfjsGraphModel): FoldPlan {
  const skipped = nodes(m)
    .filter((n) => /^FusedBatchNorm/.test(n.op))
    .map((n) => ({ layer: n.name, reason: 'BatchNorm nodes in TF.js graph models are not folded by Model Surgeon (convert the Keras model with BatchNorm folded, or fold the layers model)' }));
  return { candidates: [], skipped };
}

export function tfjsGraphSize(m: TfjsGraphModel): { params: number; bytes: number; layers: number } {
  let params = 0;
  let bytes = 0;
  for (const w of m.weights) {
    const n = w.shape.reduce((p, v) => p * v, 1);
    params += n;
    bytes += n * bytesPerElement(w);
  }
  return { params, bytes, layers: nodes(m).filter((n) => n.op !== 'Const' && n.op !== 'Placeholder').length };
}

export function encodeTfjsGraph(m: TfjsGraphModel): EncodedLayers {
  const json = clone(m.json);
  const { manifest, shards } = encodeManifest(m.weights, m.groups);
  json.weightsManifest = manifest;
  return { json, shards };
}

export function tfjsGraphRunnable(m: TfjsGraphModel): TfjsRunnable {
  const enc = encodeTfjsGraph(m);
  const size = enc.shards.reduce((s, x) => s + x.bytes.byteLength, 0);
  const data = new Uint8Array(size);
  let off = 0;
  for (const s of enc.shards) {
    data.set(s.bytes, off);
    off += s.bytes.byteLength;
  }
  const specs = (arr(enc.json.weightsManifest) ?? []).flatMap((g) => arr(obj(g)?.weights) ?? []) as Json[];
  const artifacts = {
    modelTopology: enc.json.modelTopology as unknown as object,
    weightSpecs: specs as unknown as import('@tensorflow/tfjs-core').io.WeightsManifestEntry[],
    weightData: data.buffer,
    format: str(enc.json.format),
    generatedBy: str(enc.json.generatedBy),
    convertedBy: str(enc.json.convertedBy) ?? null,
    ...(obj(enc.json.signature) ? { signature: obj(enc.json.signature) as object } : {}),
    ...(obj(enc.json.userDefinedMetadata) ? { userDefinedMetadata: obj(enc.json.userDefinedMetadata) as { [key: string]: object } } : {}),
    ...(obj(enc.json.modelInitializer) ? { modelInitializer: obj(enc.json.modelInitializer) as object } : {}),
  };
  return { kind: 'graph', artifacts, inputs: buildTfjsGraphView(m).summary.inputs };
}
