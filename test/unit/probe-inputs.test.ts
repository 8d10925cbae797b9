/**
 * Probe input sources. Oracles: numpy's own .npy/.npz writers and values (arrays_expected.json), PIL's PNG/JPEG
 * decodes, torch.nn.functional.interpolate + normalization (test/fixtures/onnx-prune/make_fixtures.py).
 */
import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { decodeImage, JPEG_PACKAGE, loadJpegDecoder } from '../../src/core/analysis/probe-images';
import { inputSourceFromPath, openProbeInputs, parseNpy, parseNpz, readArrayFile, type NdArray } from '../../src/core/analysis/probe-inputs';
import type { ValueSummary } from '../../src/core/types';

const DIR = path.join(__dirname, '..', 'fixtures', 'onnx-prune', 'inputs');
const expected = JSON.parse(readFileSync(path.join(DIR, 'arrays_expected.json'), 'utf8')) as Record<string, unknown>;

function flat(v: unknown): number[] {
  return Array.isArray(v) ? v.flatMap(flat) : [v as number];
}

function numbers(a: NdArray): number[] {
  return Array.from(a.data as ArrayLike<number | bigint>, Number);
}

function assertClose(actual: ArrayLike<number>, exp: ArrayLike<number>, tol: number, what: string): void {
  assert.equal(actual.length, exp.length, `${what}: length`);
  let worst = 0;
  for (let i = 0; i < exp.length; i++) worst = Math.max(worst, Math.abs(actual[i] - exp[i]));
  assert.ok(worst <= tol, `${what}: max abs diff ${worst} > ${tol}`);
}

const input = (name: string, shape: (number | string)[], dtype = 'float32'): ValueSummary => ({ name, dtype, shape });

describe('probe inputs: .npy / .npz / JSON readers (numpy wrote them)', () => {
  const a = flat(expected.a);
  it('float32 C order, float64 Fortran order, big-endian int16', () => {
    const f32 = parseNpy(readFileSync(path.join(DIR, 'samples_f32.npy')));
    assert.equal(f32.dtype, 'float32');
    assert.deepEqual(f32.dims, [5, 3, 4]);
    assertClose(numbers(f32), a, 0, 'f32');
    const f64 = parseNpy(readFileSync(path.join(DIR, 'samples_f64_fortran.npy')));
    assert.equal(f64.dtype, 'float64');
    assert.deepEqual(f64.dims, [5, 3, 4]);
    assertClose(numbers(f64), a, 0, 'fortran order read back in C order');
    const i16 = parseNpy(readFileSync(path.join(DIR, 'samples_i16_be.npy')));
    assert.equal(i16.dtype, 'int16');
    assertClose(numbers(i16), flat(expected.i16), 0, 'big-endian int16');
  });

  it('npz, stored and deflated (savez / savez_compressed), arrays by name', () => {
    for (const f of ['two_inputs.npz', 'two_inputs_compressed.npz']) {
      const arrays = parseNpz(readFileSync(path.join(DIR, f)), f);
      assert.deepEqual([...arrays.keys()].sort(), ['a', 'b']);
      assertClose(numbers(arrays.get('a')!), a, 0, `${f} a`);
      assert.deepEqual(arrays.get('b')!.dims, [5, 1, 4]);
      assertClose(numbers(arrays.get('b')!), flat(expected.b), 0, `${f} b`);
    }
  });

  it('JSON nested arrays', () => {
    const arrays = readArrayFile({ kind: 'json', path: path.join(DIR, 'samples.json') });
    const only = arrays.get('')!;
    assert.deepEqual(only.dims, [5, 3, 4]);
    assertClose(numbers(only), a, 1e-7, 'json');
  });

  it('sources are recognized by content', () => {
    assert.equal(inputSourceFromPath(path.join(DIR, 'two_inputs.npz')).kind, 'npy');
    assert.equal(inputSourceFromPath(path.join(DIR, 'samples_f32.npy')).kind, 'npy');
    assert.equal(inputSourceFromPath(path.join(DIR, 'samples.json')).kind, 'json');
    assert.equal(inputSourceFromPath(path.join(DIR, 'images')).kind, 'images');
    assert.throws(() => inputSourceFromPath(path.join(DIR, 'nope.npy')), (e: Error) => e.name === 'ModelError' && !e.message.includes('\n'));
  });

  it('corrupt files give one-line errors', () => {
    const b = readFileSync(path.join(DIR, 'samples_f32.npy'));
    assert.throws(() => parseNpy(b.subarray(0, 100), 'cut.npy'), (e: Error) => e.name === 'ModelError' && /cut\.npy/.test(e.message));
    const z = readFileSync(path.join(DIR, 'two_inputs_compressed.npz'));
    assert.throws(() => parseNpz(z.subarray(0, z.length - 30), 'cut.npz'), (e: Error) => e.name === 'ModelError' && /cut\.npz/.test(e.message));
  });

  it('feeds: samples on axis 0, per-sample shape checked, two inputs by name, batches of any size', () => {
    const inputs = [input('a', ['N', 3, 4]), input('b', ['N', 1, 4])];
    const src = { kind: 'npy' as const, path: path.join(DIR, 'two_inputs_compressed.npz') };
    const p = openProbeInputs(src, inputs, { batchSize: 2 });
    assert.equal(p.samples, 5);
    const batches = [...p.batches()];
    assert.deepEqual(batches.map((b) => b.count), [2, 2, 1]);
    assert.deepEqual(batches[2].feeds.a.dims, [1, 3, 4]);
    const got = batches.flatMap((b) => Array.from(b.feeds.a.data as Float32Array));
    assertClose(got, a, 0, 'a through batches');
    assert.throws(
      () => openProbeInputs(src, [input('a', ['N', 4, 3]), input('b', ['N', 1, 4])]),
      (e: Error) => e.name === 'ModelError' && /expected \[samples, 4, 3\]/.test(e.message),
    );
    assert.throws(() => openProbeInputs(src, [input('a', ['N', 3, 4]), input('c', ['N', 1])]), (e: Error) => /no array for input 'c'/.test(e.message));
    // a static batch dim wins over the requested batch size; trailing samples are left out with a note
    const fixed = openProbeInputs({ kind: 'npy', path: path.join(DIR, 'samples_f32.npy') }, [input('x', [2, 3, 4])], { batchSize: 16 });
    assert.equal(fixed.batchSize, 2);
    assert.equal(fixed.samples, 4);
    assert.match(fixed.notes.join(' '), /fixed at 2/);
  });
});

