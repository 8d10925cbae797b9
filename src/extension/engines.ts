import { ENGINE_NAME } from '../core/engines/onnxruntime';
import type { ModelFormat } from '../core/types';

/** The TF.js backend the last verification in this extension host ran on (the core picks node, wasm or cpu once). */
let tfjsEngine: string | null = null;

/** Remember the engine of a finished verification (VerifyReport.engine). */
export function recordEngine(engine: string): void {
  if (engine.startsWith('tfjs-')) tfjsEngine = engine;
}

/**
 * What verifies rewrites of a format: onnxruntime for ONNX; for TF.js / Keras the TensorFlow.js backend once a
 * verification has run (TF.js is only loaded when something runs a model), else null.
 */
export function verificationEngine(format: ModelFormat): string | null {
  return format === 'onnx' ? ENGINE_NAME : tfjsEngine;
}
