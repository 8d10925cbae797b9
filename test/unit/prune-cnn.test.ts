/**
 * Structured pruning on a PyTorch CNN with a residual Add, a Concat, a depthwise conv and Flatten -> Linear
 * (test/fixtures/onnx-prune). Oracles: PyTorch's outputs of the original net (exact 'dead' pruning must
 * reproduce them), PyTorch's outputs of the net with the L1-selected channels zeroed at every consumer (what
 * physical removal computes) and the L1 selection computed in the fixture script from the PyTorch weights,
 * the dead / constant units of the construction (expected.json, written by hand), and onnxruntime running the
 * original model. Refusals are checked on small graphs built with our codec; PaddleOCR's classifier is the
 * real-model check (SE blocks, hard-swish, weights in Constant nodes).
 */
import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { loadModel } from '../../src/core/api';
import { compareOnInputs } from '../../src/core/analysis/probe';
import { decodeModel, encodeModel } from '../../src/core/formats/onnx/codec';
import type { OnnxModel } from '../../src/core/formats/onnx/model';
import { applyPrune, planPrune, sliceAxes } from '../../src/core/formats/onnx/prune';
import { GraphBuilder } from '../helpers/onnx-build';
import { loadDataSet, runWithOrt } from '../helpers/ort';
import { assertClose } from '../helpers/assert-close';

const DIR = path.join(__dirname, '..', 'fixtures', 'onnx-prune', 'cnn');
const expected = JSON.parse(readFileSync(path.join(DIR, 'expected.json'), 'utf8')) as {
  dead_removed: Record<string, number[]>;
  'l1_ratio_0.25_layer': Record<string, number[]>;
};
const PADDLE = path.join(__dirname, '..', '..', 'node_modules', '@gutenye', 'ocr-models', 'assets', 'ch_ppocr_mobile_v2.0_cls_infer.onnx');

/** fixture group names -> the exported layer names */
const GROUPS: Record<string, string> = {
  'stem + b (residual Add)': '/b/Conv + /stem/Conv',
  'stem+b': '/b/Conv + /stem/Conv',
  a: '/a/Conv',
  'br1 (+ dw rows)': '/br1/Conv',
  br1: '/br1/Conv',
  br2: '/br2/Conv',
  pw: '/pw/Conv',
  c11: '/c11/Conv',
  fc1: '/fc1/Gemm',
};

async function cnn(): Promise<OnnxModel> {
  return (await loadModel(path.join(DIR, 'model.onnx'))) as OnnxModel;
}

function removedByGroup(groups: { layers: string[]; removed: number[] }[]): Record<string, number[]> {
  return Object.fromEntries(groups.filter((g) => g.removed.length).map((g) => [g.layers.join(' + '), g.removed]));
}

