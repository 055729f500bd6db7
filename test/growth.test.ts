import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GrowthTracker } from '../src/daemon/growth.js';

const MB = 1048576;

test('warns once when warm runs of the same models grow past the threshold', () => {
  const g = new GrowthTracker(500 * MB);
  assert.equal(g.note(300 * MB, 1), null, 'the first run sets the baseline');
  assert.equal(g.note(700 * MB, 1), null, '400 MB is under the threshold');
  const w = g.note(900 * MB, 1);
  assert.match(w!, /grew by 600 MB .*\(from 300 MB to 900 MB\)/);
  assert.equal(g.note(1000 * MB, 1), null, 'logged once');
  assert.deepEqual(g.snapshot(), { baseline_rss: 300 * MB, latest_rss: 1000 * MB, warning: g.snapshot()!.warning });
  assert.match(g.snapshot()!.warning!, /grew by 700 MB .*\(from 300 MB to 1000 MB\)/, 'the warning shows the runner as it is now');
  assert.equal(g.note(320 * MB, 1), null);
  assert.equal(g.snapshot()!.warning, null, 'back under the threshold: no warning');
  assert.ok(g.note(900 * MB, 1), 'growing again is new again');
});

test('a change in the loaded models starts a new baseline', () => {
  const g = new GrowthTracker(100 * MB);
  g.note(300 * MB, 1);
  assert.equal(g.note(600 * MB, 2), null, 'a new model loaded: its memory is not growth');
  assert.equal(g.snapshot()!.baseline_rss, 600 * MB);
  assert.ok(g.note(800 * MB, 2));
  g.reset();
  assert.equal(g.snapshot(), null);
});
