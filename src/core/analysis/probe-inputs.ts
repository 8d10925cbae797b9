/**
 * Where probe samples come from, independent of any engine: seeded random tensors (normal or uniform in a
 * declared range), a folder of images (PNG/JPEG, resized and normalized with presets), `.npy` / `.npz` files
 * (own readers: npz is a zip, read through its central directory and inflated with node:zlib), JSON arrays,
 * or arrays in memory. `openProbeInputs` turns a source into batches of feeds for a model's inputs.
 *
 * Conventions: axis 0 of every model input is the batch axis. A data array has the samples on axis 0 and the
 * model input's remaining dims after it (an array with exactly the input's rank minus 1 is one sample).
 * Random sources generate sample by sample from one seeded stream, so a given sample has the same values
 * whatever the batch size.
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { float16ToFloat32, float32ToFloat16 } from '../formats/onnx/tensor';
import * as path from 'node:path';
import { inflateRawSync } from 'node:zlib';
import { ModelError } from '../errors';
import type { ValueSummary } from '../types';
import { describeFsError } from '../util/fs';
import { Rng } from '../util/random';
import { decodeImage, preprocessImage, type ImagePreprocess, type NormalizePreset } from './probe-images';

// ---------------------------------------------------------------- sources

export interface RandomSource {
  kind: 'random';
  /** 'normal' (default): mean + std * N(0, 1); 'uniform': in [low, high) */
  distribution?: 'normal' | 'uniform';
  mean?: number;
  std?: number;
  low?: number;
  high?: number;
  seed?: number;
}

export interface ImageSource {
  kind: 'images';
  /** a folder of .png / .jpg / .jpeg files (sorted by name) */
  path: string;
  /** [height, width]; default: the model input's spatial dims */
  size?: [number, number];
  /** default: 'nchw' when the input's dim 1 is 1 or 3, else 'nhwc' when its last dim is */
  layout?: 'nchw' | 'nhwc';
  /** default 'rgb' */
  order?: 'rgb' | 'bgr';
  /** default 'imagenet' */
  normalize?: NormalizePreset | { mean: number[]; std: number[] };
}

export interface FileSource {
  /** 'npy' covers .npy and .npz files */
  kind: 'npy' | 'json';
  path: string;
}

export interface ArraysSource {
  kind: 'arrays';
  /** by model input name (a single array may use any key when the model has one input); samples on axis 0 */
  arrays: Record<string, NdArray>;
  description?: string;
}

export type InputSource = RandomSource | ImageSource | FileSource | ArraysSource;

/** Chooses the source kind of a path by its content: a folder of images, .npy/.npz (magic bytes) or JSON. */
export function inputSourceFromPath(p: string, image: Omit<ImageSource, 'kind' | 'path'> = {}): InputSource {
  let st;
  try {
    st = statSync(p);
  } catch (err) {
    throw new ModelError(describeFsError(err, p));
  }
  if (st.isDirectory()) return { kind: 'images', path: p, ...image };
  const head = readHead(p, 8);
  if (isNpy(head) || isZip(head)) return { kind: 'npy', path: p };
  const text = Buffer.from(head).toString('utf8').replace(/^\uFEFF/, '').trimStart();
  if (text.startsWith('[') || text.startsWith('{')) return { kind: 'json', path: p };
  throw new ModelError(`${p}: not a folder of images, an .npy/.npz file or a JSON array`);
}

function readHead(p: string, n: number): Uint8Array {
  const b = readFileSync(p);
  return b.subarray(0, Math.min(n, b.length));
}

// ---------------------------------------------------------------- n-d arrays, .npy, .npz, JSON

export type NdData = Float32Array | Float64Array | Int8Array | Uint8Array | Int16Array | Uint16Array | Int32Array | Uint32Array | BigInt64Array | BigUint64Array;

export interface NdArray {
  /** numpy-style name: float32, float64, float16, int8 ... bool */
  dtype: string;
  dims: number[];
  /** C order; float16 as Uint16Array bit patterns, bool as Uint8Array */
  data: NdData;
}

const NPY_MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59];

export function isNpy(b: Uint8Array): boolean {
  return b.length >= 6 && NPY_MAGIC.every((v, i) => b[i] === v);
}

function isZip(b: Uint8Array): boolean {
  return b.length >= 4 && b[0] === 0x50 && b[1] === 0x4b && b[2] === 0x03 && b[3] === 0x04;
}

