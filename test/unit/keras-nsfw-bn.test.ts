/**
 * nsfwjs mobilenet_v2 (a real TF.js model with uint8-quantized weights): the BatchNorm findings count exactly
 * the channels that the file's own bytes say are zero-variance / negative-gamma. The expected counts are
 * computed here straight from model.json's weightsManifest and the shard bytes (q * scale + min in float32, as
 * TF.js dequantizes), independently of our readers.
 */
import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { inspect, loadModel } from '../../src/core/api';
import { nsfwModel } from '../helpers/nsfwjs';

interface ManifestEntry {
  name: string;
  shape: number[];
  dtype: string;
  quantization?: { min: number; scale: number; dtype: string };
}

function manifestValues(modelJson: string): Map<string, Float32Array> {
  const j = JSON.parse(readFileSync(modelJson, 'utf8')) as { weightsManifest: { paths: string[]; weights: ManifestEntry[] }[] };
  const out = new Map<string, Float32Array>();
  for (const group of j.weightsManifest) {
    const bytes = Buffer.concat(group.paths.map((p) => readFileSync(path.join(path.dirname(modelJson), p))));
    let offset = 0;
    for (const w of group.weights) {
      const n = w.shape.reduce((a, b) => a * b, 1);
      const q = w.quantization;
      if (!q || q.dtype !== 'uint8') throw new Error(`unexpected encoding of ${w.name}`);
      const v = new Float32Array(n);
      for (let i = 0; i < n; i++) v[i] = Math.fround(Math.fround(bytes[offset + i] * Math.fround(q.scale)) + Math.fround(q.min));
      out.set(w.name, v);
      offset += n;
    }
  }
  return out;
}

describe('nsfwjs mobilenet_v2: BatchNorm findings vs the file bytes', () => {
  it('zero-variance and negative-gamma channels', async () => {
    const json = nsfwModel('mobilenet_v2');
    const values = manifestValues(json);
    let zeroVar = 0;
    let negGamma = 0;
    for (const [name, v] of values) {
      if (name.endsWith('/moving_variance')) zeroVar += v.filter((x) => Math.abs(x) <= 1e-8).length;
      if (name.endsWith('/gamma')) negGamma += v.filter((x) => x < 0).length;
    }
    assert.ok(zeroVar > 0 && negGamma > 0, `the file has both (zero variances ${zeroVar}, negative gammas ${negGamma})`);
    const r = inspect(await loadModel(json), { stats: false });
    const bns = r.layers.filter((l) => l.batchnorm);
    assert.equal(bns.length, 52);
    assert.equal(bns.reduce((s, l) => s + (l.batchnorm?.low_variance_channels.length ?? 0), 0), zeroVar);
    assert.equal(bns.reduce((s, l) => s + (l.batchnorm?.negative_gamma_channels ?? 0), 0), negGamma);
    const codes = r.findings.map((f) => f.code);
    assert.ok(codes.includes('bn-zero-variance') && codes.includes('bn-negative-gamma'), codes.join(', '));
  });
});
