/**
 * Issue #4's folding matrix for the Keras family (TF.js layers, Keras 2 .h5, Keras 3 .keras): fold-batchnorm-
 * forward (BN -> Conv2D 'valid' / 1x1 'same', BN -> Flatten -> Dense with H != W; 3x3 'same' skipped),
 * batchnorm-to-affine (4-D BN -> 1x1 DepthwiseConv2D; [N, C] skipped), chains both ways, shared BNs, the audit.
 * Oracles: TensorFlow.js running the original and the rewritten model (float32 rounding only), and PyTorch's
 * output of the original fixture (make_forward_fixtures.py, forward_expected.json) against TF.js running the
 * REWRITTEN file after it was written and read back.
 */
import { strict as assert } from 'node:assert';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { applyFix, audit, foldBatchNorm, loadModel, planFix, saveModel, verify, type Model } from '../../src/core/api';
import { clone, isObject, type JsonObject } from '../../src/core/formats/keras/json';
import { KerasModel } from '../../src/core/formats/keras/model';
import { layerList } from '../../src/core/formats/keras/topology';
import type { FoldPlan, RewritePlan } from '../../src/core/types';
import { relError, runKerasOnInput } from '../helpers/tfjs-files';

const DIR = path.join(__dirname, '..', 'fixtures', 'keras');
interface Expected {
  input_shape: number[];
  input: number[];
  output_shape: number[];
  output: number[];
}
const expected = JSON.parse(readFileSync(path.join(DIR, 'forward_expected.json'), 'utf8')) as Record<string, Expected>;

let tmp = '';
before(() => (tmp = mkdtempSync(path.join(os.tmpdir(), 'ms-kfwd-'))));
after(() => rmSync(tmp, { recursive: true, force: true }));

/** TF.js output of a Keras-topology model on the fixture's input */
function run(m: Model, name: string): Promise<Float32Array> {
  return runKerasOnInput(m, name, expected[name]);
}

/** the .h5 model as a TF.js layers model.json (Keras 2 config, manifest names layer/key), written and read back */
async function asTfjs(name: string): Promise<Model> {
  const h5 = (await loadModel(path.join(DIR, `${name}.h5`))) as KerasModel;
  const cfg = clone(h5.modelConfig);
  const weights = h5.weights.map((w) => ({ ...w, storeName: `${w.layerPath.join('/')}/${w.key}`, group: 0 }));
  const json: JsonObject = { format: 'layers-model', generatedBy: 'test', convertedBy: null, modelTopology: { keras_version: '2.13.1', backend: 'tensorflow', model_config: cfg } };
  const m = new KerasModel('tfjs-layers', DIR, null, cfg, weights, { kind: 'tfjs-layers', json, groups: [] });
  const file = path.join(tmp, `${name}-src`, 'model.json');
  mkdirSync(path.dirname(file), { recursive: true });
  await saveModel(m, file);
  return loadModel(file);
}

async function open(name: string, kind: string): Promise<Model> {
  return kind === 'tfjs' ? asTfjs(name) : loadModel(path.join(DIR, `${name}.${kind}`));
}

const classes = (m: Model) => layerList((m as KerasModel).modelConfig).map((e) => (isObject(e) ? String(e.class_name) : ''));
function entry(m: Model, name: string): JsonObject {
  const e = layerList((m as KerasModel).modelConfig).find((x) => isObject(x) && isObject(x.config) && x.config.name === name);
  assert.ok(e && isObject(e), `layer ${name}`);
  return e;
}

/** writes, reads back, and checks TF.js on the file against PyTorch's output of the original */
async function roundTrip(m: Model, name: string, kind: string, tag: string): Promise<Model> {
  const out = kind === 'tfjs' ? path.join(tmp, `${name}-${tag}`, 'model.json') : path.join(tmp, `${name}-${tag}.${kind}`);
  mkdirSync(path.dirname(out), { recursive: true });
  await saveModel(m, out);
  const back = await loadModel(out);
  assert.deepEqual(classes(back), classes(m));
  const err = relError(expected[name].output, await run(back, name));
  assert.ok(err < 1e-5, `${tag} ${kind}: TF.js on the written file vs PyTorch: ${err}`);
  return back;
}

