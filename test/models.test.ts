// The registry's policy with the runner replaced by a fake at its boundary (release / loaded).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { DwError } from '../src/protocol/errors.js';
import { ModelRegistry } from '../src/daemon/models.js';
import type { LoadedModelInfo } from '../src/runner/ipc.js';
import type { Plan } from '../src/workflow/plan.js';

const MB = 1048576;
const dir = mkdtempSync(join(tmpdir(), 'dwm-'));

function modelFile(name: string, size: number): string {
  const p = join(dir, name);
  writeFileSync(p, Buffer.alloc(size));
  return p;
}

function plan(...models: Array<{ key: string; path: string }>): Plan {
  return {
    workflow: { id: 'w', path: join(dir, 'w.json') },
    variables: {},
    steps: [
      {
        name: 's',
        kind: 'pipeline',
        type: 'paddle-ocr',
        models: models.map((m) => ({ role: m.key, kind: 'onnx' as const, ...m })),
        session: { providers: ['cpu'] },
        arguments: {},
        save: null,
      },
    ],
  };
}

/** A runner that "loads" whatever a run names, with the given measured costs. */
function harness(
  opts: {
    maxMemory?: number | null;
    budgetOf?: (runner: number) => { scope: string; bytes: number } | null;
    keepAliveMs?: number;
    costs?: Record<string, number>;
    loadMs?: Record<string, number>;
  } = {},
) {
  // What each runner of a pool of two holds; `held` is runner 0's.
  const pool = [new Map<string, LoadedModelInfo>(), new Map<string, LoadedModelInfo>()];
  const held = pool[0]!;
  const released: string[][] = [];
  const releasedBy: number[] = [];
  const registry = new ModelRegistry({
    release: async (runner, keys) => {
      released.push(keys);
      releasedBy.push(runner);
      keys.forEach((k) => pool[runner]!.delete(k));
    },
    loaded: async (runner) => [...pool[runner]!.values()],
    log: pino({ level: 'silent' }),
    budgetOf: opts.budgetOf ?? (() => (opts.maxMemory ? { scope: 'all', bytes: opts.maxMemory } : null)),
    keepAliveMs: opts.keepAliveMs ?? 60_000,
  });
  let clock = 1;
  /** A run of `p` on `runner`, as the scheduler makes it (replicas: without gathering its models in one runner). */
  const run = async (p: Plan, keepAlive?: number, runner = 0, replicas = false) => {
    if (!replicas)
      await registry.gather(
        p.steps[0]!.models.map((m) => m.key),
        runner,
      );
    const acquired = await registry.prepare(runner, p);
    for (const m of p.steps[0]!.models) {
      const prev = pool[runner]!.get(m.key);
      pool[runner]!.set(m.key, {
        key: m.key,
        path: m.path,
        provider: 'cpu',
        load_ms: opts.loadMs?.[m.key] ?? 10,
        cost_bytes: opts.costs?.[m.key] ?? MB,
        uses: (prev?.uses ?? 0) + 1,
        last_used: clock,
      });
    }
    clock += 1;
    await registry.finish(runner, p, acquired, keepAlive);
  };
  return { registry, held, pool, released, releasedBy, run };
}

test('records what a run loaded, with the measured cost, uses and keep-alive deadline', async () => {
  const a = { key: 'a', path: modelFile('a.onnx', 1000) };
  const h = harness({ costs: { a: 7 * MB } });
  await h.run(plan(a));
  await h.run(plan(a));
  const [m] = h.registry.snapshot();
  assert.equal(m!.cost_bytes, 7 * MB);
  assert.equal(m!.size_bytes, 1000);
  assert.equal(m!.uses, 2);
  assert.equal(m!.in_use, false);
  assert.ok(m!.expires_at! > Date.now() + 50_000);
  assert.deepEqual(m!.workflows, [join(dir, 'w.json')]);
});

