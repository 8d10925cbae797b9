/**
 * Activation swap. Oracles: PyTorch's outputs of the fixture CNN with every ReLU replaced by SELU / ELU /
 * GELU (erf) / LeakyReLU(0.01) (test/fixtures/onnx-prune/cnn/swap_<act>, BatchNorm kept in PyTorch: the SELU
 * recipe's fold is exact), onnxruntime's Gelu op (opset 20+) for the erf formula of older opsets, and the
 * ONNX graphs built here for ReLU6 (Clip 0..6), LeakyRelu and Dropout.
 */
import { strict as assert } from 'node:assert';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { loadModel } from '../../src/core/api';
import { compareOnInputs, probeOnnx } from '../../src/core/analysis/probe';
import { encodeModel } from '../../src/core/formats/onnx/codec';
import type { OnnxModel } from '../../src/core/formats/onnx/model';
import { measureSwap, swapActivation, type SwapTarget } from '../../src/core/formats/onnx/swap-activation';
import { GraphBuilder } from '../helpers/onnx-build';
import { loadDataSet, runWithOrt } from '../helpers/ort';
import { assertClose } from '../helpers/assert-close';

const DIR = path.join(__dirname, '..', 'fixtures', 'onnx-prune', 'cnn');

const count = (m: OnnxModel, op: string) => m.graph.node.filter((n) => n.opType === op).length;

/** x[N,8] -> Gemm -> Clip(0, 6) -> Dropout -> Gemm -> LeakyRelu(0.1) -> Gemm -> y */
function smallNet(opset: number): OnnxModel {
  const w = (n: number, k: number, s: number) => Float32Array.from({ length: n * k }, (_, i) => Math.sin(3 * i + s) * 0.5);
  return new GraphBuilder()
    .input('x', ['N', 8])
    .init('w1', [8, 6], w(8, 6, 1))
    .init('w2', [6, 6], w(6, 6, 2))
    .init('w3', [6, 3], w(6, 3, 3))
    .init('lo', [], [0])
    .init('hi', [], [6])
    .node('Gemm', ['x', 'w1'], ['h1'], {}, 'fc1')
    .node('Clip', ['h1', 'lo', 'hi'], ['a1'], {}, 'relu6')
    .node('Dropout', ['a1'], ['d1'], {}, 'drop')
    .node('Gemm', ['d1', 'w2'], ['h2'], {}, 'fc2')
    .node('LeakyRelu', ['h2'], ['a2'], { alpha: { f: 0.1 } }, 'leaky')
    .node('Gemm', ['a2', 'w3'], ['y'], {}, 'fc3')
    .output('y')
    .model(opset);
}