for (const kind of ['h5', 'keras', 'tfjs']) {
  describe(`Keras forward fold / BN -> affine (${kind})`, () => {
    it('the fixture runs in TF.js as PyTorch computed it', async () => {
      for (const name of ['fwd_func', 'fwd_chain']) assert.ok(relError(expected[name].output, await run(await open(name, kind), name)) < 1e-5, name);
    });

    it('fold-batchnorm-forward: valid conv, 1x1 same conv, Flatten -> Dense; 3x3 same and model outputs skipped', async () => {
      const m = await open('fwd_func', kind);
      const plan = planFix(m, 'fold-batchnorm-forward') as FoldPlan;
      assert.deepEqual(
        plan.candidates.map((c) => [c.batchnorm, c.into, c.direction]),
        [
          ['bn_a', 'conv_v', 'forward'],
          ['bn_b', 'conv_1', 'forward'],
          ['bn_d', 'dense1', 'forward'],
        ],
      );
      assert.match(plan.candidates[2].note ?? '', /through flat/);
      const why = new Map(plan.skipped.map((s) => [s.layer, s.reason]));
      assert.match(why.get('bn_c') ?? '', /conv_s uses 'same' padding with a 3x3 kernel.*not exact/);
      assert.match(why.get('bn_e') ?? '', /model output/);
      const r = applyFix(m, 'fold-batchnorm-forward');
      assert.equal(r.applied, 3);
      assert.equal(r.preserves_outputs, true);
      assert.deepEqual(classes(r.model).filter((c) => c === 'BatchNormalization').length, 2);
      const cv = entry(r.model, 'conv_v').config as JsonObject;
      assert.equal(cv.use_bias, true, 'a bias was added to the bias-less conv');
      assert.ok((r.model as KerasModel).weightsOf(['conv_v']).some((w) => w.key === 'bias' && w.shape[0] === 4));
      const v = await verify(m, r.model, { samples: 2 });
      assert.ok(v.max_rel_error < 1e-5, `verify ${v.max_rel_error}`);
      await roundTrip(r.model, 'fwd_func', kind, 'fwd');
    });

    it('batchnorm-to-affine: the 4-D BN becomes a 1x1 DepthwiseConv2D, the [N, C] one stays', async () => {
      const m = await open('fwd_func', kind);
      const r = applyFix(m, 'batchnorm-to-affine');
      const plan = r.plan as RewritePlan;
      assert.deepEqual(plan.candidates.map((c) => c.layer), ['bn_c']);
      const why = new Map(plan.skipped.map((s) => [s.layer, s.reason]));
      assert.match(why.get('bn_e') ?? '', /\[N, C\] tensor.*C x C/);
      assert.match(why.get('bn_a') ?? '', /fold-batchnorm-forward/);
      const e = entry(r.model, 'bn_c');
      assert.equal(e.class_name, 'DepthwiseConv2D');
      assert.deepEqual((e.config as JsonObject).kernel_size, [1, 1]);
      assert.deepEqual(
        (r.model as KerasModel).weightsOf(['bn_c']).map((w) => [w.key, w.shape]),
        [
          ['depthwise_kernel', [1, 1, 5, 1]],
          ['bias', [5]],
        ],
      );
      const v = await verify(m, r.model, { samples: 2 });
      assert.ok(v.max_rel_error < 1e-5, `verify ${v.max_rel_error}`);
      const back = await roundTrip(r.model, 'fwd_func', kind, 'affine');
      // both rewrites together: only the [N, C] BN is left
      const both = applyFix(applyFix(back, 'fold-batchnorm-forward').model, 'batchnorm-to-affine');
      assert.deepEqual(classes(both.model).filter((c) => c === 'BatchNormalization').length, 1);
      await roundTrip(both.model, 'fwd_func', kind, 'both');
    });

    it('chains fold completely: Conv -> BN -> BN backward, BN -> BN -> Conv forward', async () => {
      const m = await open('fwd_chain', kind);
      const back = foldBatchNorm(m);
      assert.deepEqual(back.plan.candidates.map((c) => [c.batchnorm, c.into]), [['bn1', 'conv'], ['bn2', 'conv']]);
      const fwd = applyFix(back.model, 'fold-batchnorm-forward');
      assert.deepEqual((fwd.plan as FoldPlan).candidates.map((c) => [c.batchnorm, c.into]), [['bn4', 'conv2'], ['bn3', 'conv2']]);
      assert.ok(!classes(fwd.model).includes('BatchNormalization'));
      assert.ok((await verify(m, fwd.model, { samples: 2 })).max_rel_error < 1e-5);
      await roundTrip(fwd.model, 'fwd_chain', kind, 'chain');
    });
  });
}

