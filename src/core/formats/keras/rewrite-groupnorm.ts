/**
 * replace-batchnorm-groupnorm for the Keras-topology formats: BatchNormalization -> GroupNormalization
 * (keras.layers.GroupNormalization: Keras 3, and tf.keras since 2.11: groups, axis, epsilon, center, scale)
 * on tensors with spatial dims, or LayerNormalization on [N, C] tensors. Both normalize each sample on its own,
 * so they work at any batch size (batch 1 included), unlike a BatchNorm in training.
 *
 * The layer keeps its name (so no wiring changes), epsilon, center/scale, the initializers, regularizers and
 * constraints of gamma and beta, and its gamma/beta values; the moving mean and variance are dropped. This
 * CHANGES THE FUNCTION: the trained network expects the running statistics, so the result is a starting point
 * for fine-tuning, never an equivalent model. GroupNormalization groups contiguous channel blocks (channel c in
 * group c / (C / groups), as PyTorch's group_norm); the group count is the largest divisor of C that is at
 * most the requested one (default: 32, and at most C/2 so that a group has >= 2 channels, as in Wu & He).
 *
 * TensorFlow.js (tfjs-layers 4.22) has LayerNormalization but no GroupNormalization: a TF.js layers model is
 * given LayerNormalization replacements only (a GroupNormalization in model.json would not load), and the
 * deviation of a Keras model with GroupNormalization cannot be measured with the TF.js engine.
 */
import type { RewriteCandidate, RewritePlan, SkippedCandidate } from '../../types';
import { flattenModel, type Shape } from './graph';
import { bnAxis } from './fold';
import { arr, clone, num, type Json, type JsonObject } from './json';
import type { KerasModel } from './model';
import { allLayers, layerFilter, type KerasLayerFilter } from './rewrite-dropout';
import { buildGraph, type KGraph, type KLayer } from './topology';

export interface ReplaceBatchNormOptions extends KerasLayerFilter {
  /**
   * GroupNormalization groups: the largest divisor of the channel count not above it. Default: 32 groups, but
   * at least 2 channels per group (largest divisor of C not above min(32, C/2))
   */
  groups?: number;
}

export const DEFAULT_GROUPS = 32;

interface Action {
  layer: KLayer;
  kind: 'GroupNormalization' | 'LayerNormalization';
  groups: number;
  axis: number | Json[];
}

/** largest divisor of c that is <= g (>= 1) */
export function groupsFor(c: number, g: number): number {
  for (let k = Math.min(g, c); k > 1; k--) if (c % k === 0) return k;
  return 1;
}

