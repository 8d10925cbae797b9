/**
 * The in-memory model shared by the three Keras-topology formats (TF.js layers model.json + shards, Keras 2
 * .h5, Keras 3 .keras): the model config JSON as the file has it, plus named weights with dtype, shape, their
 * stored bytes and (TF.js) quantization. Each container keeps what it needs to write itself back unchanged
 * (`container`). Immutable by convention: rewrites build a new KerasModel sharing untouched weights.
 */
import type { Model } from '../../api';
import type { JsonObject } from './json';

export type KerasFormat = 'tfjs-layers' | 'keras-h5' | 'keras';

/** TF.js affine quantization (uint8/uint16: value = q * scale + min) or float16 storage */
export interface Quantization {
  dtype: 'uint8' | 'uint16' | 'float16';
  scale?: number;
  min?: number;
  /** tfjs: dtype of the dequantized tensor when it is not float32 (int32 weights quantized) */
  original_dtype?: string;
}

export interface KWeight {
  /** the name in the container: TF.js manifest name, .h5 weight name (`conv/kernel:0`), .keras `layers/conv/vars/0` */
  storeName: string;
  /** owning layer, outermost model first: ['conv1'] or ['backbone', 'conv1'] for nested models */
  layerPath: string[];
  /** Keras 2 weight key: kernel, bias, depthwise_kernel, gamma, beta, moving_mean, moving_variance, ... */
  key: string;
  /** logical dtype after dequantization: float32, int32 ... */
  dtype: string;
  shape: number[];
  /** the bytes as stored (quantized values when `quantization` is set), little-endian */
  bytes: Uint8Array;
  quantization?: Quantization;
  /** TF.js: index of the weightsManifest group the weight was in */
  group?: number;
}

/** what each container keeps besides the config and the weights, to write itself back as it was */
export type ContainerData =
  | { kind: 'tfjs-layers'; json: JsonObject; groups: { paths: string[]; shardBytes: number[] }[] }
  | { kind: 'keras-h5'; tree: H5GroupNode }
  | { kind: 'keras'; config: JsonObject; tree: H5GroupNode; entries: { name: string; bytes: Uint8Array }[] };

export interface H5Attr {
  name: string;
  value: unknown;
  dtype: unknown;
  shape: number[] | null;
}
export interface H5DatasetNode {
  kind: 'dataset';
  attrs: H5Attr[];
  dtype: unknown;
  shape: number[];
  value: unknown;
}
export interface H5GroupNode {
  kind: 'group';
  attrs: H5Attr[];
  children: [string, H5Node][];
}
export type H5Node = H5DatasetNode | H5GroupNode;

export class KerasModel implements Model {
  constructor(
    readonly format: KerasFormat,
    readonly baseDir: string,
    readonly fileBytes: number | null,
    /** the model config: {class_name, config: {layers, ...}} (Keras 2) or Keras 3's config.json object */
    readonly modelConfig: JsonObject,
    readonly weights: KWeight[],
    readonly container: ContainerData,
  ) {}

  derive(modelConfig: JsonObject, weights: KWeight[]): KerasModel {
    return new KerasModel(this.format, this.baseDir, null, modelConfig, weights, this.container);
  }

  weightsOf(layerPath: string[]): KWeight[] {
    const key = layerPath.join('\u0000');
    return this.weights.filter((w) => w.layerPath.join('\u0000') === key);
  }
}

