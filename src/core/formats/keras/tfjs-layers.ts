/**
 * TF.js layers models: model.json ({modelTopology, weightsManifest, format, generatedBy, convertedBy, ...})
 * plus weight shards. Shard paths are resolved inside the model's folder only; sizes are checked against the
 * manifest. Writing keeps every key of model.json, the weight order, groups and quantization, and names the
 * shards like the converter (group1-shard1of2.bin ...).
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ModelError } from '../../errors';
import { writeFileAtomic } from '../../util/fs';
import { arr, clone, isObject, num, obj, str, type Json, type JsonObject } from './json';
import { bytesPerElement, KerasModel, type KWeight, type Quantization } from './model';
import { buildGraph, type KGraph } from './topology';

export type ShardReader = (relPath: string) => Uint8Array;

/** the model config inside a layers model.json: modelTopology.model_config (converter) or modelTopology (model.save) */
export function layersModelConfig(json: JsonObject): JsonObject | null {
  const topo = obj(json.modelTopology);
  if (!topo) return null;
  const mc = obj(topo.model_config);
  if (mc) return mc;
  if (str(topo.class_name) && topo.config !== undefined) return topo;
  return null;
}

/** refuses absolute paths, URLs and paths that leave the model's folder */
export function safeRelative(baseDir: string, rel: string, what: string): string {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(rel)) throw new ModelError(`${what}: shard path '${rel}' is a URL; only files next to model.json are read`);
  const base = path.resolve(baseDir);
  const full = path.resolve(base, rel);
  if (path.isAbsolute(rel) || (full !== base && !full.startsWith(base + path.sep))) throw new ModelError(`${what}: shard path '${rel}' resolves outside the model's folder; refused`);
  return full;
}

export function fsShardReader(baseDir: string, what: string): ShardReader {
  return (rel) => {
    const full = safeRelative(baseDir, rel, what);
    try {
      const b = fs.readFileSync(full);
      return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      throw new ModelError(`${what}: weight shard '${rel}' ${e.code === 'ENOENT' ? 'is missing' : `cannot be read (${e.code ?? e.message})`}`);
    }
  };
}

const DTYPE_BYTES: Record<string, number> = { float32: 4, int32: 4, bool: 1, float16: 2, uint8: 1, int8: 1, uint16: 2, int16: 2, complex64: 8, string: 0 };

/** maps a manifest weight name (`block_1/kernel`, `model/block_1/kernel`) to its layer path in the config */
export function layerPathResolver(root: KGraph): (prefix: string[]) => string[] {
  const all: string[][] = [];
  const walk = (g: KGraph) => {
    for (const l of g.layers) {
      all.push([...g.scope, l.name]);
      if (l.sub) walk(l.sub);
    }
  };
  walk(root);
  const byFull = new Map(all.map((p) => [p.join('/'), p]));
  const byLast = new Map<string, string[][]>();
  for (const p of all) {
    const k = p[p.length - 1];
    byLast.set(k, [...(byLast.get(k) ?? []), p]);
  }
  return (prefix) => {
    for (let i = 0; i < prefix.length; i++) {
      const hit = byFull.get(prefix.slice(i).join('/'));
      if (hit) return hit;
    }
    for (let i = prefix.length - 1; i >= 0; i--) {
      const c = byLast.get(prefix[i]);
      if (c && c.length === 1) return c[0];
    }
    return prefix;
  };
}

export interface ManifestData {
  weights: KWeight[];
  groups: { paths: string[]; shardBytes: number[] }[];
  /** bytes of all shards */
  total: number;
}

