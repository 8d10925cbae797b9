/** The doctor's CLI on TF.js / Keras files as a user runs it (dist/cli.js in a child process): audit, plan, fix. */
import { strict as assert } from 'node:assert';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { assertCliBuilt, runCli } from '../helpers/cli';
import { loadModel, planMemory } from '../../src/core/api';
import { isObject, type JsonObject } from '../../src/core/formats/keras/json';
import type { KerasModel } from '../../src/core/formats/keras/model';
import { layerList } from '../../src/core/formats/keras/topology';
import { nsfwModel } from '../helpers/nsfwjs';

const ROOT = path.join(__dirname, '..', '..');
const KERAS = path.join(ROOT, 'test', 'fixtures', 'keras');

const run = runCli;

const configOf = async (file: string, layer: string): Promise<JsonObject> => {
  const e = layerList(((await loadModel(file)) as KerasModel).modelConfig).find((x) => isObject(x) && isObject(x.config) && x.config.name === layer);
  assert.ok(isObject(e) && isObject(e.config));
  return e.config;
};

let tmp = '';
before(() => {
  assertCliBuilt();
  tmp = mkdtempSync(path.join(os.tmpdir(), 'ms-kdoctor-cli-'));
});
after(() => rmSync(tmp, { recursive: true, force: true }));

describe('model-surgeon audit / plan / fix on Keras and TF.js models', () => {
  it('fix set-dropout-rate --rate 0.2 --layer drop_a: one rate changed, verified 0 difference, written', async () => {
    const out = path.join(tmp, 'rate.h5');
    const r = run('fix', path.join(KERAS, 'doctor_func.h5'), 'set-dropout-rate', '--rate', '0.2', '--layer', 'drop_a', '-o', out, '--json');
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout);
    assert.equal(j.fix, 'set-dropout-rate');
    assert.equal(j.applied, 1);
    assert.deepEqual(j.plan.candidates.map((c: { layer: string }) => c.layer), ['drop_a']);
    assert.equal(j.preserves_outputs, true);
    assert.equal(j.verify.max_abs_error, 0);
    assert.match(j.verify.engine, /^tfjs-/);
    assert.equal(j.unverifiable, null);
    assert.ok(j.notes.length > 0);
    assert.equal(j.output, out);
    assert.equal((await configOf(out, 'drop_a')).rate, 0.2);
    assert.equal((await configOf(out, 'drop_b')).rate, 0.5);
  });

  it('fix remove-dropout on nsfwjs mobilenet_v2: model.json + shards at -o, 0 difference', () => {
    const out = path.join(tmp, 'mnv2', 'model.json');
    mkdirSync(path.dirname(out));
    const r = run('fix', nsfwModel('mobilenet_v2'), 'remove-dropout', '-o', out, '--json', '--samples', '1');
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout);
    assert.equal(j.applied, 2);
    assert.equal(j.verify.max_abs_error, 0);
    assert.equal(j.size.layers_after, j.size.layers_before - 2);
    const v = run('verify', nsfwModel('mobilenet_v2'), out, '--json', '--samples', '1', '--tolerance', '0');
    assert.equal(v.code, 0, v.stderr);
  });

  it('fix replace-batchnorm-groupnorm on a .keras file: written, needs fine-tuning, deviation not claimed (no GroupNorm in TF.js)', () => {
    const out = path.join(tmp, 'gn.keras');
    const r = run('fix', path.join(KERAS, 'doctor_func.keras'), 'replace-batchnorm-groupnorm', '-o', out, '--json');
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout);
    assert.equal(j.applied, 4);
    assert.equal(j.preserves_outputs, false);
    assert.equal(j.verify, null);
    assert.match(j.unverifiable, /no GroupNormalization/);
    assert.ok(j.notes.some((n: string) => /[Ff]ine-tune/.test(n)));
    assert.equal(j.output, out);
    // text mode says it too
    const t = run('fix', path.join(KERAS, 'doctor_func.keras'), 'replace-batchnorm-groupnorm', '-o', path.join(tmp, 'gn2.keras'), '--groups', '2', '--layer', 'bn1');
    assert.equal(t.code, 0, t.stderr);
    assert.match(t.stdout, /bn1: BatchNormalization -> GroupNormalization\(groups=2,/);
    assert.match(t.stdout, /verify: not run \(TensorFlow\.js/);
  });

  it('fix replace-batchnorm-groupnorm on [N, C] BatchNorms (.h5): LayerNormalization, deviation measured and reported, not gated', () => {
    const r = run('fix', path.join(KERAS, 'doctor_seq.h5'), 'replace-batchnorm-groupnorm', '-o', path.join(tmp, 'ln.h5'), '--json', '--samples', '1');
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout);
    assert.equal(j.applied, 2);
    assert.ok(j.verify.max_abs_error > 0.1);
    assert.ok(j.output);
  });

  it('plan on a Keras model: NHWC input size and batch; the same report as the API', async () => {
    const file = path.join(KERAS, 'doctor_func.h5');
    const r = run('plan', file, '--input', '12x16', '--batch', '3', '--json');
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout);
    assert.deepEqual(j.input_shapes, { image: [3, 12, 16, 3] });
    assert.deepEqual(j, JSON.parse(JSON.stringify(planMemory(await loadModel(file), { batch: 3, height: 12, width: 16 }))));
  });

  it('audit --json --batch 16 --input 12x16 on a Keras model', () => {
    const r = run('audit', path.join(KERAS, 'doctor_func.keras'), '--json', '--batch', '16', '--input', '12x16');
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout);
    assert.deepEqual(j.batchnorm.rows.map((x: { effective_batch: number }) => x.effective_batch), [16 * 12 * 16, 16 * 6 * 8, 16, 16]);
    assert.deepEqual(j.dropout.rows.map((x: { native_op: string }) => x.native_op), ['SpatialDropout2D', 'Dropout', 'Dropout']);
  });

  it('usage errors: set-dropout-rate without --rate or out of range, --rate with another fix', () => {
    const f = path.join(KERAS, 'doctor_seq.keras');
    const o = path.join(tmp, 'x.keras');
    assert.equal(run('fix', f, 'set-dropout-rate', '-o', o).code, 2);
    assert.equal(run('fix', f, 'set-dropout-rate', '--rate', '1', '-o', o).code, 2);
    assert.equal(run('fix', f, 'remove-dropout', '--rate', '0.1', '-o', o).code, 2);
    const bad = run('fix', f, 'remove-dropout', '--layer', 'bn_a', '-o', o);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /bn_a' is a BatchNormalization, not a dropout layer/);
    assert.ok(!existsSync(o));
  });
});