const LITTLE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** the stored bytes as float32 (dequantized like tfjs: q * scale + min rounded to float32) */
export function weightToFloat32(w: KWeight): Float32Array {
  const n = w.shape.reduce((p, v) => p * v, 1);
  const b = w.bytes;
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const out = new Float32Array(n);
  const q = w.quantization;
  const need = (size: number) => {
    if (b.byteLength < n * size) throw new Error(`weight ${w.storeName}: ${b.byteLength} bytes for ${n} values`);
  };
  if (q) {
    if (q.dtype === 'uint8') {
      need(1);
      const scale = q.scale ?? 1;
      const min = q.min ?? 0;
      for (let i = 0; i < n; i++) out[i] = b[i] * scale + min;
    } else if (q.dtype === 'uint16') {
      need(2);
      const scale = q.scale ?? 1;
      const min = q.min ?? 0;
      for (let i = 0; i < n; i++) out[i] = dv.getUint16(2 * i, true) * scale + min;
    } else {
      need(2);
      for (let i = 0; i < n; i++) out[i] = float16ToNumber(dv.getUint16(2 * i, true));
    }
    return out;
  }
  switch (w.dtype) {
    case 'float32':
      need(4);
      if (LITTLE && b.byteOffset % 4 === 0) out.set(new Float32Array(b.buffer, b.byteOffset, n));
      else for (let i = 0; i < n; i++) out[i] = dv.getFloat32(4 * i, true);
      return out;
    case 'float64':
      need(8);
      for (let i = 0; i < n; i++) out[i] = dv.getFloat64(8 * i, true);
      return out;
    case 'float16':
      need(2);
      for (let i = 0; i < n; i++) out[i] = float16ToNumber(dv.getUint16(2 * i, true));
      return out;
    case 'int32':
      need(4);
      for (let i = 0; i < n; i++) out[i] = dv.getInt32(4 * i, true);
      return out;
    case 'int64':
      need(8);
      for (let i = 0; i < n; i++) out[i] = Number(dv.getBigInt64(8 * i, true));
      return out;
    case 'uint8':
    case 'bool':
      need(1);
      for (let i = 0; i < n; i++) out[i] = b[i];
      return out;
    default:
      throw new Error(`weight ${w.storeName}: dtype ${w.dtype} is not supported`);
  }
}

export function float16ToNumber(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >>> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

export function bytesPerElement(w: Pick<KWeight, 'dtype' | 'quantization'>): number {
  if (w.quantization) return w.quantization.dtype === 'uint8' ? 1 : 2;
  switch (w.dtype) {
    case 'float64':
    case 'int64':
      return 8;
    case 'float16':
    case 'int16':
    case 'uint16':
      return 2;
    case 'uint8':
    case 'int8':
    case 'bool':
      return 1;
    default:
      return 4;
  }
}

/** a float32 weight holding `values` (no quantization) */
export function float32Weight(base: Omit<KWeight, 'bytes' | 'dtype' | 'quantization'>, values: Float32Array): KWeight {
  const bytes = new Uint8Array(values.buffer.slice(values.byteOffset, values.byteOffset + values.byteLength));
  return { ...base, dtype: 'float32', bytes };
}

/**
 * Affine quantization as the TF.js converter does it (tfjs-converter quantization.py): scale = (max - min) /
 * (2^bits - 1), the range nudged so that 0 is exactly representable when it lies inside, q = round((v - min) / scale), clipped.
 * Returns the quantized weight and the largest |dequantized - value| it introduces.
 */
export function quantizeWeight(w: KWeight, values: Float32Array, dtype: 'uint8' | 'uint16'): { weight: KWeight; maxError: number } {
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of values) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  if (!(lo <= hi)) {
    lo = 0;
    hi = 0;
  }
  const levels = dtype === 'uint8' ? 255 : 65535;
  const scale = hi > lo ? (hi - lo) / levels : 1;
  let min = lo;
  if (lo <= 0 && 0 <= hi && hi > lo) {
    const zeroPoint = Math.round(-lo / scale);
    min = -zeroPoint * scale;
  }
  const n = values.length;
  const bytes = new Uint8Array(n * (dtype === 'uint8' ? 1 : 2));
  const dv = new DataView(bytes.buffer);
  let maxError = 0;
  for (let i = 0; i < n; i++) {
    const q = Math.min(levels, Math.max(0, Math.round((values[i] - min) / scale)));
    if (dtype === 'uint8') bytes[i] = q;
    else dv.setUint16(2 * i, q, true);
    const e = Math.abs(Math.fround(q * scale + min) - values[i]);
    if (e > maxError) maxError = e;
  }
  return { weight: { ...w, dtype: 'float32', bytes, quantization: { dtype, scale, min } }, maxError };
}
