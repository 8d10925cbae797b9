/**
 * The BatchNorm / Dropout doctor and the memory planner on the Keras family (TF.js layers, Keras 2 .h5, Keras 3
 * .keras). Oracles: effective batches computed here from nsfwjs mobilenet_v2's architecture (stride schedule),
 * TensorFlow.js running original and rewritten models (0 difference for the Dropout rewrites; TF.js's own
 * loader on the files we wrote), PyTorch's outputs for the doctor fixtures (make_doctor_fixtures.py: the
 * original, and the LayerNorm / GroupNorm replacements computed with F.layer_norm / F.group_norm and the same
 * gamma/beta), a hand calculation of the memory plan of doctor_func at two input sizes, and the fixtures'
 * construction for the expected rows and findings.
 */
import { strict as assert } from 'node:assert';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { SymbolicTensor } from '@tensorflow/tfjs-layers';
import type * as TfCore from '@tensorflow/tfjs-core';
import { applyFix, audit, inspect, loadModel, loadModelBytes, planFix, planMemory, saveModel, verify, type Model } from '../../src/core/api';
import { loadTfjs, tfLayers } from '../../src/core/engines/tfjs';
import { clone, isObject, type Json, type JsonObject } from '../../src/core/formats/keras/json';
import { KerasModel } from '../../src/core/formats/keras/model';
import { layerList } from '../../src/core/formats/keras/topology';
import type { Finding, RewritePlan } from '../../src/core/types';
import { zipBytes } from '../../src/core/util/zip';
import { nsfwModel } from '../helpers/nsfwjs';
import { loadLayersFromFile, relError, runKerasOnInput, seededInput } from '../helpers/tfjs-files';

const DIR = path.join(__dirname, '..', 'fixtures', 'keras');
interface Expected {
  input_shape: number[];
  input: number[];
  output_shape: number[];
  output: number[];
  output_ln: number[];
  output_gn?: number[];
  ln: string[];
  gn: string[];
  gn_groups?: number;
}
const expected = JSON.parse(readFileSync(path.join(DIR, 'doctor_expected.json'), 'utf8')) as Record<string, Expected>;

let tmp = '';
before(() => (tmp = mkdtempSync(path.join(os.tmpdir(), 'ms-kdoctor-'))));
after(() => rmSync(tmp, { recursive: true, force: true }));

/** TF.js output of a Keras-topology model on the fixture's input */
function run(m: Model, name: string): Promise<Float32Array> {
  return runKerasOnInput(m, name, expected[name]);
}

const codes = (f: Finding[]) => f.map((x) => `${x.code}:${x.layers.join('+')}`).sort();
const classes = (m: Model) => layerList((m as KerasModel).modelConfig).map((e) => (isObject(e) ? String(e.class_name) : ''));
function layerEntry(m: Model, name: string): JsonObject {
  const e = layerList((m as KerasModel).modelConfig).find((x) => isObject(x) && isObject(x.config) && x.config.name === name);
  assert.ok(e && isObject(e), `layer ${name}`);
  return e;
}
function refsTo(v: Json, name: string): boolean {
  if (Array.isArray(v)) return (v.length >= 3 && v[0] === name && typeof v[1] === 'number') || v.some((x) => refsTo(x, name));
  if (isObject(v)) return Object.values(v).some((x) => refsTo(x, name));
  return false;
}

// ------------------------------------------------------------------------------------------------------------
// nsfwjs mobilenet_v2 (TF.js layers, Keras 2.2.4 topology): 52 BatchNorms, 2 Dropouts
// ------------------------------------------------------------------------------------------------------------

/**
 * MobileNetV2 by hand: Conv1 (stride 2) -> S/2; 17 inverted-residual blocks (expanded_conv, block_1..16) where
 * block_1, 3, 6 and 13 have a stride-2 depthwise conv; a block's expand BN sees its input resolution, its
 * depthwise and project BNs its output resolution; Conv_1_bn the last one. Every BN follows a conv: N x H x W.
 */
function mobilenetBnSide(name: string, S: number): number {
  const strided = [1, 3, 6, 13];
  const out = (k: number) => strided.filter((b) => b <= k).reduce((n) => Math.ceil(n / 2), S / 2);
  if (name === 'bn_Conv1' || name.startsWith('expanded_conv_')) return S / 2;
  if (name === 'Conv_1_bn') return out(16);
  const m = /^block_(\d+)_(expand|depthwise|project)_BN$/.exec(name);
  assert.ok(m, name);
  const k = Number(m[1]);
  return m[2] === 'expand' ? out(k - 1) : out(k);
}

