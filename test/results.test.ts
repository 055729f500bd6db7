// What dw run prints without --json: the last step's text, else a line per step; tensors and long
// strings shortened.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { renderResults, summary } from '../src/cli/results.js';

test("a multi-step workflow prints its last step's text, not every step's JSON", () => {
  const results = {
    crop: { kind: 'image', width: 600, height: 45, channels: 3 },
    ocr: {
      read: {
        text: 'TOTAL 15.90',
        lines: [
          {
            text: 'TOTAL 15.90',
            score: 0.99,
            box: [
              [0, 0],
              [1, 0],
              [1, 1],
              [0, 1],
            ],
          },
        ],
      },
    },
    total: { text: 'TOTAL 15.90' },
  };
  assert.equal(renderResults(results), 'TOTAL 15.90\n');
  assert.equal(renderResults({ only: 'plain string' }), 'plain string\n');
  assert.equal(renderResults({}), '');
});

test('without a text at the end: one short line per step', () => {
  const out = renderResults({
    crop: { kind: 'image', width: 600, height: 45, channels: 3 },
    speech: { kind: 'audio', sample_rate: 16000, channels: 1, duration_s: 2.5 },
    probs: { kind: 'tensor', type: 'float32', dims: [1, 2], data: [0.25, 0.75] },
    net: { logits: { kind: 'tensor', type: 'float32', dims: [1, 1000], data: Array.from({ length: 1000 }, () => 0) } },
  });
  assert.deepEqual(out.trimEnd().split('\n'), [
    'crop    image 600x45, 3 channels',
    'speech  audio 2.5 s at 16000 Hz, 1 channel',
    'probs   float32 [1, 2] = [0.25, 0.75]',
    'net     {"logits":"float32 [1, 1000]: 1000 values (dw run --json shows them; result.save keeps them)"}',
  ]);
});

test('one step without text: its JSON, tensors by shape and long strings cut', () => {
  const out = renderResults({
    net: { out: { kind: 'tensor', type: 'int64', dims: [3, 4], data: Array.from({ length: 12 }, (_, i) => i) }, note: 'x'.repeat(5000) },
  });
  const parsed = JSON.parse(out);
  assert.equal(parsed.out, 'int64 [3, 4]: 12 values (dw run --json shows them; result.save keeps them)');
  assert.match(parsed.note, /^x{1000}… \(5000 characters; dw run --json shows them\)$/);
  assert.equal(
    summary({ type: 'float32', dims: [2], data_omitted: '70000 values; save the step' }),
    'float32 [2] (70000 values; save the step)',
  );
});
