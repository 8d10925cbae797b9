/**
 * Tensor data layer: dtype knowledge (as a table), reading TensorProto data from any of its encodings
 * (raw_data, float_data, int32_data, int64_data, double_data, uint64_data, external files) into typed arrays,
 * exact float16 / bfloat16 / float8 / float4 conversions, and building tensors back in their original dtype.
 *
 * Every array returned is fresh: it never aliases the model's file buffer, so callers may mutate it.
 * Hosts are assumed little-endian (every platform Node ships for), like the ONNX raw_data layout.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { mapMessages } from './codec';
import type { ModelProto, TensorProto } from './proto';

// ---------------------------------------------------------------- dtypes, as data

type Store = 'float' | 'int32' | 'int64' | 'double' | 'uint64' | 'string';

/** [data_type, name, bits per element, the typed field that carries it when raw_data is not used] */
const DTYPE_TABLE: [number, string, number, Store][] = [
  [1, 'float32', 32, 'float'],
  [2, 'uint8', 8, 'int32'],
  [3, 'int8', 8, 'int32'],
  [4, 'uint16', 16, 'int32'],
  [5, 'int16', 16, 'int32'],
  [6, 'int32', 32, 'int32'],
  [7, 'int64', 64, 'int64'],
  [8, 'string', 0, 'string'],
  [9, 'bool', 8, 'int32'],
  [10, 'float16', 16, 'int32'],
  [11, 'float64', 64, 'double'],
  [12, 'uint32', 32, 'uint64'],
  [13, 'uint64', 64, 'uint64'],
  [14, 'complex64', 64, 'float'],
  [15, 'complex128', 128, 'double'],
  [16, 'bfloat16', 16, 'int32'],
  [17, 'float8e4m3fn', 8, 'int32'],
  [18, 'float8e4m3fnuz', 8, 'int32'],
  [19, 'float8e5m2', 8, 'int32'],
  [20, 'float8e5m2fnuz', 8, 'int32'],
  [21, 'uint4', 4, 'int32'],
  [22, 'int4', 4, 'int32'],
  [23, 'float4e2m1', 4, 'int32'],
  [24, 'float8e8m0', 8, 'int32'],
];

interface DType {
  id: number;
  name: string;
  bits: number;
  store: Store;
}

const DTYPES = new Map<number, DType>(DTYPE_TABLE.map(([id, name, bits, store]) => [id, { id, name, bits, store }]));
const BY_NAME = new Map<string, number>(DTYPE_TABLE.map(([id, name]) => [name, id]));

export function dtypeName(dataType: number): string {
  if (dataType === 0) return 'undefined';
  return DTYPES.get(dataType)?.name ?? `dtype(${dataType})`;
}

/** data_type number of a dtype name ('float32' -> 1); undefined when unknown */
export function dtypeFromName(name: string): number | undefined {
  return BY_NAME.get(name);
}

/** bits per element (4 for int4/uint4/float4e2m1, 0 for string and unknown types) */
export function dtypeBits(dataType: number): number {
  return DTYPES.get(dataType)?.bits ?? 0;
}

/** bytes per element: 0.5 for 4-bit types, 0 for string and unknown types */
export function dtypeByteSize(dataType: number): number {
  return dtypeBits(dataType) / 8;
}

export function isFloatDtype(dataType: number): boolean {
  return dataType === 1 || dataType === 10 || dataType === 11 || dataType === 16 || (dataType >= 17 && dataType <= 20) || dataType === 23 || dataType === 24;
}

function dtypeOf(t: TensorProto): DType {
  const dt = t.dataType ?? 0;
  const d = DTYPES.get(dt);
  if (!d) throw new Error(`tensor '${t.name ?? ''}' has ${dt === 0 ? 'no data type' : `unsupported data type ${dt}`}`);
  return d;
}

// ---------------------------------------------------------------- sizes (no data touched)

