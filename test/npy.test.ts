// .npy reading and writing: round trips, byte-exact agreement with files numpy 2.4 wrote, and the
// refusals for layouts we cannot represent as a flat little-endian C-order tensor.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DwError } from '../src/protocol/errors.js';
import { isTensorData, readNpy, writeNpy, type TensorData } from '../src/media/npy.js';

const MAGIC = '\x93NUMPY';

/** A .npy file built the way numpy lays it out, independently of the code under test. */
function npyFile(major: number, header: string, data: Uint8Array = new Uint8Array(0), align = 64): Buffer {
  const prefix = major === 1 ? 10 : 12;
  const unpadded = prefix + header.length + 1;
  const pad = align === 0 ? 0 : align - (unpadded % align);
  const text = header + ' '.repeat(pad) + '\n';
  const len = Buffer.alloc(major === 1 ? 2 : 4);
  if (major === 1) len.writeUInt16LE(text.length);
  else len.writeUInt32LE(text.length);
  return Buffer.concat([Buffer.from(MAGIC, 'latin1'), Buffer.from([major, 0]), len, Buffer.from(text, 'latin1'), data]);
}

function bytesOf(a: ArrayBufferView): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

function refusal(fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof DwError, `expected a DwError, got ${String(err)}`);
    assert.equal(err.code, 'DW_ERR_BAD_ARGUMENT');
    assert.match(err.message, pattern);
    return true;
  });
}

// np.save output from numpy 2.4.6, e.g. np.save(f, np.arange(6, dtype='<f4').reshape(2, 3)).
const NUMPY: Record<string, string> = {
  f4_2x3:
    '934e554d5059010076007b276465736372273a20273c6634272c2027666f727472616e5f6f72646572273a2046616c73652c20277368617065273a2028322c2033292c207d202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020200a000000000000803f0000004000004040000080400000a040',
  // np.array([-(2**63), -1, 0, 2**63-1], dtype='<i8')
  i8_extremes:
    '934e554d5059010076007b276465736372273a20273c6938272c2027666f727472616e5f6f72646572273a2046616c73652c20277368617065273a2028342c292c207d2020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020200a0000000000000080ffffffffffffffff0000000000000000ffffffffffffff7f',
  // np.array([2**64-1, 1], dtype='<u8')
  u8_max:
    '934e554d5059010076007b276465736372273a20273c7538272c2027666f727472616e5f6f72646572273a2046616c73652c20277368617065273a2028322c292c207d2020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020200affffffffffffffff0100000000000000',
  // np.array([[True, False, True]])
  b1_1x3:
    '934e554d5059010076007b276465736372273a20277c6231272c2027666f727472616e5f6f72646572273a2046616c73652c20277368617065273a2028312c2033292c207d202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020200a010001',
  // np.array([1.0, -2.0, 65504.0], dtype='<f2')
  f2: '934e554d5059010076007b276465736372273a20273c6632272c2027666f727472616e5f6f72646572273a2046616c73652c20277368617065273a2028332c292c207d2020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020200a003c00c0ff7b',
  // np.float64(-0.25)
  f8_scalar:
    '934e554d5059010076007b276465736372273a20273c6638272c2027666f727472616e5f6f72646572273a2046616c73652c20277368617065273a2028292c207d20202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020200a000000000000d0bf',
  // np.zeros((0, 3), dtype='<i2')
  i2_empty:
    '934e554d5059010076007b276465736372273a20273c6932272c2027666f727472616e5f6f72646572273a2046616c73652c20277368617065273a2028302c2033292c207d202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020200a',
  // np.zeros((12345678901234, 0), dtype='|u1'): a long first axis shortens numpy's growth padding
  u1_wide_empty:
    '934e554d5059010076007b276465736372273a20277c7531272c2027666f727472616e5f6f72646572273a2046616c73652c20277368617065273a202831323334353637383930313233342c2030292c207d2020202020202020202020202020202020202020202020202020202020202020202020202020202020202020200a',
};

