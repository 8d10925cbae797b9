/** Test helper: small ONNX graphs built with our own codec (for cases no exporter produces on demand). */
import { emptyGraph, emptyNode, encodeModel } from '../../src/core/formats/onnx/codec';
import { newExternalResolver, OnnxModel } from '../../src/core/formats/onnx/model';
import type { AttributeProto, NodeProto, TensorProto, ValueInfoProto } from '../../src/core/formats/onnx/proto';
import { makeFloat32Tensor } from '../../src/core/formats/onnx/tensor';

export type Attr = { i: number } | { f: number } | { ints: number[] } | { s: string };

function attribute(name: string, a: Attr): AttributeProto {
  const base: AttributeProto = { name, floats: [], ints: [], strings: [], tensors: [], graphs: [], sparseTensors: [], typeProtos: [] };
  if ('i' in a) return { ...base, type: 2, i: BigInt(a.i) };
  if ('f' in a) return { ...base, type: 1, f: a.f };
  if ('ints' in a) return { ...base, type: 7, ints: a.ints.map(BigInt) };
  return { ...base, type: 3, s: new TextEncoder().encode(a.s) };
}

export function valueInfo(name: string, dims?: (number | string)[], elemType = 1): ValueInfoProto {
  const vi: ValueInfoProto = { name, metadataProps: [] };
  if (dims) vi.type = { tensorType: { elemType, shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: BigInt(d) } : { dimParam: d })) } } };
  return vi;
}

export class GraphBuilder {
  readonly graph = emptyGraph();

  input(name: string, dims: (number | string)[], elemType = 1): this {
    this.graph.input.push(valueInfo(name, dims, elemType));
    return this;
  }

  output(name: string, dims?: (number | string)[]): this {
    this.graph.output.push(valueInfo(name, dims));
    return this;
  }

  init(name: string, dims: number[], data: Float32Array | number[]): this {
    this.graph.initializer.push(makeFloat32Tensor(name, dims, data instanceof Float32Array ? data : Float32Array.from(data)));
    return this;
  }

  initInt64(name: string, values: number[]): this {
    const t: TensorProto = { name, dims: [BigInt(values.length)], dataType: 7, int64Data: BigInt64Array.from(values.map(BigInt)), externalData: [], metadataProps: [] };
    this.graph.initializer.push(t);
    return this;
  }

  node(op: string, input: string[], output: string[], attrs: Record<string, Attr> = {}, name?: string): this {
    const n: NodeProto = { ...emptyNode(op), input, output, name: name ?? output[0], attribute: Object.entries(attrs).map(([k, v]) => attribute(k, v)) };
    this.graph.node.push(n);
    return this;
  }

  model(opset = 13, irVersion = 8): OnnxModel {
    const proto = { irVersion: BigInt(irVersion), producerName: 'model-surgeon-tests', opsetImport: [{ domain: '', version: BigInt(opset) }], graph: this.graph, metadataProps: [], trainingInfo: [], functions: [] };
    return new OnnxModel(proto, process.cwd(), null, newExternalResolver(process.cwd()));
  }

  bytes(opset = 13, irVersion = 8): Uint8Array {
    return encodeModel(this.model(opset, irVersion).proto);
  }
}
