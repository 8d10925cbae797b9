/**
 * A nested model (a Sequential inside a functional model), built and saved by TensorFlow.js itself
 * (tf.io.withSaveHandler), BatchNorm statistics randomized. Oracle: TF.js running the model it saved.
 */
import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import type { SymbolicTensor } from '@tensorflow/tfjs-layers';
import type * as TfCore from '@tensorflow/tfjs-core';
import { foldBatchNorm, inspect, loadModelBytes, planFoldBatchNorm, verify } from '../../src/core/api';
import { loadTfjs, tfLayers } from '../../src/core/engines/tfjs';
import { zipBytes } from '../../src/core/util/zip';

describe('nested models', () => {
  it('folds a BatchNorm inside a nested Sequential and one after it; shapes flow through the nested model', async () => {
    const { tf } = await loadTfjs();
    const tfl = tfLayers();
    const inner = tfl.sequential({
      name: 'inner',
      layers: [tfl.layers.conv2d({ inputShape: [6, 6, 3], filters: 4, kernelSize: 3, padding: 'same', useBias: false, name: 'c1' }), tfl.layers.batchNormalization({ name: 'b1' }), tfl.layers.reLU({ name: 'r1' })],
    });
    const x = tfl.input({ shape: [6, 6, 3], name: 'inp' });
    const y = inner.apply(x) as SymbolicTensor;
    const z = tfl.layers.conv2d({ filters: 2, kernelSize: 1, name: 'c2' }).apply(y) as SymbolicTensor;
    const out = tfl.layers.batchNormalization({ name: 'b2', epsilon: 0.01 }).apply(z) as SymbolicTensor;
    const model = tfl.model({ inputs: x, outputs: out, name: 'outer' });
    for (const l of [inner.getLayer('b1'), model.getLayer('b2')]) l.setWeights(l.getWeights().map((t, i) => tf.add(tf.randomUniform(t.shape, 0.5, 1.5, 'float32', 5 + i), i === 1 || i === 2 ? -1 : 0)));
    let artifacts: TfCore.io.ModelArtifacts | undefined;
    await model.save(tf.io.withSaveHandler(async (a) => ((artifacts = a), { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } })));
    model.dispose();
    const json = { format: 'layers-model', modelTopology: artifacts!.modelTopology, weightsManifest: [{ paths: ['w.bin'], weights: artifacts!.weightSpecs }] };
    const bundle = zipBytes([{ name: 'model.json', bytes: Buffer.from(JSON.stringify(json)) }, { name: 'w.bin', bytes: new Uint8Array(artifacts!.weightData as ArrayBuffer) }]);
    const m = loadModelBytes(bundle, '/nonexistent', 'nested');
    const r = inspect(m);
    assert.deepEqual(r.layers.map((l) => l.name), ['inner/c1', 'inner/b1', 'inner/r1', 'c2', 'b2']);
    assert.deepEqual(r.layers.find((l) => l.name === 'c2')?.output_shape, [1, 6, 6, 2]);
    const plan = planFoldBatchNorm(m);
    assert.deepEqual(plan.candidates.map((c) => `${c.batchnorm}>${c.into}`), ['inner/b1>inner/c1', 'b2>c2']);
    const f = foldBatchNorm(m);
    assert.equal(inspect(f.model).layers.filter((l) => l.op === 'BatchNorm').length, 0);
    const v = await verify(m, f.model, { samples: 2 });
    assert.ok(v.max_rel_error < 1e-5, JSON.stringify(v));
  });
});