describe('Keras doctor: nsfwjs mobilenet_v2 (TF.js layers)', () => {
  const SRC = nsfwModel('mobilenet_v2');
  let model: Model;
  before(async () => (model = await loadModel(SRC)));

  for (const batch of [1, 16]) {
    it(`audit at 224x224, batch ${batch}: 52 BatchNorm rows with N x H x W from the architecture, no hazard`, () => {
      const r = audit(model, { batchSize: batch });
      const bn = r.batchnorm;
      assert.equal(bn.batch_size, batch);
      assert.equal(bn.batch_source, 'option');
      assert.deepEqual(bn.input_shapes.input_1, [batch, 224, 224, 3]);
      assert.equal(bn.rows.length, 52);
      for (const row of bn.rows) {
        const side = mobilenetBnSide(row.layer, 224);
        assert.equal(row.effective_batch, batch * side * side, row.layer);
        assert.equal(row.context, 'spatial', row.layer);
        assert.equal(row.input_shape?.[1], side);
        assert.equal(row.fold, 'backward');
        assert.equal(row.channels, row.input_shape?.[3]);
      }
      // the last BNs before the pooling see 7x7 maps
      const last = bn.rows.find((x) => x.layer === 'Conv_1_bn')!;
      assert.deepEqual(last.input_shape, [batch, 7, 7, 1280]);
      assert.equal(last.effective_batch, batch * 49);
      assert.equal(last.fold_into, 'Conv_1');
      assert.ok(!r.findings.some((f) => f.code === 'bn-batch1-hazard' || f.code === 'bn-no-spatial-extent' || f.code === 'bn-unfoldable'), codes(r.findings).join(' '));
      // Dropouts: two, at the end of the classifier, no BatchNorm after them
      assert.deepEqual(
        r.dropout.rows.map((d) => [d.layer, d.native_op, d.rate, d.mode, d.feeds_batchnorm.length, d.removable]),
        [
          ['dropout_2', 'Dropout', 0.5, 'inference', 0, true],
          ['dropout_3', 'Dropout', 0.25, 'inference', 0, true],
        ],
      );
      const inf = r.findings.filter((f) => f.code === 'dropout-in-inference-graph');
      assert.deepEqual(inf.map((f) => [f.layers[0], f.fix]), [
        ['dropout_2', 'remove-dropout'],
        ['dropout_3', 'remove-dropout'],
      ]);
      assert.match(inf[0].message, /identity at inference .*fit\(\)/);
      assert.ok(!r.findings.some((f) => f.code.startsWith('dropout-') && f.code !== 'dropout-in-inference-graph'));
    });
  }

  it('audit at 32x32: the last blocks see 1x1 maps -> effective batch 1 at batch 1 (batch-1 hazards)', () => {
    const r = audit(model, { batchSize: 1, inputShapes: { input_1: [1, 32, 32, 3] } });
    const hazards = r.findings.filter((f) => f.code === 'bn-batch1-hazard').map((f) => f.layers[0]);
    const byHand = r.batchnorm.rows.filter((row) => mobilenetBnSide(row.layer, 32) === 1).map((row) => row.layer);
    // block_13 depthwise/project, blocks 14-16 (3 BNs each) and Conv_1_bn
    assert.equal(byHand.length, 12);
    assert.deepEqual(hazards, byHand);
    for (const row of r.batchnorm.rows) assert.equal(row.effective_batch, mobilenetBnSide(row.layer, 32) ** 2, row.layer);
    assert.equal(r.batchnorm.rows.find((x) => x.layer === 'Conv_1_bn')?.context, 'spatial-1x1');
    const f = r.findings.find((x) => x.code === 'bn-batch1-hazard')!;
    assert.equal(f.fix, 'fold-batchnorm');
    assert.deepEqual(f.fixes, ['fold-batchnorm', 'freeze-batchnorm', 'replace-batchnorm-groupnorm']);
  });

  it('remove-dropout: both removed, TF.js outputs identical (0 difference), the written model.json loads in TF.js', async () => {
    const plan = planFix(model, 'remove-dropout') as RewritePlan;
    assert.deepEqual(plan.candidates.map((c) => c.layer), ['dropout_2', 'dropout_3']);
    assert.match(plan.candidates[0].action, /dense_2 reads dense_1 instead/);
    const r = applyFix(model, 'remove-dropout');
    assert.equal(r.applied, 2);
    assert.equal(r.preserves_outputs, true);
    assert.equal(r.size.layers_after, r.size.layers_before - 2);
    assert.equal(r.size.params_after, r.size.params_before);
    const v = await verify(model, r.model, { samples: 1 });
    assert.equal(v.max_abs_error, 0, JSON.stringify(v));
    const cfg = (r.model as KerasModel).modelConfig;
    assert.ok(!JSON.stringify(cfg).includes('Dropout'));
    assert.deepEqual(layerEntry(r.model, 'dense_2').inbound_nodes, [[['dense_1', 0, 0, {}]]]);
    // TF.js's own loader on the files we wrote; quantized shards kept as they were
    const out = path.join(tmp, 'mnv2-nodrop', 'model.json');
    mkdirSync(path.dirname(out), { recursive: true });
    await saveModel(r.model, out);
    const back = (await loadModel(out)) as KerasModel;
    assert.ok(back.weights.every((w, i) => Buffer.compare(Buffer.from(w.bytes), Buffer.from((model as KerasModel).weights[i].bytes)) === 0));
    const { tf } = await loadTfjs();
    const [a, b] = [await loadLayersFromFile(SRC), await loadLayersFromFile(out)];
    try {
      const x = tf.tensor(seededInput([1, 224, 224, 3], 5), [1, 224, 224, 3]);
      const ya = await (a.predict(x) as TfCore.Tensor).data();
      const yb = await (b.predict(x) as TfCore.Tensor).data();
      assert.equal(relError(ya, yb), 0);
      assert.equal(b.layers.filter((l) => l.getClassName() === 'Dropout').length, 0);
    } finally {
      a.dispose();
      b.dispose();
    }
  });

  it('set-dropout-rate --layer dropout_2: only that rate changes; inference unchanged', async () => {
    const r = applyFix(model, 'set-dropout-rate', { rate: 0.1, layers: ['dropout_2'] });
    assert.equal(r.applied, 1);
    assert.equal(layerEntry(r.model, 'dropout_2').config && (layerEntry(r.model, 'dropout_2').config as JsonObject).rate, 0.1);
    assert.equal((layerEntry(r.model, 'dropout_3').config as JsonObject).rate, 0.25);
    assert.ok(r.notes.some((n) => /training-time setting/.test(n)));
    const v = await verify(model, r.model, { samples: 1 });
    assert.equal(v.max_abs_error, 0);
  });

  it('replace-batchnorm-groupnorm: TF.js has no GroupNormalization, so every (spatial) BN is skipped with that reason', () => {
    const plan = planFix(model, 'replace-batchnorm-groupnorm') as RewritePlan;
    assert.equal(plan.candidates.length, 0);
    assert.equal(plan.skipped.length, 52);
    assert.ok(plan.skipped.every((s) => /no GroupNormalization layer/.test(s.reason)));
    assert.equal(applyFix(model, 'replace-batchnorm-groupnorm').applied, 0);
  });

  it('plan: NHWC at 224x224; a size where Flatten -> Dense no longer fits is said, not hidden', () => {
    const p = planMemory(model, { batch: 16 });
    assert.deepEqual(p.input_shapes.input_1, [16, 224, 224, 3]);
    assert.equal(p.params, inspect(model, { stats: false }).totals.params);
    const stats = (model as KerasModel).weights.filter((w) => w.key === 'moving_mean' || w.key === 'moving_variance').reduce((s, w) => s + w.shape[0], 0);
    assert.equal(p.trainable_params, p.params - stats);
    assert.deepEqual(p.unknown_layers, []);
    // fused activations (Dense relu/softmax) are their own rows
    assert.ok(p.layers.some((l) => l.layer === 'dense_1/relu' && l.op === 'Relu'));
    assert.equal(p.batch_size, 16);
    assert.ok(p.training.total_bytes > p.inference.total_bytes);
    const big = planMemory(model, { batch: 1, height: 448, width: 448 });
    assert.ok(big.notes.some((n) => /dense_1 receives 5120 features but its kernel takes 1280/.test(n)), big.notes.join('\n'));
  });
});

