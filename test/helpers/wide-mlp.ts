/**
 * The wide MLP of the pruning tests and the probe bench: 16 -> 100000 -> 10 with ReLU, 70% of the hidden units
 * dead on [-1, 1]^16 by construction, built from our seeded PRNG. test/fixtures/onnx-prune/make_fixtures.py
 * ports the PRNG and the recipe to Python and commits PyTorch's numbers for it (mlp_reference.json).
 */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import type { OnnxModel } from '../../src/core/formats/onnx/model';
import { Rng } from '../../src/core/util/random';
import { GraphBuilder } from './onnx-build';

export const MLP_REFERENCE = JSON.parse(readFileSync(path.join(__dirname, '..', 'fixtures', 'onnx-prune', 'mlp_reference.json'), 'utf8')) as {
  seed: number;
  inputs: number;
  hidden: number;
  outputs: number;
  dead_fraction: number;
  alive: number;
  first_weights: number[];
  reference_inputs: number[][];
  reference_outputs: number[][];
};

/** the recipe of make_fixtures.py make_mlp(), draw for draw */
export function buildWideMlp(): { model: OnnxModel; w1: Float32Array; b1: Float32Array } {
  const REF = MLP_REFERENCE;
  const { seed, inputs: I, hidden: H, outputs: O } = REF;
  const rng = new Rng(seed);
  const w1 = new Float32Array(H * I);
  for (let i = 0; i < w1.length; i++) w1[i] = (rng.next() * 2 - 1) * 0.25;
  const b1 = new Float32Array(H);
  for (let i = 0; i < H; i++) {
    const d = rng.next();
    const a = rng.next();
    if (d < REF.dead_fraction) {
      let s = 0;
      for (let j = 0; j < I; j++) s += Math.abs(w1[i * I + j]);
      b1[i] = -s - 0.05;
    } else b1[i] = 0.2 + 0.3 * a;
  }
  const w2 = new Float32Array(O * H);
  for (let i = 0; i < w2.length; i++) w2[i] = (rng.next() * 2 - 1) * 0.01;
  const b2 = new Float32Array(O);
  for (let i = 0; i < O; i++) b2[i] = rng.next() * 0.1;
  const model = new GraphBuilder()
    .input('x', ['N', I])
    .init('fc1.weight', [H, I], w1)
    .init('fc1.bias', [H], b1)
    .init('fc2.weight', [O, H], w2)
    .init('fc2.bias', [O], b2)
    .node('Gemm', ['x', 'fc1.weight', 'fc1.bias'], ['h'], { transB: { i: 1 } }, 'fc1')
    .node('Relu', ['h'], ['a'], {}, 'relu')
    .node('Gemm', ['a', 'fc2.weight', 'fc2.bias'], ['y'], { transB: { i: 1 } }, 'fc2')
    .output('y', ['N', O])
    .model();
  return { model, w1, b1 };
}

