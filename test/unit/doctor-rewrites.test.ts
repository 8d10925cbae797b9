/**
 * The doctor's ONNX rewrites on real files: fold BN forward, BN -> Mul+Add, chains, shared weights, Dropout
 * removal, BN eval mode. Oracles: PyTorch's outputs (test_data_set_* written by
 * test/fixtures/onnx-doctor/make_fixtures.py; numpy/torch.functional float64 references for onnx.helper
 * graphs), and onnxruntime running the ORIGINAL model on seeded probes (verify). Every rewritten model is
 * serialized, decoded again and run by onnxruntime.
 */
import { strict as assert } from 'node:assert';
import { existsSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import * as ort from 'onnxruntime-node';
import { foldBatchNorm, loadModel, serialize, verify } from '../../src/core/api';
import { decodeModel } from '../../src/core/formats/onnx/codec';
import { applyFold, planFold } from '../../src/core/formats/onnx/fold-batchnorm';
import { OnnxModel } from '../../src/core/formats/onnx/model';
import { applyBatchNormEvalMode } from '../../src/core/formats/onnx/rewrite-bn-eval-mode';
import { applyRemoveDropout, planRemoveDropout } from '../../src/core/formats/onnx/rewrite-dropout';
import { applyFoldForward, planFoldForward } from '../../src/core/formats/onnx/rewrite-fold-bn-forward';
import { applyBatchNormToAffine } from '../../src/core/formats/onnx/rewrite-standalone-bn';
import { readTensorAsFloat32 } from '../../src/core/formats/onnx/tensor';
import { loadDataSet, type DataTensor } from '../helpers/ort';

ort.env.logLevel = 'error';
const DOCTOR = path.join(__dirname, '..', 'fixtures', 'onnx-doctor');
const cases = JSON.parse(readFileSync(path.join(DOCTOR, 'cases.json'), 'utf8')) as Record<string, { fold_forward: number[]; affine: number[]; dropout_remove: number[]; fold_backward: number[] }>;

const load = async (name: string) => (await loadModel(path.join(DOCTOR, name, 'model.onnx'))) as OnnxModel;
const count = (m: OnnxModel, op: string) => m.graph.node.filter((n) => n.opType === op).length;
const DIMS = { N: 2, H: 16, W: 16 };

/** runs a model (after a serialize/decode round trip) on a data set's inputs, fed by name */
async function run(m: OnnxModel, inputs: DataTensor[]): Promise<Map<string, Float64Array>> {
  const bytes = serialize(m);
  decodeModel(bytes);
  const session = await ort.InferenceSession.create(bytes, { graphOptimizationLevel: 'disabled', logSeverityLevel: 3 });
  try {
    const feeds: Record<string, ort.Tensor> = {};
    for (const t of inputs) feeds[t.name] = new ort.Tensor('float32', Float32Array.from(t.values), t.dims);
    const res = await session.run(feeds);
    return new Map(session.outputNames.map((n) => [n, Float64Array.from(res[n].data as ArrayLike<number>, Number)]));
  } finally {
    await session.release();
  }
}

function maxRelErr(got: ArrayLike<number>, exp: ArrayLike<number>): number {
  assert.equal(got.length, exp.length);
  let ref = 1e-6;
  let worst = 0;
  for (let i = 0; i < exp.length; i++) {
    ref = Math.max(ref, Math.abs(exp[i]));
    worst = Math.max(worst, Math.abs(got[i] - exp[i]));
  }
  return worst / ref;
}

/** the model's outputs on data set k equal the reference (PyTorch / numpy) outputs */
async function assertMatchesReference(m: OnnxModel, name: string, k = 0, tol = 1e-4): Promise<void> {
  const data = loadDataSet(path.join(DOCTOR, name, `test_data_set_${k}`));
  const got = await run(m, data.inputs);
  assert.ok(data.outputs.length > 0);
  for (const exp of data.outputs) {
    const g = got.get(exp.name);
    assert.ok(g, `${name}: output ${exp.name} exists`);
    const e = maxRelErr(g, exp.values);
    assert.ok(e <= tol, `${name} ${exp.name}: max error ${e} of the largest |value|`);
  }
}

async function assertEquivalent(a: OnnxModel, b: OnnxModel, tol = 1e-5): Promise<void> {
  const v = await verify(a, b, { samples: 2, dims: DIMS });
  assert.ok(v.max_rel_error <= tol, JSON.stringify(v.outputs));
}

function assertNoDangling(m: OnnxModel): void {
  const used = new Set<string>();
  for (const n of m.graph.node) n.input.forEach((i) => used.add(i));
  m.graph.output.forEach((o) => used.add(o.name ?? ''));
  for (const t of m.graph.initializer) assert.ok(used.has(t.name ?? ''), `dangling initializer ${t.name}`);
  for (const n of m.graph.node) if (n.opType === 'Constant') assert.ok(used.has(n.output[0]), `dangling Constant ${n.output[0]}`);
  const names = m.graph.output.map((o) => o.name);
  const produced = new Set(m.graph.node.flatMap((n) => n.output));
  for (const o of names) assert.ok(produced.has(o ?? '') || m.graph.input.some((i) => i.name === o), `graph output ${o} is produced`);
}

const initializer = (m: OnnxModel, name: string) => readTensorAsFloat32(m.graph.initializer.find((t) => t.name === name)!, null);

describe('fold BatchNorm forward (into the following Conv / Gemm)', () => {
  for (const name of ['bn_before_conv', 'bn_flatten_linear', 'gap_bn', 'dropout_bn', 'chains', 'shared_weight']) {
    it(`${name}: folds ${cases[name].fold_forward[0]}, matches PyTorch and the original model`, async () => {
      const m = await load(name);
      const plan = planFoldForward(m);
      const { model: out, plan: done } = applyFoldForward(m);
      assert.equal(done.candidates.length, plan.candidates.length);
      assert.ok(done.candidates.every((c) => c.direction === 'forward'));
      assert.equal(count(out, 'BatchNormalization'), count(m, 'BatchNormalization') - plan.candidates.length);
      assertNoDangling(out);
      assert.deepEqual(out.graph.output.map((o) => o.name), m.graph.output.map((o) => o.name));
      await assertMatchesReference(out, name);
      await assertEquivalent(m, out);
    });
  }

  it('the padded 3x3 conv is not folded, with the reason; 1x1 and unpadded grouped convs are', async () => {
    const m = await load('bn_before_conv');
    const plan = planFoldForward(m);
    assert.deepEqual(plan.candidates.map((c) => c.into).sort(), ['/conv_a/Conv', '/conv_c/Conv']);
    assert.equal(plan.skipped.length, 1);
    assert.match(plan.skipped[0].reason, /\/conv_b\/Conv \(Conv\) pads its input with zeros/);
  });

  it('Flatten -> Gemm: feature c*H*W + j of the weight gets channel c scale (checked against the BN in the file)', async () => {
    const m = await load('bn_flatten_linear');
    const bn = m.graph.node.find((n) => n.opType === 'BatchNormalization')!;
    const gemm = m.graph.node.find((n) => n.opType === 'Gemm')!;
    const [gamma, , , variance] = [1, 2, 3, 4].map((k) => initializer(m, bn.input[k]));
    const eps = bn.attribute.find((a) => a.name === 'epsilon')?.f ?? 1e-5;
    const w = initializer(m, gemm.input[1]); // [5, 120], transB=1: features on axis 1
    const { model: out } = applyFoldForward(m);
    const g2 = out.graph.node.find((n) => n.opType === 'Gemm')!;
    const w2 = initializer(out, g2.input[1]);
    const hw = 6 * 5;
    for (const f of [0, 29, 30, 59, 60, 119]) {
      const c = Math.floor(f / hw);
      const s = gamma[c] / Math.sqrt(variance[c] + eps);
      for (const row of [0, 4]) assert.ok(Math.abs(w2[row * 120 + f] - w[row * 120 + f] * s) <= 1e-6 * Math.abs(w[row * 120 + f] * s) + 1e-7, `feature ${f}`);
    }
    assert.equal(out.graph.node.find((n) => n.opType === 'Flatten')!.input[0], m.graph.node.find((n) => n.opType === 'Relu')!.output[0]);
  });

  it('a weight shared with another conv is copied; the other conv keeps the original bytes', async () => {
    const m = await load('shared_weight');
    const plan = planFoldForward(m);
    assert.match(plan.candidates[0].note!, /weight 'W' of conv_a is also used by conv_b/);
    const { model: out } = applyFoldForward(m);
    const convA = out.graph.node.find((n) => n.name === 'conv_a')!;
    const convB = out.graph.node.find((n) => n.name === 'conv_b')!;
    assert.equal(convB.input[1], 'W');
    assert.notEqual(convA.input[1], 'W');
    assert.equal(convA.input[0], 'x');
    assert.deepEqual(initializer(out, 'W'), initializer(m, 'W'));
  });
});

describe('chains (Conv -> BN -> BN and BN -> BN -> Conv)', () => {
  it('the backward plan counts the chained BN and applyFold folds both; the forward one likewise', async () => {
    const m = await load('chains');
    const back = planFold(m);
    assert.equal(back.candidates.length, 2);
    assert.match(back.candidates[1].note!, /a chain/);
    const b = applyFold(m);
    assert.equal(b.plan.candidates.length, 2, 'each BN reported once');
    assert.equal(count(b.model, 'BatchNormalization'), 2);
    const f = applyFoldForward(b.model);
    assert.equal(f.plan.candidates.length, 2);
    assert.equal(count(f.model, 'BatchNormalization'), 0);
    assert.equal(count(f.model, 'Conv'), 2);
    await assertMatchesReference(f.model, 'chains');
    await assertEquivalent(m, f.model);
    // the public fold API reports the same
    assert.equal(foldBatchNorm(m).plan.candidates.length, 2);
  });
});

describe('BatchNorm -> Mul + Add', () => {
  it('standalone BNs (graph input -> BN -> ReLU / Sigmoid) become Mul+Add with [C,1,1] and [C] constants', async () => {
    const m = await load('standalone_bn');
    const { model: out, plan } = applyBatchNormToAffine(m);
    assert.equal(plan.candidates.length, 2);
    assert.equal(count(out, 'BatchNormalization'), 0);
    assert.deepEqual([count(out, 'Mul'), count(out, 'Add')], [2, 2]);
    const shapes = out.graph.node
      .filter((n) => n.opType === 'Mul')
      .map((n) => out.graph.initializer.find((t) => t.name === n.input[1])!.dims.map(Number));
    assert.deepEqual(shapes.sort((a, b) => a.length - b.length), [[6], [3, 1, 1]]);
    assertNoDangling(out);
    await assertMatchesReference(out, 'standalone_bn');
    await assertEquivalent(m, out);
  });

  it('with the folds first, no BN is left in bn_before_conv and the outputs still match PyTorch', async () => {
    const m = await load('bn_before_conv');
    const f = applyFoldForward(m).model;
    const a = applyBatchNormToAffine(f);
    assert.equal(a.plan.candidates.length, 1);
    assert.equal(count(a.model, 'BatchNormalization'), 0);
    await assertMatchesReference(a.model, 'bn_before_conv');
    await assertEquivalent(m, a.model);
  });
});

describe('remove Dropout', () => {
  for (const name of ['dropout_bn', 'dropout_high_rate', 'memnet', 'dropout_legacy_opset6', 'dropout_special']) {
    it(`${name}: removes ${cases[name].dropout_remove[0]}, keeps output names, matches the reference`, async () => {
      const m = await load(name);
      const { model: out, plan } = applyRemoveDropout(m);
      assert.equal(plan.candidates.length, cases[name].dropout_remove[0]);
      assert.equal(count(out, 'Dropout'), count(m, 'Dropout') - plan.candidates.length);
      assert.deepEqual(out.graph.output.map((o) => o.name), m.graph.output.map((o) => o.name));
      assertNoDangling(out);
      await assertMatchesReference(out, name);
      if (name !== 'dropout_legacy_opset6') await assertEquivalent(m, out, 0);
    });
  }

  it('graph-output names: an Identity when the input is a graph input, the producer renamed otherwise', async () => {
    const { model: out, plan } = applyRemoveDropout(await load('dropout_special'));
    const y1 = out.graph.node.find((n) => n.output[0] === 'y1')!;
    assert.deepEqual([y1.opType, y1.input[0]], ['Identity', 'x']);
    assert.equal(out.graph.node.find((n) => n.output[0] === 'y4')!.name, 'relu4');
    assert.ok(out.graph.node.some((n) => n.name === 'd3'), 'd3 (mask read) stays');
    assert.match(plan.skipped[0].reason, /mask/);
    assert.ok(!out.graph.initializer.some((t) => t.name === 'r1'), "d1's ratio is gone");
  });

  it('a training-mode Dropout is refused and the model returned unchanged', async () => {
    const m = await load('dropout_training_mode');
    const r = applyRemoveDropout(m);
    assert.equal(r.model, m);
    assert.equal(planRemoveDropout(m).skipped.length, 1);
  });

  it('opset 6: the legacy Dropouts and their attributes are gone, IR 3 inputs stay consistent', async () => {
    const m = await load('dropout_legacy_opset6');
    const { model: out, plan } = applyRemoveDropout(m);
    assert.match(plan.candidates[0].note!, /is_test/);
    assert.equal(count(out, 'Dropout'), 0);
    assert.deepEqual(out.graph.input.map((i) => i.name), m.graph.input.map((i) => i.name));
    // onnxruntime has no opset-6 Dropout kernel: it runs the original only when its optimizer drops the nodes
    await assert.rejects(verify(m, out, { samples: 1 }), /Dropout\(6\)/);
    const data = loadDataSet(path.join(DOCTOR, 'dropout_legacy_opset6', 'test_data_set_0'));
    const session = await ort.InferenceSession.create(serialize(m), { graphOptimizationLevel: 'all', logSeverityLevel: 3 });
    try {
      const res = await session.run({ x: new ort.Tensor('float32', Float32Array.from(data.inputs[0].values), data.inputs[0].dims) });
      assert.ok(maxRelErr(res.y.data as Float32Array, data.outputs[0].values) < 1e-5, 'optimized original = identity dropouts');
    } finally {
      await session.release();
    }
  });
});

describe('BatchNorm eval mode', () => {
  it('training-mode BN: the original reproduces PyTorch train(), the rewrite PyTorch eval()', async () => {
    const m = await load('bn_training');
    await assertMatchesReference(m, 'bn_training', 0);
    const { model: out, plan } = applyBatchNormEvalMode(m);
    assert.equal(plan.candidates.length, 1);
    const bn = out.graph.node.find((n) => n.opType === 'BatchNormalization')!;
    assert.equal(bn.output.length, 1);
    assert.ok(!bn.attribute.some((a) => a.name === 'training_mode'));
    await assertMatchesReference(out, 'bn_training', 1);
    await assert.rejects(assertMatchesReference(out, 'bn_training', 0), 'eval and train outputs differ');
    // and now it folds
    const folded = foldBatchNorm(out);
    assert.equal(folded.plan.candidates.length, 1);
    await assertMatchesReference(folded.model as OnnxModel, 'bn_training', 1);
  });
});

describe('the whole doctor on every fixture', () => {
  it('fold back, fold forward, BN -> affine, remove Dropout: outputs still match PyTorch', async () => {
    for (const name of Object.keys(cases)) {
      if (name === 'dropout_training_mode' || name === 'bn_training') continue;
      const m = await load(name);
      let cur = applyFold(m).model;
      cur = applyFoldForward(cur).model;
      cur = applyBatchNormToAffine(cur).model;
      cur = applyRemoveDropout(cur).model;
      assert.equal(count(cur, 'BatchNormalization'), 0, `${name}: every inference BN removed`);
      assertNoDangling(cur);
      assert.ok(existsSync(path.join(DOCTOR, name, 'test_data_set_0')));
      await assertMatchesReference(cur, name);
    }
  });
});
