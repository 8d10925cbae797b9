/**
 * The issue's own case: an MLP 16 -> 100000 -> 10 with ReLU whose hidden layer is mostly dead on inputs in
 * [-1, 1]^16. The 6.6 MB model is not committed: buildWideMlp() (test/helpers/wide-mlp.ts) makes it from our seeded PRNG, and
 * test/fixtures/onnx-prune/make_fixtures.py ports that PRNG to Python, builds the same weights in PyTorch and
 * commits what PyTorch says (mlp_reference.json: alive units, outputs on 8 reference inputs). Oracles:
 * PyTorch's outputs (for the model we build and for the pruned one), the alive count computed here from the
 * weights and the box (a unit can fire somewhere in [-1, 1]^16 iff sum|w| + b > 0), onnxruntime on the
 * original model over the probe distribution.
 */
import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import * as ort from 'onnxruntime-node';
import { compareOnInputs } from '../../src/core/analysis/probe';
import { encodeModel } from '../../src/core/formats/onnx/codec';
import type { OnnxModel } from '../../src/core/formats/onnx/model';
import { applyPrune } from '../../src/core/formats/onnx/prune';
import { buildWideMlp, MLP_REFERENCE as REF } from '../helpers/wide-mlp';

async function run(model: OnnxModel, xs: number[][]): Promise<Float32Array> {
  const s = await ort.InferenceSession.create(encodeModel(model.proto));
  try {
    const r = await s.run({ x: new ort.Tensor('float32', Float32Array.from(xs.flat()), [xs.length, REF.inputs]) });
    return r.y.data as Float32Array;
  } finally {
    await s.release();
  }
}

function assertClose(actual: ArrayLike<number>, exp: ArrayLike<number>, rel: number, what: string): void {
  let ref = 0;
  let worst = 0;
  for (let i = 0; i < exp.length; i++) {
    ref = Math.max(ref, Math.abs(exp[i]));
    worst = Math.max(worst, Math.abs(actual[i] - exp[i]));
  }
  assert.ok(worst <= rel * ref, `${what}: max abs diff ${worst} > ${rel} x ${ref}`);
}

describe('prune the 16 -> 100000 -> 10 MLP with mostly dead hidden units', () => {
  it('removes exactly the dead units; outputs equal PyTorch and onnxruntime on the original; size and MACs shrink', async () => {
    const t0 = performance.now();
    const { model, w1, b1 } = buildWideMlp();
    // the weights we build are PyTorch's (same PRNG, same recipe)
    assert.deepEqual(Array.from(w1.subarray(0, 4)), REF.first_weights);
    const pyOut = REF.reference_outputs.flat();
    assertClose(await run(model, REF.reference_inputs), pyOut, 1e-5, 'built model vs PyTorch');
    // alive units, independently: the maximum of w.x + b over the box [-1, 1]^16 is sum|w| + b
    let alive = 0;
    for (let i = 0; i < REF.hidden; i++) {
      let s = b1[i];
      for (let j = 0; j < REF.inputs; j++) s += Math.abs(w1[i * REF.inputs + j]);
      if (s > 0) alive++;
    }
    assert.equal(alive, REF.alive);

    const inputs = { kind: 'random' as const, distribution: 'uniform' as const, low: -1, high: 1, seed: 5 };
    const r = await applyPrune(model, { criterion: 'dead', inputs, samples: 256, batchSize: 64 });
    assert.equal(r.removed.fc1, REF.hidden - REF.alive);
    const w1After = r.model.graph.initializer.find((t) => t.name === 'fc1.weight')!;
    const w2After = r.model.graph.initializer.find((t) => t.name === 'fc2.weight')!;
    assert.deepEqual(w1After.dims.map(Number), [REF.alive, REF.inputs], 'hidden width = alive units');
    assert.deepEqual(w2After.dims.map(Number), [REF.outputs, REF.alive]);
    assert.deepEqual(r.plan.consumers, [{ layer: 'fc2', removed_inputs: REF.hidden - REF.alive, folded_constants: 0 }]);
    // PyTorch's outputs of the unpruned net, within 1e-5 relative
    assertClose(await run(r.model, REF.reference_inputs), pyOut, 1e-5, 'pruned vs PyTorch');
    // onnxruntime, original vs pruned, on fresh samples of the same distribution
    const v = await compareOnInputs(model, r.model, { ...inputs, seed: 6 }, { samples: 128, batchSize: 64 });
    assert.ok(v.max_rel_error < 1e-5, JSON.stringify(v));
    // sizes: parameters (16 + 1 + 10 per hidden unit), float32 bytes, MACs per sample (16 + 10 per unit)
    const perUnit = REF.inputs + 1 + REF.outputs;
    assert.equal(r.params_before, REF.hidden * perUnit + REF.outputs);
    assert.equal(r.params_after, REF.alive * perUnit + REF.outputs);
    assert.equal(r.bytes_after, 4 * r.params_after);
    assert.equal(r.macs_before, REF.hidden * (REF.inputs + REF.outputs));
    assert.equal(r.macs_after, REF.alive * (REF.inputs + REF.outputs));
    assert.ok(encodeModel(r.model.proto).length < 0.31 * encodeModel(model.proto).length, 'file bytes shrink with the units');
    const seconds = (performance.now() - t0) / 1000;
    assert.ok(seconds < 20, `took ${seconds} s`);
  });
});
