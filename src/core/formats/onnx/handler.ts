/** The ONNX format handler: the existing ONNX implementation behind the FormatHandler interface. */
import * as path from 'node:path';
import type { Model } from '../../api';
import { verifyOnnx } from '../../engines/onnxruntime';
import type { FormatHandler } from '../handler';
import { encodeModel } from './codec';
import { applyFold, planFold } from './fold-batchnorm';
import { buildGraphView } from './graph';
import { OnnxModel } from './model';
import type { TensorProto } from './proto';
import { tensorByteLength } from './tensor';
import { writeFileAtomic } from '../../util/fs';

function sizeOf(m: OnnxModel): { params: number; bytes: number; layers: number } {
  const g = m.graph;
  let params = 0;
  let bytes = 0;
  const count = (t: TensorProto) => {
    params += t.dims.reduce((p, d) => p * Number(d), 1);
    bytes += tensorByteLength(t);
  };
  g.initializer.forEach(count);
  let layers = 0;
  for (const n of g.node) {
    if (n.opType === 'Constant' && (!n.domain || n.domain === 'ai.onnx')) {
      const t = n.attribute.find((a) => a.name === 'value')?.t;
      if (t) count(t);
    } else layers++;
  }
  return { params, bytes, layers };
}

export const onnxHandler: FormatHandler<OnnxModel> = {
  formats: ['onnx'],
  owns: (m: Model): m is OnnxModel => m instanceof OnnxModel,
  graphView: (m, dims) => buildGraphView(m, dims),
  planFold: (m) => planFold(m),
  applyFold: (m) => {
    const { model, plan } = applyFold(m);
    return { model, plan, notes: [] };
  },
  size: sizeOf,
  verify: (a, b, opts) => {
    const inputs = buildGraphView(a).summary.inputs;
    return verifyOnnx({ bytes: a.runtimeBytes(), inputs }, { bytes: b.runtimeBytes(), inputs }, opts);
  },
  serialize: (m) => encodeModel(m.proto),
  save: async (m, file) => {
    const target = path.resolve(file);
    // external data paths are relative to the model's folder: saving elsewhere inlines them
    const proto = path.dirname(target) === path.resolve(m.baseDir) ? m.proto : m.external.inlineAll(m.proto);
    await writeFileAtomic(target, encodeModel(proto));
  },
};