const NPY_TYPES: Record<string, { dtype: string; size: number; make: (buf: ArrayBuffer, n: number) => NdData }> = {
  f4: { dtype: 'float32', size: 4, make: (b, n) => new Float32Array(b, 0, n) },
  f8: { dtype: 'float64', size: 8, make: (b, n) => new Float64Array(b, 0, n) },
  f2: { dtype: 'float16', size: 2, make: (b, n) => new Uint16Array(b, 0, n) },
  i1: { dtype: 'int8', size: 1, make: (b, n) => new Int8Array(b, 0, n) },
  u1: { dtype: 'uint8', size: 1, make: (b, n) => new Uint8Array(b, 0, n) },
  b1: { dtype: 'bool', size: 1, make: (b, n) => new Uint8Array(b, 0, n) },
  i2: { dtype: 'int16', size: 2, make: (b, n) => new Int16Array(b, 0, n) },
  u2: { dtype: 'uint16', size: 2, make: (b, n) => new Uint16Array(b, 0, n) },
  i4: { dtype: 'int32', size: 4, make: (b, n) => new Int32Array(b, 0, n) },
  u4: { dtype: 'uint32', size: 4, make: (b, n) => new Uint32Array(b, 0, n) },
  i8: { dtype: 'int64', size: 8, make: (b, n) => new BigInt64Array(b, 0, n) },
  u8: { dtype: 'uint64', size: 8, make: (b, n) => new BigUint64Array(b, 0, n) },
};

/** Parses a .npy file (format versions 1-3; little- or big-endian numeric dtypes; C or Fortran order). */
export function parseNpy(b: Uint8Array, what = 'npy'): NdArray {
  const fail = (why: string): never => {
    throw new ModelError(`${what}: not a readable .npy array (${why})`);
  };
  if (!isNpy(b)) fail('no \\x93NUMPY magic');
  const major = b[6];
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  let headerLen: number;
  let start: number;
  if (major === 1) {
    headerLen = dv.getUint16(8, true);
    start = 10;
  } else if (major === 2 || major === 3) {
    headerLen = dv.getUint32(8, true);
    start = 12;
  } else return fail(`format version ${major}`);
  if (start + headerLen > b.length) fail('truncated header');
  const header = Buffer.from(b.subarray(start, start + headerLen)).toString(major === 3 ? 'utf8' : 'latin1');
  const descr = /'descr'\s*:\s*'([^']*)'/.exec(header)?.[1];
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape'\s*:\s*\(([^)]*)\)/.exec(header)?.[1];
  if (descr === undefined || fortran === undefined || shapeText === undefined) return fail(`header ${header.trim()}`);
  const dims = shapeText
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
    .map(Number);
  if (dims.some((d) => !Number.isSafeInteger(d) || d < 0)) fail(`shape (${shapeText})`);
  const m = /^([<>|=])([a-z]\d+)$/.exec(descr);
  const t = m ? NPY_TYPES[m[2]] : undefined;
  if (!m || !t) return fail(`unsupported dtype '${descr}' (numeric dtypes only)`);
  const n = dims.reduce((p, d) => p * d, 1);
  const dataStart = start + headerLen;
  if (dataStart + n * t.size > b.length) fail(`data has ${b.length - dataStart} bytes, expected ${n * t.size}`);
  const copy = new Uint8Array(n * t.size);
  copy.set(b.subarray(dataStart, dataStart + n * t.size));
  if (m[1] === '>' && t.size > 1) {
    for (let i = 0; i < copy.length; i += t.size) copy.subarray(i, i + t.size).reverse();
  }
  let data = t.make(copy.buffer, n);
  if (fortran === 'True' && dims.length > 1) data = fortranToC(data, dims);
  return { dtype: t.dtype, dims, data };
}

/** column-major -> row-major copy */
function fortranToC(src: NdData, dims: number[]): NdData {
  const n = src.length;
  const out = new (src.constructor as { new (n: number): NdData })(n);
  const rank = dims.length;
  const fStride: number[] = [];
  let s = 1;
  for (let k = 0; k < rank; k++) {
    fStride.push(s);
    s *= dims[k];
  }
  const idx = new Array<number>(rank).fill(0);
  for (let i = 0; i < n; i++) {
    let f = 0;
    for (let k = 0; k < rank; k++) f += idx[k] * fStride[k];
    (out as unknown as number[])[i] = (src as unknown as number[])[f];
    for (let k = rank - 1; k >= 0; k--) {
      if (++idx[k] < dims[k]) break;
      idx[k] = 0;
    }
  }
  return out;
}

