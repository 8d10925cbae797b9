/**
 * Memory planner. Oracles: (1) a hand calculation from memnet's architecture (make_fixtures.py, MemNet), written
 * out below independently of the planner's code; (2) PyTorch's own accounting of the same network, committed in
 * test/fixtures/onnx-doctor/memory.json: the bytes autograd saves for backward (saved_tensors_hooks, deduplicated
 * by storage, parameters excluded) and the live-tensor peak of a no_grad forward (torch.profiler with
 * profile_memory, sampled at the end of each top-level op). (3) parameter counts from the architectures.
 */
import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { loadModel } from '../../src/core/api';
import { parseBytes } from '../../src/core/analysis/memory-planner';
import { planOnnxMemory } from '../../src/core/formats/onnx/doctor';
import type { OnnxModel } from '../../src/core/formats/onnx/model';

const ROOT = path.join(__dirname, '..', '..');
const DOCTOR = path.join(ROOT, 'test', 'fixtures', 'onnx-doctor');
const loadMemnet = async () => (await loadModel(path.join(DOCTOR, 'memnet', 'model.onnx'))) as OnnxModel;

interface TorchMemory {
  n: number;
  h: number;
  w: number;
  input_bytes: number;
  saved_bytes: number;
  inference_tensor_peak: number;
  inference_raw_peak: number;
}
const torchMemory = (JSON.parse(readFileSync(path.join(DOCTOR, 'memory.json'), 'utf8')) as { memnet: TorchMemory[] }).memnet;

/**
 * memnet by hand, float32 (f = 4 bytes): conv1 3->8 3x3 pad 1, BN, ReLU, MaxPool 2, conv2 8->16 pad 1, BN, ReLU,
 * conv3 16->8 1x1, BN, Add(pool output), ReLU, GlobalAveragePool, Flatten, Dropout, Linear 8->10.
 */
function hand(n: number, h: number, w: number, dt = 4) {
  const X = n * 3 * h * w * dt; // input
  const A = n * 8 * h * w * dt; // conv1 / bn1 / relu outputs
  const pn = n * 8 * (h / 2) * (w / 2); // elements after pooling
  const P = pn * dt; // pool output, conv3 / bn3 / add / relu outputs (8 channels)
  const Q = n * 16 * (h / 2) * (w / 2) * dt; // conv2 / bn2 / relu2 outputs
  const V = n * 8 * dt; // pooled vector
  const Y = n * 10 * dt;
  // inference: live while each layer runs (input held throughout; a tensor dies after its last reader)
  const live = [X + A, X + 2 * A, X + 2 * A, X + A + P, X + P + Q, X + P + 2 * Q, X + P + 2 * Q, X + P + Q + P, X + 3 * P, X + 3 * P, X + 2 * P, X + P + V, X + V, X + V, X + V + Y];
  // training: conv1 keeps x; bn1 its input + mean/istd; relu its output (= pool input); pool int64 indices;
  // conv2 keeps the pool output; bn2 input + stats; relu2 output (= conv3 input); bn3 input + stats; add nothing;
  // relu output; GAP (a mean) nothing; dropout a float mask; linear its input (dropout output)
  const stats = 2 * (8 + 16 + 8) * dt;
  const saved = X + A + A + pn * 8 + P + Q + Q + P + P + V + V + stats;
  const params = 8 * 3 * 9 + 8 + 4 * 8 + (16 * 8 * 9 + 16) + 4 * 16 + (8 * 16 + 8) + 4 * 8 + (8 * 10 + 10);
  const trainable = params - 2 * (8 + 16 + 8);
  const workspace = 2 * A; // grad of bn1's output and input in flight
  return { X, A, live, peak: Math.max(...live), saved, params, trainable, workspace };
}

function trainingTotal(n: number, h: number, w: number, optimizer: 'adam' | 'sgd-momentum' | 'none' = 'adam'): number {
  const e = hand(n, h, w);
  const opt = optimizer === 'adam' ? 2 : optimizer === 'sgd-momentum' ? 1 : 0;
  return e.params * 4 + e.trainable * 4 * (1 + opt) + e.saved + e.workspace;
}

