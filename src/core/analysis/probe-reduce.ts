/**
 * Per-channel activation statistics computed inside onnxruntime, so that only a few numbers per channel leave
 * the engine instead of whole activations (scripts/bench/probe.ts measures both ways; copying activations out
 * of onnxruntime-node costs ~1.3x plain inference on FCN-ResNet50 and ~2.5-3.5x on PaddleOCR's classifier
 * before any statistics). For each probed tensor Y with its channels on axis 1, the probing copy of the graph gets
 *   BatchNormalization(Y) in training mode, momentum 0 -> the batch mean and (population) variance per
 *     channel, computed two-pass by the engine (centred, so a large mean does not eat the variance's digits);
 *   ReduceMax(Y), ReduceMin(Y) -> exact extremes (dead: max <= 0; constant: min == max);
 *   ReduceSum(Cast(Greater(Y, 0), float)) -> the count of positive values, exact below 2^24 values per channel
 *     and batch (Greater + Cast measured 3x faster than Sign in onnxruntime 1.30, float sums 5x faster than
 *     int32 ones; a NaN counts as not positive);
 *   Shape(Y) -> the value count per channel.
 * Mean and variance carry float32 rounding (~1e-6 relative); streaming-stats.ts merges batches in float64.
 * Measured and left: global pools (GlobalMaxPool / GlobalAveragePool, which onnxruntime runs on its blocked
 * NCHWc layout without converting the activation back) cut FCN-ResNet50's steady-state overhead 1.21x -> 1.12x
 * but not the probe as run, and lose a near-constant channel's variance (E[y^2] - mean^2 in float32: 9% off
 * on a PaddleOCR channel); one concatenated output instead of six per tensor did not pay, and BatchNorm's
 * running statistics must not feed a Concat (onnxruntime writes them in place into their deduplicated
 * initializer inputs, so two of them read the same buffer).
 */
import { emptyGraph } from '../formats/onnx/codec';
import { AttributeType, type AttributeProto, type GraphProto, type ModelProto, type NodeProto, type TensorProto, type ValueInfoProto } from '../formats/onnx/proto';
import { defaultOpset } from '../formats/onnx/model';

/** Greater on float and Cast to int32 are there from opset 9; older models are probed by copying activations out */
export const MIN_REDUCE_OPSET = 9;

/** float32 counts are exact below this many values per channel and batch; beyond, activations are copied out */
export const MAX_REDUCED_COUNT = 1 << 24;

export interface ReduceSpec {
  /** the probed value (float32, channels on axis 1) */
  value: string;
  rank: number;
  channels: number;
  /** canonical op producing it */
  op: string;
}

/** graph output names of one probed value's statistics */
export interface ReduceOutputs {
  shape: string;
  mean: string;
  variance: string;
  max: string;
  min: string;
  /** number of positive values per channel (float32, exact integers) */
  positive: string;
}

function attr(name: string, v: { i?: number; f?: number; ints?: number[] }): AttributeProto {
  const base = { name, floats: [], ints: [], strings: [], tensors: [], graphs: [], sparseTensors: [], typeProtos: [] };
  if (v.ints) return { ...base, type: AttributeType.INTS, ints: v.ints.map(BigInt) };
  if (v.f !== undefined) return { ...base, type: AttributeType.FLOAT, f: v.f };
  return { ...base, type: AttributeType.INT, i: BigInt(v.i ?? 0) };
}

function node(opType: string, input: string[], output: string[], attribute: AttributeProto[] = []): NodeProto {
  return { opType, input, output, name: output[0], attribute, metadataProps: [] };
}

/**
 * The nodes, constants and outputs to append to `proto`'s main graph (OnnxModel.runtimeBytes) for the
 * statistics of every spec; `extraOutputs` become plain outputs too (values probed by copying them out).
 */
