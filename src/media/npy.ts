// NumPy .npy reading and writing for the element types onnxruntime tensors use.
// Format reference: numpy/lib/format.py (NEP 1). A file is: magic "\x93NUMPY", major and minor
// version bytes, a little-endian header length (uint16 in 1.0, uint32 in 2.0 and 3.0), a header
// that is a Python dict literal, then the raw C-order element bytes.

import { DwError } from '../protocol/errors.js';

export type TensorType =
  | 'float32'
  | 'float64'
  | 'int8'
  | 'int16'
  | 'int32'
  | 'int64'
  | 'uint8'
  | 'uint16'
  | 'uint32'
  | 'uint64'
  | 'bool'
  | 'float16';

export interface TensorData {
  kind: 'tensor';
  type: TensorType;
  dims: number[];
  data:
    | Float32Array
    | Float64Array
    | Int8Array
    | Int16Array
    | Int32Array
    | BigInt64Array
    | Uint8Array
    | Uint16Array
    | Uint32Array
    | BigUint64Array;
}

type TypedData = TensorData['data'];

/** The typed array class that holds a dtype's elements. */
type ArrayClass = { new (buffer: ArrayBuffer, byteOffset: number, length: number): TypedData; readonly name: string };

interface Dtype {
  type: TensorType;
  /** numpy's own spelling (dtype.str), which is what np.save writes and so what we write. */
  descr: string;
  array: ArrayClass;
  /** dtype kind letter and item size, the byte-order-free identity of the dtype (read off descr). */
  kind: string;
  size: number;
}

const dtypeOf = (type: TensorType, descr: string, array: ArrayClass): Dtype => ({
  type,
  descr,
  array,
  kind: descr[1]!,
  size: Number(descr.slice(2)),
});

const DTYPES: readonly Dtype[] = [
  dtypeOf('float32', '<f4', Float32Array),
  dtypeOf('float64', '<f8', Float64Array),
  dtypeOf('float16', '<f2', Uint16Array),
  dtypeOf('int8', '|i1', Int8Array),
  dtypeOf('int16', '<i2', Int16Array),
  dtypeOf('int32', '<i4', Int32Array),
  dtypeOf('int64', '<i8', BigInt64Array),
  dtypeOf('uint8', '|u1', Uint8Array),
  dtypeOf('uint16', '<u2', Uint16Array),
  dtypeOf('uint32', '<u4', Uint32Array),
  dtypeOf('uint64', '<u8', BigUint64Array),
  dtypeOf('bool', '|b1', Uint8Array),
];

const BY_TYPE = new Map(DTYPES.map((d) => [d.type, d]));
const SUPPORTED = DTYPES.map((d) => d.descr).join(' ');

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // "\x93NUMPY"
/** np.save pads the header so the data starts on this boundary; we do the same. */
const ARRAY_ALIGN = 64;
/** numpy >= 2 leaves this much room for the first axis to grow in place; copied to match np.save byte for byte. */
const GROWTH_AXIS_MAX_DIGITS = 21;

// Typed arrays use the host's byte order and .npy data here is always little-endian.
const HOST_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function fail(message: string, details: Record<string, unknown>): never {
  throw new DwError('DW_ERR_BAD_ARGUMENT', message, details);
}

// ---------------------------------------------------------------------------------------------
// Header literal parsing. numpy reads the header with ast.literal_eval; we accept the subset of
// Python literals a header can contain and nothing else, so that a corrupt header is reported as
// such instead of being half-understood.

type PyValue = string | boolean | null | number | PyValue[] | { tuple: PyValue[] } | Map<string, PyValue>;

class HeaderParser {
  private pos = 0;
  constructor(
    private readonly text: string,
    private readonly source: string,
  ) {}

  parse(): PyValue {
    const value = this.value();
    this.ws();
    if (this.pos !== this.text.length) this.error('unexpected text after the header dict');
    return value;
  }

  private error(what: string): never {
    fail(`${this.source}: malformed .npy header (${what} at offset ${this.pos}): ${JSON.stringify(this.text.trimEnd())}`, {
      source: this.source,
      header: this.text.trimEnd(),
      offset: this.pos,
    });
  }

  private ws(): void {
    while (this.pos < this.text.length && /\s/.test(this.text[this.pos])) this.pos++;
  }

  private eat(ch: string): boolean {
    this.ws();
    if (this.text[this.pos] === ch) {
      this.pos++;
      return true;
    }
    return false;
  }