describe('Keras forward fold: shared layers and the audit', () => {
  it('a shared (twice-called) BatchNorm is skipped with the reason', async () => {
    const m = (await loadModel(path.join(DIR, 'fwd_func.h5'))) as KerasModel;
    const cfg = clone(m.modelConfig);
    const bn = layerList(cfg).find((x) => isObject(x) && isObject(x.config) && x.config.name === 'bn_b') as JsonObject;
    bn.inbound_nodes = [...(bn.inbound_nodes as JsonObject[]), [['conv_v', 0, 0, {}]]] as unknown as JsonObject[];
    const shared = m.derive(cfg, m.weights);
    for (const id of ['fold-batchnorm-forward', 'batchnorm-to-affine'] as const) {
      const plan = planFix(shared, id);
      assert.match(plan.skipped.find((s) => s.layer === 'bn_b')?.reason ?? '', /shared layer called 2 times/, id);
    }
  });

  it('a DepthwiseConv2D reader (valid, depth_multiplier 2) folds: output channel c*mult + m gets input channel c', async () => {
    const m = (await loadModel(path.join(DIR, 'fwd_chain.h5'))) as KerasModel;
    const cfg = clone(m.modelConfig);
    const e = layerList(cfg).find((x) => isObject(x) && isObject(x.config) && x.config.name === 'conv2') as JsonObject;
    const c = e.config as JsonObject;
    e.class_name = 'DepthwiseConv2D';
    for (const k of ['filters', 'groups', 'kernel_initializer', 'kernel_regularizer', 'kernel_constraint']) delete c[k];
    Object.assign(c, { kernel_size: [3, 3], depth_multiplier: 2, depthwise_initializer: { class_name: 'GlorotUniform', config: { seed: null } }, depthwise_regularizer: null, depthwise_constraint: null });
    const values = Float32Array.from({ length: 3 * 3 * 3 * 2 }, (_, i) => Math.sin(i * 1.7) * 0.5);
    const weights = m.weights.map((w) =>
      w.layerPath[0] === 'conv2' ? { ...w, key: 'depthwise_kernel', storeName: 'conv2/depthwise_kernel:0', shape: [3, 3, 3, 2], bytes: new Uint8Array(values.buffer) } : w,
    );
    const dw = m.derive(cfg, weights);
    const r = applyFix(dw, 'fold-batchnorm-forward');
    assert.deepEqual((r.plan as FoldPlan).candidates.map((x) => [x.batchnorm, x.into_op]), [['bn4', 'DepthwiseConv2D'], ['bn3', 'DepthwiseConv2D']]);
    assert.deepEqual((r.model as KerasModel).weightsOf(['conv2']).map((w) => [w.key, w.shape]), [['depthwise_kernel', [3, 3, 3, 2]], ['bias', [6]]]);
    const v = await verify(dw, r.model, { samples: 2 });
    assert.ok(v.max_rel_error < 1e-5, `verify ${v.max_rel_error}`);
  });

  it('the audit offers the Keras forward fold and BN -> affine where they apply', async () => {
    for (const kind of ['h5', 'keras']) {
      const m = await open('fwd_func', kind);
      const a = audit(m);
      assert.deepEqual(
        a.batchnorm.rows.map((r) => [r.layer, r.fold, r.fold_into]),
        [
          ['bn_a', 'forward', 'conv_v'],
          ['bn_b', 'forward', 'conv_1'],
          ['bn_c', 'affine', null],
          ['bn_d', 'forward', 'dense1'],
          ['bn_e', null, null],
        ],
      );
      const unfold = a.batchnorm.findings.filter((f) => f.code === 'bn-unfoldable');
      const c = unfold.find((f) => f.layers[0] === 'bn_c');
      assert.equal(c?.fix, 'batchnorm-to-affine');
      assert.match(c?.message ?? '', /DepthwiseConv2D with a 1x1 kernel/);
      assert.ok(!a.findings.some((f) => /not available for Keras/.test(f.message)), 'no "not available" wording');
      const e = unfold.find((f) => f.layers[0] === 'bn_e');
      assert.equal(e?.fix, undefined);
      assert.match(e?.message ?? '', /stays a BatchNormalization/);
    }
  });
});
