import type { ProbeLayerReport } from '../types';
import { scratchKernels } from './wasm-kernels';
/**
 * Streaming per-channel statistics of activation tensors: memory stays O(channels) however many samples
 * pass. Each block (one batch of one tensor) is reduced in one pass per channel with a shifted sum of squares
 * (shift = the channel's first value in the block, so float64 cancellation stays harmless), then merged into
 * the running aggregate with Chan et al.'s parallel update:
 *   n = na + nb, delta = mean_b - mean_a, mean = mean_a + delta * nb / n, M2 = M2a + M2b + delta^2 * na * nb / n.
 * Alongside: min, max and the count of non-positive values (APoZ, "average percentage of zeros").
 * Float32 blocks of KERNEL_MIN_VALUES or more are reduced by WebAssembly SIMD kernels (kernels.wat) on a copy in a
 * scratch kernel memory: same arithmetic, ~3x faster than the JavaScript loops (which remain the reference).
 */

export interface ChannelAggregate {
  count: number;
  mean: number;
  /** sum of squared deviations from the mean (variance = m2 / count) */
  m2: number;
}

/** Chan et al.'s merge of two (count, mean, M2) aggregates. */
export function mergeMoments(a: ChannelAggregate, b: ChannelAggregate): ChannelAggregate {
  if (b.count === 0) return { ...a };
  if (a.count === 0) return { ...b };
  const n = a.count + b.count;
  const delta = b.mean - a.mean;
  return { count: n, mean: a.mean + (delta * b.count) / n, m2: a.m2 + b.m2 + (delta * delta * a.count * b.count) / n };
}

/**
 * How a tensor's elements map to channels: element index = (o * channels + c) * inner + i, with `outer`
 * = product of the dims before the channel axis and `inner` = product of the dims after it.
 */
export interface ChannelLayout {
  outer: number;
  channels: number;
  inner: number;
}

/** the layout of a tensor of shape `dims` with its channels on `axis` */
export function channelLayout(dims: readonly number[], axis: number): ChannelLayout {
  const a = axis < 0 ? axis + dims.length : axis;
  let outer = 1;
  let inner = 1;
  for (let k = 0; k < a; k++) outer *= dims[k];
  for (let k = a + 1; k < dims.length; k++) inner *= dims[k];
  return { outer, channels: dims[a] ?? 1, inner };
}

/** blocks this small stay in JavaScript (copying into the kernel memory would cost more than it saves) */
export const KERNEL_MIN_VALUES = 4096;

/** Running per-channel statistics of one tensor. */
export class ChannelStats {
  readonly channels: number;
  /** values seen per channel (equal for every channel) */
  count = 0;
  readonly mean: Float64Array;
  readonly m2: Float64Array;
  readonly min: Float64Array;
  readonly max: Float64Array;
  /** values <= 0 per channel (NaN counts as neither) */
  readonly nonPositive: Float64Array;
  // per-block scratch
  private readonly bShift: Float64Array;
  private readonly bSum: Float64Array;
  private readonly bSq: Float64Array;

  constructor(channels: number) {
    this.channels = channels;
    this.mean = new Float64Array(channels);
    this.m2 = new Float64Array(channels);
    this.min = new Float64Array(channels).fill(Infinity);
    this.max = new Float64Array(channels).fill(-Infinity);
    this.nonPositive = new Float64Array(channels);
    this.bShift = new Float64Array(channels);
    this.bSum = new Float64Array(channels);
    this.bSq = new Float64Array(channels);
  }

