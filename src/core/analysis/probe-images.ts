/**
 * Image decoding and preprocessing for probe inputs, pure JavaScript:
 * - PNG: our own decoder (node:zlib inflate + the five scanline filters; every colour type and bit depth,
 *   Adam7 interlacing), so PNG folders work without any package;
 * - JPEG: `jpeg-js` (pure JS, BSD-3-Clause), loaded lazily; without it a JPEG gives a one-line error that
 *   names the package to install.
 * Pixels come out as float32 RGB (or gray) in the 0..255 scale (16-bit samples divided by 257). Resizing is
 * bilinear with half-pixel centres and no antialiasing, i.e. exactly torch.nn.functional.interpolate(
 * mode='bilinear', align_corners=False).
 */
import { inflateSync } from 'node:zlib';
import { ModelError } from '../errors';

export interface DecodedImage {
  width: number;
  height: number;
  /** 1 (gray) or 3 (RGB); alpha is dropped */
  channels: 1 | 3;
  /** HWC, 0..255 scale */
  data: Float32Array;
}

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
/** refuse images above this many pixels (a 16k x 16k image is already 1 GB as float32 RGB) */
export const MAX_IMAGE_PIXELS = 64 * 2 ** 20;

export function isPng(b: Uint8Array): boolean {
  return b.length >= 8 && PNG_SIGNATURE.every((v, i) => b[i] === v);
}

export function isJpeg(b: Uint8Array): boolean {
  return b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff;
}

/** Decodes a PNG or JPEG file's bytes. `what` names the file in errors. */
export function decodeImage(bytes: Uint8Array, what: string): DecodedImage {
  if (isPng(bytes)) return decodePng(bytes, what);
  if (isJpeg(bytes)) return decodeJpeg(bytes, what);
  throw new ModelError(`${what}: not a PNG or JPEG image`);
}

// ---------------------------------------------------------------- PNG

const ADAM7: [number, number, number, number][] = [
  // x0, y0, dx, dy
  [0, 0, 8, 8],
  [4, 0, 8, 8],
  [0, 4, 4, 8],
  [2, 0, 4, 4],
  [0, 2, 2, 4],
  [1, 0, 2, 2],
  [0, 1, 1, 2],
];

const SAMPLES_PER_PIXEL: Record<number, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };

