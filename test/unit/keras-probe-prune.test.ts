/**
 * Probing, dead-unit pruning and activation swap for Keras-topology models through the same API as ONNX:
 * nsfwjs's real mobilenet_v2 (TF.js layers, uint8-quantized weights) and the Keras fixtures (.h5 / .keras).
 * Oracles: TF.js running original and rewritten models on the same probe inputs (pruning 'dead' is exact),
 * files written and read back, and refusals with their reasons.
 */
import { strict as assert } from 'node:assert';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadModel, probe, prune, saveModel, swapActivations } from '../../src/core/api';
import { arr, num } from '../../src/core/formats/keras/json';
import { float32Weight, KerasModel, weightToFloat32, type KWeight } from '../../src/core/formats/keras/model';
import { buildGraph } from '../../src/core/formats/keras/topology';
import { nsfwModel } from '../helpers/nsfwjs';
import { naiveChannelStats } from '../helpers/naive-stats';
import { loadTfjs, tfLayers } from '../../src/core/engines/tfjs';
import { kerasInputs, loadKerasLayersModel, probeKeras, runBatch } from '../../src/core/formats/keras/probe';
import type { SymbolicTensor } from '@tensorflow/tfjs-layers';

const DIR = path.join(__dirname, '..', 'fixtures', 'keras');
const SEEDED = { kind: 'random' as const, seed: 1 };

let tmp = '';
before(() => (tmp = mkdtempSync(path.join(os.tmpdir(), 'ms-keras-prune-'))));
after(() => rmSync(tmp, { recursive: true, force: true }));

function layerConfig(m: KerasModel, name: string) {
  const l = buildGraph(m.modelConfig).layers.find((x) => x.name === name);
  assert.ok(l, name);
  return l;
}

function dirBytes(dir: string): number {
  return readdirSync(dir).reduce((s, f) => s + statSync(path.join(dir, f)).size, 0);
}

