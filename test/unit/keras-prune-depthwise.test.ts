/**
 * Keras 'dead' pruning through a depthwise convolution (MobileNet's expand -> depthwise -> project chain), on a
 * small model built here: Conv2D(6) -> BN -> ReLU -> ZeroPadding2D -> DepthwiseConv2D(3x3) -> BN -> ReLU -> Conv2D
 * 1x1 -> GAP -> Dense. By construction, at the depthwise ReLU: channel 1 is the constant relu(bn2(0.3)) (c1's
 * channel dead, the depthwise bias passes), channel 3 is dead (zero depthwise kernel, negative bias) although
 * c1's channel 3 is alive, channel 4 is dead both ways. All three leave c1, both BatchNorms and the depthwise
 * kernel; channel 1's constant is folded into the 1x1 consumer's bias. Oracle: TF.js running the original and
 * the pruned model (prune's verify); the written file read back.
 */
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadModel, probe, prune, saveModel } from '../../src/core/api';
import { loadH5wasm } from '../../src/core/formats/keras/h5';
import { weightToFloat32, type KerasModel } from '../../src/core/formats/keras/model';
import { conv, inputLayer, kerasModel, layer, rng, WeightList } from '../helpers/keras-build';

let tmp = '';
before(async () => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'ms-keras-dw-'));
  await loadH5wasm();
});
after(() => rmSync(tmp, { recursive: true, force: true }));

const bn = (name: string, input: string) => layer('BatchNormalization', name, [input], { axis: -1, momentum: 0.99, epsilon: 0.001, center: true, scale: true });
const relu = (name: string, input: string) => layer('ReLU', name, [input], { max_value: null, negative_slope: 0, threshold: 0 });
/** the same BatchNorm statistics for every channel of these layers */
function bnWeights(w: (l: string, key: string, shape: number[], fill: (i: number) => number) => void, layers: [string, number][], mean: number, variance: number): void {
  for (const [b, n] of layers) {
    w(b, 'gamma', [n], (i) => 1 + 0.1 * i);
    w(b, 'beta', [n], (i) => 0.05 * i);
    w(b, 'moving_mean', [n], () => mean);
    w(b, 'moving_variance', [n], () => variance);
  }
}

const shapes = (mult: number): Record<string, (number | null)[]> => ({
  inp: [null, 8, 8, 3], c1: [null, 8, 8, 6], bn1: [null, 8, 8, 6], r1: [null, 8, 8, 6], pad: [null, 10, 10, 6], dw: [null, 8, 8, 6 * mult],
  bn2: [null, 8, 8, 6 * mult], r2: [null, 8, 8, 6 * mult], c2: [null, 8, 8, 4], gap: [null, 4], out: [null, 2],
});

function dwModel(format: 'keras-h5' | 'keras', mult = 1): KerasModel {
  const D = 6 * mult;
  const layers = [
    inputLayer('inp', [8, 8, 3]),
    conv('c1', 6, 3, 'inp'),
    bn('bn1', 'c1'),
    relu('r1', 'bn1'),
    layer('ZeroPadding2D', 'pad', ['r1'], { padding: [[1, 1], [1, 1]], data_format: 'channels_last' }),
    layer('DepthwiseConv2D', 'dw', ['pad'], { kernel_size: [3, 3], strides: [1, 1], padding: 'valid', depth_multiplier: mult, data_format: 'channels_last', dilation_rate: [1, 1], activation: 'linear', use_bias: true }),
    bn('bn2', 'dw'),
    relu('r2', 'bn2'),
    conv('c2', 4, 1, 'r2', 'valid'),
    layer('GlobalAveragePooling2D', 'gap', ['c2'], { data_format: 'channels_last' }),
    layer('Dense', 'out', ['gap'], { units: 2, activation: 'linear', use_bias: true }),
  ];
  const r = rng(11);
  const list = new WeightList();
  const w = list.add.bind(list);
  w('c1', 'kernel', [3, 3, 3, 6], () => r());
  w('c1', 'bias', [6], (i) => [0.1, -100, 0.2, 0.3, -100, 0.1][i]);
  bnWeights(w, [['bn1', 6], ['bn2', D]], 0.01, 1.5);
  // depthwise kernel [3, 3, 6, 1]: channel 3's taps are zero
  w('dw', 'depthwise_kernel', [3, 3, 6, mult], (i) => (Math.floor(i / mult) % 6 === 3 ? 0 : r()));
  w('dw', 'bias', [D], (i) => [0, 0.3, 0, -1, -0.5, 0][Math.floor(i / mult)]);
  w('c2', 'kernel', [1, 1, D, 4], () => r());
  w('c2', 'bias', [4], (i) => 0.1 * i);
  w('out', 'kernel', [4, 2], () => r());
  w('out', 'bias', [2], () => 0);
  return kerasModel(format, tmp, { name: 'dwnet', layers, shapes: shapes(mult), input: 'inp', output: 'out' }, list.weights);
}

