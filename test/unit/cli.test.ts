/**
 * The CLI as a user runs it: the built bundle (dist/cli.js) in a child process. JSON field names are a
 * contract; bad input gives exit 1 and one line on stderr, never a stack trace or an output file.
 */
import { strict as assert } from 'node:assert';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync, mkdirSync, copyFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { assertCliBuilt, runCli } from '../helpers/cli';
import { loadModel, saveModel } from '../../src/core/api';
import { OnnxModel } from '../../src/core/formats/onnx/model';
import { decodeModel } from '../../src/core/formats/onnx/codec';
import { makeTensorLike, readTensorAsFloat32 } from '../../src/core/formats/onnx/tensor';

const ROOT = path.join(__dirname, '..', '..');
const FCN = path.join(ROOT, 'test', 'fixtures', 'onnx-fold', 'fcn_tiny', 'model.onnx');

const run = runCli;

let tmp = '';
before(() => {
  assertCliBuilt();
  tmp = mkdtempSync(path.join(os.tmpdir(), 'ms-cli-'));
});
after(() => rmSync(tmp, { recursive: true, force: true }));

describe('model-surgeon CLI', () => {
  it('inspect --json prints the documented fields and only JSON', () => {
    const r = run('inspect', FCN, '--json');
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout);
    assert.equal(j.format, 'onnx');
    assert.deepEqual(Object.keys(j.totals).sort(), ['layers', 'macs', 'params']);
    assert.equal(j.totals.params, 179320, 'numpy counted 179320 parameters (test/fixtures/stats/expected.json)');
    for (const l of j.layers) for (const k of ['name', 'op', 'params', 'macs', 'output_shape']) assert.ok(k in l, `layer field ${k}`);
    assert.equal(j.layers.filter((l: { op: string }) => l.op === 'BatchNorm').length, 5);
    assert.ok(Array.isArray(j.findings));
    for (const f of j.findings) for (const k of ['severity', 'code', 'message', 'layers']) assert.ok(k in f);
  });

  it('inspect prints a readable table', () => {
    const r = run('inspect', FCN);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /params 179\.3k/);
    assert.match(r.stdout, /BatchNorm/);
  });

  it('fold-bn folds, verifies with onnxruntime and writes the model', () => {
    const out = path.join(tmp, 'folded.onnx');
    const r = run('fold-bn', FCN, '-o', out, '--json');
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout);
    assert.equal(j.folded, 5);
    assert.deepEqual(j.skipped, []);
    assert.ok(j.verify.max_abs_error >= 0 && j.verify.max_rel_error < 1e-5, JSON.stringify(j.verify));
    assert.equal(j.verify.samples, 3);
    const ops = decodeModel(readFileSync(out)).graph!.node.map((n) => n.opType);
    assert.ok(!ops.includes('BatchNormalization'), 'no BatchNormalization node');
    assert.ok(!readFileSync(out).includes('BatchNormalization'), 'no trace of BatchNormalization in the file');
    const v = run('verify', FCN, out, '--json', '--samples', '2');
    assert.equal(v.code, 0, v.stderr);
    const vj = JSON.parse(v.stdout);
    assert.equal(vj.samples, 2);
    assert.ok(vj.max_rel_error < 1e-5);
    const again = run('inspect', out, '--json');
    assert.equal(JSON.parse(again.stdout).layers.filter((l: { op: string }) => l.op === 'BatchNorm').length, 0);
  });

  it('verify --tolerance fails (exit 3) when the models differ', async () => {
    // same graph, one conv kernel scaled by 1.5: a different function with the same interface
    const model = (await loadModel(FCN)) as OnnxModel;
    const g = model.graph;
    const conv = g.node.find((n) => n.opType === 'Conv')!;
    const w = g.initializer.find((t) => t.name === conv.input[1])!;
    const scaled = readTensorAsFloat32(w, null).map((v) => v * 1.5);
    const changed = model.derive({ ...model.proto, graph: { ...g, initializer: g.initializer.map((t) => (t === w ? makeTensorLike(w, scaled, w.dims.map(Number)) : t)) } });
    const other = path.join(tmp, 'other.onnx');
    await saveModel(changed, other);
    const r = run('verify', FCN, other, '--tolerance', '1e-3');
    assert.equal(r.code, 3, r.stdout + r.stderr);
    assert.match(r.stderr, /outputs differ by more than/);
  });

  const bad: [string, (dir: string) => string, RegExp][] = [
    ['missing file', (d) => path.join(d, 'nope.onnx'), /no such file/],
    ['empty file', (d) => (writeFileSync(path.join(d, 'empty.onnx'), ''), path.join(d, 'empty.onnx')), /empty/],
    ['garbage', (d) => (writeFileSync(path.join(d, 'garbage.onnx'), Buffer.from(Array.from({ length: 5000 }, (_, i) => (i * 7919 + 13) & 0xff))), path.join(d, 'garbage.onnx')), /not an ONNX model|protobuf/],
    ['truncated', (d) => (writeFileSync(path.join(d, 'trunc.onnx'), readFileSync(FCN).subarray(0, 100_000)), path.join(d, 'trunc.onnx')), /truncated|not an ONNX/],
    ['a folder', (d) => (mkdirSync(path.join(d, 'dir.onnx'), { recursive: true }), path.join(d, 'dir.onnx')), /folder/],
    ['JSON', (d) => (writeFileSync(path.join(d, 'model.json'), '{"format": "layers-model"}'), path.join(d, 'model.json')), /model\.json: JSON that is not a TF\.js model\.json/],
    ['HDF5', (d) => (writeFileSync(path.join(d, 'm.h5'), Buffer.from('\x89HDF\r\n\x1a\n' + 'x'.repeat(100), 'latin1')), path.join(d, 'm.h5')), /m\.h5: not a readable HDF5 file/],
  ];
  for (const [what, make, msg] of bad) {
    it(`bad input (${what}): exit 1, one clear line, nothing written`, () => {
      const dir = mkdtempSync(path.join(tmp, 'bad-'));
      const file = make(dir);
      for (const args of [['inspect', file], ['fold-bn', file, '-o', path.join(dir, 'out.onnx')], ['verify', file, FCN]]) {
        const r = run(...args);
        assert.equal(r.code, 1, `${args[0]}: ${r.stderr}`);
        assert.equal(r.stdout, '');
        const lines = r.stderr.trim().split('\n');
        assert.equal(lines.length, 1, `one line: ${r.stderr}`);
        assert.match(lines[0], /^model-surgeon: error: /);
        assert.match(lines[0], msg);
        assert.doesNotMatch(r.stderr, /\n\s+at /);
      }
      assert.ok(!existsSync(path.join(dir, 'out.onnx')), 'no output file');
      assert.ok(readdirSync(dir).every((f) => !f.endsWith('.tmp')));
    });
  }

  it('external data outside the model folder is refused', () => {
    const src = path.join(ROOT, 'test', 'fixtures', 'onnx-external');
    const escaping = readdirSync(src).filter((f) => f.endsWith('.onnx') && /outside|escape|absolute|parent/i.test(f));
    assert.ok(escaping.length > 0, 'fixture with an escaping location');
    for (const f of escaping) {
      const r = run('inspect', path.join(src, f));
      assert.equal(r.code, 1, `${f}: ${r.stdout}`);
      assert.match(r.stderr, /outside the model's folder/);
    }
  });

  it('usage errors exit 2 with a hint', () => {
    for (const args of [['frobnicate'], ['fold-bn', FCN], ['inspect'], ['inspect', FCN, '--samples', 'x'], ['inspect', FCN, '--bogus']]) {
      const r = run(...args);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, /--help/);
    }
  });

  it('--help lists every command and --version prints the package version', () => {
    const r = run('--help');
    assert.equal(r.code, 0);
    for (const c of ['inspect', 'fold-bn', 'verify']) assert.match(r.stdout, new RegExp(`model-surgeon ${c}`));
    const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string };
    assert.equal(run('--version').stdout.trim(), pkg.version);
  });

  it('fold-bn can write over its input atomically', () => {
    const copy = path.join(tmp, 'inplace.onnx');
    copyFileSync(FCN, copy);
    const r = run('fold-bn', copy, '-o', copy, '--json');
    assert.equal(r.code, 0, r.stderr);
    assert.ok(!readFileSync(copy).includes('BatchNormalization'));
  });
});