// ------------------------------------------------------------------------------------------------------------
// doctor fixtures (.h5 and .keras)
// ------------------------------------------------------------------------------------------------------------

/** doctor_func by hand (see make_doctor_fixtures.py): which BN sees what, at batch n and input h x w */
function funcRows(n: number, h: number, w: number) {
  const h2 = Math.ceil(h / 2);
  const w2 = Math.ceil(w / 2);
  return [
    ['bn1', 'spatial', n * h * w, 'backward', 'conv1'],
    // bn2 (after a Dropout, before a stride-2 'same' conv) folds neither way: a 1x1 DepthwiseConv2D (batchnorm-to-affine)
    ['bn2', 'spatial', n * h2 * w2, 'affine', 'drop_a'],
    // bn_gap folds forward into dense1
    ['bn_gap', 'global-pooled', n, 'forward', 'gap'],
    ['bn_d', 'dense', n, 'backward', 'dense1'],
  ];
}

/**
 * doctor_func's memory by hand, float32 (f = 4): X input, A = 8-channel maps at H x W, B = 8-channel maps at
 * H/2 x W/2 (stride 2, 'same'), V8 / V6 / Y vectors. conv2 has a fused relu: Keras computes the pre-activation
 * and the relu output (two tensors). Dropouts are views at inference and keep a mask in training.
 */
