// The daemon validates with catalog.ts; the runner executes with registry.ts. They must agree.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PIPELINES, TASKS } from '../src/pipelines/catalog.js';
import { PIPELINE_IMPLS, TASK_IMPLS } from '../src/pipelines/registry.js';

test('every catalogued pipeline has an implementation with the same type and roles', async () => {
  assert.deepEqual(Object.keys(PIPELINE_IMPLS).sort(), Object.keys(PIPELINES).sort());
  for (const [type, info] of Object.entries(PIPELINES)) {
    const impl = await PIPELINE_IMPLS[type]!();
    assert.equal(impl.type, type);
    assert.deepEqual(impl.roles, info.roles, type);
  }
});

test('every catalogued task has an implementation that loads', async () => {
  assert.deepEqual(Object.keys(TASK_IMPLS).sort(), Object.keys(TASKS).sort());
  for (const [type, load] of Object.entries(TASK_IMPLS)) assert.equal(typeof (await load()), 'function', type);
});