export function tensorElementCount(t: TensorProto): number {
  let n = 1;
  for (const d of t.dims) {
    if (d < 0n) throw new Error(`tensor '${t.name ?? ''}' has a negative dimension ${d}`);
    n *= Number(d);
  }
  if (!Number.isSafeInteger(n)) throw new Error(`tensor '${t.name ?? ''}' has an absurd element count ${n}`);
  return n;
}

/** bytes of the tensor's data in its own dtype (string tensors: sum of the strings' lengths) */
export function tensorByteLength(t: TensorProto): number {
  const dt = t.dataType ?? 0;
  if (dt === 8) return (t.stringData ?? []).reduce((s, b) => s + b.length, 0);
  return Math.ceil((tensorElementCount(t) * dtypeBits(dt)) / 8);
}

export function isExternal(t: TensorProto): boolean {
  return t.dataLocation === 1;
}

// ---------------------------------------------------------------- reading

export type TypedTensorData =
  | Float32Array
  | Float64Array
  | Int8Array
  | Uint8Array
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array
  | BigInt64Array
  | BigUint64Array;

function describe(t: TensorProto): string {
  return `tensor '${t.name ?? ''}' (${dtypeName(t.dataType ?? 0)}, dims [${t.dims.join(',')}])`;
}

/** raw little-endian bytes (owned or not) -> typed array of the native dtype; `owned` bytes may be reused */
function fromRaw(t: TensorProto, d: DType, n: number, bytes: Uint8Array, owned: boolean): TypedTensorData {
  const expected = Math.ceil((n * d.bits) / 8);
  if (bytes.length !== expected) {
    throw new Error(`${describe(t)}: its data has ${bytes.length} bytes, expected ${expected}`);
  }
  if (d.bits === 4) return unpack4(bytes, n, d.id === 22);
  const own = owned && bytes.byteOffset % 8 === 0 ? bytes : copyBytes(bytes);
  const buf = own.buffer;
  const off = own.byteOffset;
  switch (d.id) {
    case 1:
      return new Float32Array(buf, off, n);
    case 14:
      return new Float32Array(buf, off, 2 * n);
    case 11:
      return new Float64Array(buf, off, n);
    case 15:
      return new Float64Array(buf, off, 2 * n);
    case 3:
      return new Int8Array(buf, off, n);
    case 4:
    case 10:
    case 16:
      return new Uint16Array(buf, off, n);
    case 5:
      return new Int16Array(buf, off, n);
    case 6:
      return new Int32Array(buf, off, n);
    case 7:
      return new BigInt64Array(buf, off, n);
    case 12:
      return new Uint32Array(buf, off, n);
    case 13:
      return new BigUint64Array(buf, off, n);
    default: // uint8, bool, float8 codes
      return new Uint8Array(buf, off, n);
  }
}

/** two 4-bit elements per byte, first in the low nibble */
function unpack4(bytes: ArrayLike<number>, n: number, signed: boolean): Int8Array | Uint8Array {
  const out = signed ? new Int8Array(n) : new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const b = bytes[i >> 1]!;
    const v = i & 1 ? (b >> 4) & 15 : b & 15;
    out[i] = signed && v >= 8 ? v - 16 : v;
  }
  return out;
}

