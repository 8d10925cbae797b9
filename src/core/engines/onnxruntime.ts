/**
 * Verification engine for ONNX: runs two models on the same seeded probe inputs with onnxruntime-node and
 * reports how far their outputs are apart. onnxruntime is loaded lazily (it is a 45 MB native module).
 */
import type * as OrtTypes from 'onnxruntime-node';
import { ModelError } from '../errors';
import { Rng } from '../util/random';
import { float16ToFloat32, float32ToFloat16 } from '../formats/onnx/tensor';
import type { ValueSummary, VerifyOptions, VerifyReport } from '../types';
import { OutputComparison, verifyReport } from './output-errors';

type Ort = typeof OrtTypes;
let ortModule: Ort | undefined;

export function loadOrt(): Ort {
  if (!ortModule) {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    ortModule = require('onnxruntime-node') as Ort;
    ortModule.env.logLevel = 'error';
  }
  return ortModule;
}

export const ENGINE_NAME = 'onnxruntime-node';

export interface RunnableModel {
  bytes: Uint8Array;
  inputs: ValueSummary[];
}

type OrtTensorType = OrtTypes.Tensor.Type;

const ORT_TYPES: Record<string, OrtTensorType> = {
  float32: 'float32',
  float16: 'float16',
  float64: 'float64',
  int8: 'int8',
  uint8: 'uint8',
  int16: 'int16',
  uint16: 'uint16',
  int32: 'int32',
  int64: 'int64',
  uint32: 'uint32',
  uint64: 'uint64',
  bool: 'bool',
};

/** Concrete shape of an input: symbolic dims from `dims` (default 1), unknown dims 1. */
export function concreteShape(input: ValueSummary, dims: Record<string, number> = {}): number[] {
  return (input.shape ?? []).map((d) => (typeof d === 'number' ? (d < 0 ? 1 : d) : d !== null && d in dims ? dims[d] : 1));
}

/** Seeded probe tensor for one input: floats ~ N(0,1), integers in [0, 10), bools 50/50. */
export function probeTensor(ort: Ort, input: ValueSummary, shape: number[], rng: Rng): OrtTypes.Tensor {
  const type = ORT_TYPES[input.dtype];
  if (!type) throw new ModelError(`cannot make probe data for input '${input.name}' of type ${input.dtype}`);
  const n = shape.reduce((p, v) => p * v, 1);
  switch (type) {
    case 'float32': {
      const a = new Float32Array(n);
      for (let i = 0; i < n; i++) a[i] = rng.normal();
      return new ort.Tensor('float32', a, shape);
    }
    case 'float64': {
      const a = new Float64Array(n);
      for (let i = 0; i < n; i++) a[i] = rng.normal();
      return new ort.Tensor('float64', a, shape);
    }
    case 'float16': {
      const a = new Uint16Array(n);
      for (let i = 0; i < n; i++) a[i] = float32ToFloat16(rng.normal());
      return new ort.Tensor('float16', a, shape);
    }
    case 'int64': {
      const a = new BigInt64Array(n);
      for (let i = 0; i < n; i++) a[i] = BigInt(Math.floor(rng.next() * 10));
      return new ort.Tensor('int64', a, shape);
    }
    case 'uint64': {
      const a = new BigUint64Array(n);
      for (let i = 0; i < n; i++) a[i] = BigInt(Math.floor(rng.next() * 10));
      return new ort.Tensor('uint64', a, shape);
    }
    case 'bool': {
      const a = new Uint8Array(n);
      for (let i = 0; i < n; i++) a[i] = rng.next() < 0.5 ? 1 : 0;
      return new ort.Tensor('bool', a, shape);
    }
    default: {
      const a = new Float64Array(n);
      for (let i = 0; i < n; i++) a[i] = Math.floor(rng.next() * 10);
      return new ort.Tensor(type, a as unknown as Int32Array, shape);
    }
  }
}

/** numbers of an engine tensor's data (float16 decoded, 64-bit integers converted) */
export function tensorNumbers(type: string, data: unknown): ArrayLike<number> {
  if (data instanceof Float32Array || data instanceof Float64Array) return data;
  if (data instanceof BigInt64Array || data instanceof BigUint64Array) return Float64Array.from(data, Number);
  if (type === 'float16' && data instanceof Uint16Array) return Float64Array.from(data, float16ToFloat32);
  if (ArrayBuffer.isView(data)) return data as unknown as ArrayLike<number>;
  if (Array.isArray(data)) return data.map(Number);
  throw new ModelError(`cannot read an onnxruntime tensor of type ${type}`);
}