test('keep-alive: 0 unloads right after the run, -1 pins, a short one expires', async () => {
  const a = { key: 'a', path: modelFile('a.onnx', 10) };
  const b = { key: 'b', path: modelFile('b.onnx', 10) };
  const c = { key: 'c', path: modelFile('c.onnx', 10) };
  const h = harness();
  await h.run(plan(a), 0);
  await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(h.released, [['a']]);
  await h.run(plan(b), -1);
  await h.run(plan(c), 30);
  await new Promise((r) => setTimeout(r, 120));
  assert.deepEqual(h.released, [['a'], ['c']]);
  assert.deepEqual(
    h.registry.snapshot().map((m) => [m.key, m.expires_at]),
    [['b', null]],
  );
});

test('a model in use never expires: its timer starts when its run ends', async () => {
  const a = { key: 'a', path: modelFile('a.onnx', 10) };
  const h = harness({ keepAliveMs: 30 });
  await h.run(plan(a));
  const acquired = await h.registry.prepare(0, plan(a));
  await new Promise((r) => setTimeout(r, 80));
  assert.deepEqual(h.released, [], 'pinned by the run in progress');
  await h.registry.finish(0, plan(a), acquired, undefined);
  await new Promise((r) => setTimeout(r, 80));
  assert.deepEqual(h.released, [['a']]);
});

test('budget: evicts idle models least recently used first, among equals the quickest to reload', async () => {
  const olds = ['slow', 'quick', 'mid'].map((k) => ({ key: k, path: modelFile(`${k}.onnx`, 10) }));
  const recent = { key: 'recent', path: modelFile('recent.onnx', 10) };
  const fresh = { key: 'fresh', path: modelFile('fresh.onnx', 5 * MB) }; // estimated at 2x its size: 10 MB
  const h = harness({
    maxMemory: 40 * MB,
    costs: { slow: 8 * MB, quick: 8 * MB, mid: 8 * MB, recent: 8 * MB },
    loadMs: { slow: 900, quick: 5, mid: 50 },
  });
  await h.run(plan(...olds));
  await h.run(plan(recent));
  // 32 MB used + 10 MB needed > 40 MB: free 2 MB at least: one model, the quickest of the three oldest.
  await h.run(plan(fresh));
  assert.deepEqual(h.released, [['quick']]);
  assert.match(h.registry.evictions[0]!.reason, /evicted to fit 10\.0 MB under the 40\.0 MB budget/);
  assert.deepEqual(
    h.registry
      .snapshot()
      .map((m) => m.key)
      .sort(),
    ['fresh', 'mid', 'recent', 'slow'],
  );
});

test('budget: a model that cannot fit even alone fails with DW_ERR_NO_MEMORY naming need and budget', async () => {
  const big = { key: 'big', path: modelFile('big.onnx', 8 * MB) };
  const h = harness({ maxMemory: 10 * MB });
  await assert.rejects(
    h.registry.prepare(0, plan(big)),
    (e: DwError) => e.code === 'DW_ERR_NO_MEMORY' && /16\.0 MB .* budget of 10\.0 MB/.test(e.message),
  );
});

test('budget: models in use are never evicted', async () => {
  const a = { key: 'a', path: modelFile('a.onnx', 10) };
  const b = { key: 'b', path: modelFile('b.onnx', 3 * MB) };
  const h = harness({ maxMemory: 10 * MB, costs: { a: 8 * MB } });
  await h.run(plan(a));
  // A run that uses a and needs b: a is pinned by this very run, so b cannot fit.
  await assert.rejects(
    h.registry.prepare(0, plan(a, b)),
    (e: DwError) =>
      e.code === 'DW_ERR_NO_MEMORY' &&
      /8\.0 MB are models this run uses as well \(a\.onnx\)/.test(e.message) &&
      !/other runs/.test(e.message) &&
      e.details!.in_use_bytes === 0,
  );
  assert.deepEqual(h.released, []);
  assert.equal(h.registry.snapshot()[0]!.in_use, false, 'a failed prepare unpins what it pinned');
});

