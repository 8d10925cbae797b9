/**
 * Lossless ONNX protobuf codec driven by one schema table (field numbers from onnx.proto, ONNX 1.17 / IR 10).
 *
 * - Decoding is zero-copy for bytes fields (raw_data is a view into the input), packed numeric tensor fields
 *   become typed arrays, both packed and unpacked encodings of repeated scalars are accepted.
 * - Fields missing from the table (newer IR, vendor extensions, garbage) are kept byte-exact in
 *   `unknownFields` and written back after the known fields. A string field whose bytes are not valid UTF-8
 *   is kept the same way (raw), so no byte is ever lost.
 * - Encoding follows the reference (proto2) serializer: known fields in field-number order, a singular field
 *   is written when it is not `undefined` (proto2 presence, so an explicit `dimValue: 0n` survives), empty
 *   repeated fields are omitted, TensorProto's numeric data fields packed, `dims`/`ints`/`floats` unpacked.
 *   Sizes are computed first, then everything is written into one preallocated buffer (raw_data copied once).
 *   A file written by protobuf C++/Python therefore re-encodes byte-identically.
 * - Corrupt input throws one-line errors such as `not an ONNX model: truncated protobuf at byte 1234`.
 */
import type { FunctionProto, GraphProto, ModelProto, NodeProto, TensorProto } from './proto';
import { Reader, Writer, WireType, tagSize, utf8Length, varint64Size, varintSize } from './wire';

// ---------------------------------------------------------------- the schema, as data

/**
 * One line per message: `<field number> <camelCase key> <type>`; type prefix `*` = repeated (always an array),
 * `+` = repeated but left undefined when absent; scalar types: str bytes i32 i64 f32; typed-array (packed)
 * types: F32A I32A I64A F64A U64A; anything else names a message.
 */
const SCHEMA = {
  StringStringEntryProto: '1 key str; 2 value str',
  OperatorSetIdProto: '1 domain str; 2 version i64',
  TensorSegment: '1 begin i64; 2 end i64',
  TensorProto:
    '1 dims *i64; 2 dataType i32; 3 segment TensorSegment; 4 floatData F32A; 5 int32Data I32A; 6 stringData +bytes; ' +
    '7 int64Data I64A; 8 name str; 9 rawData bytes; 10 doubleData F64A; 11 uint64Data U64A; 12 docString str; ' +
    '13 externalData *StringStringEntryProto; 14 dataLocation i32; 16 metadataProps *StringStringEntryProto',
  SparseTensorProto: '1 values TensorProto; 2 indices TensorProto; 3 dims *i64',
  TensorShapeDimension: '1 dimValue i64; 2 dimParam str; 3 denotation str',
  TensorShapeProto: '1 dim *TensorShapeDimension',
  TypeProtoTensor: '1 elemType i32; 2 shape TensorShapeProto',
  TypeProtoSequence: '1 elemType TypeProto',
  TypeProtoMap: '1 keyType i32; 2 valueType TypeProto',
  TypeProtoOptional: '1 elemType TypeProto',
  // 7 opaque_type (ONNX-ML) is not modelled: it round-trips through unknownFields
  TypeProto:
    '1 tensorType TypeProtoTensor; 4 sequenceType TypeProtoSequence; 5 mapType TypeProtoMap; 6 denotation str; ' +
    '8 sparseTensorType TypeProtoTensor; 9 optionalType TypeProtoOptional',
  ValueInfoProto: '1 name str; 2 type TypeProto; 3 docString str; 4 metadataProps *StringStringEntryProto',
  AttributeProto:
    '1 name str; 2 f f32; 3 i i64; 4 s bytes; 5 t TensorProto; 6 g GraphProto; 7 floats *f32; 8 ints *i64; ' +
    '9 strings *bytes; 10 tensors *TensorProto; 11 graphs *GraphProto; 13 docString str; 14 tp TypeProto; ' +
    '15 typeProtos *TypeProto; 20 type i32; 21 refAttrName str; 22 sparseTensor SparseTensorProto; ' +
    '23 sparseTensors *SparseTensorProto',
  NodeProto:
    '1 input *str; 2 output *str; 3 name str; 4 opType str; 5 attribute *AttributeProto; 6 docString str; ' +
    '7 domain str; 8 overload str; 9 metadataProps *StringStringEntryProto',
  TensorAnnotation: '1 tensorName str; 2 quantParameterTensorNames *StringStringEntryProto',
  GraphProto:
    '1 node *NodeProto; 2 name str; 5 initializer *TensorProto; 10 docString str; 11 input *ValueInfoProto; ' +
    '12 output *ValueInfoProto; 13 valueInfo *ValueInfoProto; 14 quantizationAnnotation *TensorAnnotation; ' +
    '15 sparseInitializer *SparseTensorProto; 16 metadataProps *StringStringEntryProto',
  TrainingInfoProto:
    '1 initialization GraphProto; 2 algorithm GraphProto; 3 initializationBinding *StringStringEntryProto; ' +
    '4 updateBinding *StringStringEntryProto',
  FunctionProto:
    '1 name str; 4 input *str; 5 output *str; 6 attribute *str; 7 node *NodeProto; 8 docString str; ' +
    '9 opsetImport *OperatorSetIdProto; 10 domain str; 11 attributeProto *AttributeProto; ' +
    '12 valueInfo *ValueInfoProto; 13 overload str; 14 metadataProps *StringStringEntryProto',
  ModelProto:
    '1 irVersion i64; 2 producerName str; 3 producerVersion str; 4 domain str; 5 modelVersion i64; ' +
    '6 docString str; 7 graph GraphProto; 8 opsetImport *OperatorSetIdProto; 14 metadataProps *StringStringEntryProto; ' +
    '20 trainingInfo *TrainingInfoProto; 25 functions *FunctionProto',
} as const;