describe('Keras dead pruning through a depthwise convolution', () => {
  for (const mult of [1, 2])
    for (const [format, ext] of [['keras-h5', 'h5'], ['keras', 'keras']] as const)
      it(`${ext}, depth multiplier ${mult}: removes the constant and dead channels from the producer, both BatchNorms and the depthwise kernel, folds the constant`, async () => {
        const src = path.join(tmp, `dw${mult}.${ext}`);
        await saveModel(dwModel(format, mult), src);
        const m = (await loadModel(src)) as KerasModel;
        // producer channel c is depthwise outputs c * mult ... c * mult + mult - 1
        const copies = (cs: number[]) => cs.flatMap((c) => Array.from({ length: mult }, (_, j) => c * mult + j));
        const probed = await probe(m, { kind: 'random', seed: 1 }, { samples: 16, layers: ['r2'] });
        assert.deepEqual(probed.layers[0].dead, copies([3, 4]));
        assert.deepEqual(probed.layers[0].constant, copies([1]));
        const r = await prune(m, { criterion: 'dead', samples: 16, inputs: { kind: 'random', seed: 1 } });
        assert.deepEqual(r.removed, { c1: 3 }, JSON.stringify(r.plan, null, 1));
        assert.ok(r.verify.max_abs_error < 1e-5, `max abs ${r.verify.max_abs_error}`);
        assert.deepEqual(r.plan.consumers.find((c) => c.layer === 'c2'), { layer: 'c2', removed_inputs: 3 * mult, folded_constants: mult });
        assert.deepEqual(r.plan.groups.find((g) => g.layers[0] === 'c1')?.layers, ['c1', 'dw', 'bn1', 'bn2']);
        const p = r.model as KerasModel;
        const shape = (l: string, key: string) => p.weightsOf([l]).find((x) => x.key === key)!.shape;
        assert.deepEqual(shape('c1', 'kernel'), [3, 3, 3, 3]);
        assert.deepEqual(shape('dw', 'depthwise_kernel'), [3, 3, 3, mult]);
        assert.deepEqual(shape('dw', 'bias'), [3 * mult]);
        assert.deepEqual(shape('bn1', 'gamma'), [3]);
        assert.deepEqual(shape('bn2', 'moving_variance'), [3 * mult]);
        assert.deepEqual(shape('c2', 'kernel'), [1, 1, 3 * mult, 4]);
        // the depthwise taps kept are those of channels 0, 2, 5, in order
        const before = weightToFloat32(m.weightsOf(['dw']).find((x) => x.key === 'depthwise_kernel')!);
        const afterK = weightToFloat32(p.weightsOf(['dw']).find((x) => x.key === 'depthwise_kernel')!);
        assert.deepEqual([...afterK], Array.from({ length: 9 }, (_, t) => [0, 2, 5].flatMap((c) => Array.from({ length: mult }, (__, j) => before[(t * 6 + c) * mult + j]))).flat());
        assert.ok(r.params_after < r.params_before && r.macs_after! < r.macs_before!);
        const out = path.join(tmp, `dw${mult}-pruned.${ext}`);
        await saveModel(p, out);
        const back = (await loadModel(out)) as KerasModel;
        const q = await probe(back, { kind: 'random', seed: 2 }, { samples: 2, layers: ['r1', 'r2'] });
        assert.deepEqual(q.layers.map((l) => l.channels), [3, 3 * mult]);
      });

  it('l1 / bn-gamma by ratio through a depth multiplier: a producer channel scores its BatchNorm copies together', async () => {
    const m = dwModel('keras-h5', 2);
    const g = await prune(m, { criterion: 'bn-gamma', ratio: 0.34, samples: 2 });
    // bn1 (before the depthwise) scores first: gammas 1 + 0.1 c, the two smallest go
    assert.deepEqual(g.removed, { c1: 2 });
    assert.deepEqual(g.plan.groups.find((x) => x.layers[0] === 'c1')?.removed, [0, 1]);
    assert.ok(Number.isFinite(g.verify.max_abs_error));
  });
});

/** inp(8x8x3) -> c1 Conv2D(5) -> bn1 -> r1 -> s1 SeparableConv2D(4, 3x3 valid, depth multiplier 2) -> bn2 -> r2 -> s2 SeparableConv2D(3, 3x3 same) -> gap -> out */
const SEP_SHAPES: Record<string, (number | null)[]> = {
  inp: [null, 8, 8, 3], c1: [null, 8, 8, 5], bn1: [null, 8, 8, 5], r1: [null, 8, 8, 5], s1: [null, 6, 6, 4], bn2: [null, 6, 6, 4], r2: [null, 6, 6, 4],
  s2: [null, 6, 6, 3], gap: [null, 3], out: [null, 2],
};