test('invalidation drops idle sessions of other content now, running ones when their run ends; the run that loads the path again says why', async () => {
  const a = { key: 'aaa:o', path: modelFile('a.onnx', 10) };
  const h = harness();
  await h.run(plan(a));
  const acquired = await h.registry.prepare(0, plan(a));
  await h.registry.invalidate(a.path, ['aaa:o'], 'model file changed on disk');
  assert.deepEqual(h.released, [], 'in use: kept until the run ends');
  await h.registry.finish(0, plan(a), acquired, undefined);
  assert.deepEqual(h.released, [['aaa:o']]);
  const cache = (status: 'hit' | 'loaded', key: string) =>
    h.registry.noteModel(
      0,
      { step: 's', role: 'r', status, provider: 'cpu', load_ms: 1 },
      { key, path: a.path, role: 'r', session: { providers: ['cpu'] }, workflow: { id: 'w', path: 'w.json' } },
    );
  assert.deepEqual(cache('loaded', 'bbb:o'), {
    kind: 'cache',
    step: 's',
    role: 'r',
    path: a.path,
    status: 'invalidated',
    reason: 'model file changed on disk',
  });
  assert.equal(cache('loaded', 'bbb:o'), null, 'said once');
  // The file changed before the watcher noticed: the run that loads the new content says so itself.
  assert.match((cache('loaded', 'ccc:o') as { reason: string }).reason, /model file changed on disk \(sha256 bbb… → ccc…\)/);
  // A hit loads nothing again: a note waiting for the path is dropped, not shown.
  assert.deepEqual(await h.registry.invalidate(a.path, ['gone:o'], 'model file changed on disk'), [], 'no such session: nothing said');
  await h.registry.invalidate(a.path, ['bbb:o'], 'model file changed on disk');
  assert.equal(cache('hit', 'ccc:o'), null);
  assert.equal(cache('loaded', 'ccc:o'), null);
});

test('a watcher that confirms a change drops only sessions of other content, not one a run already loaded from the new file', async () => {
  const path = modelFile('m.onnx', 10);
  const h = harness();
  await h.run(plan({ key: 'old:o', path }));
  await h.run(plan({ key: 'new:o', path }));
  // The watcher hashed the file (new content) and names the sessions of other content.
  await h.registry.invalidate(path, ['old:o'], 'model file changed on disk');
  assert.deepEqual(h.released, [['old:o']]);
  assert.deepEqual(
    h.registry.snapshot().map((m) => m.key),
    ['new:o'],
  );
});

test('a run that fails with DW_ERR_NO_MEMORY leaves the models it touched with their keep-alive', async () => {
  const a = { key: 'a', path: modelFile('ka.onnx', 10) };
  const b = { key: 'b', path: modelFile('kb.onnx', 3 * MB) };
  const h = harness({ maxMemory: 10 * MB, keepAliveMs: 40, costs: { a: 8 * MB } });
  await h.run(plan(a));
  await assert.rejects(h.registry.prepare(0, plan(a, b)), (e: DwError) => e.code === 'DW_ERR_NO_MEMORY');
  const [m] = h.registry.snapshot();
  assert.equal(m!.in_use, false);
  assert.ok(m!.expires_at !== null, 'a keep-alive deadline again');
  await new Promise((r) => setTimeout(r, 100));
  assert.deepEqual(h.released, [['a']], 'and it does unload');
});

test("budget: evicts no more than needed; a model's cost is the largest of its measurements", async () => {
  // det (costly, slow to load) and cls (cheap, quick) were last used by the same run.
  const det = { key: 'det', path: modelFile('det.onnx', 10) };
  const cls = { key: 'cls', path: modelFile('cls.onnx', 10) };
  const vad = { key: 'vad', path: modelFile('vad.onnx', 5 * MB) }; // estimated 10 MB
  const h = harness({ maxMemory: 40 * MB, costs: { det: 33 * MB, cls: 3 * MB }, loadMs: { det: 100, cls: 5 } });
  await h.run(plan(det, cls));
  await h.run(plan(vad));
  // cls is chosen first (quickest to reload), then det; det alone frees enough, so cls stays.
  assert.deepEqual(h.released, [['det']]);
  // A reload measures less (memory the allocator kept): the figure stays the first, larger one.
  const h2 = harness({ costs: { cls: 3 * MB } });
  await h2.run(plan(cls));
  h2.held.get('cls')!.cost_bytes = 0;
  await h2.run(plan(cls));
  assert.equal(h2.registry.snapshot()[0]!.cost_bytes, 3 * MB);
});

