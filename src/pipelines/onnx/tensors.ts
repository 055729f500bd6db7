// Tensors written in a workflow as JSON: { "type": "float32", "dims": [1, 3], "data": [...] }, or
// nested arrays whose shape is the dims. Converted to the typed arrays onnxruntime takes.
import { DwError } from '../../protocol/errors.js';
import type { TensorData, TensorType } from '../../media/npy.js';

/** A tensor value as written in JSON: a number, a boolean, or (for 64-bit integers) a decimal string. */
type Leaf = number | boolean | string;

/** Integer element types: their range, and the typed array that holds them. */
const INTEGERS: Partial<Record<TensorType, { min: bigint; max: bigint; make: (n: Leaf[]) => TensorData['data'] }>> = {
  int8: { min: -(2n ** 7n), max: 2n ** 7n - 1n, make: (n) => Int8Array.from(n as number[]) },
  int16: { min: -(2n ** 15n), max: 2n ** 15n - 1n, make: (n) => Int16Array.from(n as number[]) },
  int32: { min: -(2n ** 31n), max: 2n ** 31n - 1n, make: (n) => Int32Array.from(n as number[]) },
  int64: { min: -(2n ** 63n), max: 2n ** 63n - 1n, make: (n) => BigInt64Array.from(n, (x) => BigInt(x)) },
  uint8: { min: 0n, max: 2n ** 8n - 1n, make: (n) => Uint8Array.from(n as number[]) },
  uint16: { min: 0n, max: 2n ** 16n - 1n, make: (n) => Uint16Array.from(n as number[]) },
  uint32: { min: 0n, max: 2n ** 32n - 1n, make: (n) => Uint32Array.from(n as number[]) },
  uint64: { min: 0n, max: 2n ** 64n - 1n, make: (n) => BigUint64Array.from(n, (x) => BigInt(x)) },
};
const FLOATS: Partial<Record<TensorType, (n: number[]) => TensorData['data']>> = {
  float32: (n) => Float32Array.from(n),
  float64: (n) => Float64Array.from(n),
};
const FLOAT32_MAX = 3.4028234663852886e38;
export const JSON_TYPES = [...Object.keys(FLOATS), ...Object.keys(INTEGERS), 'bool'] as TensorType[];

/** onnxruntime allows far fewer dimensions; the cap keeps a hostile nesting off the stack. */
const MAX_RANK = 32;

function flatten(value: unknown, owner: string, depth = 0): { data: unknown[]; dims: number[] } {
  if (!Array.isArray(value)) return { data: [value], dims: [] };
  if (depth >= MAX_RANK) throw new DwError('DW_ERR_BAD_ARGUMENT', `${owner}: arrays nested deeper than ${MAX_RANK}`, {});
  if (value.length === 0) return { data: [], dims: [0] };
  const parts = value.map((v) => flatten(v, owner, depth + 1));
  const inner = parts[0]!.dims;
  if (parts.some((p) => p.dims.join() !== inner.join()))
    throw new DwError('DW_ERR_BAD_ARGUMENT', `${owner}: nested arrays of different lengths (a tensor must be rectangular)`, {});
  return { data: parts.flatMap((p) => p.data), dims: [value.length, ...inner] };
}

const badValue = (owner: string, type: TensorType, i: number, v: unknown, why: string) =>
  new DwError('DW_ERR_BAD_ARGUMENT', `${owner}: value ${i} (${JSON.stringify(v)}) ${why} for ${type}`, { index: i, type });

/**
 * The values as `type` exactly, or an error naming the first that does not fit: no silent
 * truncation (16000.5 into int64), wrap-around (-5 into uint8) or rounding (2^53 + 1 as a number).
 */
