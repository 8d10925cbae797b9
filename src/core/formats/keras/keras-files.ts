/**
 * Keras containers: Keras 2 .h5 (model_config + model_weights/<layer>/<weight_name>) and Keras 3 .keras
 * (zip: metadata.json, config.json, model.weights.h5 with layers/<snake_case(Class)>[_N]/vars/<i>).
 * Both are read into a KerasModel and written back from the model's config and weights, keeping every other
 * attribute, group and zip entry as it was.
 */
import { ModelError } from '../../errors';
import { zipEntries, zipBytes } from '../../util/zip';
import { attrStrings, attrValue, child, datasetBytes, float32Dataset, groupAt, h5Bytes, readH5Bytes, setAttr, setNode } from './h5';
import { isObject, obj, str, type JsonObject } from './json';
import { KerasModel, type H5GroupNode, type H5Node, type KWeight } from './model';
import { layerList, MODEL_CLASSES } from './topology';
import { layerPathResolver } from './tfjs-layers';
import { buildGraph } from './topology';

function parseJson(text: string, what: string): JsonObject {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (err) {
    throw new ModelError(`${what}: invalid JSON (${err instanceof Error ? err.message : String(err)})`);
  }
  if (!isObject(v)) throw new ModelError(`${what}: the model config is not a JSON object`);
  return v;
}

function attrText(v: unknown): string | null {
  if (typeof v === 'string') return v;
  if (v instanceof Uint8Array) return Buffer.from(v).toString('utf8');
  return null;
}

// ---------------------------------------------------------------- Keras 2 .h5

export function readKerasH5(bytes: Uint8Array, baseDir: string, what: string): KerasModel {
  const tree = readH5Bytes(bytes, what);
  const mcText = attrText(attrValue(tree, 'model_config'));
  if (mcText === null) {
    if (attrValue(tree, 'layer_names') !== undefined) throw new ModelError(`${what}: a weights-only .h5 file (no model_config); open a file saved with model.save()`);
    throw new ModelError(`${what}: HDF5 file without a Keras model_config attribute (not a Keras model)`);
  }
  const modelConfig = parseJson(mcText, `${what}: model_config`);
  if (!str(modelConfig.class_name)) throw new ModelError(`${what}: model_config has no class_name`);
  const mw = groupAt(tree, 'model_weights');
  if (!mw) throw new ModelError(`${what}: no model_weights group (a model saved without weights?)`);
  const names = attrStrings(mw, 'layer_names') ?? [];
  const root = buildGraph(modelConfig);
  const resolve = layerPathResolver(root);
  const nested = new Set(root.layers.filter((l) => l.sub).map((l) => l.name));
  const weights: KWeight[] = [];
  for (const L of names) {
    const g = child(mw, L);
    if (!g || g.kind !== 'group') throw new ModelError(`${what}: model_weights/${L} is missing`);
    for (const wn of attrStrings(g, 'weight_names') ?? []) {
      const parts = wn.split('/');
      let node: H5Node | undefined = g;
      for (const p of parts) node = node && node.kind === 'group' ? child(node, p) : undefined;
      if (!node || node.kind !== 'dataset') throw new ModelError(`${what}: weight ${L}/${wn} is missing`);
      let data;
      try {
        data = datasetBytes(node);
      } catch (err) {
        throw new ModelError(`${what}: weight ${L}/${wn}: ${err instanceof Error ? err.message : String(err)}`);
      }
      const key = parts[parts.length - 1].replace(/:\d+$/, '');
      const layerPath = nested.has(L) ? resolve([L, ...parts.slice(0, -1)]) : [L];
      weights.push({ storeName: wn, layerPath, key, dtype: data.dtype, shape: node.shape, bytes: data.bytes });
    }
  }
  return new KerasModel('keras-h5', baseDir, bytes.byteLength, modelConfig, weights, { kind: 'keras-h5', tree });
}