export async function createSession(ort: Ort, bytes: Uint8Array, what: string): Promise<OrtTypes.InferenceSession> {
  try {
    return await ort.InferenceSession.create(bytes, { graphOptimizationLevel: 'disabled', logSeverityLevel: 3 });
  } catch (err) {
    throw new ModelError(`onnxruntime cannot load the ${what} model: ${firstLine(err)}`);
  }
}

/**
 * Sessions of an original and a rewritten model, the rewritten one with every output of the original; both
 * released on failure (the original's session was left open when the rewritten model did not load).
 */
export async function sessionPair(ort: Ort, original: Uint8Array, rewritten: Uint8Array, abort = (): void => undefined): Promise<[OrtTypes.InferenceSession, OrtTypes.InferenceSession]> {
  abort();
  const sa = await createSession(ort, original, 'original');
  let sb: OrtTypes.InferenceSession | undefined;
  try {
    abort();
    sb = await createSession(ort, rewritten, 'rewritten');
    const missing = sa.outputNames.filter((n) => !sb!.outputNames.includes(n));
    if (missing.length) throw new ModelError(`the rewritten model lacks output(s) ${missing.join(', ')}`);
    return [sa, sb];
  } catch (err) {
    await Promise.allSettled([sa.release(), sb?.release()]);
    throw err;
  }
}

export function firstLine(err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err);
  return msg.split('\n').find((l) => l.trim())?.trim() ?? 'unknown error';
}

/** Runs `a` and `b` on `samples` seeded probes and compares every output of `a` with the same-named output of `b`. */
export async function verifyOnnx(a: RunnableModel, b: RunnableModel, opts: VerifyOptions = {}): Promise<VerifyReport> {
  const ort = loadOrt();
  const samples = opts.samples ?? 3;
  const seed = opts.seed ?? 1;
  const abort = () => {
    if (opts.signal?.aborted) throw new ModelError('verification cancelled');
  };
  const [sa, sb] = await sessionPair(ort, a.bytes, b.bytes, abort);
  try {
    const inputShapes: Record<string, number[]> = {};
    const feedsInputs = a.inputs.filter((i) => sa.inputNames.includes(i.name));
    for (const i of feedsInputs) inputShapes[i.name] = concreteShape(i, opts.dims);
    const errs = new Map(sa.outputNames.map((n) => [n, new OutputComparison(n)]));
    const rng = new Rng(seed);
    for (let s = 0; s < samples; s++) {
      abort();
      const feeds: Record<string, OrtTypes.Tensor> = {};
      for (const i of feedsInputs) {
        feeds[i.name] = probeTensor(ort, i, inputShapes[i.name], rng);
        await breathe(); // big probe tensors take a while to fill: let the host's event loop run
      }
      let ra: OrtTypes.InferenceSession.ReturnType;
      let rb: OrtTypes.InferenceSession.ReturnType;
      try {
        ra = await sa.run(feeds);
        rb = await sb.run(feeds);
      } catch (err) {
        const shapes = Object.entries(inputShapes).map(([k, v]) => `${k}=[${v.join('x')}]`).join(', ');
        throw new ModelError(`onnxruntime failed to run the model on probe inputs ${shapes}: ${firstLine(err)} (set symbolic dims with --dim name=value)`);
      }
      for (const name of sa.outputNames) {
        const x = tensorNumbers(ra[name].type, ra[name].data);
        const y = tensorNumbers(rb[name].type, rb[name].data);
        const e = errs.get(name)!;
        if (x.length !== y.length) {
          e.add(x, y);
          continue;
        }
        for (let start = 0; start < x.length; start += CHUNK) {
          e.add(x, y, start, Math.min(x.length, start + CHUNK));
          await breathe();
        }
      }
    }
    return verifyReport([...errs.values()], { samples, seed, engine: ENGINE_NAME, input_shapes: inputShapes });
  } finally {
    await Promise.allSettled([sa.release(), sb.release()]);
  }
}

/**
 * Whether two runs agree: every output within atol + rtol x (largest |value| of that output), like
 * numpy.allclose but against the output's scale, so outputs that are all near zero do not fail on noise.
 */
export function withinTolerance(v: VerifyReport, rtol: number, atol = DEFAULT_ATOL): boolean {
  return v.outputs.every((o) => o.max_abs_error <= atol + rtol * o.max_reference);
}

/** float32 rounding noise of values around 1; the absolute floor of withinTolerance */
export const DEFAULT_ATOL = 1e-6;

/** elements compared between two yields to the event loop (the extension host must stay responsive) */
const CHUNK = 1 << 20;
const breathe = () => new Promise<void>((resolve) => setImmediate(resolve));