function funcMemory(n: number, h: number, w: number) {
  const f = 4;
  const X = n * h * w * 3 * f;
  const A = n * h * w * 8 * f;
  const B = n * Math.ceil(h / 2) * Math.ceil(w / 2) * 8 * f;
  const V8 = n * 8 * f;
  const V6 = n * 6 * f;
  const Y = n * 3 * f;
  // layers: conv1 bn1 relu1 sdrop conv2 conv2/relu drop_a bn2 gap bn_gap dense1 bn_d relu_d drop_b out
  const live = [X + A, X + 2 * A, X + 2 * A, X + A, X + A + B, X + 2 * B, X + B, X + 2 * B, X + B + V8, X + 2 * V8, X + V8 + V6, X + 2 * V6, X + 2 * V6, X + V6, X + V6 + Y];
  // kept for backward: the input; bn1 its input (conv1 out) + stats; relu1 its output; sdrop a mask; conv2 its
  // input (sdrop out); conv2/relu its output; drop_a a mask; bn2 its input + stats; gap nothing; bn_gap its
  // input + stats; dense1 its input; bn_d its input + stats; relu_d its output; drop_b a mask; out its input
  const stats = 2 * (8 + 8 + 8 + 6) * f;
  const saved = X + 4 * A + 3 * B + 2 * V8 + 4 * V6 + stats;
  const params = 3 * 3 * 3 * 8 + 4 * 8 + (3 * 3 * 8 * 8 + 8) + 4 * 8 + 4 * 8 + (8 * 6 + 6) + 4 * 6 + (6 * 3 + 3);
  const trainable = params - 2 * (8 + 8 + 8 + 6);
  return { live, peak: X + 2 * A, saved, params, trainable, workspace: 2 * A };
}