  /** adds one block of values laid out as `layout` (its channel count must match) */
  add(data: ArrayLike<number>, layout: ChannelLayout): void {
    const { outer, channels: C, inner } = layout;
    if (C !== this.channels) throw new Error(`channel statistics: got ${C} channels, expected ${this.channels}`);
    if (data.length !== outer * C * inner) throw new Error(`channel statistics: block of ${data.length} values does not match ${outer}x${C}x${inner}`);
    const nb = outer * inner;
    if (nb === 0) return;
    const shift = this.bShift;
    const sum = this.bSum;
    const sq = this.bSq;
    const mn = this.min;
    const mx = this.max;
    const np = this.nonPositive;
    sum.fill(0);
    sq.fill(0);
    for (let c = 0; c < C; c++) shift[c] = data[c * inner];
    if (data instanceof Float32Array && data.length >= KERNEL_MIN_VALUES && this.addWithKernels(data, layout)) {
      // done by the WebAssembly kernels into sum / sq / min / max / nonPositive
    } else if (inner === 1) {
      // channels last: [rows, C]
      for (let o = 0; o < outer; o++) {
        const base = o * C;
        for (let c = 0; c < C; c++) {
          const v = data[base + c];
          const d = v - shift[c];
          sum[c] += d;
          sq[c] += d * d;
          if (v < mn[c]) mn[c] = v;
          if (v > mx[c]) mx[c] = v;
          if (v <= 0) np[c]++;
        }
      }
    } else {
      for (let o = 0; o < outer; o++) {
        for (let c = 0; c < C; c++) {
          const start = (o * C + c) * inner;
          const k = shift[c];
          let s = 0;
          let q = 0;
          let lo = mn[c];
          let hi = mx[c];
          let z = 0;
          for (let i = start, end = start + inner; i < end; i++) {
            const v = data[i];
            const d = v - k;
            s += d;
            q += d * d;
            if (v < lo) lo = v;
            if (v > hi) hi = v;
            z += +(v <= 0);
          }
          sum[c] += s;
          sq[c] += q;
          mn[c] = lo;
          mx[c] = hi;
          np[c] += z;
        }
      }
    }
    const na = this.count;
    for (let c = 0; c < C; c++) this.mergeChannel(c, shift[c] + sum[c] / nb, Math.max(0, sq[c] - (sum[c] * sum[c]) / nb), na, nb);
    this.count = na + nb;
  }

  /** Chan et al.'s update of channel c (na values so far) with a block of nb values of mean meanB and M2 m2B */
  private mergeChannel(c: number, meanB: number, m2B: number, na: number, nb: number): void {
    if (na === 0) {
      this.mean[c] = meanB;
      this.m2[c] = m2B;
      return;
    }
    const n = na + nb;
    const delta = meanB - this.mean[c];
    this.mean[c] += (delta * nb) / n;
    this.m2[c] += m2B + (delta * delta * na * nb) / n;
  }

  /**
   * The block's sums (into bSum / bSq, with bShift subtracted), min, max and non-positive counts by the SIMD
   * kernels (kernels.wat chan_runs / chan_last) on a copy of the data in a scratch kernel memory; false when the
   * kernels are unavailable (the caller then computes the same in JavaScript).
   */
  private addWithKernels(data: Float32Array, layout: ChannelLayout): boolean {
    const { outer, channels: C, inner } = layout;
    const n = data.length;
    const DATA = 64;
    const SHIFT = DATA + ((n * 4 + 15) & ~15);
    const SUM = SHIFT + C * 8;
    const SQ = SUM + C * 8;
    const MN = SQ + C * 8;
    const MX = MN + ((C * 4 + 15) & ~15);
    const NP = MX + ((C * 4 + 15) & ~15);
    const scratch = scratchKernels(NP + C * 4);
    if (!scratch) return false;
    const { kernels, buffer } = scratch;
    new Float32Array(buffer, DATA, n).set(data);
    new Float64Array(buffer, SHIFT, C).set(this.bShift);
    new Float64Array(buffer, SUM, C).fill(0);
    new Float64Array(buffer, SQ, C).fill(0);
    new Float32Array(buffer, MN, C).fill(Infinity);
    new Float32Array(buffer, MX, C).fill(-Infinity);
    new Int32Array(buffer, NP, C).fill(0);
    if (inner === 1) kernels.chan_last(DATA, outer, C, SHIFT, SUM, SQ, MN, MX, NP);
    else kernels.chan_runs(DATA, outer, C, inner, SHIFT, SUM, SQ, MN, MX, NP);
    this.bSum.set(new Float64Array(buffer, SUM, C));
    this.bSq.set(new Float64Array(buffer, SQ, C));
    const mn = new Float32Array(buffer, MN, C);
    const mx = new Float32Array(buffer, MX, C);
    const np = new Int32Array(buffer, NP, C);
    for (let c = 0; c < C; c++) {
      if (mn[c] < this.min[c]) this.min[c] = mn[c];
      if (mx[c] > this.max[c]) this.max[c] = mx[c];
      this.nonPositive[c] += np[c];
    }
    return true;
  }

