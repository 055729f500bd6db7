// float16 tensors for exports made in half precision (common on GPUs): onnxruntime-node takes and
// gives their bits as a Uint16Array (Node 20 has no Float16Array). The pipeline computes in float32
// between model calls, so only the tensors at a model's edge are converted.

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** IEEE half bits of a float, rounded to nearest even, overflow to ±Infinity, NaN kept. */
export function toHalf(x: number): number {
  f32[0] = x;
  const bits = u32[0]!;
  const sign = (bits >>> 16) & 0x8000;
  const exp = (bits >>> 23) & 0xff;
  let mant = bits & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    // Subnormal half (or zero): shift the implicit 1 in, round to nearest even.
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    const rest = mant & ((1 << shift) - 1);
    let m = mant >>> shift;
    if (rest > half || (rest === half && m & 1)) m += 1;
    return sign | m;
  }
  let h = sign | (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  // A carry out of the mantissa bumps the exponent, which is the right rounding (up to Infinity).
  if (rest > 0x1000 || (rest === 0x1000 && h & 1)) h += 1;
  return h;
}

/** The float a half's bits stand for. */
export function fromHalf(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/**
 * float32 values as half bits; the same rounding as toHalf. Normal halves (the latents' whole
 * range) in one add on the value's bits: rebias the exponent, then round to nearest even by adding
 * 0xfff plus the lowest kept bit (F. Giesen's float_to_half_fast3_rtne); 2x faster than moving the
 * fields one by one. The rest (zero, subnormals, overflow, NaN) goes through toHalf.
 */
export function halves(data: Float32Array, out: Uint16Array = new Uint16Array(data.length)): Uint16Array {
  const bits = new Uint32Array(data.buffer, data.byteOffset, data.length);
  for (let i = 0; i < bits.length; i++) {
    const b = bits[i]!;
    const f = b & 0x7fffffff;
    // [2^-14, 65536): a carry out of the mantissa at the top gives 0x7c00, Infinity, as it should.
    if (f >= 0x38800000 && f < 0x47800000) out[i] = ((b >>> 16) & 0x8000) | ((f - 0x38000000 + 0xfff + ((f >>> 13) & 1)) >>> 13);
    else out[i] = toHalf(data[i]!);
  }
  return out;
}

/** Every half's float, made once when first needed (256 KB): a lookup per value is the fastest conversion. */
let table: Float32Array | null = null;

export function halfTable(): Float32Array {
  if (!table) {
    table = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) table[h] = fromHalf(h);
  }
  return table;
}

/** Half bits as float32. */
export function floats(bits: Uint16Array, out: Float32Array = new Float32Array(bits.length)): Float32Array {
  const t = halfTable();
  for (let i = 0; i < bits.length; i++) out[i] = t[bits[i]!]!;
  return out;
}
