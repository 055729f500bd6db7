// The seeded noise generator against NumPy's legacy RandomState, whose numbers diffusers' ONNX
// pipelines start from. Expected values were printed by NumPy 2.4 (np.random.RandomState(seed)
// .randn(131).astype(np.float32); .random_sample(2)), so a change in seeding, tempering, the 53-bit
// doubles, the polar method or the order of the pair breaks these tests.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Noise } from '../src/pipelines/stable-diffusion/noise.js';

const NUMPY: Record<number, { first: number[]; last: number; sum: number }> = {
  0: {
    first: [1.764052391052246, 0.40015721321105957, 0.978738009929657, 2.2408931255340576, 1.8675580024719238, -0.9772778749465942],
    last: -0.7699160575866699,
    sum: 17.69480682630092,
  },
  42: {
    first: [0.49671414494514465, -0.13826429843902588, 0.6476885676383972, 1.5230298042297363, -0.2341533750295639, -0.23413695394992828],
    last: -1.5506634712219238,
    sum: -10.351707434747368,
  },
  4294967295: {
    first: [0.6484086513519287, 0.6693235039710999, -1.0805437564849854, 0.2845010459423065, 0.1138877347111702, 0.867621898651123],
    last: 0.6869894862174988,
    sum: -10.214387053158134,
  },
};

test('randn matches NumPy RandomState(seed).randn as float32, value for value', () => {
  for (const [seed, want] of Object.entries(NUMPY)) {
    const got = new Noise(Number(seed)).randn(131);
    assert.deepEqual([...got.slice(0, 6)], want.first, `seed ${seed}`);
    assert.equal(got[130], want.last, `seed ${seed}`);
    const sum = got.reduce((s, x) => s + x, 0);
    assert.ok(Math.abs(sum - want.sum) < 1e-9, `seed ${seed}: sum ${sum} vs ${want.sum}`);
  }
});

test('uniform doubles and raw outputs are MT19937 as NumPy has them', () => {
  const n = new Noise(42);
  assert.deepEqual([n.uniform(), n.uniform()], [0.3745401188473625, 0.9507143064099162]);
  // randint(0, 2**32, dtype=uint64) draws one 32-bit output for this range: the first one.
  assert.equal(new Noise(42).uint32(), 1608637542);
});

test("draws continue across calls (a step's fresh noise follows the initial latents), and seeds outside 0..2^32-1 are refused", () => {
  const a = new Noise(7);
  const whole = new Noise(7).randn(10);
  assert.deepEqual([...a.randn(3), ...a.randn(7)], [...whole]);
  assert.throws(() => new Noise(-1), RangeError);
  assert.throws(() => new Noise(2 ** 32), RangeError);
  assert.throws(() => new Noise(1.5), RangeError);
});

test('noise drawn ahead in the worker is, chunk for chunk, what one generator draws in place', async () => {
  // The worker runs built code only (tsx does not load TypeScript in worker threads): npm test builds first.
  const built = '../dist/pipelines/stable-diffusion/noise-ahead.js';
  const { noiseAhead, noiseHere, drawsInWorker } = (await import(
    built
  )) as typeof import('../src/pipelines/stable-diffusion/noise-ahead.js');
  assert.equal(drawsInWorker(), true);
  const n = 1000;
  const here = noiseHere(99, n);
  const ahead = noiseAhead(99, n);
  const other = noiseAhead(5, n);
  try {
    for (let i = 0; i < 5; i++) {
      const [a, b] = [await here.take(), await ahead.take()];
      assert.deepEqual([...b], [...a], `chunk ${i}`);
      // Two generations at once (two runs) keep their own sequences.
      assert.deepEqual([...(await other.take())], [...new Noise(5).randn(n * (i + 1)).subarray(n * i)]);
    }
  } finally {
    for (const s of [here, ahead, other]) s.close();
  }
});
