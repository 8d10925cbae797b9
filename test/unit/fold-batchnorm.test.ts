/**
 * Fold BatchNorm on real models. Oracles: PyTorch's own outputs (test_data_set_0, written by
 * test/fixtures/onnx-fold/make_fixtures.py), and onnxruntime running the ORIGINAL model. Expected counts
 * (cases.json) were written by hand from each model's construction.
 */
import { strict as assert } from 'node:assert';
import { readFileSync, existsSync, mkdirSync, mkdtempSync, writeFileSync, readdirSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { foldBatchNorm, loadModel, planFoldBatchNorm, saveModel, serialize, verify, type Model } from '../../src/core/api';
import { OnnxModel } from '../../src/core/formats/onnx/model';
import { decodeModel } from '../../src/core/formats/onnx/codec';
import { runWithOrt, loadDataSet } from '../helpers/ort';
import { batchNormAffine } from '../../src/core/rewrites/batchnorm-math';
import { assertClose } from '../helpers/assert-close';

const FIXTURES = path.join(__dirname, '..', 'fixtures', 'onnx-fold');
const cases = JSON.parse(readFileSync(path.join(FIXTURES, 'cases.json'), 'utf8')) as Record<string, { batchnorm_nodes: number; foldable: number; skip: number }>;

function bnCount(m: Model): number {
  return (m as OnnxModel).graph.node.filter((n) => n.opType === 'BatchNormalization').length;
}

/** every initializer and Constant output is read by some node (or is a graph output) */
function assertNoDangling(m: OnnxModel): void {
  const used = new Set<string>();
  const walk = (g: typeof m.graph) => {
    for (const n of g.node) {
      n.input.forEach((i) => used.add(i));
      for (const a of n.attribute) [a.g, ...a.graphs].forEach((sg) => sg && walk(sg));
    }
    g.output.forEach((o) => used.add(o.name ?? ''));
  };
  walk(m.graph);
  for (const t of m.graph.initializer) assert.ok(used.has(t.name ?? ''), `dangling initializer ${t.name}`);
  for (const n of m.graph.node) if (n.opType === 'Constant') assert.ok(used.has(n.output[0]), `dangling Constant ${n.output[0]}`);
}

describe('fold BatchNorm: PyTorch / onnx.helper fixtures', () => {
  for (const [name, expected] of Object.entries(cases)) {
    it(`${name}: plan, fold, match PyTorch outputs`, async () => {
      const dir = path.join(FIXTURES, name);
      const model = await loadModel(path.join(dir, 'model.onnx'));
      assert.equal(bnCount(model), expected.batchnorm_nodes, 'BN nodes in the fixture');
      const plan = planFoldBatchNorm(model);
      assert.equal(plan.candidates.length, expected.foldable, `foldable: ${JSON.stringify(plan)}`);
      assert.equal(plan.skipped.length, expected.skip, `skipped: ${JSON.stringify(plan.skipped)}`);
      for (const s of plan.skipped) assert.match(s.reason, /\w+ \w+/, 'a reason in words');

      const result = foldBatchNorm(model);
      const folded = result.model as OnnxModel;
      assert.equal(bnCount(folded), expected.batchnorm_nodes - expected.foldable, 'BN nodes left');
      // a BN after a bias-less MatMul becomes the Add of its shift; every other fold removes a layer
      const matmulOnly = result.plan.candidates.filter((c) => c.into_op === 'MatMul').length;
      assert.equal(result.size.layers_after, result.size.layers_before - expected.foldable + matmulOnly);
      assertNoDangling(folded);
      // same IR / opsets
      const orig = (model as OnnxModel).proto;
      assert.equal(folded.proto.irVersion, orig.irVersion);
      assert.deepEqual(folded.proto.opsetImport, orig.opsetImport);

      // re-decode what would be saved, run it in onnxruntime on PyTorch's inputs, compare with PyTorch's outputs
      const data = loadDataSet(path.join(dir, 'test_data_set_0'));
      const bytes = serialize(folded);
      decodeModel(bytes);
      if (data.outputs.length && name !== 'unfoldable_training_mode') {
        const got = await runWithOrt(bytes, data.inputs);
        data.outputs.forEach((exp, k) => assertClose(got[k], exp.values, 1e-4, `${name} output ${k}`));
      }
      if (expected.foldable > 0) {
        const v = await verify(model, folded, { samples: 2, dims: { N: 2 } });
        assert.ok(v.max_rel_error < 1e-5, `verify ${JSON.stringify(v)}`);
      }
    });
  }

  it('shared weights are duplicated, the other user keeps the original', async () => {
    // conv_bn_relu's first conv weight shared by a second Conv reading the same initializer
    const model = (await loadModel(path.join(FIXTURES, 'conv_bn_relu', 'model.onnx'))) as OnnxModel;
    const g = model.graph;
    const conv = g.node.find((n) => n.opType === 'Conv')!;
    const extra = { ...conv, name: 'extra_conv', output: ['extra_out'], input: [conv.input[0], conv.input[1]] };
    const proto = { ...model.proto, graph: { ...g, node: [...g.node, extra], output: [...g.output, { name: 'extra_out', metadataProps: [] }] } };
    const shared = model.derive(proto);
    const result = foldBatchNorm(shared);
    const fg = (result.model as OnnxModel).graph;
    const extraAfter = fg.node.find((n) => n.name === 'extra_conv')!;
    assert.equal(extraAfter.input[1], conv.input[1], 'the other user still reads the original weight');
    const convAfter = fg.node.find((n) => n.name === conv.name)!;
    assert.notEqual(convAfter.input[1], conv.input[1], 'the folded conv reads a copy');
    const v = await verify(shared, result.model, { samples: 1 });
    assert.ok(v.max_rel_error < 1e-5, JSON.stringify(v));
  });
});

describe('fold BatchNorm: PaddleOCR classifier (real weights in Constant nodes)', () => {
  const file = path.join(__dirname, '..', '..', 'node_modules', '@gutenye', 'ocr-models', 'assets', 'ch_ppocr_mobile_v2.0_cls_infer.onnx');
  it('folds all 35 Conv->BN, saves, re-loads and verifies', async () => {
    const model = await loadModel(file);
    assert.equal(bnCount(model), 35);
    const plan = planFoldBatchNorm(model);
    assert.equal(plan.candidates.length, 35);
    assert.ok(plan.candidates.every((c) => c.into_op === 'Conv'));
    const result = foldBatchNorm(model);
    assert.equal(bnCount(result.model), 0);
    assertNoDangling(result.model as OnnxModel);
    assert.ok(result.size.params_after < result.size.params_before, 'BN parameters are gone');
    const dir = mkdtempSync(path.join(os.tmpdir(), 'ms-fold-'));
    try {
      const out = path.join(dir, 'cls_folded.onnx');
      await saveModel(result.model, out);
      assert.deepEqual(readdirSync(dir), ['cls_folded.onnx'], 'no temp files left');
      const again = await loadModel(out);
      assert.equal(bnCount(again), 0);
      const dims = { 'p2o.DynamicDimension.0': 2, 'p2o.DynamicDimension.1': 48, 'p2o.DynamicDimension.2': 192 };
      const v = await verify(model, again, { samples: 2, dims });
      assert.ok(v.max_rel_error < 1e-4, JSON.stringify(v));
      assert.deepEqual(v.input_shapes.x, [2, 3, 48, 192]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('fold BatchNorm: ONNX backend test data (Debian libonnx-testdata)', () => {
  it('standalone BN (graph inputs) and training-mode BN are skipped with reasons', async () => {
    const root = path.join(__dirname, '..', '..', '.cache', 'onnx-testdata', 'node');
    assert.ok(existsSync(root), 'ONNX test data missing: run bash test/setup/onnx-testdata.sh');
    for (const name of ['test_batchnorm_example', 'test_batchnorm_epsilon', 'test_batchnorm_example_training_mode']) {
      const model = await loadModel(path.join(root, name, 'model.onnx'));
      const plan = planFoldBatchNorm(model);
      assert.equal(plan.candidates.length, 0, name);
      assert.equal(plan.skipped.length, 1, name);
      assert.match(plan.skipped[0].reason, name.includes('training') ? /training mode/ : /not a constant|graph input/, name);
    }
  });
});

describe('saving is atomic', () => {
  it('a failed save leaves the target untouched and no temp file', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'ms-atomic-'));
    try {
      // the target is a non-empty folder: the final rename fails after the temp file was fully written
      const target = path.join(dir, 'm.onnx');
      mkdirSync(target);
      writeFileSync(path.join(target, 'keep.txt'), 'original');
      const model = await loadModel(path.join(FIXTURES, 'conv_bn_relu', 'model.onnx'));
      await assert.rejects(saveModel(model, target), (err: Error) => err.name === 'ModelError' && !err.message.includes('\n'));
      assert.equal(readFileSync(path.join(target, 'keep.txt'), 'utf8'), 'original');
      assert.deepEqual(readdirSync(dir), ['m.onnx'], 'no temp files');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('BatchNorm arithmetic vs ONNX backend test data', () => {
  it('x * scale + shift reproduces the expected BatchNormalization outputs', async () => {
    const root = path.join(__dirname, '..', '..', '.cache', 'onnx-testdata', 'node');
    assert.ok(existsSync(root), 'ONNX test data missing: run bash test/setup/onnx-testdata.sh');
    for (const name of ['test_batchnorm_example', 'test_batchnorm_epsilon']) {
      const model = (await loadModel(path.join(root, name, 'model.onnx'))) as OnnxModel;
      const bn = model.graph.node[0];
      const eps = bn.attribute.find((a) => a.name === 'epsilon')?.f ?? 1e-5;
      const { inputs, outputs } = loadDataSet(path.join(root, name, 'test_data_set_0'));
      const [x, gamma, beta, mean, variance] = inputs.map((t) => Float32Array.from(t.values));
      const affine = batchNormAffine(gamma, beta, mean, variance, eps);
      const [n, c] = inputs[0].dims;
      const inner = x.length / (n * c);
      const y = new Float64Array(x.length);
      for (let i = 0; i < x.length; i++) {
        const ch = Math.floor(i / inner) % c;
        y[i] = x[i] * affine.scale[ch] + affine.shift[ch];
      }
      assertClose(y, outputs[0].values, 1e-5, name);
    }
  });
});
