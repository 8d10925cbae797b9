/**
 * Keras 'dead' pruning across residual Add and Concatenate (channels last), on a small functional model built
 * here with the .h5 writer: Conv2D -> ReLU branches joined by an Add, the sum read by a Conv2D and concatenated
 * with its output. Channels are dead by construction (bias -100): channel 1 in both Add members (removed from
 * both producers, the BatchNorm and every reader), channel 2 in one member only (kept: the sum is alive).
 * Oracle: TF.js running the original and the pruned model (prune's verify), the written .h5 read back.
 */
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadModel, probe, prune, saveModel } from '../../src/core/api';
import type { JsonObject } from '../../src/core/formats/keras/json';
import { loadH5wasm } from '../../src/core/formats/keras/h5';
import { weightToFloat32, type KerasModel } from '../../src/core/formats/keras/model';
import { buildGraph } from '../../src/core/formats/keras/topology';
import { conv, inputLayer, kerasModel, layer, rng, WeightList } from '../helpers/keras-build';

let tmp = '';
before(async () => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'ms-keras-coupled-'));
  await loadH5wasm();
});
after(() => rmSync(tmp, { recursive: true, force: true }));

/** inp(8x8x3) -> c1 -> r1 ; inp -> c2 -> bn2 -> r2 ; add = r1 + r2 ; add -> c3 -> r3 ; cat[add, r3] -> head(1x1) -> gap -> out */
/** output shapes of the layers, for the Keras 3 config's recorded tensors */
const SHAPES: Record<string, (number | null)[]> = { inp: [null, 8, 8, 3], c1: [null, 8, 8, 4], r1: [null, 8, 8, 4], c2: [null, 8, 8, 4], bn2: [null, 8, 8, 4], r2: [null, 8, 8, 4], add: [null, 8, 8, 4], c3: [null, 8, 8, 3], r3: [null, 8, 8, 3], cat: [null, 8, 8, 7], head: [null, 8, 8, 2], gap: [null, 2] };

function coupledModel(format: 'keras-h5' | 'keras', constant = true, gamma = [1.5, 1.5, 1.5, 1.5]): KerasModel {
  const layers: JsonObject[] = [
    inputLayer('inp', [8, 8, 3]),
    conv('c1', 4, 3, 'inp'),
    layer('ReLU', 'r1', ['c1'], { max_value: null, negative_slope: 0, threshold: 0 }),
    conv('c2', 4, 3, 'inp'),
    layer('BatchNormalization', 'bn2', ['c2'], { axis: -1, momentum: 0.99, epsilon: 0.001, center: true, scale: true }),
    layer('ReLU', 'r2', ['bn2'], { max_value: null, negative_slope: 0, threshold: 0 }),
    layer('Add', 'add', ['r1', 'r2']),
    conv('c3', 3, 3, 'add'),
    layer('ReLU', 'r3', ['c3'], { max_value: null, negative_slope: 0, threshold: 0 }),
    layer('Concatenate', 'cat', ['add', 'r3'], { axis: -1 }),
    conv('head', 2, 1, 'cat', 'valid'),
    layer('GlobalAveragePooling2D', 'gap', ['head'], { data_format: 'channels_last' }),
    { ...layer('Dense', 'out', ['gap'], { units: 2, activation: 'linear', use_bias: true }) },
  ];
  const r = rng(3);
  const list = new WeightList();
  const w = list.add.bind(list);
  const kernel = (l: string, shape: number[], zeroOut: number[] = []) => w(l, 'kernel', shape, (i) => (zeroOut.includes(i % shape[3]) ? 0 : r()));
  const bias = (l: string, values: number[]) => w(l, 'bias', [values.length], (i) => values[i]);
  kernel('c1', [3, 3, 3, 4]);
  bias('c1', [0.1, -100, -100, 0.2]); // channel 1 dead here and in c2, channel 2 dead here only
  kernel('c2', [3, 3, 3, 4]);
  bias('c2', [0.1, -100, 0.3, 0.1]);
  w('bn2', 'gamma', [4], (i) => gamma[i]);
  w('bn2', 'beta', [4], (i) => 0.1 * i);
  w('bn2', 'moving_mean', [4], () => 0.05);
  w('bn2', 'moving_variance', [4], () => 2);
  kernel('c3', [3, 3, 4, 3], [2]);
  bias('c3', [-100, 0.2, constant ? 0.5 : -100]); // channel 0 dead, channel 2 the constant 0.5 (zero kernel)
  kernel('head', [1, 1, 7, 2]);
  bias('head', [0.1, -0.1]);
  kernel('out', [1, 1, 2, 2].slice(2) as number[]);
  bias('out', [0, 0]);
  return kerasModel(format, tmp, { name: 'coupled', layers, shapes: SHAPES, input: 'inp', output: 'out' }, list.weights);
}