function separableModel(format: 'keras-h5' | 'keras'): KerasModel {
  const sep = (name: string, filters: number, input: string, padding: string, m: number) =>
    layer('SeparableConv2D', name, [input], { filters, kernel_size: [3, 3], strides: [1, 1], padding, data_format: 'channels_last', dilation_rate: [1, 1], depth_multiplier: m, activation: 'linear', use_bias: true });
  const layers = [inputLayer('inp', [8, 8, 3]), conv('c1', 5, 3, 'inp'), bn('bn1', 'c1'), relu('r1', 'bn1'), sep('s1', 4, 'r1', 'valid', 2), bn('bn2', 's1'), relu('r2', 'bn2'), sep('s2', 3, 'r2', 'same', 1), layer('GlobalAveragePooling2D', 'gap', ['s2'], { data_format: 'channels_last' }), layer('Dense', 'out', ['gap'], { units: 2, activation: 'linear', use_bias: true })];
  const r = rng(5);
  const list = new WeightList();
  const w = list.add.bind(list);
  // c1: channel 1 dead (bias -100), channel 3 the constant relu(bn1(0.4)) (zero kernel)
  w('c1', 'kernel', [3, 3, 3, 5], (i) => (i % 5 === 3 ? 0 : r()));
  w('c1', 'bias', [5], (i) => [0.1, -100, 0.2, 0.4, 0][i]);
  bnWeights(w, [['bn1', 5], ['bn2', 4]], 0.02, 1.2);
  // s1: filter 2 dead (zero pointwise column, bias -5)
  w('s1', 'depthwise_kernel', [3, 3, 5, 2], () => r());
  w('s1', 'pointwise_kernel', [1, 1, 10, 4], (i) => (i % 4 === 2 ? 0 : r()));
  w('s1', 'bias', [4], (i) => [0.1, 0.2, -5, 0][i]);
  w('s2', 'depthwise_kernel', [3, 3, 4, 1], () => r());
  w('s2', 'pointwise_kernel', [1, 1, 4, 3], () => r());
  w('s2', 'bias', [3], (i) => 0.1 * i);
  w('out', 'kernel', [3, 2], () => r());
  w('out', 'bias', [2], () => 0);
  return kerasModel(format, tmp, { name: 'sepnet', layers, shapes: SEP_SHAPES, input: 'inp', output: 'out' }, list.weights);
}

describe('Keras pruning into and out of separable convolutions', () => {
  for (const [format, ext] of [['keras-h5', 'h5'], ['keras', 'keras']] as const)
    it(`${ext}: a SeparableConv2D consumer loses depthwise slices and pointwise rows (constant folded through its taps); as a producer, pointwise columns`, async () => {
      const src = path.join(tmp, `sep.${ext}`);
      await saveModel(separableModel(format), src);
      const m = (await loadModel(src)) as KerasModel;
      const r = await prune(m, { criterion: 'dead', samples: 16, inputs: { kind: 'random', seed: 3 } });
      assert.deepEqual(r.removed, { c1: 2, s1: 1 }, JSON.stringify(r.plan, null, 1));
      assert.ok(r.verify.max_abs_error < 1e-5, `max abs ${r.verify.max_abs_error}`);
      assert.deepEqual(r.plan.consumers.map((c) => [c.layer, c.removed_inputs, c.folded_constants]), [['s1', 4, 1], ['s2', 1, 0]]);
      const p = r.model as KerasModel;
      const shape = (l: string, key: string) => p.weightsOf([l]).find((x) => x.key === key)!.shape;
      assert.deepEqual(shape('c1', 'kernel'), [3, 3, 3, 3]);
      assert.deepEqual(shape('bn1', 'gamma'), [3]);
      assert.deepEqual(shape('s1', 'depthwise_kernel'), [3, 3, 3, 2]);
      assert.deepEqual(shape('s1', 'pointwise_kernel'), [1, 1, 6, 3]);
      assert.deepEqual(shape('s1', 'bias'), [3]);
      assert.deepEqual(shape('bn2', 'moving_mean'), [3]);
      assert.deepEqual(shape('s2', 'depthwise_kernel'), [3, 3, 3, 1]);
      assert.deepEqual(shape('s2', 'pointwise_kernel'), [1, 1, 3, 3]);
      const out = path.join(tmp, `sep-pruned.${ext}`);
      await saveModel(p, out);
      const back = (await loadModel(out)) as KerasModel;
      const q = await probe(back, { kind: 'random', seed: 2 }, { samples: 2, layers: ['r1', 'r2'] });
      assert.deepEqual(q.layers.map((l) => l.channels), [3, 3]);
    });
});