describe('probe inputs: random sources', () => {
  it('the same samples whatever the batch size; uniform stays in range; integers for int64 inputs', () => {
    const inputs = [input('x', ['N', 8]), input('ids', ['N', 3], 'int64')];
    const src = { kind: 'random' as const, distribution: 'uniform' as const, low: -0.5, high: 2, seed: 7 };
    const collect = (bs: number) => {
      const xs: number[] = [];
      const ids: number[] = [];
      for (const b of openProbeInputs(src, inputs, { samples: 10, batchSize: bs }).batches()) {
        xs.push(...Array.from(b.feeds.x.data as Float32Array));
        ids.push(...Array.from(b.feeds.ids.data as BigInt64Array, Number));
      }
      return { xs, ids };
    };
    const one = collect(1);
    const four = collect(4);
    assert.deepEqual(four, one);
    assert.equal(one.xs.length, 80);
    assert.ok(one.xs.every((v) => v >= -0.5 && v < 2));
    assert.ok(one.ids.every((v) => Number.isInteger(v) && v >= 0 && v < 10));
    // iterating again restarts the stream
    const p = openProbeInputs(src, inputs, { samples: 3 });
    const first = [...p.batches()][0].feeds.x.data;
    const again = [...p.batches()][0].feeds.x.data;
    assert.deepEqual(Array.from(again as Float32Array), Array.from(first as Float32Array));
  });

  it('normal(mean, std) has roughly that mean and std', () => {
    const p = openProbeInputs({ kind: 'random', mean: 3, std: 0.5, seed: 2 }, [input('x', ['N', 1000])], { samples: 20 });
    const v = [...p.batches()].flatMap((b) => Array.from(b.feeds.x.data as Float32Array));
    const mean = v.reduce((s, x) => s + x, 0) / v.length;
    const std = Math.sqrt(v.reduce((s, x) => s + (x - mean) ** 2, 0) / v.length);
    assert.ok(Math.abs(mean - 3) < 0.02 && Math.abs(std - 0.5) < 0.02, `${mean} ${std}`);
  });
});