export type MessageName = keyof typeof SCHEMA;

type Scalar = 'str' | 'bytes' | 'i32' | 'i64' | 'f32';
type Typed = 'F32A' | 'I32A' | 'I64A' | 'F64A' | 'U64A';

interface Field {
  no: number;
  key: string;
  /** scalar kind, typed-array kind, or 'msg' */
  kind: Scalar | Typed | 'msg';
  repeated: boolean;
  /** repeated field created as [] on decode (false for `+` and typed arrays) */
  eager: boolean;
  msg: Msg | undefined;
}

interface Msg {
  name: MessageName;
  fields: Field[]; // sorted by field number (= encoding order)
  byNo: (Field | undefined)[];
  eagerKeys: string[];
}

type Obj = Record<string, unknown>;

const TYPED = new Set(['F32A', 'I32A', 'I64A', 'F64A', 'U64A']);
const SCALAR = new Set(['str', 'bytes', 'i32', 'i64', 'f32']);

const MSGS = new Map<string, Msg>();
for (const name of Object.keys(SCHEMA) as MessageName[]) {
  MSGS.set(name, { name, fields: [], byNo: [], eagerKeys: [] });
}
for (const [name, spec] of Object.entries(SCHEMA)) {
  const m = MSGS.get(name)!;
  for (const part of spec.split(';')) {
    const [noText, key, typeText] = part.trim().split(/\s+/) as [string, string, string];
    const rep = typeText[0] === '*' || typeText[0] === '+';
    const type = rep ? typeText.slice(1) : typeText;
    const typed = TYPED.has(type);
    const msg = SCALAR.has(type) || typed ? undefined : MSGS.get(type);
    if (!SCALAR.has(type) && !typed && !msg) throw new Error(`schema: unknown type ${type} in ${name}`);
    const f: Field = {
      no: Number(noText),
      key,
      kind: msg ? 'msg' : (type as Scalar | Typed),
      repeated: rep || typed,
      eager: typeText[0] === '*',
      msg,
    };
    m.fields.push(f);
    m.byNo[f.no] = f;
    if (f.eager) m.eagerKeys.push(key);
  }
  m.fields.sort((a, b) => a.no - b.no);
}

function msgDef(name: MessageName): Msg {
  return MSGS.get(name)!;
}

/** field numbers of a message, e.g. for tools that explain unknown fields */
export function schemaFields(name: MessageName): { no: number; key: string; type: string }[] {
  return msgDef(name).fields.map((f) => ({
    no: f.no,
    key: f.key,
    type: (f.repeated && !TYPED.has(f.kind) ? 'repeated ' : '') + (f.msg ? f.msg.name : f.kind),
  }));
}

// ---------------------------------------------------------------- decoding

/** protobuf C++'s default recursion limit; onnxruntime cannot load anything deeper either */
export const MAX_DEPTH = 100;

