/**
 * Comparing the outputs of an original and a rewritten model, engine-neutral: every verification (onnxruntime
 * on seeded inputs, onnxruntime on probe inputs, TF.js on seeded inputs, TF.js on probe inputs) folds its
 * output pairs in here and reports the same VerifyReport.
 */
import type { OutputError, VerifyReport } from '../types';

/** the running largest |original - rewritten| and largest |original| of one output */
export class OutputComparison {
  abs = 0;
  ref = 0;

  constructor(readonly name: string) {}

  /**
   * Folds values [start, end) of one pair of outputs in. Outputs of different lengths make the error infinite;
   * a NaN difference does too, unless both values are NaN.
   */
  add(x: ArrayLike<number>, y: ArrayLike<number> | undefined, start = 0, end = x.length): void {
    if (!y || x.length !== y.length) {
      this.abs = Infinity;
      return;
    }
    let abs = this.abs;
    let ref = this.ref;
    for (let i = start; i < end; i++) {
      const d = Math.abs(x[i] - y[i]);
      if (d > abs || Number.isNaN(d)) abs = Number.isNaN(d) ? (Number.isNaN(x[i]) && Number.isNaN(y[i]) ? abs : Infinity) : d;
      const r = Math.abs(x[i]);
      if (r > ref) ref = r;
    }
    this.abs = abs;
    this.ref = ref;
  }

  /** max_rel_error is relative to the largest magnitude of the original output (stable for outputs near zero) */
  result(): OutputError {
    return { name: this.name, max_abs_error: this.abs, max_rel_error: this.abs === 0 ? 0 : this.ref > 0 ? this.abs / this.ref : Infinity, max_reference: this.ref };
  }
}

/** the report over every output: the largest absolute and relative errors, and each output's */
export function verifyReport(outputs: OutputComparison[], run: Pick<VerifyReport, 'samples' | 'seed' | 'engine' | 'input_shapes'>): VerifyReport {
  const per = outputs.map((o) => o.result());
  return {
    max_abs_error: Math.max(0, ...per.map((o) => o.max_abs_error)),
    max_rel_error: Math.max(0, ...per.map((o) => o.max_rel_error)),
    samples: run.samples,
    seed: run.seed,
    engine: run.engine,
    outputs: per,
    input_shapes: run.input_shapes,
  };
}