function fieldData(t: TensorProto, d: DType, n: number): TypedTensorData {
  const count = (arr: ArrayLike<unknown> | undefined, field: string, want: number): number => {
    const have = arr?.length ?? 0;
    if (have !== want) {
      if (have === 0) throw new Error(`${describe(t)} has no data`);
      throw new Error(`${describe(t)}: ${field} has ${have} values, expected ${want}`);
    }
    return have;
  };
  switch (d.store) {
    case 'float': {
      const want = d.id === 14 ? 2 * n : n;
      if (want === 0) return new Float32Array(0);
      count(t.floatData, 'float_data', want);
      return Float32Array.from(t.floatData!);
    }
    case 'double': {
      const want = d.id === 15 ? 2 * n : n;
      if (want === 0) return new Float64Array(0);
      count(t.doubleData, 'double_data', want);
      return Float64Array.from(t.doubleData!);
    }
    case 'int64':
      if (n === 0) return new BigInt64Array(0);
      count(t.int64Data, 'int64_data', n);
      return BigInt64Array.from(t.int64Data!);
    case 'uint64': {
      if (n === 0) return d.id === 12 ? new Uint32Array(0) : new BigUint64Array(0);
      count(t.uint64Data, 'uint64_data', n);
      const src = t.uint64Data!;
      if (d.id === 13) return BigUint64Array.from(src);
      const out = new Uint32Array(n);
      for (let i = 0; i < n; i++) out[i] = Number(src[i]! & 0xffffffffn);
      return out;
    }
    case 'int32': {
      const want = d.bits === 4 ? Math.ceil(n / 2) : n;
      if (want === 0) return d.bits === 4 ? unpack4([], 0, d.id === 22) : fromRaw(t, d, 0, new Uint8Array(0), true);
      count(t.int32Data, 'int32_data', want);
      const src = t.int32Data!;
      if (d.bits === 4) return unpack4(src, n, d.id === 22);
      switch (d.id) {
        case 6:
          return Int32Array.from(src);
        case 3:
          return Int8Array.from(src);
        case 5:
          return Int16Array.from(src);
        case 4:
        case 10:
        case 16:
          return Uint16Array.from(src); // float16/bfloat16: bit patterns in the low 16 bits
        default:
          return Uint8Array.from(src);
      }
    }
    default:
      throw new Error(`${describe(t)}: string tensors have no numeric data`);
  }
}

/**
 * The tensor's elements in their native type: float16/bfloat16 as Uint16Array bit patterns, float8 as Uint8Array
 * codes, int4/uint4/float4e2m1 unpacked to one element per entry, complex as interleaved (re, im) pairs.
 */
export function readTensorTyped(t: TensorProto, ext: ExternalDataResolver | null): TypedTensorData {
  const d = dtypeOf(t);
  const n = tensorElementCount(t);
  if (d.store === 'string') throw new Error(`${describe(t)}: string tensors have no numeric data`);
  if (isExternal(t)) {
    if (!ext) throw new Error(`${describe(t)} keeps its data in an external file, but no external-data folder is known`);
    return fromRaw(t, d, n, ext.read(t), true);
  }
  if (t.rawData !== undefined) return fromRaw(t, d, n, t.rawData, false);
  return fieldData(t, d, n);
}

/** the strings of a STRING tensor (UTF-8 decoded) */
export function readTensorStrings(t: TensorProto): string[] {
  if (t.dataType !== 8) throw new Error(`${describe(t)} is not a string tensor`);
  const dec = new TextDecoder();
  return (t.stringData ?? []).map((b) => dec.decode(b));
}

let halfTable: Float32Array | undefined;

/** exact float16 -> float32 for every bit pattern */
export function float16ToFloat32(bits: number): number {
  const s = bits & 0x8000 ? -1 : 1;
  const e = (bits >> 10) & 0x1f;
  const m = bits & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1024 + m) * 2 ** (e - 25);
}

export function bfloat16ToFloat32(bits: number): number {
  f32u[0] = (bits & 0xffff) << 16;
  return f32[0]!;
}

const f32 = new Float32Array(1);
const f32u = new Uint32Array(f32.buffer);

/** float32 -> float16 bits, round to nearest even; overflow -> inf, NaN -> quiet NaN */
export function float32ToFloat16(v: number): number {
  f32[0] = v;
  const x = f32u[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  const mant = x & 0x7fffff;
  if (exp === 0xff) return sign | (mant ? 0x7e00 : 0x7c00);
  const e = exp - 112; // rebias 127 -> 15
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    const full = mant | 0x800000;
    const shift = 14 - e;
    let h = full >>> shift;
    const rem = full & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && h & 1)) h++;
    return sign | h;
  }
  let h = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && h & 1)) h++;
  return sign | h;
}