describe('prune the PyTorch CNN', () => {
  const data = loadDataSet(path.join(DIR, 'test_data_set_0'));

  it("'dead': removes exactly the constructed dead / constant units and reproduces PyTorch's outputs", async () => {
    const model = await cnn();
    const r = await applyPrune(model, { criterion: 'dead', inputs: { kind: 'random', seed: 3 }, samples: 64 });
    const want = Object.fromEntries(Object.entries(expected.dead_removed).map(([k, v]) => [GROUPS[k], v]));
    assert.deepEqual(removedByGroup(r.plan.groups), want);
    assert.ok(r.plan.exact);
    // the depthwise conv loses the row of Concat channel 1 (br1's dead channel), and its group count drops
    assert.equal(r.removed['/dw/Conv'], 1);
    const dw = r.model.graph.node.find((n) => n.name === '/dw/Conv')!;
    assert.equal(Number(dw.attribute.find((a) => a.name === 'group')!.i), 15);
    // constants folded into the next bias: pw <- dw channel 1 (relu(bn(bias))) only if it is non-zero, c11 <- 0.7,
    // fc1 <- 16 features of 0.3 (c11 channel 6 through MaxPool + Flatten), fc2 <- 0.25
    const folded = Object.fromEntries(r.plan.consumers.map((c) => [c.layer, c.folded_constants]));
    assert.equal(folded['/c11/Conv'], 1);
    assert.equal(folded['/fc1/Gemm'], 16);
    assert.equal(folded['/fc2/Gemm'], 1);
    // kept by design: the residual channel 7 (varies after the Add), br2 channel 2 (through a padded conv)
    assert.ok(!r.plan.groups.find((g) => g.layers.includes('/stem/Conv'))!.removed.includes(7));
    const br2 = r.plan.groups.find((g) => g.layers[0] === '/br2/Conv')!;
    assert.deepEqual(br2.removed, []);
    assert.match(br2.reason ?? '', /input of \/pw\/Conv/);
    const fc2 = r.plan.groups.find((g) => g.layers[0] === '/fc2/Gemm')!;
    assert.equal(fc2.prunable, 0);
    assert.match(fc2.reason ?? '', /graph output y/);
    // sizes: fc1 loses 2 x 16 input rows and 3 units, etc.
    assert.ok(r.params_after < r.params_before && r.bytes_after < r.bytes_before && r.macs_after! < r.macs_before!);
    assert.equal(r.params_before - r.params_after, r.bytes_before / 4 - r.bytes_after / 4);
    // the saved model decodes, onnxruntime runs it, and it computes PyTorch's outputs
    const bytes = encodeModel(r.model.proto);
    decodeModel(bytes);
    const [y] = await runWithOrt(bytes, data.inputs);
    assertClose(y, data.outputs[0].values, 1e-5, 'pruned vs PyTorch');
    // on other inputs of the same distribution as well (onnxruntime on the original as the reference)
    const v = await compareOnInputs(model, r.model, { kind: 'random', seed: 99 }, { samples: 32 });
    assert.ok(v.max_rel_error < 1e-5, JSON.stringify(v));
    // the original is untouched (immutable rewrite), untouched tensors are shared
    assert.equal(model.graph.node.find((n) => n.name === '/dw/Conv')!.attribute.find((a) => a.name === 'group')!.i, 16n);
    const fc2W = (m: OnnxModel) => m.graph.initializer.find((t) => t.name === 'fc2.weight');
    assert.notEqual(fc2W(r.model), fc2W(model), 'fc2 lost input columns');
    const tensor = (m: OnnxModel, name: string) => m.graph.initializer.find((t) => t.name === name);
    assert.ok(tensor(model, 'br2_bn.weight') && tensor(r.model, 'br2_bn.weight') === tensor(model, 'br2_bn.weight'), 'br2 keeps its channels: its BN is shared');
  });

  it("'l1' ratio 0.25 per group: PyTorch's selection, and PyTorch's outputs of the masked net", async () => {
    const model = await cnn();
    const r = await applyPrune(model, { criterion: 'l1', ratio: 0.25 });
    assert.ok(!r.plan.exact);
    const want = Object.fromEntries(Object.entries(expected['l1_ratio_0.25_layer']).map(([k, v]) => [GROUPS[k], v]));
    assert.deepEqual(removedByGroup(r.plan.groups), want);
    const masked = loadDataSet(path.join(DIR, 'l1_masked'));
    const [y] = await runWithOrt(encodeModel(r.model.proto), data.inputs);
    assertClose(y, masked.outputs[0].values, 1e-5, 'pruned vs PyTorch masked');
    // coupled channels go together: stem and b lose the same number of output channels
    assert.equal(r.removed['/stem/Conv'], 4);
    assert.equal(r.removed['/b/Conv'], 4);
    assert.equal(r.removed['/dw/Conv'], 4, 'two from each Concat branch');
  });

  it("'l2' global, 'bn-gamma' threshold 0, 'apoz' threshold 1: the channels each criterion implies", async () => {
    const model = await cnn();
    const total = (await planPrune(model, { criterion: 'l2', ratio: 0 })).groups.filter((g) => g.prunable > 0).reduce((s, g) => s + g.channels, 0);
    const g = await applyPrune(model, { criterion: 'l2', ratio: 0.3, scope: 'global' });
    assert.equal(
      g.plan.groups.reduce((s, x) => s + x.removed.length, 0),
      Math.floor(0.3 * total),
    );
    const [yg] = await runWithOrt(encodeModel(g.model.proto), data.inputs);
    assert.equal(yg.length, 40);
    // |gamma| <= 0: the BN channels zeroed in the construction, unless another BN of the same coupled channel
    // set scales it (stem channel 7 is coupled to b_bn channel 7, br2 channel 2 to dw_bn channel 10)
    const b = await applyPrune(model, { criterion: 'bn-gamma', threshold: 0 });
    assert.deepEqual(removedByGroup(b.plan.groups), { '/b/Conv + /stem/Conv': [3], '/a/Conv': [5], '/pw/Conv': [4] });
    assert.match(b.plan.groups.find((x) => x.layers[0] === '/c11/Conv')!.reason ?? '', /no BatchNorm/);
    // APoZ 1 in every activation of the channel set
    const a = await applyPrune(model, { criterion: 'apoz', threshold: 1, inputs: { kind: 'random', seed: 3 }, samples: 32 });
    const ra = removedByGroup(a.plan.groups);
    assert.deepEqual(ra['/a/Conv'], [5]);
    assert.deepEqual(ra['/b/Conv + /stem/Conv'], [3]);
    assert.deepEqual(ra['/c11/Conv'], [9]);
    assert.deepEqual(ra['/fc1/Gemm'], [0, 5]);
    // removed channels were all zero: the probed means folded into the biases are 0, so this is exact too
    const [ya] = await runWithOrt(encodeModel(a.model.proto), data.inputs);
    assertClose(ya, data.outputs[0].values, 1e-5, 'apoz 1 vs PyTorch');
  });

  it('options are checked', async () => {
    const model = await cnn();
    await assert.rejects(planPrune(model, { criterion: 'l1' }), /needs a ratio/);
    await assert.rejects(planPrune(model, { criterion: 'l1', ratio: 1 }), /\[0, 1\)/);
    await assert.rejects(planPrune(model, { criterion: 'x' as 'l1', ratio: 0.1 }), /unknown pruning criterion/);
    await assert.rejects(planPrune(model, { criterion: 'l1', ratio: 0.1, layers: ['nope'] }), /no layer named 'nope'/);
    const only = await planPrune(model, { criterion: 'l1', ratio: 0.5, layers: ['/pw/Conv'] });
    assert.deepEqual(Object.keys(only.removed), ['/pw/Conv']);
  });
});