describe('Keras probe / prune on nsfwjs mobilenet_v2 (TF.js layers)', () => {
  let model: KerasModel;
  before(async () => {
    model = (await loadModel(nsfwModel('mobilenet_v2'))) as KerasModel;
  });

  it('probes every activation layer, the fused Dense+relu head included, channels last', async () => {
    const r = await probe(model, SEEDED, { samples: 8, batchSize: 4 });
    assert.match(r.engine, /^tfjs-/);
    assert.equal(r.samples, 8);
    assert.deepEqual(r.input_shapes, { input_1: [4, 224, 224, 3] });
    assert.equal(r.layers.length, 37); // 35 ReLU layers + dense_1, dense_2 (dense_3 is softmax: not an activation)
    const d1 = r.layers.find((l) => l.name === 'dense_1')!;
    const d2 = r.layers.find((l) => l.name === 'dense_2')!;
    assert.equal(d1.op, 'Dense+relu');
    assert.equal(d1.channels, 256);
    assert.equal(d2.channels, 128);
    assert.equal(d1.channel_axis, 1);
    const relu = r.layers.find((l) => l.name === 'out_relu')!;
    assert.deepEqual(relu.shape, [4, 7, 7, 1280]);
    assert.equal(relu.channel_axis, 3);
    // seeded normal inputs: many head units never fire (the issue sees the same on real images)
    for (const l of [d1, d2, relu]) {
      assert.ok(l.dead.length > 0 && l.dead.length < l.channels, `${l.name}: ${l.dead.length} dead`);
      for (const c of l.dead) assert.ok(l.max[c] <= 0 && l.apoz[c] === 1);
      assert.equal(l.count, l.name === 'out_relu' ? 8 * 49 : 8);
    }
  });

  it("statistics read in place from TF.js's heap equal float64 statistics of the downloaded activations", async () => {
    const layers = ['Conv1_relu', 'block_3_expand_relu', 'out_relu', 'dense_1'];
    const src = kerasInputs(model, SEEDED, { samples: 6, batchSize: 4 }); // two batches: 4 + 2
    const r = await probeKeras(model, src.inputs, { layers });
    assert.match(r.engine, /^tfjs-wasm/);
    // the reference: the same layers as outputs of a TF.js model, each batch downloaded with data()
    const { tf } = await loadTfjs();
    const lm = await loadKerasLayersModel(tf, model, src.summaries, 'reference');
    const pm = tfLayers().model({ inputs: lm.inputs, outputs: layers.map((n) => lm.getLayer(n).output as SymbolicTensor) });
    const blocks: { data: Float32Array; dims: number[] }[][] = [];
    try {
      for (const b of src.inputs.batches()) blocks.push(await runBatch(tf, pm, b.feeds));
    } finally {
      pm.dispose();
    }
    layers.forEach((name, k) => {
      const l = r.layers.find((x) => x.name === name)!;
      const dims = [6, ...blocks[0][k].dims.slice(1)];
      const all = new Float32Array(blocks[0][k].data.length + blocks[1][k].data.length);
      all.set(blocks[0][k].data);
      all.set(blocks[1][k].data, blocks[0][k].data.length);
      const ref = naiveChannelStats([all], dims, dims.length - 1);
      assert.deepEqual([blocks[0][k].dims[0], blocks[1][k].dims[0], l.count], [4, 2, 6 * dims.slice(1, -1).reduce((p, d) => p * d, 1)]);
      assert.deepEqual([l.max, l.min, l.apoz], [ref.max, ref.min, ref.apoz], name);
      for (let c = 0; c < l.channels; c++) {
        const scale = Math.max(Math.abs(ref.mean[c]), Math.sqrt(ref.variance[c]), 1e-30);
        assert.ok(Math.abs(l.mean[c] - ref.mean[c]) <= 1e-12 * scale, `${name} mean ${c}`);
        assert.ok(Math.abs(l.var[c] - ref.variance[c]) <= 1e-9 * ref.variance[c] + 1e-30, `${name} var ${c}`);
      }
    });
  });

  it("prunes dead units of the expansions (through the depthwise convs), Conv_1 and the dense head exactly, file and params shrink, reloads", async () => {
    const r = await prune(model, { criterion: 'dead', inputs: SEEDED, samples: 8, batchSize: 4 });
    for (const l of ['Conv_1', 'dense_1', 'dense_2', 'block_16_expand']) assert.ok(r.removed[l] > 0, `${l} loses dead units`);
    assert.ok(Object.keys(r.removed).filter((l) => /^block_\d+_expand$/.test(l)).length >= 10, JSON.stringify(r.removed));
    assert.equal(r.verify.max_abs_error, 0, 'removing units that are exactly 0 changes nothing');
    assert.equal(r.verify.samples, 8);
    assert.ok(r.params_after < r.params_before && r.bytes_after < r.bytes_before);
    assert.ok(r.macs_after! < r.macs_before!);
    // an expansion's dead channels leave its depthwise kernel too (sliced in its stored uint8 form), and the
    // project convolution's input rows; the ZeroPadding2D before a strided depthwise is passed through
    const dwk = (r.model as KerasModel).weights.find((w) => w.storeName === 'block_16_depthwise/depthwise_kernel')!;
    assert.deepEqual(dwk.shape, [3, 3, 960 - r.removed.block_16_expand, 1]);
    assert.equal(dwk.quantization?.dtype, 'uint8');
    const proj = (r.model as KerasModel).weights.find((w) => w.storeName === 'block_16_project/kernel')!;
    assert.deepEqual(proj.shape, [1, 1, 960 - r.removed.block_16_expand, 320]);
    assert.ok(r.removed.block_13_expand > 0, 'block_13 has a ZeroPadding2D in its chain');
    // residual Add: the projections are pruned as coupled groups (none of their linear outputs is constant)
    const residual = r.plan.groups.find((g) => g.layers.includes('block_1_project') && g.layers.includes('block_2_project'))!;
    assert.ok(residual && residual.removed.length === 0, JSON.stringify(residual));
    assert.ok(!r.plan.skipped.some((s) => s.layer === 'block_2_project'));
    assert.ok(r.plan.skipped.some((s) => s.layer === 'dense_3' && /model output/.test(s.reason)));
    const pruned = r.model as KerasModel;
    assert.equal(num(layerConfig(pruned, 'dense_1').config.units), 256 - r.removed.dense_1);
    assert.equal(num(layerConfig(pruned, 'Conv_1').config.filters), 1280 - r.removed.Conv_1);
    // quantized weights are sliced as stored: still uint8
    const k = pruned.weights.find((w) => w.storeName === 'dense_1/kernel')!;
    assert.deepEqual(k.shape, [1280 - r.removed.Conv_1, 256 - r.removed.dense_1]);
    assert.equal(k.quantization?.dtype, 'uint8');
    const outDir = path.join(tmp, 'nsfw');
    mkdirSync(outDir);
    const out = path.join(outDir, 'model.json');
    await saveModel(pruned, out);
    const srcDir = path.dirname(nsfwModel('mobilenet_v2'));
    assert.ok(dirBytes(outDir) < dirBytes(srcDir), `${dirBytes(outDir)} bytes written, ${dirBytes(srcDir)} before`);
    const back = (await loadModel(out)) as KerasModel;
    const p = await probe(back, SEEDED, { samples: 4, batchSize: 4, layers: ['dense_1', 'dense_2'] });
    assert.deepEqual(p.layers.map((l) => l.channels), [256 - r.removed.dense_1, 128 - r.removed.dense_2]);
  });
});

