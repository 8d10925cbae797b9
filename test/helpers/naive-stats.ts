/** Per-channel statistics of whole tensors in float64, two passes, the obvious way: the tests' reference. */
import { channelLayout } from '../../src/core/analysis/streaming-stats';

export function naiveChannelStats(values: ArrayLike<number>[], dims: number[], axis: number) {
  const { outer, channels, inner } = channelLayout(dims, axis);
  const sums = new Float64Array(channels);
  const counts = new Float64Array(channels);
  const min = new Float64Array(channels).fill(Infinity);
  const max = new Float64Array(channels).fill(-Infinity);
  const nonpos = new Float64Array(channels);
  const each = (f: (c: number, v: number) => void) => {
    for (const data of values) for (let o = 0; o < outer; o++) for (let c = 0; c < channels; c++) for (let i = 0; i < inner; i++) f(c, data[(o * channels + c) * inner + i]);
  };
  each((c, v) => {
    sums[c] += v;
    counts[c]++;
    min[c] = Math.min(min[c], v);
    max[c] = Math.max(max[c], v);
    if (v <= 0) nonpos[c]++;
  });
  const mean = Array.from(sums, (s, c) => s / counts[c]);
  const m2 = new Float64Array(channels);
  each((c, v) => (m2[c] += (v - mean[c]) ** 2));
  return { mean, variance: Array.from(m2, (m, c) => m / counts[c]), min: Array.from(min), max: Array.from(max), apoz: Array.from(nonpos, (z, c) => z / counts[c]) };
}