describe('swap activations in the PyTorch CNN', () => {
  const data = loadDataSet(path.join(DIR, 'test_data_set_0'));
  for (const to of ['selu', 'elu', 'gelu', 'leaky-relu'] as SwapTarget[]) {
    it(`ReLU -> ${to} computes what PyTorch computes with ${to}`, async () => {
      const model = (await loadModel(path.join(DIR, 'model.onnx'))) as OnnxModel;
      const r = swapActivation(model, { to });
      assert.equal(r.swapped, 9);
      assert.equal(count(r.model, 'Relu'), 0);
      // the SELU recipe folds every BatchNorm (all 6 follow a conv); the others keep them
      assert.equal(r.removed_bn, to === 'selu' ? 6 : 0);
      assert.equal(count(r.model, 'BatchNormalization'), to === 'selu' ? 0 : 6);
      assert.equal(r.replaced_dropout, 0);
      if (to === 'gelu') {
        assert.equal(count(r.model, 'Erf'), 9, 'opset 13 has no Gelu: the erf formula');
        assert.ok(r.notes.some((n) => /erf/.test(n)));
      }
      assert.ok(r.notes.some((n) => /fine-tune/.test(n)));
      const want = loadDataSet(path.join(DIR, `swap_${to}`)).outputs[0].values;
      const [y] = await runWithOrt(encodeModel(r.model.proto), data.inputs);
      assertClose(y, want, 1e-4, `${to} vs PyTorch`);
      // layer names and activation outputs are kept
      for (const l of r.layers) assert.ok(r.model.graph.node.some((n) => n.name === l), l);
    });
  }

  it('measureSwap: the deviation and the activation mean/variance by depth, before and after', async () => {
    const model = (await loadModel(path.join(DIR, 'model.onnx'))) as OnnxModel;
    const r = swapActivation(model, { to: 'selu' });
    const src = { kind: 'random' as const, seed: 4 };
    const m = await measureSwap(model, r.model, src, { samples: 16 });
    const v = await compareOnInputs(model, r.model, src, { samples: 16 });
    assert.equal(m.deviation.max_abs_error, v.max_abs_error);
    assert.ok(m.deviation.max_rel_error > 0.05, 'a swap changes the function');
    assert.equal(m.profile.length, 9);
    assert.ok(m.profile.every((p) => p.op_before === 'Relu' && p.op_after === 'Selu'));
    // the "after" numbers are a probe of the swapped model at the same tensors
    const p1 = await probeOnnx(r.model, src, { samples: 16 });
    m.profile.forEach((row, k) => {
      assert.ok(Math.abs(row.mean_after! - p1.layers[k].layer_mean) < 1e-9 && Math.abs(row.var_after! - p1.layers[k].layer_var) < 1e-9, row.layer);
      assert.notEqual(row.var_after, row.var_before);
    });
    const g = await measureSwap(model, swapActivation(model, { to: 'gelu' }).model, src, { samples: 4 });
    assert.ok(g.profile.every((p) => p.op_after === 'Gelu (erf formula)'));
  });
});

describe('swap: sources, Dropout, opsets', () => {
  it('ReLU6 (Clip 0..6) and LeakyRelu are recognized; Dropout is counted for the SELU recipe and left alone', async () => {
    const model = smallNet(13);
    const r = swapActivation(model, { to: 'selu' });
    assert.equal(r.swapped, 2);
    assert.deepEqual(r.layers, ['relu6', 'leaky']);
    assert.equal(r.replaced_dropout, 1);
    assert.equal(count(r.model, 'Dropout'), 1, 'identity at inference either way');
    assert.ok(r.notes.some((n) => /AlphaDropout/.test(n) && /identity/.test(n)));
    assert.equal(swapActivation(model, { to: 'selu', from: ['relu6'] }).swapped, 1);
    assert.equal(swapActivation(model, { to: 'elu', from: ['relu'] }).swapped, 0);
    const leaky = swapActivation(model, { to: 'leaky-relu' });
    assert.equal(leaky.swapped, 1);
    assert.match(leaky.skipped[0].reason, /already LeakyRelu/);
    assert.equal(swapActivation(model, { to: 'elu' }).replaced_dropout, 0);
    assert.throws(() => swapActivation(model, { to: 'swish' as SwapTarget }), /unknown activation/);
  });

  it('GELU: the Gelu op from opset 20, the erf formula before: the same numbers', async () => {
    const old = swapActivation(smallNet(13), { to: 'gelu' });
    const recent = swapActivation(smallNet(20), { to: 'gelu' });
    assert.equal(count(recent.model, 'Gelu'), 2);
    assert.equal(count(recent.model, 'Erf'), 0);
    assert.equal(count(old.model, 'Erf'), 2);
    const x = { name: 'x', dtype: 'float32', dims: [4, 8], values: Float64Array.from({ length: 32 }, (_, i) => Math.cos(i) * 2), proto: { dims: [4n, 8n], dataType: 1, externalData: [], metadataProps: [], rawData: new Uint8Array(Float32Array.from({ length: 32 }, (_, i) => Math.cos(i) * 2).buffer) } };
    const [a] = await runWithOrt(encodeModel(old.model.proto), [x]);
    const [b] = await runWithOrt(encodeModel(recent.model.proto), [x]);
    assertClose(a, b, 1e-6, 'erf formula vs Gelu op');
  });
});