const WIRE_NAMES = ['varint', 'fixed64', 'length-delimited', 'start-group', 'end-group', 'fixed32', '6', '7'];

function scalarWireType(kind: Field['kind']): number {
  switch (kind) {
    case 'i32':
    case 'i64':
    case 'I32A':
    case 'I64A':
    case 'U64A':
      return WireType.VARINT;
    case 'f32':
    case 'F32A':
      return WireType.I32;
    case 'F64A':
      return WireType.I64;
    default:
      return WireType.LEN;
  }
}

function pushUnknown(obj: Obj, chunk: Uint8Array): void {
  const u = obj.unknownFields as Uint8Array[] | undefined;
  if (u) u.push(chunk);
  else obj.unknownFields = [chunk];
}

function readOne(r: Reader, kind: Field['kind']): number | bigint {
  switch (kind) {
    case 'i32':
    case 'I32A':
      return r.int32();
    case 'i64':
    case 'I64A':
      return r.int64();
    case 'U64A':
      return r.uint64();
    case 'f32':
    case 'F32A':
      return r.float();
    default: // F64A
      return r.double();
  }
}

/** a whole packed chunk of a typed-array field, decoded straight into its typed array */
function readPackedTyped(r: Reader, kind: Typed, end: number, f: Field): Float32Array | Float64Array | Int32Array | BigInt64Array | BigUint64Array {
  const start = r.pos;
  const len = end - start;
  if (kind === 'F32A' || kind === 'F64A') {
    const size = kind === 'F32A' ? 4 : 8;
    if (len % size !== 0) r.fail(`packed field ${f.no} (${f.key}) has ${len} bytes, not a multiple of ${size}`, start);
    const copy = new Uint8Array(len); // aligned copy (hosts are little-endian); never Buffer#slice, a view
    copy.set(r.buf.subarray(start, end));
    r.pos = end;
    return kind === 'F32A' ? new Float32Array(copy.buffer, 0, len / 4) : new Float64Array(copy.buffer, 0, len / 8);
  }
  const n = r.countVarints(end);
  const out = kind === 'I32A' ? new Int32Array(n) : kind === 'I64A' ? new BigInt64Array(n) : new BigUint64Array(n);
  if (kind === 'I32A') for (let i = 0; i < n; i++) (out as Int32Array)[i] = r.int32();
  else if (kind === 'I64A') for (let i = 0; i < n; i++) (out as BigInt64Array)[i] = r.int64();
  else for (let i = 0; i < n; i++) (out as BigUint64Array)[i] = r.uint64();
  return out;
}

/** a packed chunk (the length prefix not yet read) appended to `out`; no element may cross the chunk's end */
function readPacked(r: Reader, kind: Field['kind'], f: Field, out: (number | bigint)[]): void {
  const start = r.pos;
  const e = r.lengthEnd();
  const size = kind === 'f32' || kind === 'F32A' ? 4 : kind === 'F64A' ? 8 : 0;
  if (size && (e - r.pos) % size !== 0) r.fail(`packed field ${f.no} (${f.key}) is not a multiple of ${size} bytes`, start);
  const saved = r.limit;
  r.limit = e;
  while (r.pos < e) out.push(readOne(r, kind));
  r.limit = saved;
}

function makeTyped(kind: Typed, values: (number | bigint)[]): Float32Array | Float64Array | Int32Array | BigInt64Array | BigUint64Array {
  switch (kind) {
    case 'F32A':
      return Float32Array.from(values as number[]);
    case 'F64A':
      return Float64Array.from(values as number[]);
    case 'I32A':
      return Int32Array.from(values as number[]);
    case 'I64A':
      return BigInt64Array.from(values as bigint[]);
    default:
      return BigUint64Array.from(values as bigint[]);
  }
}

