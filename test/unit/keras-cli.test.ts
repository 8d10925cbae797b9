/**
 * The CLI (built bundle dist/cli.js) on TF.js and Keras files: the same JSON fields as for ONNX, the new
 * freeze-bn command, and -o for TF.js layers models naming the new model.json (shards next to it).
 */
import { strict as assert } from 'node:assert';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { assertCliBuilt, runCli } from '../helpers/cli';
import { nsfwModel } from '../helpers/nsfwjs';

const ROOT = path.join(__dirname, '..', '..');
const KERAS = path.join(ROOT, 'test', 'fixtures', 'keras');

const run = runCli;

let tmp = '';
before(() => {
  assertCliBuilt();
  tmp = mkdtempSync(path.join(os.tmpdir(), 'ms-kcli-'));
});
after(() => rmSync(tmp, { recursive: true, force: true }));

describe('model-surgeon CLI on TF.js and Keras models', () => {
  const files: [string, string][] = [
    ['tfjs-layers', nsfwModel('mobilenet_v2')],
    ['tfjs-graph', nsfwModel('mobilenet_v2_mid')],
    ['keras-h5', path.join(KERAS, 'func_mixed.h5')],
    ['keras', path.join(KERAS, 'func_mixed.keras')],
  ];
  for (const [format, file] of files) {
    it(`inspect --json: ${format} with the documented fields`, () => {
      const r = run('inspect', file, '--json', '--no-stats');
      assert.equal(r.code, 0, r.stderr);
      const j = JSON.parse(r.stdout);
      assert.equal(j.format, format);
      for (const k of ['ir_version', 'opsets', 'producer', 'producer_version', 'graph_name', 'inputs', 'outputs', 'file_bytes', 'weight_bytes']) assert.ok(k in j.model, `model.${k}`);
      for (const l of j.layers) for (const k of ['name', 'index', 'op', 'native_op', 'inputs', 'outputs', 'params', 'macs', 'output_shape', 'weights', 'batchnorm']) assert.ok(k in l, `layer field ${k}`);
      assert.deepEqual(Object.keys(j.totals).sort(), ['layers', 'macs', 'params']);
    });
  }

  it('fold-bn on a TF.js layers model writes model.json + shards at -o and verifies with TF.js', () => {
    const out = path.join(tmp, 'mobilenet', 'model.json');
    mkdirSync(path.dirname(out));
    const r = run('fold-bn', nsfwModel('mobilenet_v2'), '-o', out, '--json', '--samples', '1');
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout);
    assert.equal(j.folded, 52);
    assert.match(j.verify.engine, /^tfjs-/);
    assert.ok(j.verify.max_rel_error < 1e-4);
    assert.ok(j.notes.some((n: string) => /float32/.test(n)));
    assert.equal(j.output, out);
    assert.ok(readdirSync(path.dirname(out)).some((f) => f.endsWith('.bin')));
    const v = run('verify', nsfwModel('mobilenet_v2'), out, '--json', '--samples', '1', '--tolerance', '1e-4');
    assert.equal(v.code, 0, v.stderr);
    assert.equal(JSON.parse(v.stdout).samples, 1);
  });

  it('fold-bn on .h5 and .keras; verify compares the results; --backend cpu is reported', () => {
    for (const ext of ['h5', 'keras']) {
      const out = path.join(tmp, `folded.${ext}`);
      const r = run('fold-bn', path.join(KERAS, `func_mixed.${ext}`), '-o', out, '--json');
      assert.equal(r.code, 0, r.stderr);
      const j = JSON.parse(r.stdout);
      assert.equal(j.folded, 4);
      assert.equal(j.skipped.length, 2);
      const v = run('verify', path.join(KERAS, `func_mixed.${ext}`), out, '--json', '--backend', 'cpu');
      assert.equal(v.code, 0, v.stderr);
      assert.equal(JSON.parse(v.stdout).engine, 'tfjs-cpu');
      assert.equal(JSON.parse(run('inspect', out, '--json', '--no-stats').stdout).layers.filter((l: { op: string }) => l.op === 'BatchNorm').length, 2);
    }
  });

  it('freeze-bn sets trainable false on every BatchNorm and writes the model', () => {
    const out = path.join(tmp, 'frozen.h5');
    const r = run('freeze-bn', path.join(KERAS, 'seq_conv.h5'), '-o', out, '--json');
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout);
    assert.equal(j.frozen, 3);
    assert.deepEqual(j.layers, ['bn_a', 'bn_b', 'bn_c']);
    assert.equal(JSON.parse(run('freeze-bn', out, '-o', path.join(tmp, 'again.h5'), '--json').stdout).frozen, 0);
    const onnx = run('freeze-bn', path.join(ROOT, 'test', 'fixtures', 'onnx-fold', 'fcn_tiny', 'model.onnx'), '-o', path.join(tmp, 'x.onnx'));
    assert.equal(onnx.code, 1);
    assert.match(onnx.stderr, /not available for onnx/);
    assert.ok(!existsSync(path.join(tmp, 'x.onnx')));
  });

  it('probe / prune --dead / swap-activation on Keras and TF.js layers files; a TF.js graph model is refused', () => {
    const p = run('probe', path.join(KERAS, 'seq_conv.keras'), '--json', '--samples', '4');
    assert.equal(p.code, 0, p.stderr);
    const pj = JSON.parse(p.stdout);
    assert.deepEqual(pj.layers.map((l: { name: string; channels: number }) => [l.name, l.channels]), [['relu_a', 4], ['relu_b', 6]]);
    assert.match(pj.engine, /^tfjs-/);
    const dir = path.join(tmp, 'pruned-nsfw');
    mkdirSync(dir);
    const r = run('prune', nsfwModel('mobilenet_v2'), '--dead', '--samples', '4', '-o', path.join(dir, 'model.json'), '--json');
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout);
    assert.ok(j.removed.dense_1 > 0 && j.params_after < j.params_before);
    assert.equal(j.verify.max_abs_error, 0);
    assert.ok(existsSync(path.join(dir, 'model.json')));
    const out = path.join(tmp, 'gelu.h5');
    const s = run('swap-activation', path.join(KERAS, 'func_mixed.h5'), '--to', 'gelu', '-o', out, '--json', '--samples', '4');
    assert.equal(s.code, 0, s.stderr);
    assert.equal(JSON.parse(s.stdout).swapped, 3);
    assert.ok(existsSync(out));
    const g = run('probe', nsfwModel('mobilenet_v2_mid'), '--samples', '2');
    assert.equal(g.code, 1);
    assert.match(g.stderr, /supports ONNX, Keras \(\.h5, \.keras\) and TF\.js layers models in this version \(this is a tfjs-graph model\)/);
  });
});