/** float32 -> bfloat16 bits, round to nearest even; NaN stays a quiet NaN */
export function float32ToBfloat16(v: number): number {
  f32[0] = v;
  const x = f32u[0]!;
  if ((x & 0x7f800000) === 0x7f800000 && x & 0x7fffff) return (x >>> 16) | 0x40;
  return Math.floor((x + 0x7fff + ((x >>> 16) & 1)) / 65536) & 0xffff;
}

function makeTable(size: number, f: (code: number) => number): Float32Array {
  const t = new Float32Array(size);
  for (let i = 0; i < size; i++) t[i] = f(i);
  return t;
}

/** a small float format (1 sign bit, `eb` exponent bits, `mb` mantissa bits); `fnuz`: 0x80 is NaN, no -0 */
function smallFloat(eb: number, mb: number, bias: number, kind: 'ieee' | 'fn' | 'fnuz'): (code: number) => number {
  const emax = (1 << eb) - 1;
  return (code) => {
    const neg = (code >> (eb + mb)) & 1;
    const e = (code >> mb) & emax;
    const m = code & ((1 << mb) - 1);
    if (kind === 'fnuz' && neg && e === 0 && m === 0) return NaN;
    if (kind === 'fn' && e === emax && m === (1 << mb) - 1) return NaN;
    if (kind === 'ieee' && e === emax) return m ? NaN : neg ? -Infinity : Infinity;
    const v = e === 0 ? m * 2 ** (1 - bias - mb) : ((1 << mb) + m) * 2 ** (e - bias - mb);
    return neg ? -v : v;
  };
}

const smallTables = new Map<number, Float32Array>();
function smallTable(dt: number): Float32Array {
  let t = smallTables.get(dt);
  if (!t) {
    const f =
      dt === 17
        ? smallFloat(4, 3, 7, 'fn')
        : dt === 18
          ? smallFloat(4, 3, 8, 'fnuz')
          : dt === 19
            ? smallFloat(5, 2, 15, 'ieee')
            : dt === 20
              ? smallFloat(5, 2, 16, 'fnuz')
              : dt === 23
                ? float4e2m1
                : (c: number) => (c === 255 ? NaN : 2 ** (c - 127)); // float8e8m0
    t = makeTable(dt === 23 ? 16 : 256, f);
    smallTables.set(dt, t);
  }
  return t;
}

/** float4e2m1: no inf, no NaN: 0, 0.5, 1, 1.5, 2, 3, 4, 6 and negatives */
function float4e2m1(code: number): number {
  const v = [0, 0.5, 1, 1.5, 2, 3, 4, 6][code & 7]!;
  return code & 8 ? -v : v;
}

const f32b = new Float32Array(2);
const f32bu = new Uint32Array(f32b.buffer);

/** nearest float32 to an integer of any size (Number() then fround could round twice above 2^53) */
export function bigintToFloat32(v: bigint): number {
  const x = Number(v);
  if (Math.abs(x) <= 2 ** 53) return Math.fround(x);
  const f = Math.fround(x);
  if (f === x || !Number.isFinite(f)) return f;
  // x lies between f and its float32 neighbour g; only an exact midpoint needs the residual to decide
  f32b[0] = f;
  f32bu[1] = (x > f) === f > 0 ? f32bu[0]! + 1 : f32bu[0]! - 1;
  const g = f32b[1]!;
  if (x !== (f + g) / 2) return f;
  const r = v - BigInt(x);
  if (r === 0n) return f;
  return r > 0n ? Math.max(f, g) : Math.min(f, g);
}

