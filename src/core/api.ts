/**
 * The core's public surface: everything the extension host and the CLI use. No `vscode`, no DOM.
 * Formats are chosen by content (magic bytes / structure), never by file extension alone; each format is a
 * FormatHandler (formats/handler.ts) and these functions delegate to the one that owns the model.
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { buildReport, buildReportAsync, type InspectOptions } from './analysis/inspect';
import { allocateModelMemory } from './analysis/wasm-kernels';
import { ModelError } from './errors';
import type { MemoryPlanOptions } from './analysis/memory-planner';
import { applyDoctorRewrite, auditWith, mergeFindings, planDoctorRewrite, planMemoryFor, type AuditOptions, type AuditReport, type DoctorRewrite, type DoctorRewriteResult, type FixOptions } from './doctor';
import type { EngineVerifyOptions, FoldOptions, FormatHandler } from './formats/handler';
import { assertLooksLikeOnnx, decodeModel } from './formats/onnx/codec';
import { onnxHandler } from './formats/onnx/handler';
import { newExternalResolver, OnnxModel } from './formats/onnx/model';
import type { ModelProto } from './formats/onnx/proto';
import { kerasHandler } from './formats/keras/handler';
import { KerasModel } from './formats/keras/model';
import { compareKerasOnInputs, probeKeras } from './formats/keras/probe';
import { pruneKeras } from './formats/keras/prune';
import { measureKerasSwap, swapKerasActivation, type KerasSwapOptions } from './formats/keras/swap-activation';
import { h5IfReady, loadH5wasm } from './formats/keras/h5';
import { readKerasH5, readKerasZip } from './formats/keras/keras-files';
import { isObject, type JsonObject } from './formats/keras/json';
import { fsShardReader, layersModelConfig, readTfjsLayers, type ShardReader } from './formats/keras/tfjs-layers';
import { isGraphModelJson, readTfjsGraph } from './formats/tfjs-graph/graph-model';
import { tfjsGraphHandler } from './formats/tfjs-graph/handler';
import { compareOnInputs, probeOnnx, type ProbeOptions } from './analysis/probe';
import type { InputSource, OpenInputsOptions } from './analysis/probe-inputs';
import { applyPrune, type PruneOptions, type PruneResult } from './formats/onnx/prune';
import { measureSwap, swapActivation, type SwapMeasurement, type SwapOptions, type SwapResult } from './formats/onnx/swap-activation';
import type { ProbeReport } from './types';
import type { BatchNormChannels, Finding, FoldPlan, InspectReport, MemoryPlanReport, ModelFormat, RewritePlan, SizeDelta, VerifyReport } from './types';
import { describeFsError } from './util/fs';
import { zipEntries, type ZipEntry } from './util/zip';

export { ModelError } from './errors';
export type { InspectOptions } from './analysis/inspect';
export type { MemoryPlanOptions } from './analysis/memory-planner';
export { DOCTOR_REWRITES, KERAS_REWRITES, ONNX_REWRITES, type AuditOptions, type AuditReport, type DoctorRewrite, type FixOptions } from './doctor';
export type { FoldOptions, FormatHandler } from './formats/handler';
export type { InputSource, ProbeOptions, PruneOptions, SwapOptions };
export { inputSourceFromPath } from './analysis/probe-inputs';

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
  /** facts worth telling (e.g. quantized tensors written as float32 and the size change); may be empty */
  notes: string[];
}

export interface FreezeResult {
  model: Model;
  /** names of the BatchNorm layers set to trainable: false */
  frozen: string[];
}

const HANDLERS: FormatHandler[] = [onnxHandler as FormatHandler, kerasHandler as FormatHandler, tfjsGraphHandler as FormatHandler];

function handlerFor(model: Model): FormatHandler {
  const h = HANDLERS.find((x) => x.owns(model));
  if (!h) throw new ModelError(`${model.format} models are not supported by this operation`);
  return h;
}

/** A user-facing one-line message for any error (ModelError or unexpected). */
export function errorMessage(err: unknown): string {
  if (err instanceof ModelError) return err.message;
  const msg = err instanceof Error ? err.message : String(err);
  return `internal error: ${msg.split('\n')[0]}`;
}