function decodeMsg(r: Reader, end: number, m: Msg, depth: number, into?: Obj): Obj {
  if (depth > MAX_DEPTH) r.fail(`messages nested deeper than ${MAX_DEPTH}`);
  let obj: Obj;
  if (into) obj = into;
  else {
    obj = {};
    for (const k of m.eagerKeys) obj[k] = [];
  }
  const savedLimit = r.limit;
  r.limit = end;
  // values of typed-array fields that arrived in more than one piece (or unpacked)
  let pending: Map<Field, (number | bigint)[]> | undefined;
  const byNo = m.byNo;
  while (r.pos < end) {
    const tagAt = r.pos;
    const tag = r.uint32();
    const no = tag >>> 3;
    const wt = tag & 7;
    if (no === 0) r.fail('field number 0', tagAt);
    if (wt > 5) r.fail(`invalid wire type ${wt}`, tagAt);
    const f = no < byNo.length ? byNo[no] : undefined;
    if (f === undefined) {
      r.skip(wt, no);
      pushUnknown(obj, r.buf.subarray(tagAt, r.pos));
      continue;
    }
    const kind = f.kind;
    const expected = scalarWireType(kind);
    if (wt !== expected && !(wt === WireType.LEN && f.repeated)) {
      r.fail(`field ${no} (${m.name}.${f.key}) has wire type ${WIRE_NAMES[wt]}, expected ${WIRE_NAMES[expected]}`, tagAt);
    }
    switch (kind) {
      case 'str': {
        const s = r.string();
        if (s === undefined) pushUnknown(obj, r.buf.subarray(tagAt, r.pos));
        else if (f.repeated) (obj[f.key] as string[]).push(s);
        else obj[f.key] = s;
        break;
      }
      case 'bytes': {
        const b = r.bytes();
        if (f.repeated) {
          const arr = obj[f.key] as Uint8Array[] | undefined;
          if (arr) arr.push(b);
          else obj[f.key] = [b];
        } else obj[f.key] = b;
        break;
      }
      case 'msg': {
        const subEnd = r.lengthEnd();
        if (f.repeated) (obj[f.key] as Obj[]).push(decodeMsg(r, subEnd, f.msg!, depth + 1));
        else {
          // a repeated occurrence of a singular message merges into the first (protobuf semantics)
          const prev = obj[f.key] as Obj | undefined;
          obj[f.key] = decodeMsg(r, subEnd, f.msg!, depth + 1, prev);
        }
        break;
      }
      case 'i32':
      case 'i64':
      case 'f32':
        if (!f.repeated) obj[f.key] = readOne(r, kind);
        else {
          const arr = obj[f.key] as (number | bigint)[];
          if (wt === WireType.LEN) readPacked(r, kind, f, arr);
          else arr.push(readOne(r, kind));
        }
        break;
      default: {
        // typed arrays: one packed chunk (the usual case) becomes the array directly
        const cur = obj[f.key] as ArrayLike<number | bigint> | undefined;
        let list = pending?.get(f);
        if (wt === WireType.LEN && cur === undefined && list === undefined) {
          obj[f.key] = readPackedTyped(r, kind, r.lengthEnd(), f);
          break;
        }
        if (!list) {
          list = cur ? Array.from(cur) : [];
          (pending ??= new Map()).set(f, list);
        }
        if (wt === WireType.LEN) readPacked(r, kind, f, list);
        else list.push(readOne(r, kind));
      }
    }
  }
  if (pending) for (const [f, list] of pending) obj[f.key] = makeTyped(f.kind as Typed, list);
  r.limit = savedLimit;
  return obj;
}

/** decodes any schema message; `what` prefixes error messages ("not an ONNX model") */
export function decodeMessage<T>(name: MessageName, bytes: Uint8Array, what = `not an ONNX ${name}`): T {
  if (!(bytes instanceof Uint8Array)) throw new Error(`${what}: expected bytes`);
  // a plain Uint8Array view (not a Buffer) so every decoded bytes field is a plain Uint8Array too
  const plain = Object.getPrototypeOf(bytes) === Uint8Array.prototype ? bytes : new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const r = new Reader(plain, what);
  return decodeMsg(r, plain.length, msgDef(name), 0) as T;
}

export interface DecodeModelOptions {
  /** run assertLooksLikeOnnx (default true): random bytes often decode as some protobuf */
  validate?: boolean;
}

export function decodeModel(bytes: Uint8Array, opts: DecodeModelOptions = {}): ModelProto {
  if (bytes.length === 0) throw new Error('not an ONNX model: the file is empty');
  const m = decodeMessage<ModelProto>('ModelProto', bytes, 'not an ONNX model');
  if (opts.validate !== false) assertLooksLikeOnnx(m);
  return m;
}

