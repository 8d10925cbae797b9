/**
 * Activation swap (ONNX): ReLU / ReLU6 (Clip 0..6) / LeakyRelu -> SELU, ELU, GELU or LeakyRelu.
 *
 * This changes what a trained model computes: it is a starting point for fine-tuning, never an equivalence.
 * measureSwap() reports the deviation (both models in onnxruntime on the same inputs) and the activation
 * mean/variance-by-depth profile before and after (from probes), which is what a self-normalizing (SELU)
 * network is about.
 *
 * The SELU recipe also removes BatchNorm (folded into the layer before it with the existing fold, exact) and
 * would replace Dropout with AlphaDropout: ONNX has no AlphaDropout, and in an inference graph both are the
 * identity, so the Dropout nodes stay as they are and are counted in `replaced_dropout` with a note.
 * GELU: the Gelu op from opset 20, else the erf formula x * 0.5 * (1 + erf(x / sqrt(2))) in Div/Erf/Add/Mul.
 */
import { compareOnInputs, depthProfile, probeOnnx } from '../../analysis/probe';
import type { InputSource, OpenInputsOptions } from '../../analysis/probe-inputs';
import { ModelError } from '../../errors';
import type { DepthProfileRow, SkippedCandidate, SwapSummary, VerifyReport } from '../../types';
import { emptyNode } from './codec';
import { applyFold } from './fold-batchnorm';
import { uniqueLayerNames } from './graph';
import { attr, constantTensors, defaultOpset, isDefaultDomain, referencedNames, type OnnxModel } from './model';
import type { AttributeProto, GraphProto, NodeProto, TensorProto } from './proto';
import { makeTensorLike, readTensorAsFloat32 } from './tensor';

export type SwapTarget = 'selu' | 'elu' | 'gelu' | 'leaky-relu';
export type SwapSource = 'relu' | 'relu6' | 'leaky-relu';

export interface SwapOptions {
  to: SwapTarget;
  /** activations to replace (default: all three) */
  from?: SwapSource[];
  /** ELU alpha (default 1) or LeakyRelu alpha (default 0.01) */
  alpha?: number;
  /** fold BatchNorms first (default: true for SELU, the recipe; false otherwise) */
  foldBatchNorm?: boolean;
  /** only these layers (default: every matching activation) */
  layers?: string[];
}

export interface SwapResult extends SwapSummary {
  model: OnnxModel;
  /** the layers that were swapped (their output tensor names are unchanged) */
  layers: string[];
}

const SELU_ALPHA = 1.6732632423543772;
const SELU_GAMMA = 1.0507009873554805;

function floatAttr(name: string, f: number): AttributeProto {
  return { name, type: 1, f, floats: [], ints: [], strings: [], tensors: [], graphs: [], sparseTensors: [], typeProtos: [] };
}

function stringAttr(name: string, s: string): AttributeProto {
  return { name, type: 3, s: new TextEncoder().encode(s), floats: [], ints: [], strings: [], tensors: [], graphs: [], sparseTensors: [], typeProtos: [] };
}

/** 'relu' | 'relu6' | 'leaky-relu' for an activation node, else null */
function sourceKind(node: NodeProto, model: OnnxModel, constants: ReturnType<typeof constantTensors>): SwapSource | null {
  if (!isDefaultDomain(node.domain)) return null;
  if (node.opType === 'Relu') return 'relu';
  if (node.opType === 'LeakyRelu') return 'leaky-relu';
  if (node.opType !== 'Clip') return null;
  const bound = (k: number, name: string): number | null => {
    const a = attr(node, name);
    if (a?.f !== undefined) return a.f;
    const input = node.input[k];
    if (!input) return null;
    const c = constants.get(input);
    if (!c) return null;
    const v = readTensorAsFloat32(c.tensor, model.external);
    return v.length === 1 ? v[0] : null;
  };
  return bound(1, 'min') === 0 && bound(2, 'max') === 6 ? 'relu6' : null;
}

/**
 * Replaces activations. Immutable: returns a new model (sharing untouched messages); names of the swapped
 * layers and of their output tensors are kept.
 */