describe('probe inputs: images', () => {
  const pngExpected = parseNpz(readFileSync(path.join(DIR, 'pngs_expected.npz')));

  it('PNG: every colour type and bit depth, Adam7, filters -- equal to PIL / numpy', () => {
    for (const [name, exp] of pngExpected) {
      const img = decodeImage(readFileSync(path.join(DIR, 'pngs', `${name}.png`)), name);
      assert.equal(img.height, exp.dims[0], name);
      assert.equal(img.width, exp.dims[1], name);
      assert.equal(img.channels, exp.dims.length === 3 ? 3 : 1, name);
      // 16-bit / sub-byte samples are scaled to 0..255 in float32: exact up to float32 rounding
      assertClose(img.data, numbers(exp), 1e-4, name);
    }
  });

  it('resize (bilinear, half-pixel) + ImageNet normalization = torch interpolate + Normalize; BGR + [-1, 1]', () => {
    const want = parseNpy(readFileSync(path.join(DIR, 'a_rgb_12x20_imagenet.npy')));
    const src = { kind: 'images' as const, path: path.join(DIR, 'images'), normalize: 'imagenet' as const };
    const p = openProbeInputs(src, [input('img', ['N', 3, 12, 20])], { batchSize: 1, samples: 1 });
    const [b] = [...p.batches()];
    assertClose(b.feeds.img.data as Float32Array, numbers(want), 2e-5, 'imagenet');
    const bgr = parseNpy(readFileSync(path.join(DIR, 'a_rgb_12x20_symmetric_bgr.npy')));
    const p2 = openProbeInputs({ ...src, normalize: 'symmetric', order: 'bgr', size: [12, 20] }, [input('img', ['N', 3, 'H', 'W'])], { samples: 1 });
    const [b2] = [...p2.batches()];
    assert.deepEqual(b2.feeds.img.dims, [1, 3, 12, 20]);
    assertClose(b2.feeds.img.data as Float32Array, numbers(bgr), 2e-5, 'symmetric bgr');
    // NHWC: the same numbers, channels last
    const p3 = openProbeInputs(src, [input('img', ['N', 12, 20, 3])], { samples: 1 });
    const nhwc = [...p3.batches()][0].feeds.img.data as Float32Array;
    const nchw = b.feeds.img.data as Float32Array;
    for (let c = 0; c < 3; c++) for (let i = 0; i < 240; i++) assert.equal(nhwc[i * 3 + c], nchw[c * 240 + i]);
  });

  it(`JPEG through ${JPEG_PACKAGE} when installed (within a few levels of PIL), else a clear error`, () => {
    const bytes = readFileSync(path.join(DIR, 'images', 'c_photo.jpg'));
    if (!loadJpegDecoder()) {
      assert.throws(() => decodeImage(bytes, 'c_photo.jpg'), (e: Error) => e.name === 'ModelError' && e.message.includes(JPEG_PACKAGE) && /PNG works without it/.test(e.message));
      return;
    }
    const img = decodeImage(bytes, 'c_photo.jpg');
    const pil = parseNpy(readFileSync(path.join(DIR, 'c_photo_pil.npy')));
    assert.deepEqual([img.height, img.width, img.channels], pil.dims);
    assertClose(img.data, numbers(pil), 4, 'jpeg vs PIL');
  });

  it('errors: no images, wrong rank, too many inputs', () => {
    assert.throws(() => openProbeInputs({ kind: 'images', path: path.join(DIR, 'pngs', '..', '..') }, [input('x', ['N', 3, 8, 8])]), /no \.png\/\.jpg/);
    assert.throws(() => openProbeInputs({ kind: 'images', path: path.join(DIR, 'images') }, [input('x', ['N', 8])]), /images feed 4-D inputs/);
    assert.throws(() => openProbeInputs({ kind: 'images', path: path.join(DIR, 'images') }, [input('x', ['N', 3, 8, 8]), input('y', ['N', 2])]), /one input/);
  });
});