export function decodeTensor(bytes: Uint8Array): TensorProto {
  return decodeMessage<TensorProto>('TensorProto', bytes, 'not an ONNX tensor');
}

export function decodeGraph(bytes: Uint8Array): GraphProto {
  return decodeMessage<GraphProto>('GraphProto', bytes, 'not an ONNX graph');
}

/** rejects protobufs that decoded fine but cannot be ONNX models */
export function assertLooksLikeOnnx(m: ModelProto): void {
  const bad = (why: string): never => {
    throw new Error(`not an ONNX model: ${why}`);
  };
  if (m.irVersion === undefined) bad('no ir_version');
  if (m.irVersion! < 1n || m.irVersion! > 100n) bad(`implausible ir_version ${m.irVersion}`);
  if (!m.graph) bad('no graph');
  const nodes = m.graph!.node;
  for (let i = 0; i < nodes.length; i++) {
    if (!nodes[i]!.opType) bad(`node #${i} has no op_type`);
  }
  for (const op of m.opsetImport) {
    if (op.version !== undefined && (op.version < 0n || op.version > 100000n)) bad(`implausible opset version ${op.version}`);
  }
}

// ---------------------------------------------------------------- encoding

function big(v: unknown): bigint {
  return typeof v === 'bigint' ? v : BigInt(v as number);
}

function int32Of(v: unknown, m: Msg, f: Field): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < -2147483648 || v > 4294967295) {
    throw new Error(`cannot encode ${m.name}.${f.key}: ${String(v)} is not an int32`);
  }
  return v | 0;
}

/** pass 1: sizes in pre-order (each message's body size, each string's UTF-8 length, each packed payload) */
function sizeMsg(obj: Obj, m: Msg, q: number[]): number {
  const slot = q.length;
  q.push(0);
  let n = 0;
  for (const f of m.fields) {
    const v = obj[f.key];
    if (v === undefined || v === null) continue;
    const ts = tagSize(f.no);
    if (!f.repeated) {
      switch (f.kind) {
        case 'str': {
          const len = utf8Length(v as string);
          q.push(len);
          n += ts + varintSize(len) + len;
          break;
        }
        case 'bytes': {
          const len = (v as Uint8Array).length;
          n += ts + varintSize(len) + len;
          break;
        }
        case 'i32':
          n += ts + varintSize(int32Of(v, m, f));
          break;
        case 'i64':
          n += ts + varint64Size(big(v));
          break;
        case 'f32':
          n += ts + 4;
          break;
        default: {
          const len = sizeMsg(v as Obj, f.msg!, q);
          n += ts + varintSize(len) + len;
        }
      }
      continue;
    }
    const arr = v as ArrayLike<unknown>;
    const count = arr.length;
    if (count === 0) continue;
    switch (f.kind) {
      case 'str':
        for (let i = 0; i < count; i++) {
          const len = utf8Length(arr[i] as string);
          q.push(len);
          n += ts + varintSize(len) + len;
        }
        break;
      case 'bytes':
        for (let i = 0; i < count; i++) {
          const len = (arr[i] as Uint8Array).length;
          n += ts + varintSize(len) + len;
        }
        break;
      case 'i32':
        for (let i = 0; i < count; i++) n += ts + varintSize(int32Of(arr[i], m, f));
        break;
      case 'i64':
        for (let i = 0; i < count; i++) n += ts + varint64Size(big(arr[i]));
        break;
      case 'f32':
        n += count * (ts + 4);
        break;
      case 'msg':
        for (let i = 0; i < count; i++) {
          const len = sizeMsg(arr[i] as Obj, f.msg!, q);
          n += ts + varintSize(len) + len;
        }
        break;
      default: {
        let payload = 0;
        if (f.kind === 'F32A') payload = count * 4;
        else if (f.kind === 'F64A') payload = count * 8;
        else if (f.kind === 'I32A') for (let i = 0; i < count; i++) payload += varintSize(int32Of(arr[i], m, f));
        else if (f.kind === 'I64A') for (let i = 0; i < count; i++) payload += varint64Size(big(arr[i]));
        else for (let i = 0; i < count; i++) payload += varint64Size(BigInt.asUintN(64, big(arr[i])));
        q.push(payload);
        n += ts + varintSize(payload) + payload;
      }
    }
  }
  const unknown = obj.unknownFields as Uint8Array[] | undefined;
  if (unknown) for (const c of unknown) n += c.length;
  q[slot] = n;
  return n;
}