describe('Keras dead pruning across residual Add and Concatenate', () => {
  for (const [format, ext] of [['keras-h5', 'h5'], ['keras', 'keras']] as const)
  it(`${ext}: removes channels dead in every Add member, keeps one dead in a single member, maps Concatenate offsets, folds a constant`, async () => {
    const src = path.join(tmp, `coupled.${ext}`);
    await saveModel(coupledModel(format), src);
    const m = (await loadModel(src)) as KerasModel;
    const r = await prune(m, { criterion: 'dead', samples: 16, inputs: { kind: 'random', seed: 1 } });
    assert.deepEqual(r.removed, { c1: 1, c2: 1, c3: 2 }, JSON.stringify(r.plan, null, 1));
    assert.ok(r.verify.max_abs_error < 1e-6, `max abs ${r.verify.max_abs_error}`); // the folded constant changes the summation order
    assert.ok(r.params_after < r.params_before);
    const p = r.model as KerasModel;
    const shape = (l: string, key = 'kernel') => p.weightsOf([l]).find((x) => x.key === key)!.shape;
    assert.deepEqual(shape('c1'), [3, 3, 3, 3]);
    assert.deepEqual(shape('c2'), [3, 3, 3, 3]);
    assert.deepEqual(shape('bn2', 'gamma'), [3]);
    assert.deepEqual(shape('c3'), [3, 3, 3, 1]);
    assert.deepEqual(shape('head'), [1, 1, 4, 2]); // 7 inputs: add channel 1 (offset 0) and r3 channels 0, 2 (offset 4) gone
    // the kept rows of head are the original rows 0, 2, 3, 5
    const before = weightToFloat32(m.weightsOf(['head']).find((x) => x.key === 'kernel')!);
    const afterK = weightToFloat32(p.weightsOf(['head']).find((x) => x.key === 'kernel')!);
    assert.deepEqual([...afterK], [0, 2, 3, 5].flatMap((row) => [before[row * 2], before[row * 2 + 1]]));
    const c = r.plan.consumers.find((x) => x.layer === 'head')!;
    assert.equal(c.folded_constants, 1);
    const out = path.join(tmp, `coupled-pruned.${ext}`);
    await saveModel(p, out);
    const back = (await loadModel(out)) as KerasModel;
    const g = buildGraph(back.modelConfig);
    assert.equal(g.layers.find((l) => l.name === 'c1')!.config.filters, 3);
    const q = await probe(back, { kind: 'random', seed: 2 }, { samples: 2, layers: ['add', 'cat'] });
    assert.deepEqual(q.layers.map((l) => l.channels), [3, 4]);
    if (ext === 'keras') {
      const cat = g.layers.find((l) => l.name === 'cat')!;
      assert.deepEqual((cat.entry.build_config as { input_shape: unknown }).input_shape, [
        [null, 8, 8, 3],
        [null, 8, 8, 1],
      ]);
    }
  });

  it('only dead channels (no constant to fold): the pruned model computes exactly the same outputs', async () => {
    const src = path.join(tmp, 'coupled-dead.h5');
    await saveModel(coupledModel('keras-h5', false), src);
    const m = (await loadModel(src)) as KerasModel;
    const r = await prune(m, { criterion: 'dead', samples: 16, inputs: { kind: 'random', seed: 4 } });
    assert.deepEqual(r.removed, { c1: 1, c2: 1, c3: 2 });
    assert.equal(r.verify.max_abs_error, 0);
    assert.equal(r.plan.consumers.find((x) => x.layer === 'head')!.folded_constants, 0);
    const group = r.plan.groups.find((g) => g.layers.includes('c1'))!;
    assert.deepEqual(group.layers, ['c1', 'c2', 'c3', 'bn2']);
    assert.deepEqual(group.removed, [1]);
  });

  it('bn-gamma by ratio: Add groups score their BatchNorm |gamma|, the lowest go from both producers; a group with no BatchNorm stays', async () => {
    const m = coupledModel('keras-h5', true, [1.5, 0.2, 1.1, 0.7]);
    const r = await prune(m, { criterion: 'bn-gamma', ratio: 0.3, samples: 4 });
    // 7 groups (4 tied through the Add, 3 of c3), floor(0.3 * 7) = 2 go: the two smallest gammas, channels 1 and 3
    assert.deepEqual(r.removed, { c1: 2, c2: 2 }, JSON.stringify(r.plan, null, 1));
    const p = r.model as KerasModel;
    assert.deepEqual([...weightToFloat32(p.weightsOf(['bn2']).find((x) => x.key === 'gamma')!)], [1.5, Math.fround(1.1)]);
    assert.deepEqual(p.weightsOf(['head']).find((x) => x.key === 'kernel')!.shape, [1, 1, 5, 2]);
    assert.ok(r.verify.max_abs_error > 0 && Number.isFinite(r.verify.max_abs_error), 'not exact, but it runs');
    assert.match(r.plan.notes.join('\n'), /sum of \|gamma\| over their BatchNorms/);
  });

  it('apoz by threshold: a group goes when every probed activation of it is idle (channel dead in one Add member stays)', async () => {
    const m = coupledModel('keras-h5', true);
    const r = await prune(m, { criterion: 'apoz', threshold: 0.9, samples: 16, inputs: { kind: 'random', seed: 1 } });
    // Add channel 1 is never positive at r1 nor r2; channel 2 only at r1; r3 channel 0 never positive
    assert.deepEqual(r.removed, { c1: 1, c2: 1, c3: 1 }, JSON.stringify(r.plan, null, 1));
    assert.equal(r.verify.max_abs_error, 0, 'the channels removed were exactly 0');
    assert.match(r.plan.notes.join('\n'), /smallest APoZ among their probed activations/);
  });

  it('l1 by ratio: a group scores the sum of its producers\' channel norms, tied channels go together, the file reloads', async () => {
    const m = coupledModel('keras-h5');
    const r = await prune(m, { criterion: 'l1', ratio: 0.72, samples: 2 });
    const l1 = (l: string) => {
      const k = weightToFloat32(m.weightsOf([l]).find((x) => x.key === 'kernel')!);
      const n = m.weightsOf([l]).find((x) => x.key === 'kernel')!.shape[3];
      const out = new Array<number>(n).fill(0);
      k.forEach((v, i) => (out[i % n] += Math.abs(v)));
      return out;
    };
    const [a, b, c] = [l1('c1'), l1('c2'), l1('c3')];
    const scores = [...a.map((v, i) => ({ layer: 'add', c: i, s: v + b[i] })), ...c.map((v, i) => ({ layer: 'c3', c: i, s: v }))].sort((x, y) => x.s - y.s);
    const gone = scores.slice(0, Math.floor(0.72 * 7));
    // a layer keeps at least one channel: its best-scoring one
    if (gone.filter((g) => g.layer === 'c3').length === 3) gone.splice(gone.indexOf(scores.filter((g) => g.layer === 'c3').pop()!), 1);
    const fromAdd = gone.filter((g) => g.layer === 'add').length;
    const fromC3 = gone.length - fromAdd;
    assert.ok(fromAdd > 0 && fromC3 > 0, 'the ratio reaches both kinds of group');
    assert.equal(r.removed.c1 ?? 0, fromAdd);
    assert.equal(r.removed.c2 ?? 0, fromAdd);
    assert.equal(r.removed.c3 ?? 0, fromC3);
    assert.deepEqual(r.plan.groups.find((g) => g.layers.includes('c1'))!.removed, gone.filter((g) => g.layer === 'add').map((g) => g.c).sort());
    assert.equal(r.plan.exact, false);
    assert.ok(Number.isFinite(r.verify.max_abs_error) && r.verify.max_abs_error > 0);
    assert.ok(r.params_after < r.params_before);
    const out = path.join(tmp, 'coupled-l1.h5');
    await saveModel(r.model, out);
    const q = await probe(await loadModel(out), { kind: 'random', seed: 2 }, { samples: 2, layers: ['add', 'cat'] });
    assert.deepEqual(
      q.layers.map((l) => l.channels),
      [4 - fromAdd, 7 - fromAdd - fromC3],
    );
  });
});