export function swapActivation(model: OnnxModel, opts: SwapOptions): SwapResult {
  const targets: SwapTarget[] = ['selu', 'elu', 'gelu', 'leaky-relu'];
  if (!targets.includes(opts.to)) throw new ModelError(`unknown activation '${opts.to}' (one of ${targets.join(', ')})`);
  const from = new Set<SwapSource>(opts.from ?? ['relu', 'relu6', 'leaky-relu']);
  const notes: string[] = [];
  const skipped: SkippedCandidate[] = [];
  let current = model;
  let removedBn = 0;
  if (opts.foldBatchNorm ?? opts.to === 'selu') {
    const folded = applyFold(current);
    current = folded.model;
    removedBn = folded.plan.candidates.length;
    for (const s of folded.plan.skipped) skipped.push({ layer: s.layer, reason: `BatchNorm kept: ${s.reason}` });
    if (opts.to === 'selu') notes.push(`SELU recipe: ${removedBn} BatchNorm layer(s) folded into the layer before them (exact)${folded.plan.skipped.length ? `; ${folded.plan.skipped.length} could not be folded and remain` : ''}`);
  }
  const graph = current.graph;
  const opset = defaultOpset(current.proto);
  if (opts.to === 'gelu' && opset < 9) throw new ModelError(`GELU needs opset >= 9 (Erf); this model has opset ${opset}`);
  const constants = constantTensors(graph);
  const names = uniqueLayerNames(graph.node);
  const wanted = opts.layers ? new Set(opts.layers) : null;
  const taken = referencedNames(graph);
  for (const n of graph.node) for (const o of n.output) taken.add(o);
  for (const t of graph.initializer) if (t.name) taken.add(t.name);
  const fresh = (base: string) => {
    let name = base;
    for (let k = 1; taken.has(name); k++) name = `${base}_${k}`;
    taken.add(name);
    return name;
  };
  const dtypeLike = floatLike(graph);
  const newInits: TensorProto[] = [];
  let geluConsts: { sqrt2: string; one: string; half: string } | null = null;
  const nodes: NodeProto[] = [];
  const swappedLayers: string[] = [];
  let dropouts = 0;
  graph.node.forEach((node, i) => {
    if (node.opType === 'Dropout' && isDefaultDomain(node.domain)) dropouts++;
    const kind = sourceKind(node, current, constants);
    if (!kind || !from.has(kind) || (wanted && !wanted.has(names[i]))) {
      nodes.push(node);
      return;
    }
    if (opts.to === 'leaky-relu' && kind === 'leaky-relu' && opts.alpha === undefined) {
      skipped.push({ layer: names[i], reason: 'already LeakyRelu' });
      nodes.push(node);
      return;
    }
    const x = node.input[0];
    const y = node.output[0];
    const base = { ...emptyNode(''), name: node.name, input: [x], output: [y], metadataProps: node.metadataProps };
    swappedLayers.push(names[i]);
    switch (opts.to) {
      case 'selu':
        nodes.push({ ...base, opType: 'Selu' });
        return;
      case 'elu':
        nodes.push({ ...base, opType: 'Elu', attribute: opts.alpha !== undefined ? [floatAttr('alpha', opts.alpha)] : [] });
        return;
      case 'leaky-relu':
        nodes.push({ ...base, opType: 'LeakyRelu', attribute: opts.alpha !== undefined ? [floatAttr('alpha', opts.alpha)] : [] });
        return;
      default:
        break;
    }
    if (opset >= 20) {
      nodes.push({ ...base, opType: 'Gelu', attribute: [stringAttr('approximate', 'none')] });
      return;
    }
    if (!geluConsts) {
      const mk = (n: string, v: number) => {
        const name = fresh(n);
        newInits.push({ ...makeTensorLike(dtypeLike, new Float32Array([v]), []), name });
        return name;
      };
      geluConsts = { sqrt2: mk('gelu_sqrt2', Math.SQRT2), one: mk('gelu_one', 1), half: mk('gelu_half', 0.5) };
    }
    const stem = node.name || y;
    const t1 = fresh(`${stem}/gelu_div`);
    const t2 = fresh(`${stem}/gelu_erf`);
    const t3 = fresh(`${stem}/gelu_add`);
    const t4 = fresh(`${stem}/gelu_mul`);
    const n = (op: string, input: string[], output: string, suffix: string): NodeProto => ({ ...emptyNode(op), name: node.name ? `${node.name}/${suffix}` : '', input, output: [output] });
    nodes.push(n('Div', [x, geluConsts.sqrt2], t1, 'div'));
    nodes.push(n('Erf', [t1], t2, 'erf'));
    nodes.push(n('Add', [t2, geluConsts.one], t3, 'add'));
    nodes.push(n('Mul', [x, t3], t4, 'mul'));
    // the last node keeps the activation's name and output
    nodes.push({ ...n('Mul', [t4, geluConsts.half], y, 'mul'), name: node.name, metadataProps: node.metadataProps });
  });
  if (opts.to === 'gelu' && opset < 20 && swappedLayers.length) notes.push(`opset ${opset} has no Gelu op: GELU is written as x * 0.5 * (1 + erf(x / sqrt(2))) (Div, Erf, Add, Mul)`);
  const replacedDropout = opts.to === 'selu' ? dropouts : 0;
  if (replacedDropout) {
    notes.push(
      `replaced_dropout: ${replacedDropout}: the SELU recipe uses AlphaDropout, which ONNX does not have; in an inference graph Dropout and AlphaDropout are both the identity, so the Dropout nodes are left as they are (use AlphaDropout in the training code when fine-tuning)`,
    );
  }
  if (opts.to === 'selu') notes.push(`SELU = ${SELU_GAMMA} * (x > 0 ? x : ${SELU_ALPHA} * (exp(x) - 1)); self-normalization also assumes LeCun-normal weights, which a trained ReLU network does not have`);
  notes.push('swapping activations changes the function of a trained model: measure the deviation and fine-tune; this is a recipe, not an equivalence');
  const newGraph: GraphProto = { ...graph, node: nodes, initializer: newInits.length ? [...graph.initializer, ...newInits] : graph.initializer };
  const out = swappedLayers.length || current !== model ? current.derive({ ...current.proto, graph: newGraph }) : model;
  return { model: out, swapped: swappedLayers.length, removed_bn: removedBn, replaced_dropout: replacedDropout, skipped, notes, layers: swappedLayers };
}