test('reconciles with what the runner holds: a crash forgets everything', async () => {
  const a = { key: 'a', path: modelFile('a.onnx', 10) };
  const h = harness();
  await h.run(plan(a));
  h.held.clear();
  await h.run(plan({ key: 'b', path: modelFile('b.onnx', 10) }));
  assert.deepEqual(
    h.registry.snapshot().map((m) => m.key),
    ['b'],
  );
  h.registry.reset(0);
  assert.deepEqual(h.registry.snapshot(), []);
});

test('budget: models another lane is loading right now count against it', async () => {
  const a = { key: 'a', path: modelFile('a3.onnx', 3 * MB) };
  const b = { key: 'b', path: modelFile('b3.onnx', 3 * MB) };
  const h = harness({ maxMemory: 10 * MB });
  const acquired = await h.registry.prepare(0, plan(a)); // a is being loaded: about 6 MB
  await assert.rejects(h.registry.prepare(0, plan(b)), (e: DwError) => e.code === 'DW_ERR_NO_MEMORY');
  await h.registry.finish(0, plan(a), acquired, undefined);
  // That run ended without loading a (the fake runner holds nothing): its reservation is gone.
  await h.registry.prepare(0, plan(b));
});

test('pool: the budget covers every runner; the least recently used idle model goes, whichever runner holds it', async () => {
  const old = { key: 'old', path: modelFile('old1.onnx', 10) };
  const recent = { key: 'recent', path: modelFile('recent1.onnx', 10) };
  const fresh = { key: 'fresh', path: modelFile('fresh1.onnx', 3 * MB) }; // estimated at 6 MB
  const h = harness({ maxMemory: 20 * MB, costs: { old: 8 * MB, recent: 8 * MB, fresh: 8 * MB } });
  await h.run(plan(old), undefined, 1); // on runner 1
  await h.run(plan(recent), undefined, 0); // on runner 0
  assert.deepEqual(h.registry.runnersOf('old'), [1]);
  assert.deepEqual(h.registry.runnersOf('recent'), [0]);
  // 16 MB held across the two runners + about 6 MB for fresh do not fit under 20 MB: one model goes.
  await h.run(plan(fresh), undefined, 0);
  assert.deepEqual(h.released, [['old']], 'the older model, though on the other runner');
  assert.deepEqual(h.releasedBy, [1], 'released in the runner that held it');
  assert.deepEqual([...h.pool[1]!.keys()], []);
  assert.equal(h.registry.modelsOn(0), 2);
  assert.equal(h.registry.modelsOn(1), 0);
});

test('pool: a run placed on one runner takes its models from another (never loaded twice); a crash forgets only its runner', async () => {
  const a = { key: 'a', path: modelFile('pa.onnx', 10) };
  const b = { key: 'b', path: modelFile('pb.onnx', 10) };
  const h = harness();
  await h.run(plan(a), undefined, 0);
  await h.run(plan(b), undefined, 1);
  await h.run(plan(a, b), undefined, 0);
  assert.deepEqual(h.released, [['b']]);
  assert.deepEqual(h.releasedBy, [1]);
  assert.deepEqual(h.registry.evictions, [], 'moved, not evicted');
  assert.deepEqual(h.registry.runnersOf('b'), [0]);
  await h.run(plan({ key: 'c', path: modelFile('pc.onnx', 10) }), undefined, 1);
  h.registry.reset(1);
  assert.deepEqual(
    h.registry
      .snapshot()
      .map((m) => `${m.key}@${m.runner}`)
      .sort(),
    ['a@0', 'b@0'],
  );
});