interface Cursor {
  i: number;
}

/** pass 2: mirrors sizeMsg exactly, consuming the same queue */
function writeMsg(obj: Obj, m: Msg, w: Writer, q: number[], c: Cursor): void {
  c.i++; // own size, already used by the caller
  for (const f of m.fields) {
    const v = obj[f.key];
    if (v === undefined || v === null) continue;
    if (!f.repeated) {
      switch (f.kind) {
        case 'str': {
          const len = q[c.i++]!;
          w.tag(f.no, WireType.LEN);
          w.varint(len);
          w.string(v as string, len);
          break;
        }
        case 'bytes':
          w.tag(f.no, WireType.LEN);
          w.varint((v as Uint8Array).length);
          w.raw(v as Uint8Array);
          break;
        case 'i32':
          w.tag(f.no, WireType.VARINT);
          w.varint((v as number) | 0);
          break;
        case 'i64':
          w.tag(f.no, WireType.VARINT);
          w.varint64(big(v));
          break;
        case 'f32':
          w.tag(f.no, WireType.I32);
          w.float(v as number);
          break;
        default:
          w.tag(f.no, WireType.LEN);
          w.varint(q[c.i]!);
          writeMsg(v as Obj, f.msg!, w, q, c);
      }
      continue;
    }
    const arr = v as ArrayLike<unknown>;
    const count = arr.length;
    if (count === 0) continue;
    switch (f.kind) {
      case 'str':
        for (let i = 0; i < count; i++) {
          const len = q[c.i++]!;
          w.tag(f.no, WireType.LEN);
          w.varint(len);
          w.string(arr[i] as string, len);
        }
        break;
      case 'bytes':
        for (let i = 0; i < count; i++) {
          const b = arr[i] as Uint8Array;
          w.tag(f.no, WireType.LEN);
          w.varint(b.length);
          w.raw(b);
        }
        break;
      case 'i32':
        for (let i = 0; i < count; i++) {
          w.tag(f.no, WireType.VARINT);
          w.varint((arr[i] as number) | 0);
        }
        break;
      case 'i64':
        for (let i = 0; i < count; i++) {
          w.tag(f.no, WireType.VARINT);
          w.varint64(big(arr[i]));
        }
        break;
      case 'f32':
        for (let i = 0; i < count; i++) {
          w.tag(f.no, WireType.I32);
          w.float(arr[i] as number);
        }
        break;
      case 'msg':
        for (let i = 0; i < count; i++) {
          w.tag(f.no, WireType.LEN);
          w.varint(q[c.i]!);
          writeMsg(arr[i] as Obj, f.msg!, w, q, c);
        }
        break;
      default: {
        w.tag(f.no, WireType.LEN);
        w.varint(q[c.i++]!);
        if (f.kind === 'F32A' || f.kind === 'F64A') {
          const t = arr as Float32Array | Float64Array | number[];
          if (f.kind === 'F32A' ? t instanceof Float32Array : t instanceof Float64Array) {
            w.raw(new Uint8Array((t as Float32Array).buffer, (t as Float32Array).byteOffset, (t as Float32Array).byteLength));
          }
          else if (f.kind === 'F32A') for (let i = 0; i < count; i++) w.float(t[i]!);
          else for (let i = 0; i < count; i++) w.double(t[i]!);
        } else if (f.kind === 'I32A') for (let i = 0; i < count; i++) w.varint((arr[i] as number) | 0);
        else if (f.kind === 'I64A') for (let i = 0; i < count; i++) w.varint64(big(arr[i]));
        else for (let i = 0; i < count; i++) w.varint64(BigInt.asUintN(64, big(arr[i])));
      }
    }
  }
  const unknown = obj.unknownFields as Uint8Array[] | undefined;
  if (unknown) for (const chunk of unknown) w.raw(chunk);
}

export function encodeMessage(name: MessageName, obj: object): Uint8Array {
  const m = msgDef(name);
  const q: number[] = [];
  const size = sizeMsg(obj as Obj, m, q);
  const w = new Writer(size);
  writeMsg(obj as Obj, m, w, q, { i: 0 });
  if (w.pos !== size) throw new Error(`internal error: encoded ${w.pos} bytes of ${name}, expected ${size}`);
  return w.buf;
}