  private value(): PyValue {
    this.ws();
    const c = this.text[this.pos];
    if (c === '{') return this.dict();
    if (c === '(') {
      const { items, trailingComma } = this.sequence('(', ')');
      // "(5)" is just 5 in Python; only "(5,)" is a one-element tuple.
      if (items.length === 1 && !trailingComma) return items[0];
      return { tuple: items };
    }
    if (c === '[') return this.sequence('[', ']').items;
    if (c === "'" || c === '"') return this.string();
    if (c !== undefined && /[-+0-9]/.test(c)) return this.integer();
    const word = /^[A-Za-z_]\w*/.exec(this.text.slice(this.pos))?.[0];
    if (word === 'True' || word === 'False' || word === 'None') {
      this.pos += word.length;
      return word === 'None' ? null : word === 'True';
    }
    return this.error(c === undefined ? 'unexpected end' : `unexpected ${JSON.stringify(c)}`);
  }

  private dict(): Map<string, PyValue> {
    this.pos++; // '{'
    const out = new Map<string, PyValue>();
    while (!this.eat('}')) {
      this.ws();
      const quote = this.text[this.pos];
      if (quote !== "'" && quote !== '"') this.error('expected a string key');
      const key = this.string();
      if (out.has(key)) this.error(`duplicate key '${key}'`);
      if (!this.eat(':')) this.error("expected ':'");
      out.set(key, this.value());
      if (!this.eat(',')) {
        if (!this.eat('}')) this.error("expected ',' or '}'");
        break;
      }
    }
    return out;
  }

  private sequence(open: string, close: string): { items: PyValue[]; trailingComma: boolean } {
    this.pos++; // open
    const items: PyValue[] = [];
    let trailingComma = false;
    while (!this.eat(close)) {
      items.push(this.value());
      trailingComma = this.eat(',');
      if (!trailingComma) {
        if (!this.eat(close)) this.error(`expected ',' or '${close}'`);
        break;
      }
    }
    return { items, trailingComma };
  }

  private string(): string {
    const quote = this.text[this.pos++];
    let out = '';
    for (;;) {
      const c = this.text[this.pos++];
      if (c === undefined || c === '\n') this.error('unterminated string');
      if (c === quote) return out;
      if (c === '\\') {
        const e = this.text[this.pos++];
        if (e === '\\' || e === "'" || e === '"') out += e;
        else this.error(`unsupported escape '\\${e ?? ''}'`);
      } else {
        out += c;
      }
    }
  }

  private integer(): number {
    // Python 2 era numpy wrote shapes like (3L, 4L); the L suffix is accepted like numpy does.
    const m = /^[-+]?\d+L?/.exec(this.text.slice(this.pos));
    if (!m) this.error('expected an integer');
    this.pos += m[0].length;
    const n = Number(m[0].replace(/L$/, ''));
    if (!Number.isSafeInteger(n)) this.error(`integer ${m[0]} is too large`);
    return n;
  }
}

function pyRepr(v: PyValue): string {
  if (v === null) return 'None';
  if (typeof v === 'boolean') return v ? 'True' : 'False';
  if (typeof v === 'number') return String(v);
  if (typeof v === 'string') return `'${v}'`;
  if (Array.isArray(v)) return `[${v.map(pyRepr).join(', ')}]`;
  if (v instanceof Map) return `{${[...v].map(([k, x]) => `'${k}': ${pyRepr(x)}`).join(', ')}}`;
  return tupleRepr(v.tuple.map(pyRepr));
}

function tupleRepr(parts: readonly string[]): string {
  return parts.length === 1 ? `(${parts[0]},)` : `(${parts.join(', ')})`;
}

function shapeRepr(dims: readonly number[]): string {
  return tupleRepr(dims.map(String));
}

// ---------------------------------------------------------------------------------------------

