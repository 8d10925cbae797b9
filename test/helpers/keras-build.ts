/**
 * Test helper: small Keras functional models built in TypeScript (layer configs as Keras 2 writes them, or as
 * Keras 3 writes them: call args as __keras_tensor__ objects, build_config, batch_shape), for cases no fixture
 * file holds. Saved with our .h5 / .keras writers and read back by the tests; TF.js runs them as the oracle.
 */
import type { JsonObject } from '../../src/core/formats/keras/json';
import { float32Weight, KerasModel, type KWeight } from '../../src/core/formats/keras/model';

/** deterministic values in [-0.5, 0.5) */
export function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296 - 0.5;
  };
}

export const inputLayer = (name: string, shape: number[]): JsonObject => ({
  class_name: 'InputLayer',
  name,
  inbound_nodes: [],
  config: { name, batch_input_shape: [null, ...shape], dtype: 'float32', sparse: false, ragged: false },
});

export const conv = (name: string, filters: number, k: number, input: string, padding = 'same'): JsonObject => ({
  class_name: 'Conv2D',
  name,
  inbound_nodes: [[[input, 0, 0, {}]]],
  config: { name, trainable: true, dtype: 'float32', filters, kernel_size: [k, k], strides: [1, 1], padding, data_format: 'channels_last', dilation_rate: [1, 1], groups: 1, activation: 'linear', use_bias: true },
});

export const layer = (cls: string, name: string, inputs: string[], extra: JsonObject = {}): JsonObject => ({
  class_name: cls,
  name,
  inbound_nodes: [inputs.map((i) => [i, 0, 0, {}])],
  config: { name, trainable: true, dtype: 'float32', ...extra },
});

/** the Keras 2 functional layers as Keras 3 writes them; `shapes` holds every layer's output shape */
export function keras3Config(name: string, layers: JsonObject[], shapes: Record<string, (number | null)[]>, input: string, output: string): JsonObject {
  const tensor = (n: string) => ({ class_name: '__keras_tensor__', config: { shape: [...shapes[n]], dtype: 'float32', keras_history: [n, 0, 0] } });
  const out = layers.map((l) => {
    const lname = l.name as string;
    const cfg = { ...(l.config as JsonObject) };
    if (l.class_name === 'InputLayer') {
      cfg.batch_shape = cfg.batch_input_shape;
      delete cfg.batch_input_shape;
      delete cfg.ragged;
      return { module: 'keras.layers', class_name: 'InputLayer', config: cfg, registered_name: null, name: lname, inbound_nodes: [] };
    }
    const inputs = ((l.inbound_nodes as JsonObject[][][])[0] ?? []).map((r) => r[0] as unknown as string);
    const multi = inputs.length > 1;
    return {
      module: 'keras.layers',
      class_name: l.class_name,
      config: cfg,
      registered_name: null,
      build_config: { input_shape: multi ? inputs.map((i) => [...shapes[i]]) : [...shapes[inputs[0]]] },
      name: lname,
      inbound_nodes: [{ args: multi ? [inputs.map(tensor)] : [tensor(inputs[0])], kwargs: {} }],
    } as JsonObject;
  });
  return { module: 'keras.src.models.functional', class_name: 'Functional', config: { name, trainable: true, layers: out, input_layers: [[input, 0, 0]], output_layers: [[output, 0, 0]] }, registered_name: 'Functional' };
}

/** collects float32 weights as Keras 2 .h5 stores them */
export class WeightList {
  readonly weights: KWeight[] = [];
  add(l: string, key: string, shape: number[], fill: (i: number) => number): void {
    const v = new Float32Array(shape.reduce((a, b) => a * b, 1));
    for (let i = 0; i < v.length; i++) v[i] = fill(i);
    this.weights.push(float32Weight({ storeName: `${l}/${key}:0`, layerPath: [l], key, shape }, v));
  }
}

/** a Keras 2 (.h5) or Keras 3 (.keras) model of these layers and weights, not yet saved, in folder `dir` */
export function kerasModel(
  format: 'keras-h5' | 'keras',
  dir: string,
  spec: { name: string; layers: JsonObject[]; shapes: Record<string, (number | null)[]>; input: string; output: string },
  weights: KWeight[],
): KerasModel {
  if (format === 'keras') {
    const k3 = keras3Config(spec.name, spec.layers, spec.shapes, spec.input, spec.output);
    const storeOf = new Map<string, number>();
    const k3weights = weights.map((x) => {
      const i = storeOf.get(x.layerPath[0]) ?? 0;
      storeOf.set(x.layerPath[0], i + 1);
      return { ...x, storeName: `layers/${x.layerPath[0]}/vars/${i}` };
    });
    return new KerasModel('keras', dir, null, k3, k3weights, { kind: 'keras', config: k3, tree: { kind: 'group', attrs: [], children: [['vars', { kind: 'group', attrs: [], children: [] }]] }, entries: [] });
  }
  const config: JsonObject = { class_name: 'Functional', config: { name: spec.name, layers: spec.layers, input_layers: [[spec.input, 0, 0]], output_layers: [[spec.output, 0, 0]] }, keras_version: '2.15.0', backend: 'tensorflow' };
  return new KerasModel('keras-h5', dir, null, config, weights, { kind: 'keras-h5', tree: { kind: 'group', attrs: [], children: [] } });
}