describe('prune: what it refuses, with reasons (graphs built with our codec)', () => {
  const rows = (n: number, k: number, scale = 0.1) => Float32Array.from({ length: n * k }, (_, i) => Math.sin(i + 1) * scale);
  const conv = (b: GraphBuilder, name: string, x: string, cin: number, cout: number, group = 1) =>
    b.init(`${name}.w`, [cout, cin / group, 1, 1], rows(cout, cin / group)).init(`${name}.b`, [cout], rows(cout, 1)).node('Conv', [x, `${name}.w`, `${name}.b`], [name], group > 1 ? { group: { i: group } } : {});

  it('grouped convs, a residual Add with a graph input, Softmax over channels, Split of channels, Shape', async () => {
    const b = new GraphBuilder().input('x', ['N', 4, 3, 3]);
    conv(b, 'c1', 'x', 4, 4).node('Relu', ['c1'], ['r1']);
    conv(b, 'g', 'r1', 4, 4, 2); // grouped: 2 groups of 2
    conv(b, 'c2', 'x', 4, 4).node('Add', ['c2', 'x'], ['res']); // coupled to the graph input
    conv(b, 'c3', 'x', 4, 6).node('Softmax', ['c3'], ['sm'], { axis: { i: 1 } });
    conv(b, 'c4', 'x', 4, 4).node('Split', ['c4'], ['s1', 's2'], { axis: { i: 1 } });
    conv(b, 'c5', 'x', 4, 4).node('Shape', ['c5'], ['shp']);
    conv(b, 'c6', 'x', 4, 4).node('Relu', ['c6'], ['r6']);
    conv(b, 'c7', 'r6', 4, 4);
    for (const o of ['g', 'res', 'sm', 's1', 's2', 'shp', 'c7']) b.output(o);
    const plan = await planPrune(b.model(), { criterion: 'l1', ratio: 0.5 });
    const reason = (layer: string) => plan.groups.find((g) => g.layers[0] === layer)?.reason ?? '';
    assert.match(reason('c1'), /grouped convolution \(group 2\)/);
    assert.match(reason('c2'), /cannot be pruned/);
    assert.match(reason('c3'), /normalizes across the channels/);
    assert.match(reason('c4'), /splits the channels/);
    assert.match(reason('c5'), /Shape/);
    assert.match(reason('c7'), /graph output/);
    // c6 is free: half of its 4 channels go, c7 loses the matching input columns
    assert.deepEqual(plan.removed, { c6: 2 });
    assert.deepEqual(plan.consumers, [{ layer: 'c7', removed_inputs: 2, folded_constants: 0 }]);
    assert.ok(plan.skipped.length >= 6);
  });

  it('Reshape to [N, -1] and to a literal width, MatMul consumers (features last), Transpose', async () => {
    // x[N,4,2,2] -> conv -> Relu -> Reshape [0,-1] -> MatMul W[16,3]; conv2 -> Relu -> Reshape [-1, 16] literal
    const b = new GraphBuilder().input('x', ['N', 4, 2, 2]);
    conv(b, 'c1', 'x', 4, 4).node('Relu', ['c1'], ['r1']).initInt64('shape_a', [0, -1]).node('Reshape', ['r1', 'shape_a'], ['f1']);
    b.init('w1', [16, 3], rows(16, 3)).node('MatMul', ['f1', 'w1'], ['y1']).output('y1');
    conv(b, 'c2', 'x', 4, 4).node('Relu', ['c2'], ['r2']).initInt64('shape_b', [-1, 16]).node('Reshape', ['r2', 'shape_b'], ['f2']);
    b.init('w2', [16, 3], rows(16, 3, 0.2)).init('b2', [3], [0.1, 0.2, 0.3]).node('Gemm', ['f2', 'w2', 'b2'], ['y2']).output('y2');
    conv(b, 'c3', 'x', 4, 4).node('Transpose', ['c3'], ['t3'], { perm: { ints: [0, 2, 3, 1] } });
    b.init('w3', [4, 2], rows(4, 2)).node('MatMul', ['t3', 'w3'], ['y3']).output('y3');
    const model = b.model();
    const r = await applyPrune(model, { criterion: 'l1', ratio: 0.5 });
    assert.deepEqual(r.removed, { c1: 2, c2: 2, c3: 2 });
    const w1 = r.model.graph.initializer.find((t) => t.name === 'w1')!;
    assert.deepEqual(w1.dims.map(Number), [8, 3], 'MatMul rows: 2 channels x 4 positions removed');
    const shapeB = r.model.graph.node.find((n) => n.name === 'f2')!.input[1];
    const t = r.model.graph.initializer.find((x) => x.name === shapeB)!;
    assert.deepEqual(Array.from(t.int64Data!, Number), [-1, 8], 'the literal width is rewritten');
    // onnxruntime runs it: shapes are consistent
    const v = await compareOnInputs(model, r.model, { kind: 'random', seed: 1 }, { samples: 4 });
    assert.equal(v.outputs.length, 3);
    assert.ok(Number.isFinite(v.max_abs_error));
  });

  it('sliceAxes keeps the right entries on any axes', () => {
    const data = Float32Array.from({ length: 24 }, (_, i) => i);
    const r = sliceAxes(data, [2, 3, 4], [null, Uint8Array.from([1, 0, 1]), Uint8Array.from([0, 1, 1, 0])]);
    assert.deepEqual(r.dims, [2, 2, 2]);
    assert.deepEqual(Array.from(r.data), [1, 2, 9, 10, 13, 14, 21, 22]);
  });
});