describe('nsfwjs mobilenet_v2 on real photos (the face-api demo samples)', () => {
  let model: KerasModel;
  let photos = '';
  before(async () => {
    model = (await loadModel(nsfwModel('mobilenet_v2'))) as KerasModel;
    // the six sample photos only (the demo folder also holds screenshots)
    photos = path.join(tmp, 'photos');
    mkdirSync(photos);
    const demo = path.join(path.dirname(require.resolve('@vladmandic/face-api/package.json')), 'demo');
    for (let k = 1; k <= 6; k++) copyFileSync(path.join(demo, `sample${k}.jpg`), path.join(photos, `sample${k}.jpg`));
  });

  it('the dense head has units that never fire on the photos (as TF.js computes them); pruning them is exact on the photos', async () => {
    const src = { kind: 'images' as const, path: photos, normalize: 'unit' as const }; // nsfwjs feeds x / 255
    const r = await probe(model, src, { batchSize: 3, layers: ['dense_1', 'dense_2'] });
    assert.equal(r.samples, 6);
    assert.deepEqual(r.input_shapes, { input_1: [3, 224, 224, 3] });
    // the reference: the two layers' outputs from TF.js on the same photos, the units never above 0
    const kin = kerasInputs(model, src, { batchSize: 3 });
    const { tf } = await loadTfjs();
    const lm = await loadKerasLayersModel(tf, model, kin.summaries, 'reference');
    const pm = tfLayers().model({ inputs: lm.inputs, outputs: ['dense_1', 'dense_2'].map((n) => lm.getLayer(n).output as SymbolicTensor) });
    const max = [new Float32Array(256).fill(-Infinity), new Float32Array(128).fill(-Infinity)];
    try {
      for (const b of kin.inputs.batches())
        (await runBatch(tf, pm, b.feeds)).forEach(({ data }, k) => data.forEach((v, i) => (max[k][i % max[k].length] = Math.max(max[k][i % max[k].length], v))));
    } finally {
      pm.dispose();
    }
    r.layers.forEach((l, k) => {
      assert.deepEqual(l.dead, [...max[k].keys()].filter((u) => max[k][u] <= 0), l.name);
      assert.ok(l.dead.length >= l.channels / 10, `${l.name}: ${l.dead.length} of ${l.channels} units never fire on the photos`);
    });
    const pr = await prune(model, { criterion: 'dead', inputs: src, batchSize: 3 });
    assert.equal(pr.removed.dense_1, r.layers[0].dead.length);
    assert.equal(pr.removed.dense_2, r.layers[1].dead.length);
    assert.equal(pr.verify.samples, 6);
    assert.equal(pr.verify.max_abs_error, 0, 'the removed units are exactly 0 on every photo');
  });
});