/** ONNX files this large are read into shared (WebAssembly) memory: the statistics kernels and worker read their tensors in place */
const SHARED_READ_BYTES = 1 << 20;

async function readModelFile(file: string, size: number): Promise<Uint8Array> {
  if (size < SHARED_READ_BYTES) return fsp.readFile(file);
  const fh = await fsp.open(file, 'r');
  try {
    const head = new Uint8Array(64);
    await fh.read(head, 0, head.length, 0);
    if (sniffFormat(head) !== 'onnx') return await fh.readFile();
    // a shared WebAssembly memory when possible: the statistics kernels then read every tensor in place
    const out = allocateModelMemory(size) ?? new Uint8Array(new SharedArrayBuffer(size));
    let done = 0;
    while (done < size) {
      const { bytesRead } = await fh.read(out, done, size - done, done);
      if (bytesRead === 0) break;
      done += bytesRead;
    }
    return done === size ? out : out.subarray(0, done);
  } finally {
    await fh.close();
  }
}

/** Loads any supported model file (ONNX, TF.js model.json + shards, Keras .h5, .keras). */
export async function loadModel(file: string): Promise<Model> {
  let bytes: Uint8Array;
  try {
    const st = await fsp.stat(file);
    if (st.isDirectory()) throw new ModelError(`is a folder, not a model file: ${file}`);
    bytes = await readModelFile(file, st.size);
  } catch (err) {
    if (err instanceof ModelError) throw err;
    throw new ModelError(describeFsError(err, file));
  }
  return loadModelBytesAsync(bytes, path.dirname(path.resolve(file)), path.basename(file));
}

export function sniffFormat(bytes: Uint8Array): ModelFormat | 'json' | 'hdf5' | 'zip' | null {
  if (bytes.length >= 8 && bytes[0] === 0x89 && bytes[1] === 0x48 && bytes[2] === 0x44 && bytes[3] === 0x46) return 'hdf5';
  if (bytes.length >= 4 && bytes[0] === 0x50 && bytes[1] === 0x4b && (bytes[2] === 0x03 || bytes[2] === 0x05) && (bytes[3] === 0x04 || bytes[3] === 0x06)) return 'zip';
  let i = 0;
  while (i < bytes.length && i < 64 && (bytes[i] === 0x20 || bytes[i] === 0x0a || bytes[i] === 0x0d || bytes[i] === 0x09 || bytes[i] === 0xef || bytes[i] === 0xbb || bytes[i] === 0xbf)) i++;
  if (bytes[i] === 0x7b) return 'json';
  // ONNX ModelProto: a protobuf message whose first field is normally ir_version (field 1, varint -> 0x08)
  // but any field order is legal, so everything else is tried as ONNX and validated after decoding.
  return bytes.length > 0 ? 'onnx' : null;
}

function parseModelJson(bytes: Uint8Array, name: string): JsonObject {
  let v: unknown;
  try {
    v = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8').replace(/^\uFEFF/, ''));
  } catch (err) {
    throw new ModelError(`${name}: invalid JSON (${err instanceof Error ? err.message.split('\n')[0] : String(err)})`);
  }
  if (!isObject(v)) throw new ModelError(`${name}: JSON that is not a TF.js model.json`);
  return v;
}

function loadJson(json: JsonObject, readShard: ShardReader, baseDir: string, fileBytes: number, name: string): Model {
  if (isGraphModelJson(json)) return readTfjsGraph(json, readShard, baseDir, fileBytes, name);
  if (layersModelConfig(json)) return readTfjsLayers(json, readShard, baseDir, fileBytes, name);
  throw new ModelError(`${name}: JSON that is not a TF.js model.json (no modelTopology with a Keras model or a graph)`);
}

/** shards of a TF.js bundle (zip of model.json + shards) come from the archive, never from disk */
function bundleReader(entries: ZipEntry[], name: string): ShardReader {
  return (rel) => {
    const norm = path.posix.normalize(rel.replace(/\\/g, '/'));
    if (norm.startsWith('../') || norm.startsWith('/')) throw new ModelError(`${name}: shard path '${rel}' resolves outside the model's folder; refused`);
    const e = entries.find((x) => x.name === norm);
    if (!e) throw new ModelError(`${name}: weight shard '${rel}' is missing`);
    return e.bytes;
  };
}