/** the tensor as float32 (exact for float16/bfloat16/float8; int64/float64 rounded to nearest float32) */
export function readTensorAsFloat32(t: TensorProto, ext: ExternalDataResolver | null): Float32Array {
  const d = dtypeOf(t);
  if (d.id === 14 || d.id === 15) throw new Error(`${describe(t)}: complex tensors cannot be read as float32`);
  const data = readTensorTyped(t, ext);
  if (data instanceof Float32Array) return data; // fresh already
  const n = data.length;
  const out = new Float32Array(n);
  switch (d.id) {
    case 10: {
      const table = (halfTable ??= makeTable(65536, float16ToFloat32));
      for (let i = 0; i < n; i++) out[i] = table[(data as Uint16Array)[i]!]!;
      return out;
    }
    case 16: {
      const u = new Uint32Array(out.buffer);
      for (let i = 0; i < n; i++) u[i] = (data as Uint16Array)[i]! << 16;
      return out;
    }
    case 17:
    case 18:
    case 19:
    case 20:
    case 23:
    case 24: {
      const table = smallTable(d.id);
      for (let i = 0; i < n; i++) out[i] = table[(data as Uint8Array)[i]!]!;
      return out;
    }
    default:
      if (data instanceof BigInt64Array || data instanceof BigUint64Array) {
        for (let i = 0; i < n; i++) out[i] = bigintToFloat32(data[i]!);
      } else out.set(data as ArrayLike<number>);
      return out;
  }
}

// ---------------------------------------------------------------- building tensors

function checkCount(name: string, dims: number[], length: number): bigint[] {
  let n = 1;
  for (const d of dims) {
    if (!Number.isInteger(d) || d < 0) throw new Error(`tensor '${name}': invalid dimension ${d}`);
    n *= d;
  }
  if (n !== length) throw new Error(`tensor '${name}': dims [${dims.join(',')}] need ${n} values, got ${length}`);
  return dims.map((d) => BigInt(d));
}

