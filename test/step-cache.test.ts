// The step cache's key: what changes it (content, not paths; the code's version of a step; an
// upstream value by one element) and what does not.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { TASKS } from '../src/pipelines/catalog.js';
import { type CacheNote, notCached, StepCache, stepKey } from '../src/runner/step-cache.js';
import type { PlanStep } from '../src/workflow/plan.js';

/** Runs `fn` in a fresh temporary folder, removed after. */
async function inTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'dw-cache-'));
  try {
    await fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const step = (type: string, args: Record<string, unknown>, extra: Partial<PlanStep> = {}): PlanStep => ({
  name: 's',
  kind: 'task',
  type,
  models: [],
  session: { providers: ['cpu'] },
  arguments: args,
  save: null,
  ...extra,
});

test('input files count by their bytes: another path with the same bytes is the same key, one byte more is another', () =>
  inTempDir(async (dir) => {
    const a = join(dir, 'a.wav');
    const b = join(dir, 'b.wav');
    writeFileSync(a, 'RIFF-same-bytes');
    writeFileSync(b, 'RIFF-same-bytes');
    const key = (p: string) => stepKey(step('audio_load', { audio: p }), { audio: p });
    assert.equal(await key(a), await key(b));
    writeFileSync(b, 'RIFF-same-bytes!');
    assert.notEqual(await key(a), await key(b));
  }));

test("a step type's version is in the key: results of older code are not served after an upgrade", async () => {
  const s = step('text_template', { template: '{x}', values: { x: 1 } });
  const before = await stepKey(s, s.arguments);
  const info = TASKS.text_template!;
  const was = info.version;
  info.version = (was ?? 1) + 1;
  try {
    assert.notEqual(await stepKey(s, s.arguments), before);
  } finally {
    info.version = was;
  }
  assert.equal(await stepKey(s, s.arguments), before);
});

test('a value from an earlier step counts by its content: one element of a tensor changed is another key', async () => {
  const s = step('json_pick', { value: 'previous_result:x', path: 'data' });
  const tensor = (v: number) => ({ kind: 'tensor', type: 'float32', dims: [4], data: new Float32Array([1, 2, 3, v]) });
  const k = (v: number) => stepKey(s, { value: tensor(v), path: 'data' });
  assert.equal(await k(4), await k(4));
  assert.notEqual(await k(4), await k(4.0001));
});

test('models count by their keys, and the arguments as resolved', async () => {
  const m = (key: string) =>
    step('paddle-ocr', { min_score: 0.5 }, { kind: 'pipeline', models: [{ role: 'det', kind: 'onnx', path: '/same/path.onnx', key }] });
  assert.notEqual(await stepKey(m('k1'), { min_score: 0.5 }), await stepKey(m('k2'), { min_score: 0.5 }));
  assert.notEqual(await stepKey(m('k1'), { min_score: 0.5 }), await stepKey(m('k1'), { min_score: 0.6 }));
});

test('what is cached: deterministic steps unless "cache": false; a seedless generation or a plugin only with "cache": true', () => {
  assert.equal(notCached(step('text_template', {}), {}), null);
  assert.match(String(notCached(step('text_template', {}, { cache: false }), {})), /"cache" is false/);
  const sd = step('stable-diffusion', {}, { kind: 'pipeline' });
  assert.match(String(notCached(sd, { prompt: 'x' })), /not deterministic/);
  assert.equal(notCached(sd, { prompt: 'x', seed: 42 }), null);
  assert.equal(notCached({ ...sd, cache: true }, { prompt: 'x' }), null);
  const plugin = step('./p.mjs', {}, { kind: 'pipeline', module: { path: '/p.mjs', key: 'k' } });
  assert.match(String(notCached(plugin, {})), /not deterministic/);
  assert.equal(notCached({ ...plugin, cache: true }, {}), null);
  assert.match(String(notCached(step('sub.json', {}, { kind: 'workflow' }), {})), /sub-workflow/);
});

test('a result that cannot be stored (its place taken, a full disk) is a miss all the same, and says why', () =>
  inTempDir(async (dir) => {
    const notes: CacheNote[] = [];
    const cache = new StepCache(dir, new AbortController().signal, (n) => notes.push(n));
    const key = 'ab'.padEnd(64, '0');
    assert.equal(await cache.claim(key), null, 'nothing stored: this run computes');
    // A folder with something in it where the entry goes: the rename into place fails.
    mkdirSync(join(dir, 'ab', key, 'in-the-way'), { recursive: true });
    const why = await cache.put(key, { text: 'read' }, 12);
    assert.match(String(why), /^(EISDIR|ENOTEMPTY|EEXIST)$/);
    assert.deepEqual(notes, [{ state: 'miss', bytes: 0, entries: 0 }]);
    assert.deepEqual(readdirSync(join(dir, 'ab')), [key], 'no temporary file or lock left');
    // One that would not come back as it is: not stored, not a failure, a miss.
    assert.equal(await cache.claim('cd'.padEnd(64, '0')), null);
    assert.equal(await cache.put('cd'.padEnd(64, '0'), new (class Box {})(), 1), null);
    assert.equal(notes.length, 2);
    assert.equal(notes[1]!.state, 'miss');
  }));

test('two runs of one runner storing one key at once each write their own file aside: neither fails the other', () =>
  inTempDir(async (dir) => {
    const key = 'ef'.padEnd(64, '0');
    const value = { data: new Float32Array(4_000_000).fill(0.5) };
    const [a, b] = [0, 1].map(() => new StepCache(dir, new AbortController().signal));
    assert.deepEqual(await Promise.all([a!.put(key, value, 1), b!.put(key, value, 1)]), [null, null]);
    assert.deepEqual(readdirSync(join(dir, 'ef')), [key]);
    assert.deepEqual((await a!.get(key))?.value, value);
  }));

test('a named pipe in place of a lock has no holder: it is taken over at once, nobody waited for', () =>
  inTempDir(async (dir) => {
    const key = 'fa'.padEnd(64, '0');
    mkdirSync(join(dir, 'fa'));
    execFileSync('mkfifo', [join(dir, 'fa', `${key}.lock`)]);
    const waited: number[] = [];
    const cache = new StepCache(dir, new AbortController().signal);
    assert.equal(await cache.claim(key, (pid) => waited.push(pid)), null, 'this run computes');
    assert.deepEqual(waited, []);
    assert.ok(statSync(join(dir, 'fa', `${key}.lock`)).isFile(), 'its own lock now');
    await cache.release(key);
  }));