for (const ext of ['h5', 'keras'] as const) {
  describe(`Keras doctor: fixtures (.${ext})`, () => {
    const file = (name: string) => path.join(DIR, `${name}.${ext}`);

    it('TF.js runs the originals to the PyTorch outputs (every dropout the identity at inference)', async () => {
      for (const name of ['doctor_func', 'doctor_seq']) assert.ok(relError(expected[name].output, await run(await loadModel(file(name)), name)) < 1e-5, name);
    });

    for (const [n, h, w] of [
      [1, 8, 8],
      [16, 12, 16],
    ]) {
      it(`doctor_func audit at batch ${n}, ${h}x${w}: rows, findings and fixes`, async () => {
        const m = await loadModel(file('doctor_func'));
        const r = audit(m, { batchSize: n, inputShapes: { image: [n, h, w, 3] } });
        assert.deepEqual(
          r.batchnorm.rows.map((x) => [x.layer, x.context, x.effective_batch, x.fold, x.producer]),
          funcRows(n, h, w),
        );
        assert.deepEqual(
          r.dropout.rows.map((d) => [d.layer, d.native_op, d.rate, d.mode, d.feeds_batchnorm, d.hops_to_batchnorm, d.removable]),
          [
            ['sdrop', 'SpatialDropout2D', 0.1, 'inference', ['bn2'], 2, true],
            ['drop_a', 'Dropout', 0.3, 'inference', ['bn2'], 0, true],
            ['drop_b', 'Dropout', 0.5, 'inference', [], null, true],
          ],
        );
        const hazard = n === 1 ? 'bn-batch1-hazard' : 'bn-no-spatial-extent';
        assert.deepEqual(codes(r.findings), [
          `${hazard}:bn_d`,
          `${hazard}:bn_gap`,
          'bn-negative-gamma:bn1+bn2+bn_gap+bn_d',
        ].sort().concat([
          'bn-unfoldable:bn2',
          'dropout-before-bn:drop_a+bn2',
          'dropout-before-bn:sdrop+bn2',
          'dropout-in-inference-graph:drop_a',
          'dropout-in-inference-graph:drop_b',
          'dropout-in-inference-graph:sdrop',
        ]));
        const get = (code: string, layer: string) => r.findings.find((f) => f.code === code && f.layers[0] === layer)!;
        // foldable for inference (either way) -> fold; freeze / GroupNorm/LayerNorm for fine-tuning always offered
        assert.equal(get(hazard, 'bn_d').fix, 'fold-batchnorm');
        assert.equal(get(hazard, 'bn_gap').fix, 'fold-batchnorm-forward');
        assert.deepEqual(get(hazard, 'bn_gap').fixes, ['fold-batchnorm-forward', 'freeze-batchnorm', 'replace-batchnorm-groupnorm']);
        assert.equal(get('bn-unfoldable', 'bn2').fix, 'batchnorm-to-affine');
        assert.match(get(hazard, 'bn_gap').message, /follows global pooling/);
        assert.equal(get('dropout-in-inference-graph', 'sdrop').fix, 'remove-dropout');
        assert.deepEqual(get('dropout-in-inference-graph', 'sdrop').fixes, ['remove-dropout', 'set-dropout-rate']);
        assert.match(get('dropout-in-inference-graph', 'sdrop').message, /drops whole feature maps/);
        assert.deepEqual(get('dropout-before-bn', 'drop_a').fixes, ['set-dropout-rate', 'remove-dropout']);
        assert.match(get('bn-unfoldable', 'bn2').message, /drop_a \(Dropout\) is not a layer BatchNorm can be folded into/);
      });
    }

    it('doctor_seq audit: [N, C] BatchNorms after Dense (batch-1 hazards), Gaussian/Alpha dropout before them', async () => {
      const m = await loadModel(file('doctor_seq'));
      const r = audit(m);
      assert.equal(r.batchnorm.batch_source, 'assumed');
      assert.deepEqual(r.batchnorm.rows.map((x) => [x.layer, x.context, x.effective_batch, x.fold]), [
        ['bn_a', 'dense', 1, null],
        ['bn_b', 'dense', 1, 'backward'],
      ]);
      assert.match(r.batchnorm.rows[0].backward_blocker ?? '', /applies its 'relu' activation before the BatchNorm/);
      assert.deepEqual(r.dropout.rows.map((d) => [d.layer, d.native_op, d.feeds_batchnorm, d.hops_to_batchnorm]), [
        ['drop_in', 'GaussianDropout', ['bn_a'], 1],
        ['alpha', 'AlphaDropout', ['bn_b'], 1],
        ['drop', 'Dropout', [], null],
      ]);
      const alpha = r.findings.find((f) => f.code === 'dropout-before-bn' && f.layers[0] === 'alpha')!;
      assert.match(alpha.message, /AlphaDropout is designed to keep the variance/);
      assert.deepEqual(r.findings.filter((f) => f.code === 'bn-batch1-hazard').map((f) => [f.layers[0], f.fix]), [
        ['bn_a', 'freeze-batchnorm'],
        ['bn_b', 'fold-batchnorm'],
      ]);
    });

    for (const name of ['doctor_func', 'doctor_seq']) {
      it(`${name}: remove-dropout -> 0 difference (TF.js), names and wiring kept, written file reloads to the PyTorch output`, async () => {
        const m = await loadModel(file(name));
        const r = applyFix(m, 'remove-dropout');
        const plan = r.plan as RewritePlan;
        assert.equal(r.applied, 3);
        assert.equal((await verify(m, r.model, { samples: 2 })).max_abs_error, 0);
        const out = path.join(tmp, `${name}.nodrop.${ext}`);
        await saveModel(r.model, out);
        const back = (await loadModel(out)) as KerasModel;
        assert.equal(back.format, m.format);
        const cfg = back.modelConfig;
        for (const c of plan.candidates) assert.ok(!refsTo(cfg, c.layer) && !JSON.stringify(cfg).includes(`"name":"${c.layer}"`), c.layer);
        assert.ok(!classes(back).some((c) => /Dropout/.test(c)));
        assert.deepEqual(
          classes(back).filter((c) => c !== 'InputLayer'),
          classes(m).filter((c) => c !== 'InputLayer' && !/Dropout/.test(c)),
        );
        assert.deepEqual(back.weights.map((w) => w.storeName), (m as KerasModel).weights.map((w) => w.storeName), 'Dropout has no weights: storage untouched');
        assert.ok(relError(expected[name].output, await run(back, name)) < 1e-5);
        assert.deepEqual(inspect(back).model.inputs, inspect(m).model.inputs);
        if (name === 'doctor_seq' && ext === 'h5') {
          // no InputLayer: the first layer's batch_input_shape moves to the new first layer
          assert.deepEqual((layerEntry(back, 'dense_a').config as JsonObject).batch_input_shape, [null, 10]);
        }
        if (name === 'doctor_func' && ext === 'keras') {
          // Keras 3 keras_history rewired, the tensor record kept
          const args = ((layerEntry(back, 'bn2').inbound_nodes as Json[])[0] as JsonObject).args as JsonObject[];
          assert.deepEqual((args[0].config as JsonObject).keras_history, ['conv2', 0, 0]);
        }
      });

      it(`${name}: set-dropout-rate 0.05 -> every rate changed, other fields kept, 0 difference`, async () => {
        const m = await loadModel(file(name));
        const r = applyFix(m, 'set-dropout-rate', { rate: 0.05 });
        const plan = r.plan as RewritePlan;
        assert.equal(r.applied, 3);
        assert.equal((await verify(m, r.model, { samples: 2 })).max_abs_error, 0);
        const out = path.join(tmp, `${name}.rate.${ext}`);
        await saveModel(r.model, out);
        const back = await loadModel(out);
        const before = (m as KerasModel).modelConfig;
        const cfg = (back as KerasModel).modelConfig;
        for (const c of plan.candidates) {
          const a = layerEntry(m, c.layer);
          const b = layerEntry(back, c.layer);
          assert.equal((b.config as JsonObject).rate, 0.05);
          assert.deepEqual({ ...b, config: { ...(b.config as JsonObject), rate: null } }, { ...a, config: { ...(a.config as JsonObject), rate: null } }, 'only the rate differs');
        }
        assert.equal(JSON.stringify(cfg).length, JSON.stringify(before).length - plan.candidates.reduce((s, c) => s + String((layerEntry(m, c.layer).config as JsonObject).rate).length - '0.05'.length, 0));
        assert.equal(planFix(back, 'set-dropout-rate', { rate: 0.05 }).candidates.length, 0, 'already at that rate');
      });
    }

    it('doctor_seq: replace-batchnorm-groupnorm -> LayerNormalization ([N, C]); TF.js measures the deviation, and runs what PyTorch computes', async () => {
      const m = await loadModel(file('doctor_seq'));
      const r = applyFix(m, 'replace-batchnorm-groupnorm');
      assert.equal(r.applied, 2);
      assert.equal(r.preserves_outputs, false);
      assert.equal(r.unverifiable, null);
      assert.ok(r.notes.some((n) => /changes the function.*[Ff]ine-tune/.test(n)));
      const v = await verify(m, r.model, { samples: 2 });
      assert.ok(v.max_abs_error > 0.1, 'a real deviation, measured');
      assert.ok(relError(expected.doctor_seq.output_ln, await run(r.model, 'doctor_seq')) < 1e-5, 'TF.js on the rewrite = PyTorch layer_norm');
      const out = path.join(tmp, `seq.ln.${ext}`);
      await saveModel(r.model, out);
      const back = (await loadModel(out)) as KerasModel;
      assert.deepEqual(classes(back).filter((c) => /Normalization/.test(c)), ['LayerNormalization', 'LayerNormalization']);
      const c = layerEntry(back, 'bn_a').config as JsonObject;
      assert.equal(c.name, 'bn_a');
      assert.equal(c.axis, -1);
      assert.equal(c.epsilon, 1e-3);
      assert.equal(c.center, true);
      assert.equal(c.scale, true);
      assert.ok(!('momentum' in c) && !('moving_mean_initializer' in c));
      if (ext === 'keras') assert.equal(c.rms_scaling, false);
      assert.deepEqual(back.weightsOf(['bn_a']).map((w) => w.key), ['gamma', 'beta']);
      assert.ok(relError(expected.doctor_seq.output_ln, await run(back, 'doctor_seq')) < 1e-5);
    });

    it('doctor_func: replace-batchnorm-groupnorm -> GroupNormalization(4 groups) + LayerNormalization; TF.js cannot run GroupNorm, so no deviation is claimed', async () => {
      const m = (await loadModel(file('doctor_func'))) as KerasModel;
      const r = applyFix(m, 'replace-batchnorm-groupnorm');
      assert.equal(r.applied, 4);
      assert.match(r.unverifiable ?? '', /no GroupNormalization layer.*NOT measured/);
      assert.deepEqual(
        (r.plan as RewritePlan).candidates.map((c) => [c.layer, /-> (\w+)\(/.exec(c.action)?.[1]]),
        [
          ['bn1', 'GroupNormalization'],
          ['bn2', 'GroupNormalization'],
          ['bn_gap', 'LayerNormalization'],
          ['bn_d', 'LayerNormalization'],
        ],
      );
      await assert.rejects(verify(m, r.model, { samples: 1 }), /cannot load the rewritten model/);
      const out = path.join(tmp, `func.gn.${ext}`);
      await saveModel(r.model, out);
      const back = (await loadModel(out)) as KerasModel;
      const e = layerEntry(back, 'bn1');
      assert.equal(e.class_name, 'GroupNormalization');
      const c = e.config as JsonObject;
      assert.deepEqual([c.name, c.groups, c.axis, c.epsilon, c.center, c.scale], ['bn1', expected.doctor_func.gn_groups, -1, 1e-3, true, true]);
      assert.deepEqual(Object.keys(c).sort(), ['axis', 'beta_constraint', 'beta_initializer', 'beta_regularizer', 'center', 'dtype', 'epsilon', 'gamma_constraint', 'gamma_initializer', 'gamma_regularizer', 'groups', 'name', 'scale', 'trainable']);
      if (ext === 'keras') {
        assert.equal(e.module, 'keras.layers');
        assert.deepEqual(e.build_config, layerEntry(m, 'bn1').build_config);
        assert.deepEqual(back.weightsOf(['bn1']).map((w) => w.storeName), ['layers/group_normalization/vars/0', 'layers/group_normalization/vars/1']);
      } else assert.deepEqual(back.weightsOf(['bn1']).map((w) => w.storeName), ['bn1/gamma:0', 'bn1/beta:0']);
      // gamma and beta carried over bit for bit; moving statistics gone
      for (const layer of ['bn1', 'bn2', 'bn_gap', 'bn_d']) {
        const was = m.weightsOf([layer]).filter((w) => w.key === 'gamma' || w.key === 'beta');
        const now = back.weightsOf([layer]);
        assert.deepEqual(now.map((w) => w.key), ['gamma', 'beta']);
        now.forEach((w, i) => assert.ok(Buffer.compare(Buffer.from(w.bytes), Buffer.from(was[i].bytes)) === 0, `${layer} ${w.key}`));
      }
      assert.equal(audit(back).batchnorm.rows.length, 0);
      // only the [N, C] ones: TF.js runs it, deviation measured, equal to PyTorch's layer_norm version
      const ln = applyFix(m, 'replace-batchnorm-groupnorm', { layers: expected.doctor_func.ln });
      assert.equal(ln.applied, 2);
      assert.equal(ln.unverifiable, null);
      assert.ok((await verify(m, ln.model, { samples: 1 })).max_abs_error > 0.1);
      assert.ok(relError(expected.doctor_func.output_ln, await run(ln.model, 'doctor_func')) < 1e-5);
      // explicit groups: the largest divisor of 8 not above 3
      const g = planFix(m, 'replace-batchnorm-groupnorm', { groups: 3, layers: ['bn1'] }) as RewritePlan;
      assert.match(g.candidates[0].action, /groups=2,/);
    });

    it('doctor_func: memory plan at two input sizes equals the hand calculation', async () => {
      const m = await loadModel(file('doctor_func'));
      for (const [n, h, w] of [
        [1, 8, 8],
        [3, 12, 16],
      ]) {
        const e = funcMemory(n, h, w);
        const p = planMemory(m, { batch: n, height: h, width: w, optimizer: 'adam' });
        assert.deepEqual(p.input_shapes.image, [n, h, w, 3]);
        assert.deepEqual(p.layers.map((l) => l.layer), ['conv1', 'bn1', 'relu1', 'sdrop', 'conv2', 'conv2/relu', 'drop_a', 'bn2', 'gap', 'bn_gap', 'dense1', 'bn_d', 'relu_d', 'drop_b', 'out']);
        assert.deepEqual(p.layers.map((l) => l.live_bytes), e.live);
        assert.equal(p.inference.activation_bytes, e.peak);
        assert.equal(p.peak_layer, 'bn1');
        assert.equal(p.training.activation_bytes, e.saved);
        assert.equal(p.params, e.params);
        assert.equal(p.trainable_params, e.trainable);
        assert.equal(p.training.workspace_bytes, e.workspace);
        assert.equal(p.inference.total_bytes, e.params * 4 + e.peak);
        assert.equal(p.training.total_bytes, e.params * 4 + e.trainable * 4 * 3 + e.saved + e.workspace);
        assert.deepEqual(p.unknown_layers, []);
      }
    });
  });
}

describe('Keras doctor: training=True calls, nested models, errors', () => {
  it('a Dropout / BatchNorm called with training=True: training-mode findings, not removed, not folded', async () => {
    const m = (await loadModel(path.join(DIR, 'doctor_func.h5'))) as KerasModel;
    const cfg = clone(m.modelConfig);
    for (const e of layerList(cfg)) {
      if (!isObject(e) || !isObject(e.config)) continue;
      if (e.config.name === 'drop_a') e.inbound_nodes = [[['conv2', 0, 0, { training: true }]]];
      if (e.config.name === 'bn_d') e.inbound_nodes = [[['dense1', 0, 0, { training: true }]]];
    }
    const mc = m.derive(cfg, m.weights);
    const r = audit(mc);
    assert.equal(r.dropout.rows.find((d) => d.layer === 'drop_a')?.mode, 'training');
    const f = r.findings.find((x) => x.code === 'dropout-training-mode')!;
    assert.deepEqual(f.layers, ['drop_a']);
    assert.match(f.message, /called with training=True.*Monte-Carlo/);
    assert.match(r.findings.find((x) => x.code === 'bn-training-mode')!.message, /bn_d is called with training=True/);
    const plan = planFix(mc, 'remove-dropout') as RewritePlan;
    assert.match(plan.skipped.find((s) => s.layer === 'drop_a')?.reason ?? '', /training=True/);
    assert.equal(plan.candidates.length, 2);
    assert.match(r.batchnorm.rows.find((x) => x.layer === 'bn_d')?.backward_blocker ?? '', /training=True/);
  });

  it('nested Sequential (built and saved by TF.js): Dropouts inside and after it removed, 0 difference', async () => {
    const { tf } = await loadTfjs();
    const tfl = tfLayers();
    const inner = tfl.sequential({ name: 'inner', layers: [tfl.layers.dense({ inputShape: [5], units: 4, name: 'd1' }), tfl.layers.dropout({ rate: 0.4, name: 'in_drop' })] });
    const x = tfl.input({ shape: [5], name: 'inp' });
    const y = tfl.layers.dropout({ rate: 0.2, name: 'out_drop' }).apply(inner.apply(x) as SymbolicTensor) as SymbolicTensor;
    const z = tfl.layers.batchNormalization({ name: 'bn' }).apply(y) as SymbolicTensor;
    const model = tfl.model({ inputs: x, outputs: z, name: 'outer' });
    let artifacts: TfCore.io.ModelArtifacts | undefined;
    await model.save(tf.io.withSaveHandler(async (a) => ((artifacts = a), { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } })));
    model.dispose();
    const json = { format: 'layers-model', modelTopology: artifacts!.modelTopology, weightsManifest: [{ paths: ['w.bin'], weights: artifacts!.weightSpecs }] };
    const m = loadModelBytes(zipBytes([{ name: 'model.json', bytes: Buffer.from(JSON.stringify(json)) }, { name: 'w.bin', bytes: new Uint8Array(artifacts!.weightData as ArrayBuffer) }]), '/nonexistent', 'nested');
    const r = audit(m);
    assert.deepEqual(r.dropout.rows.map((d) => [d.layer, d.feeds_batchnorm]), [
      ['inner/in_drop', ['bn']],
      ['out_drop', ['bn']],
    ]);
    // through the Dropout and out of the nested model to its Dense layer
    assert.deepEqual(r.batchnorm.rows.map((b) => [b.layer, b.producer, b.context, b.effective_batch]), [['bn', 'out_drop', 'dense', 1]]);
    const fx = applyFix(m, 'remove-dropout');
    assert.deepEqual((fx.plan as RewritePlan).candidates.map((c) => c.layer), ['inner/in_drop', 'out_drop']);
    assert.equal((await verify(m, fx.model, { samples: 2 })).max_abs_error, 0);
    assert.deepEqual(inspect(fx.model).layers.map((l) => l.name), ['inner/d1', 'bn']);
    assert.deepEqual(inspect(fx.model).layers[1].inputs, ['inner/d1'], 'the BN reads the nested model output (its inner layer)');
  });

  it('errors: rate missing or out of range, unknown / wrong layer, fixes of the other format family', async () => {
    const m = await loadModel(path.join(DIR, 'doctor_seq.keras'));
    assert.throws(() => applyFix(m, 'set-dropout-rate'), /needs the new rate/);
    assert.throws(() => applyFix(m, 'set-dropout-rate', { rate: 1 }), /\[0, 1\)/);
    assert.throws(() => applyFix(m, 'remove-dropout', { layers: ['nope'] }), /no layer named 'nope'/);
    assert.throws(() => applyFix(m, 'set-dropout-rate', { rate: 0.1, layers: ['bn_a'] }), /bn_a' is a BatchNormalization, not a dropout layer/);
    assert.throws(() => applyFix(m, 'replace-batchnorm-groupnorm', { layers: ['drop'] }), /not a BatchNormalization layer/);
    assert.throws(() => applyFix(m, 'batchnorm-eval-mode'), /available for ONNX models/);
    const onnx = await loadModel(path.join(__dirname, '..', 'fixtures', 'onnx-doctor', 'linear_bn1d_b1', 'model.onnx'));
    assert.throws(() => applyFix(onnx, 'set-dropout-rate', { rate: 0.1 }), /available for Keras and TF.js layers models/);
    assert.throws(() => applyFix(onnx, 'replace-batchnorm-groupnorm'), /available for Keras and TF.js layers models/);
  });
});
