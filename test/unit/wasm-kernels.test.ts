/**
 * The WebAssembly statistics kernels: the committed module is what kernels.wat compiles to; the kernels give the
 * JavaScript reference's statistics (min, max, zeros, near-zero count and histogram exactly; sums to float64
 * rounding) on every layout, alignment and tail length, and numpy's on the fixture models read into a kernel
 * memory; they decline what they do not handle.
 */
import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { inspect, loadModel, loadModelBytesAsync } from '../../src/core/api';
import { weightStats } from '../../src/core/analysis/stats';
import { allocateModelMemory, kernelMemoryOf, kernelWeightStats } from '../../src/core/analysis/wasm-kernels';
import { buildGraphView } from '../../src/core/formats/onnx/graph';
import type { OnnxModel } from '../../src/core/formats/onnx/model';
import type { WeightStats } from '../../src/core/types';
import { compileKernels, kernelsSource } from '../../scripts/build-wasm';

const ROOT = path.join(__dirname, '..', '..');
const FOLD = path.join(ROOT, 'test', 'fixtures', 'onnx-fold');

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

/** `data` copied into a fresh kernel memory at byte offset `shift` (0..3: raw_data is rarely aligned) */
function inKernelMemory(data: Float32Array, shift: number): { buffer: ArrayBufferLike; byteOffset: number } {
  const mem = allocateModelMemory(data.byteLength + 4);
  assert.ok(mem, 'WebAssembly shared memory is available');
  mem.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), shift);
  return { buffer: mem.buffer, byteOffset: mem.byteOffset + shift };
}

function assertSame(a: WeightStats, b: WeightStats, what: string): void {
  const rel = (x: number, y: number) => Math.abs(x - y) / Math.max(1e-300, Math.abs(y));
  assert.equal(a.count, b.count, `${what} count`);
  assert.equal(a.min, b.min, `${what} min`);
  assert.equal(a.max, b.max, `${what} max`);
  assert.equal(a.zero_fraction, b.zero_fraction, `${what} zeros`);
  assert.equal(a.near_zero_fraction, b.near_zero_fraction, `${what} near zero`);
  assert.deepEqual(a.histogram, b.histogram, `${what} histogram`);
  assert.ok(rel(a.mean, b.mean) <= 1e-12 || Math.abs(a.mean - b.mean) <= 1e-15, `${what} mean ${a.mean} vs ${b.mean}`);
  assert.ok(rel(a.std, b.std) <= 1e-12, `${what} std ${a.std} vs ${b.std}`);
  assert.equal(a.channel_l2 === null, b.channel_l2 === null, `${what} channel norms present`);
  b.channel_l2?.forEach((v, c) => assert.ok(rel(a.channel_l2![c], v) <= 1e-12, `${what} L2[${c}] ${a.channel_l2![c]} vs ${v}`));
}

