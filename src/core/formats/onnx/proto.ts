/**
 * ONNX protobuf messages as plain TypeScript objects (onnx.proto3 up to IR version 10 / ONNX 1.17).
 *
 * Conventions (the contract every other module relies on):
 * - field names are the camelCase of onnx.proto's snake_case names;
 * - int64/uint64 scalars and repeated int64s decode to `bigint` (INT64_MAX is a real value in Slice ends);
 *   int32/enums decode to `number`; strings decode as UTF-8 `string` except `bytes` fields (Uint8Array);
 * - packed numeric repeated fields of TensorProto decode into typed arrays (no JS number arrays);
 * - `rawData` is a zero-copy view into the file buffer: it is usually NOT 4-byte aligned, so read it through
 *   a DataView or copy it before making a Float32Array;
 * - every message keeps the fields this schema does not know in `unknownFields` (raw tag+value bytes, in file
 *   order); the encoder writes them back after the known fields, so nothing is lost on re-encode;
 * - optional scalars that are absent stay `undefined`; onnx.proto is proto2, so a field present in the file
 *   with its default value (e.g. `dimValue: 0n`, `modelVersion: 0n`) decodes to that value and is written back:
 *   the encoder writes every singular field that is not `undefined` and omits empty repeated fields, exactly
 *   like the reference (C++/Python) serializer, so unedited files re-encode byte-identically.
 */

export interface UnknownFields {
  /** raw bytes of fields this schema does not know, each chunk one complete field (tag + payload) */
  unknownFields?: Uint8Array[];
}

export const enum TensorDataType {
  UNDEFINED = 0,
  FLOAT = 1,
  UINT8 = 2,
  INT8 = 3,
  UINT16 = 4,
  INT16 = 5,
  INT32 = 6,
  INT64 = 7,
  STRING = 8,
  BOOL = 9,
  FLOAT16 = 10,
  DOUBLE = 11,
  UINT32 = 12,
  UINT64 = 13,
  COMPLEX64 = 14,
  COMPLEX128 = 15,
  BFLOAT16 = 16,
  FLOAT8E4M3FN = 17,
  FLOAT8E4M3FNUZ = 18,
  FLOAT8E5M2 = 19,
  FLOAT8E5M2FNUZ = 20,
  UINT4 = 21,
  INT4 = 22,
  FLOAT4E2M1 = 23,
}

export const enum AttributeType {
  UNDEFINED = 0,
  FLOAT = 1,
  INT = 2,
  STRING = 3,
  TENSOR = 4,
  GRAPH = 5,
  SPARSE_TENSOR = 11,
  TYPE_PROTO = 13,
  FLOATS = 6,
  INTS = 7,
  STRINGS = 8,
  TENSORS = 9,
  GRAPHS = 10,
  SPARSE_TENSORS = 12,
  TYPE_PROTOS = 14,
}

export interface StringStringEntryProto extends UnknownFields {
  key?: string;
  value?: string;
}

export interface OperatorSetIdProto extends UnknownFields {
  domain?: string;
  version?: bigint;
}

export interface TensorSegment extends UnknownFields {
  begin?: bigint;
  end?: bigint;
}

export interface TensorProto extends UnknownFields {
  dims: bigint[];
  dataType?: number;
  segment?: TensorSegment;
  floatData?: Float32Array;
  int32Data?: Int32Array;
  stringData?: Uint8Array[];
  int64Data?: BigInt64Array;
  name?: string;
  docString?: string;
  rawData?: Uint8Array;
  /** 13: external data location entries (location, offset, length, checksum) */
  externalData: StringStringEntryProto[];
  /** 14: 0 = DEFAULT, 1 = EXTERNAL */
  dataLocation?: number;
  doubleData?: Float64Array;
  uint64Data?: BigUint64Array;
  /** 16 (IR 10) */
  metadataProps: StringStringEntryProto[];
}

export interface SparseTensorProto extends UnknownFields {
  values?: TensorProto;
  indices?: TensorProto;
  dims: bigint[];
}

export interface TensorShapeDimension extends UnknownFields {
  dimValue?: bigint;
  dimParam?: string;
  denotation?: string;
}

export interface TensorShapeProto extends UnknownFields {
  dim: TensorShapeDimension[];
}

export interface TypeProtoTensor extends UnknownFields {
  elemType?: number;
  shape?: TensorShapeProto;
}

export interface TypeProto extends UnknownFields {
  tensorType?: TypeProtoTensor;
  sequenceType?: { elemType?: TypeProto } & UnknownFields;
  mapType?: { keyType?: number; valueType?: TypeProto } & UnknownFields;
  optionalType?: { elemType?: TypeProto } & UnknownFields;
  sparseTensorType?: TypeProtoTensor;
  denotation?: string;
}

export interface ValueInfoProto extends UnknownFields {
  name?: string;
  type?: TypeProto;
  docString?: string;
  /** 4 (IR 10) */
  metadataProps: StringStringEntryProto[];
}

export interface AttributeProto extends UnknownFields {
  name?: string;
  refAttrName?: string;
  docString?: string;
  type?: number;
  f?: number;
  i?: bigint;
  s?: Uint8Array;
  t?: TensorProto;
  g?: GraphProto;
  sparseTensor?: SparseTensorProto;
  tp?: TypeProto;
  floats: number[];
  ints: bigint[];
  strings: Uint8Array[];
  tensors: TensorProto[];
  graphs: GraphProto[];
  sparseTensors: SparseTensorProto[];
  typeProtos: TypeProto[];
}

export interface NodeProto extends UnknownFields {
  input: string[];
  output: string[];
  name?: string;
  opType?: string;
  domain?: string;
  /** 8 (IR 10) */
  overload?: string;
  attribute: AttributeProto[];
  docString?: string;
  /** 9 (IR 10) */
  metadataProps: StringStringEntryProto[];
}

export interface TensorAnnotation extends UnknownFields {
  tensorName?: string;
  quantParameterTensorNames: StringStringEntryProto[];
}

export interface GraphProto extends UnknownFields {
  node: NodeProto[];
  name?: string;
  initializer: TensorProto[];
  sparseInitializer: SparseTensorProto[];
  docString?: string;
  input: ValueInfoProto[];
  output: ValueInfoProto[];
  valueInfo: ValueInfoProto[];
  quantizationAnnotation: TensorAnnotation[];
  /** 16 (IR 10) */
  metadataProps: StringStringEntryProto[];
}

export interface TrainingInfoProto extends UnknownFields {
  initialization?: GraphProto;
  algorithm?: GraphProto;
  initializationBinding: StringStringEntryProto[];
  updateBinding: StringStringEntryProto[];
}

export interface FunctionProto extends UnknownFields {
  name?: string;
  input: string[];
  output: string[];
  attribute: string[];
  attributeProto: AttributeProto[];
  node: NodeProto[];
  docString?: string;
  opsetImport: OperatorSetIdProto[];
  domain?: string;
  /** 13 (IR 10) */
  overload?: string;
  /** 12 (IR 10) */
  valueInfo: ValueInfoProto[];
  /** 14 (IR 10) */
  metadataProps: StringStringEntryProto[];
}

export interface ModelProto extends UnknownFields {
  irVersion?: bigint;
  opsetImport: OperatorSetIdProto[];
  producerName?: string;
  producerVersion?: string;
  domain?: string;
  modelVersion?: bigint;
  docString?: string;
  graph?: GraphProto;
  metadataProps: StringStringEntryProto[];
  trainingInfo: TrainingInfoProto[];
  functions: FunctionProto[];
}
