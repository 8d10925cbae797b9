/**
 * inspect: statistics against numpy (test/fixtures/stats/make_stats.py), MACs and shapes against a hand
 * calculation, shape inference against the output shapes in ONNX's own backend test data.
 */
import { strict as assert } from 'node:assert';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { inspect, inspectAsync, loadModel } from '../../src/core/api';
import { statsParallel } from '../../src/core/analysis/parallel-stats';
import { weightStats } from '../../src/core/analysis/stats';
import { allocateModelMemory } from '../../src/core/analysis/wasm-kernels';
import { buildGraphView } from '../../src/core/formats/onnx/graph';
import { constantTensors } from '../../src/core/formats/onnx/model';
import { inferShapes } from '../../src/core/formats/onnx/shapes';
import { OnnxModel } from '../../src/core/formats/onnx/model';
import { loadDataSet } from '../helpers/ort';

const ROOT = path.join(__dirname, '..', '..');
const FOLD = path.join(ROOT, 'test', 'fixtures', 'onnx-fold');

interface Expected {
  params: number;
  tensors: Record<string, { count: number; mean: number; std: number; min: number; max: number; zero_fraction: number; histogram: number[]; channel_l2: number[] | null }>;
}
const expected = JSON.parse(readFileSync(path.join(ROOT, 'test', 'fixtures', 'stats', 'expected.json'), 'utf8')) as Record<string, Expected>;

const close = (a: number, b: number, tol: number, what: string) => assert.ok(Math.abs(a - b) <= tol * Math.max(1, Math.abs(b)), `${what}: ${a} vs ${b}`);

describe('inspect: weight statistics match numpy', () => {
  for (const [name, exp] of Object.entries(expected)) {
    it(name, async () => {
      const report = inspect(await loadModel(path.join(FOLD, name, 'model.onnx')));
      assert.equal(report.totals.params, exp.params, 'total params');
      const seen = new Set<string>();
      for (const layer of report.layers) {
        for (const w of layer.weights) {
          const e = exp.tensors[w.name];
          if (!e) continue;
          seen.add(w.name);
          const s = w.stats!;
          assert.equal(s.count, e.count);
          close(s.mean, e.mean, 1e-6, `${w.name} mean`);
          close(s.std, e.std, 1e-6, `${w.name} std`);
          assert.equal(s.min, e.min, `${w.name} min`);
          assert.equal(s.max, e.max, `${w.name} max`);
          close(s.zero_fraction, e.zero_fraction, 1e-12, `${w.name} zeros`);
          // numpy puts values on an inner bin edge into the upper bin, as we do; float rounding may move one value
          const diff = s.histogram.counts.reduce((acc, c, k) => acc + Math.abs(c - e.histogram[k]), 0);
          assert.ok(diff <= 2, `${w.name} histogram ${s.histogram.counts} vs ${e.histogram}`);
          if (e.channel_l2) {
            assert.ok(s.channel_l2, `${w.name} has channel norms`);
            assert.equal(s.channel_l2.length, e.channel_l2.length, `${w.name} channels`);
            s.channel_l2.forEach((v, c) => close(v, e.channel_l2![c], 1e-5, `${w.name} L2[${c}]`));
          }
        }
      }
      assert.equal(seen.size, Object.keys(exp.tensors).length, 'every tensor numpy saw is reported');
    });
  }
});

