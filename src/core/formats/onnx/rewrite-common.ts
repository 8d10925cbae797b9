/**
 * Shared plumbing of the ONNX doctor rewrites (remove Dropout, fold BN forward, BN -> affine, BN eval mode):
 * the read-only context a plan needs and the assembly of the rewritten graph. The editing itself is the
 * copy-on-write GraphEditor of fold-batchnorm.ts, so every rewrite shares untouched messages and bytes.
 */
import { uniqueLayerNames } from './graph';
import { constantTensors, consumers, defaultOpset, isDefaultDomain, producers, type ConstantSource, type OnnxModel } from './model';
import type { GraphProto, ModelProto, NodeProto } from './proto';
import type { GraphEditor } from './fold-batchnorm';

const FLOATS = new Set([1, 10, 11, 16]);

export interface PlanContext {
  model: OnnxModel;
  graph: GraphProto;
  nameOf: Map<NodeProto, string>;
  /** constants, without initializers that are also graph inputs (IR >= 4: overridable defaults) */
  constants: Map<string, ConstantSource>;
  cons: Map<string, NodeProto[]>;
  prods: Map<string, NodeProto>;
  graphOutputs: Set<string>;
  /** default-domain opset */
  opset: number;
  isFloatConst(name: string | undefined): boolean;
  /** readers' layer names */
  readersOf(value: string): NodeProto[];
  name(n: NodeProto): string;
}

export function planContext(model: OnnxModel): PlanContext {
  const graph = model.graph;
  const names = uniqueLayerNames(graph.node);
  const nameOf = new Map<NodeProto, string>(graph.node.map((n, i) => [n, names[i]]));
  const constants = constantTensors(graph);
  if (Number(model.proto.irVersion ?? 0n) >= 4) for (const i of graph.input) if (i.name) constants.delete(i.name);
  const cons = consumers(graph);
  return {
    model,
    graph,
    nameOf,
    constants,
    cons,
    prods: producers(graph),
    graphOutputs: new Set(graph.output.map((o) => o.name ?? '')),
    opset: defaultOpset(model.proto),
    isFloatConst(name) {
      const c = name ? constants.get(name) : undefined;
      return !!c && FLOATS.has(c.tensor.dataType ?? 0);
    },
    readersOf(value) {
      return cons.get(value) ?? [];
    },
    name(n) {
      return nameOf.get(n) ?? n.name ?? n.opType ?? '?';
    },
  };
}

/** inference-mode BatchNormalization with constant float parameters whose running-stat outputs nobody reads; else why not */
export function batchNormBlocker(ctx: PlanContext, bn: NodeProto): string | null {
  const training = bn.attribute.find((a) => a.name === 'training_mode');
  if (training?.i !== undefined && Number(training.i) === 1) {
    return 'exported in training mode (training_mode=1): it normalizes with the statistics of each batch, which no constant rewrite can reproduce';
  }
  if (bn.output.slice(1).some((o) => o && (ctx.readersOf(o).length || ctx.graphOutputs.has(o)))) {
    return 'its running-mean/variance outputs are used, so the node cannot be removed';
  }
  if (![1, 2, 3, 4].every((k) => ctx.isFloatConst(bn.input[k]))) return 'its scale, bias, mean or variance is not a constant tensor';
  return null;
}

/** assembles the rewritten model (see GraphEditor.finish) */
export function finishModel(_model: OnnxModel, ed: GraphEditor, dropped: Iterable<string>, gone: Iterable<string>): ModelProto {
  return ed.finish(dropped, gone);
}

export function isOp(n: NodeProto | undefined, op: string): boolean {
  return !!n && n.opType === op && isDefaultDomain(n.domain);
}
