/** probe / prune / swap-activation as a user runs them (dist/cli.js): the JSON contract and the gates. */
import { strict as assert } from 'node:assert';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { assertCliBuilt, runCli } from '../helpers/cli';
import { decodeModel } from '../../src/core/formats/onnx/codec';

const ROOT = path.join(__dirname, '..', '..');
const CNN = path.join(ROOT, 'test', 'fixtures', 'onnx-prune', 'cnn', 'model.onnx');
const FCN = path.join(ROOT, 'samples', 'fcn_tiny.onnx');

const run = runCli;

let tmp = '';
before(() => {
  assertCliBuilt();
  tmp = mkdtempSync(path.join(os.tmpdir(), 'ms-probe-cli-'));
});
after(() => rmSync(tmp, { recursive: true, force: true }));

describe('model-surgeon probe / prune / swap-activation', () => {
  it('probe --json: {layers:[{name, channels, dead, apoz}]}', () => {
    const r = run('probe', CNN, '--json', '--samples', '16');
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout);
    assert.equal(j.samples, 16);
    assert.ok(j.layers.length > 0);
    for (const l of j.layers) {
      for (const k of ['name', 'channels', 'dead', 'apoz']) assert.ok(k in l, k);
      assert.equal(l.apoz.length, l.channels);
      for (const d of l.dead) assert.equal(l.apoz[d], 1, 'a dead unit is never positive');
    }
  });

  it('probe --exact-stats: the activations copied out (float64 moments), the same dead units and APoZ', () => {
    const fast = JSON.parse(run('probe', CNN, '--json', '--samples', '16').stdout);
    const r = run('probe', CNN, '--json', '--samples', '16', '--exact-stats');
    assert.equal(r.code, 0, r.stderr);
    const exact = JSON.parse(r.stdout);
    assert.ok(fast.notes.some((n: string) => /reduced inside onnxruntime/.test(n)));
    assert.ok(!exact.notes.some((n: string) => /reduced inside onnxruntime/.test(n)));
    assert.deepEqual(
      exact.layers.map((l: { dead: number[]; apoz: number[] }) => [l.dead, l.apoz]),
      fast.layers.map((l: { dead: number[]; apoz: number[] }) => [l.dead, l.apoz]),
    );
  });

  it('prune --dead: exact, smaller, verified on the probe inputs', () => {
    const out = path.join(tmp, 'dead.onnx');
    const r = run('prune', CNN, '--dead', '-o', out, '--json');
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout);
    assert.ok(Object.values(j.removed as Record<string, number>).reduce((a, b) => a + b, 0) > 0);
    assert.ok(j.params_after < j.params_before && j.bytes_after < j.bytes_before);
    assert.ok(j.macs_after < j.macs_before);
    assert.equal(j.exact, true);
    assert.ok(j.verify.max_rel_error < 1e-5, JSON.stringify(j.verify));
    assert.ok(readFileSync(out).length < readFileSync(CNN).length);
  });

  it('prune --ratio --criterion l1 reports the deviation without gating', () => {
    const out = path.join(tmp, 'l1.onnx');
    const r = run('prune', CNN, '--ratio', '0.25', '--criterion', 'l1', '-o', out, '--json');
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout);
    assert.equal(j.exact, false);
    assert.ok(j.verify.max_abs_error > 0);
    assert.ok(existsSync(out));
  });

  it('swap-activation --to selu: BN folded, ReLUs replaced, deviation and depth profile reported', () => {
    const out = path.join(tmp, 'selu.onnx');
    const r = run('swap-activation', FCN, '--to', 'selu', '-o', out, '--json', '--samples', '4');
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout);
    assert.equal(j.swapped, 5);
    assert.equal(j.removed_bn, 5);
    assert.equal(j.profile.length, 5);
    assert.ok(j.deviation.max_abs_error > 0, 'a swap changes the function');
    const ops = decodeModel(readFileSync(out)).graph!.node.map((n) => n.opType);
    assert.equal(ops.filter((o) => o === 'Selu').length, 5);
    assert.ok(!ops.includes('Relu') && !ops.includes('BatchNormalization'));
  });

  it('usage errors: prune without a criterion, ratio out of range, unknown target', () => {
    for (const args of [['prune', CNN, '-o', path.join(tmp, 'x.onnx')], ['prune', CNN, '--ratio', '1.5', '--criterion', 'l1', '-o', 'x'], ['swap-activation', CNN, '--to', 'swish', '-o', 'x']]) {
      const r = run(...args);
      assert.equal(r.code, 2, args.join(' ') + r.stderr);
    }
  });
});

describe('--help names every command', () => {
  it('lists probe, prune, swap-activation, audit, plan, fix', () => {
    const r = run('--help');
    for (const c of ['inspect', 'fold-bn', 'freeze-bn', 'verify', 'audit', 'plan', 'fix', 'probe', 'prune', 'swap-activation']) assert.match(r.stdout, new RegExp(`model-surgeon ${c} `), c);
  });
});
