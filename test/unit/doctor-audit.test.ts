/**
 * BatchNorm and Dropout audits on real files. Oracles: the way each fixture was built (test/fixtures/onnx-doctor/
 * make_fixtures.py; expected codes and plan counts in cases.json were written by hand from the construction),
 * the BatchNorm parameters PyTorch wrote into the file, and "no false alarms" on the real PaddleOCR classifier
 * and the sample models.
 */
import { strict as assert } from 'node:assert';
import { existsSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import * as ort from 'onnxruntime-node';
import { loadModel, serialize } from '../../src/core/api';
import { auditOnnxBatchNorm, auditOnnxDropout, buildDoctorView } from '../../src/core/formats/onnx/doctor';
import { planFold } from '../../src/core/formats/onnx/fold-batchnorm';
import type { OnnxModel } from '../../src/core/formats/onnx/model';
import { planBatchNormEvalMode } from '../../src/core/formats/onnx/rewrite-bn-eval-mode';
import { planRemoveDropout } from '../../src/core/formats/onnx/rewrite-dropout';
import { planFoldForward } from '../../src/core/formats/onnx/rewrite-fold-bn-forward';
import { planBatchNormToAffine } from '../../src/core/formats/onnx/rewrite-standalone-bn';
import type { Finding } from '../../src/core/types';

const ROOT = path.join(__dirname, '..', '..');
const DOCTOR = path.join(ROOT, 'test', 'fixtures', 'onnx-doctor');
const PADDLE = path.join(ROOT, 'node_modules', '@gutenye', 'ocr-models', 'assets', 'ch_ppocr_mobile_v2.0_cls_infer.onnx');

interface Case {
  codes: string[];
  absent: string[];
  fold_backward: [number, number];
  fold_forward: [number, number];
  affine: [number, number];
  dropout_remove: [number, number];
  bn_eval: [number, number];
  zero_variance?: number[];
  zero_gamma?: number[];
  negative_gamma?: number;
}
const cases = JSON.parse(readFileSync(path.join(DOCTOR, 'cases.json'), 'utf8')) as Record<string, Case>;

const load = async (name: string) => (await loadModel(path.join(DOCTOR, name, 'model.onnx'))) as OnnxModel;
const audit = (m: OnnxModel, opts = {}) => {
  const bn = auditOnnxBatchNorm(m, opts);
  const dr = auditOnnxDropout(m);
  return { bn, dr, findings: [...bn.findings, ...dr.findings] };
};
const byCode = (f: Finding[], code: string) => f.filter((x) => x.code === code);
const counts = (p: { candidates: unknown[]; skipped: unknown[] }) => [p.candidates.length, p.skipped.length];

function assertWellFormed(f: Finding): void {
  assert.match(f.code, /^(bn|dropout)-[a-z0-9-]+$/, f.code);
  assert.ok(['error', 'warning', 'info'].includes(f.severity));
  assert.ok(f.layers.length > 0, `${f.code} names its layers`);
  assert.ok(f.message.length > 60 && !f.message.includes('undefined') && !f.message.includes('NaN'), `${f.code}: ${f.message}`);
}

describe('doctor audit: fixtures (expected codes and plan counts written by hand)', () => {
  for (const [name, exp] of Object.entries(cases)) {
    it(name, async () => {
      const m = await load(name);
      const { findings } = audit(m);
      findings.forEach(assertWellFormed);
      const codes = new Set(findings.map((f) => f.code));
      for (const c of exp.codes) assert.ok(codes.has(c), `${name}: expected ${c}, got ${[...codes].join(', ')}`);
      for (const c of exp.absent) assert.ok(!codes.has(c), `${name}: unexpected ${c}`);
      assert.deepEqual(counts(planFold(m)), exp.fold_backward, 'backward fold plan');
      assert.deepEqual(counts(planFoldForward(m)), exp.fold_forward, 'forward fold plan');
      assert.deepEqual(counts(planBatchNormToAffine(m)), exp.affine, 'BN -> affine plan');
      assert.deepEqual(counts(planRemoveDropout(m)), exp.dropout_remove, 'Dropout removal plan');
      assert.deepEqual(counts(planBatchNormEvalMode(m)), exp.bn_eval, 'BN eval-mode plan');
      for (const p of [planFold(m), planFoldForward(m)]) for (const s of p.skipped) assert.match(s.reason, /\w+ \w+ \w+/);
    });
  }
});

describe('doctor audit: BatchNorm effective batch', () => {
  it('Linear -> BatchNorm1d at batch 1: one value per channel, a warning with the fold as fix', async () => {
    const { bn } = audit(await load('linear_bn1d_b1'));
    assert.equal(bn.batch_size, 1);
    assert.equal(bn.batch_source, 'model');
    assert.equal(bn.rows.length, 1);
    const r = bn.rows[0];
    assert.deepEqual([r.context, r.effective_batch, r.channels, r.producer_op, r.fold], ['dense', 1, 8, 'Dense', 'backward']);
    const [f] = byCode(bn.findings, 'bn-batch1-hazard');
    assert.equal(f.severity, 'warning');
    assert.equal(f.fix, 'fold-batchnorm');
    assert.deepEqual(f.fixes, ['fold-batchnorm', 'freeze-batchnorm', 'replace-batchnorm-groupnorm']);
    assert.match(f.message, /Expected more than 1 value per channel when training/);
    assert.equal(f.details?.effective_batch, 1);
  });

  it('global pooling -> BN: N values per channel at any input size; batch 1 makes it a hazard', async () => {
    const m = await load('gap_bn');
    const at2 = audit(m).bn;
    const [conv, pooled] = at2.rows;
    assert.deepEqual([conv.context, conv.effective_batch], ['spatial', 2 * 10 * 10]);
    assert.deepEqual([pooled.context, pooled.effective_batch, pooled.fold], ['global-pooled', 2, 'forward']);
    assert.equal(byCode(at2.findings, 'bn-no-spatial-extent')[0].fix, 'fold-batchnorm-forward');
    const at1 = auditOnnxBatchNorm(m, { batchSize: 1 });
    assert.equal(at1.batch_source, 'option');
    assert.deepEqual(byCode(at1.findings, 'bn-batch1-hazard').map((f) => f.layers[0]), [pooled.layer]);
    // a bigger image does not help a BN after global pooling
    const big = auditOnnxBatchNorm(m, { batchSize: 1, inputShapes: { input: [1, 3, 64, 64] } });
    assert.deepEqual(big.rows.map((r) => r.effective_batch), [64 * 64, 1]);
  });

  it('1x1 feature maps at a small input size are named as such (memnet at 2x2: pooling leaves 1x1)', async () => {
    const m = await load('memnet');
    const r = auditOnnxBatchNorm(m, { batchSize: 1, dims: { H: 2, W: 2 } });
    assert.deepEqual(r.input_shapes.image, [1, 3, 2, 2]);
    assert.deepEqual(r.rows.map((x) => [x.context, x.effective_batch]), [['spatial', 4], ['spatial-1x1', 1], ['spatial-1x1', 1]]);
    assert.equal(byCode(r.findings, 'bn-batch1-hazard').length, 2);
    // at its real size no BN is in trouble, and symbolic H/W without values stay unknown instead of defaulting to 1
    assert.equal(byCode(auditOnnxBatchNorm(m, { dims: { H: 32, W: 32 } }).findings, 'bn-batch1-hazard').length, 0);
    const unknown = auditOnnxBatchNorm(m);
    assert.equal(unknown.batch_source, 'assumed');
    assert.deepEqual(unknown.rows.map((x) => x.effective_batch), [null, null, null]);
    assert.equal(unknown.findings.filter((f) => f.severity !== 'info').length, 0);
  });

  it('a BN on an [N, C] graph input normalizes over the batch alone', async () => {
    const { bn } = audit(await load('standalone_bn'));
    const vec = bn.rows.find((r) => r.channels === 6)!;
    assert.deepEqual([vec.context, vec.effective_batch, vec.producer, vec.fold], ['vector', 4, null, 'affine']);
    const img = bn.rows.find((r) => r.channels === 3)!;
    assert.deepEqual([img.context, img.effective_batch], ['spatial', 64]);
    const unfold = byCode(bn.findings, 'bn-unfoldable');
    assert.equal(unfold.length, 2);
    for (const f of unfold) {
      assert.equal(f.fix, 'batchnorm-to-affine');
      assert.match(f.message, /graph input/);
      assert.match(f.message, /not a linear layer/);
    }
  });
});

describe('doctor audit: BatchNorm parameters (as set in make_fixtures.py)', () => {
  it('zero variance, zero gamma, negative gamma and the huge fold scale are found where they were put', async () => {
    const { bn } = audit(await load('bn_stats'));
    const r = bn.rows[0];
    assert.deepEqual(r.low_variance_channels, cases.bn_stats.zero_variance);
    assert.deepEqual(r.low_gamma_channels, cases.bn_stats.zero_gamma);
    assert.deepEqual(r.negative_gamma_channels, [3, 5]);
    assert.equal(r.max_fold_scale_channel, 4);
    // gamma 8, var 1e-7, eps 1e-5 (float32 as stored)
    const expected = 8 / Math.sqrt(Math.fround(1e-7) + Math.fround(1e-5));
    assert.ok(Math.abs(r.max_fold_scale! - expected) < 1e-3 * expected, `${r.max_fold_scale} vs ${expected}`);
    for (const code of ['bn-zero-variance', 'bn-zero-gamma', 'bn-negative-gamma', 'bn-large-fold-scale']) {
      const f = byCode(bn.findings, code);
      assert.equal(f.length, 1, code);
      assert.equal(f[0].severity, 'info');
      assert.deepEqual(f[0].layers, [r.layer]);
    }
    assert.equal(byCode(bn.findings, 'bn-negative-gamma')[0].details?.channels, 2);
  });

  it('training-mode BN: a warning with the eval-mode rewrite as fix, and no effective-batch finding', async () => {
    const { bn } = audit(await load('bn_training'));
    assert.equal(bn.rows[0].training_mode, true);
    const [f] = byCode(bn.findings, 'bn-training-mode');
    assert.equal(f.severity, 'warning');
    assert.equal(f.fix, 'batchnorm-eval-mode');
    assert.equal(byCode(bn.findings, 'bn-unfoldable').length, 0);
  });

  it('BN before convs: exact forward folds and the padded one explained', async () => {
    const { bn } = audit(await load('bn_before_conv'));
    const byConv = Object.fromEntries(bn.rows.map((r) => [r.fold_into ?? r.layer, r]));
    assert.equal(byConv['/conv_a/Conv'].fold, 'forward');
    assert.equal(byConv['/conv_c/Conv'].fold, 'forward');
    const padded = bn.rows.find((r) => r.fold === 'affine')!;
    assert.match(padded.forward_blocker!, /pads its input with zeros \(pads \[1, 1, 1, 1\]\).*border/);
    assert.match(padded.backward_blocker!, /graph input/);
  });
});

describe('doctor audit: Dropout', () => {
  it('Dropout directly before BN: variance shift with the ratio 1/(1-p); the node is a removable no-op', async () => {
    const { dr } = audit(await load('dropout_bn'));
    const [row] = dr.rows;
    assert.ok(Math.abs(row.rate! - 0.2) < 1e-7);
    assert.deepEqual([row.mode, row.hops_to_batchnorm, row.feeds_batchnorm.length, row.removable, row.mask_used], ['inference', 0, 1, true, false]);
    const [shift] = byCode(dr.findings, 'dropout-before-bn');
    assert.equal(shift.severity, 'warning');
    assert.ok(Math.abs((shift.details?.variance_ratio as number) - 1.25) < 1e-6);
    assert.match(shift.message, /Li et al/);
    const [noop] = byCode(dr.findings, 'dropout-in-inference-graph');
    assert.equal(noop.fix, 'remove-dropout');
    assert.match(noop.message, /1\/\(1-p\) during training/);
  });

  it('p=0.6 feeding a BN through a conv is high-rate; the head dropout after the last BN raises no shift finding', async () => {
    const { dr } = audit(await load('dropout_high_rate'));
    const [mid, head] = dr.rows;
    assert.deepEqual([mid.hops_to_batchnorm, mid.feeds_batchnorm.length], [1, 1]);
    assert.deepEqual(head.feeds_batchnorm, []);
    const [f] = byCode(dr.findings, 'dropout-high-rate-near-bn');
    assert.deepEqual(f.layers[0], mid.layer);
    assert.ok(Math.abs((f.details?.variance_ratio as number) - 2.5) < 1e-5);
    assert.equal(byCode(dr.findings, 'dropout-in-inference-graph').length, 2);
  });

  it('opset-6 Dropout: is_test=0 is a warning (training by the spec), is_test=1 an info; both removable', async () => {
    const { dr } = audit(await load('dropout_legacy_opset6'));
    assert.deepEqual(dr.rows.map((r) => [r.layer, r.legacy_is_test, r.mode, r.removable]), [
      ['drop_train', 0, 'training', true],
      ['drop_test', 1, 'inference', true],
    ]);
    assert.equal(byCode(dr.findings, 'dropout-legacy-training')[0].severity, 'warning');
    assert.equal(byCode(dr.findings, 'dropout-legacy-is-test')[0].fix, 'remove-dropout');
  });

  it('training_mode: constant true is a warning and not removable; a graph input decides at run time', async () => {
    const tm = audit(await load('dropout_training_mode')).dr;
    assert.equal(tm.rows[0].mode, 'training');
    assert.equal(byCode(tm.findings, 'dropout-training-mode')[0].severity, 'warning');
    assert.match(tm.rows[0].blocker!, /constant true/);

    const m = await load('dropout_special');
    const g = m.graph;
    const d1 = g.node.find((n) => n.name === 'd1')!;
    const flag = { name: 'train_flag', type: { tensorType: { elemType: 9, shape: { dim: [] } } }, metadataProps: [] };
    const dyn = m.derive({ ...m.proto, graph: { ...g, input: [...g.input, flag], node: g.node.map((n) => (n === d1 ? { ...n, input: [...n.input, 'train_flag'] } : n)) } });
    const r = audit(dyn).dr;
    assert.equal(r.rows.find((x) => x.layer === 'd1')!.mode, 'dynamic');
    assert.equal(byCode(r.findings, 'dropout-training-mode-input').length, 1);
    assert.match(planRemoveDropout(dyn).skipped.find((s) => s.layer === 'd1')!.reason, /run time/);
  });

  it('a used mask output blocks removal', async () => {
    const { dr } = audit(await load('dropout_special'));
    const d3 = dr.rows.find((r) => r.layer === 'd3')!;
    assert.deepEqual([d3.mask_used, d3.removable], [true, false]);
    assert.match(d3.blocker!, /mask output is read by cast3/);
    assert.equal(byCode(dr.findings, 'dropout-mask-used')[0].layers[0], 'd3');
  });
});

describe('doctor audit: real models, no false alarms', () => {
  it('PaddleOCR classifier: 35 Conv->BN, all foldable, nothing to report (with and without its input size)', async () => {
    const m = (await loadModel(PADDLE)) as OnnxModel;
    for (const dims of [undefined, { 'p2o.DynamicDimension.1': 48, 'p2o.DynamicDimension.2': 192 }]) {
      const { bn, dr, findings } = audit(m, dims ? { dims } : {});
      assert.equal(bn.rows.length, 35);
      assert.ok(bn.rows.every((r) => r.context === 'spatial' && r.fold === 'backward' && ['Conv', 'DepthwiseConv'].includes(r.producer_op!)));
      assert.equal(dr.rows.length, 0);
      assert.deepEqual(findings, [], JSON.stringify(findings.slice(0, 3)));
      if (dims) {
        assert.deepEqual(bn.input_shapes.x, [1, 3, 48, 192]);
        // oracle: onnxruntime's real BN output shapes at 1x3x48x192 (N x H x W per channel)
        const g = m.graph;
        const outs = g.node.filter((n) => n.opType === 'BatchNormalization').map((n) => n.output[0]);
        const probe = m.derive({ ...m.proto, graph: { ...g, output: [...g.output, ...outs.map((name) => ({ name, metadataProps: [] }))] } });
        const session = await ort.InferenceSession.create(serialize(probe), { graphOptimizationLevel: 'disabled' });
        try {
          const res = await session.run({ x: new ort.Tensor('float32', new Float32Array(3 * 48 * 192), [1, 3, 48, 192]) });
          const real = outs.map((o) => res[o].dims.reduce((p, d, k) => (k === 1 ? p : p * d), 1));
          assert.deepEqual(bn.rows.map((r) => r.effective_batch), real);
          assert.equal(Math.min(...real), 192);
        } finally {
          await session.release();
        }
      } else assert.ok(bn.rows.every((r) => r.effective_batch === null), 'unknown H, W are not guessed');
    }
  });

  it('samples: only what their construction explains', async () => {
    const expected: Record<string, string[]> = {
      'fcn_tiny.onnx': ['bn-negative-gamma'],
      'convtranspose_bn.onnx': ['bn-negative-gamma'],
      'linear_bn1d.onnx': ['bn-negative-gamma', 'bn-no-spatial-extent'],
      'unfoldable.onnx': ['bn-negative-gamma', 'bn-unfoldable'],
    };
    for (const [file, codes] of Object.entries(expected)) {
      const m = (await loadModel(path.join(ROOT, 'samples', file))) as OnnxModel;
      const { findings } = audit(m);
      findings.forEach(assertWellFormed);
      assert.deepEqual([...new Set(findings.map((f) => f.code))].sort(), codes, file);
      assert.ok(findings.every((f) => f.severity === 'info'), file);
    }
  });

  it('ONNX backend test data: BN whose parameters are graph inputs is unfoldable with that reason', async () => {
    const dir = path.join(ROOT, '.cache', 'onnx-testdata', 'node', 'test_batchnorm_example');
    assert.ok(existsSync(dir), 'ONNX test data missing: run bash test/setup/onnx-testdata.sh');
    const { bn } = audit((await loadModel(path.join(dir, 'model.onnx'))) as OnnxModel);
    const [f] = byCode(bn.findings, 'bn-unfoldable');
    assert.match(f.message, /not a constant/);
    assert.equal(f.fix, undefined);
  });

  it('the doctor view knows every output shape and the Dropout semantics', async () => {
    const v = buildDoctorView(await load('dropout_special'));
    const d3 = v.layers.find((l) => l.name === 'd3')!;
    assert.deepEqual(d3.outputShapes, [[2, 5], [2, 5]]);
    assert.deepEqual(d3.dropout, { rate: Math.fround(0.1), mode: 'inference', maskOutput: 1 });
    assert.deepEqual(v.layers.find((l) => l.name === 'd4')!.dropout, { rate: 0.5, mode: 'inference' });
  });
});
