/**
 * TF.js graph models on a real one: nsfwjs@4.4.0's mobilenet_v2_mid (TF.js converter 1.7.4 output, BatchNorm
 * fused into _FusedConv2D / FusedDepthwiseConv2dNative, uint8-quantized). Oracles: the node counts of its
 * model.json and TensorFlow.js's own graph-model loader on the files we write.
 */
import { strict as assert } from 'node:assert';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { foldBatchNorm, inspect, loadModel, loadModelBytes, planFoldBatchNorm, saveModel, serialize, verify } from '../../src/core/api';
import { loadTfjs } from '../../src/core/engines/tfjs';
import { TfjsGraphModel } from '../../src/core/formats/tfjs-graph/graph-model';
import { nsfwModel } from '../helpers/nsfwjs';
import { loadGraphFromFile, relError, seededInput } from '../helpers/tfjs-files';

const SRC = nsfwModel('mobilenet_v2_mid');
let tmp = '';
before(() => (tmp = mkdtempSync(path.join(os.tmpdir(), 'ms-graph-'))));
after(() => rmSync(tmp, { recursive: true, force: true }));

describe('TF.js graph model: nsfwjs mobilenet_v2_mid', () => {
  it('inspect: fused convolutions as Conv / DepthwiseConv, and BatchNorm found already folded', async () => {
    const m = await loadModel(SRC);
    assert.equal(m.format, 'tfjs-graph');
    const r = inspect(m);
    const json = JSON.parse(readFileSync(SRC, 'utf8')) as { modelTopology: { node: { op: string }[] } };
    const ops = (op: string) => json.modelTopology.node.filter((n) => n.op === op).length;
    assert.equal(r.layers.filter((l) => l.native_op === '_FusedConv2D' && l.op === 'Conv').length, ops('_FusedConv2D'));
    assert.equal(r.layers.filter((l) => l.op === 'DepthwiseConv').length, ops('FusedDepthwiseConv2dNative'));
    const bn = r.findings.find((f) => f.code === 'bn-already-folded');
    assert.ok(bn, JSON.stringify(r.findings));
    assert.equal(bn.layers.length, ops('_FusedConv2D') + ops('FusedDepthwiseConv2dNative'));
    const conv = r.layers.find((l) => l.native_op === '_FusedConv2D')!;
    assert.deepEqual(conv.weights.map((w) => w.role), ['kernel', 'bias']);
    assert.deepEqual(conv.output_shape, [1, 112, 112, 48]);
    assert.equal(conv.macs, 112 * 112 * 48 * 27);
    assert.ok(r.totals.macs !== null && r.totals.macs > 0);
    const plan = planFoldBatchNorm(m);
    assert.equal(plan.candidates.length, 0);
    assert.equal(foldBatchNorm(m).model, m, 'nothing to rewrite');
  });

  it('re-saved untouched: weights bit for bit, TF.js loads it and computes the same', async () => {
    const m = (await loadModel(SRC)) as TfjsGraphModel;
    const out = path.join(tmp, 'copy', 'model.json');
    mkdirSync(path.dirname(out), { recursive: true });
    await saveModel(m, out);
    const back = (await loadModel(out)) as TfjsGraphModel;
    assert.equal(back.weights.length, m.weights.length);
    back.weights.forEach((w, i) => assert.ok(Buffer.compare(Buffer.from(w.bytes), Buffer.from(m.weights[i].bytes)) === 0));
    const b = loadModelBytes(serialize(m), tmp, 'bundle') as TfjsGraphModel;
    assert.equal(b.weights.length, m.weights.length);
    const { tf } = await loadTfjs();
    const x = seededInput([1, 224, 224, 3], 3);
    const outs: Float32Array[] = [];
    for (const file of [SRC, out]) {
      const gm = await loadGraphFromFile(file);
      const y = gm.execute(tf.tensor(x, [1, 224, 224, 3])) as import('@tensorflow/tfjs-core').Tensor;
      outs.push(Float32Array.from(await y.data()));
      y.dispose();
      gm.dispose();
    }
    assert.equal(relError(outs[0], outs[1]), 0);
    const v = await verify(m, back, { samples: 1 });
    assert.equal(v.max_abs_error, 0);
  });
});
