/**
 * ONNX's own backend test data (Debian libonnx-testdata), installed into .cache/onnx-testdata/ by
 * `bash test/setup/onnx-testdata.sh`. Missing data is an error, never a silent skip.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { decodeModel, decodeTensor } from '../../src/core/formats/onnx/codec';
import type { TensorProto } from '../../src/core/formats/onnx/proto';

const REPO = path.resolve(__dirname, '../..');

export function onnxTestDataDir(): string {
  const dir = path.join(REPO, '.cache', 'onnx-testdata');
  if (!fs.existsSync(path.join(dir, 'node'))) {
    throw new Error(`ONNX test data not found in ${dir}: run \`bash test/setup/onnx-testdata.sh\` first`);
  }
  return dir;
}

/** names of the per-operator test cases (folders under node/) */
export function listNodeTestCases(): string[] {
  return fs
    .readdirSync(path.join(onnxTestDataDir(), 'node'))
    .filter((n) => fs.existsSync(path.join(onnxTestDataDir(), 'node', n, 'model.onnx')))
    .sort();
}

export function readBytes(file: string): Uint8Array {
  const b = fs.readFileSync(file);
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

export interface TestCase {
  model: Uint8Array;
  inputs: TensorProto[];
  outputs: TensorProto[];
}

/** the .pb files of test_data_set_0 in order (input_0, input_1, ...) */
export function testDataFiles(name: string, kind: 'input' | 'output'): string[] {
  const dir = path.join(onnxTestDataDir(), 'node', name, 'test_data_set_0');
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir)
    .filter((f) => f.startsWith(`${kind}_`) && f.endsWith('.pb'))
    .sort((a, b) => parseInt(a.slice(kind.length + 1), 10) - parseInt(b.slice(kind.length + 1), 10))
    .map((f) => path.join(dir, f));
}

/**
 * `node/<name>/model.onnx` and its test_data_set_0 tensors. Throws for cases whose inputs/outputs are not
 * plain tensors (sequences, optionals, maps: their .pb files are SequenceProto/OptionalProto/MapProto).
 */
export function loadTestCase(name: string): TestCase {
  const model = readBytes(path.join(onnxTestDataDir(), 'node', name, 'model.onnx'));
  const g = decodeModel(model).graph!;
  const load = (kind: 'input' | 'output'): TensorProto[] =>
    testDataFiles(name, kind).map((file, i) => {
      const vi = kind === 'input' ? g.input[i] : g.output[i];
      if (vi?.type && !vi.type.tensorType) throw new Error(`${name}: ${kind} ${i} is not a tensor`);
      return decodeTensor(readBytes(file));
    });
  return { model, inputs: load('input'), outputs: load('output') };
}