describe('inspect: shapes, MACs, canonical ops', () => {
  it('conv_bn_relu: hand-computed shapes and MACs', async () => {
    // Conv(3->8, 3x3, pad 1) on 1x3x8x8, BN, ReLU, Conv(8->6, 3x3, stride 2, pad 1), BN
    const r = inspect(await loadModel(path.join(FOLD, 'conv_bn_relu', 'model.onnx')));
    assert.deepEqual(r.layers.map((l) => l.op), ['Conv', 'BatchNorm', 'Relu', 'Conv', 'BatchNorm']);
    assert.deepEqual(r.layers.map((l) => l.output_shape), [[1, 8, 8, 8], [1, 8, 8, 8], [1, 8, 8, 8], [1, 6, 4, 4], [1, 6, 4, 4]]);
    assert.deepEqual(r.layers.map((l) => l.macs), [8 * 8 * 8 * 3 * 9, 512, 0, 6 * 4 * 4 * 8 * 9, 96]);
    assert.equal(r.totals.macs, 13824 + 512 + 6912 + 96);
    assert.equal(r.layers[1].batchnorm?.channels, 8);
    assert.deepEqual(r.layers[0].weights.map((w) => [w.role, w.channel_axis]), [['kernel', 0], ['bias', 0]]);
    assert.deepEqual(r.layers[1].weights.map((w) => w.role), ['gamma', 'beta', 'mean', 'variance']);
  });

  it('grouped convs: depthwise is recognised', async () => {
    const r = inspect(await loadModel(path.join(FOLD, 'grouped_conv_bn', 'model.onnx')));
    assert.deepEqual(r.layers.filter((l) => l.op === 'Conv' || l.op === 'DepthwiseConv').map((l) => l.op), ['Conv', 'DepthwiseConv', 'DepthwiseConv']);
  });

  it('ConvTranspose kernels report output channels on axis 1, per group', async () => {
    const r = inspect(await loadModel(path.join(FOLD, 'convtranspose_bn', 'model.onnx')));
    const ct = r.layers.filter((l) => l.op === 'ConvTranspose');
    assert.equal(ct[0].weights[0].channel_axis, 1);
    assert.equal(ct[0].weights[0].stats?.channel_l2?.length, 6, 'ConvTranspose(4->6, groups=2) has 6 output channels');
  });

  it('PaddleOCR classifier: real model with weights in Constant nodes', async () => {
    const file = path.join(ROOT, 'node_modules', '@gutenye', 'ocr-models', 'assets', 'ch_ppocr_mobile_v2.0_cls_infer.onnx');
    const r = inspect(await loadModel(file), { dims: { 'p2o.DynamicDimension.0': 1, 'p2o.DynamicDimension.1': 48, 'p2o.DynamicDimension.2': 192 } });
    assert.equal(r.format, 'onnx');
    assert.equal(r.layers.filter((l) => l.op === 'BatchNorm').length, 35);
    assert.ok(r.layers.every((l) => l.op !== 'Constant'), 'Constant nodes are data, not layers');
    const convs = r.layers.filter((l) => l.op === 'Conv' || l.op === 'DepthwiseConv');
    assert.ok(convs.every((l) => l.weights.some((w) => w.role === 'kernel' && w.source === 'constant')));
    assert.ok(convs.every((l) => l.output_shape && !l.output_shape.includes(null)), 'conv shapes are known at 48x192');
    assert.ok(r.totals.macs !== null && r.totals.macs > 0);
    assert.equal(r.model.file_bytes, 578966);
  });
});

describe('shape inference vs ONNX backend test data', () => {
  it('every inferred output shape equals the expected output tensor shape', async () => {
    const root = path.join(ROOT, '.cache', 'onnx-testdata', 'node');
    assert.ok(existsSync(root), 'ONNX test data missing: run bash test/setup/onnx-testdata.sh');
    let compared = 0;
    let unknown = 0;
    const wrong: string[] = [];
    for (const name of readdirSync(root)) {
      const dir = path.join(root, name);
      const dataDir = path.join(dir, 'test_data_set_0');
      if (!existsSync(dataDir) || !existsSync(path.join(dir, 'model.onnx'))) continue;
      let model: OnnxModel;
      try {
        model = (await loadModel(path.join(dir, 'model.onnx'))) as OnnxModel;
      } catch {
        continue;
      }
      const g = model.graph;
      if (g.node.length !== 1) continue;
      const data = loadDataSet(dataDir);
      // the file declares its output shapes: hide them, or the fallback to declared shapes would answer
      const bare = { ...g, output: g.output.map((o) => ({ ...o, type: undefined })), valueInfo: [] };
      const shapes = inferShapes(bare, constantTensors(bare), model.external);
      g.output.forEach((o, k) => {
        const exp = data.outputs[k];
        if (!exp) return;
        const got = shapes.get(o.name ?? '');
        if (!got || got.includes(null)) {
          unknown++;
          return;
        }
        compared++;
        if (JSON.stringify(got) !== JSON.stringify(exp.dims)) wrong.push(`${name}: ${JSON.stringify(got)} != ${JSON.stringify(exp.dims)}`);
      });
    }
    assert.deepEqual(wrong, [], 'wrong shapes are guesses; unknown must be null');
    assert.ok(compared > 300, `compared ${compared} (unknown ${unknown})`);
  });
});