function loadZip(bytes: Uint8Array, baseDir: string, name: string): Model {
  const entries = zipEntries(bytes, name);
  const mj = entries.find((e) => e.name === 'model.json');
  if (mj && !entries.some((e) => e.name === 'config.json')) {
    return loadJson(parseModelJson(mj.bytes, `${name}: model.json`), bundleReader(entries, name), baseDir, bytes.byteLength, name);
  }
  return readKerasZip(bytes, baseDir, name, entries);
}

function needsHdf5(bytes: Uint8Array): boolean {
  const kind = sniffFormat(bytes);
  return kind === 'hdf5' || kind === 'zip';
}

/**
 * Synchronous load from bytes. Keras .h5/.keras need the HDF5 library, which loads asynchronously: they work
 * here once any async load has initialized it (loadModel / loadModelBytesAsync / prepareFormats); otherwise
 * use loadModelBytesAsync. TF.js models read their shards from `baseDir` (or from the bundle).
 */
export function loadModelBytes(bytes: Uint8Array, baseDir: string, name = 'model'): Model {
  if (bytes.length === 0) throw new ModelError(`${name}: the file is empty`);
  const kind = sniffFormat(bytes);
  switch (kind) {
    case 'hdf5':
      if (!h5IfReady()) throw new ModelError(`${name}: HDF5 support is not loaded yet; open Keras models with loadModelBytesAsync()`);
      return readKerasH5(bytes, baseDir, name);
    case 'zip': {
      const entries = zipEntries(bytes, name);
      const isBundle = entries.some((e) => e.name === 'model.json') && !entries.some((e) => e.name === 'config.json');
      if (!isBundle && !h5IfReady()) throw new ModelError(`${name}: HDF5 support is not loaded yet; open Keras models with loadModelBytesAsync()`);
      return loadZip(bytes, baseDir, name);
    }
    case 'json':
      return loadJson(parseModelJson(bytes, name), fsShardReader(baseDir, name), baseDir, bytes.length, name);
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
  return new OnnxModel(proto, baseDir, bytes.length, newExternalResolver(baseDir), bytes);
}

/** Loads the libraries some formats need (HDF5 for Keras); afterwards loadModelBytes handles every format. */
export async function prepareFormats(): Promise<void> {
  await loadH5wasm();
}

/** loadModelBytes for every format (loads the HDF5 library first when the bytes need it) */
export async function loadModelBytesAsync(bytes: Uint8Array, baseDir: string, name = 'model'): Promise<Model> {
  if (bytes.length > 0 && needsHdf5(bytes)) await loadH5wasm();
  return loadModelBytes(bytes, baseDir, name);
}

/** inspect's findings completed by the BatchNorm / Dropout audits (an audit that cannot run adds nothing) */
function withAudit(model: Model, report: InspectReport, dims: Record<string, number> | undefined, precomputed?: Finding[] | null): InspectReport {
  const audited = precomputed !== undefined ? precomputed : auditFindings(model, dims);
  if (audited) report.findings = mergeFindings(report.findings, audited);
  return report;
}

/** the audits' findings, or null when they cannot run (they are extra information: inspect stands without them) */
function auditFindings(model: Model, dims: Record<string, number> | undefined): Finding[] | null {
  try {
    return auditWith(handlerFor(model), model, dims ? { dims } : {}).findings;
  } catch {
    return null;
  }
}

export function inspect(model: Model, opts: InspectOptions & { dims?: Record<string, number> } = {}): InspectReport {
  return withAudit(model, buildReport(handlerFor(model).graphView(model, opts.dims), opts), opts.dims);
}

/** inspect, with the statistics of large models computed on two cores (what the CLI and the editor use) */
export async function inspectAsync(model: Model, opts: InspectOptions & { dims?: Record<string, number> } = {}): Promise<InspectReport> {
  // the audits run on this thread while the statistics worker starts and takes the first tensors
  let audited: Finding[] | null = null;
  const report = await buildReportAsync(handlerFor(model).graphView(model, opts.dims), opts, () => (audited = auditFindings(model, opts.dims)));
  return withAudit(model, report, opts.dims, audited);
}

/** the BatchNorm and Dropout audits: batch-size-1 hazards with the effective batch per BN, findings with fixes */
export function audit(model: Model, opts: AuditOptions = {}): AuditReport {
  return auditWith(handlerFor(model), model, opts);
}

/** activation / parameter / optimizer memory for inference and training, largest batch that fits, crops (ONNX NCHW; TF.js layers / Keras NHWC) */
export function planMemory(model: Model, opts: MemoryPlanOptions = {}): MemoryPlanReport {
  return planMemoryFor(model, opts);
}

export interface RewriteResult extends DoctorRewriteResult {
  size: SizeDelta;
}

/**
 * one of the doctor's fixes: ONNX fold-batchnorm-forward, batchnorm-to-affine, batchnorm-eval-mode,
 * remove-dropout; Keras / TF.js layers remove-dropout, set-dropout-rate (opts.rate), replace-batchnorm-groupnorm
 * (opts.groups); opts.layers limits the Keras rewrites to some layers
 */
export function applyFix(model: Model, id: DoctorRewrite, opts: FixOptions = {}): RewriteResult {
  const h = handlerFor(model);
  const r = applyDoctorRewrite(model, id, opts);
  const a = h.size(model);
  const b = h.size(r.model);
  return {
    ...r,
    size: { params_before: a.params, params_after: b.params, bytes_before: a.bytes, bytes_after: b.bytes, layers_before: a.layers, layers_after: b.layers },
  };
}

export function planFix(model: Model, id: DoctorRewrite, opts: FixOptions = {}): FoldPlan | RewritePlan {
  return planDoctorRewrite(model, id, opts);
}

export function planFoldBatchNorm(model: Model): FoldPlan {
  return handlerFor(model).planFold(model);
}

export function foldBatchNorm(model: Model, opts: FoldOptions = {}): FoldResult {
  const h = handlerFor(model);
  const { model: folded, plan, notes } = h.applyFold(model, opts);
  const a = h.size(model);
  const b = h.size(folded);
  return {
    model: folded,
    plan,
    notes,
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

/** Sets every BatchNorm to trainable: false (inference mode in Keras 2+, also while fine-tuning). Keras formats. */
export function freezeBatchNorm(model: Model): FreezeResult {
  const h = handlerFor(model);
  if (!h.freeze) throw new ModelError(`Freeze BatchNorm is not available for ${model.format} models (it is a Keras setting)`);
  return h.freeze(model);
}

/** whether freezeBatchNorm applies to this model's format */
export function canFreezeBatchNorm(model: Model): boolean {
  return !!handlerFor(model).freeze;
}

export async function verify(a: Model, b: Model, opts: EngineVerifyOptions = {}): Promise<VerifyReport> {
  const h = handlerFor(a);
  if (!h.owns(b)) throw new ModelError(`cannot compare a ${a.format} model with a ${(b as Model).format} model`);
  return h.verify(a, b, opts);
}

/**
 * The model as one byte array: the file itself for ONNX / .h5 / .keras; for TF.js models a zip bundle of
 * model.json + shards (loadModelBytes reads it back).
 */
export function serialize(model: Model): Uint8Array {
  return handlerFor(model).serialize(model);
}

/**
 * Atomic: temp file(s) in the same folder + rename; never leaves a partial model. TF.js models: `file` is the
 * new model.json; shards are written next to it first, model.json last.
 */
export async function saveModel(model: Model, file: string): Promise<void> {
  try {
    await handlerFor(model).save(model, file);
  } catch (err) {
    if (err instanceof ModelError) throw err;
    if ((err as NodeJS.ErrnoException)?.code) throw new ModelError(describeFsError(err, file));
    throw new ModelError(`cannot save ${file}: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`);
  }
}

// ---------------------------------------------------------------- probing, pruning, activation swap (ONNX; Keras / TF.js layers in TF.js)

function onnxFor(model: Model, what: string): OnnxModel {
  if (model instanceof OnnxModel) return model;
  throw new ModelError(`${what} supports ONNX, Keras (.h5, .keras) and TF.js layers models in this version (this is a ${model.format} model)`);
}

/** Runs the model on probe inputs and reports per-channel APoZ / mean / variance / max and dead units. */
export function probe(model: Model, source: InputSource = { kind: 'random' }, opts: ProbeOptions = {}): Promise<ProbeReport> {
  if (model instanceof KerasModel) return probeKeras(model, source, opts);
  return probeOnnx(onnxFor(model, 'probing'), source, opts);
}

export interface PruneOutcome extends Omit<PruneResult, 'model'> {
  model: Model;
  /** both models on the same probe inputs the pruning used */
  verify: VerifyReport;
}

/** Removes channels/units physically (dependency groups pruned together) and verifies on the probe inputs. */
export async function prune(model: Model, opts: PruneOptions): Promise<PruneOutcome> {
  if (model instanceof KerasModel) {
    const r = await pruneKeras(model, opts);
    const v = await compareKerasOnInputs(model, r.model, opts.inputs ?? { kind: 'random' }, { samples: opts.samples, batchSize: opts.batchSize, dims: opts.dims, signal: opts.signal });
    return { ...r, verify: v };
  }
  const m = onnxFor(model, 'pruning');
  const result = await applyPrune(m, opts);
  const source: InputSource = opts.inputs ?? { kind: 'random' };
  const v = await compareOnInputs(m, result.model, source, { samples: opts.samples, batchSize: opts.batchSize, dims: opts.dims, signal: opts.signal });
  return { ...result, verify: v };
}

export interface SwapOutcome extends Omit<SwapResult, 'model'> {
  model: Model;
  /** the deviation (a swap changes the function) and the activation mean/variance by depth before/after */
  measurement: SwapMeasurement;
}

/**
 * ReLU/ReLU6/LeakyReLU -> SELU/ELU/GELU/LeakyReLU (SELU recipe: BatchNorm folded first); measured, not gated.
 * Keras formats also: Dropout -> AlphaDropout for SELU, `reinit` (LeCun-normal kernels, seeded).
 */
export async function swapActivations(model: Model, opts: SwapOptions & Pick<KerasSwapOptions, 'reinit' | 'seed'>, source: InputSource = { kind: 'random' }, probeOpts: OpenInputsOptions & { signal?: AbortSignal } = {}): Promise<SwapOutcome> {
  if (model instanceof KerasModel) {
    const r = swapKerasActivation(model, opts);
    return { ...r, measurement: await measureKerasSwap(model, r.model, source, probeOpts) };
  }
  if (opts.reinit) throw new ModelError('re-initialisation (reinit) is available for Keras / TF.js layers models');
  const m = onnxFor(model, 'the activation swap');
  const result = swapActivation(m, opts);
  const measurement = await measureSwap(m, result.model, source, probeOpts);
  return { ...result, measurement };
}

/** More channels than this is not a BatchNorm whose per-channel vectors we hand out (they are summaries). */
const MAX_BN_CHANNELS = 1 << 16;

/**
 * gamma, beta, running mean / variance and the fold scale |gamma| / sqrt(var + eps) per channel of ONE
 * BatchNorm layer (small vectors: what the editor charts).
 */
export function batchNormChannels(model: Model, layer: string, dims: Record<string, number> = {}): BatchNormChannels {
  const view = handlerFor(model).graphView(model, dims);
  const l = view.layers.find((x) => x.name === layer);
  if (!l) throw new ModelError(`Layer "${layer}" is not in this model.`);
  if (l.op !== 'BatchNorm') throw new ModelError(`Layer "${layer}" is a ${l.op}, not a BatchNorm.`);
  const read = (role: string): number[] | null => {
    const w = l.weights.find((x) => x.role === role);
    if (!w) return null;
    const n = w.shape.reduce((p, v) => p * v, 1);
    if (n > MAX_BN_CHANNELS) throw new ModelError(`${layer}: ${n} values in its ${role} (more than ${MAX_BN_CHANNELS}); not charted.`);
    return Array.from(w.read());
  };
  const variance = read('variance');
  if (!variance) throw new ModelError(`${layer} has no running variance (its statistics are computed at run time).`);
  const channels = variance.length;
  const gamma = read('gamma') ?? new Array<number>(channels).fill(1);
  const epsilon = l.epsilon ?? 1e-5;
  const foldScale = variance.map((v, c) => Math.abs(gamma[c] ?? 1) / Math.sqrt(v + epsilon));
  return { layer, channels, epsilon, gamma, beta: read('beta'), mean: read('mean'), variance, foldScale };
}