/** no npz entry above this many bytes uncompressed */
export const MAX_NPZ_ENTRY_BYTES = 2 ** 31 - 1;

/**
 * Entries of a zip archive (what numpy's savez / savez_compressed write): the central directory is read
 * (zip64 included), stored and deflated entries are supported, sizes are checked before inflating.
 */
export function readZip(b: Uint8Array, what: string): Map<string, Uint8Array> {
  const fail = (why: string): never => {
    throw new ModelError(`${what}: not a readable .npz/zip archive (${why})`);
  };
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const u16 = (o: number) => dv.getUint16(o, true);
  const u32 = (o: number) => dv.getUint32(o, true);
  const u64 = (o: number) => Number(dv.getBigUint64(o, true));
  let eocd = -1;
  for (let i = b.length - 22; i >= Math.max(0, b.length - 22 - 65535); i--) {
    if (u32(i) === 0x06054b50) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) fail('no end of central directory');
  let count = u16(eocd + 10);
  let cdSize = u32(eocd + 12);
  let cdOffset = u32(eocd + 16);
  if (count === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) {
    const loc = eocd - 20;
    if (loc < 0 || u32(loc) !== 0x07064b50) fail('zip64 locator missing');
    const z = u64(loc + 8);
    if (z + 56 > b.length || u32(z) !== 0x06064b50) fail('zip64 end of central directory missing');
    count = u64(z + 32);
    cdSize = u64(z + 40);
    cdOffset = u64(z + 48);
  }
  if (cdOffset + cdSize > b.length) fail('central directory past the end of the file');
  const out = new Map<string, Uint8Array>();
  let p = cdOffset;
  for (let e = 0; e < count; e++) {
    if (p + 46 > b.length || u32(p) !== 0x02014b50) fail('corrupt central directory');
    const flags = u16(p + 8);
    const method = u16(p + 10);
    let csize = u32(p + 20);
    let usize = u32(p + 24);
    const nameLen = u16(p + 28);
    const extraLen = u16(p + 30);
    const commentLen = u16(p + 32);
    let local = u32(p + 42);
    const name = Buffer.from(b.subarray(p + 46, p + 46 + nameLen)).toString(flags & 0x800 ? 'utf8' : 'latin1');
    // zip64 extra field: the 64-bit values of the fields that are 0xffffffff, in this order
    let x = p + 46 + nameLen;
    const xEnd = x + extraLen;
    while (x + 4 <= xEnd) {
      const id = u16(x);
      const len = u16(x + 2);
      if (id === 0x0001) {
        let q = x + 4;
        if (usize === 0xffffffff) {
          usize = u64(q);
          q += 8;
        }
        if (csize === 0xffffffff) {
          csize = u64(q);
          q += 8;
        }
        if (local === 0xffffffff) local = u64(q);
      }
      x += 4 + len;
    }
    p = xEnd + commentLen;
    if (flags & 1) fail(`entry ${name} is encrypted`);
    if (usize > MAX_NPZ_ENTRY_BYTES) fail(`entry ${name} is ${usize} bytes uncompressed`);
    if (local + 30 > b.length || u32(local) !== 0x04034b50) fail(`entry ${name}: bad local header`);
    const dataStart = local + 30 + u16(local + 26) + u16(local + 28);
    if (dataStart + csize > b.length) fail(`entry ${name} runs past the end of the file`);
    const raw = b.subarray(dataStart, dataStart + csize);
    let data: Uint8Array;
    if (method === 0) data = raw;
    else if (method === 8) {
      try {
        data = inflateRawSync(raw, { maxOutputLength: Math.max(1, usize) });
      } catch (err) {
        return fail(`entry ${name} does not inflate (${err instanceof Error ? err.message : String(err)})`);
      }
    } else return fail(`entry ${name} uses compression method ${method}`);
    if (data.length !== usize) fail(`entry ${name} has ${data.length} bytes, its header says ${usize}`);
    out.set(name, data);
  }
  return out;
}

