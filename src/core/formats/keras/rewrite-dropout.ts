/**
 * Dropout rewrites for the Keras-topology formats (TF.js layers, Keras 2 .h5, Keras 3 .keras).
 *
 * Every Keras dropout layer (Dropout, SpatialDropout1D/2D/3D, GaussianDropout, AlphaDropout) is the identity
 * at inference (predict, or a call with training=False) and acts only in fit():
 * - remove-dropout: the layer leaves the topology; in a functional model its readers (and output_layers) read
 *   its input instead (Keras 2 [name, node, tensor, kwargs] refs and Keras 3 keras_history both rewired); in a
 *   Sequential model it leaves the list, and a first layer's batch_input_shape moves to the next layer.
 *   Refused, with the reason: shared layers, layers called with training=True (Monte-Carlo dropout: they drop
 *   at inference too), a layer that connects a model input straight to a model output.
 * - set-dropout-rate: changes `rate` (a training-time setting: inference is unchanged, which verification
 *   shows as a difference of 0).
 * Layer names are the display names of the doctor (nested models as outer/inner).
 */
import { ModelError } from '../../errors';
import type { RewriteCandidate, RewritePlan, SkippedCandidate } from '../../types';
import { callKwargs } from './graph';
import { display, rewire } from './fold';
import { clone, num, obj, type JsonObject } from './json';
import type { KerasModel } from './model';
import { buildGraph, consumersOf, type KGraph, type KLayer } from './topology';

export const DROPOUT_CLASSES = new Set(['Dropout', 'SpatialDropout1D', 'SpatialDropout2D', 'SpatialDropout3D', 'GaussianDropout', 'AlphaDropout']);

export interface KerasLayerFilter {
  /** only these layers (display names); all when absent */
  layers?: string[];
}

/** every layer of a graph and its nested models, with its display name */
export function allLayers(root: KGraph): { graph: KGraph; layer: KLayer; name: string }[] {
  const out: { graph: KGraph; layer: KLayer; name: string }[] = [];
  const walk = (g: KGraph) => {
    for (const l of g.layers) {
      out.push({ graph: g, layer: l, name: display(g, l.name) });
      if (l.sub) walk(l.sub);
    }
  };
  walk(root);
  return out;
}

/** the filter as a set, refusing names that are not layers of the wanted kind */
export function layerFilter(root: KGraph, layers: string[] | undefined, kind: (l: KLayer) => boolean, what: string): Set<string> | null {
  if (!layers || layers.length === 0) return null;
  const all = allLayers(root);
  const wanted = new Set(layers);
  for (const n of wanted) {
    const hit = all.find((x) => x.name === n);
    if (!hit) throw new ModelError(`no layer named '${n}' in this model`);
    if (!kind(hit.layer)) throw new ModelError(`layer '${n}' is a ${hit.layer.className}, not ${what}`);
  }
  return wanted;
}

interface DropoutAction {
  graph: KGraph;
  layer: KLayer;
}

function analyseRemoval(root: KGraph, filter: KerasLayerFilter): { plan: RewritePlan; actions: DropoutAction[] } {
  const only = layerFilter(root, filter.layers, (l) => DROPOUT_CLASSES.has(l.className), 'a dropout layer');
  const candidates: RewriteCandidate[] = [];
  const skipped: SkippedCandidate[] = [];
  const actions: DropoutAction[] = [];
  for (const { graph: g, layer: l, name } of allLayers(root)) {
    if (!DROPOUT_CLASSES.has(l.className) || (only && !only.has(name))) continue;
    const skip = (reason: string) => skipped.push({ layer: name, reason });
    if (l.calls.length !== 1) {
      skip(l.calls.length > 1 ? `it is a shared layer called ${l.calls.length} times` : 'it is not called in the model');
      continue;
    }
    if (l.calls[0].length !== 1) {
      skip('it does not read exactly one tensor');
      continue;
    }
    if (callKwargs(l, 0).training === true) {
      skip('it is called with training=True: it drops at random also at inference (Monte-Carlo dropout), so removing it would change the outputs');
      continue;
    }
    const src = l.calls[0][0];
    const fromInput = g.inputs.some((r) => r.layer === src.layer);
    const isOutput = g.outputs.some((r) => r.layer === l.name);
    if (fromInput && isOutput) {
      skip('it connects a model input directly to a model output: without it the model would have no layer');
      continue;
    }
    const readers = consumersOf(g).get(l.name) ?? [];
    const who = [...readers.map((r) => display(g, r.layer.name)), ...(isOutput ? ['the model output'] : [])];
    candidates.push({ layer: name, action: `removed; ${who.length ? who.join(', ') : 'nothing'} read${who.length === 1 ? 's' : ''} ${display(g, src.layer)} instead` });
    actions.push({ graph: g, layer: l });
  }
  return { plan: { rewrite: 'remove-dropout', candidates, skipped }, actions };
}

