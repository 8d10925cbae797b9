/** Test helpers: run a model with onnxruntime-node (the independent engine) and read ONNX test data sets. */
import { readFileSync, readdirSync } from 'node:fs';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { decodeTensor } from '../../src/core/formats/onnx/codec';
import type { TensorProto } from '../../src/core/formats/onnx/proto';
import { dtypeName, readTensorTyped } from '../../src/core/formats/onnx/tensor';

ort.env.logLevel = 'error';

export interface DataTensor {
  name: string;
  dtype: string;
  dims: number[];
  values: Float64Array;
  proto: TensorProto;
}

export function loadDataSet(dir: string): { inputs: DataTensor[]; outputs: DataTensor[] } {
  const files = readdirSync(dir);
  const read = (prefix: string) =>
    files
      .filter((f) => f.startsWith(prefix) && f.endsWith('.pb'))
      .sort((a, b) => Number(a.replace(/\D/g, '')) - Number(b.replace(/\D/g, '')))
      .map((f) => {
        const t = decodeTensor(readFileSync(path.join(dir, f)));
        let typed: ArrayLike<number | bigint> = [];
        try {
          typed = readTensorTyped(t, null) as ArrayLike<number | bigint>;
        } catch {
          // string / exotic tensors: shape only
        }
        return { name: t.name ?? '', dtype: dtypeName(t.dataType ?? 0), dims: t.dims.map(Number), values: Float64Array.from(typed, Number), proto: t };
      });
  return { inputs: read('input_'), outputs: read('output_') };
}

/** runs with onnxruntime (basic optimizations off, as the tool's verifier does) and returns outputs in order */
export async function runWithOrt(bytes: Uint8Array, inputs: DataTensor[]): Promise<Float64Array[]> {
  const session = await ort.InferenceSession.create(bytes, { graphOptimizationLevel: 'disabled' });
  try {
    const feeds: Record<string, ort.Tensor> = {};
    session.inputNames.forEach((name, k) => {
      const t = inputs[k];
      const typed = readTensorTyped(t.proto, null);
      feeds[name] = new ort.Tensor(t.dtype as 'float32', typed as Float32Array, t.dims);
    });
    const res = await session.run(feeds);
    return session.outputNames.map((n) => Float64Array.from(res[n].data as ArrayLike<number>, Number));
  } finally {
    await session.release();
  }
}