describe('memory planner: memnet by hand', () => {
  for (const [n, h, w] of [
    [2, 16, 16],
    [1, 64, 48],
    [5, 8, 12],
  ]) {
    it(`${n}x3x${h}x${w}: per-layer live bytes, peak, saved activations, parameters, totals`, async () => {
      const e = hand(n, h, w);
      const p = planOnnxMemory(await loadMemnet(), { batch: n, height: h, width: w, optimizer: 'adam' });
      assert.deepEqual(p.input_shapes.image, [n, 3, h, w]);
      assert.deepEqual(p.layers.map((r) => r.live_bytes), e.live);
      assert.equal(p.inference.activation_bytes, e.peak);
      assert.equal(p.peak_layer, '/bn1/BatchNormalization');
      assert.equal(p.training.activation_bytes, e.saved);
      assert.equal(p.params, e.params);
      assert.equal(p.trainable_params, e.trainable);
      assert.equal(p.inference.total_bytes, e.params * 4 + e.peak);
      assert.equal(p.training.gradient_bytes, e.trainable * 4);
      assert.equal(p.training.optimizer_bytes, 2 * e.trainable * 4);
      assert.equal(p.training.workspace_bytes, e.workspace);
      assert.equal(p.training.total_bytes, trainingTotal(n, h, w));
      assert.deepEqual(p.unknown_layers, []);
      const pool = p.layers.find((r) => r.op === 'MaxPool')!;
      assert.deepEqual(pool.saved, ['input /Relu_output_0', 'int64 indices of the maxima']);
      assert.equal(pool.saved_bytes, (e.A / 8 / 4) * 8 * 2, 'the ReLU output was already kept: only the indices are new');
    });
  }

  it('float16 activations halve everything but the int64 indices', async () => {
    const p = planOnnxMemory(await loadMemnet(), { batch: 2, height: 16, width: 16, dtypeBytes: 2 });
    const e = hand(2, 16, 16, 2);
    assert.equal(p.inference.activation_bytes, e.peak);
    assert.equal(p.training.activation_bytes, e.saved);
  });

  it('per-sample / fixed split and the largest batch that fits, checked by hand', async () => {
    const budget = '3MiB';
    const p = planOnnxMemory(await loadMemnet(), { batch: 2, height: 32, width: 32, optimizer: 'sgd-momentum', budget });
    const per = trainingTotal(3, 32, 32, 'sgd-momentum') - trainingTotal(2, 32, 32, 'sgd-momentum');
    assert.equal(p.per_sample.training_bytes, per);
    assert.equal(p.fixed.training_bytes, trainingTotal(2, 32, 32, 'sgd-momentum') - 2 * per);
    let fits = 0;
    while (trainingTotal(fits + 1, 32, 32, 'sgd-momentum') <= 3 * 2 ** 20) fits++;
    assert.equal(p.budget!.max_batch_training, fits);
    let fitsInf = 0;
    while (hand(fitsInf + 1, 32, 32).params * 4 + hand(fitsInf + 1, 32, 32).peak <= 3 * 2 ** 20) fitsInf++;
    assert.equal(p.budget!.max_batch_inference, fitsInf);
    assert.ok(fits > 1 && fitsInf > fits);
  });

  it('crops vs full image (the FCN trade-off): memory per image at each size, batch that fits, crops per image', async () => {
    const p = planOnnxMemory(await loadMemnet(), { batch: 1, height: 64, width: 96, budget: '8MiB', crops: [16, 32, 48] });
    assert.deepEqual(p.crops!.map((c) => [c.size, c.full_image, c.crops_per_image]), [
      [[16, 16], false, 4 * 6],
      [[32, 32], false, 2 * 3],
      [[48, 48], false, 2 * 2],
      [[64, 96], true, 1],
    ]);
    for (const c of p.crops!) {
      const [h, w] = c.size;
      assert.equal(c.training_bytes_per_image, trainingTotal(2, h, w) - trainingTotal(1, h, w), `${h}x${w}`);
      let fits = 0;
      while (trainingTotal(fits + 1, h, w) <= 8 * 2 ** 20) fits++;
      assert.equal(c.max_batch_training, fits, `${h}x${w}`);
      assert.equal(c.pixels_per_step, fits * h * w);
    }
  });
});