/** Arrays of an .npz file by name (without the .npy suffix). */
export function parseNpz(b: Uint8Array, what = 'npz'): Map<string, NdArray> {
  const out = new Map<string, NdArray>();
  for (const [name, bytes] of readZip(b, what)) {
    if (!name.endsWith('.npy')) continue;
    const key = name.slice(0, -4);
    out.set(key, parseNpy(bytes, `${what}: ${name}`));
  }
  if (out.size === 0) throw new ModelError(`${what}: the archive holds no .npy arrays`);
  return out;
}

/** A rectangular nested JSON array of numbers -> float64 NdArray. */
export function jsonToNdArray(v: unknown, what: string): NdArray {
  const dims: number[] = [];
  let probe: unknown = v;
  while (Array.isArray(probe)) {
    dims.push(probe.length);
    probe = probe[0];
  }
  const n = dims.reduce((p, d) => p * d, 1);
  const data = new Float64Array(n);
  let k = 0;
  const walk = (x: unknown, depth: number): void => {
    if (depth === dims.length) {
      if (typeof x !== 'number' && typeof x !== 'boolean') throw new ModelError(`${what}: JSON array holds a non-number (${JSON.stringify(x)?.slice(0, 40)})`);
      data[k++] = Number(x);
      return;
    }
    if (!Array.isArray(x) || x.length !== dims[depth]) throw new ModelError(`${what}: JSON array is not rectangular (expected ${dims[depth]} entries at depth ${depth})`);
    for (const e of x) walk(e, depth + 1);
  };
  walk(v, 0);
  return { dtype: 'float64', dims, data };
}

function readFile(p: string): Uint8Array {
  try {
    return readFileSync(p);
  } catch (err) {
    throw new ModelError(describeFsError(err, p));
  }
}

/** the arrays a file holds: one unnamed array (key '') or arrays by name */
export function readArrayFile(source: FileSource): Map<string, NdArray> {
  const bytes = readFile(source.path);
  const what = path.basename(source.path);
  if (source.kind === 'npy') {
    if (isNpy(bytes)) return new Map([['', parseNpy(bytes, what)]]);
    if (isZip(bytes)) return parseNpz(bytes, what);
    throw new ModelError(`${what}: not an .npy or .npz file`);
  }
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(bytes).toString('utf8').replace(/^\uFEFF/, ''));
  } catch (err) {
    throw new ModelError(`${what}: invalid JSON (${err instanceof Error ? err.message.split('\n')[0] : String(err)})`);
  }
  if (Array.isArray(json)) return new Map([['', jsonToNdArray(json, what)]]);
  if (json && typeof json === 'object') {
    const out = new Map<string, NdArray>();
    for (const [k, v] of Object.entries(json)) out.set(k, jsonToNdArray(v, `${what}: ${k}`));
    return out;
  }
  throw new ModelError(`${what}: JSON must be an array or an object of arrays by input name`);
}

// ---------------------------------------------------------------- feeds

/** numeric tensor types onnxruntime accepts that probing can fill */
export type FeedType = 'float32' | 'float64' | 'float16' | 'int8' | 'uint8' | 'int16' | 'uint16' | 'int32' | 'uint32' | 'int64' | 'uint64' | 'bool';

export interface FeedTensor {
  type: FeedType;
  data: NdData;
  dims: number[];
}

export interface ProbeBatch {
  /** index of the batch's first sample */
  start: number;
  count: number;
  feeds: Record<string, FeedTensor>;
}

export interface ProbeInputs {
  /** e.g. 'random normal(0, 1), seed 1' or 'images in ./calib (12 files)' */
  description: string;
  samples: number;
  batchSize: number;
  /** per-run input shapes of a full batch */
  inputShapes: Record<string, number[]>;
  batches(): Iterable<ProbeBatch>;
  notes: string[];
}

export interface OpenInputsOptions {
  /** samples to use (random: default 32; files: all of them, at most this many) */
  samples?: number;
  /** samples per run (default 16; forced to the model's batch dim when that is static) */
  batchSize?: number;
  /** values of symbolic input dims (default 1) */
  dims?: Record<string, number>;
}

export const DEFAULT_RANDOM_SAMPLES = 32;
export const DEFAULT_BATCH = 16;

const FEED_TYPES = new Set<string>(['float32', 'float64', 'float16', 'int8', 'uint8', 'int16', 'uint16', 'int32', 'uint32', 'int64', 'uint64', 'bool']);

function feedType(input: ValueSummary): FeedType {
  if (!FEED_TYPES.has(input.dtype)) throw new ModelError(`cannot make probe data for input '${input.name}' of type ${input.dtype}`);
  return input.dtype as FeedType;
}

