/**
 * Verification engine for the TF.js / Keras formats: TensorFlow.js behind the same contract as the ONNX engine
 * (seeded probe inputs, max abs / rel error per output). Backends in order: @tensorflow/tfjs-node (optional
 * dependency, used when it loads), @tensorflow/tfjs-backend-wasm (SIMD, single-threaded in Node), then the
 * pure-JS cpu backend. Everything is loaded lazily; the backend that ran is reported as `tfjs-<name>`.
 */
import * as path from 'node:path';
import type * as TfCore from '@tensorflow/tfjs-core';
import type * as TfLayers from '@tensorflow/tfjs-layers';
import type * as TfConverter from '@tensorflow/tfjs-converter';
import { ModelError } from '../errors';
import type { ValueSummary, VerifyOptions, VerifyReport } from '../types';
import { OutputComparison, verifyReport } from './output-errors';
import { Rng } from '../util/random';
import { concreteShape, firstLine } from './onnxruntime';

export type Tf = typeof TfCore;
export type TfjsBackend = 'node' | 'wasm' | 'cpu';

let tfModule: Tf | undefined;
const ready = new Map<TfjsBackend, boolean>();

/* eslint-disable @typescript-eslint/no-require-imports */
function core(): Tf {
  if (!tfModule) {
    tfModule = require('@tensorflow/tfjs-core') as Tf;
    // no "Hi, looks like you are running TensorFlow.js in Node.js" banner, no debug checks
    tfModule.enableProdMode();
  }
  return tfModule;
}

export function tfLayers(): typeof TfLayers {
  core();
  return require('@tensorflow/tfjs-layers') as typeof TfLayers;
}

export function tfConverter(): typeof TfConverter {
  core();
  return require('@tensorflow/tfjs-converter') as typeof TfConverter;
}

/** the folder holding tfjs-backend-wasm's .wasm files */
export function wasmDir(): string {
  try {
    return path.join(path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'dist') + path.sep;
  } catch {
    return path.join(__dirname, '..', 'node_modules', '@tensorflow', 'tfjs-backend-wasm', 'dist') + path.sep;
  }
}

async function tryBackend(tf: Tf, b: TfjsBackend): Promise<boolean> {
  const known = ready.get(b);
  if (known === false) return false;
  try {
    if (b === 'node') {
      require('@tensorflow/tfjs-node');
      if (!(await tf.setBackend('tensorflow'))) throw new Error('tensorflow backend not available');
    } else if (b === 'wasm') {
      const wasm = require('@tensorflow/tfjs-backend-wasm') as { setWasmPaths(p: string): void };
      if (known === undefined) {
        tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
        tf.env().set('WASM_HAS_SIMD_SUPPORT', true);
        wasm.setWasmPaths(wasmDir());
      }
      if (!(await tf.setBackend('wasm'))) throw new Error('wasm backend failed to initialize');
    } else {
      require('@tensorflow/tfjs-backend-cpu');
      if (!(await tf.setBackend('cpu'))) throw new Error('cpu backend failed to initialize');
    }
    await tf.ready();
    ready.set(b, true);
    return true;
  } catch {
    ready.set(b, false);
    return false;
  }
}
/* eslint-enable @typescript-eslint/no-require-imports */

/** TF.js with the first backend that works (or the requested one); returns the backend's engine name */
export async function loadTfjs(prefer?: TfjsBackend): Promise<{ tf: Tf; engine: string }> {
  const tf = core();
  const order: TfjsBackend[] = prefer ? [prefer] : ['node', 'wasm', 'cpu'];
  for (const b of order) if (await tryBackend(tf, b)) return { tf, engine: `tfjs-${b}` };
  throw new ModelError(prefer ? `the TF.js ${prefer} backend is not available` : 'no TensorFlow.js backend could be initialized');
}

/** a model as TF.js runs it: a layers model (Keras config + float32 weights) or a graph model */
export type TfjsRunnable =
  | { kind: 'layers'; topology: TfCore.io.ModelArtifacts['modelTopology']; specs: TfCore.io.WeightsManifestEntry[]; data: ArrayBuffer; inputs: ValueSummary[] }
  | { kind: 'graph'; artifacts: TfCore.io.ModelArtifacts; inputs: ValueSummary[] };

export interface LoadedTfjs {
  inputNames: string[];
  outputNames: string[];
  run(feeds: TfCore.Tensor[]): Promise<Float32Array[]>;
  dispose(): void;
}

