/**
 * WebAssembly SIMD statistics over tensors that sit in a shared WebAssembly memory.
 *
 * Large ONNX files are read straight into a shared WebAssembly.Memory (allocateModelMemory; its buffer is a
 * SharedArrayBuffer like before), so the kernels (kernels.wat) read every initializer in place, on the calling
 * thread and in the statistics worker alike, with no copy. Results equal weightStats (stats.ts, the JavaScript
 * reference) up to the order of float64 additions; anything the kernels do not handle (non-finite values, more
 * channels than the scratch area holds, data outside a kernel memory) goes to weightStats.
 *
 * Memory layout: [0, 1 MiB) scratch of thread 0, [1 MiB, 2 MiB) scratch of thread 1, model bytes from 2 MiB.
 */
import type { WeightStats } from '../types';
import { KERNELS_WASM_BASE64 } from './kernels-wasm';
import { statsLayout, type StatsLayout } from './stats';

/** the parts of the WebAssembly JS API used here (the DOM lib is not part of the core's types) */
export interface WasmMemory {
  readonly buffer: ArrayBuffer | SharedArrayBuffer;
  grow(pages: number): number;
}
export interface WasmModule {
  readonly __wasmModule?: never;
}
interface WasmApi {
  Module: new (bytes: Uint8Array) => WasmModule;
  Instance: new (module: WasmModule, imports: Record<string, Record<string, unknown>>) => { exports: Record<string, unknown> };
  Memory: new (desc: { initial: number; maximum: number; shared: boolean }) => WasmMemory;
}

export interface StatsKernels {
  pass1(ptr: number, n: number, out: number): void;
  pass2(ptr: number, outer: number, size: number, inner: number, rowsPerGroup: number, lo: number, scale: number, near: number, acc: number, hist: number, cnt: number): number;
  chan_runs(ptr: number, outer: number, C: number, inner: number, shift: number, sum: number, sq: number, mn: number, mx: number, np: number): void;
  chan_last(ptr: number, rows: number, C: number, shift: number, sum: number, sq: number, mn: number, mx: number, np: number): void;
}

const PAGE = 65536;
/** per-thread scratch bytes (histogram tables + per-channel sums: up to ~130 000 channels) */
export const SCRATCH_BYTES = 1 << 20;
/** where model bytes start in a kernel memory */
export const MODEL_BASE = 2 * SCRATCH_BYTES;
/** 4 GiB - 64 KiB: byte addresses + lengths stay below 2^32 */
const MAX_PAGES = 65535;

function wasmApi(): WasmApi | null {
  const w = (globalThis as unknown as { WebAssembly?: WasmApi }).WebAssembly;
  return w && typeof w.Memory === 'function' ? w : null;
}

let compiled: WasmModule | null | undefined;

/** the compiled kernels module, or null where WebAssembly SIMD / shared memory is unavailable */
export function kernelsModule(): WasmModule | null {
  if (compiled !== undefined) return compiled;
  const w = wasmApi();
  try {
    compiled = w ? new w.Module(Buffer.from(KERNELS_WASM_BASE64, 'base64')) : null;
  } catch {
    compiled = null;
  }
  return compiled;
}

const memories = new WeakMap<ArrayBuffer | SharedArrayBuffer, { memory: WasmMemory; kernels: StatsKernels | null }>();

/**
 * `size` bytes of shared memory the kernels can read (the returned array starts at MODEL_BASE of a new shared
 * WebAssembly.Memory); null when WebAssembly is unavailable or the size does not fit in 32-bit addresses.
 */
export function allocateModelMemory(size: number): Uint8Array | null {
  const w = wasmApi();
  if (!w || !kernelsModule()) return null;
  const pages = Math.ceil((MODEL_BASE + size) / PAGE);
  if (pages > MAX_PAGES) return null;
  let memory: WasmMemory;
  try {
    memory = new w.Memory({ initial: pages, maximum: pages, shared: true });
  } catch {
    return null;
  }
  const buffer = memory.buffer;
  memories.set(buffer, { memory, kernels: null });
  return new Uint8Array(buffer, MODEL_BASE, size);
}

/** the kernel memory whose buffer this is (so a worker can run the kernels on it), if any */
export function kernelMemoryOf(buffer: ArrayBufferLike): WasmMemory | null {
  return memories.get(buffer as ArrayBuffer)?.memory ?? null;
}

/** binds the kernels to a memory (instantiate once per memory and thread) */
export function instantiateKernels(module: WasmModule, memory: WasmMemory): StatsKernels {
  const w = wasmApi() as WasmApi;
  const e = new w.Instance(module, { env: { memory } }).exports;
  return {
    pass1: e.pass1 as StatsKernels['pass1'],
    pass2: e.pass2 as StatsKernels['pass2'],
    chan_runs: e.chan_runs as StatsKernels['chan_runs'],
    chan_last: e.chan_last as StatsKernels['chan_last'],
  };
}

function kernelsFor(buffer: ArrayBufferLike): StatsKernels | null {
  const entry = memories.get(buffer as ArrayBuffer);
  const module = kernelsModule();
  if (!entry || !module) return null;
  entry.kernels ??= instantiateKernels(module, entry.memory);
  return entry.kernels;
}

