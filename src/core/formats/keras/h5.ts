/**
 * HDF5 through h5wasm 0.10 (ESM only, loaded with `await import('h5wasm/node')`; its Node build works on real
 * files). Files are read whole into a tree (groups, attributes, datasets) and written back from a tree into a
 * new file: h5wasm cannot delete datasets, so a rewrite is always a fresh file. HDF5's own diagnostics (which
 * it prints to stderr) are turned into exceptions with the throwing error handler.
 *
 * Keras layouts:
 * - Keras 2 .h5: root attrs model_config (JSON), keras_version, backend, training_config?; group model_weights
 *   (attrs layer_names, backend, keras_version) with one group per layer (attr weight_names, e.g.
 *   `conv2d/kernel:0`) holding the datasets at model_weights/<layer>/<weight_name>.
 * - Keras 3 model.weights.h5: layers/<snake_case(ClassName)>[_N]/vars/<i> in the order of model.layers (a
 *   nested model's layers below its own path), plus /vars (the model's own, empty) and e.g. /optimizer.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ModelError } from '../../errors';
import type { H5Attr, H5DatasetNode, H5GroupNode, H5Node } from './model';

/* eslint-disable @typescript-eslint/no-explicit-any -- h5wasm's entity classes, used through a narrow local interface */
interface H5Module {
  File: new (filename: string, mode?: string) => any;
  ready: Promise<{ activate_throwing_error_handler?: () => void }>;
  Group: any;
  Dataset: any;
}
/* eslint-enable @typescript-eslint/no-explicit-any */

let h5: H5Module | null = null;
let loading: Promise<H5Module> | null = null;

/** h5wasm, loaded once (ESM: dynamic import) */
export function loadH5wasm(): Promise<H5Module> {
  if (h5) return Promise.resolve(h5);
  loading ??= (async () => {
    // h5wasm is ESM only: a real dynamic import (a non-literal specifier, so no bundler or TypeScript rewrites it)
    const specifier = 'h5wasm/node';
    let mod: { default?: H5Module } & H5Module;
    try {
      mod = (await import(specifier)) as { default?: H5Module } & H5Module;
    } catch (err) {
      loading = null;
      throw new ModelError(`HDF5 support (h5wasm) could not be loaded: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`);
    }
    const m = (mod.File ? mod : mod.default) as H5Module;
    const M = await m.ready;
    M.activate_throwing_error_handler?.();
    h5 = m;
    return m;
  })();
  return loading;
}

/** h5wasm if it has been loaded in this process (the synchronous API works after loadH5wasm() resolved once) */
export function h5IfReady(): H5Module | null {
  return h5;
}

function need(): H5Module {
  if (!h5) throw new ModelError('HDF5 support is not initialized: load Keras .h5/.keras models with loadModel() or loadModelBytesAsync()');
  return h5;
}

