/**
 * A Keras-topology model as TF.js layers runs it: a Keras 2-style config (Keras 3 configs converted: inbound
 * node objects -> [name, node, tensor, kwargs] lists, DTypePolicy objects -> dtype names, batch_shape ->
 * batch_input_shape, module/registered_name/build_config dropped) and float32 weights named `layer/key` (TF.js
 * layers matches weights by that name). The stored config is never changed by this.
 */
import type { TfjsRunnable } from '../../engines/tfjs';
import type { ValueSummary } from '../../types';
import { buildKerasView } from './graph';
import { arr, clone, isObject, obj, str, type Json, type JsonObject } from './json';
import { weightToFloat32, type KerasModel } from './model';
import { tfjsDropoutConfig } from './rewrite-dropout';
import { parseCalls, parseEndpoints } from './topology';

const DROP = new Set(['module', 'registered_name', 'build_config', 'compile_config', 'shared_object_id']);

function convert(v: Json): Json {
  if (Array.isArray(v)) return v.map(convert);
  if (!isObject(v)) return v;
  // Keras 3 dtype policy object -> its name
  if (v.class_name === 'DTypePolicy' || v.class_name === 'Policy') return str(obj(v.config)?.name) ?? 'float32';
  const out: JsonObject = {};
  for (const k of Object.keys(v)) {
    if (DROP.has(k) && 'class_name' in v) continue;
    out[k] = convert(v[k]);
  }
  return out;
}

function convertLayer(entry: JsonObject): JsonObject {
  const e = convert(entry) as JsonObject;
  const cfg = obj(e.config);
  if (cfg) {
    if (e.class_name === 'InputLayer' && cfg.batch_shape !== undefined && cfg.batch_input_shape === undefined) {
      cfg.batch_input_shape = cfg.batch_shape;
      delete cfg.batch_shape;
    }
    if (e.class_name === 'InputLayer') {
      delete cfg.optional;
    }
    if (arr(cfg.layers)) {
      const sub = convertModel({ class_name: str(e.class_name) ?? 'Functional', config: cfg });
      e.config = sub.config;
    }
  }
  const nodes = arr(entry.inbound_nodes);
  if (nodes && nodes.some((n) => isObject(n))) {
    e.inbound_nodes = parseCalls(entry).map((refs) => refs.map((r) => [r.layer, r.node, r.tensor, {}]));
  }
  return e;
}

export function convertModel(modelCfg: JsonObject): JsonObject {
  const cls = str(modelCfg.class_name) ?? 'Functional';
  const c = modelCfg.config;
  if (Array.isArray(c)) return { class_name: cls, config: c.map((l) => (isObject(l) ? convertLayer(l) : l)) };
  const cfg = clone(obj(c) ?? {});
  const out: JsonObject = {};
  for (const k of Object.keys(cfg)) if (k !== 'layers') out[k] = convert(cfg[k]);
  out.layers = (arr(cfg.layers) ?? []).map((l) => (isObject(l) ? convertLayer(l) : l));
  if (cls !== 'Sequential') {
    out.input_layers = parseEndpoints(cfg.input_layers).map((r) => [r.layer, r.node, r.tensor]);
    out.output_layers = parseEndpoints(cfg.output_layers).map((r) => [r.layer, r.node, r.tensor]);
  }
  return { class_name: cls === 'Model' ? 'Model' : cls, config: out };
}

/** layers tfjs-layers 4.22 lacks that are the identity at inference (SpatialDropout2D/3D) run as Dropout */
function inferenceEquivalents(v: Json): Json {
  if (Array.isArray(v)) return v.map(inferenceEquivalents);
  if (!isObject(v)) return v;
  const mapped = tfjsDropoutConfig(v);
  if (mapped) return mapped;
  const out: JsonObject = {};
  for (const k of Object.keys(v)) out[k] = inferenceEquivalents(v[k]);
  return out;
}

export function kerasRunnable(model: KerasModel, inputs?: ValueSummary[]): TfjsRunnable {
  const raw = model.format === 'tfjs-layers' ? model.modelConfig : convertModel(model.modelConfig);
  const config = /"SpatialDropout[23]D"/.test(JSON.stringify(raw)) ? (inferenceEquivalents(raw) as JsonObject) : raw;
  const specs = model.weights.map((w) => ({
    name: model.format === 'tfjs-layers' ? w.storeName : `${w.layerPath[w.layerPath.length - 1]}/${w.key}`,
    shape: w.shape,
    dtype: 'float32' as const,
  }));
  const total = model.weights.reduce((s, w) => s + w.shape.reduce((p, v) => p * v, 1), 0);
  const data = new Float32Array(total);
  let off = 0;
  for (const w of model.weights) {
    const v = weightToFloat32(w);
    data.set(v, off);
    off += v.length;
  }
  const topology: JsonObject = { model_config: config };
  if (model.container.kind === 'tfjs-layers') {
    const t = obj(model.container.json.modelTopology);
    if (t && str(t.keras_version)) topology.keras_version = t.keras_version;
  }
  return { kind: 'layers', topology, specs, data: data.buffer, inputs: inputs ?? buildKerasView(model).summary.inputs };
}
