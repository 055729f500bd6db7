// float16 tensors at a model's edge: every half converts to its float and back to the same bits, and
// the fast bulk conversion rounds exactly as the reference one (nearest, ties to even).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { floats, fromHalf, halves, toHalf } from '../src/pipelines/stable-diffusion/float16.js';

test('every half bit pattern: floats() gives its value and halves() gives the bits back', () => {
  const all = Uint16Array.from({ length: 65536 }, (_, i) => i);
  const values = floats(all);
  const back = halves(values);
  for (let h = 0; h < 65536; h++) {
    const isNaN = (h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0;
    if (isNaN) {
      assert.ok(Number.isNaN(values[h]), `half ${h} is NaN`);
      continue;
    }
    assert.equal(values[h], fromHalf(h), `half ${h}`);
    assert.equal(back[h], h, `half ${h} back`);
  }
});

test('halves() rounds like toHalf: ties to even, overflow to infinity, subnormals and zeros', () => {
  const probe: number[] = [
    65504,
    65519.99,
    65520,
    70000,
    1e-8,
    6.1e-5,
    5.96e-8,
    2.98e-8,
    -0,
    0,
    1 + 2 ** -11,
    1 + 3 * 2 ** -11,
    1 + 2 ** -10,
    -2.5,
    1 / 3,
  ];
  // And a sweep of float32 bit patterns across the whole range, both signs.
  const sweep = new Uint32Array(1 << 16);
  for (let i = 0; i < sweep.length; i++) sweep[i] = (i * 65537 + 12345) >>> 0;
  const values = Float32Array.from([...probe, ...new Float32Array(sweep.buffer)]);
  const fast = halves(values);
  values.forEach((v, i) => assert.equal(fast[i], toHalf(v), `${v}`));
  assert.equal(toHalf(65520), 0x7c00, 'past the largest half: infinity');
  assert.equal(toHalf(1 + 2 ** -11), 0x3c00, 'a tie goes to the even neighbour (down)');
  assert.equal(toHalf(1 + 3 * 2 ** -11), 0x3c02, 'a tie goes to the even neighbour (up)');
});
