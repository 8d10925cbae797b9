/** The doctor's CLI commands as a user runs them (dist/cli.js in a child process): audit, plan, fix. */
import { strict as assert } from 'node:assert';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { assertCliBuilt, runCli } from '../helpers/cli';
import { batchNormChannels, loadModel, saveModel } from '../../src/core/api';
import { decodeModel } from '../../src/core/formats/onnx/codec';
import { OnnxModel } from '../../src/core/formats/onnx/model';
import { makeTensorLike, readTensorAsFloat32 } from '../../src/core/formats/onnx/tensor';
import { nsfwModel } from '../helpers/nsfwjs';

const ROOT = path.join(__dirname, '..', '..');
const DOCTOR = path.join(ROOT, 'test', 'fixtures', 'onnx-doctor');
const FCN = path.join(ROOT, 'test', 'fixtures', 'onnx-fold', 'fcn_tiny', 'model.onnx');

const run = runCli;

let tmp = '';
before(() => {
  assertCliBuilt();
  tmp = mkdtempSync(path.join(os.tmpdir(), 'ms-doctor-cli-'));
});
after(() => rmSync(tmp, { recursive: true, force: true }));

describe('model-surgeon audit / plan / fix', () => {
  it('audit --json: the batch-1 hazard of Linear -> BatchNorm1d, with its fix', () => {
    const r = run('audit', path.join(DOCTOR, 'linear_bn1d_b1', 'model.onnx'), '--json');
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout);
    assert.equal(j.batchnorm.rows.length, 1);
    assert.equal(j.batchnorm.rows[0].effective_batch, 1, 'one value per channel at batch 1');
    const f = j.findings.find((x: { code: string }) => x.code === 'bn-batch1-hazard');
    assert.ok(f, JSON.stringify(j.findings.map((x: { code: string }) => x.code)));
    assert.equal(f.fix, 'fold-batchnorm');
  });

  it('audit --batch 16 --input 64x64: effective batch N x H x W after a conv', () => {
    const r = run('audit', FCN, '--json', '--batch', '16', '--input', '64x64');
    assert.equal(r.code, 0, r.stderr);
    const rows = JSON.parse(r.stdout).batchnorm.rows as { layer: string; effective_batch: number }[];
    // fcn_tiny: the first BN follows a stride-2 conv on 64x64 -> 32x32 per channel, 16 images
    assert.equal(rows[0].effective_batch, 16 * 32 * 32);
  });

  it('audit exits 4 on an error-level finding (NaN weights)', async () => {
    const model = (await loadModel(FCN)) as OnnxModel;
    const g = model.graph;
    const w = g.initializer.find((t) => t.name === g.node.find((n) => n.opType === 'Conv')!.input[1])!;
    const data = readTensorAsFloat32(w, null);
    data[3] = NaN;
    const broken = path.join(tmp, 'nan.onnx');
    await saveModel(model.derive({ ...model.proto, graph: { ...g, initializer: g.initializer.map((t) => (t === w ? makeTensorLike(w, data, w.dims.map(Number)) : t)) } }), broken);
    const r = run('audit', broken);
    assert.equal(r.code, 4, r.stdout + r.stderr);
    assert.match(r.stdout, /error: \[weights-non-finite\]/);
  });

  it('plan --json: per-layer rows, training > inference, the batch that fits', () => {
    const r = run('plan', FCN, '--json', '--input', '512x512', '--batch', '4', '--gpu-mem', '12GiB', '--optimizer', 'adam');
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout);
    assert.deepEqual(j.input_shapes.image, [4, 3, 512, 512]);
    assert.ok(j.layers.length > 0);
    assert.ok(j.training.total_bytes > j.inference.total_bytes);
    assert.equal(j.training.optimizer_bytes, 2 * j.training.gradient_bytes, 'Adam keeps two moments per parameter');
    assert.equal(j.budget.bytes, 12 * 1024 ** 3);
    assert.ok(j.budget.max_batch_training >= 1 && j.budget.max_batch_training < j.budget.max_batch_inference);
  });

  it('plan on a Keras model works (NHWC); on a TF.js graph model it says what is supported in one line', () => {
    const keras = path.join(ROOT, 'test', 'fixtures', 'keras');
    const file = readdirSync(keras).find((f) => f.endsWith('.keras'))!;
    assert.equal(run('plan', path.join(keras, file)).code, 0);
    const r = run('plan', nsfwModel('mobilenet_v2_mid'));
    assert.equal(r.code, 1);
    assert.equal(r.stderr.trim().split('\n').length, 1);
    assert.match(r.stderr, /ONNX, TF\.js layers and Keras models/);
  });

  it('fix remove-dropout: verified, written, no Dropout left', () => {
    const out = path.join(tmp, 'nodrop.onnx');
    const r = run('fix', path.join(DOCTOR, 'dropout_bn', 'model.onnx'), 'remove-dropout', '-o', out, '--json');
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout);
    assert.equal(j.applied, 1);
    assert.equal(j.verify.max_abs_error, 0, 'Dropout is the identity at inference');
    assert.ok(!decodeModel(readFileSync(out)).graph!.node.some((n) => n.opType === 'Dropout'));
  });

  it('fix batchnorm-eval-mode changes outputs on purpose and says so', () => {
    const out = path.join(tmp, 'eval.onnx');
    const r = run('fix', path.join(DOCTOR, 'bn_training', 'model.onnx'), 'batchnorm-eval-mode', '-o', out, '--json');
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout);
    assert.equal(j.preserves_outputs, false);
    assert.ok(j.verify.max_abs_error > 0, 'running statistics differ from batch statistics');
    assert.ok(existsSync(out));
  });

  it('unknown fix is a usage error', () => {
    const r = run('fix', FCN, 'make-it-faster', '-o', path.join(tmp, 'x.onnx'));
    assert.equal(r.code, 2);
    assert.match(r.stderr, /unknown fix/);
  });
});

describe('batchNormChannels (what the BatchNorm tab charts)', () => {
  it('per-channel gamma / variance / fold scale of one BatchNorm, checked against the stored tensors', async () => {
    const model = (await loadModel(FCN)) as OnnxModel;
    const bn = model.graph.node.find((n) => n.opType === 'BatchNormalization')!;
    const c = batchNormChannels(model, bn.name!);
    const init = (name: string) => Array.from(readTensorAsFloat32(model.graph.initializer.find((t) => t.name === name)!, null));
    assert.deepEqual(c.gamma, init(bn.input[1]));
    assert.deepEqual(c.variance, init(bn.input[4]));
    c.foldScale.forEach((s, k) => assert.ok(Math.abs(s - Math.abs(c.gamma[k]) / Math.sqrt(c.variance[k] + c.epsilon)) < 1e-12));
    assert.throws(() => batchNormChannels(model, '/enc1/enc1.0/Conv'), /not a BatchNorm/);
  });
});
