/**
 * The in-memory ONNX model: the decoded ModelProto plus where its external data lives.
 * Immutable by convention: rewrites build a new ModelProto (sharing untouched messages and tensor bytes)
 * and a new OnnxModel, so an older OnnxModel is a complete undo state.
 */
import * as path from 'node:path';
import type { Model } from '../../api';
import type { AttributeProto, GraphProto, ModelProto, NodeProto, TensorProto, ValueInfoProto } from './proto';
import { appendGraph, encodeModel } from './codec';
import { ExternalDataResolver } from './tensor';

export class OnnxModel implements Model {
  readonly format = 'onnx' as const;
  constructor(
    readonly proto: ModelProto,
    readonly baseDir: string,
    readonly fileBytes: number | null,
    readonly external: ExternalDataResolver,
    /** the bytes `proto` was decoded from (a model read from a file), null for a derived model */
    readonly source: Uint8Array | null = null,
  ) {}

  get graph(): GraphProto {
    // assertLooksLikeOnnx guarantees a graph at load time
    return this.proto.graph as GraphProto;
  }

  /** a model with a new proto sharing this one's external data */
  derive(proto: ModelProto): OnnxModel {
    return new OnnxModel(proto, this.baseDir, null, this.external);
  }

  /**
   * Bytes for onnxruntime: the model with its external data inlined, and `extension`'s nodes, initializers and
   * outputs appended to the main graph (an output the graph already has, or named twice, is added once). A
   * model read from a file without external data reuses the file's bytes (appendGraph: the extension follows
   * as a second graph field; the weights are not re-encoded, which saved ~70 ms of a probe of the 132 MB
   * FCN-ResNet50); any other model is encoded.
   */
  runtimeBytes(extension?: GraphProto): Uint8Array {
    if (extension) {
      const have = new Set(this.graph.output.map((o) => o.name ?? ''));
      const output: ValueInfoProto[] = [];
      for (const o of extension.output) {
        if (have.has(o.name ?? '')) continue;
        have.add(o.name ?? '');
        output.push(o);
      }
      extension = { ...extension, output };
    }
    const inlined = this.external.inlineAll(this.proto);
    // onnxruntime-node takes no SharedArrayBuffer-backed bytes (the file's bytes are, from 1 MB): slice() copies
    if (this.source && inlined === this.proto) return extension ? appendGraph(this.source, extension) : this.source.slice();
    if (!extension) return encodeModel(inlined);
    const g = inlined.graph!;
    const graph: GraphProto = { ...g, node: [...g.node, ...extension.node], initializer: [...g.initializer, ...extension.initializer], output: [...g.output, ...extension.output] };
    return encodeModel({ ...inlined, graph });
  }
}

export function newExternalResolver(baseDir: string): ExternalDataResolver {
  return new ExternalDataResolver(path.resolve(baseDir));
}

export function isDefaultDomain(domain: string | undefined): boolean {
  return !domain || domain === 'ai.onnx';
}

/** the model's default-domain (ai.onnx) opset version; 1 when it names none */
export function defaultOpset(proto: ModelProto): number {
  const e = proto.opsetImport.find((o) => isDefaultDomain(o.domain));
  return e ? Number(e.version ?? 1n) : 1;
}

export function attr(node: NodeProto, name: string): AttributeProto | undefined {
  return node.attribute.find((a) => a.name === name);
}

export function attrInt(node: NodeProto, name: string, dflt: number): number {
  const a = attr(node, name);
  return a?.i !== undefined ? Number(a.i) : dflt;
}

export function attrFloat(node: NodeProto, name: string, dflt: number): number {
  const a = attr(node, name);
  return a?.f !== undefined ? a.f : dflt;
}

export function attrInts(node: NodeProto, name: string): number[] | undefined {
  const a = attr(node, name);
  return a && a.ints.length > 0 ? a.ints.map(Number) : undefined;
}

export function attrString(node: NodeProto, name: string): string | undefined {
  const a = attr(node, name);
  return a?.s ? Buffer.from(a.s).toString('utf8') : undefined;
}

/** The constant tensors of a graph: initializers and single-tensor `Constant` nodes, by output name. */
export interface ConstantSource {
  tensor: TensorProto;
  /** the Constant node that holds it, if it is not an initializer */
  node?: NodeProto;
  /** read through an Identity of a constant (exporters dedupe equal tensors that way): never edit in place */
  alias?: boolean;
}

export function constantTensors(graph: GraphProto): Map<string, ConstantSource> {
  const map = new Map<string, ConstantSource>();
  for (const t of graph.initializer) if (t.name) map.set(t.name, { tensor: t });
  for (const n of graph.node) {
    if (n.opType !== 'Constant' || !isDefaultDomain(n.domain) || n.output.length !== 1) continue;
    const t = constantNodeTensor(n);
    if (t) map.set(n.output[0], { tensor: t, node: n });
  }
  for (const n of graph.node) {
    if (n.opType !== 'Identity' || !isDefaultDomain(n.domain) || !n.output[0]) continue;
    const src = map.get(n.input[0]);
    if (src) map.set(n.output[0], { tensor: src.tensor, alias: true });
  }
  return map;
}

/** The tensor a Constant node produces (value, value_float(s), value_int(s)); undefined for sparse/strings. */
export function constantNodeTensor(n: NodeProto): TensorProto | undefined {
  for (const a of n.attribute) {
    switch (a.name) {
      case 'value':
        return a.t;
      case 'value_float':
        return tensorOf(1, [], { floatData: new Float32Array([a.f ?? 0]) });
      case 'value_floats':
        return tensorOf(1, [a.floats.length], { floatData: Float32Array.from(a.floats) });
      case 'value_int':
        return tensorOf(7, [], { int64Data: BigInt64Array.from([a.i ?? 0n]) });
      case 'value_ints':
        return tensorOf(7, [a.ints.length], { int64Data: BigInt64Array.from(a.ints) });
      default:
        break;
    }
  }
  return undefined;
}

function tensorOf(dataType: number, dims: number[], data: Partial<TensorProto>): TensorProto {
  return { dims: dims.map(BigInt), dataType, externalData: [], metadataProps: [], ...data };
}

/** Names read by a graph's nodes, including those read from inside subgraphs (outer-scope references). */
export function referencedNames(graph: GraphProto, into = new Set<string>()): Set<string> {
  for (const n of graph.node) {
    for (const i of n.input) if (i) into.add(i);
    for (const a of n.attribute) {
      if (a.g) referencedNames(a.g, into);
      for (const g of a.graphs) referencedNames(g, into);
    }
  }
  for (const o of graph.output) if (o.name) into.add(o.name);
  return into;
}

/** consumers of each value name in the top level of a graph (subgraph readers are counted on their parent node) */
export function consumers(graph: GraphProto): Map<string, NodeProto[]> {
  const map = new Map<string, NodeProto[]>();
  const add = (name: string, n: NodeProto) => {
    const list = map.get(name);
    if (list) {
      if (!list.includes(n)) list.push(n);
    } else map.set(name, [n]);
  };
  for (const n of graph.node) {
    for (const i of n.input) if (i) add(i, n);
    for (const a of n.attribute) {
      const subs = a.g ? [a.g, ...a.graphs] : a.graphs;
      for (const g of subs) for (const name of referencedNames(g)) add(name, n);
    }
  }
  return map;
}

export function producers(graph: GraphProto): Map<string, NodeProto> {
  const map = new Map<string, NodeProto>();
  for (const n of graph.node) for (const o of n.output) if (o) map.set(o, n);
  return map;
}

export function dims(t: TensorProto): number[] {
  return t.dims.map(Number);
}
