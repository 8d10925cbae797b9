/**
 * BatchNorm folding arithmetic, shared by every format. Inference-mode BN is the per-channel affine map
 *   y = gamma * (x - mean) / sqrt(var + eps) + beta  =  x * scale + shift,
 * so a preceding linear layer absorbs it: kernel rows of output channel c are multiplied by scale[c] and
 * bias[c] becomes bias[c] * scale[c] + shift[c]. Computed in float64, stored in the caller's dtype.
 */

export interface Affine {
  scale: Float64Array;
  shift: Float64Array;
}

export function batchNormAffine(
  gamma: Float32Array | null,
  beta: Float32Array | null,
  mean: Float32Array,
  variance: Float32Array,
  epsilon: number,
): Affine {
  const n = mean.length;
  const scale = new Float64Array(n);
  const shift = new Float64Array(n);
  // ONNX computes sqrt(var + eps) in float32: use the same float32 epsilon so folding matches the runtime
  const eps = Math.fround(epsilon);
  for (let c = 0; c < n; c++) {
    const s = (gamma ? gamma[c] : 1) / Math.sqrt(variance[c] + eps);
    scale[c] = s;
    shift[c] = (beta ? beta[c] : 0) - mean[c] * s;
  }
  return { scale, shift };
}

/**
 * Multiplies every element of a kernel by scale[channel of that element].
 * `axis` is the output-channel axis; with `groups` > 1 and axis 1 (ConvTranspose layout [Cin, Cout/g, k...]),
 * the output channel of element (i, j, ...) is floor(i / (Cin / g)) * (Cout / g) + j.
 */
export function scaleKernel(kernel: Float32Array, shape: number[], axis: number, scale: Float64Array, groups = 1): Float32Array {
  const out = new Float32Array(kernel.length);
  const outer = shape.slice(0, axis).reduce((p, v) => p * v, 1);
  const size = shape[axis];
  const inner = shape.slice(axis + 1).reduce((p, v) => p * v, 1);
  const rowsPerGroup = groups > 1 && axis === 1 ? shape[0] / groups : 0;
  let idx = 0;
  for (let o = 0; o < outer; o++) {
    const base = rowsPerGroup ? Math.floor(o / rowsPerGroup) * size : 0;
    for (let c = 0; c < size; c++) {
      const s = scale[base + c];
      for (let k = 0; k < inner; k++, idx++) out[idx] = kernel[idx] * s;
    }
  }
  return out;
}

/** bias' = bias * scale + shift, per channel; a missing bias counts as zeros. `biasScale` multiplies bias first (Gemm beta). */
export function foldBias(bias: Float32Array | null, affine: Affine, biasScale = 1): Float32Array {
  const n = affine.scale.length;
  const out = new Float32Array(n);
  for (let c = 0; c < n; c++) out[c] = (bias ? biasScale * bias[c] : 0) * affine.scale[c] + affine.shift[c];
  return out;
}

/** bias of any shape whose LAST axis is the channel (Gemm C of shape [M, N], [1, N] or [N]) */
export function foldBiasLastAxis(bias: Float32Array, affine: Affine, biasScale = 1): Float32Array {
  const n = affine.scale.length;
  const out = new Float32Array(bias.length);
  for (let i = 0; i < bias.length; i++) {
    const c = i % n;
    out[i] = biasScale * bias[i] * affine.scale[c] + affine.shift[c];
  }
  return out;
}
