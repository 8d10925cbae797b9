/**
 * TF.js's own loader on files on disk: a small IOHandler (model.json + shards read with fs, handed to
 * tf.io.fromMemory) so tests load what we wrote exactly as tf.loadLayersModel / tf.loadGraphModel would,
 * dequantizing with TF.js's own code.
 */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import type * as TfCore from '@tensorflow/tfjs-core';
import type { Model } from '../../src/core/api';
import { loadRunnable, loadTfjs, tfConverter, tfLayers } from '../../src/core/engines/tfjs';
import type { KerasModel } from '../../src/core/formats/keras/model';
import { kerasRunnable } from '../../src/core/formats/keras/runnable';

interface ModelJson {
  modelTopology: object;
  weightsManifest: { paths: string[]; weights: TfCore.io.WeightsManifestEntry[] }[];
  format?: string;
  generatedBy?: string;
  convertedBy?: string | null;
  signature?: object;
}

export function fileHandler(modelJson: string): TfCore.io.IOHandler {
  return {
    load: async () => {
      const { tf } = await loadTfjs();
      const json = JSON.parse(readFileSync(modelJson, 'utf8')) as ModelJson;
      const dir = path.dirname(modelJson);
      const buffers = json.weightsManifest.flatMap((g) => g.paths.map((p) => readFileSync(path.join(dir, p))));
      const data = Buffer.concat(buffers);
      return tf.io.fromMemory({
        modelTopology: json.modelTopology,
        weightSpecs: json.weightsManifest.flatMap((g) => g.weights),
        weightData: data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength),
        format: json.format,
        generatedBy: json.generatedBy,
        convertedBy: json.convertedBy ?? null,
        ...(json.signature ? { signature: json.signature } : {}),
      }).load!();
    },
  };
}

export async function loadLayersFromFile(modelJson: string): Promise<import('@tensorflow/tfjs-layers').LayersModel> {
  await loadTfjs();
  return tfLayers().loadLayersModel(fileHandler(modelJson), { strict: true });
}

export async function loadGraphFromFile(modelJson: string): Promise<import('@tensorflow/tfjs-converter').GraphModel> {
  await loadTfjs();
  return tfConverter().loadGraphModel(fileHandler(modelJson));
}

/** seeded N(0,1) input of a shape */
export function seededInput(shape: number[], seed: number): Float32Array {
  let s = seed >>> 0;
  const next = () => {
    let t = (s = (s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const n = shape.reduce((p, v) => p * v, 1);
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const u = next() || 1e-12;
    a[i] = Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * next());
  }
  return a;
}

/** largest |a - b| divided by largest |a| */
export function relError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Infinity;
  let d = 0;
  let ref = 0;
  for (let i = 0; i < a.length; i++) {
    d = Math.max(d, Math.abs(a[i] - b[i]));
    ref = Math.max(ref, Math.abs(a[i]));
  }
  return ref > 0 ? d / ref : d;
}

/** TF.js output (the first one) of a Keras-topology model on one fixture input */
export async function runKerasOnInput(m: Model, name: string, input: { input: number[]; input_shape: number[] }): Promise<Float32Array> {
  const { tf } = await loadTfjs();
  const lm = await loadRunnable(tf, kerasRunnable(m as KerasModel), name);
  try {
    const x = tf.tensor(Float32Array.from(input.input), input.input_shape);
    const [y] = await lm.run([x]);
    x.dispose();
    return y;
  } finally {
    lm.dispose();
  }
}