function allocate(type: FeedType, n: number): NdData {
  switch (type) {
    case 'float32':
      return new Float32Array(n);
    case 'float64':
      return new Float64Array(n);
    case 'float16':
    case 'uint16':
      return new Uint16Array(n);
    case 'int8':
      return new Int8Array(n);
    case 'uint8':
    case 'bool':
      return new Uint8Array(n);
    case 'int16':
      return new Int16Array(n);
    case 'int32':
      return new Int32Array(n);
    case 'uint32':
      return new Uint32Array(n);
    case 'int64':
      return new BigInt64Array(n);
    default:
      return new BigUint64Array(n);
  }
}


/** writes number v at index i of a feed array of `type` */
function put(out: NdData, type: FeedType, i: number, v: number): void {
  if (type === 'int64') (out as BigInt64Array)[i] = BigInt(Math.round(v));
  else if (type === 'uint64') (out as BigUint64Array)[i] = BigInt(Math.max(0, Math.round(v)));
  else if (type === 'float16') (out as Uint16Array)[i] = float32ToFloat16(v);
  else if (type === 'bool') (out as Uint8Array)[i] = v ? 1 : 0;
  else (out as Float32Array)[i] = v;
}

/** element i of an array as a number (float16 bit patterns decoded) */
function valueAt(a: NdArray, i: number): number {
  const v = a.data[i];
  if (typeof v === 'bigint') return Number(v);
  return a.dtype === 'float16' ? float16ToFloat32(v) : v;
}

interface InputPlan {
  input: ValueSummary;
  type: FeedType;
  /** per-sample dims (input dims after the batch axis) */
  sample: number[];
  /** static batch dim of the model input, or null when symbolic */
  fixedBatch: number | null;
}

function planInputs(inputs: ValueSummary[], dims: Record<string, number>, fromArrays?: Map<string, NdArray>): InputPlan[] {
  return inputs.map((input) => {
    const shape = input.shape ?? [];
    if (shape.length === 0) throw new ModelError(`input '${input.name}' has no batch axis (rank 0 or unknown shape); probing needs one`);
    const b = shape[0];
    // a symbolic batch dim takes the batch size (a value given for it in `dims` only sets the default batch size)
    const fixedBatch = typeof b === 'number' && b > 0 ? b : null;
    const arr = fromArrays?.get(input.name);
    const sample = shape.slice(1).map((d, k) => {
      if (typeof d === 'number' && d > 0) return d;
      if (arr) return arr.dims[arr.dims.length - (shape.length - 1) + k] ?? 1;
      return typeof d === 'string' && d in dims ? dims[d] : 1;
    });
    return { input, type: feedType(input), sample, fixedBatch };
  });
}

function effectiveBatch(plans: InputPlan[], requested: number | undefined, dims: Record<string, number>): number {
  const fixed = plans.map((p) => p.fixedBatch).filter((b): b is number => b !== null);
  if (fixed.length && fixed.some((b) => b !== fixed[0])) throw new ModelError(`the model's inputs have different static batch sizes (${fixed.join(', ')})`);
  if (fixed.length) return fixed[0];
  const sym = plans.map((p) => p.input.shape?.[0]).find((d): d is string => typeof d === 'string' && d in dims);
  const size = requested ?? (sym !== undefined ? dims[sym] : DEFAULT_BATCH);
  if (!(size >= 1)) throw new ModelError(`batch size ${size} must be >= 1`);
  return Math.floor(size);
}

