/**
 * Keras model configs as a graph: layers with their inbound calls, for Keras 2 / TF.js layer configs
 * (`inbound_nodes: [[[name, node, tensor, kwargs], ...], ...]`) and Keras 3 ones (`inbound_nodes: [{args,
 * kwargs}]` holding `__keras_tensor__` objects with `keras_history`). Sequential models (config a list or
 * {layers}) chain their layers. Nested models (a layer that is itself a Sequential/Functional model) are kept
 * as a sub-graph with their own scope.
 */
import { arr, isObject, num, obj, str, type Json, type JsonObject } from './json';

export interface TensorRef {
  layer: string;
  node: number;
  tensor: number;
}

export interface KLayer {
  name: string;
  className: string;
  /** the layer's `config` object (inside the model config this graph was built from: edit a copy) */
  config: JsonObject;
  /** the layer entry {class_name, config, name, inbound_nodes, ...} */
  entry: JsonObject;
  /** one entry per call of the layer: the tensors it reads */
  calls: TensorRef[][];
  /** nested model */
  sub?: KGraph;
}

export interface KGraph {
  className: string;
  sequential: boolean;
  /** the model's own config ({name, layers, input_layers, output_layers}); for an old Sequential, null */
  config: JsonObject | null;
  layers: KLayer[];
  /** the config's own layer array (edits to it edit the config) */
  entries: Json[];
  inputs: TensorRef[];
  outputs: TensorRef[];
  /** names of the enclosing models, outermost first ([] at the top level) */
  scope: string[];
}

export const MODEL_CLASSES = new Set(['Sequential', 'Model', 'Functional']);

export function layerList(modelCfg: JsonObject): Json[] {
  const c = modelCfg.config;
  if (Array.isArray(c)) return c;
  return arr(obj(c)?.layers) ?? [];
}

function refFromArray(a: Json[]): TensorRef | null {
  if (a.length >= 1 && typeof a[0] === 'string') return { layer: a[0], node: num(a[1]) ?? 0, tensor: num(a[2]) ?? 0 };
  return null;
}

/** every keras_history reference in a Keras 3 call structure, in order */
function keras3Refs(v: Json, out: TensorRef[]): void {
  if (Array.isArray(v)) {
    for (const x of v) keras3Refs(x, out);
    return;
  }
  if (!isObject(v)) return;
  if (v.class_name === '__keras_tensor__') {
    const h = arr(obj(v.config)?.keras_history);
    const r = h ? refFromArray(h) : null;
    if (r) out.push(r);
    return;
  }
  for (const k of Object.keys(v)) keras3Refs(v[k], out);
}

export function parseCalls(entry: JsonObject): TensorRef[][] {
  const nodes = arr(entry.inbound_nodes) ?? [];
  const calls: TensorRef[][] = [];
  for (const n of nodes) {
    const refs: TensorRef[] = [];
    if (Array.isArray(n)) {
      // Keras 2: a call is a list of [name, node, tensor, kwargs]; some writers flatten a single input
      if (n.length > 0 && typeof n[0] === 'string') {
        const r = refFromArray(n);
        if (r) refs.push(r);
      } else
        for (const x of n) {
          const r = Array.isArray(x) ? refFromArray(x) : null;
          if (r) refs.push(r);
        }
    } else if (isObject(n)) {
      keras3Refs(n.args ?? [], refs);
      keras3Refs(n.kwargs ?? {}, refs);
    }
    calls.push(refs);
  }
  return calls;
}

/** input_layers / output_layers: [[name, node, tensor], ...] or a single [name, node, tensor] (Keras 3) */
export function parseEndpoints(v: Json | undefined): TensorRef[] {
  const a = arr(v);
  if (!a) return [];
  if (a.length > 0 && typeof a[0] === 'string') {
    const r = refFromArray(a);
    return r ? [r] : [];
  }
  const out: TensorRef[] = [];
  for (const x of a) {
    const r = Array.isArray(x) ? refFromArray(x) : null;
    if (r) out.push(r);
  }
  return out;
}

export function layerName(entry: JsonObject): string {
  return str(entry.name) ?? str(obj(entry.config)?.name) ?? '';
}

export function buildGraph(modelCfg: JsonObject, scope: string[] = []): KGraph {
  const className = str(modelCfg.class_name) ?? 'Model';
  const sequential = className === 'Sequential';
  const cfg = obj(modelCfg.config) ?? null;
  const layers: KLayer[] = [];
  let prev: TensorRef | null = null;
  const inputs: TensorRef[] = [];
  /** a Sequential without an InputLayer reads an implicit input shaped by its first layer's batch_input_shape */
  const implicitInput = `${str(cfg?.name) ?? 'sequential'}_input`;
  for (const e of layerList(modelCfg)) {
    if (!isObject(e)) continue;
    const name = layerName(e);
    const config = obj(e.config) ?? {};
    const cls = str(e.class_name) ?? '';
    let calls: TensorRef[][];
    if (sequential) {
      if (cls === 'InputLayer') {
        calls = [];
        inputs.push({ layer: name, node: 0, tensor: 0 });
      } else {
        if (!prev) {
          prev = { layer: implicitInput, node: 0, tensor: 0 };
          inputs.push(prev);
        }
        calls = [[prev]];
      }
      prev = { layer: name, node: 0, tensor: 0 };
    } else calls = parseCalls(e);
    const layer: KLayer = { name, className: cls, config, entry: e, calls };
    if (MODEL_CLASSES.has(cls) && (Array.isArray(e.config) || Array.isArray(config.layers))) layer.sub = buildGraph(e, [...scope, name]);
    layers.push(layer);
  }
  const entries = layerList(modelCfg);
  if (sequential) return { className, sequential, config: cfg, layers, entries, inputs, outputs: prev ? [prev] : [], scope };
  return {
    className,
    sequential,
    config: cfg,
    layers,
    entries,
    inputs: parseEndpoints(cfg?.input_layers),
    outputs: parseEndpoints(cfg?.output_layers),
    scope,
  };
}

/** consumers of each layer's outputs within one graph (layer name -> layers that read it, with the call index) */
export function consumersOf(g: KGraph): Map<string, { layer: KLayer; call: number }[]> {
  const map = new Map<string, { layer: KLayer; call: number }[]>();
  for (const l of g.layers)
    l.calls.forEach((refs, call) => {
      for (const r of refs) {
        const list = map.get(r.layer) ?? [];
        list.push({ layer: l, call });
        map.set(r.layer, list);
      }
    });
  return map;
}

/** the batch shape of an InputLayer (Keras 2 batch_input_shape, Keras 3 batch_shape) or a first layer */
export function batchShapeOf(config: JsonObject): (number | null)[] | null {
  const s = arr(config.batch_input_shape) ?? arr(config.batch_shape);
  if (s) return s.map((d) => (typeof d === 'number' ? d : null));
  const i = arr(config.input_shape);
  if (i) return [null, ...i.map((d) => (typeof d === 'number' ? d : null))];
  return null;
}