function dtypeFor(descr: PyValue, source: string): Dtype {
  if (typeof descr !== 'string') {
    const shown = pyRepr(descr);
    fail(`${source}: structured dtype ${shown} is not supported; only plain numeric dtypes are (${SUPPORTED})`, {
      source,
      descr: shown,
      supported: SUPPORTED.split(' '),
    });
  }
  const m = /^([<>|=]?)([A-Za-z])(\d*)$/.exec(descr);
  const order = m?.[1] ?? '';
  const kind = m?.[2] ?? '';
  const size = Number(m?.[3] || '0');
  const details = { source, descr, supported: SUPPORTED.split(' ') };
  if (kind === 'O') {
    fail(
      `${source}: object arrays (dtype '${descr}') are not supported: their data is a Python pickle; only plain numeric dtypes are (${SUPPORTED})`,
      details,
    );
  }
  const dtype = DTYPES.find((d) => d.kind === kind && d.size === size);
  if (!m || !dtype) {
    fail(`${source}: dtype '${descr}' is not supported; supported dtypes: ${SUPPORTED}`, details);
  }
  // Byte order is meaningless for one-byte items, so any marker is fine there.
  if (dtype.size > 1 && order !== '<') {
    if (order === '>') {
      fail(
        `${source}: big-endian dtype '${descr}' is not supported; only little-endian dtypes are (${SUPPORTED}); convert with arr.astype(arr.dtype.newbyteorder('<'))`,
        details,
      );
    }
    fail(`${source}: dtype '${descr}' does not state little-endian byte order ('<'); supported dtypes: ${SUPPORTED}`, details);
  }
  return dtype;
}

function elementCount(dims: readonly number[]): number {
  let n = 1;
  for (const d of dims) n *= d;
  return n;
}

function swapBytes(bytes: Uint8Array, size: number): void {
  if (size === 1) return;
  for (let i = 0; i + size <= bytes.length; i += size) bytes.subarray(i, i + size).reverse();
}

