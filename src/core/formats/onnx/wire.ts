/**
 * Protobuf wire-format primitives (no schema knowledge): a bounds-checked Reader over a Uint8Array and a
 * Writer that fills one preallocated buffer (the codec computes every size first, so big byte fields such as
 * TensorProto.raw_data are copied exactly once).
 *
 * Every decoding failure throws a WireError whose message is one line: `<prefix>: <what> at byte <n>`.
 */

export const enum WireType {
  VARINT = 0,
  I64 = 1,
  LEN = 2,
  SGROUP = 3,
  EGROUP = 4,
  I32 = 5,
}

export class WireError extends Error {
  constructor(
    message: string,
    readonly offset: number,
  ) {
    super(message);
    this.name = 'WireError';
  }
}

const TWO32 = 4294967296;
const utf8Fatal = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const utf8Encoder = new TextEncoder();

/** Reads protobuf primitives from `buf`; `limit` is the end of the message being read (moved by the codec). */
export class Reader {
  readonly buf: Uint8Array;
  readonly view: DataView;
  pos: number;
  limit: number;
  /** prefix of every error message, e.g. "not an ONNX model" */
  readonly what: string;

  constructor(buf: Uint8Array, what = 'invalid protobuf') {
    this.buf = buf;
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    this.pos = 0;
    this.limit = buf.length;
    this.what = what;
  }

  fail(msg: string, at: number = this.pos): never {
    throw new WireError(`${this.what}: ${msg} at byte ${at}`, at);
  }

  private truncated(at: number): never {
    this.fail(this.limit < this.buf.length ? 'field runs past the end of its message' : 'truncated protobuf', at);
  }

  /** varint, keeping only the low 32 bits (unsigned): tags, int32/enum payloads before sign fix-up */
  uint32(): number {
    const buf = this.buf;
    let p = this.pos;
    if (p < this.limit) {
      const b = buf[p]!;
      if (b < 0x80) {
        this.pos = p + 1;
        return b;
      }
    }
    const start = p;
    let result = 0;
    for (let shift = 0; shift < 70; shift += 7) {
      if (p >= this.limit) this.truncated(start);
      const b = buf[p++]!;
      if (shift < 32) result |= (b & 0x7f) << shift;
      if (b < 0x80) {
        this.pos = p;
        return result >>> 0;
      }
    }
    return this.fail('varint longer than 10 bytes', start);
  }

  /** int32 / enum: a varint whose low 32 bits are the two's complement value (negatives use 10 bytes) */
  int32(): number {
    return this.uint32() | 0;
  }

  /** varint as a non-negative safe number (lengths); fails on values >= 2^53 */
  private lengthVarint(): number {
    const buf = this.buf;
    const start = this.pos;
    let p = start;
    let result = 0;
    let mul = 1;
    for (let i = 0; i < 10; i++) {
      if (p >= this.limit) this.truncated(start);
      const b = buf[p++]!;
      result += (b & 0x7f) * mul;
      if (b < 0x80) {
        this.pos = p;
        if (result > Number.MAX_SAFE_INTEGER) this.fail(`length ${result} is absurd`, start);
        return result;
      }
      mul *= 128;
    }
    return this.fail('varint longer than 10 bytes', start);
  }

  /** reads the low and high 32-bit halves of a 64-bit varint into `out` */
  private varint64(out: { lo: number; hi: number }): void {
    const buf = this.buf;
    const start = this.pos;
    let p = start;
    let lo = 0;
    let hi = 0;
    for (let i = 0; i < 10; i++) {
      if (p >= this.limit) this.truncated(start);
      const b = buf[p++]!;
      const bits = b & 0x7f;
      if (i < 4) lo |= bits << (7 * i);
      else if (i === 4) {
        lo |= bits << 28; // the low 4 bits land in lo
        hi |= bits >>> 4;
      } else hi |= bits << (7 * i - 32);
      if (b < 0x80) {
        this.pos = p;
        out.lo = lo >>> 0;
        out.hi = hi >>> 0;
        return;
      }
    }
    this.fail('varint longer than 10 bytes', start);
  }

  private readonly halves = { lo: 0, hi: 0 };

