/**
 * Activation probing. Oracles: float64 two-pass statistics over the whole data in the test (streaming
 * statistics), the units made dead / constant by construction in PyTorch (test/fixtures/onnx-prune/
 * make_fixtures.py asserts them on 256 random inputs in PyTorch), onnxruntime run plainly with the tensor as a
 * graph output (the probe's numbers), and PaddleOCR's real classifier.
 */
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import * as ort from 'onnxruntime-node';
import { loadModel, loadModelBytes } from '../../src/core/api';
import { ACTIVATION_OPS, compareOnInputs, feedInputs, probeOnnx, runtimeBytesWithOutputs } from '../../src/core/analysis/probe';
import { verifyOnnx } from '../../src/core/engines/onnxruntime';
import { encodeModel } from '../../src/core/formats/onnx/codec';
import { openProbeInputs } from '../../src/core/analysis/probe-inputs';
import { ChannelStats, channelLayout, KERNEL_MIN_VALUES } from '../../src/core/analysis/streaming-stats';
import { buildGraphView } from '../../src/core/formats/onnx/graph';
import type { OnnxModel } from '../../src/core/formats/onnx/model';
import { naiveChannelStats as naive } from '../helpers/naive-stats';
import { Rng } from '../../src/core/util/random';
import { GraphBuilder } from '../helpers/onnx-build';

const CNN = path.join(__dirname, '..', 'fixtures', 'onnx-prune', 'cnn', 'model.onnx');
const PADDLE = path.join(__dirname, '..', '..', 'node_modules', '@gutenye', 'ocr-models', 'assets', 'ch_ppocr_mobile_v2.0_cls_infer.onnx');
const IMAGES = path.join(__dirname, '..', 'fixtures', 'onnx-prune', 'inputs', 'images');
const PADDLE_DIMS = { 'p2o.DynamicDimension.0': 1, 'p2o.DynamicDimension.1': 48, 'p2o.DynamicDimension.2': 192 };

/** float64 two-pass reference over all values, per channel */
function close(a: number, b: number, rel: number): boolean {
  return Math.abs(a - b) <= rel * Math.max(1, Math.abs(b));
}

describe('streaming statistics', () => {
  it('Chan-merged blocks equal float64 two-pass statistics, NCHW and channels-last, any block split', () => {
    const rng = new Rng(4);
    for (const [dims, axis] of [
      [[6, 5, 3, 4], 1],
      [[7, 9], 1],
      [[4, 3, 8], 2],
      // blocks of >= KERNEL_MIN_VALUES go through the WebAssembly kernels: runs with tails, channels-last with
      // C % 4 = 0 and 3
      [[16, 32, 9, 9], 1],
      [[4, 3, 37, 37], 1],
      [[64, 100], 1],
      [[50, 103], 1],
      [[2, 40, 103], 2],
    ] as [number[], number][]) {
      const blocks: Float32Array[] = [];
      for (let b = 0; b < 5; b++) {
        // large offsets per channel: the naive sum-of-squares formula would cancel badly here
        const a = new Float32Array(dims.reduce((p, v) => p * v, 1));
        const { channels, inner } = channelLayout(dims, axis);
        for (let i = 0; i < a.length; i++) a[i] = 1e4 * (Math.floor(i / inner) % channels) + rng.normal() - (b === 2 ? 3 : 0);
        blocks.push(a);
      }
      const ref = naive(blocks, dims, axis);
      const s = new ChannelStats(dims[axis]);
      for (const a of blocks) s.add(a, channelLayout(dims, axis));
      // the same data merged from two halves
      const h1 = new ChannelStats(dims[axis]);
      const h2 = new ChannelStats(dims[axis]);
      blocks.slice(0, 2).forEach((a) => h1.add(a, channelLayout(dims, axis)));
      blocks.slice(2).forEach((a) => h2.add(a, channelLayout(dims, axis)));
      h1.merge(h2);
      for (const st of [s, h1]) {
        const v = st.variance();
        const z = st.apoz();
        for (let c = 0; c < dims[axis]; c++) {
          assert.ok(close(st.mean[c], ref.mean[c], 1e-12), `mean ${st.mean[c]} vs ${ref.mean[c]}`);
          assert.ok(close(v[c], ref.variance[c], 1e-9), `var ${v[c]} vs ${ref.variance[c]}`);
          assert.equal(st.min[c], ref.min[c]);
          assert.equal(st.max[c], ref.max[c]);
          assert.equal(z[c], ref.apoz[c]);
        }
      }
    }
  });
});