function analyse(model: KerasModel, root: KGraph, opts: ReplaceBatchNormOptions): { plan: RewritePlan; actions: Action[] } {
  const only = layerFilter(root, opts.layers, (l) => l.className === 'BatchNormalization', 'a BatchNormalization layer');
  const wanted = opts.groups ?? DEFAULT_GROUPS;
  const shapes = new Map<string, Shape | null>();
  try {
    for (const f of flattenModel(root, 1).layers) shapes.set(f.name, f.inputShapes[0] ?? null);
  } catch {
    // unknown shapes are reported per layer
  }
  const candidates: RewriteCandidate[] = [];
  const skipped: SkippedCandidate[] = [];
  const actions: Action[] = [];
  for (const { graph: g, layer: l, name } of allLayers(root)) {
    if (l.className !== 'BatchNormalization' || (only && !only.has(name))) continue;
    const skip = (reason: string) => skipped.push({ layer: name, reason });
    if (l.calls.length !== 1) {
      skip(l.calls.length > 1 ? `it is a shared layer called ${l.calls.length} times` : 'it is not called in the model');
      continue;
    }
    const shape = shapes.get(name) ?? null;
    if (!shape) {
      skip('its input shape is unknown, so GroupNormalization (spatial input) and LayerNormalization ([N, C] input) cannot be told apart');
      continue;
    }
    const axis = bnAxis(l.config);
    if (axis === null) {
      skip(`it normalizes several axes (${JSON.stringify(l.config.axis)})`);
      continue;
    }
    const rank = shape.length;
    const ax = axis < 0 ? axis + rank : axis;
    const mean = model.weightsOf([...g.scope, l.name]).find((w) => w.key === 'moving_mean' || w.key === 'gamma' || w.key === 'beta');
    const channels = (shape[ax] ?? null) ?? (mean ? mean.shape.reduce((p, v) => p * v, 1) : null);
    const eps = num(l.config.epsilon) ?? 1e-3;
    if (rank <= 2) {
      const keep = arr(l.config.axis) ?? axis;
      candidates.push({
        layer: name,
        action: `BatchNormalization -> LayerNormalization(axis=${JSON.stringify(keep)}, epsilon=${eps}) on its [N, ${channels ?? '?'}] input; gamma/beta kept, moving mean/variance dropped`,
        note: 'changes the function (per-sample statistics instead of the running ones): fine-tune before use',
      });
      actions.push({ layer: l, kind: 'LayerNormalization', groups: 1, axis: keep });
      continue;
    }
    if (model.format === 'tfjs-layers') {
      skip('TensorFlow.js (tfjs-layers 4.22) has no GroupNormalization layer: a model.json with one would not load in TF.js (only BatchNorms on [N, C] tensors become LayerNormalization here)');
      continue;
    }
    if (channels === null) {
      skip('its channel count is unknown');
      continue;
    }
    // by default at least 2 channels per group (Wu & He's 32 groups had >= 2); an explicit --groups is honoured
    const groups = groupsFor(channels, opts.groups ?? Math.max(1, Math.min(DEFAULT_GROUPS, Math.floor(channels / 2))));
    candidates.push({
      layer: name,
      action: `BatchNormalization -> GroupNormalization(groups=${groups}, axis=${axis}, epsilon=${eps}) on ${rank}-D input with ${channels} channels; gamma/beta kept, moving mean/variance dropped`,
      note:
        (opts.groups !== undefined && groups !== Math.min(wanted, channels) ? `${channels} channels are not divisible by ${Math.min(wanted, channels)}: ${groups} groups of ${channels / groups}. ` : '') +
        (groups === channels ? 'one channel per group (InstanceNorm-like; set fewer groups for larger groups). ' : '') +
        'changes the function (per-sample, per-group statistics instead of the running ones): fine-tune before use',
    });
    actions.push({ layer: l, kind: 'GroupNormalization', groups, axis });
  }
  return { plan: { rewrite: 'replace-batchnorm-groupnorm', candidates, skipped }, actions };
}

export function planKerasReplaceBatchNorm(model: KerasModel, opts: ReplaceBatchNormOptions = {}): RewritePlan {
  return analyse(model, buildGraph(model.modelConfig), opts).plan;
}

const CARRIED = ['beta_initializer', 'gamma_initializer', 'beta_regularizer', 'gamma_regularizer', 'beta_constraint', 'gamma_constraint'];

function newConfig(model: KerasModel, old: JsonObject, a: Action): JsonObject {
  const c: JsonObject = {};
  for (const k of ['name', 'trainable', 'dtype']) if (old[k] !== undefined) c[k] = old[k];
  if (a.kind === 'GroupNormalization') {
    c.groups = a.groups;
    c.axis = a.axis as number;
  } else c.axis = a.axis as Json;
  c.epsilon = num(old.epsilon) ?? 1e-3;
  c.center = old.center !== false;
  c.scale = old.scale !== false;
  if (a.kind === 'LayerNormalization' && model.format === 'keras') c.rms_scaling = false;
  for (const k of CARRIED) c[k] = old[k] ?? null;
  if (c.beta_initializer === null) delete c.beta_initializer;
  if (c.gamma_initializer === null) delete c.gamma_initializer;
  return c;
}

export function applyKerasReplaceBatchNorm(model: KerasModel, opts: ReplaceBatchNormOptions = {}): { model: KerasModel; plan: RewritePlan; kinds: Set<string> } {
  const config = clone(model.modelConfig);
  const root = buildGraph(config);
  const { plan, actions } = analyse(model, root, opts);
  const drop = new Set<string>();
  const kinds = new Set<string>();
  for (const { graph: g, layer: l } of allLayers(root)) {
    const a = actions.find((x) => x.layer.entry === l.entry);
    if (!a) continue;
    l.entry.class_name = a.kind;
    l.entry.config = newConfig(model, l.config, a);
    kinds.add(a.kind);
    drop.add([...g.scope, l.name].join('\u0000'));
  }
  const weights = model.weights.filter((w) => !(drop.has(w.layerPath.join('\u0000')) && (w.key === 'moving_mean' || w.key === 'moving_variance')));
  return { model: model.derive(config, weights), plan, kinds };
}