  int64(): bigint {
    const buf = this.buf;
    const p = this.pos;
    if (p < this.limit && buf[p]! < 0x80) {
      this.pos = p + 1;
      return BigInt(buf[p]!);
    }
    const h = this.halves;
    this.varint64(h);
    if (h.hi < 0x200000) return BigInt(h.hi * TWO32 + h.lo);
    return BigInt.asIntN(64, (BigInt(h.hi) << 32n) | BigInt(h.lo));
  }

  uint64(): bigint {
    const h = this.halves;
    this.varint64(h);
    if (h.hi < 0x200000) return BigInt(h.hi * TWO32 + h.lo);
    return (BigInt(h.hi) << 32n) | BigInt(h.lo);
  }

  float(): number {
    const p = this.pos;
    if (p + 4 > this.limit) this.truncated(p);
    this.pos = p + 4;
    return this.view.getFloat32(p, true);
  }

  double(): number {
    const p = this.pos;
    if (p + 8 > this.limit) this.truncated(p);
    this.pos = p + 8;
    return this.view.getFloat64(p, true);
  }

  /** length prefix checked against the current limit; returns the payload end (payload starts at pos) */
  lengthEnd(): number {
    const start = this.pos;
    const len = this.lengthVarint();
    const end = this.pos + len;
    if (end > this.limit) {
      this.fail(`length ${len} runs past the end (${this.limit - this.pos} bytes left)`, start);
    }
    return end;
  }

  /** length-delimited payload as a zero-copy view */
  bytes(): Uint8Array {
    const end = this.lengthEnd();
    const v = this.buf.subarray(this.pos, end);
    this.pos = end;
    return v;
  }

  /** UTF-8 string; returns undefined when the bytes are not valid UTF-8 (the caller keeps them raw) */
  string(): string | undefined {
    const end = this.lengthEnd();
    const start = this.pos;
    this.pos = end;
    return decodeUtf8(this.buf, start, end);
  }

  /** skips one field whose tag was just read; groups are skipped recursively (depth-limited) */
  skip(wireType: number, fieldNo: number, depth = 0): void {
    switch (wireType) {
      case WireType.VARINT: {
        const start = this.pos;
        for (let i = 0; ; i++) {
          if (i >= 10) this.fail('varint longer than 10 bytes', start);
          if (this.pos >= this.limit) this.truncated(start);
          if (this.buf[this.pos++]! < 0x80) break;
        }
        return;
      }
      case WireType.I64:
        if (this.pos + 8 > this.limit) this.truncated(this.pos);
        this.pos += 8;
        return;
      case WireType.I32:
        if (this.pos + 4 > this.limit) this.truncated(this.pos);
        this.pos += 4;
        return;
      case WireType.LEN:
        this.pos = this.lengthEnd();
        return;
      case WireType.SGROUP: {
        if (depth > MAX_GROUP_DEPTH) this.fail('groups nested too deeply');
        for (;;) {
          if (this.pos >= this.limit) this.truncated(this.pos);
          const tagAt = this.pos;
          const tag = this.uint32();
          const no = tag >>> 3;
          const wt = tag & 7;
          if (no === 0) this.fail('field number 0', tagAt);
          if (wt === WireType.EGROUP) {
            if (no !== fieldNo) this.fail(`end of group ${no} does not match start of group ${fieldNo}`, tagAt);
            return;
          }
          this.skip(wt, no, depth + 1);
        }
      }
      default:
        this.fail(wireType === WireType.EGROUP ? 'unexpected end-group tag' : `invalid wire type ${wireType}`);
    }
  }

  /** number of varints in [pos, end) (for sizing packed arrays before filling them) */
  countVarints(end: number): number {
    const buf = this.buf;
    let n = 0;
    for (let p = this.pos; p < end; p++) if (buf[p]! < 0x80) n++;
    if (end > this.pos && buf[end - 1]! >= 0x80) this.fail('packed varints cut off at the end of their field', end);
    return n;
  }
}

const MAX_GROUP_DEPTH = 64;

/**
 * Short ASCII strings are built directly (below 13 chars V8 makes flat strings, never cons-string trees, which
 * would bloat a decoded model); the rest goes through a fatal TextDecoder. undefined for invalid UTF-8.
 */
