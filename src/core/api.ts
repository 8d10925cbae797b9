/**
 * The core's public surface: everything the extension host and the CLI use. No `vscode`, no DOM.
 * Formats are chosen by content (magic bytes / structure), never by file extension alone.
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { buildReport, buildReportAsync, type InspectOptions } from './analysis/inspect';
import { verifyOnnx } from './engines/onnxruntime';
import { ModelError } from './errors';
import { assertLooksLikeOnnx, decodeModel, encodeModel } from './formats/onnx/codec';
import { applyFold, planFold } from './formats/onnx/fold-batchnorm';
import { buildGraphView } from './formats/onnx/graph';
import { newExternalResolver, OnnxModel } from './formats/onnx/model';
import type { ModelProto, TensorProto } from './formats/onnx/proto';
import { tensorByteLength } from './formats/onnx/tensor';
import type { FoldPlan, InspectReport, ModelFormat, SizeDelta, VerifyOptions, VerifyReport } from './types';
import { describeFsError, writeFileAtomic } from './util/fs';

export { ModelError } from './errors';
export type { InspectOptions } from './analysis/inspect';

/** A loaded model. Immutable: rewrites return a new Model, so the previous one is the undo state. */
export interface Model {
  readonly format: ModelFormat;
  /** folder the model's relative paths (external data, shards) resolve against; nothing outside it is read */
  readonly baseDir: string;
  /** size of the file(s) it was loaded from; null when it was built in memory */
  readonly fileBytes: number | null;
}

export interface FoldResult {
  model: Model;
  plan: FoldPlan;
  size: SizeDelta;
}

/** A user-facing one-line message for any error (ModelError or unexpected). */
export function errorMessage(err: unknown): string {
  if (err instanceof ModelError) return err.message;
  const msg = err instanceof Error ? err.message : String(err);
  return `internal error: ${msg.split('\n')[0]}`;
}

export async function loadModel(file: string): Promise<Model> {
  let bytes: Uint8Array;
  try {
    const st = await fsp.stat(file);
    if (st.isDirectory()) throw new ModelError(`is a folder, not a model file: ${file}`);
    bytes = await fsp.readFile(file);
  } catch (err) {
    if (err instanceof ModelError) throw err;
    throw new ModelError(describeFsError(err, file));
  }
  return loadModelBytes(bytes, path.dirname(path.resolve(file)), path.basename(file));
}

export function sniffFormat(bytes: Uint8Array): ModelFormat | 'json' | 'hdf5' | 'zip' | null {
  if (bytes.length >= 8 && bytes[0] === 0x89 && bytes[1] === 0x48 && bytes[2] === 0x44 && bytes[3] === 0x46) return 'hdf5';
  if (bytes.length >= 4 && bytes[0] === 0x50 && bytes[1] === 0x4b && bytes[2] === 0x03 && bytes[3] === 0x04) return 'zip';
  let i = 0;
  while (i < bytes.length && i < 64 && (bytes[i] === 0x20 || bytes[i] === 0x0a || bytes[i] === 0x0d || bytes[i] === 0x09 || bytes[i] === 0xef || bytes[i] === 0xbb || bytes[i] === 0xbf)) i++;
  if (bytes[i] === 0x7b) return 'json';
  // ONNX ModelProto: a protobuf message whose first field is normally ir_version (field 1, varint -> 0x08)
  // but any field order is legal, so everything else is tried as ONNX and validated after decoding.
  return bytes.length > 0 ? 'onnx' : null;
}

export function loadModelBytes(bytes: Uint8Array, baseDir: string, name = 'model'): Model {
  if (bytes.length === 0) throw new ModelError(`${name}: the file is empty`);
  const kind = sniffFormat(bytes);
  switch (kind) {
    case 'hdf5':
      throw new ModelError(`${name}: Keras .h5 (HDF5) models are not supported yet; this version opens ONNX models`);
    case 'zip':
      throw new ModelError(`${name}: .keras (zip) models are not supported yet; this version opens ONNX models`);
    case 'json':
      throw new ModelError(`${name}: TensorFlow.js model.json models are not supported yet; this version opens ONNX models`);
    default:
      break;
  }
  let proto: ModelProto;
  try {
    proto = decodeModel(bytes);
    assertLooksLikeOnnx(proto);
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    throw new ModelError(`${name}: ${msg.split('\n')[0]}`);
  }
  return new OnnxModel(proto, baseDir, bytes.length, newExternalResolver(baseDir));
}

function asOnnx(model: Model): OnnxModel {
  if (model instanceof OnnxModel) return model;
  throw new ModelError(`${model.format} models are not supported by this operation yet`);
}

export function inspect(model: Model, opts: InspectOptions & { dims?: Record<string, number> } = {}): InspectReport {
  return buildReport(buildGraphView(asOnnx(model), opts.dims), opts);
}

/** inspect, with the statistics of large models computed on two cores (what the CLI and the editor use) */
export function inspectAsync(model: Model, opts: InspectOptions & { dims?: Record<string, number> } = {}): Promise<InspectReport> {
  return buildReportAsync(buildGraphView(asOnnx(model), opts.dims), opts);
}

export function planFoldBatchNorm(model: Model): FoldPlan {
  return planFold(asOnnx(model));
}

function sizeOf(m: OnnxModel): { params: number; bytes: number; layers: number } {
  const g = m.graph;
  let params = 0;
  let bytes = 0;
  const count = (t: TensorProto) => {
    params += t.dims.reduce((p, d) => p * Number(d), 1);
    bytes += tensorByteLength(t);
  };
  g.initializer.forEach(count);
  let layers = 0;
  for (const n of g.node) {
    if (n.opType === 'Constant' && (!n.domain || n.domain === 'ai.onnx')) {
      const t = n.attribute.find((a) => a.name === 'value')?.t;
      if (t) count(t);
    } else layers++;
  }
  return { params, bytes, layers };
}

export function foldBatchNorm(model: Model): FoldResult {
  const m = asOnnx(model);
  const { model: folded, plan } = applyFold(m);
  const a = sizeOf(m);
  const b = sizeOf(folded);
  return {
    model: folded,
    plan,
    size: {
      params_before: a.params,
      params_after: b.params,
      bytes_before: a.bytes,
      bytes_after: b.bytes,
      layers_before: a.layers,
      layers_after: b.layers,
    },
  };
}

export async function verify(a: Model, b: Model, opts: VerifyOptions = {}): Promise<VerifyReport> {
  const ma = asOnnx(a);
  const mb = asOnnx(b);
  const inputs = buildGraphView(ma).summary.inputs;
  return verifyOnnx({ bytes: runtimeBytes(ma), inputs }, { bytes: runtimeBytes(mb), inputs }, opts);
}

/** bytes for onnxruntime: external data inlined (the runtime gets a buffer, not a path) */
function runtimeBytes(m: OnnxModel): Uint8Array {
  return encodeModel(m.external.inlineAll(m.proto));
}

/** the bytes of the model as it would be saved */
export function serialize(model: Model): Uint8Array {
  return encodeModel(asOnnx(model).proto);
}

/** atomic: temp file in the same folder + rename; never leaves a partial file */
export async function saveModel(model: Model, file: string): Promise<void> {
  const m = asOnnx(model);
  const target = path.resolve(file);
  // external data paths are relative to the model's folder: saving elsewhere inlines them
  const proto = path.dirname(target) === path.resolve(m.baseDir) ? m.proto : m.external.inlineAll(m.proto);
  try {
    await writeFileAtomic(target, encodeModel(proto));
  } catch (err) {
    throw new ModelError(describeFsError(err, file));
  }
}