describe('statistics on two cores', () => {
  it('the worker computes exactly what the calling thread computes', async () => {
    const model = (await loadModel(path.join(FOLD, 'fcn_tiny', 'model.onnx'))) as OnnxModel;
    const view = buildGraphView(model);
    const weights = view.layers.flatMap((l) => l.weights);
    const jobs = weights.map((w) => ({ shape: w.shape, channelAxis: w.channelAxis, groups: w.groups, count: w.shape.reduce((p, v) => p * v, 1), read: () => w.read(), peek: () => w.peek() }));
    const parallel = await statsParallel(jobs, 0);
    const serial = weights.map((w) => weightStats(w.read(), w.shape, w.channelAxis, w.groups));
    assert.deepEqual(parallel, serial);
    // the same tensors from shared memory at an unaligned offset: the worker and the caller share one queue
    const sharedJobs = weights.map((w) => {
      const data = w.read();
      const sab = new SharedArrayBuffer(data.byteLength + 1);
      new Uint8Array(sab, 1).set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
      return { ...jobs[weights.indexOf(w)], shared: () => ({ buffer: sab, byteOffset: 1, length: data.length }) };
    });
    assert.deepEqual(await statsParallel(sharedJobs, 0), serial);
    // in one kernel memory (as large ONNX files are read), unaligned, with a tensor the kernels decline (NaN):
    // both threads run the WebAssembly kernels; sums may differ from the serial JavaScript in the last bits
    const withNaNs = new Float32Array([3, NaN, -1, 0.5]);
    const all = [...weights.map((w) => w.read()), withNaNs];
    const mem = allocateModelMemory(all.reduce((n, d) => n + d.byteLength + 3, 0))!;
    let at = 0;
    const kernelJobs = all.map((data, i) => {
      at += 1 + (i % 3);
      const off = at;
      mem.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), off);
      at += data.byteLength;
      const shape = i < weights.length ? weights[i].shape : [4];
      return { shape, channelAxis: i < weights.length ? weights[i].channelAxis : null, groups: i < weights.length ? weights[i].groups : 1, count: data.length, read: () => data.slice(), peek: () => data, shared: () => ({ buffer: mem.buffer as SharedArrayBuffer, byteOffset: mem.byteOffset + off, length: data.length }) };
    });
    const viaKernels = await statsParallel(kernelJobs, 0);
    const reference = [...serial, weightStats(withNaNs, [4], null)];
    viaKernels.forEach((k, i) => {
      const r = reference[i];
      assert.deepEqual([k.count, k.min, k.max, k.zero_fraction, k.near_zero_fraction, k.non_finite, k.histogram], [r.count, r.min, r.max, r.zero_fraction, r.near_zero_fraction, r.non_finite, r.histogram], `tensor ${i}`);
      for (const [a, b] of [[k.mean, r.mean], [k.std, r.std], ...(r.channel_l2 ?? []).map((v, c) => [k.channel_l2![c], v])]) assert.ok(Math.abs(a - b) <= 1e-12 * Math.max(1, Math.abs(b)), `tensor ${i}: ${a} vs ${b}`);
    });
    const withNaN = new Float32Array([1, NaN, -2, Infinity, 0]);
    const [s] = await statsParallel([{ shape: [5], channelAxis: null, groups: 1, count: 5, read: () => withNaN.slice(), peek: () => withNaN }], 0);
    assert.deepEqual([s.count, s.min, s.max, s.mean, s.zero_fraction, s.non_finite], [5, -2, 1, -1 / 3, 0.2, 2], 'non-finite values are counted and left out');
  });

  it('inspectAsync reports what inspect reports', async () => {
    const model = await loadModel(path.join(FOLD, 'convtranspose_bn', 'model.onnx'));
    assert.deepEqual(await inspectAsync(model), inspect(model));
  });
});