describe('streaming statistics: WebAssembly kernels', () => {
  it("give the JavaScript path's numbers, NaN left out of min / max / APoZ alike", () => {
    const rng = new Rng(9);
    for (const [dims, axis] of [
      [[8, 16, 7, 9], 1],
      [[70, 61], 1],
      [[3, 1, 4099], 2],
    ] as [number[], number][]) {
      const n = dims.reduce((p, v) => p * v, 1);
      assert.ok(n >= KERNEL_MIN_VALUES);
      const a = new Float32Array(n);
      for (let i = 0; i < n; i++) a[i] = i % 11 === 0 ? 0 : i % 97 === 5 ? NaN : rng.normal() * 2 + 0.5;
      const viaKernels = new ChannelStats(dims[axis]);
      const viaJs = new ChannelStats(dims[axis]);
      viaKernels.add(a, channelLayout(dims, axis));
      viaJs.add(Float64Array.from(a), channelLayout(dims, axis)); // not a Float32Array: the JavaScript loop
      viaKernels.add(a.map((v) => v * 0.5 - 1), channelLayout(dims, axis));
      viaJs.add(Float64Array.from(a, (v) => Math.fround(v * 0.5 - 1)), channelLayout(dims, axis));
      for (let c = 0; c < dims[axis]; c++) {
        const same = (x: number, y: number) => (Number.isNaN(x) && Number.isNaN(y)) || close(x, y, 1e-12);
        assert.ok(same(viaKernels.mean[c], viaJs.mean[c]), `mean[${c}] ${viaKernels.mean[c]} vs ${viaJs.mean[c]}`);
        assert.ok(same(viaKernels.m2[c], viaJs.m2[c]), `m2[${c}]`);
        assert.equal(viaKernels.min[c], viaJs.min[c]);
        assert.equal(viaKernels.max[c], viaJs.max[c]);
        assert.equal(viaKernels.nonPositive[c], viaJs.nonPositive[c]);
      }
    }
  });
});

describe('probeOnnx: statistics inside onnxruntime across opsets', () => {
  // Conv(3->5) -> Relu and -> LeakyRelu (signed: positive count = (sum + L1) / 2 of Sign); channel 2 dead
  // (bias -50), channel 4 constant (zero kernel, bias 0.75); the copy path (float64 here) is the reference
  function model(opset: number): OnnxModel {
    const rnd = new Rng(8);
    const w = Float32Array.from({ length: 5 * 3 * 9 }, (_, i) => (Math.floor(i / 27) === 4 ? 0 : rnd.normal() * 0.5));
    const g = new GraphBuilder()
      .input('x', ['N', 3, 6, 7])
      .init('w', [5, 3, 3, 3], w)
      .init('b', [5], [0.1, -0.2, -50, 0.3, 0.75])
      .node('Conv', ['x', 'w', 'b'], ['y'], { pads: { ints: [1, 1, 1, 1] } })
      .node('Relu', ['y'], ['r'])
      .node('LeakyRelu', ['y'], ['l'], { alpha: { f: 0.1 } })
      .node('Add', ['r', 'l'], ['out'])
      .output('out');
    return g.model(opset, opset >= 21 ? 10 : opset >= 18 ? 9 : opset >= 14 ? 8 : 7);
  }
  for (const opset of [9, 13, 14, 17, 18, 21]) {
    it(`opset ${opset}: the same dead / constant units, APoZ and extremes as the copy path; moments to float32 rounding`, async () => {
      const m = model(opset);
      const a = await probeOnnx(m, { kind: 'random', seed: 5 }, { samples: 20, batchSize: 8, dims: { N: 8 } });
      const b = await probeOnnx(m, { kind: 'random', seed: 5 }, { samples: 20, batchSize: 8, dims: { N: 8 }, inGraph: false });
      assert.match(a.notes.join('\n'), /2 of 2 probed tensors reduced inside onnxruntime/);
      assert.deepEqual(a.layers.map((l) => l.op), ['Relu', 'LeakyRelu']);
      for (let k = 0; k < 2; k++) {
        const [x, y] = [a.layers[k], b.layers[k]];
        assert.deepEqual([x.dead, x.constant, x.constant_values, x.apoz, x.max, x.min, x.shape, x.count], [y.dead, y.constant, y.constant_values, y.apoz, y.max, y.min, y.shape, y.count], x.name);
        for (let c = 0; c < x.channels; c++) {
          const scale = Math.max(Math.abs(y.mean[c]), Math.sqrt(y.var[c]), 1e-30);
          assert.ok(Math.abs(x.mean[c] - y.mean[c]) <= 1e-6 * scale, `${x.name} mean ${c}`);
          assert.ok(Math.abs(x.var[c] - y.var[c]) <= 1e-5 * y.var[c], `${x.name} var ${c}: ${x.var[c]} vs ${y.var[c]}`);
        }
      }
      assert.deepEqual(a.layers[0].dead, [2]);
      assert.deepEqual(a.layers[0].constant, [4]);
      assert.ok(a.layers[1].apoz[0] > 0 && a.layers[1].apoz[0] < 1, 'the leaky channel is sometimes negative');
    });
  }
});