test('per-GPU budgets (80%gpu): a GPU runner evicts only models of its own GPU; models on the CPU count against none', async () => {
  const gpus = [{ scope: 'cuda:0', bytes: 20 * MB }, { scope: 'cuda:1', bytes: 20 * MB }, null];
  const m = (k: string, size = 10) => ({ key: k, path: modelFile(`g${k}.onnx`, size) });
  const h = harness({ budgetOf: (r) => gpus[r] ?? null, costs: { a: 12 * MB, b: 12 * MB, c: 8 * MB, d: 8 * MB, big: 50 * MB } });
  h.pool.push(new Map());
  await h.run(plan(m('a')), undefined, 0);
  await h.run(plan(m('b')), undefined, 1);
  await h.run(plan(m('big', 10)), undefined, 2); // 50 MB on the CPU runner: no budget there
  // c on GPU 1 (estimated 6 MB, measured 8): 12 + 8 fits in 20 MB; d on GPU 1 then needs room.
  await h.run(plan(m('c', 3 * MB)), undefined, 1);
  assert.deepEqual(h.released, [], 'c fitted beside b');
  await h.run(plan(m('d', 3 * MB)), undefined, 1);
  assert.deepEqual(h.released, [['b']], 'the least recently used model of GPU 1, not a of GPU 0 (older)');
  assert.deepEqual(h.releasedBy, [1]);
  assert.match(h.registry.evictions[0]!.reason, /under the 20\.0 MB budget of cuda:1/);
  assert.deepEqual(h.registry.runnersOf('a'), [0], 'GPU 0 untouched');
  assert.deepEqual(h.registry.runnersOf('big'), [2]);
  assert.equal(h.registry.budgetTotal(3), 40 * MB, 'each GPU once');
  await assert.rejects(
    h.registry.prepare(0, plan(m('huge', 15 * MB))),
    (e: DwError) => e.code === 'DW_ERR_NO_MEMORY' && /budget of cuda:0 of 20\.0 MB/.test(e.message),
  );
});

test('replicas: one model in two runners is two entries, each with its own budget share, keep-alive and fate', async () => {
  const a = { key: 'ra', path: modelFile('ra.onnx', 10) };
  const h = harness({ maxMemory: 20 * MB, costs: { ra: 8 * MB } });
  await h.run(plan(a), undefined, 0);
  assert.equal(h.registry.fitsWithoutEviction(1, [a]), true, '8 MB held + 8 MB measured fit in 20 MB');
  await h.run(plan(a), undefined, 1, true);
  assert.deepEqual(h.registry.runnersOf('ra').sort(), [0, 1]);
  assert.deepEqual(h.released, [], 'the replica did not take the first copy away');
  assert.equal(h.registry.fitsWithoutEviction(2, [a]), false, 'a third copy would need an eviction');
  h.held.clear();
  h.registry.reset(0);
  assert.deepEqual(h.registry.runnersOf('ra'), [1], 'a crash of one runner leaves the other copy');
  assert.equal(h.registry.snapshot().length, 1);
});

test('a model that costs far more than estimated: once measured, idle models go until the budget holds again', async () => {
  const a = { key: 'ua', path: modelFile('ua.onnx', 10) };
  const b = { key: 'ub', path: modelFile('ub.onnx', MB) }; // estimated at 2 MB
  const h = harness({ maxMemory: 20 * MB, costs: { ua: 8 * MB, ub: 15 * MB } });
  await h.run(plan(a));
  await h.run(plan(b));
  assert.deepEqual(h.released, [['ua']], '8 + 15 MB measured > 20 MB: the idle one went');
  assert.match(h.registry.evictions[0]!.reason, /cost more than estimated, over the 20\.0 MB budget/);
  assert.deepEqual(
    h.registry.snapshot().map((m) => m.key),
    ['ub'],
  );
});