function bytesOf(a: ArrayBufferView): Uint8Array {
  return copyBytes(new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
}

/** a copy in a fresh, aligned ArrayBuffer (Buffer#slice would return a view into Node's pool) */
function copyBytes(src: Uint8Array): Uint8Array {
  const out = new Uint8Array(src.length);
  out.set(src);
  return out;
}

/** a float32 initializer with little-endian raw_data (the data is copied) */
export function makeFloat32Tensor(name: string, dims: number[], data: Float32Array): TensorProto {
  return { name, dims: checkCount(name, dims, data.length), dataType: 1, rawData: bytesOf(data), externalData: [], metadataProps: [] };
}

/**
 * A new tensor with `orig`'s name, doc string, metadata and dtype holding `data` (converted: float16/bfloat16
 * round to nearest even, float64 widened; float32 when orig has no dtype). Always inline raw_data.
 */
export function makeTensorLike(orig: TensorProto, data: Float32Array, dims: number[]): TensorProto {
  const name = orig.name ?? '';
  const dt = orig.dataType ?? 1;
  const n = data.length;
  let raw: Uint8Array;
  switch (dt) {
    case 1:
      raw = bytesOf(data);
      break;
    case 11:
      raw = bytesOf(Float64Array.from(data));
      break;
    case 10:
    case 16: {
      const u = new Uint16Array(n);
      const conv = dt === 10 ? float32ToFloat16 : float32ToBfloat16;
      for (let i = 0; i < n; i++) u[i] = conv(data[i]!);
      raw = new Uint8Array(u.buffer);
      break;
    }
    default:
      throw new Error(`tensor '${name}': cannot write float data back as ${dtypeName(dt)}`);
  }
  const t: TensorProto = { dims: checkCount(name, dims, n), dataType: dt, rawData: raw, externalData: [], metadataProps: [...orig.metadataProps] };
  if (orig.name !== undefined) t.name = orig.name;
  if (orig.docString !== undefined) t.docString = orig.docString;
  return t;
}

// ---------------------------------------------------------------- external data

export interface ExternalDataInfo {
  location: string;
  offset: number;
  /** undefined: up to the end of the file */
  length: number | undefined;
}

export function externalDataInfo(t: TensorProto): ExternalDataInfo {
  let location = '';
  let offset = 0;
  let length: number | undefined;
  const int = (key: string, v: string): number => {
    if (!/^\d+$/.test(v) || !Number.isSafeInteger(Number(v))) {
      throw new Error(`tensor '${t.name ?? ''}': external data ${key} '${v}' is not a byte count`);
    }
    return Number(v);
  };
  for (const e of t.externalData) {
    if (e.key === 'location') location = e.value ?? '';
    else if (e.key === 'offset') offset = int('offset', e.value ?? '');
    else if (e.key === 'length') length = int('length', e.value ?? '');
  }
  if (!location) throw new Error(`tensor '${t.name ?? ''}': external data has no location`);
  return { location, offset, length };
}

function isInside(base: string, p: string): boolean {
  const rel = path.relative(base, p);
  return rel === '' || (!rel.startsWith('..' + path.sep) && rel !== '..' && !path.isAbsolute(rel));
}

/**
 * Reads external tensor data lazily (just the needed range, synchronously) from files inside `baseDir`.
 * Locations that are absolute, climb out with `..`, or lead outside through symlinks are refused.
 */
export class ExternalDataResolver {
  readonly baseDir: string;
  private realBase: string | undefined;
  private readonly files = new Map<string, { file: string; size: number }>();

  constructor(baseDir: string) {
    this.baseDir = path.resolve(baseDir);
  }

  private outside(location: string): never {
    throw new Error(`external data '${location}' resolves outside the model's folder`);
  }

  /** the checked real path and size of a location (cached per location) */
  resolve(location: string): { file: string; size: number } {
    const cached = this.files.get(location);
    if (cached) return cached;
    // judge the name the same way on every platform: backslashes count as separators too
    const portable = location.replace(/\\/g, '/');
    if (location.includes('\0') || path.posix.isAbsolute(portable) || path.win32.isAbsolute(location) || /^[a-zA-Z]:/.test(location)) {
      this.outside(location);
    }
    const logical = path.resolve(this.baseDir, ...portable.split('/'));
    if (!isInside(this.baseDir, logical) || logical === this.baseDir) this.outside(location);
    let real: string;
    try {
      this.realBase ??= fs.realpathSync(this.baseDir);
      real = fs.realpathSync(logical);
    } catch {
      throw new Error(`external data '${location}' not found in ${this.baseDir}`);
    }
    if (!isInside(this.realBase, real)) this.outside(location);
    const st = fs.statSync(real);
    if (!st.isFile()) throw new Error(`external data '${location}' is not a file`);
    const entry = { file: real, size: st.size };
    this.files.set(location, entry);
    return entry;
  }

  /** `length` bytes at `offset` (to the end of the file when length is undefined), in a fresh aligned buffer */
  readRange(location: string, offset: number, length: number | undefined): Uint8Array {
    const { file, size } = this.resolve(location);
    const len = length ?? size - offset;
    if (offset > size || len < 0 || offset + len > size) {
      throw new Error(`external data '${location}': bytes ${offset}..${offset + (length ?? 0)} are past the end of the file (${size} bytes)`);
    }
    const out = new Uint8Array(len);
    const fd = fs.openSync(file, 'r');
    try {
      let done = 0;
      while (done < len) {
        const got = fs.readSync(fd, out, done, len - done, offset + done);
        if (got === 0) throw new Error(`external data '${location}': file shrank while reading`);
        done += got;
      }
    } finally {
      fs.closeSync(fd);
    }
    return out;
  }

  /** the bytes of an external tensor */
  read(t: TensorProto): Uint8Array {
    const info = externalDataInfo(t);
    return this.readRange(info.location, info.offset, info.length);
  }

  /** a copy of `t` with its external bytes moved into raw_data (t itself if it is not external) */
  inlineTensor(t: TensorProto): TensorProto {
    if (!isExternal(t)) return t;
    const copy: TensorProto = { ...t, rawData: this.read(t), externalData: [] };
    delete copy.dataLocation;
    return copy;
  }

  /** the model with every external tensor inlined; untouched messages are shared, the input is not modified */
  inlineAll(m: ModelProto): ModelProto {
    return mapMessages('ModelProto', m, 'TensorProto', (t: TensorProto) => this.inlineTensor(t));
  }
}