export function decodeUtf8(buf: Uint8Array, start: number, end: number): string | undefined {
  const n = end - start;
  if (n === 0) return '';
  if (n < 13) {
    let s = '';
    for (let p = start; p < end; p++) {
      const c = buf[p]!;
      if (c >= 0x80) return decodeUtf8Slow(buf, start, end);
      s += String.fromCharCode(c);
    }
    return s;
  }
  return decodeUtf8Slow(buf, start, end);
}

function decodeUtf8Slow(buf: Uint8Array, start: number, end: number): string | undefined {
  try {
    return utf8Fatal.decode(buf.subarray(start, end));
  } catch {
    return undefined;
  }
}

/** UTF-8 byte length of a JS string (lone surrogates count as U+FFFD, like TextEncoder) */
export function utf8Length(s: string): number {
  let len = s.length;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) continue;
    if (c < 0x800) len += 1;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        len += 2; // 4 bytes for 2 UTF-16 units
        i++;
      } else len += 2;
    } else len += 2;
  }
  return len;
}

// ---------------------------------------------------------------- sizes

export function varintSize(v: number): number {
  // v is a non-negative integer < 2^53 or a negative int32 (10 bytes)
  if (v < 0) return 10;
  if (v < 0x80) return 1;
  if (v < 0x4000) return 2;
  if (v < 0x200000) return 3;
  if (v < 0x10000000) return 4;
  let n = 4;
  v = Math.floor(v / 0x10000000);
  while (v > 0) {
    n++;
    v = Math.floor(v / 128);
  }
  return n;
}

export function tagSize(fieldNo: number): number {
  return varintSize(fieldNo * 8);
}

const MAX_SAFE_BIG = BigInt(Number.MAX_SAFE_INTEGER);

export function varint64Size(v: bigint): number {
  if (v >= 0n && v <= MAX_SAFE_BIG) return varintSize(Number(v));
  if (v < 0n) return 10;
  let u = BigInt.asUintN(64, v);
  let n = 1;
  while (u >= 0x80n) {
    u >>= 7n;
    n++;
  }
  return n;
}

// ---------------------------------------------------------------- writer

/** writes into one preallocated buffer; the caller guarantees the sizes */
export class Writer {
  readonly buf: Uint8Array;
  readonly view: DataView;
  pos = 0;

  constructor(size: number) {
    this.buf = new Uint8Array(size);
    this.view = new DataView(this.buf.buffer);
  }

  /** non-negative safe integer, or a negative int32 (written as 10-byte two's complement) */
  varint(v: number): void {
    const buf = this.buf;
    if (v < 0) {
      this.varint64Halves(v >>> 0, 0xffffffff);
      return;
    }
    while (v >= 0x80) {
      buf[this.pos++] = (v % 128) | 0x80;
      v = Math.floor(v / 128);
    }
    buf[this.pos++] = v;
  }

  private varint64Halves(lo: number, hi: number): void {
    const buf = this.buf;
    while (hi > 0 || lo >= 0x80) {
      buf[this.pos++] = (lo & 0x7f) | 0x80;
      lo = ((lo >>> 7) | (hi << 25)) >>> 0;
      hi = hi >>> 7;
    }
    buf[this.pos++] = lo;
  }

  varint64(v: bigint): void {
    if (v >= 0n && v <= MAX_SAFE_BIG) {
      this.varint(Number(v));
      return;
    }
    const u = BigInt.asUintN(64, v);
    this.varint64Halves(Number(u & 0xffffffffn), Number(u >> 32n));
  }

  tag(fieldNo: number, wireType: number): void {
    this.varint(fieldNo * 8 + wireType);
  }

  float(v: number): void {
    this.view.setFloat32(this.pos, v, true);
    this.pos += 4;
  }

  double(v: number): void {
    this.view.setFloat64(this.pos, v, true);
    this.pos += 8;
  }

  raw(bytes: Uint8Array): void {
    this.buf.set(bytes, this.pos);
    this.pos += bytes.length;
  }

  /** writes `s` whose UTF-8 length `byteLen` was computed by utf8Length */
  string(s: string, byteLen: number): void {
    if (byteLen === s.length) {
      const buf = this.buf;
      let p = this.pos;
      for (let i = 0; i < s.length; i++) buf[p++] = s.charCodeAt(i);
      this.pos = p;
    } else {
      utf8Encoder.encodeInto(s, this.buf.subarray(this.pos, this.pos + byteLen));
      this.pos += byteLen;
    }
  }
}