export function planKerasRemoveDropout(model: KerasModel, filter: KerasLayerFilter = {}): RewritePlan {
  return analyseRemoval(buildGraph(model.modelConfig), filter).plan;
}

export function applyKerasRemoveDropout(model: KerasModel, filter: KerasLayerFilter = {}): { model: KerasModel; plan: RewritePlan } {
  const config = clone(model.modelConfig);
  const root = buildGraph(config);
  const { plan, actions } = analyseRemoval(root, filter);
  for (const { graph: g, layer: l } of actions) {
    const idx = g.entries.indexOf(l.entry);
    if (g.sequential) {
      // a first layer without an InputLayer carries the model's input shape: hand it to the next layer
      const first = g.layers.find((x) => x.className !== 'InputLayer') === l && !g.layers.some((x) => x.className === 'InputLayer');
      const next = g.layers[g.layers.indexOf(l) + 1];
      if (first && next) {
        for (const k of ['batch_input_shape', 'batch_shape', 'input_shape', 'input_dtype']) {
          if (l.config[k] !== undefined && next.config[k] === undefined) next.config[k] = l.config[k];
        }
      }
    } else {
      const src = l.calls[0][0];
      rewire(g, l.name, src.layer, src.node, src.tensor);
    }
    if (idx >= 0) g.entries.splice(idx, 1);
    g.layers = g.layers.filter((x) => x !== l);
  }
  return { model: model.derive(config, model.weights), plan };
}

export interface SetDropoutRateOptions extends KerasLayerFilter {
  rate: number;
}

function checkRate(rate: number): void {
  if (typeof rate !== 'number' || !Number.isFinite(rate) || rate < 0 || rate >= 1) throw new ModelError(`the dropout rate must be a number in [0, 1), not ${String(rate)}`);
}

function analyseRate(root: KGraph, opts: SetDropoutRateOptions): { plan: RewritePlan; actions: KLayer[] } {
  checkRate(opts.rate);
  const only = layerFilter(root, opts.layers, (l) => DROPOUT_CLASSES.has(l.className), 'a dropout layer');
  const candidates: RewriteCandidate[] = [];
  const skipped: SkippedCandidate[] = [];
  const actions: KLayer[] = [];
  for (const { layer: l, name } of allLayers(root)) {
    if (!DROPOUT_CLASSES.has(l.className) || (only && !only.has(name))) continue;
    const old = num(l.config.rate);
    if (old === opts.rate) {
      skipped.push({ layer: name, reason: `its rate is already ${opts.rate}` });
      continue;
    }
    candidates.push({ layer: name, action: `rate ${old ?? '(unset)'} -> ${opts.rate}`, note: 'a training-time setting: inference is unchanged' });
    actions.push(l);
  }
  return { plan: { rewrite: 'set-dropout-rate', candidates, skipped }, actions };
}

export function planKerasDropoutRate(model: KerasModel, opts: SetDropoutRateOptions): RewritePlan {
  return analyseRate(buildGraph(model.modelConfig), opts).plan;
}

export function applyKerasDropoutRate(model: KerasModel, opts: SetDropoutRateOptions): { model: KerasModel; plan: RewritePlan } {
  const config = clone(model.modelConfig);
  const { plan, actions } = analyseRate(buildGraph(config), opts);
  for (const l of actions) l.config.rate = opts.rate;
  return { model: model.derive(config, model.weights), plan };
}

/** the config of a dropout layer as TF.js runs it: SpatialDropout2D/3D (not in tfjs-layers 4.22) are the identity at inference like Dropout */
export function tfjsDropoutConfig(entry: JsonObject): JsonObject | null {
  const cls = entry.class_name;
  if (cls !== 'SpatialDropout2D' && cls !== 'SpatialDropout3D') return null;
  const c = obj(entry.config) ?? {};
  const config: JsonObject = { name: c.name ?? null, trainable: c.trainable ?? true, rate: c.rate ?? 0 };
  if (c.dtype !== undefined) config.dtype = c.dtype;
  return { ...entry, class_name: 'Dropout', config };
}