/** reads every weight of a weightsManifest, checking shard sizes against it; names map to layers via `resolve` */
export function readManifest(json: JsonObject, readShard: ShardReader, what: string, resolve: (prefix: string[]) => string[]): ManifestData {
  const manifest = arr(json.weightsManifest);
  if (!manifest) throw new ModelError(`${what}: model.json has no weightsManifest`);
  const weights: KWeight[] = [];
  const groups: { paths: string[]; shardBytes: number[] }[] = [];
  let total = 0;
  manifest.forEach((g, gi) => {
    const group = obj(g);
    const paths = (arr(group?.paths) ?? []).map((p) => str(p) ?? '');
    const specs = arr(group?.weights) ?? [];
    if (!group || paths.some((p) => !p)) throw new ModelError(`${what}: weightsManifest group ${gi + 1} is malformed`);
    const shards = paths.map((p) => readShard(p));
    groups.push({ paths, shardBytes: shards.map((s) => s.byteLength) });
    const size = shards.reduce((s, b) => s + b.byteLength, 0);
    const buf = new Uint8Array(size);
    let off = 0;
    for (const s of shards) {
      buf.set(s, off);
      off += s.byteLength;
    }
    let pos = 0;
    for (const sv of specs) {
      const spec = obj(sv);
      const name = str(spec?.name);
      const shape = arr(spec?.shape);
      const dtype = str(spec?.dtype) ?? 'float32';
      if (!spec || !name || !shape || !shape.every((d) => typeof d === 'number' && d >= 0 && Number.isInteger(d))) throw new ModelError(`${what}: weightsManifest entry ${JSON.stringify(sv).slice(0, 80)} is malformed`);
      const q = obj(spec.quantization);
      let quantization: Quantization | undefined;
      if (q) {
        const qd = str(q.dtype);
        if (qd !== 'uint8' && qd !== 'uint16' && qd !== 'float16') throw new ModelError(`${what}: weight ${name}: quantization dtype ${qd} is not supported`);
        quantization = { dtype: qd };
        if (num(q.scale) !== undefined) quantization.scale = num(q.scale);
        if (num(q.min) !== undefined) quantization.min = num(q.min);
        if (str(q.original_dtype)) quantization.original_dtype = str(q.original_dtype);
      }
      if (dtype === 'string') throw new ModelError(`${what}: string weights (${name}) are not supported`);
      const count = (shape as number[]).reduce((p, v) => p * v, 1);
      const per = quantization ? (quantization.dtype === 'uint8' ? 1 : 2) : DTYPE_BYTES[dtype];
      if (per === undefined) throw new ModelError(`${what}: weight ${name}: dtype ${dtype} is not supported`);
      const n = count * per;
      if (pos + n > size) throw new ModelError(`${what}: weight shards of group ${gi + 1} hold ${size} bytes but the manifest needs at least ${pos + n} (shard of the wrong size or missing data)`);
      const parts = name.split('/');
      const key = parts[parts.length - 1].replace(/:\d+$/, '');
      weights.push({
        storeName: name,
        layerPath: resolve(parts.slice(0, -1)),
        key,
        dtype: quantization?.original_dtype ?? dtype,
        shape: shape as number[],
        bytes: buf.subarray(pos, pos + n),
        ...(quantization ? { quantization } : {}),
        group: gi,
      });
      pos += n;
    }
    if (pos !== size) throw new ModelError(`${what}: weight shards of group ${gi + 1} hold ${size} bytes but the manifest describes ${pos} (shard of the wrong size)`);
    total += size;
  });
  return { weights, groups, total };
}

export function readTfjsLayers(json: JsonObject, readShard: ShardReader, baseDir: string, fileBytes: number | null, what: string): KerasModel {
  const config = layersModelConfig(json);
  if (!config) throw new ModelError(`${what}: model.json has no Keras model topology (modelTopology.model_config / class_name)`);
  const root = buildGraph(config);
  const { weights, groups, total } = readManifest(json, readShard, what, layerPathResolver(root));
  return new KerasModel('tfjs-layers', baseDir, fileBytes === null ? null : fileBytes + total, config, weights, { kind: 'tfjs-layers', json, groups });
}

export interface EncodedLayers {
  json: JsonObject;
  shards: { path: string; bytes: Uint8Array }[];
}

const DEFAULT_SHARD = 4 * 1024 * 1024;

/** model.json with the model's config and a manifest of its weights, and the shard contents */
export function encodeTfjsLayers(model: KerasModel): EncodedLayers {
  const ct = model.container;
  const json: JsonObject = ct.kind === 'tfjs-layers' ? clone(ct.json) : { format: 'layers-model', generatedBy: 'model-surgeon', convertedBy: null };
  const topo = obj(json.modelTopology);
  const cfg = model.modelConfig;
  if (topo && obj(topo.model_config)) topo.model_config = cfg;
  else if (topo && str(topo.class_name)) {
    for (const k of Object.keys(topo)) if (k !== 'keras_version' && k !== 'backend') delete topo[k];
    Object.assign(topo, cfg);
  } else json.modelTopology = { model_config: cfg };
  const { manifest, shards } = encodeManifest(model.weights, ct.kind === 'tfjs-layers' ? ct.groups : []);
  json.weightsManifest = manifest;
  return { json, shards };
}