/** seq_conv with conv_a filter 1 dead (zero kernel, bias pushing BN's output below 0) and conv_b filter 2 a constant */
function withConstantUnits(m: KerasModel): KerasModel {
  const byKey = (layer: string, key: string) => m.weightsOf([layer]).find((w) => w.key === key)!;
  const gamma = weightToFloat32(byKey('bn_a', 'gamma'));
  const mean = weightToFloat32(byKey('bn_a', 'moving_mean'));
  const replace = new Map<KWeight, Float32Array>();
  const ka = weightToFloat32(byKey('conv_a', 'kernel'));
  for (let i = 1; i < ka.length; i += 4) ka[i] = 0;
  const ba = weightToFloat32(byKey('conv_a', 'bias'));
  ba[1] = mean[1] - Math.sign(gamma[1]) * 1000;
  replace.set(byKey('conv_a', 'kernel'), ka).set(byKey('conv_a', 'bias'), ba);
  const kb = weightToFloat32(byKey('conv_b', 'kernel'));
  for (let i = 2; i < kb.length; i += 6) kb[i] = 0;
  replace.set(byKey('conv_b', 'kernel'), kb);
  return m.derive(m.modelConfig, m.weights.map((w) => (replace.has(w) ? float32Weight(w, replace.get(w)!) : w)));
}

