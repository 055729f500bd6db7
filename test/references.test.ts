import { test } from 'node:test';
import assert from 'node:assert/strict';
import { collectReferences, jsonPath, parseReference, pickField, substitute } from '../src/workflow/references.js';

test('parses variable and previous_result references, with fields', () => {
  assert.deepEqual(parseReference('variable:image'), { kind: 'variable', name: 'image' });
  assert.deepEqual(parseReference('previous_result:read'), { kind: 'previous_result', step: 'read', field: [] });
  assert.deepEqual(parseReference('previous_result:read.lines.0.text'), {
    kind: 'previous_result',
    step: 'read',
    field: ['lines', '0', 'text'],
  });
  assert.equal(parseReference('plain text'), null);
  assert.equal(parseReference(42), null);
});

test('substitute replaces references deeply and leaves other values alone', () => {
  const vars: Record<string, unknown> = { a: 1, b: 'two' };
  const out = substitute({ x: 'variable:a', y: ['variable:b', 'lit', 3], z: { w: 'variable:a' }, n: null }, (ref, raw) =>
    ref.kind === 'variable' ? vars[ref.name] : raw,
  );
  assert.deepEqual(out, { x: 1, y: ['two', 'lit', 3], z: { w: 1 }, n: null });
});

test('collectReferences reports where each reference stands', () => {
  const refs = collectReferences({ items: ['previous_result:a', { t: 'variable:v' }] }, ['task', 'arguments']);
  assert.deepEqual(
    refs.map((r) => jsonPath(r.path)),
    ['$.task.arguments.items[0]', '$.task.arguments.items[1].t'],
  );
});

test('pickField follows objects and array indexes, undefined when missing', () => {
  const v = { lines: [{ text: 'a' }, { text: 'b' }] };
  assert.equal(pickField(v, ['lines', '1', 'text']), 'b');
  assert.equal(pickField(v, ['lines', '5', 'text']), undefined);
  assert.equal(pickField(v, ['nope']), undefined);
  assert.deepEqual(pickField(v, []), v);
});
