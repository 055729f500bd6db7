// Just enough of protobuf's wire format to walk an ONNX model and write parts of it back: fields
// are read in place (extents into the buffer, no copies) and written from raw bytes.

export const WIRE = { VARINT: 0, I64: 1, LEN: 2, I32: 5 } as const;

export interface Field {
  no: number;
  wire: number;
  /** A varint's value (exact up to 2^53, which is all this module's callers read). */
  value: number;
  /** The payload of a LEN, I32 or I64 field. */
  start: number;
  end: number;
  /** The whole field, key included: what to copy to keep it as it was. */
  rawStart: number;
  rawEnd: number;
}

export class ProtobufError extends Error {}

export function readVarint(buf: Uint8Array, at: number, end: number): { value: number; next: number } {
  let value = 0;
  let scale = 1;
  for (let p = at; p < end && p < at + 10; p++) {
    const b = buf[p]!;
    value += (b & 0x7f) * scale;
    scale *= 128;
    if ((b & 0x80) === 0) return { value, next: p + 1 };
  }
  throw new ProtobufError(`truncated varint at byte ${at}`);
}

/** A packed repeated varint field's values (e.g. a tensor's dims as some writers store them). */
export function packedVarints(buf: Uint8Array, f: { start: number; end: number }): number[] {
  const out: number[] = [];
  for (let p = f.start; p < f.end; ) {
    const v = readVarint(buf, p, f.end);
    out.push(v.value);
    p = v.next;
  }
  return out;
}

/** The fields of the message in buf[start, end), in order. Throws ProtobufError on malformed input. */
export function* fieldsOf(buf: Uint8Array, start = 0, end = buf.length): Generator<Field> {
  let p = start;
  while (p < end) {
    const rawStart = p;
    const key = readVarint(buf, p, end);
    const no = Math.floor(key.value / 8);
    const wire = key.value % 8;
    p = key.next;
    let value = 0;
    let payload = p;
    if (wire === WIRE.VARINT) {
      const v = readVarint(buf, p, end);
      value = v.value;
      p = v.next;
    } else if (wire === WIRE.LEN) {
      const len = readVarint(buf, p, end);
      payload = len.next;
      p = len.next + len.value;
    } else if (wire === WIRE.I32) p += 4;
    else if (wire === WIRE.I64) p += 8;
    else throw new ProtobufError(`unsupported wire type ${wire} at byte ${rawStart}`);
    if (p > end || no === 0) throw new ProtobufError(`malformed field at byte ${rawStart}`);
    yield { no, wire, value, start: payload, end: p, rawStart, rawEnd: p };
  }
}

const decoder = new TextDecoder();
export const stringOf = (buf: Uint8Array, f: Field): string => decoder.decode(buf.subarray(f.start, f.end));

export function varint(n: number | bigint): Buffer {
  // Lengths, keys and dims: plain numbers, without BigInt's cost on every field written.
  if (typeof n === 'number' && n >= 0 && n <= 0x7fffffff) {
    const out: number[] = [];
    let v = n;
    while (v > 0x7f) {
      out.push((v & 0x7f) | 0x80);
      v >>>= 7;
    }
    out.push(v);
    return Buffer.from(out);
  }
  let v = BigInt(n);
  if (v < 0n) v += 1n << 64n;
  const out: number[] = [];
  do {
    let byte = Number(v & 0x7fn);
    v >>= 7n;
    if (v > 0n) byte |= 0x80;
    out.push(byte);
  } while (v > 0n);
  return Buffer.from(out);
}

const key = (no: number, wire: number): Buffer => varint(no * 8 + wire);
export const intField = (no: number, n: number | bigint): Buffer => Buffer.concat([key(no, WIRE.VARINT), varint(n)]);
/** The key and length of a LEN field whose `length` payload bytes follow. */
export const lengthPrefix = (no: number, length: number): Buffer => Buffer.concat([key(no, WIRE.LEN), varint(length)]);
export const bytesField = (no: number, b: Uint8Array | string): Buffer => {
  const buf = typeof b === 'string' ? Buffer.from(b) : b;
  return Buffer.concat([lengthPrefix(no, buf.length), buf]);
};
export const messageField = (no: number, ...parts: Uint8Array[]): Buffer => bytesField(no, Buffer.concat(parts));
export const floatField = (no: number, v: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeFloatLE(v);
  return Buffer.concat([key(no, WIRE.I32), b]);
};