const EXPECTED: Record<string, TensorData> = {
  f4_2x3: { kind: 'tensor', type: 'float32', dims: [2, 3], data: new Float32Array([0, 1, 2, 3, 4, 5]) },
  i8_extremes: { kind: 'tensor', type: 'int64', dims: [4], data: new BigInt64Array([-(2n ** 63n), -1n, 0n, 2n ** 63n - 1n]) },
  u8_max: { kind: 'tensor', type: 'uint64', dims: [2], data: new BigUint64Array([2n ** 64n - 1n, 1n]) },
  b1_1x3: { kind: 'tensor', type: 'bool', dims: [1, 3], data: new Uint8Array([1, 0, 1]) },
  f2: { kind: 'tensor', type: 'float16', dims: [3], data: new Uint16Array([0x3c00, 0xc000, 0x7bff]) },
  f8_scalar: { kind: 'tensor', type: 'float64', dims: [], data: new Float64Array([-0.25]) },
  i2_empty: { kind: 'tensor', type: 'int16', dims: [0, 3], data: new Int16Array(0) },
  u1_wide_empty: { kind: 'tensor', type: 'uint8', dims: [12345678901234, 0], data: new Uint8Array(0) },
};

const SAMPLES: TensorData[] = [
  { kind: 'tensor', type: 'float32', dims: [2, 2], data: new Float32Array([1.5, -0, Infinity, NaN]) },
  { kind: 'tensor', type: 'float64', dims: [3], data: new Float64Array([Math.PI, -1e308, Number.MIN_VALUE]) },
  { kind: 'tensor', type: 'float16', dims: [2], data: new Uint16Array([0x3c00, 0x7e00]) },
  { kind: 'tensor', type: 'int8', dims: [2], data: new Int8Array([-128, 127]) },
  { kind: 'tensor', type: 'int16', dims: [2], data: new Int16Array([-32768, 32767]) },
  { kind: 'tensor', type: 'int32', dims: [1, 2], data: new Int32Array([-(2 ** 31), 2 ** 31 - 1]) },
  { kind: 'tensor', type: 'int64', dims: [2], data: new BigInt64Array([-(2n ** 63n), 2n ** 63n - 1n]) },
  { kind: 'tensor', type: 'uint8', dims: [3], data: new Uint8Array([0, 128, 255]) },
  { kind: 'tensor', type: 'uint16', dims: [2], data: new Uint16Array([0, 65535]) },
  { kind: 'tensor', type: 'uint32', dims: [2], data: new Uint32Array([0, 2 ** 32 - 1]) },
  { kind: 'tensor', type: 'uint64', dims: [2], data: new BigUint64Array([0n, 2n ** 64n - 1n]) },
  { kind: 'tensor', type: 'bool', dims: [2, 1], data: new Uint8Array([1, 0]) },
];

function roundTrip(t: TensorData): TensorData {
  const back = readNpy(writeNpy(t), 'roundtrip.npy');
  assert.equal(back.type, t.type);
  assert.deepEqual(back.dims, t.dims);
  assert.equal(back.data.constructor, t.data.constructor);
  assert.deepEqual(bytesOf(back.data), bytesOf(t.data));
  return back;
}

test('every dtype round-trips, with its values bit for bit', () => {
  for (const t of SAMPLES) roundTrip(t);
});

test('every dtype round-trips as a scalar and as a 0-size array', () => {
  for (const t of SAMPLES) {
    const Ctor = t.data.constructor as new (source: ArrayLike<number | bigint> | number) => TensorData['data'];
    const scalar = roundTrip({ ...t, dims: [], data: new Ctor(Array.from(t.data as ArrayLike<number | bigint>).slice(0, 1)) });
    assert.equal(scalar.data.length, 1);
    for (const dims of [[0], [3, 0], [0, 0, 2]]) assert.equal(roundTrip({ ...t, dims, data: new Ctor(0) }).data.length, 0);
  }
});