function makeInputs(
  description: string,
  plans: InputPlan[],
  available: number,
  opts: OpenInputsOptions,
  fill: (plan: InputPlan, sample: number, out: NdData, offset: number) => void,
  notes: string[],
): ProbeInputs {
  const batchSize = effectiveBatch(plans, opts.batchSize, opts.dims ?? {});
  let samples = Math.min(available, opts.samples ?? available);
  if (samples <= 0) throw new ModelError(`${description}: no samples to probe with`);
  if (plans.some((p) => p.fixedBatch !== null) && samples % batchSize !== 0) {
    const kept = samples - (samples % batchSize);
    if (kept === 0) throw new ModelError(`the model's batch size is fixed at ${batchSize}, but only ${samples} sample(s) are available`);
    notes.push(`the model's batch size is fixed at ${batchSize}: ${samples - kept} trailing sample(s) left out`);
    samples = kept;
  }
  const inputShapes: Record<string, number[]> = {};
  for (const p of plans) inputShapes[p.input.name] = [batchSize, ...p.sample];
  return {
    description,
    samples,
    batchSize,
    inputShapes,
    notes,
    *batches() {
      for (let start = 0; start < samples; start += batchSize) {
        const count = Math.min(batchSize, samples - start);
        const feeds: Record<string, FeedTensor> = {};
        const perSample = plans.map((p) => p.sample.reduce((a, d) => a * d, 1));
        const arrays = plans.map((p, k) => allocate(p.type, count * perSample[k]));
        for (let s = 0; s < count; s++) plans.forEach((p, k) => fill(p, start + s, arrays[k], s * perSample[k]));
        plans.forEach((p, k) => (feeds[p.input.name] = { type: p.type, data: arrays[k], dims: [count, ...p.sample] }));
        yield { start, count, feeds };
      }
    },
  };
}

/**
 * Opens a probe input source for a model's (non-constant) inputs. Throws a one-line ModelError when the source
 * does not fit the inputs (missing array, wrong per-sample shape, image folder without images...).
 */
export function openProbeInputs(source: InputSource, inputs: ValueSummary[], opts: OpenInputsOptions = {}): ProbeInputs {
  if (inputs.length === 0) throw new ModelError('the model has no inputs to feed');
  const dims = opts.dims ?? {};
  switch (source.kind) {
    case 'random':
      return randomInputs(source, inputs, opts, dims);
    case 'images':
      return imageInputs(source, inputs, opts, dims);
    case 'npy':
    case 'json':
      return arrayInputs(readArrayFile(source), path.basename(source.path), inputs, opts, dims);
    case 'arrays':
      return arrayInputs(new Map(Object.entries(source.arrays)), source.description ?? 'arrays', inputs, opts, dims);
    default:
      throw new ModelError(`unknown probe input source ${(source as { kind: string }).kind}`);
  }
}

function randomInputs(source: RandomSource, inputs: ValueSummary[], opts: OpenInputsOptions, dims: Record<string, number>): ProbeInputs {
  const dist = source.distribution ?? 'normal';
  const seed = source.seed ?? 1;
  const mean = source.mean ?? 0;
  const std = source.std ?? 1;
  const low = source.low ?? -1;
  const high = source.high ?? 1;
  if (dist === 'uniform' && !(high > low)) throw new ModelError(`uniform probe range [${low}, ${high}) is empty`);
  if (dist === 'normal' && !(std >= 0)) throw new ModelError(`normal probe std ${std} must be >= 0`);
  const plans = planInputs(inputs, dims);
  let rng = new Rng(seed);
  let next = 0;
  const description = dist === 'uniform' ? `random uniform[${low}, ${high}), seed ${seed}` : `random normal(${mean}, ${std}), seed ${seed}`;
  return makeInputs(
    description,
    plans,
    opts.samples ?? DEFAULT_RANDOM_SAMPLES,
    opts,
    (plan, sample, out, offset) => {
      // samples are generated in order from one stream: restart when batches() is iterated again
      if (sample === 0 && plan === plans[0]) {
        rng = new Rng(seed);
        next = 0;
      }
      if (sample !== next && plan === plans[0]) throw new Error('internal error: random samples out of order');
      if (plan === plans[plans.length - 1]) next = sample + 1;
      const n = plan.sample.reduce((a, d) => a * d, 1);
      const isFloat = plan.type === 'float32' || plan.type === 'float64' || plan.type === 'float16';
      for (let i = 0; i < n; i++) {
        let v: number;
        if (!isFloat) v = plan.type === 'bool' ? +(rng.next() < 0.5) : Math.floor(rng.next() * 10);
        else if (dist === 'uniform') v = low + (high - low) * rng.next();
        else v = mean + std * rng.normal();
        put(out, plan.type, offset + i, v);
      }
    },
    [],
  );
}

const IMAGE_EXT = /\.(png|jpe?g)$/i;