export function reductionGraph(proto: ModelProto, specs: ReduceSpec[], extraOutputs: string[] = []): { extension: GraphProto; outputs: ReduceOutputs[] } {
  const graph = proto.graph!;
  const opset = defaultOpset(proto);
  const taken = new Set<string>();
  for (const n of graph.node) for (const o of n.output) taken.add(o);
  for (const v of [...graph.input, ...graph.output, ...graph.valueInfo]) if (v.name) taken.add(v.name);
  for (const t of graph.initializer) if (t.name) taken.add(t.name);
  let prefix = '__model_surgeon_probe';
  while ([...taken].some((n) => n.startsWith(prefix))) prefix += '_';

  const nodes: NodeProto[] = [];
  const inits: TensorProto[] = [];
  const outputs: ReduceOutputs[] = [];
  const constant = new Map<string, string>();
  const initializer = (key: string, make: () => Omit<TensorProto, 'name'>): string => {
    let name = constant.get(key);
    if (!name) {
      name = `${prefix}_const_${constant.size}`;
      constant.set(key, name);
      inits.push({ ...make(), name });
    }
    return name;
  };
  const floats = (n: number, v: number) => initializer(`f${n}:${v}`, () => ({ dims: [BigInt(n)], dataType: 1, floatData: new Float32Array(n).fill(v), externalData: [], metadataProps: [] }));
  const axesInput = (axes: number[]) => initializer(`a${axes.join(',')}`, () => ({ dims: [BigInt(axes.length)], dataType: 7, int64Data: BigInt64Array.from(axes.map(BigInt)), externalData: [], metadataProps: [] }));
  // axes are an attribute before opset 18 (ReduceSum: before 13), an int64 input from then on
  const reduce = (op: string, x: string, out: string, axes: number[]) => {
    const asInput = op === 'ReduceSum' ? opset >= 13 : opset >= 18;
    if (asInput) nodes.push(node(op, [x, axesInput(axes)], [out], [attr('keepdims', { i: 0 })]));
    else nodes.push(node(op, [x], [out], [attr('axes', { ints: axes }), attr('keepdims', { i: 0 })]));
  };
  specs.forEach((s, k) => {
    const p = `${prefix}_${k}`;
    const axes = [...Array(s.rank).keys()].filter((a) => a !== 1);
    const o: ReduceOutputs = { shape: `${p}_shape`, mean: `${p}_mean`, variance: `${p}_var`, max: `${p}_max`, min: `${p}_min`, positive: `${p}_pos` };
    nodes.push(node('Shape', [s.value], [o.shape]));
    // training-mode BatchNormalization: opset >= 14 says so with training_mode; before, asking for its five
    // outputs does. Momentum 0: the "running" statistics it outputs are the batch's own.
    const ones = floats(s.channels, 1);
    const zeros = floats(s.channels, 0);
    const bnOut = opset >= 14 ? [`${p}_bn`, o.mean, o.variance] : [`${p}_bn`, o.mean, o.variance, `${p}_saved_mean`, `${p}_saved_var`];
    const bnAttrs = opset >= 14 ? [attr('training_mode', { i: 1 }), attr('momentum', { f: 0 })] : [attr('momentum', { f: 0 })];
    nodes.push(node('BatchNormalization', [s.value, ones, zeros, zeros, ones], bnOut, bnAttrs));
    reduce('ReduceMax', s.value, o.max, axes);
    reduce('ReduceMin', s.value, o.min, axes);
    nodes.push(node('Greater', [s.value, floats(1, 0)], [`${p}_gt`]));
    nodes.push(node('Cast', [`${p}_gt`], [`${p}_gt_float`], [attr('to', { i: 1 })]));
    reduce('ReduceSum', `${p}_gt_float`, o.positive, axes);
    outputs.push(o);
  });
  // OnnxModel.runtimeBytes adds an output once, and none the graph already has
  const names = [...outputs.flatMap((o) => [o.shape, o.mean, o.variance, o.max, o.min, o.positive]), ...extraOutputs];
  const output: ValueInfoProto[] = names.map((name) => ({ name, metadataProps: [] }));
  return { extension: { ...emptyGraph(), node: nodes, initializer: inits, output }, outputs };
}
