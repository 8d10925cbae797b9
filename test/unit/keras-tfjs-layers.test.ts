/**
 * TF.js layers models on a real one: nsfwjs@4.4.0's mobilenet_v2 (Keras 2.2.4 topology, uint8-quantized
 * shards), decoded from the package into .cache/nsfwjs/. Oracles: TensorFlow.js itself loading the original
 * files and the files we wrote (its own loader and dequantization, through tf.io.fromMemory), never our
 * own reader; the layer counts are the ones nsfwjs's model.json states.
 */
import { strict as assert } from 'node:assert';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { foldBatchNorm, inspect, loadModel, loadModelBytes, planFoldBatchNorm, saveModel, serialize, verify, type Model } from '../../src/core/api';
import { loadTfjs } from '../../src/core/engines/tfjs';
import { KerasModel } from '../../src/core/formats/keras/model';
import { nsfwModel } from '../helpers/nsfwjs';
import { loadLayersFromFile, relError, seededInput } from '../helpers/tfjs-files';

let tmp = '';
let original: Model;
let folded: Model;
const SRC = nsfwModel('mobilenet_v2');

before(async () => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'ms-tfjs-'));
  original = await loadModel(SRC);
  folded = foldBatchNorm(original).model;
});
after(() => rmSync(tmp, { recursive: true, force: true }));

async function predict(modelJson: string, inputs: Float32Array[]): Promise<Float32Array[]> {
  const { tf } = await loadTfjs();
  const m = await loadLayersFromFile(modelJson);
  try {
    const out: Float32Array[] = [];
    for (const x of inputs) {
      const y = tf.tidy(() => m.predict(tf.tensor(x, [1, 224, 224, 3])) as import('@tensorflow/tfjs-core').Tensor);
      out.push(Float32Array.from(await y.data()));
      y.dispose();
    }
    return out;
  } finally {
    m.dispose();
  }
}