describe('memory planner: against PyTorch (memory.json)', () => {
  for (const t of torchMemory) {
    it(`memnet ${t.n}x3x${t.h}x${t.w}`, async () => {
      const p = planOnnxMemory(await loadMemnet(), { batch: t.n, height: t.h, width: t.w });
      // what autograd keeps for backward: equal to the byte
      assert.equal(p.training.activation_bytes, t.saved_bytes);
      // live tensors at the end of every op (the profiler does not see the input, allocated before it started)
      assert.equal(p.inference.activation_bytes - t.input_bytes, t.inference_tensor_peak);
      // the allocator's raw peak also holds scratch memory freed inside an op (oneDNN convolution buffers,
      // max_pool2d's indices in no_grad): never below the tensor peak, and not what the planner models
      assert.ok(t.inference_raw_peak >= t.inference_tensor_peak);
    });
  }
});

describe('memory planner: real models and inputs', () => {
  it('fcn_tiny: parameters from its architecture; every shape known at 1024x2048', async () => {
    const m = (await loadModel(path.join(ROOT, 'samples', 'fcn_tiny.onnx'))) as OnnxModel;
    const p = planOnnxMemory(m, { height: 1024, width: 2048, crops: [224, 320, 512], budget: '12GiB' });
    // enc 3->24->48->96->96 (3x3, no bias) + head 96->48 with BN (4 per channel); 1x1 classifier and score
    // convs 48->6 with bias; ConvTranspose 6->6 4x4 without bias. Resize scales are no parameters.
    const conv = 3 * 24 * 9 + 24 * 48 * 9 + 48 * 96 * 9 + 96 * 96 * 9 + 96 * 48 * 9;
    const bn = 4 * (24 + 48 + 96 + 96 + 48);
    assert.equal(p.params, conv + bn + 2 * (48 * 6 + 6) + 6 * 6 * 16);
    assert.deepEqual(p.unknown_layers, []);
    assert.equal(p.crops!.length, 4);
    const [c224, , , full] = p.crops!;
    assert.ok(full.training_bytes_per_image > 40 * c224.training_bytes_per_image, 'a 1024x2048 image costs ~42 crops of 224');
  });

  it('PaddleOCR classifier at 48x192: every shape known, every op with a backward rule', async () => {
    const m = (await loadModel(path.join(ROOT, 'node_modules', '@gutenye', 'ocr-models', 'assets', 'ch_ppocr_mobile_v2.0_cls_infer.onnx'))) as OnnxModel;
    assert.throws(() => planOnnxMemory(m), /unknown dimension 2 \('p2o.DynamicDimension.1'\)/);
    const p = planOnnxMemory(m, { batch: 8, height: 48, width: 192, budget: '1GiB' });
    assert.deepEqual(p.unknown_layers, []);
    assert.ok(!p.notes.some((n) => n.includes('without a known backward rule')), p.notes.join('\n'));
    assert.ok(p.training.total_bytes > p.inference.total_bytes);
    assert.ok(p.budget!.max_batch_training > 8);
  });

  it('parseBytes', () => {
    assert.equal(parseBytes('12GiB'), 12 * 2 ** 30);
    assert.equal(parseBytes('16 GB'), 16e9);
    assert.equal(parseBytes('1.5MiB'), 1.5 * 2 ** 20);
    assert.equal(parseBytes(1000), 1000);
    assert.throws(() => parseBytes('12 parsecs'), /cannot read memory size/);
    assert.throws(() => parseBytes(-1), /positive/);
  });
});
