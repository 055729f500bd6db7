// Tensors written in a workflow as JSON: { "type": "float32", "dims": [1, 3], "data": [...] }, or
// nested arrays whose shape is the dims. Converted to the typed arrays onnxruntime takes.
import { DwError } from '../../protocol/errors.js';
import type { TensorData, TensorType } from '../../media/npy.js';

const ARRAYS: Partial<Record<TensorType, (n: number[]) => TensorData['data']>> = {
  float32: (n) => Float32Array.from(n),
  float64: (n) => Float64Array.from(n),
  int8: (n) => Int8Array.from(n),
  int16: (n) => Int16Array.from(n),
  int32: (n) => Int32Array.from(n),
  int64: (n) => BigInt64Array.from(n, (x) => BigInt(Math.trunc(x))),
  uint8: (n) => Uint8Array.from(n),
  uint16: (n) => Uint16Array.from(n),
  uint32: (n) => Uint32Array.from(n),
  uint64: (n) => BigUint64Array.from(n, (x) => BigInt(Math.trunc(x))),
  bool: (n) => Uint8Array.from(n, (x) => (x ? 1 : 0)),
};
export const JSON_TYPES = Object.keys(ARRAYS) as TensorType[];

/** onnxruntime allows far fewer dimensions; the cap keeps a hostile nesting off the stack. */
const MAX_RANK = 32;

function flatten(value: unknown, owner: string, depth = 0): { data: number[]; dims: number[] } {
  if (!Array.isArray(value)) return { data: [toNumber(value, owner)], dims: [] };
  if (depth >= MAX_RANK) throw new DwError('DW_ERR_BAD_ARGUMENT', `${owner}: arrays nested deeper than ${MAX_RANK}`, {});
  if (value.length === 0) return { data: [], dims: [0] };
  const parts = value.map((v) => flatten(v, owner, depth + 1));
  const inner = parts[0]!.dims;
  if (parts.some((p) => p.dims.join() !== inner.join())) throw new DwError('DW_ERR_BAD_ARGUMENT', `${owner}: nested arrays of different lengths (a tensor must be rectangular)`, {});
  return { data: parts.flatMap((p) => p.data), dims: [value.length, ...inner] };
}

function toNumber(v: unknown, owner: string): number {
  if (typeof v === 'number' && Number.isFinite(v)) return v;
  if (typeof v === 'boolean') return v ? 1 : 0;
  throw new DwError('DW_ERR_BAD_ARGUMENT', `${owner}: tensor values must be finite numbers, got ${JSON.stringify(v)}`, {});
}

/** A JSON value as a tensor of `type`: a number, nested arrays, or { type?, dims?, data }. */
export function tensorFromJson(value: unknown, type: TensorType, owner: string): TensorData {
  let dims: number[] | undefined;
  let raw = value;
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    const o = value as { type?: unknown; dims?: unknown; data?: unknown };
    if (o.data === undefined) throw new DwError('DW_ERR_BAD_ARGUMENT', `${owner}: a tensor object needs "data" (and "dims" unless data is nested arrays)`, {});
    if (o.type !== undefined) {
      if (typeof o.type !== 'string' || !JSON_TYPES.includes(o.type as TensorType)) throw new DwError('DW_ERR_BAD_ARGUMENT', `${owner}: "type" must be one of ${JSON_TYPES.join(', ')}, got ${JSON.stringify(o.type)}`, {});
      type = o.type as TensorType;
    }
    if (o.dims !== undefined) {
      if (!Array.isArray(o.dims) || !o.dims.every((d) => Number.isInteger(d) && d >= 0)) throw new DwError('DW_ERR_BAD_ARGUMENT', `${owner}: "dims" must be an array of non-negative integers`, {});
      dims = o.dims as number[];
    }
    raw = o.data;
  }
  const make = ARRAYS[type];
  if (!make) throw new DwError('DW_ERR_BAD_ARGUMENT', `${owner}: ${type} tensors cannot be written as JSON; give a .npy file`, { type });
  const flat = flatten(raw, owner);
  const shape = dims ?? flat.dims;
  const count = shape.reduce((a, b) => a * b, 1);
  if (count !== flat.data.length) throw new DwError('DW_ERR_BAD_ARGUMENT', `${owner}: dims [${shape.join(', ')}] hold ${count} values but data has ${flat.data.length}`, {});
  return { kind: 'tensor', type, dims: shape, data: make(flat.data) };
}

/** A tensor as plain JSON (bigints as numbers when exact, else strings), with its dims and type. */
export function tensorToJson(t: TensorData, limit = Infinity): Record<string, unknown> {
  const n = t.data.length;
  const head = { type: t.type, dims: t.dims };
  if (n > limit) return { ...head, data_omitted: `${n} values; save the step with result.save to get them` };
  const data = Array.from(t.data as ArrayLike<number | bigint>, (x) => (typeof x === 'bigint' ? (x >= BigInt(Number.MIN_SAFE_INTEGER) && x <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(x) : x.toString()) : x));
  return { ...head, data };
}