/**
 * weightStats of `length` float32 values at `byteOffset` of a kernel memory's buffer, on thread 0's scratch;
 * null when the kernels do not apply (not a kernel memory, non-finite values, too many channels, empty).
 */
export function kernelWeightStats(buffer: ArrayBufferLike, byteOffset: number, length: number, shape: number[], channelAxis: number | null, groups = 1): WeightStats | null {
  const k = kernelsFor(buffer);
  return k ? wasmWeightStats(k, buffer as SharedArrayBuffer, byteOffset, length, statsLayout(shape, channelAxis, groups, length), 0) : null;
}

/**
 * The JavaScript side of the kernels: the same statistics as weightStats from pass1 + pass2. Self-contained
 * (no references outside its body): the statistics worker runs it from its source text.
 * @param scratch byte address of this thread's scratch area (1 MiB)
 */
export function wasmWeightStats(
  k: StatsKernels,
  buffer: ArrayBuffer | SharedArrayBuffer,
  ptr: number,
  n: number,
  layout: StatsLayout,
  scratch: number,
): WeightStats | null {
  const BINS = 32;
  const TABLE = 36;
  const SCRATCH = 1 << 20;
  if (n === 0) return null;
  if (layout.outer * layout.size * layout.inner !== n || !Number.isInteger(layout.rowsPerGroup)) return null;
  const OUT = scratch;
  const CNT = scratch + 32;
  const HIST = scratch + 64;
  const ACC = scratch + 1024;
  if (1024 + layout.channels * 8 > SCRATCH) return null;
  k.pass1(ptr, n, OUT);
  const head = new DataView(buffer, scratch, 1024);
  const sum = head.getFloat64(0, true);
  const min = head.getFloat32(8, true);
  const max = head.getFloat32(12, true);
  const zeros = head.getInt32(16, true);
  // NaN or infinities: weightStats' careful path leaves them out
  if (!Number.isFinite(sum) || Number.isNaN(min) || Number.isNaN(max)) return null;
  const mean = sum / n;
  const nearZero = 1e-6 * Math.max(Math.abs(min), Math.abs(max));
  // the largest float32 <= nearZero: |v| <= it in float32 exactly when |v| <= nearZero in float64
  const f = new Float32Array(1);
  f[0] = nearZero;
  if (f[0] > nearZero) new Int32Array(f.buffer)[0]--;
  const inv = max > min ? BINS / (max - min) : 0;
  const lo = inv > 0 ? min : min - (BINS >> 1);
  const scale = inv > 0 ? inv : 1;
  new Int32Array(buffer, CNT, 1).fill(0);
  const tables = new Int32Array(buffer, HIST, 4 * TABLE);
  tables.fill(0);
  const acc = new Float64Array(buffer, ACC, layout.channels);
  acc.fill(0);
  const sumSq = k.pass2(ptr, layout.outer, layout.size, layout.inner, layout.rowsPerGroup, lo, scale, f[0], ACC, HIST, CNT);
  const near = new Int32Array(buffer, CNT, 1)[0];
  const hist = new Array<number>(BINS).fill(0);
  for (let b = 0; b < BINS + 2; b++) {
    const c = tables[b] + tables[TABLE + b] + tables[2 * TABLE + b] + tables[3 * TABLE + b];
    hist[Math.min(b, BINS - 1)] += c;
  }
  return {
    count: n,
    mean,
    std: Math.sqrt(Math.max(0, sumSq / n - mean * mean)),
    min,
    max,
    zero_fraction: zeros / n,
    non_finite: 0,
    near_zero_fraction: near / n,
    histogram: { min, max, counts: hist },
    channel_l2: layout.real ? Array.from(acc, Math.sqrt) : null,
  };
}

let scratchMemory: { memory: WasmMemory; kernels: StatsKernels } | null | undefined;

/** drops the scratch memory (a memory cannot shrink): after a probe, so the largest block is not kept */
export function releaseScratchKernels(): void {
  if (scratchMemory) scratchMemory = undefined;
}

/**
 * A scratch kernel memory of at least `bytes` bytes (one per thread, grown on demand) for data that has to be
 * copied in first (activations from an engine); null where WebAssembly is unavailable.
 */
export function scratchKernels(bytes: number): { kernels: StatsKernels; buffer: SharedArrayBuffer } | null {
  if (scratchMemory === undefined) {
    const w = wasmApi();
    const module = kernelsModule();
    try {
      if (!w || !module) throw new Error('no WebAssembly');
      const memory = new w.Memory({ initial: 16, maximum: MAX_PAGES, shared: true });
      scratchMemory = { memory, kernels: instantiateKernels(module, memory) };
    } catch {
      scratchMemory = null;
    }
  }
  if (!scratchMemory) return null;
  const { memory } = scratchMemory;
  const have = memory.buffer.byteLength;
  if (bytes > have) {
    const pages = Math.ceil((bytes - have) / PAGE);
    if (have / PAGE + pages > MAX_PAGES) return null;
    try {
      memory.grow(pages);
    } catch {
      return null;
    }
  }
  return { kernels: scratchMemory.kernels, buffer: memory.buffer as SharedArrayBuffer };
}