describe('Keras fixtures: prune with constants folded, swap, refusals', () => {
  for (const file of ['seq_conv.h5', 'seq_conv.keras']) {
    it(`${file}: a dead filter and a constant filter (through Flatten) are removed, the constant folded into the Dense bias`, async () => {
      const m = withConstantUnits((await loadModel(path.join(DIR, file))) as KerasModel);
      const r = await prune(m, { criterion: 'dead', samples: 16 });
      assert.deepEqual(r.removed, { conv_a: 1, conv_b: 1 });
      const c = r.plan.consumers.find((x) => x.layer === 'dense_a')!;
      assert.equal(c.removed_inputs, 16); // 4x4 positions of one channel after Flatten
      const probed = r.probe!.layers.find((l) => l.name === 'relu_b')!;
      assert.equal(c.folded_constants, probed.min[2] === 0 ? 0 : 1);
      assert.ok(r.verify.max_rel_error < 1e-5, `max rel ${r.verify.max_rel_error}`);
      const pruned = r.model as KerasModel;
      assert.deepEqual(pruned.weightsOf(['conv_b']).find((w) => w.key === 'kernel')!.shape, [3, 3, 3, 5]);
      assert.deepEqual(pruned.weightsOf(['dense_a']).find((w) => w.key === 'kernel')!.shape, [80, 8]);
      const out = path.join(tmp, `pruned-${file}`);
      await saveModel(pruned, out);
      const back = (await loadModel(out)) as KerasModel;
      if (file.endsWith('.keras')) assert.deepEqual(arr(layerConfig(back, 'dense_a').entry.build_config && (layerConfig(back, 'dense_a').entry.build_config as { input_shape: number[] }).input_shape), [null, 80]);
      const p = await probe(back, SEEDED, { samples: 2 });
      assert.deepEqual(p.layers.map((l) => l.channels), [3, 5]);
    });
  }

  it('refuses criteria other than dead without a ratio, prunes through a depth multiplier, explains what is not pruned (residual Add, transpose)', async () => {
    const m = await loadModel(path.join(DIR, 'func_mixed.h5'));
    await assert.rejects(prune(m, { criterion: 'l1' }), /needs a ratio/);
    const r = await prune(m, { criterion: 'dead', samples: 4 });
    assert.deepEqual(r.removed, {});
    const reasons = Object.fromEntries(r.plan.skipped.map((s) => [s.layer, s.reason]));
    // pw -> BN -> ReLU6 -> DepthwiseConv2D (depth multiplier 2) -> BN -> ReLU -> proj: one group, nothing dead here
    assert.equal(reasons.pw, undefined);
    assert.deepEqual(r.plan.groups.find((g) => g.layers[0] === 'pw')?.layers, ['pw', 'dw', 'pw_bn', 'dw_bn']);
    const l1 = await prune(m, { criterion: 'l1', ratio: 0.5, samples: 4 });
    assert.equal(l1.removed.pw, 2);
    assert.ok(Number.isFinite(l1.verify.max_abs_error), 'TF.js runs the pruned model (each pw channel took 2 depthwise outputs with it)');
    assert.match(reasons.proj, /Add\) couples channels/);
    assert.match(reasons.act_conv, /Conv2DTranspose\) in the path is not handled/);
  });

  it('seq_conv.keras: l1 / bn-gamma by ratio are not exact, written file reloads; no BN gamma -> not pruned by bn-gamma', async () => {
    const m = await loadModel(path.join(DIR, 'seq_conv.keras'));
    const r = await prune(m, { criterion: 'l1', ratio: 0.5, samples: 8 });
    assert.deepEqual(r.removed, { conv_a: 2, conv_b: 3, dense_a: 4 });
    assert.equal(r.plan.exact, false);
    assert.ok(r.verify.max_abs_error > 0 && Number.isFinite(r.verify.max_abs_error));
    assert.ok(r.params_after < r.params_before);
    const out = path.join(tmp, 'l1.keras');
    await saveModel(r.model, out);
    const back = (await loadModel(out)) as KerasModel;
    assert.equal(num(layerConfig(back, 'dense_a').config.units), 4);
    const g = await prune(m, { criterion: 'bn-gamma', ratio: 0.5, samples: 8 });
    assert.deepEqual(Object.keys(g.removed).sort(), ['conv_a', 'conv_b']);
    assert.equal(g.plan.groups.find((x) => x.layers[0] === 'dense_a')!.reason, 'no BatchNorm scales these channels');
  });

  it('seq_conv.h5 -> selu: BatchNorms folded, ReLU layers become Activation(selu), written file reloads, deviation and depth profile reported', async () => {
    const m = await loadModel(path.join(DIR, 'seq_conv.h5'));
    const r = await swapActivations(m, { to: 'selu' }, SEEDED, { samples: 4 });
    assert.equal(r.swapped, 2);
    assert.equal(r.removed_bn, 3);
    assert.ok(r.measurement.deviation.max_abs_error > 0);
    assert.deepEqual(r.measurement.profile.map((p) => [p.layer, p.op_before, p.op_after]), [
      ['relu_a', 'ReLU', 'Activation(selu)'],
      ['relu_b', 'ReLU', 'Activation(selu)'],
    ]);
    const out = path.join(tmp, 'selu.h5');
    await saveModel(r.model, out);
    const back = (await loadModel(out)) as KerasModel;
    assert.equal(layerConfig(back, 'relu_a').className, 'Activation');
    assert.equal(layerConfig(back, 'relu_a').config.activation, 'selu');
    assert.ok(!buildGraph(back.modelConfig).layers.some((l) => l.className === 'BatchNormalization'));
  });

  it('func_mixed.keras -> elu (fused relu too); leaky-relu refuses the fused activation TF.js cannot run', async () => {
    const m = await loadModel(path.join(DIR, 'func_mixed.keras'));
    const elu = await swapActivations(m, { to: 'elu' }, SEEDED, { samples: 2 });
    assert.equal(elu.swapped, 3);
    assert.equal(elu.removed_bn, 0);
    assert.ok(elu.measurement.deviation.max_abs_error > 0);
    const out = path.join(tmp, 'elu.keras');
    await saveModel(elu.model, out);
    const back = (await loadModel(out)) as KerasModel;
    assert.equal(layerConfig(back, 'act_conv').config.activation, 'elu');
    const leaky = await swapActivations(m, { to: 'leaky-relu', alpha: 0.1 }, SEEDED, { samples: 2 });
    assert.equal(leaky.swapped, 2);
    assert.deepEqual(leaky.skipped.map((s) => s.layer), ['act_conv']);
    assert.match(leaky.skipped[0].reason, /does not run in TF\.js/);
  });

  it('selu recipe on a model with Dropout: AlphaDropout (.h5), reinit is seeded LeCun-normal', async () => {
    const m = (await loadModel(path.join(DIR, 'doctor_seq.h5'))) as KerasModel;
    const r = await swapActivations(m, { to: 'selu', reinit: true, seed: 7 }, SEEDED, { samples: 2 });
    const dropouts = buildGraph(m.modelConfig).layers.filter((l) => l.className === 'Dropout').length;
    assert.ok(dropouts > 0);
    assert.equal(r.replaced_dropout, dropouts);
    assert.ok(buildGraph((r.model as KerasModel).modelConfig).layers.some((l) => l.className === 'AlphaDropout'));
    const again = await swapActivations(m, { to: 'selu', reinit: true, seed: 7 }, SEEDED, { samples: 1 });
    const k = (x: KerasModel) => weightToFloat32(x.weights.find((w) => w.key === 'kernel')!);
    assert.deepEqual(k(r.model as KerasModel), k(again.model as KerasModel));
    assert.notDeepEqual(k(r.model as KerasModel), k(m));
    assert.ok(r.notes.some((n) => /LeCun-normal/.test(n)));
  });
});