test('a v1.0 file laid out by hand the way np.save writes it is read, and written back identically', () => {
  const header = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }" + ' '.repeat(20);
  const data = new Float32Array([0, 1, 2, 3, 4, 5]);
  const file = npyFile(1, header, bytesOf(data));
  assert.equal(file.length, 128 + 24);
  assert.equal(file.readUInt16LE(8), 118);
  assert.equal(file[127], 0x0a);
  const t = readNpy(file, 'hand.npy');
  assert.deepEqual(t, { kind: 'tensor', type: 'float32', dims: [2, 3], data });
  assert.ok(isTensorData(t));
  assert.deepEqual(writeNpy(t), file);
  assert.deepEqual(file, Buffer.from(NUMPY.f4_2x3, 'hex'));
});

test('files numpy wrote are read correctly and writeNpy reproduces them byte for byte', () => {
  for (const [name, hex] of Object.entries(NUMPY)) {
    const bytes = Buffer.from(hex, 'hex');
    const t = readNpy(bytes, `${name}.npy`);
    assert.deepEqual(t, EXPECTED[name], name);
    assert.deepEqual(writeNpy(t), bytes, name);
  }
});

test('version 2.0 and 3.0 headers are read', () => {
  // np.lib.format.write_array(f, np.arange(3, dtype='<i8'), version=(2, 0)); 3.0 differs only in the version byte.
  const v2 =
    '934e554d5059020074000000' +
    '7b276465736372273a20273c6938272c2027666f727472616e5f6f72646572273a2046616c73652c20277368617065273a2028332c292c207d' +
    '20'.repeat(58) +
    '0a000000000000000001000000000000000200000000000000';
  const expected: TensorData = { kind: 'tensor', type: 'int64', dims: [3], data: new BigInt64Array([0n, 1n, 2n]) };
  assert.deepEqual(readNpy(Buffer.from(v2, 'hex'), 'v2.npy'), expected);
  assert.deepEqual(readNpy(Buffer.from(v2.replace(/^(934e554d5059)02/, '$103'), 'hex'), 'v3.npy'), expected);
  const hand = npyFile(2, "{'descr': '<u2', 'fortran_order': False, 'shape': (2,), }", bytesOf(new Uint16Array([7, 65535])));
  assert.deepEqual(readNpy(hand, 'hand-v2.npy').data, new Uint16Array([7, 65535]));
});

test('a header too long for a 16-bit length is written as version 2.0', () => {
  const dims = new Array<number>(30000).fill(1);
  const file = writeNpy({ kind: 'tensor', type: 'float32', dims, data: new Float32Array([42]) });
  assert.equal(file[6], 2);
  assert.equal((12 + file.readUInt32LE(8)) % 64, 0);
  const back = readNpy(file, 'deep.npy');
  assert.deepEqual(back.dims, dims);
  assert.deepEqual(back.data, new Float32Array([42]));
  // The common case stays on 1.0, which every numpy can read.
  assert.equal(writeNpy(SAMPLES[0])[6], 1);
});

test('data at an unaligned offset is copied into its own aligned buffer', () => {
  // An unpadded header (as other writers produce) puts float64 data at an odd offset.
  const file = npyFile(1, "{'descr':'<f8','fortran_order':False,'shape':(2,)}", bytesOf(new Float64Array([1.25, -7])), 0);
  assert.notEqual(file.indexOf(0x0a) + 1, 0);
  assert.notEqual((file.indexOf(0x0a) + 1) % 8, 0);
  // And inside a larger buffer at an odd byteOffset.
  const outer = new Uint8Array(file.length + 3);
  outer.set(file, 3);
  const view = outer.subarray(3);
  const t = readNpy(view, 'odd.npy');
  assert.deepEqual(t.data, new Float64Array([1.25, -7]));
  assert.equal(t.data.byteOffset, 0);
  outer.fill(0);
  assert.deepEqual(t.data, new Float64Array([1.25, -7]), 'the result must not share memory with the input');
});