describe('prune PaddleOCR classifier (real model)', () => {
  const dims = { 'p2o.DynamicDimension.0': 1, 'p2o.DynamicDimension.1': 48, 'p2o.DynamicDimension.2': 192 };
  it('SE blocks couple the expand conv with the excitation conv; dead pruning is exact; L1 pruning runs', async () => {
    const model = (await loadModel(PADDLE)) as OnnxModel;
    const dead = await applyPrune(model, { criterion: 'dead', dims, samples: 16, batchSize: 8 });
    // MobileNetV3 SE: Mul(dw output, HardSigmoid(excite conv)) ties the block's expand conv to its excitation conv
    assert.ok(dead.plan.groups.some((g) => g.layers.includes('p2o.Conv.17') && g.layers.includes('p2o.Conv.20')));
    assert.ok(dead.plan.skipped.some((s) => /Shape/.test(s.reason)), 'the last conv feeds a Shape');
    assert.ok(Object.keys(dead.removed).length > 0, 'some SE squeeze units never fire on these inputs');
    const v = await compareOnInputs(model, dead.model, { kind: 'random', seed: 7 }, { samples: 4, dims, batchSize: 2 });
    assert.ok(v.max_rel_error < 1e-5, JSON.stringify(v));
    const l1 = await applyPrune(model, { criterion: 'l1', ratio: 0.3, dims });
    assert.ok(l1.params_after < 0.75 * l1.params_before && l1.macs_after! < l1.macs_before!);
    const v2 = await compareOnInputs(model, l1.model, { kind: 'random', seed: 7 }, { samples: 2, dims });
    assert.ok(Number.isFinite(v2.max_abs_error) && v2.max_abs_error > 0, 'runs, and the outputs change');
  });
});