export function readNpy(bytes: Uint8Array, source: string): TensorData {
  if (bytes.length < 10 || MAGIC.some((b, i) => bytes[i] !== b)) {
    const head = Buffer.from(bytes.subarray(0, 8)).toString('hex');
    fail(`${source}: not a .npy file (expected the magic bytes 93 4e 55 4d 50 59 "\\x93NUMPY", found ${head || 'nothing'})`, {
      source,
      found: head,
    });
  }
  const major = bytes[6];
  const minor = bytes[7];
  if (![1, 2, 3].includes(major) || minor !== 0) {
    fail(`${source}: .npy format version ${major}.${minor} is not supported; versions 1.0, 2.0 and 3.0 are`, {
      source,
      version: `${major}.${minor}`,
    });
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const lengthBytes = major === 1 ? 2 : 4;
  if (bytes.length < 8 + lengthBytes) {
    fail(`${source}: .npy file is truncated inside its header length field`, { source });
  }
  const headerLength = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const headerStart = 8 + lengthBytes;
  const dataStart = headerStart + headerLength;
  if (dataStart > bytes.length) {
    fail(`${source}: .npy file is truncated: the header says it is ${headerLength} bytes but only ${bytes.length - headerStart} follow`, {
      source,
      headerLength,
      available: bytes.length - headerStart,
    });
  }
  // 1.0 and 2.0 headers are latin1; 3.0 exists only to allow utf8 (for unicode field names).
  const header = Buffer.from(bytes.buffer, bytes.byteOffset + headerStart, headerLength).toString(major === 3 ? 'utf8' : 'latin1');

  const dict = new HeaderParser(header, source).parse();
  if (!(dict instanceof Map)) {
    fail(`${source}: malformed .npy header: expected a dict, found ${JSON.stringify(header.trim())}`, { source, header: header.trim() });
  }
  const keys = [...dict.keys()].sort();
  if (keys.join() !== 'descr,fortran_order,shape') {
    fail(`${source}: malformed .npy header: expected exactly the keys descr, fortran_order and shape, found ${keys.join(', ') || 'none'}`, {
      source,
      keys,
    });
  }
  const dtype = dtypeFor(dict.get('descr')!, source);

  const fortran = dict.get('fortran_order');
  if (typeof fortran !== 'boolean') {
    fail(`${source}: malformed .npy header: fortran_order must be True or False, found ${pyRepr(fortran ?? null)}`, { source });
  }
  if (fortran) {
    // Reinterpreting column-major data as row-major would silently transpose it.
    fail(`${source}: Fortran-order (column-major) arrays are not supported, only C order; save np.ascontiguousarray(arr) instead`, {
      source,
      fortran_order: true,
    });
  }

  const shape = dict.get('shape');
  const dims = shape !== null && typeof shape === 'object' && 'tuple' in shape ? shape.tuple : undefined;
  if (!dims || !dims.every((d): d is number => typeof d === 'number' && d >= 0)) {
    fail(`${source}: malformed .npy header: shape must be a tuple of non-negative integers, found ${pyRepr(shape ?? null)}`, { source });
  }

  const count = elementCount(dims);
  const expected = count * dtype.size;
  const actual = bytes.length - dataStart;
  if (!Number.isSafeInteger(expected) || expected !== actual) {
    const what = actual < expected ? 'truncated' : 'longer than its header says';
    fail(`${source}: .npy data is ${what}: shape ${shapeRepr(dims)} of ${dtype.descr} needs ${expected} bytes, found ${actual}`, {
      source,
      shape: dims,
      descr: dtype.descr,
      expectedBytes: expected,
      actualBytes: actual,
    });
  }

  // Always copy: the caller's buffer may be reused, and the data offset inside it is only
  // guaranteed to be 64-aligned for files np.save wrote, while typed arrays need item alignment.
  const buffer = new ArrayBuffer(expected);
  const copy = new Uint8Array(buffer);
  copy.set(bytes.subarray(dataStart, dataStart + expected));
  if (!HOST_LITTLE_ENDIAN) swapBytes(copy, dtype.size);
  // numpy treats any nonzero byte as True; callers are promised 0/1.
  if (dtype.type === 'bool') for (let i = 0; i < copy.length; i++) copy[i] = copy[i] ? 1 : 0;

  return { kind: 'tensor', type: dtype.type, dims: [...dims], data: new dtype.array(buffer, 0, count) };
}

function validDims(dims: unknown): dims is number[] {
  return Array.isArray(dims) && dims.every((d) => Number.isSafeInteger(d) && d >= 0);
}

export function isTensorData(v: unknown): v is TensorData {
  if (typeof v !== 'object' || v === null) return false;
  const t = v as Partial<TensorData>;
  if (t.kind !== 'tensor' || typeof t.type !== 'string' || !validDims(t.dims)) return false;
  const dtype = BY_TYPE.get(t.type);
  return dtype !== undefined && t.data instanceof dtype.array && (t.data as TypedData).length === elementCount(t.dims);
}

export function writeNpy(t: TensorData): Buffer {
  const dtype = BY_TYPE.get(t.type);
  if (!dtype) {
    fail(`cannot write .npy: unknown tensor type '${String(t.type)}'; supported: ${DTYPES.map((d) => d.type).join(', ')}`, {
      type: t.type,
    });
  }
  if (!validDims(t.dims)) {
    fail(`cannot write .npy: dims must be non-negative integers, found ${JSON.stringify(t.dims)}`, { dims: t.dims });
  }
  if (!(t.data instanceof dtype.array)) {
    const found = (t.data as unknown as { constructor?: { name?: string } })?.constructor?.name ?? typeof t.data;
    fail(`cannot write .npy: a ${t.type} tensor needs its data in a ${dtype.array.name}, found ${found}`, {
      type: t.type,
      found,
    });
  }
  const count = elementCount(t.dims);
  if (t.data.length !== count) {
    fail(`cannot write .npy: dims [${t.dims.join(', ')}] need ${count} elements, data has ${t.data.length}`, {
      dims: t.dims,
      expected: count,
      actual: t.data.length,
    });
  }

  let header = `{'descr': '${dtype.descr}', 'fortran_order': False, 'shape': ${shapeRepr(t.dims)}, }`;
  if (t.dims.length > 0) header += ' '.repeat(Math.max(0, GROWTH_AXIS_MAX_DIGITS - String(t.dims[0]).length));
  // Version 1.0 has a 16-bit header length; only a header too long for that needs 2.0, which
  // older readers cannot open.
  const padded = (p: number): number => p + header.length + 1 + (ARRAY_ALIGN - ((p + header.length + 1) % ARRAY_ALIGN));
  const version = padded(10) - 10 <= 0xffff ? 1 : 2;
  const prefix = version === 1 ? 10 : 12;
  header = header.padEnd(padded(prefix) - prefix - 1, ' ') + '\n';

  const out = Buffer.alloc(prefix + header.length + t.data.byteLength);
  out.set(MAGIC, 0);
  out[6] = version;
  out[7] = 0;
  if (version === 1) out.writeUInt16LE(header.length, 8);
  else out.writeUInt32LE(header.length, 8);
  out.write(header, prefix, 'latin1');

  const data = out.subarray(prefix + header.length);
  data.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
  if (!HOST_LITTLE_ENDIAN) swapBytes(data, dtype.size);
  if (dtype.type === 'bool') for (let i = 0; i < data.length; i++) data[i] = data[i] ? 1 : 0;
  return out;
}