describe('probeOnnx: in-graph statistics that cannot run fall back to copying', () => {
  it('a symbolic channel count (1 by default) that the inputs contradict: the copy path, with a note', async () => {
    // Relu of the input itself: its channels are the symbolic C, resolved to 1 statically; the arrays have 4
    const m = new GraphBuilder().input('x', ['N', 'C', 3, 3]).node('Relu', ['x'], ['r']).output('r').model(13);
    const data = Float32Array.from({ length: 2 * 4 * 9 }, (_, i) => (i % 9) - 4 + (Math.floor(i / 9) % 4 === 2 ? -10 : 0));
    const r = await probeOnnx(m, { kind: 'arrays', arrays: { x: { dtype: 'float32', dims: [2, 4, 3, 3], data } } }, { samples: 2, batchSize: 2 });
    assert.match(r.notes.join('\n'), /copied out of onnxruntime for their statistics \(its in-graph statistics failed to run/);
    assert.equal(r.layers[0].channels, 4);
    assert.deepEqual(r.layers[0].dead, [2]);
    assert.deepEqual(r.layers[0].apoz, [5 / 9, 5 / 9, 1, 5 / 9]);
  });

  it('2^24 or more values per channel in one batch (more than float32 counts exactly): the copy path', async () => {
    const m = new GraphBuilder().input('x', ['N', 1, 'H', 'W']).node('Relu', ['x'], ['r']).output('r').model(13);
    const dims = [1, 1, 4096, 4097];
    const n = dims.reduce((a, b) => a * b, 1);
    assert.ok(n >= 2 ** 24);
    const data = new Float32Array(n);
    for (let i = 0; i < n; i++) data[i] = i % 3 === 0 ? 1 : -1;
    const r = await probeOnnx(m, { kind: 'arrays', arrays: { x: { dtype: 'float32', dims, data } } }, { samples: 1, batchSize: 1 });
    assert.match(r.notes.join('\n'), /too many to count exactly in float32/);
    assert.equal(r.layers[0].apoz[0], (n - Math.ceil(n / 3)) / n);
    assert.equal(r.layers[0].count, n);
  });

  it('a NaN or an infinity in a later batch (a NaN would pass for a constant in the graph): every batch again on the copy path', async () => {
    const m = new GraphBuilder().input('x', ['N', 2, 2, 2]).node('Relu', ['x'], ['r']).output('r').model(13);
    const base = [1, -1, 2, 0, -1, -1, -1, -1];
    for (const odd of [NaN, Infinity]) {
      const data = Float32Array.from([...base, ...base, ...base.map((v, i) => (i === 5 ? odd : v))]);
      const src = { kind: 'arrays' as const, arrays: { x: { dtype: 'float32' as const, dims: [3, 2, 2, 2], data } } };
      const progress: number[] = [];
      const r = await probeOnnx(m, src, { samples: 3, batchSize: 1, onProgress: (d) => progress.push(d) });
      const copied = await probeOnnx(m, src, { samples: 3, batchSize: 1, inGraph: false });
      assert.match(r.notes.join('\n'), /activations copied out of onnxruntime for their statistics \('r' has non-finite values\)/);
      assert.deepEqual(progress, [1, 2, 1, 2, 3]);
      assert.equal(r.samples, 3);
      const [a, b] = [r.layers[0], copied.layers[0]];
      assert.deepEqual([a.dead, a.constant, a.apoz, a.max, a.min, a.mean, a.count], [b.dead, b.constant, b.apoz, b.max, b.min, b.mean, b.count]);
      assert.ok(!Number.isFinite(a.mean[1]) && a.constant.length === 0, 'channel 1 is not reported with a clean mean of 0');
    }
  });

  it('float16 activations (the statistics nodes take float32): the copy path, values decoded from float16', async () => {
    const m = new GraphBuilder().input('x', ['N', 2, 2, 2], 10).node('Relu', ['x'], ['r']).output('r').model(13);
    const half = (v: number) => (v === 0 ? 0 : v === 1 ? 0x3c00 : v === -1 ? 0xbc00 : v === 2 ? 0x4000 : NaN);
    const values = [1, -1, 2, 0, -1, -1, -1, -1];
    const r = await probeOnnx(m, { kind: 'arrays', arrays: { x: { dtype: 'float16', dims: [1, 2, 2, 2], data: Uint16Array.from(values, half) } } }, { samples: 1, batchSize: 1 });
    assert.match(r.notes.join('\n'), /copied out of onnxruntime for their statistics/);
    assert.deepEqual(r.layers[0].dead, [1]);
    assert.deepEqual(r.layers[0].max, [2, 0]);
    assert.deepEqual(r.layers[0].mean, [0.75, 0]);
  });
});

describe('onnxruntime bytes of a model read from a file (its bytes reused, the probe graph appended)', () => {
  it('a 1.2 MB file (read into shared memory): probe and verification run, the same statistics as the re-encoded model', async () => {
    const rnd = new Rng(12);
    const m = new GraphBuilder()
      .input('x', ['N', 4, 8, 8])
      .init('w', [8, 4, 3, 3], Float32Array.from({ length: 288 }, () => rnd.normal() * 0.4))
      .init('fc', [512, 600], Float32Array.from({ length: 512 * 600 }, () => rnd.normal() * 0.05))
      .node('Conv', ['x', 'w'], ['c'], { pads: { ints: [1, 1, 1, 1] } })
      .node('Relu', ['c'], ['r'])
      .node('Flatten', ['r'], ['f'])
      .node('MatMul', ['f', 'fc'], ['h'])
      .node('Relu', ['h'], ['out'])
      .output('out')
      .model(13);
    const dir = mkdtempSync(path.join(os.tmpdir(), 'ms-runtime-bytes-'));
    try {
      const file = path.join(dir, 'big.onnx');
      writeFileSync(file, encodeModel(m.proto));
      const loaded = (await loadModel(file)) as OnnxModel;
      assert.ok(loaded.source && loaded.source.length > 1 << 20 && loaded.source.buffer instanceof SharedArrayBuffer);
      const src = { kind: 'random' as const, seed: 4 };
      const appended = await probeOnnx(loaded, src, { samples: 12, batchSize: 4 });
      const encoded = await probeOnnx(loaded.derive(loaded.proto), src, { samples: 12, batchSize: 4 });
      assert.match(appended.notes.join('\n'), /1 of 2 probed tensors reduced inside onnxruntime/);
      assert.deepEqual(appended.layers, encoded.layers);
      const v = await compareOnInputs(loaded, loaded.derive(loaded.proto), src, { samples: 4 });
      assert.equal(v.max_abs_error, 0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('onnxruntime bytes with extra outputs', () => {
  it('an output the graph already has, or one named twice, is added once', async () => {
    const m = new GraphBuilder().input('x', ['N', 2]).node('Relu', ['x'], ['r']).node('Neg', ['r'], ['y']).output('y').model(13);
    // encoded, and the loaded bytes with the outputs appended
    for (const model of [m, loadModelBytes(encodeModel(m.proto), process.cwd()) as OnnxModel]) {
      const s = await ort.InferenceSession.create(runtimeBytesWithOutputs(model, ['y', 'r', 'r']));
      assert.deepEqual(s.outputNames, ['y', 'r']);
      await s.release();
    }
  });
});

describe('comparing two models on the same inputs', () => {
  it('refuses a rewritten model without every output of the original, and one onnxruntime cannot load', async () => {
    const two = new GraphBuilder().input('x', ['N', 2]).node('Relu', ['x'], ['y']).node('Neg', ['x'], ['z']).output('y').output('z').model(13);
    const one = new GraphBuilder().input('x', ['N', 2]).node('Relu', ['x'], ['y']).output('y').model(13);
    const broken = new GraphBuilder().input('x', ['N', 2]).node('NoSuchOp', ['x'], ['y']).output('y').output('z').model(13);
    const src = { kind: 'random' as const, seed: 1 };
    assert.equal((await compareOnInputs(two, two, src, { samples: 2 })).max_abs_error, 0);
    await assert.rejects(compareOnInputs(two, one, src, { samples: 2 }), /the rewritten model lacks output\(s\) z/);
    await assert.rejects(compareOnInputs(two, broken, src, { samples: 2 }), /onnxruntime cannot load the rewritten model/);
    await assert.rejects(verifyOnnx({ bytes: two.runtimeBytes(), inputs: feedInputs(two) }, { bytes: one.runtimeBytes(), inputs: feedInputs(one) }), /the rewritten model lacks output\(s\) z/);
  });
});

describe('probeOnnx on the PyTorch CNN with dead / constant units by construction', () => {
  it('finds exactly the constructed dead and constant channels; mean/var match the raw onnxruntime outputs', async () => {
    const model = (await loadModel(CNN)) as OnnxModel;
    const report = await probeOnnx(model, { kind: 'random', seed: 3 }, { samples: 48, batchSize: 16 });
    assert.equal(report.samples, 48);
    // the 9 ReLUs of the PyTorch forward, in order
    assert.deepEqual(report.layers.map((l) => l.op), Array(9).fill('Relu'));
    const byName = new Map(report.layers.map((l) => [l.name, l]));
    const expectDead: Record<string, number[]> = { '/Relu': [3, 7], '/Relu_1': [5], '/Relu_2': [3], '/Relu_3': [1], '/Relu_4': [], '/Relu_6': [], '/Relu_7': [9], '/Relu_8': [0, 5] };
    const expectConst: Record<string, [number, number][]> = { '/Relu_4': [[2, 0.5]], '/Relu_6': [[4, 0.7]], '/Relu_7': [[6, 0.3]], '/Relu_8': [[11, 0.25]] };
    for (const [name, dead] of Object.entries(expectDead)) {
      const l = byName.get(name)!;
      assert.deepEqual(l.dead, dead, name);
      for (const c of dead) assert.equal(l.apoz[c], 1);
      const consts = expectConst[name] ?? [];
      assert.deepEqual(l.constant, consts.map((x) => x[0]), `${name} constant`);
      consts.forEach(([, v], k) => assert.ok(Math.abs(l.constant_values[k] - v) < 1e-6, `${name} constant value`));
    }
    // depthwise channel 1 sees a zero input: its output is a constant (its bias through BN and ReLU)
    const dw = byName.get('/Relu_5')!;
    assert.deepEqual([...dw.dead, ...dw.constant], [1]);
    assert.equal(byName.get('/Relu')!.channel_axis, 1);
    assert.deepEqual(byName.get('/Relu_8')!.shape, [16, 32]);

    // the raw tensors from a plain onnxruntime run on the same inputs, summarized in float64 by the test
    const relu2 = byName.get('/Relu_2')!;
    const session = await ort.InferenceSession.create(runtimeBytesWithOutputs(model, [relu2.output]));
    const blocks: Float32Array[] = [];
    let dims: number[] = [];
    for (const b of openProbeInputs({ kind: 'random', seed: 3 }, buildGraphView(model).summary.inputs, { samples: 48, batchSize: 16 }).batches()) {
      const r = await session.run({ x: new ort.Tensor('float32', b.feeds.x.data as Float32Array, b.feeds.x.dims) });
      blocks.push(r[relu2.output].data as Float32Array);
      dims = [...r[relu2.output].dims];
    }
    await session.release();
    const ref = naive(blocks, dims, 1);
    const all = blocks.flatMap((b) => Array.from(b));
    const m = all.reduce((s, v) => s + v, 0) / all.length;
    const v = all.reduce((s, x) => s + (x - m) ** 2, 0) / all.length;
    // in-graph (the default): float32 mean / variance inside onnxruntime; copied out: float64 here
    assert.match(report.notes.join('\n'), /8 of 9 probed tensors reduced inside onnxruntime/); // /Relu_8 is [N, 32]: copied
    const copied = await probeOnnx(model, { kind: 'random', seed: 3 }, { samples: 48, batchSize: 16, inGraph: false });
    assert.ok(!copied.notes.some((n) => /inside onnxruntime/.test(n)));
    const relu2Copied = copied.layers.find((l) => l.name === '/Relu_2')!;
    for (const [l, tm, tv] of [[relu2, 1e-6, 1e-5], [relu2Copied, 1e-9, 1e-7]] as const) {
      for (let c = 0; c < l.channels; c++) {
        const scale = Math.max(Math.abs(ref.mean[c]), Math.sqrt(ref.variance[c]));
        assert.ok(Math.abs(l.mean[c] - ref.mean[c]) <= tm * Math.max(scale, 1e-30), `mean ${c}: ${l.mean[c]} vs ${ref.mean[c]}`);
        assert.ok(close(l.var[c], ref.variance[c], tv) && Math.abs(l.var[c] - ref.variance[c]) <= tv * ref.variance[c] + 1e-30, `var ${c}: ${l.var[c]} vs ${ref.variance[c]}`);
        assert.equal(l.max[c], ref.max[c]);
        assert.equal(l.min[c], ref.min[c]);
        assert.equal(l.apoz[c], ref.apoz[c]);
      }
      assert.ok(Math.abs(l.layer_mean - m) <= tm * Math.max(Math.abs(m), Math.sqrt(v)));
      assert.ok(Math.abs(l.layer_var - v) <= tv * v);
    }
    // the same dead and constant units either way
    for (const l of report.layers) {
      const k = copied.layers.find((x) => x.name === l.name)!;
      assert.deepEqual([l.dead, l.constant, l.constant_values], [k.dead, k.constant, k.constant_values], l.name);
    }
  });

  it('an APoZ threshold widens "dead"; extra tensors are probed on request on the axis asked for', async () => {
    const model = (await loadModel(CNN)) as OnnxModel;
    const report = await probeOnnx(model, { kind: 'random', seed: 3 }, { samples: 16, apozThreshold: 0.5, values: [{ name: 'x', axis: 1 }] });
    for (const l of report.layers) assert.deepEqual(l.dead, l.apoz.flatMap((z, c) => (z >= 0.5 ? [c] : [])), l.name);
    assert.equal(report.values?.length, 1);
    assert.equal(report.values![0].channels, 3);
    await assert.rejects(probeOnnx(model, { kind: 'random' }, { values: [{ name: 'nope' }] }), /no tensor named 'nope'/);
  });
});

describe('probeOnnx on PaddleOCR text-direction classifier (real model, image folder)', () => {
  it('every activation layer, from images resized to 48x192, the same statistics for any batch size', async () => {
    const model = (await loadModel(PADDLE)) as OnnxModel;
    const acts = buildGraphView(model, PADDLE_DIMS).layers.filter((l) => ACTIVATION_OPS.has(l.op));
    // 15 Relu, 18 Clip (hard-swish's Relu6 parts), 9 HardSigmoid in the file
    assert.equal(acts.length, 42);
    const src = { kind: 'images' as const, path: IMAGES, normalize: 'symmetric' as const };
    // 2 samples: the two PNGs (sorted before the JPEG, which needs the optional jpeg-js)
    const r1 = await probeOnnx(model, src, { samples: 2, batchSize: 1, dims: PADDLE_DIMS });
    const r2 = await probeOnnx(model, src, { samples: 2, batchSize: 2, dims: PADDLE_DIMS });
    assert.equal(r1.layers.length, 42);
    assert.deepEqual(r1.input_shapes.x, [1, 3, 48, 192]);
    assert.match(r1.source, /48x192/);
    for (let k = 0; k < r1.layers.length; k++) {
      const a = r1.layers[k];
      const b = r2.layers[k];
      assert.equal(a.channels, a.mean.length);
      assert.ok(a.apoz.every((z) => z >= 0 && z <= 1) && a.mean.every(Number.isFinite) && a.var.every((v) => v >= 0), a.name);
      for (let c = 0; c < a.channels; c++) {
        assert.ok(close(a.mean[c], b.mean[c], 1e-6) && close(a.var[c], b.var[c], 1e-5), `${a.name} ${c}`);
        assert.equal(a.apoz[c], b.apoz[c]);
      }
    }
    // HardSigmoid outputs are in [0, 1], Relu6 in [0, 6]
    for (const l of r1.layers) {
      const hi = l.op === 'HardSigmoid' ? 1 : l.op === 'Relu6' ? 6 : Infinity;
      assert.ok(l.max.every((v) => v <= hi) && l.min.every((v) => v >= 0), l.name);
    }
  });
});