describe('TF.js layers model: nsfwjs mobilenet_v2', () => {
  it('inspect: the layers, weights and quantization nsfwjs ships', () => {
    const r = inspect(original);
    assert.equal(r.format, 'tfjs-layers');
    const count = (native: string) => r.layers.filter((l) => l.native_op === native).length;
    assert.equal(count('BatchNormalization'), 52);
    assert.equal(count('Conv2D'), 35);
    assert.equal(count('DepthwiseConv2D'), 17);
    assert.equal(count('Dense'), 3);
    assert.equal(count('Dropout'), 2);
    assert.equal(r.layers.filter((l) => l.op === 'Relu6').length, 35, 'ReLU(max_value=6) is Relu6');
    assert.equal(r.layers.filter((l) => l.op === 'DepthwiseConv').length, 17);
    for (const l of r.layers.filter((x) => x.native_op === 'Conv2D' || x.native_op === 'DepthwiseConv2D')) {
      assert.deepEqual(l.weights.map((w) => w.role), ['kernel'], `${l.name} has no bias`);
      assert.equal(l.weights[0].quantized, 'uint8');
    }
    assert.equal(r.totals.params, 2619461);
    assert.equal(r.model.weight_bytes, 2619461, 'uint8: one byte per parameter');
    assert.deepEqual(r.model.inputs[0].shape, ['batch', 224, 224, 3]);
    assert.deepEqual(r.layers.find((l) => l.name === 'Conv1')?.output_shape, [1, 112, 112, 32]);
    assert.deepEqual(r.layers[r.layers.length - 1].output_shape, [1, 5]);
    // Conv1: 112*112*32 outputs x 3*3*3
    assert.equal(r.layers.find((l) => l.name === 'Conv1')?.macs, 112 * 112 * 32 * 27);
    assert.ok(r.findings.some((f) => f.code === 'weights-quantized'));
    // depthwise kernels [3, 3, C, 1]: channel statistics per output channel C * 1
    const dw = r.layers.find((l) => l.native_op === 'DepthwiseConv2D')!;
    assert.equal(dw.weights[0].stats?.channel_l2?.length, dw.weights[0].shape[2] * dw.weights[0].shape[3]);
  });

  it('folds all 52 BatchNorms; TF.js outputs before and after agree within 1e-4 relative', async () => {
    const plan = planFoldBatchNorm(original);
    assert.equal(plan.candidates.length, 52);
    assert.deepEqual(plan.skipped, []);
    const r = foldBatchNorm(original);
    assert.equal(r.size.layers_after, r.size.layers_before - 52);
    assert.ok(r.size.bytes_after > r.size.bytes_before, 'float32 tensors replace uint8 ones');
    assert.ok(r.notes.some((n) => /float32/.test(n)), 'says that quantized sources became float32');
    const after = inspect(r.model);
    assert.equal(after.layers.filter((l) => l.op === 'BatchNorm').length, 0);
    for (const l of after.layers.filter((x) => x.native_op === 'Conv2D' || x.native_op === 'DepthwiseConv2D')) assert.deepEqual(l.weights.map((w) => w.role), ['kernel', 'bias']);
    const v = await verify(original, r.model, { samples: 2, seed: 7 });
    assert.match(v.engine, /^tfjs-(node|wasm|cpu)$/);
    assert.ok(v.max_rel_error < 1e-4, JSON.stringify(v));
  });

  it('re-saving the untouched model keeps every weight bit for bit', async () => {
    const out = path.join(tmp, 'same', 'model.json');
    await import('node:fs').then((fs) => fs.mkdirSync(path.dirname(out), { recursive: true }));
    await saveModel(original, out);
    const back = (await loadModel(out)) as KerasModel;
    const orig = original as KerasModel;
    assert.deepEqual(back.modelConfig, orig.modelConfig);
    assert.equal(back.weights.length, orig.weights.length);
    back.weights.forEach((w, i) => {
      const o = orig.weights[i];
      assert.equal(w.storeName, o.storeName);
      assert.deepEqual(w.shape, o.shape);
      assert.deepEqual(w.quantization, o.quantization);
      assert.ok(Buffer.compare(Buffer.from(w.bytes), Buffer.from(o.bytes)) === 0, `${w.storeName} bytes`);
    });
    // the bundle (hot exit) reads back to the same model too
    const fromBundle = loadModelBytes(serialize(original), tmp, 'bundle') as KerasModel;
    assert.equal(fromBundle.format, 'tfjs-layers');
    assert.ok(fromBundle.weights.every((w, i) => Buffer.compare(Buffer.from(w.bytes), Buffer.from(orig.weights[i].bytes)) === 0));
  });

  it('the folded model.json + shards load with tf.loadLayersModel and match the original', async () => {
    const out = path.join(tmp, 'folded', 'model.json');
    await import('node:fs').then((fs) => fs.mkdirSync(path.dirname(out), { recursive: true }));
    await saveModel(folded, out);
    const files = readdirSync(path.dirname(out));
    assert.ok(files.includes('model.json') && files.some((f) => f.endsWith('.bin')), files.join(','));
    assert.ok(!files.some((f) => f.endsWith('.tmp')));
    const inputs = [seededInput([1, 224, 224, 3], 11), seededInput([1, 224, 224, 3], 12)];
    const a = await predict(SRC, inputs);
    const b = await predict(out, inputs);
    a.forEach((y, k) => assert.ok(relError(y, b[k]) < 1e-4, `sample ${k}: ${relError(y, b[k])}`));
    const cfg = JSON.stringify((await loadModel(out) as KerasModel).modelConfig);
    assert.ok(!cfg.includes('BatchNormalization'));
    assert.ok(!cfg.includes('"use_bias":false'), 'every folded layer has a bias now');
  });

  it('re-quantizes folded tensors on request and reports the added error (uint8 is lossy, uint16 close)', async () => {
    const r8 = foldBatchNorm(original, { requantize: 'uint8' });
    assert.ok(r8.notes.some((n) => /re-quantized as uint8 \(largest weight change/.test(n)), r8.notes.join(' | '));
    assert.ok(r8.size.bytes_after < foldBatchNorm(original).size.bytes_after);
    assert.ok((r8.model as KerasModel).weights.every((w) => w.quantization?.dtype === 'uint8'), 'every tensor is uint8 again');
    const r16 = foldBatchNorm(original, { requantize: 'uint16' });
    const v8 = await verify(original, r8.model, { samples: 1 });
    const v16 = await verify(original, r16.model, { samples: 1 });
    // per-tensor affine uint8 cannot hold kernels whose channels were scaled by very different BN factors:
    // the verification shows it (and fold-bn would refuse to write it without --force)
    assert.ok(v16.max_rel_error < 1e-2, JSON.stringify(v16));
    assert.ok(v8.max_rel_error > v16.max_rel_error, `${v8.max_rel_error} vs ${v16.max_rel_error}`);
    // TF.js's own loader dequantizes the uint16 tensors we wrote to what our verification used
    const out = path.join(tmp, 'u16', 'model.json');
    await import('node:fs').then((fs) => fs.mkdirSync(path.dirname(out), { recursive: true }));
    await saveModel(r16.model, out);
    const x = [seededInput([1, 224, 224, 3], 1)];
    const [a] = await predict(SRC, x);
    const [b] = await predict(out, x);
    assert.ok(relError(a, b) < 1e-2, String(relError(a, b)));
  });
});