test('header variants numpy accepts are read: double quotes, Python 2 long shapes, 1-byte order markers', () => {
  const a = npyFile(1, '{"shape": (2L, 1L), "fortran_order": False, "descr": "<u1"}', new Uint8Array([3, 4]));
  assert.deepEqual(readNpy(a, 'py2.npy'), { kind: 'tensor', type: 'uint8', dims: [2, 1], data: new Uint8Array([3, 4]) });
  const b = npyFile(1, "{'descr': '|i1', 'fortran_order': False, 'shape': (3,)}", new Uint8Array([0xff, 1, 0x80]));
  assert.deepEqual(readNpy(b, 'i1.npy').data, new Int8Array([-1, 1, -128]));
});

test('bool bytes other than 0 and 1 read as 1', () => {
  const file = npyFile(1, "{'descr': '|b1', 'fortran_order': False, 'shape': (3,), }", new Uint8Array([0, 2, 255]));
  assert.deepEqual(readNpy(file, 'b.npy').data, new Uint8Array([0, 1, 1]));
  const written = writeNpy({ kind: 'tensor', type: 'bool', dims: [2], data: new Uint8Array([0, 9]) });
  assert.deepEqual([...written.subarray(written.length - 2)], [0, 1]);
});

test('big-endian, Fortran-order, object and structured arrays are refused, naming what was found', () => {
  const header = (descr: string, fortran = 'False', shape = '(3,)') =>
    `{'descr': ${descr}, 'fortran_order': ${fortran}, 'shape': ${shape}, }`;
  refusal(
    () => readNpy(npyFile(1, header("'>i4'"), new Uint8Array(12)), 'be.npy'),
    /^be\.npy: big-endian dtype '>i4' is not supported; only little-endian dtypes are \(<f4 .*\)/,
  );
  refusal(
    () => readNpy(npyFile(1, header("'<f4'", 'True', '(2, 3)'), new Uint8Array(24)), 'f.npy'),
    /^f\.npy: Fortran-order \(column-major\) arrays are not supported, only C order/,
  );
  refusal(
    () => readNpy(npyFile(1, header("'|O'"), new Uint8Array(8)), 'o.npy'),
    /^o\.npy: object arrays \(dtype '\|O'\) are not supported/,
  );
  refusal(
    () => readNpy(npyFile(1, header("[('a', '<i4'), ('b', '<f4')]"), new Uint8Array(24)), 's.npy'),
    /^s\.npy: structured dtype \[\('a', '<i4'\), \('b', '<f4'\)\] is not supported/,
  );
  refusal(
    () => readNpy(npyFile(1, header("'<c8'"), new Uint8Array(24)), 'c.npy'),
    /dtype '<c8' is not supported; supported dtypes: <f4 <f8 <f2 \|i1 <i2 <i4 <i8 \|u1 <u2 <u4 <u8 \|b1/,
  );
  refusal(() => readNpy(npyFile(1, header("'=f4'"), new Uint8Array(12)), 'n.npy'), /dtype '=f4' does not state little-endian/);
  refusal(() => readNpy(npyFile(1, header("'|f4'"), new Uint8Array(12)), 'n.npy'), /dtype '\|f4' does not state little-endian/);
});