/** the most telling line of an HDF5 error stack, or the message */
export function h5ErrorLine(err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err);
  const lines = msg.split('\n').map((l) => l.trim());
  const detail = lines.filter((l) => /^#\d+:/.test(l)).pop();
  if (detail) return detail.replace(/^#\d+:.*?\): /, '').replace(/^#\d+: /, '');
  return lines.find((l) => l) ?? 'unknown HDF5 error';
}

function tmpFile(dir: string, base: string): string {
  return path.join(dir, `.${base}.${randomBytes(6).toString('hex')}.tmp`);
}

/* eslint-disable @typescript-eslint/no-explicit-any */
function readAttrs(e: any): H5Attr[] {
  const out: H5Attr[] = [];
  const attrs = e.attrs as Record<string, any>;
  for (const name of Object.keys(attrs)) {
    const a = attrs[name];
    out.push({ name, value: a.value, dtype: a.dtype, shape: a.shape ?? null });
  }
  return out;
}

function readGroup(g: any, depth = 0): H5GroupNode {
  if (depth > 64) throw new ModelError('HDF5 groups nested too deeply');
  const node: H5GroupNode = { kind: 'group', attrs: readAttrs(g), children: [] };
  const M = need();
  for (const key of g.keys() as string[]) {
    const child = g.get(key);
    if (child instanceof M.Group) node.children.push([key, readGroup(child, depth + 1)]);
    else if (child instanceof M.Dataset) node.children.push([key, { kind: 'dataset', attrs: readAttrs(child), dtype: child.dtype, shape: child.shape ?? [], value: child.value } as H5DatasetNode]);
  }
  return node;
}

/** reads a whole HDF5 file (given as bytes) into a tree */
export function readH5Bytes(bytes: Uint8Array, what: string): H5GroupNode {
  const M = need();
  const file = tmpFile(os.tmpdir(), 'model-surgeon-h5');
  fs.writeFileSync(file, bytes);
  let f: any;
  try {
    f = new M.File(file, 'r');
    return readGroup(f);
  } catch (err) {
    if (err instanceof ModelError) throw err;
    throw new ModelError(`${what}: not a readable HDF5 file (${h5ErrorLine(err)})`);
  } finally {
    try {
      f?.close();
    } catch {
      // already failed
    }
    fs.rmSync(file, { force: true });
  }
}

function writeAttrs(e: any, attrs: H5Attr[]): void {
  for (const a of attrs) {
    if (a.value === null || a.value === undefined) continue;
    const dtype = typeof a.dtype === 'string' ? a.dtype : null;
    try {
      e.create_attribute(a.name, a.value, a.shape && a.shape.length ? a.shape : null, dtype);
    } catch {
      e.create_attribute(a.name, a.value);
    }
  }
}

function writeGroup(g: any, node: H5GroupNode): void {
  writeAttrs(g, node.attrs);
  for (const [name, child] of node.children) {
    if (child.kind === 'group') writeGroup(g.create_group(name), child);
    else {
      const d = g.create_dataset({ name, data: child.value, shape: child.shape, dtype: typeof child.dtype === 'string' ? child.dtype : null });
      writeAttrs(d, child.attrs);
    }
  }
}
/* eslint-enable @typescript-eslint/no-explicit-any */

/** writes a tree into a new HDF5 file at `file` (overwriting it) */
export function writeH5File(tree: H5GroupNode, file: string): void {
  const M = need();
  const f = new M.File(file, 'w');
  try {
    writeGroup(f, tree);
  } finally {
    f.close();
  }
}

/** the bytes of an HDF5 file holding `tree` */
export function h5Bytes(tree: H5GroupNode): Uint8Array {
  const file = tmpFile(os.tmpdir(), 'model-surgeon-h5');
  try {
    writeH5File(tree, file);
    return new Uint8Array(fs.readFileSync(file));
  } catch (err) {
    if (err instanceof ModelError) throw err;
    throw new ModelError(`cannot write HDF5: ${h5ErrorLine(err)}`);
  } finally {
    fs.rmSync(file, { force: true });
  }
}

export function child(g: H5GroupNode, name: string): H5Node | undefined {
  return g.children.find(([n]) => n === name)?.[1];
}

export function groupAt(g: H5GroupNode, p: string): H5GroupNode | undefined {
  let cur: H5Node | undefined = g;
  for (const part of p.split('/').filter((x) => x)) {
    if (!cur || cur.kind !== 'group') return undefined;
    cur = child(cur, part);
  }
  return cur && cur.kind === 'group' ? cur : undefined;
}

export function nodeAt(g: H5GroupNode, p: string): H5Node | undefined {
  const parts = p.split('/').filter((x) => x);
  const last = parts.pop();
  const parent = groupAt(g, parts.join('/'));
  return parent && last !== undefined ? child(parent, last) : undefined;
}

/** sets (creating intermediate groups) a node at a path */
export function setNode(g: H5GroupNode, p: string, node: H5Node): void {
  const parts = p.split('/').filter((x) => x);
  const last = parts.pop() as string;
  let cur = g;
  for (const part of parts) {
    let c = child(cur, part);
    if (!c || c.kind !== 'group') {
      c = { kind: 'group', attrs: [], children: [] };
      const i = cur.children.findIndex(([n]) => n === part);
      if (i >= 0) cur.children[i] = [part, c];
      else cur.children.push([part, c]);
    }
    cur = c;
  }
  const i = cur.children.findIndex(([n]) => n === last);
  if (i >= 0) cur.children[i] = [last, node];
  else cur.children.push([last, node]);
}

export function attrValue(node: { attrs: H5Attr[] }, name: string): unknown {
  return node.attrs.find((a) => a.name === name)?.value;
}

export function attrStrings(node: { attrs: H5Attr[] }, name: string): string[] | null {
  const v = attrValue(node, name);
  if (v === undefined || v === null) return null;
  if (typeof v === 'string') return [v];
  if (Array.isArray(v)) return v.map((x) => (typeof x === 'string' ? x : x instanceof Uint8Array ? Buffer.from(x).toString('utf8') : String(x)));
  return null;
}

export function setAttr(node: { attrs: H5Attr[] }, name: string, value: unknown, dtype: unknown = null, shape: number[] | null = null): void {
  const i = node.attrs.findIndex((a) => a.name === name);
  const old = i >= 0 ? node.attrs[i] : undefined;
  const a: H5Attr = { name, value, dtype: dtype ?? (typeof value === 'string' && typeof old?.dtype === 'string' && /^S$/.test(old.dtype) ? old.dtype : null), shape };
  if (i >= 0) node.attrs[i] = a;
  else node.attrs.push(a);
}

/** dataset value -> stored little-endian bytes + our dtype name */
export function datasetBytes(d: H5DatasetNode): { dtype: string; bytes: Uint8Array } {
  const v = d.value;
  const view = (t: ArrayBufferView) => new Uint8Array(t.buffer, t.byteOffset, t.byteLength);
  if (v instanceof Float32Array) return { dtype: 'float32', bytes: view(v) };
  if (v instanceof Float64Array) return { dtype: 'float64', bytes: view(v) };
  if (v instanceof Int32Array) return { dtype: 'int32', bytes: view(v) };
  if (v instanceof BigInt64Array) return { dtype: 'int64', bytes: view(v) };
  if (v instanceof Uint8Array) return { dtype: 'uint8', bytes: v };
  if (v instanceof Uint16Array && d.dtype === '<e') return { dtype: 'float16', bytes: view(v) };
  if (typeof v === 'number') return { dtype: Number.isInteger(v) && d.dtype !== '<f' && d.dtype !== '<d' ? 'int64' : d.dtype === '<f' ? 'float32' : 'float64', bytes: d.dtype === '<f' ? view(new Float32Array([v])) : Number.isInteger(v) && d.dtype !== '<d' ? view(new BigInt64Array([BigInt(v)])) : view(new Float64Array([v])) };
  if (typeof v === 'bigint') return { dtype: 'int64', bytes: view(new BigInt64Array([v])) };
  throw new Error(`dataset of dtype ${JSON.stringify(d.dtype)} is not supported`);
}

/** a float32 dataset node from weight bytes (copied so h5wasm gets an aligned Float32Array) */
export function float32Dataset(bytes: Uint8Array, shape: number[], dtype: string): H5DatasetNode {
  const copy = new Uint8Array(bytes.byteLength);
  copy.set(bytes);
  switch (dtype) {
    case 'float64':
      return { kind: 'dataset', attrs: [], dtype: '<d', shape, value: new Float64Array(copy.buffer) };
    case 'int32':
      return { kind: 'dataset', attrs: [], dtype: '<i', shape, value: new Int32Array(copy.buffer) };
    case 'int64':
      return { kind: 'dataset', attrs: [], dtype: '<q', shape, value: new BigInt64Array(copy.buffer) };
    default:
      return { kind: 'dataset', attrs: [], dtype: '<f', shape, value: new Float32Array(copy.buffer) };
  }
}
