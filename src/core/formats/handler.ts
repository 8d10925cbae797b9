/**
 * One interface per model format: the public API (src/core/api.ts) finds the handler that owns a Model and
 * delegates, so the CLI and the extension call the same functions for every format.
 */
import type { Model } from '../api';
import type { TfjsBackend } from '../engines/tfjs';
import type { GraphView } from '../graph/graph';
import type { FoldPlan, VerifyOptions, VerifyReport } from '../types';

export interface SizeInfo {
  params: number;
  bytes: number;
  layers: number;
}

export interface FoldOptions {
  /** TF.js layers models with quantized weights: re-quantize the rewritten tensors (default: float32) */
  requantize?: 'uint8' | 'uint16';
}

export interface FoldOutcome {
  model: Model;
  plan: FoldPlan;
  /** facts the user should know (quantized sources written as float32, size change, re-quantization error) */
  notes: string[];
}

export interface FreezeOutcome {
  model: Model;
  /** BatchNorm layers that were set to trainable: false */
  frozen: string[];
}

export interface EngineVerifyOptions extends VerifyOptions {
  /** TF.js formats: force a backend (default: node, then wasm, then cpu) */
  backend?: TfjsBackend;
}

export interface FormatHandler<M extends Model = Model> {
  /** formats this handler owns */
  readonly formats: readonly Model['format'][];
  owns(model: Model): model is M;
  graphView(model: M, dims?: Record<string, number>): GraphView;
  planFold(model: M): FoldPlan;
  applyFold(model: M, opts: FoldOptions): FoldOutcome;
  /** absent when the format has no such rewrite */
  freeze?(model: M): FreezeOutcome;
  size(model: M): SizeInfo;
  /** runs both models on the same seeded probes with the format's engine */
  verify(a: M, b: M, opts: EngineVerifyOptions): Promise<VerifyReport>;
  /** atomic; multi-file formats write their data files first and the main file last */
  save(model: M, file: string): Promise<void>;
  /**
   * the model as one byte array (hot-exit backups, remote saves): the file itself for single-file formats, a
   * self-contained zip bundle (model.json + shards) for TF.js models; loadModelBytes reads either back
   */
  serialize(model: M): Uint8Array;
}