export function encodeModel(m: ModelProto): Uint8Array {
  return encodeMessage('ModelProto', m);
}

export function encodeTensor(t: TensorProto): Uint8Array {
  return encodeMessage('TensorProto', t);
}

export function encodeGraph(g: GraphProto): Uint8Array {
  return encodeMessage('GraphProto', g);
}

/** ModelProto's field number of its main graph */
const MODEL_GRAPH_FIELD = 7;

/**
 * The bytes of an encoded model with `extension` merged into its main graph: protobuf parsers merge a second
 * occurrence of a singular message field into the first (repeated fields concatenated, set scalars replaced),
 * so the extension's nodes, initializers and outputs follow the original ones. The original bytes are copied
 * as they are (no re-encoding of the weights); `extension` should set nothing but repeated fields.
 */
export function appendGraph(modelBytes: Uint8Array, extension: GraphProto): Uint8Array {
  const g = encodeGraph(extension);
  const w = new Writer(tagSize(MODEL_GRAPH_FIELD) + varintSize(g.length) + g.length);
  w.tag(MODEL_GRAPH_FIELD, WireType.LEN);
  w.varint(g.length);
  w.raw(g);
  const out = new Uint8Array(modelBytes.length + w.buf.length);
  out.set(modelBytes);
  out.set(w.buf, modelBytes.length);
  return out;
}

// ---------------------------------------------------------------- small constructors

export function emptyNode(opType: string): NodeProto {
  return { input: [], output: [], opType, attribute: [], metadataProps: [] };
}

export function emptyGraph(): GraphProto {
  return {
    node: [],
    initializer: [],
    sparseInitializer: [],
    input: [],
    output: [],
    valueInfo: [],
    quantizationAnnotation: [],
    metadataProps: [],
  };
}

export function emptyFunction(): FunctionProto {
  return { input: [], output: [], attribute: [], attributeProto: [], node: [], opsetImport: [], valueInfo: [], metadataProps: [] };
}

// ---------------------------------------------------------------- generic traversal

const reachCache = new Map<MessageName, Set<Msg>>();

/** the messages from which `target` can be reached through message fields (including target itself) */
function reaching(target: MessageName): Set<Msg> {
  let set = reachCache.get(target);
  if (set) return set;
  set = new Set([msgDef(target)]);
  for (let grew = true; grew; ) {
    grew = false;
    for (const m of MSGS.values()) {
      if (!set.has(m) && m.fields.some((f) => f.msg && set!.has(f.msg))) {
        set.add(m);
        grew = true;
      }
    }
  }
  reachCache.set(target, set);
  return set;
}

/**
 * Copy-on-write map over every `target` message inside `root` (subgraphs, functions and training graphs
 * included): `fn` returns the replacement (or its argument unchanged); only the messages on the path to a
 * replaced one are copied, everything else is shared. Returns `root` itself when nothing changed.
 */
export function mapMessages<R extends object, T extends object>(rootName: MessageName, root: R, target: MessageName, fn: (t: T) => T): R {
  const reach = reaching(target);
  const targetMsg = msgDef(target);
  const visit = (obj: Obj, m: Msg): Obj => {
    if (m === targetMsg) return fn(obj as T) as Obj;
    let copy: Obj | undefined;
    for (const f of m.fields) {
      if (!f.msg || !reach.has(f.msg)) continue;
      const v = obj[f.key];
      if (v === undefined || v === null) continue;
      if (f.repeated) {
        const arr = v as Obj[];
        let out: Obj[] | undefined;
        for (let i = 0; i < arr.length; i++) {
          const r = visit(arr[i]!, f.msg);
          if (r !== arr[i]) (out ??= arr.slice())[i] = r;
        }
        if (out) (copy ??= { ...obj })[f.key] = out;
      } else {
        const r = visit(v as Obj, f.msg);
        if (r !== v) (copy ??= { ...obj })[f.key] = r;
      }
    }
    return copy ?? obj;
  };
  return visit(root as Obj, msgDef(rootName)) as R;
}

/** calls `fn` on every `target` message inside `root` (depth-first, file order) */
export function forEachMessage<T extends object>(rootName: MessageName, root: object, target: MessageName, fn: (t: T) => void): void {
  mapMessages(rootName, root, target, (t: T) => {
    fn(t);
    return t;
  });
}
