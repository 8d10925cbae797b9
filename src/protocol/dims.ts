/**
 * Symbolic input dimensions (ONNX dim_param such as "batch" or "p2o.DynamicDimension.0"): which a model has,
 * which values are valid, and the concrete input shapes they give. Pure: no `vscode`, no DOM.
 * Unknown dims (neither a value nor a name) and names without a value mean 1, as in the core.
 */
import type { ValueSummary } from '../core/types';

/** Largest value accepted for one symbolic dim (a probe input must fit in memory). */
export const MAX_DIM = 65_536;

/** The distinct symbolic dim names of the inputs, in order of first appearance. */
export function symbolicDimNames(inputs: readonly ValueSummary[]): string[] {
  const names: string[] = [];
  for (const input of inputs) {
    for (const d of input.shape ?? []) if (typeof d === 'string' && !names.includes(d)) names.push(d);
  }
  return names;
}

/** A valid value for one dim: an integer in [1, MAX_DIM]. */
export function isValidDim(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 1 && v <= MAX_DIM;
}

/** Only valid values, only for `names` when given; anything else is dropped (= 1). */
export function sanitizeDims(raw: unknown, names?: readonly string[]): Record<string, number> {
  const out: Record<string, number> = {};
  if (typeof raw !== 'object' || raw === null) return out;
  for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
    if ((!names || names.includes(k)) && isValidDim(v)) out[k] = v;
  }
  return out;
}

/** Concrete shape of an input for the given dims (symbolic and unknown dims default to 1, like the core). */
export function concreteInputShape(input: ValueSummary, dims: Readonly<Record<string, number>>): number[] {
  return (input.shape ?? []).map((d) =>
    typeof d === 'number' ? (d < 0 ? 1 : d) : d !== null && isValidDim(dims[d]) ? dims[d] : 1,
  );
}

/** A stable key of a dims record (for caches): sorted, defaults (1) left out. */
export function dimsKey(dims: Readonly<Record<string, number>>): string {
  return JSON.stringify(
    Object.entries(dims)
      .filter(([, v]) => v !== 1)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
  );
}