describe('wasm kernels', () => {
  it('the committed module is what scripts/build-wasm.ts makes of kernels.wat', async () => {
    const committed = readFileSync(path.join(ROOT, 'src', 'core', 'analysis', 'kernels-wasm.ts'), 'utf8');
    assert.equal(committed, kernelsSource(await compileKernels()), 'run node --import tsx scripts/build-wasm.ts');
  });

  it('equal the JavaScript reference on every layout, alignment and tail length', () => {
    // a largest value whose near-zero threshold 1e-6 * TOP rounds UP to float32: EDGE is just above it, so
    // |EDGE| <= threshold is false in float64 and must stay false in the kernels' float32 comparison
    let TOP = 1;
    while (!(Math.fround(1e-6 * TOP) > 1e-6 * TOP)) TOP = Math.fround(TOP * 1.37);
    const EDGE = Math.fround(1e-6 * TOP);
    const r = rng(7);
    const cases: [number[], number | null, number][] = [
      [[1], null, 1],
      [[3], null, 1],
      [[17], 0, 1],
      [[64, 3, 3, 3], 0, 1],
      [[8, 3, 5, 5], 0, 1],
      [[300, 7], 1, 1], // MatMul [in, out]: channels last, runs of one value
      [[7, 300], 0, 1],
      [[16, 8, 4, 4], 1, 4], // grouped ConvTranspose: channel = group * 8 + j
      [[6, 2, 3, 3], 1, 3],
      [[5, 4, 3], 2, 1],
      [[1000, 33], null, 1],
    ];
    for (const [shape, axis, groups] of cases) {
      const n = shape.reduce((a, b) => a * b, 1);
      for (const kind of ['normal', 'sparse', 'tiny', 'ties'] as const) {
        const data = new Float32Array(n);
        for (let i = 0; i < n; i++) {
          const u = r();
          if (kind === 'normal') data[i] = (r() - 0.4) * 3;
          else if (kind === 'sparse') data[i] = u < 0.3 ? 0 : u < 0.35 ? -0 : (r() - 0.5) * 1e-3;
          // values around the near-zero threshold (1e-6 * max|v| = 1e-6) and exact bin edges
          else if (kind === 'tiny') data[i] = i === 0 ? TOP : u < 0.5 ? EDGE * (r() < 0.5 ? -1 : 1) : (r() - 0.5) * 4e-6 * TOP;
          else data[i] = Math.round(r() * 8) / 8 - 0.5;
        }
        const ref = weightStats(data, shape, axis, groups);
        for (let shift = 0; shift < 4; shift++) {
          const m = inKernelMemory(data, shift);
          const got = kernelWeightStats(m.buffer, m.byteOffset, n, shape, axis, groups);
          assert.ok(got, `kernels handle ${shape} ${kind}`);
          assertSame(got, ref, `${JSON.stringify(shape)} axis ${axis} groups ${groups} ${kind} shift ${shift}`);
        }
      }
    }
  });

  it('all-equal values land in the middle bin, like numpy', () => {
    const data = new Float32Array(37).fill(0.25);
    const m = inKernelMemory(data, 1);
    const got = kernelWeightStats(m.buffer, m.byteOffset, data.length, [37], null)!;
    assert.equal(got.histogram.counts[16], 37);
    assertSame(got, weightStats(data, [37], null), 'constant');
  });

  it('decline non-finite values, empty tensors, too many channels and plain memory', () => {
    for (const bad of [NaN, Infinity, -Infinity]) {
      const data = new Float32Array(40).fill(1);
      data[13] = bad;
      const m = inKernelMemory(data, 0);
      assert.equal(kernelWeightStats(m.buffer, m.byteOffset, 40, [40], null), null, `declines ${bad}`);
    }
    const m = inKernelMemory(new Float32Array(4), 0);
    assert.equal(kernelWeightStats(m.buffer, m.byteOffset, 0, [0], null), null, 'declines empty');
    const wide = inKernelMemory(new Float32Array(200_000).fill(1), 0);
    assert.equal(kernelWeightStats(wide.buffer, wide.byteOffset, 200_000, [1, 200_000], 1), null, 'declines 200000 channels');
    const plain = new Float32Array(8).fill(2);
    assert.equal(kernelWeightStats(plain.buffer, 0, 8, [8], null), null, 'declines memory that is not a kernel memory');
  });

  it('match numpy on the fixture models read into a kernel memory', async () => {
    type Exp = Record<string, { tensors: Record<string, { count: number; mean: number; std: number; min: number; max: number; zero_fraction: number; histogram: number[]; channel_l2: number[] | null }> }>;
    const expected = JSON.parse(readFileSync(path.join(ROOT, 'test', 'fixtures', 'stats', 'expected.json'), 'utf8')) as Exp;
    let checked = 0;
    for (const [name, exp] of Object.entries(expected)) {
      const file = path.join(FOLD, name, 'model.onnx');
      const raw = readFileSync(file);
      const mem = allocateModelMemory(raw.length)!;
      mem.set(raw);
      const model = (await loadModelBytesAsync(mem, path.dirname(file), 'model.onnx')) as OnnxModel;
      const view = buildGraphView(model);
      for (const l of view.layers) {
        for (const w of l.weights) {
          const e = exp.tensors[w.name];
          const sh = w.shared?.();
          if (!e || !sh) continue;
          assert.ok(kernelMemoryOf(sh.buffer), 'the tensor sits in the kernel memory');
          const s = kernelWeightStats(sh.buffer, sh.byteOffset, sh.length, w.statsShape ?? w.shape, w.channelAxis, w.groups);
          assert.ok(s, `${name}/${w.name}: kernels ran`);
          const close = (a: number, b: number, tol: number, what: string) => assert.ok(Math.abs(a - b) <= tol * Math.max(1, Math.abs(b)), `${name}/${w.name} ${what}: ${a} vs ${b}`);
          assert.equal(s.count, e.count);
          close(s.mean, e.mean, 1e-6, 'mean');
          close(s.std, e.std, 1e-6, 'std');
          assert.equal(s.min, e.min);
          assert.equal(s.max, e.max);
          close(s.zero_fraction, e.zero_fraction, 1e-12, 'zeros');
          const diff = s.histogram.counts.reduce((acc, c, k) => acc + Math.abs(c - e.histogram[k]), 0);
          assert.ok(diff <= 2, `${name}/${w.name} histogram ${s.histogram.counts} vs ${e.histogram}`);
          e.channel_l2?.forEach((v, c) => close(s.channel_l2![c], v, 1e-5, `L2[${c}]`));
          checked++;
        }
      }
      // and inspect on that model reports the same as on the file read the ordinary way
      const a = inspect(model);
      const b = inspect(await loadModel(file));
      assert.deepEqual(
        a.layers.map((l) => l.weights.map((w) => [w.stats?.min, w.stats?.max, w.stats?.histogram.counts])),
        b.layers.map((l) => l.weights.map((w) => [w.stats?.min, w.stats?.max, w.stats?.histogram.counts])),
      );
    }
    assert.ok(checked >= 10, `kernels checked on ${checked} fixture tensors`);
  });
});