export async function loadRunnable(tf: Tf, r: TfjsRunnable, what: string): Promise<LoadedTfjs> {
  if (r.kind === 'layers') {
    let model: TfLayers.LayersModel;
    try {
      model = await tfLayers().loadLayersModel(tf.io.fromMemory({ modelTopology: r.topology, weightSpecs: r.specs, weightData: r.data }), { strict: true });
    } catch (err) {
      throw new ModelError(`TensorFlow.js cannot load the ${what} model: ${firstLine(err)}`);
    }
    // a Sequential model leaves outputNames empty: name outputs after their layers
    const outputNames = model.outputNames?.length ? model.outputNames : model.outputs.map((o) => o.name.split('/')[0]);
    return {
      inputNames: model.inputNames ?? [],
      outputNames,
      async run(feeds) {
        const out = tf.tidy(() => {
          const y = model.predict(feeds.length === 1 ? feeds[0] : feeds);
          return Array.isArray(y) ? y : [y];
        });
        try {
          return await Promise.all(out.map(async (t) => Float32Array.from(await t.data())));
        } finally {
          out.forEach((t) => t.dispose());
        }
      },
      dispose: () => model.dispose(),
    };
  }
  let gm: TfConverter.GraphModel;
  try {
    gm = await tfConverter().loadGraphModel(tf.io.fromMemory(r.artifacts));
  } catch (err) {
    throw new ModelError(`TensorFlow.js cannot load the ${what} graph model: ${firstLine(err)}`);
  }
  return {
    inputNames: gm.inputs.map((i) => i.name),
    outputNames: gm.outputs.map((o) => o.name),
    async run(feeds) {
      const map: TfCore.NamedTensorMap = {};
      gm.inputs.forEach((i, k) => (map[i.name] = feeds[k]));
      // execute() for plain graphs (executeAsync warns about them); executeAsync for control flow
      let y: TfCore.Tensor | TfCore.Tensor[];
      try {
        y = gm.execute(map);
      } catch {
        y = await gm.executeAsync(map);
      }
      const out = Array.isArray(y) ? y : [y];
      try {
        return await Promise.all(out.map(async (t) => Float32Array.from(await t.data())));
      } finally {
        out.forEach((t) => t.dispose());
      }
    },
    dispose: () => gm.dispose(),
  };
}

function probe(tf: Tf, input: ValueSummary, shape: number[], rng: Rng): TfCore.Tensor {
  const n = shape.reduce((p, v) => p * v, 1);
  if (input.dtype === 'int32' || input.dtype.startsWith('int') || input.dtype === 'DT_INT32') {
    const a = new Int32Array(n);
    for (let i = 0; i < n; i++) a[i] = Math.floor(rng.next() * 10);
    return tf.tensor(a, shape, 'int32');
  }
  if (input.dtype === 'bool') {
    const a = new Uint8Array(n);
    for (let i = 0; i < n; i++) a[i] = rng.next() < 0.5 ? 1 : 0;
    return tf.tensor(a, shape, 'bool');
  }
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = rng.normal();
  return tf.tensor(a, shape, 'float32');
}

export interface TfjsVerifyOptions extends VerifyOptions {
  backend?: TfjsBackend;
}

/** Runs `a` and `b` on the same seeded probes with TF.js and compares every output (by position). */
export async function verifyTfjs(a: TfjsRunnable, b: TfjsRunnable, opts: TfjsVerifyOptions = {}): Promise<VerifyReport> {
  const { tf, engine } = await loadTfjs(opts.backend);
  const samples = opts.samples ?? 3;
  const seed = opts.seed ?? 1;
  const abort = () => {
    if (opts.signal?.aborted) throw new ModelError('verification cancelled');
  };
  abort();
  const ma = await loadRunnable(tf, a, 'original');
  let mb: LoadedTfjs | undefined;
  try {
    abort();
    mb = await loadRunnable(tf, b, 'rewritten');
    if (mb.outputNames.length !== ma.outputNames.length) throw new ModelError(`the rewritten model has ${mb.outputNames.length} output(s), the original ${ma.outputNames.length}`);
    const inputShapes: Record<string, number[]> = {};
    for (const i of a.inputs) inputShapes[i.name] = concreteShape(i, opts.dims);
    const errs = ma.outputNames.map((n) => new OutputComparison(n));
    const rng = new Rng(seed);
    for (let s = 0; s < samples; s++) {
      abort();
      const feeds = a.inputs.map((i) => probe(tf, i, inputShapes[i.name], rng));
      let ra: Float32Array[];
      let rb: Float32Array[];
      try {
        ra = await ma.run(feeds);
        rb = await mb.run(feeds);
      } catch (err) {
        const shapes = Object.entries(inputShapes).map(([k, v]) => `${k}=[${v.join('x')}]`).join(', ');
        throw new ModelError(`TensorFlow.js failed to run the model on probe inputs ${shapes}: ${firstLine(err)} (set unknown dims with --dim name=value)`);
      } finally {
        feeds.forEach((t) => t.dispose());
      }
      ra.forEach((x, k) => errs[k].add(x, rb[k]));
    }
    return verifyReport(errs, { samples, seed, engine, input_shapes: inputShapes });
  } finally {
    ma.dispose();
    mb?.dispose();
  }
}