export function decodePng(b: Uint8Array, what: string): DecodedImage {
  const fail = (why: string): never => {
    throw new ModelError(`${what}: invalid PNG (${why})`);
  };
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  let pos = 8;
  let width = 0;
  let height = 0;
  let depth = 0;
  let colorType = -1;
  let interlace = 0;
  let palette: Uint8Array | null = null;
  const idat: Uint8Array[] = [];
  while (pos + 8 <= b.length) {
    const len = dv.getUint32(pos);
    const type = String.fromCharCode(b[pos + 4], b[pos + 5], b[pos + 6], b[pos + 7]);
    const start = pos + 8;
    if (start + len + 4 > b.length) fail(`chunk ${type} runs past the end of the file`);
    const body = b.subarray(start, start + len);
    if (type === 'IHDR') {
      if (len < 13) fail('short IHDR');
      width = dv.getUint32(start);
      height = dv.getUint32(start + 4);
      depth = b[start + 8];
      colorType = b[start + 9];
      interlace = b[start + 12];
    } else if (type === 'PLTE') palette = body;
    else if (type === 'IDAT') idat.push(body);
    else if (type === 'IEND') break;
    pos = start + len + 4;
  }
  if (!width || !height) fail('no IHDR');
  if (width * height > MAX_IMAGE_PIXELS) throw new ModelError(`${what}: ${width}x${height} pixels is too large to probe with`);
  const spp = SAMPLES_PER_PIXEL[colorType];
  if (spp === undefined) fail(`colour type ${colorType}`);
  const okDepth = colorType === 0 ? [1, 2, 4, 8, 16] : colorType === 3 ? [1, 2, 4, 8] : [8, 16];
  if (!okDepth.includes(depth)) fail(`bit depth ${depth} with colour type ${colorType}`);
  if (colorType === 3 && !palette) fail('palette image without PLTE');
  if (interlace > 1) fail(`interlace method ${interlace}`);
  const bitsPerPixel = spp * depth;
  const bpp = Math.max(1, bitsPerPixel >> 3);
  const passes = interlace === 1 ? ADAM7 : ([[0, 0, 1, 1]] as [number, number, number, number][]);
  const passDims = passes.map(([x0, y0, dx, dy]) => [Math.ceil((width - x0) / dx), Math.ceil((height - y0) / dy)] as const);
  let expected = 0;
  for (const [w, h] of passDims) if (w > 0 && h > 0) expected += h * (1 + Math.ceil((w * bitsPerPixel) / 8));
  let raw: Uint8Array;
  try {
    raw = inflateSync(Buffer.concat(idat), { maxOutputLength: expected + 1 });
  } catch (err) {
    return fail(`image data does not inflate: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (raw.length < expected) fail(`image data has ${raw.length} bytes, expected ${expected}`);
  const gray = colorType === 0 || colorType === 4;
  const outC: 1 | 3 = gray ? 1 : 3;
  const out = new Float32Array(width * height * outC);
  const maxSample = depth === 16 ? 65535 : (1 << depth) - 1;
  // scale to 0..255: 16-bit / 257 (exact: 65535 / 257 = 255), sub-byte gray * 255 / (2^d - 1)
  const scale = 255 / maxSample;
  let off = 0;
  passes.forEach(([x0, y0, dx, dy], p) => {
    const [w, h] = passDims[p];
    if (w <= 0 || h <= 0) return;
    const stride = Math.ceil((w * bitsPerPixel) / 8);
    let prev = new Uint8Array(stride);
    let cur = new Uint8Array(stride);
    for (let y = 0; y < h; y++) {
      const filter = raw[off];
      const line = raw.subarray(off + 1, off + 1 + stride);
      off += 1 + stride;
      unfilter(filter, line, prev, cur, bpp, what);
      const oy = y0 + y * dy;
      for (let x = 0; x < w; x++) {
        const o = (oy * width + x0 + x * dx) * outC;
        const sample = (k: number): number => {
          // k-th sample of pixel x
          const bit = (x * spp + k) * depth;
          if (depth === 8) return cur[bit >> 3];
          if (depth === 16) return (cur[bit >> 3] << 8) | cur[(bit >> 3) + 1];
          return (cur[bit >> 3] >> (8 - depth - (bit & 7))) & maxSample;
        };
        if (colorType === 3) {
          const idx = sample(0);
          if (3 * idx + 2 >= palette!.length) fail(`palette index ${idx} out of range`);
          out[o] = palette![3 * idx];
          out[o + 1] = palette![3 * idx + 1];
          out[o + 2] = palette![3 * idx + 2];
        } else if (gray) out[o] = sample(0) * scale;
        else {
          out[o] = sample(0) * scale;
          out[o + 1] = sample(1) * scale;
          out[o + 2] = sample(2) * scale;
        }
      }
      const t = prev;
      prev = cur;
      cur = t;
    }
  });
  return { width, height, channels: outC, data: out };
}

function unfilter(filter: number, line: Uint8Array, prev: Uint8Array, cur: Uint8Array, bpp: number, what: string): void {
  const n = line.length;
  switch (filter) {
    case 0:
      cur.set(line);
      break;
    case 1:
      for (let i = 0; i < n; i++) cur[i] = (line[i] + (i >= bpp ? cur[i - bpp] : 0)) & 255;
      break;
    case 2:
      for (let i = 0; i < n; i++) cur[i] = (line[i] + prev[i]) & 255;
      break;
    case 3:
      for (let i = 0; i < n; i++) cur[i] = (line[i] + (((i >= bpp ? cur[i - bpp] : 0) + prev[i]) >> 1)) & 255;
      break;
    case 4:
      for (let i = 0; i < n; i++) {
        const a = i >= bpp ? cur[i - bpp] : 0;
        const bb = prev[i];
        const c = i >= bpp ? prev[i - bpp] : 0;
        const p = a + bb - c;
        const pa = Math.abs(p - a);
        const pb = Math.abs(p - bb);
        const pc = Math.abs(p - c);
        cur[i] = (line[i] + (pa <= pb && pa <= pc ? a : pb <= pc ? bb : c)) & 255;
      }
      break;
    default:
      throw new ModelError(`${what}: invalid PNG (scanline filter ${filter})`);
  }
}

// ---------------------------------------------------------------- JPEG (jpeg-js, optional)

interface JpegJs {
  decode(data: Uint8Array, opts: { useTArray: boolean; formatAsRGBA: boolean; maxResolutionInMP?: number; maxMemoryUsageInMB?: number }): {
    width: number;
    height: number;
    data: Uint8Array;
  };
}

let jpegModule: JpegJs | null | undefined;

/** jpeg-js when it is installed, else null */
export function loadJpegDecoder(): JpegJs | null {
  if (jpegModule === undefined) {
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      jpegModule = require('jpeg-js') as JpegJs;
    } catch {
      jpegModule = null;
    }
  }
  return jpegModule;
}

export const JPEG_PACKAGE = 'jpeg-js@0.4.4';

export function decodeJpeg(b: Uint8Array, what: string): DecodedImage {
  const jpeg = loadJpegDecoder();
  if (!jpeg) throw new ModelError(`${what}: decoding JPEG needs the package ${JPEG_PACKAGE} (npm install ${JPEG_PACKAGE}); PNG works without it`);
  let img: { width: number; height: number; data: Uint8Array };
  try {
    img = jpeg.decode(b, { useTArray: true, formatAsRGBA: false, maxResolutionInMP: MAX_IMAGE_PIXELS / 1e6, maxMemoryUsageInMB: 1024 });
  } catch (err) {
    throw new ModelError(`${what}: cannot decode JPEG (${err instanceof Error ? err.message.split('\n')[0] : String(err)})`);
  }
  return { width: img.width, height: img.height, channels: 3, data: Float32Array.from(img.data) };
}

// ---------------------------------------------------------------- preprocessing

/** ITU-R 601-2 luma (what PIL's convert('L') uses) */
export function toGray(img: DecodedImage): DecodedImage {
  if (img.channels === 1) return img;
  const n = img.width * img.height;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = (img.data[3 * i] * 299 + img.data[3 * i + 1] * 587 + img.data[3 * i + 2] * 114) / 1000;
  return { ...img, channels: 1, data: out };
}

export function toRgb(img: DecodedImage): DecodedImage {
  if (img.channels === 3) return img;
  const n = img.width * img.height;
  const out = new Float32Array(3 * n);
  for (let i = 0; i < n; i++) out[3 * i] = out[3 * i + 1] = out[3 * i + 2] = img.data[i];
  return { ...img, channels: 3, data: out };
}

/** bilinear resize, half-pixel centres, no antialiasing (= torch interpolate bilinear, align_corners=False) */
export function resizeBilinear(img: DecodedImage, height: number, width: number): DecodedImage {
  if (img.height === height && img.width === width) return img;
  const C = img.channels;
  const src = img.data;
  const out = new Float32Array(height * width * C);
  const sy = img.height / height;
  const sx = img.width / width;
  const xs = new Int32Array(width * 2);
  const xl = new Float64Array(width);
  for (let x = 0; x < width; x++) {
    const f = Math.max(0, (x + 0.5) * sx - 0.5);
    const x0 = Math.min(Math.floor(f), img.width - 1);
    xs[2 * x] = x0;
    xs[2 * x + 1] = Math.min(x0 + 1, img.width - 1);
    xl[x] = f - x0;
  }
  for (let y = 0; y < height; y++) {
    const f = Math.max(0, (y + 0.5) * sy - 0.5);
    const y0 = Math.min(Math.floor(f), img.height - 1);
    const y1 = Math.min(y0 + 1, img.height - 1);
    const ly = f - y0;
    for (let x = 0; x < width; x++) {
      const lx = xl[x];
      const a = (y0 * img.width + xs[2 * x]) * C;
      const b = (y0 * img.width + xs[2 * x + 1]) * C;
      const c = (y1 * img.width + xs[2 * x]) * C;
      const d = (y1 * img.width + xs[2 * x + 1]) * C;
      const o = (y * width + x) * C;
      for (let k = 0; k < C; k++) {
        out[o + k] = (1 - ly) * ((1 - lx) * src[a + k] + lx * src[b + k]) + ly * ((1 - lx) * src[c + k] + lx * src[d + k]);
      }
    }
  }
  return { width, height, channels: C, data: out };
}

export type NormalizePreset = 'imagenet' | 'unit' | 'symmetric' | 'raw';

export interface ImagePreprocess {
  /** [height, width] to resize to */
  size: [number, number];
  /** 1 (gray) or 3 channels */
  channels: 1 | 3;
  layout: 'nchw' | 'nhwc';
  /** channel order for 3-channel inputs */
  order: 'rgb' | 'bgr';
  /**
   * 'imagenet': (x/255 - [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225] (in RGB order, swapped with the channels
   * for BGR); 'unit': x/255 in [0, 1]; 'symmetric': x/127.5 - 1 in [-1, 1]; 'raw': 0..255; or explicit
   * mean/std per channel in the 0..1 scale (in the order of the model's channels)
   */
  normalize: NormalizePreset | { mean: number[]; std: number[] };
}

const IMAGENET_MEAN = [0.485, 0.456, 0.406];
const IMAGENET_STD = [0.229, 0.224, 0.225];

/** mean/std (0..1 scale) per model channel, plus the factor from the 0..255 scale */
function normalization(p: ImagePreprocess): { mean: number[]; std: number[]; scale: number } {
  const C = p.channels;
  const n = p.normalize;
  if (typeof n === 'object') {
    const fit = (v: number[], what: string) => {
      if (v.length === C) return v;
      if (v.length === 1) return Array(C).fill(v[0]);
      throw new ModelError(`image normalization: ${what} has ${v.length} values, the model has ${C} channels`);
    };
    const std = fit(n.std, 'std');
    if (std.some((s) => !(s > 0))) throw new ModelError('image normalization: every std must be > 0');
    return { mean: fit(n.mean, 'mean'), std, scale: 1 / 255 };
  }
  switch (n) {
    case 'imagenet': {
      if (C === 1) return { mean: [0.449], std: [0.226], scale: 1 / 255 };
      const order = p.order === 'bgr' ? [2, 1, 0] : [0, 1, 2];
      return { mean: order.map((k) => IMAGENET_MEAN[k]), std: order.map((k) => IMAGENET_STD[k]), scale: 1 / 255 };
    }
    case 'unit':
      return { mean: Array(C).fill(0), std: Array(C).fill(1), scale: 1 / 255 };
    case 'symmetric':
      return { mean: Array(C).fill(0.5), std: Array(C).fill(0.5), scale: 1 / 255 };
    default:
      return { mean: Array(C).fill(0), std: Array(C).fill(1), scale: 1 };
  }
}

/** decoded image -> one sample of the model's input (CHW or HWC float32, normalized) */
export function preprocessImage(img: DecodedImage, p: ImagePreprocess): Float32Array {
  const conv = p.channels === 1 ? toGray(img) : toRgb(img);
  const r = resizeBilinear(conv, p.size[0], p.size[1]);
  const { mean, std, scale } = normalization(p);
  const C = p.channels;
  const HW = p.size[0] * p.size[1];
  const out = new Float32Array(HW * C);
  for (let k = 0; k < C; k++) {
    const src = C === 3 && p.order === 'bgr' ? 2 - k : k;
    const m = mean[k];
    const s = std[k];
    for (let i = 0; i < HW; i++) {
      const v = (r.data[i * C + src] * scale - m) / s;
      if (p.layout === 'nchw') out[k * HW + i] = v;
      else out[i * C + k] = v;
    }
  }
  return out;
}