  /**
   * Adds one block already reduced per channel (inside onnxruntime, probe-reduce.ts): `count` values per
   * channel with their mean, population variance, min, max and number of positive values. A channel whose min
   * equals its max is exactly constant in the block: its mean is that value and it has no spread.
   */
  addMoments(count: number, r: { mean: ArrayLike<number>; variance: ArrayLike<number>; min: ArrayLike<number>; max: ArrayLike<number>; positive: ArrayLike<number> }): void {
    const C = this.channels;
    for (const [k, v] of Object.entries(r)) if ((v as ArrayLike<number>).length !== C) throw new Error(`channel statistics: reduced ${k} has ${(v as ArrayLike<number>).length} channels, expected ${C}`);
    if (count === 0) return;
    const na = this.count;
    for (let c = 0; c < C; c++) {
      const lo = r.min[c];
      const hi = r.max[c];
      const flat = lo === hi;
      this.mergeChannel(c, flat ? lo : r.mean[c], flat ? 0 : Math.max(0, r.variance[c]) * count, na, count);
      if (lo < this.min[c]) this.min[c] = lo;
      if (hi > this.max[c]) this.max[c] = hi;
      this.nonPositive[c] += count - r.positive[c];
    }
    this.count = na + count;
  }

  /** merges another aggregate of the same channels (e.g. from another worker) into this one */
  merge(other: ChannelStats): void {
    if (other.channels !== this.channels) throw new Error('channel statistics: cannot merge different channel counts');
    const na = this.count;
    const nb = other.count;
    if (nb === 0) return;
    for (let c = 0; c < this.channels; c++) {
      this.mergeChannel(c, other.mean[c], other.m2[c], na, nb);
      this.min[c] = Math.min(this.min[c], other.min[c]);
      this.max[c] = Math.max(this.max[c], other.max[c]);
      this.nonPositive[c] += other.nonPositive[c];
    }
    this.count = na + nb;
  }

  /** population variance per channel */
  variance(): Float64Array {
    const out = new Float64Array(this.channels);
    if (this.count > 0) for (let c = 0; c < this.channels; c++) out[c] = this.m2[c] / this.count;
    return out;
  }

  /** fraction of values <= 0 per channel */
  apoz(): Float64Array {
    const out = new Float64Array(this.channels);
    if (this.count > 0) for (let c = 0; c < this.channels; c++) out[c] = this.nonPositive[c] / this.count;
    return out;
  }

  /** mean and population variance over every value of every channel */
  total(): { mean: number; variance: number; count: number } {
    let agg: ChannelAggregate = { count: 0, mean: 0, m2: 0 };
    for (let c = 0; c < this.channels; c++) agg = mergeMoments(agg, { count: this.count, mean: this.mean[c], m2: this.m2[c] });
    return { mean: agg.mean, variance: agg.count > 0 ? agg.m2 / agg.count : 0, count: agg.count };
  }
}

/**
 * The per-layer probe report of streamed statistics: dead = never positive (or APoZ >= threshold when one is
 * set), constant = the same value on every probe and not dead.
 */
export function summarizeChannels(
  stats: ChannelStats | undefined,
  threshold: number,
  where: { name: string; op: string; output: string; shape: number[] | undefined; channelAxis: number },
): ProbeLayerReport {
  const s = stats ?? new ChannelStats(0);
  const C = s.channels;
  const apoz = s.apoz();
  const variance = s.variance();
  const dead: number[] = [];
  const constant: number[] = [];
  const constantValues: number[] = [];
  for (let c = 0; c < C; c++) {
    const isDead = s.count > 0 && (threshold === 1 ? s.max[c] <= 0 : apoz[c] >= threshold);
    if (isDead) dead.push(c);
    else if (s.count > 0 && s.min[c] === s.max[c]) {
      constant.push(c);
      constantValues.push(s.min[c]);
    }
  }
  const total = s.total();
  return {
    name: where.name,
    op: where.op,
    output: where.output,
    shape: where.shape ?? [],
    channel_axis: where.channelAxis,
    channels: C,
    dead,
    constant,
    constant_values: constantValues,
    apoz: Array.from(apoz),
    mean: Array.from(s.mean),
    var: Array.from(variance),
    max: Array.from(s.max),
    min: Array.from(s.min),
    layer_mean: total.mean,
    layer_var: total.variance,
    count: s.count,
  };
}