export function kerasH5Tree(model: KerasModel): H5GroupNode {
  const ct = model.container;
  const old = ct.kind === 'keras-h5' ? ct.tree : ({ kind: 'group', attrs: [], children: [] } as H5GroupNode);
  const tree: H5GroupNode = { kind: 'group', attrs: [...old.attrs], children: old.children.filter(([n]) => n !== 'model_weights') };
  setAttr(tree, 'model_config', JSON.stringify(model.modelConfig), typeof old.attrs.find((a) => a.name === 'model_config')?.dtype === 'string' ? old.attrs.find((a) => a.name === 'model_config')?.dtype : null);
  if (attrValue(tree, 'keras_version') === undefined) setAttr(tree, 'keras_version', '2.15.0');
  if (attrValue(tree, 'backend') === undefined) setAttr(tree, 'backend', 'tensorflow');
  const oldMw = groupAt(old, 'model_weights');
  const mw: H5GroupNode = { kind: 'group', attrs: (oldMw?.attrs ?? []).filter((a) => a.name !== 'layer_names'), children: [] };
  const topNames = buildGraph(model.modelConfig).layers.map((l) => l.name);
  const present = new Set(topNames);
  const oldNames = oldMw ? attrStrings(oldMw, 'layer_names') ?? [] : topNames;
  const names = oldNames.filter((n) => present.has(n));
  for (const n of topNames) if (!names.includes(n)) names.push(n);
  setAttr(mw, 'layer_names', names);
  if (attrValue(mw, 'backend') === undefined) setAttr(mw, 'backend', attrValue(tree, 'backend'));
  if (attrValue(mw, 'keras_version') === undefined) setAttr(mw, 'keras_version', attrValue(tree, 'keras_version'));
  for (const L of names) {
    const og = oldMw ? child(oldMw, L) : undefined;
    const g: H5GroupNode = { kind: 'group', attrs: og && og.kind === 'group' ? og.attrs.filter((a) => a.name !== 'weight_names') : [], children: [] };
    const ws = model.weights.filter((w) => w.layerPath[0] === L);
    setAttr(g, 'weight_names', ws.map((w) => w.storeName));
    for (const w of ws) setNode(g, w.storeName, float32Dataset(w.bytes, w.shape, w.dtype));
    mw.children.push([L, g]);
  }
  tree.children.push(['model_weights', mw]);
  return tree;
}

export function kerasH5Bytes(model: KerasModel): Uint8Array {
  return h5Bytes(kerasH5Tree(model));
}

// ---------------------------------------------------------------- Keras 3 .keras

/** keras.src.utils.naming.to_snake_case */
export function toSnakeCase(name: string): string {
  let n = name.replace(/\W+/g, '');
  n = n.replace(/(.)([A-Z][a-z]+)/g, '$1_$2');
  return n.replace(/([a-z])([A-Z])/g, '$1_$2').toLowerCase();
}

/** weight keys of a Keras 3 layer class by variable index */
export function keras3VarKeys(cls: string, config: JsonObject, count: number): string[] {
  const conv = /Conv\dD(Transpose)?$|^Dense$|^Convolution2D$|^EinsumDense$/.test(cls) && !cls.startsWith('Separable') && !cls.startsWith('Depthwise');
  if (conv) return ['kernel', 'bias'].slice(0, count);
  if (cls.startsWith('DepthwiseConv')) return ['depthwise_kernel', 'bias'].slice(0, count);
  if (cls.startsWith('SeparableConv')) return ['depthwise_kernel', 'pointwise_kernel', 'bias'].slice(0, count);
  if (cls === 'BatchNormalization') {
    const keys: string[] = [];
    if (config.scale !== false) keys.push('gamma');
    if (config.center !== false) keys.push('beta');
    keys.push('moving_mean', 'moving_variance');
    return keys.slice(0, count);
  }
  if (cls === 'LayerNormalization' || cls === 'GroupNormalization') {
    const keys: string[] = [];
    if (config.scale !== false) keys.push('gamma');
    if (config.center !== false) keys.push('beta');
    return keys;
  }
  if (cls === 'PReLU') return ['alpha'];
  return Array.from({ length: count }, (_, i) => `var${i}`);
}

interface K3Slot {
  layerPath: string[];
  h5path: string;
  cls: string;
  config: JsonObject;
  nestedModel: boolean;
}

/** the weight-file path of every layer (Keras 3 saving_lib: class-name based, counted per container) */
export function keras3Slots(modelCfg: JsonObject, prefix = '', scope: string[] = []): K3Slot[] {
  const cls = str(modelCfg.class_name) ?? 'Functional';
  const out: K3Slot[] = [];
  const used = new Map<string, number>();
  for (const e of layerList(modelCfg)) {
    if (!isObject(e)) continue;
    const lcls = str(e.class_name) ?? '';
    // Sequential.layers leaves its InputLayer out; Functional.layers keeps it
    if (cls === 'Sequential' && lcls === 'InputLayer') continue;
    let name = toSnakeCase(lcls);
    const k = used.get(name);
    if (k === undefined) used.set(name, 0);
    else {
      used.set(name, k + 1);
      name = `${name}_${k + 1}`;
    }
    const lname = str(e.name) ?? str(obj(e.config)?.name) ?? name;
    const h5path = `${prefix}layers/${name}`;
    const config = obj(e.config) ?? {};
    const nestedModel = MODEL_CLASSES.has(lcls) && Array.isArray(config.layers);
    out.push({ layerPath: [...scope, lname], h5path, cls: lcls, config, nestedModel });
    if (nestedModel) out.push(...keras3Slots(e, `${h5path}/`, [...scope, lname]));
  }
  return out;
}

const MAX_JSON = 256 * 1024 * 1024;