test('bad magic, unknown versions and truncated files are refused', () => {
  const good = Buffer.from(NUMPY.f4_2x3, 'hex');
  refusal(
    () => readNpy(Buffer.from('PK\x03\x04 this is a zip', 'latin1'), 'x.npz'),
    /^x\.npz: not a \.npy file \(expected the magic bytes .*found 504b0304/,
  );
  refusal(() => readNpy(new Uint8Array(0), 'empty.npy'), /not a \.npy file .*found nothing/);
  const v4 = Buffer.from(good);
  v4[6] = 4;
  refusal(() => readNpy(v4, 'v4.npy'), /^v4\.npy: \.npy format version 4\.0 is not supported; versions 1\.0, 2\.0 and 3\.0 are/);
  refusal(
    () => readNpy(good.subarray(0, 60), 'cut.npy'),
    /^cut\.npy: \.npy file is truncated: the header says it is 118 bytes but only 50 follow/,
  );
  refusal(
    () => readNpy(good.subarray(0, good.length - 1), 'short.npy'),
    /^short\.npy: \.npy data is truncated: shape \(2, 3\) of <f4 needs 24 bytes, found 23/,
  );
  refusal(() => readNpy(good.subarray(0, 128), 'nodata.npy'), /needs 24 bytes, found 0/);
  refusal(
    () => readNpy(Buffer.concat([good, Buffer.from([0])]), 'long.npy'),
    /data is longer than its header says: .* needs 24 bytes, found 25/,
  );
});

test('malformed headers are refused', () => {
  const bad = (header: string) => () => readNpy(npyFile(1, header, new Uint8Array(4)), 'h.npy');
  refusal(bad("{'descr': '<f4', 'shape': (1,), }"), /expected exactly the keys descr, fortran_order and shape, found descr, shape/);
  refusal(bad("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'extra': 1}"), /found descr, extra, fortran_order, shape/);
  refusal(bad("{'descr': '<f4', 'fortran_order': 0, 'shape': (1,)}"), /fortran_order must be True or False, found 0/);
  refusal(bad("{'descr': '<f4', 'fortran_order': False, 'shape': (-1,)}"), /shape must be a tuple of non-negative integers, found \(-1,\)/);
  refusal(bad("{'descr': '<f4', 'fortran_order': False, 'shape': [1]}"), /shape must be a tuple .* found \[1\]/);
  refusal(bad("{'descr': '<f4', 'fortran_order': False, 'shape': (1)}"), /shape must be a tuple .* found 1/);
  refusal(
    bad("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), } junk"),
    /malformed \.npy header \(unexpected text after the header dict/,
  );
  refusal(bad("{'descr': '<f4', 'fortran_order': False, 'shape': (1,"), /malformed \.npy header/);
  refusal(bad("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (1,)}"), /duplicate key 'descr'/);
  refusal(bad("('<f4', False, (1,))"), /expected a dict/);
  refusal(bad("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,)}"), /too large/);
});

test('writeNpy refuses tensors whose data does not match their type or dims', () => {
  refusal(
    () => writeNpy({ kind: 'tensor', type: 'float32', dims: [2], data: new Float64Array(2) }),
    /a float32 tensor needs its data in a Float32Array, found Float64Array/,
  );
  refusal(
    () => writeNpy({ kind: 'tensor', type: 'int32', dims: [2, 2], data: new Int32Array(3) }),
    /dims \[2, 2\] need 4 elements, data has 3/,
  );
  refusal(() => writeNpy({ kind: 'tensor', type: 'int32', dims: [-1], data: new Int32Array(0) }), /dims must be non-negative integers/);
  refusal(
    () => writeNpy({ kind: 'tensor', type: 'complex64' as 'float32', dims: [], data: new Float32Array(1) }),
    /unknown tensor type 'complex64'/,
  );
});

test('writeNpy takes data from a subarray view, not its whole buffer', () => {
  const whole = new Int16Array([9, 1, 2, 9]);
  const back = readNpy(writeNpy({ kind: 'tensor', type: 'int16', dims: [2], data: whole.subarray(1, 3) }), 'view.npy');
  assert.deepEqual(back.data, new Int16Array([1, 2]));
});

test('isTensorData checks kind, type, dims and data', () => {
  for (const t of SAMPLES) assert.ok(isTensorData(t), t.type);
  assert.ok(isTensorData({ kind: 'tensor', type: 'float32', dims: [], data: new Float32Array(1) }));
  assert.ok(!isTensorData(null));
  assert.ok(!isTensorData({ kind: 'tensor', type: 'float32', dims: [2], data: [1, 2] }));
  assert.ok(!isTensorData({ kind: 'tensor', type: 'float32', dims: [3], data: new Float32Array(2) }));
  assert.ok(!isTensorData({ kind: 'tensor', type: 'int64', dims: [1], data: new Float64Array(1) }));
  assert.ok(!isTensorData({ kind: 'tensor', type: 'string', dims: [1], data: new Uint8Array(1) }));
  assert.ok(!isTensorData({ kind: 'tensor', type: 'uint8', dims: [1.5], data: new Uint8Array(1) }));
  assert.ok(!isTensorData({ type: 'uint8', dims: [1], data: new Uint8Array(1) }));
});
