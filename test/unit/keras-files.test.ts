/**
 * Keras 2 .h5 and Keras 3 .keras fixtures (test/fixtures/keras, made by make_fixtures.py with h5py + zipfile in
 * Keras's own layouts). Oracles: PyTorch's outputs for the same weights (expected.json) and TensorFlow.js
 * running the models (verification); fold plans counted by hand from the construction.
 */
import { strict as assert } from 'node:assert';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { foldBatchNorm, freezeBatchNorm, inspect, loadModel, loadModelBytesAsync, planFoldBatchNorm, saveModel, serialize, verify, type Model } from '../../src/core/api';
import { isObject, type Json } from '../../src/core/formats/keras/json';
import { KerasModel } from '../../src/core/formats/keras/model';
import { relError, runKerasOnInput } from '../helpers/tfjs-files';

const DIR = path.join(__dirname, '..', 'fixtures', 'keras');
const expected = JSON.parse(readFileSync(path.join(DIR, 'expected.json'), 'utf8')) as Record<string, { input_shape: number[]; input: number[]; output_shape: number[]; output: number[]; batchnorm: number; foldable: number; skipped: number }>;

let tmp = '';
before(() => (tmp = mkdtempSync(path.join(os.tmpdir(), 'ms-keras-'))));
after(() => rmSync(tmp, { recursive: true, force: true }));

/** TF.js output of a Keras-topology model on the fixture's input */
function run(m: Model, name: string): Promise<Float32Array> {
  return runKerasOnInput(m, name, expected[name]);
}

function refsTo(v: Json, name: string): boolean {
  if (Array.isArray(v)) return (v.length >= 3 && v[0] === name && typeof v[1] === 'number') || v.some((x) => refsTo(x, name));
  if (isObject(v)) return Object.values(v).some((x) => refsTo(x, name));
  return false;
}

for (const ext of ['h5', 'keras'] as const) {
  const format = ext === 'h5' ? 'keras-h5' : 'keras';
  describe(`Keras ${ext === 'h5' ? '2 .h5' : '3 .keras'}`, () => {
    for (const name of Object.keys(expected)) {
      const e = expected[name];
      const file = path.join(DIR, `${name}.${ext}`);
      it(`${name}: inspect, TF.js matches PyTorch, fold ${e.foldable} (verified), written file reads back`, async () => {
        const model = await loadModel(file);
        assert.equal(model.format, format);
        const r = inspect(model);
        assert.equal(r.layers.filter((l) => l.op === 'BatchNorm').length, e.batchnorm);
        assert.deepEqual(r.layers[r.layers.length - 1].output_shape, [1, ...e.output_shape.slice(1)]);
        // TF.js on the original reproduces PyTorch
        assert.ok(relError(e.output, await run(model, name)) < 1e-5, 'original vs PyTorch');

        const plan = planFoldBatchNorm(model);
        assert.equal(plan.candidates.length, e.foldable, JSON.stringify(plan));
        assert.equal(plan.skipped.length, e.skipped, JSON.stringify(plan.skipped));
        const f = foldBatchNorm(model);
        assert.equal(inspect(f.model).layers.filter((l) => l.op === 'BatchNorm').length, e.batchnorm - e.foldable);
        const v = await verify(model, f.model, { samples: 3 });
        assert.ok(v.max_rel_error < 1e-5, JSON.stringify(v));
        assert.ok(relError(e.output, await run(f.model, name)) < 1e-4, 'folded vs PyTorch');

        // Keras conventions: names kept, folded layers get use_bias true and a bias; no BN left in the wiring
        const cfg = (f.model as KerasModel).modelConfig;
        for (const c of f.plan.candidates) {
          assert.ok(!JSON.stringify(cfg).includes(`"name":"${c.batchnorm}"`), `${c.batchnorm} removed`);
          assert.ok(!refsTo(cfg, c.batchnorm), `nothing reads ${c.batchnorm}`);
          assert.ok((f.model as KerasModel).weightsOf([c.into]).some((w) => w.key === 'bias'), `${c.into} has a bias`);
        }
        for (const c of f.plan.candidates) {
          const layer = JSON.stringify(cfg).includes(`"name":"${c.into}"`);
          assert.ok(layer, `${c.into} keeps its name`);
        }

        // save, reload: same topology and weights; TF.js on the reloaded file still matches PyTorch
        const out = path.join(tmp, `${name}.folded.${ext}`);
        await saveModel(f.model, out);
        const back = (await loadModel(out)) as KerasModel;
        assert.deepEqual(back.modelConfig, cfg);
        assert.equal(back.weights.length, (f.model as KerasModel).weights.length);
        assert.ok(relError(e.output, await run(back, name)) < 1e-4, 'reloaded folded vs PyTorch');
        assert.equal(planFoldBatchNorm(back).candidates.length, 0);
      });

      it(`${name}: an untouched model re-saved is equivalent (same config, weights bit for bit)`, async () => {
        const model = (await loadModel(file)) as KerasModel;
        const out = path.join(tmp, `${name}.same.${ext}`);
        await saveModel(model, out);
        const back = (await loadModel(out)) as KerasModel;
        assert.deepEqual(back.modelConfig, model.modelConfig);
        assert.deepEqual(back.weights.map((w) => [w.storeName, w.key, w.shape, w.dtype]), model.weights.map((w) => [w.storeName, w.key, w.shape, w.dtype]));
        back.weights.forEach((w, i) => assert.ok(Buffer.compare(Buffer.from(w.bytes), Buffer.from(model.weights[i].bytes)) === 0, w.storeName));
        const fromBytes = (await loadModelBytesAsync(serialize(model), tmp, name)) as KerasModel;
        assert.deepEqual(fromBytes.modelConfig, model.modelConfig);
      });
    }

    it('freeze BatchNorm: every BN trainable false, outputs unchanged, written file keeps it', async () => {
      const model = await loadModel(path.join(DIR, `func_mixed.${ext}`));
      const { model: frozen, frozen: names } = freezeBatchNorm(model);
      assert.equal(names.length, expected.func_mixed.batchnorm);
      const out = path.join(tmp, `frozen.${ext}`);
      await saveModel(frozen, out);
      const back = await loadModel(out);
      const bns = JSON.stringify((back as KerasModel).modelConfig).match(/"class_name":\s*"BatchNormalization"/g) ?? [];
      assert.equal(bns.length, names.length);
      assert.equal(freezeBatchNorm(back).frozen.length, 0, 'already frozen');
      assert.ok(relError(expected.func_mixed.output, await run(back, 'func_mixed')) < 1e-5);
    });
  });
}

describe('Keras 3 weight file layout', () => {
  it('after folding, the weight paths follow Keras 3 naming again (layers renumbered by class)', async () => {
    const model = await loadModel(path.join(DIR, 'seq_conv1d.keras'));
    const out = path.join(tmp, 'renumber.keras');
    await saveModel(foldBatchNorm(model).model, out);
    const back = (await loadModel(out)) as KerasModel;
    const names = back.weights.map((w) => w.storeName);
    assert.ok(!names.some((n) => n.includes('batch_normalization')), names.join(','));
    assert.deepEqual(names, ['layers/conv1d/vars/0', 'layers/conv1d/vars/1', 'layers/dense/vars/0', 'layers/dense/vars/1', 'layers/dense_1/vars/0', 'layers/dense_1/vars/1']);
  });
});
