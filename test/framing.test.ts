import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeFrame, FrameReader } from '../src/protocol/framing.js';
import { DwError } from '../src/protocol/errors.js';
import { checkRequest } from '../src/protocol/messages.js';

function collect(max?: number) {
  const frames: unknown[] = [];
  const errors: DwError[] = [];
  const reader = new FrameReader(
    (f) => frames.push(f),
    (e) => errors.push(e),
    max,
  );
  return { reader, frames, errors };
}

test('frames split across chunks and several per chunk are reassembled', () => {
  const { reader, frames, errors } = collect();
  const wire = encodeFrame({ a: 1 }) + encodeFrame({ b: 'two\nlines' }) + encodeFrame({ c: [3] });
  let from = 0;
  for (const cut of [3, 11, 17, wire.length]) {
    reader.push(Buffer.from(wire.slice(from, cut)));
    from = cut;
  }
  assert.deepEqual(frames, [{ a: 1 }, { b: 'two\nlines' }, { c: [3] }]);
  assert.equal(errors.length, 0);
});

test('a multi-byte character split between chunks survives', () => {
  const { reader, frames } = collect();
  const bytes = Buffer.from(encodeFrame({ t: 'été ✓' }));
  reader.push(bytes.subarray(0, 9));
  reader.push(bytes.subarray(9));
  assert.deepEqual(frames, [{ t: 'été ✓' }]);
});

test('malformed JSON is reported once as DW_ERR_PROTOCOL and the reader stops', () => {
  const { reader, frames, errors } = collect();
  reader.push('{"ok":1}\n{nope\n{"late":2}\n');
  assert.deepEqual(frames, [{ ok: 1 }]);
  assert.equal(errors.length, 1);
  assert.equal(errors[0]!.code, 'DW_ERR_PROTOCOL');
  reader.push('{"more":3}\n');
  assert.equal(frames.length, 1);
});

test('an oversized frame is refused even before its newline arrives', () => {
  const { reader, errors } = collect(64);
  reader.push('{"x":"' + 'a'.repeat(100));
  assert.equal(errors.length, 1);
  assert.match(errors[0]!.message, /64-byte limit/);
});

test('encodeFrame refuses to send a frame over the limit', () => {
  assert.throws(
    () => encodeFrame({ x: 'a'.repeat(100) }, 50),
    (e: DwError) => e.code === 'DW_ERR_PROTOCOL',
  );
});

test('checkRequest names what is wrong with a request', () => {
  assert.deepEqual(checkRequest({ id: 1, type: 'status' }), { ok: true, request: { id: 1, type: 'status' } });
  const cases: Array<[unknown, RegExp]> = [
    [[1, 2], /JSON object/],
    [{ type: 'status' }, /needs an "id"/],
    [{ id: 1, type: 'explode' }, /unknown request type "explode"/],
    [{ id: 1, type: 'run', workflow: 'a.json', args: { n: 1 }, cwd: '/' }, /object of strings/],
    [{ id: 'x', type: 'run', workflow: 'a.json', args: {}, cwd: '/', timeout_ms: -5 }, /positive/],
    [{ id: 2, type: 'hello', protocol: '1', version: '0.1.0' }, /numeric "protocol"/],
  ];
  for (const [frame, why] of cases) {
    const r = checkRequest(frame);
    assert.equal(r.ok, false, JSON.stringify(frame));
    if (!r.ok) assert.match(r.reason, why);
  }
});

test('a huge frame arriving in many small chunks costs time in proportion to its size', () => {
  // 8 MB in 64 KB chunks: a reader that rescanned its whole buffer per chunk would do ~500 MB of work.
  const { reader, frames } = collect();
  const payload = JSON.stringify({ blob: 'x'.repeat(8 * 1024 * 1024) }) + '\n';
  let scanned = 0;
  const realIndexOf = String.prototype.indexOf;
  String.prototype.indexOf = function (this: string, ...args: Parameters<string['indexOf']>) {
    scanned += this.length - (args[1] ?? 0);
    return realIndexOf.apply(this, args);
  };
  try {
    for (let i = 0; i < payload.length; i += 65536) reader.push(payload.slice(i, i + 65536));
  } finally {
    String.prototype.indexOf = realIndexOf;
  }
  assert.equal(frames.length, 1);
  assert.ok(scanned < 3 * payload.length, `scanned ${scanned} characters for a ${payload.length}-character frame`);
});