/** weightsManifest + shard contents for weights (groups, order and shard size as in the source when known) */
export function encodeManifest(weights: KWeight[], origGroups: { paths: string[]; shardBytes: number[] }[]): { manifest: Json[]; shards: EncodedLayers['shards'] } {
  const groupIds = [...new Set(weights.map((w) => w.group ?? 0))].sort((a, b) => a - b);
  const manifest: Json[] = [];
  const shards: EncodedLayers['shards'] = [];
  groupIds.forEach((gid, gi) => {
    const ws = weights.filter((w) => (w.group ?? 0) === gid);
    const specs: Json[] = ws.map((w) => {
      const s: JsonObject = { name: w.storeName, shape: w.shape, dtype: w.quantization?.original_dtype ? w.quantization.original_dtype : w.dtype };
      if (w.quantization) s.quantization = { ...w.quantization } as JsonObject;
      return s;
    });
    const size = ws.reduce((s, w) => s + w.shape.reduce((p, v) => p * v, 1) * bytesPerElement(w), 0);
    const buf = new Uint8Array(size);
    let off = 0;
    for (const w of ws) {
      const n = w.shape.reduce((p, v) => p * v, 1) * bytesPerElement(w);
      buf.set(w.bytes.subarray(0, n), off);
      off += n;
    }
    const orig = origGroups[gid];
    const shardSize = orig && orig.shardBytes.length > 1 ? orig.shardBytes[0] : DEFAULT_SHARD;
    const count = Math.max(1, Math.ceil(size / shardSize));
    const paths: string[] = [];
    for (let i = 0; i < count; i++) {
      const p = orig && orig.paths.length === count ? path.basename(orig.paths[i]) : `group${gi + 1}-shard${i + 1}of${count}.bin`;
      paths.push(p);
      shards.push({ path: p, bytes: buf.subarray(i * shardSize, Math.min(size, (i + 1) * shardSize)) });
    }
    manifest.push({ paths, weights: specs });
  });
  return { manifest, shards };
}

function sameFile(file: string, bytes: Uint8Array): boolean {
  try {
    const st = fs.statSync(file);
    if (st.size !== bytes.byteLength) return false;
    return Buffer.compare(fs.readFileSync(file), bytes) === 0;
  } catch {
    return false;
  }
}

/**
 * Writes shards first (each atomically; a name already taken by different bytes gets a content-hash suffix, so
 * the model.json being replaced keeps working until the new one lands), then model.json atomically.
 */
export async function saveTfjsLayers(model: KerasModel, file: string): Promise<void> {
  await saveEncoded(encodeTfjsLayers(model), file);
}

export async function saveEncoded(enc: EncodedLayers, file: string): Promise<void> {
  const dir = path.dirname(path.resolve(file));
  const renamed = new Map<string, string>();
  for (const s of enc.shards) {
    let name = s.path;
    const target = path.join(dir, name);
    if (fs.existsSync(target)) {
      if (sameFile(target, s.bytes)) continue;
      const hash = createHash('sha256').update(s.bytes).digest('hex').slice(0, 8);
      const ext = path.extname(name);
      name = ext === '.bin' ? `${name.slice(0, -4)}.${hash}.bin` : `${name}.${hash}`;
      renamed.set(s.path, name);
      if (fs.existsSync(path.join(dir, name)) && sameFile(path.join(dir, name), s.bytes)) continue;
    }
    await writeFileAtomic(path.join(dir, name), s.bytes);
  }
  if (renamed.size) for (const g of arr(enc.json.weightsManifest) ?? []) if (isObject(g)) g.paths = (arr(g.paths) ?? []).map((p) => renamed.get(str(p) ?? '') ?? p);
  await writeFileAtomic(path.resolve(file), Buffer.from(JSON.stringify(enc.json)));
}