export function readKerasZip(bytes: Uint8Array, baseDir: string, what: string, entries = zipEntries(bytes, what)): KerasModel {
  const get = (n: string) => entries.find((e) => e.name === n);
  const cfgEntry = get('config.json');
  const weightsEntry = get('model.weights.h5');
  if (!cfgEntry || !weightsEntry) {
    if (cfgEntry && get('model.weights.npz')) throw new ModelError(`${what}: .keras archives with npz weights are not supported (only model.weights.h5)`);
    throw new ModelError(`${what}: zip archive is not a Keras model (a .keras file holds config.json and model.weights.h5)`);
  }
  if (cfgEntry.bytes.byteLength > MAX_JSON) throw new ModelError(`${what}: config.json is too large`);
  const config = parseJson(Buffer.from(cfgEntry.bytes).toString('utf8'), `${what}: config.json`);
  if (!str(config.class_name)) throw new ModelError(`${what}: config.json has no class_name`);
  const tree = readH5Bytes(weightsEntry.bytes, `${what}: model.weights.h5`);
  const weights: KWeight[] = [];
  for (const slot of keras3Slots(config)) {
    const vars = groupAt(tree, `${slot.h5path}/vars`);
    if (!vars) {
      if (slot.nestedModel || slot.cls === 'InputLayer') continue;
      // a layer without variables may have no group at all in hand-written files
      continue;
    }
    const ds = vars.children.filter(([, n]) => n.kind === 'dataset').sort(([a], [b]) => Number(a) - Number(b));
    const keys = keras3VarKeys(slot.cls, slot.config, ds.length);
    ds.forEach(([name, node], i) => {
      if (node.kind !== 'dataset') return;
      let data;
      try {
        data = datasetBytes(node);
      } catch (err) {
        throw new ModelError(`${what}: ${slot.h5path}/vars/${name}: ${err instanceof Error ? err.message : String(err)}`);
      }
      weights.push({ storeName: `${slot.h5path}/vars/${name}`, layerPath: slot.layerPath, key: keys[i] ?? `var${i}`, dtype: data.dtype, shape: node.shape, bytes: data.bytes });
    });
  }
  const others = entries.filter((e) => e.name !== 'config.json' && e.name !== 'model.weights.h5');
  return new KerasModel('keras', baseDir, bytes.byteLength, config, weights, { kind: 'keras', config, tree, entries: others });
}

function keras3Tree(model: KerasModel): H5GroupNode {
  const ct = model.container;
  const old = ct.kind === 'keras' ? ct.tree : ({ kind: 'group', attrs: [], children: [['vars', { kind: 'group', attrs: [], children: [] }]] } as H5GroupNode);
  const tree: H5GroupNode = { kind: 'group', attrs: [...old.attrs], children: old.children.filter(([n]) => n !== 'layers') };
  const byLayer = new Map<string, KWeight[]>();
  for (const w of model.weights) {
    const k = w.layerPath.join('/');
    byLayer.set(k, [...(byLayer.get(k) ?? []), w]);
  }
  for (const slot of keras3Slots(model.modelConfig)) {
    const vars: H5GroupNode = { kind: 'group', attrs: [], children: [] };
    const ws = byLayer.get(slot.layerPath.join('/')) ?? [];
    const order = keras3VarKeys(slot.cls, slot.config, ws.length);
    const sorted = [...ws].sort((a, b) => (order.indexOf(a.key) + 1 || 1e9) - (order.indexOf(b.key) + 1 || 1e9));
    sorted.forEach((w, i) => vars.children.push([String(i), float32Dataset(w.bytes, w.shape, w.dtype)]));
    setNode(tree, `${slot.h5path}/vars`, vars);
  }
  return tree;
}

export function kerasZipBytes(model: KerasModel): Uint8Array {
  const ct = model.container;
  const entries: { name: string; bytes: Uint8Array }[] = [];
  const others = ct.kind === 'keras' ? ct.entries : [];
  const meta = others.find((e) => e.name === 'metadata.json');
  entries.push(meta ?? { name: 'metadata.json', bytes: Buffer.from(JSON.stringify({ keras_version: '3.0.0', date_saved: new Date().toISOString() })) });
  entries.push({ name: 'config.json', bytes: Buffer.from(JSON.stringify(model.modelConfig)) });
  entries.push({ name: 'model.weights.h5', bytes: h5Bytes(keras3Tree(model)) });
  for (const e of others) if (e.name !== 'metadata.json') entries.push(e);
  return zipBytes(entries);
}

export function keras3Version(model: KerasModel): string | null {
  const ct = model.container;
  if (ct.kind !== 'keras') return null;
  const meta = ct.entries.find((e) => e.name === 'metadata.json');
  if (!meta) return null;
  try {
    const m = JSON.parse(Buffer.from(meta.bytes).toString('utf8')) as unknown;
    return isObject(m) ? str(m.keras_version) ?? null : null;
  } catch {
    return null;
  }
}