function typedArray(type: TensorType, values: unknown[], owner: string): TensorData['data'] {
  if (type === 'bool') {
    return Uint8Array.from(values, (v, i) => {
      if (v === true || v === 1) return 1;
      if (v === false || v === 0) return 0;
      throw badValue(owner, type, i, v, 'is not true, false, 1 or 0');
    });
  }
  const float = FLOATS[type];
  if (float) {
    values.forEach((v, i) => {
      if (typeof v !== 'number' || !Number.isFinite(v)) throw badValue(owner, type, i, v, 'is not a finite number');
      // Float32Array would make it Infinity without a word.
      if (type === 'float32' && Math.abs(v) > FLOAT32_MAX) throw badValue(owner, type, i, v, 'is beyond the largest float32');
    });
    return float(values as number[]);
  }
  const int = INTEGERS[type];
  if (!int) throw new DwError('DW_ERR_BAD_ARGUMENT', `${owner}: ${type} tensors cannot be written as JSON; give a .npy file`, { type });
  const wide = type === 'int64' || type === 'uint64';
  values.forEach((v, i) => {
    let n: bigint;
    if (typeof v === 'number') {
      if (!Number.isInteger(v)) throw badValue(owner, type, i, v, 'is not an integer');
      // JSON numbers past 2^53 were already rounded when the workflow was parsed: the digits are gone.
      if (wide && !Number.isSafeInteger(v))
        throw badValue(owner, type, i, v, 'is past 2^53, where JSON numbers lose digits; write it as a decimal string');
      n = BigInt(v);
    } else if (wide && typeof v === 'string' && /^-?\d+$/.test(v)) {
      n = BigInt(v);
    } else {
      throw badValue(owner, type, i, v, wide ? 'is not an integer (a number, or a decimal string for big values)' : 'is not an integer');
    }
    if (n < int.min || n > int.max) throw badValue(owner, type, i, v, `is outside ${int.min}..${int.max}`);
  });
  return int.make(values as Leaf[]);
}

/** A JSON value as a tensor of `type`: a number, nested arrays, or { type?, dims?, data }. */
export function tensorFromJson(value: unknown, type: TensorType, owner: string): TensorData {
  let dims: number[] | undefined;
  let raw = value;
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    const o = value as { type?: unknown; dims?: unknown; data?: unknown };
    if (o.data === undefined)
      throw new DwError('DW_ERR_BAD_ARGUMENT', `${owner}: a tensor object needs "data" (and "dims" unless data is nested arrays)`, {});
    if (o.type !== undefined) {
      if (typeof o.type !== 'string' || !JSON_TYPES.includes(o.type as TensorType))
        throw new DwError(
          'DW_ERR_BAD_ARGUMENT',
          `${owner}: "type" must be one of ${JSON_TYPES.join(', ')}, got ${JSON.stringify(o.type)}`,
          {},
        );
      type = o.type as TensorType;
    }
    if (o.dims !== undefined) {
      if (!Array.isArray(o.dims) || !o.dims.every((d) => Number.isInteger(d) && d >= 0))
        throw new DwError('DW_ERR_BAD_ARGUMENT', `${owner}: "dims" must be an array of non-negative integers`, {});
      dims = o.dims as number[];
    }
    raw = o.data;
  }
  const flat = flatten(raw, owner);
  const shape = dims ?? flat.dims;
  const count = shape.reduce((a, b) => a * b, 1);
  if (count !== flat.data.length)
    throw new DwError(
      'DW_ERR_BAD_ARGUMENT',
      `${owner}: dims [${shape.join(', ')}] hold ${count} values but data has ${flat.data.length}`,
      {},
    );
  return { kind: 'tensor', type, dims: shape, data: typedArray(type, flat.data, owner) };
}

/** A tensor as plain JSON (bigints as numbers when exact, else strings), with its dims and type. */
export function tensorToJson(t: TensorData, limit = Infinity): Record<string, unknown> {
  const n = t.data.length;
  const head = { type: t.type, dims: t.dims };
  if (n > limit) return { ...head, data_omitted: `${n} values; save the step with result.save to get them` };
  const data = Array.from(t.data as ArrayLike<number | bigint>, (x) =>
    typeof x === 'bigint' ? (x >= BigInt(Number.MIN_SAFE_INTEGER) && x <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(x) : x.toString()) : x,
  );
  return { ...head, data };
}