function imageInputs(source: ImageSource, inputs: ValueSummary[], opts: OpenInputsOptions, dims: Record<string, number>): ProbeInputs {
  if (inputs.length !== 1) throw new ModelError(`an image folder feeds models with one input; this one has ${inputs.length} (${inputs.map((i) => i.name).join(', ')})`);
  let files: string[];
  try {
    files = readdirSync(source.path)
      .filter((f) => IMAGE_EXT.test(f))
      .sort();
  } catch (err) {
    throw new ModelError(describeFsError(err, source.path));
  }
  if (files.length === 0) throw new ModelError(`${source.path}: no .png/.jpg/.jpeg images in this folder`);
  const [plan] = planInputs(inputs, dims);
  if (plan.sample.length !== 3) throw new ModelError(`input '${plan.input.name}' has rank ${plan.sample.length + 1}; images feed 4-D inputs ([N, C, H, W] or [N, H, W, C])`);
  const shape = plan.input.shape ?? [];
  const isC = (d: number | string | null | undefined) => d === 1 || d === 3;
  const layout = source.layout ?? (isC(shape[1]) ? 'nchw' : isC(shape[3]) ? 'nhwc' : 'nchw');
  const C = layout === 'nchw' ? plan.sample[0] : plan.sample[2];
  if (C !== 1 && C !== 3) throw new ModelError(`input '${plan.input.name}' has ${C} channels in ${layout.toUpperCase()} layout; images give 1 or 3`);
  const size: [number, number] = source.size ?? (layout === 'nchw' ? [plan.sample[1], plan.sample[2]] : [plan.sample[0], plan.sample[1]]);
  plan.sample = layout === 'nchw' ? [C, size[0], size[1]] : [size[0], size[1], C];
  const pre: ImagePreprocess = { size, channels: C as 1 | 3, layout, order: source.order ?? 'rgb', normalize: source.normalize ?? 'imagenet' };
  const norm = typeof pre.normalize === 'string' ? pre.normalize : 'mean/std';
  const description = `${files.length} image(s) in ${source.path}, resized to ${size[0]}x${size[1]}, ${pre.order.toUpperCase()}, ${layout.toUpperCase()}, normalized ${norm}`;
  return makeInputs(
    description,
    [plan],
    files.length,
    opts,
    (p, sample, out, offset) => {
      const file = path.join(source.path, files[sample]);
      const values = preprocessImage(decodeImage(readFile(file), files[sample]), pre);
      for (let i = 0; i < values.length; i++) put(out, p.type, offset + i, values[i]);
    },
    [],
  );
}

function arrayInputs(arrays: Map<string, NdArray>, what: string, inputs: ValueSummary[], opts: OpenInputsOptions, dims: Record<string, number>): ProbeInputs {
  const byInput = new Map<string, NdArray>();
  if (arrays.size === 1 && inputs.length === 1) byInput.set(inputs[0].name, [...arrays.values()][0]);
  else {
    for (const i of inputs) {
      const a = arrays.get(i.name);
      if (!a) throw new ModelError(`${what} has no array for input '${i.name}' (it has ${[...arrays.keys()].map((k) => k || '(unnamed)').join(', ')})`);
      byInput.set(i.name, a);
    }
  }
  const notes: string[] = [];
  const plans = planInputs(inputs, dims, byInput);
  let available = Infinity;
  const sampled = new Map<string, NdArray>();
  for (const p of plans) {
    let a = byInput.get(p.input.name)!;
    if (a.dims.length === p.sample.length) a = { ...a, dims: [1, ...a.dims] };
    const per = a.dims.slice(1);
    if (a.dims.length !== p.sample.length + 1 || per.some((d, k) => d !== p.sample[k])) {
      throw new ModelError(`${what}: array for input '${p.input.name}' has shape [${a.dims.join(', ')}]; expected [samples, ${p.sample.join(', ')}]`);
    }
    sampled.set(p.input.name, a);
    available = Math.min(available, a.dims[0]);
  }
  const counts = [...sampled.values()].map((a) => a.dims[0]);
  if (counts.some((c) => c !== counts[0])) notes.push(`the arrays hold different sample counts (${counts.join(', ')}): ${available} used`);
  return makeInputs(
    `${what} (${available} sample(s))`,
    plans,
    available,
    opts,
    (p, sample, out, offset) => {
      const a = sampled.get(p.input.name)!;
      const n = p.sample.reduce((x, d) => x * d, 1);
      const base = sample * n;
      if (a.dtype === p.type && a.dtype !== 'float16') {
        (out as Float32Array).set((a.data as Float32Array).subarray(base, base + n), offset);
        return;
      }
      for (let i = 0; i < n; i++) put(out, p.type, offset + i, valueAt(a, base + i));
    },
    notes,
  );
}