/** a float tensor whose dtype new constants copy: float16 models get float16 constants */
function floatLike(graph: GraphProto): TensorProto {
  const elem = graph.input.map((i) => i.type?.tensorType?.elemType).find((t) => t === 1 || t === 10 || t === 11 || t === 16);
  return { dims: [], dataType: elem ?? 1, externalData: [], metadataProps: [] };
}

export interface SwapMeasurement {
  /** the swapped model vs the original on the probe inputs */
  deviation: VerifyReport;
  /** activation mean / variance by depth, before and after (matched by output tensor) */
  profile: DepthProfileRow[];
}

/**
 * The deviation and the depth profile of a swap: both models run in onnxruntime on the same inputs (default
 * seeded normal(0, 1)); the probe follows the original's activation outputs (kept by the swap).
 */
export async function measureSwap(
  before: OnnxModel,
  after: OnnxModel,
  source: InputSource = { kind: 'random' },
  opts: OpenInputsOptions & { signal?: AbortSignal } = {},
): Promise<SwapMeasurement> {
  const deviation = await compareOnInputs(before, after, source, opts);
  const p0 = await probeOnnx(before, source, opts);
  const outputs = p0.layers.map((l) => l.output);
  const produced = new Set(after.graph.node.flatMap((n) => n.output));
  const p1 = await probeOnnx(after, source, { ...opts, layers: outputs.filter((o) => produced.has(o)) });
  const profile = depthProfile(p0, p1);
  // the erf formula ends in a Mul that keeps the activation's output name
  for (const row of profile) if (row.op_after === 'Mul') row.op_after = 'Gelu (erf formula)';
  return { deviation, profile };
}
