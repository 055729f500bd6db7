// The scheduler as plain code: a fake pool of runners and a fake registry injected, timers mocked,
// so its decisions (placement, lanes, deadlines, abandon or kill, retry once) are checked fast and
// deterministically. The
// integration tests (crash.test.ts, concurrency.test.ts) run the same paths with real runners.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DwError } from '../src/protocol/errors.js';
import type { RunEvent } from '../src/protocol/messages.js';
import type { RunnerResult } from '../src/runner/ipc.js';
import { type Job, Scheduler, YIELD_GRACE_MS } from '../src/daemon/scheduler.js';
import type { SchedulerRegistry } from '../src/daemon/scheduler.js';
import type { Plan } from '../src/workflow/plan.js';

const RESULT: RunnerResult = { results: {}, models: [], outputs: [], steps: [], load_ms: 0, run_ms: 1, rss: 0 };

/** A runner that holds each run until the test settles it, and records what the scheduler asks of it. */
class FakeRunner {
  readonly device = 'cpu';
  readonly isReady = true;
  readonly calls: string[] = [];
  readonly runs = new Map<string, { resolve: (r: RunnerResult) => void; reject: (e: DwError) => void }>();
  /** What answers() says: the loop answers, with these runs inside a native call; null: it does not answer. */
  pong: { native: string[] } | null = { native: [] };

  run(id: string, _plan: Plan, _emit: unknown, cancelled: () => DwError | undefined): Promise<RunnerResult> {
    const reason = cancelled();
    if (reason) return Promise.reject(reason);
    this.calls.push(`run ${id}`);
    return new Promise((resolve, reject) => this.runs.set(id, { resolve, reject }));
  }
  has(id: string) {
    return this.runs.has(id);
  }
  cancel(id: string) {
    this.calls.push(`cancel ${id}`);
  }
  async answers() {
    return this.pong;
  }
  abandon(id: string, reason: DwError) {
    this.calls.push(`abandon ${id}`);
    this.settle(id)?.reject(reason);
  }
  kill(id: string, reason: DwError) {
    this.calls.push(`kill ${id}`);
    // A kill ends every run on the runner: the one killed for, with its reason; the others crashed.
    for (const other of [...this.runs.keys()])
      this.settle(other)?.reject(
        other === id ? reason : new DwError('DW_ERR_RUNNER_CRASHED', 'dwd killed the runner; it is being restarted'),
      );
  }
  status() {
    return {
      index: 0,
      device: 'cpu',
      pid: 1,
      state: 'ready' as const,
      restarts: 0,
      last_exit: null,
      crash_streak: 0,
      next_start_in_ms: null,
      frozen: false,
    };
  }
  settle(id: string) {
    const r = this.runs.get(id);
    this.runs.delete(id);
    return r;
  }
}

/** Where each model is loaded: a run's models are, once it ends, on the runner it ran on (too). */
function fakeRegistry() {
  const homes = new Map<string, Set<number>>();
  const loadMs = new Map<string, number>();
  const registry = {
    prepare: async (_runner: number, plan: Plan) => plan.steps.flatMap((s) => s.models.map((m) => m.key)),
    finish: async (runner: number, plan: Plan) => {
      for (const s of plan.steps) for (const m of s.models) homes.set(m.key, new Set([...(homes.get(m.key) ?? []), runner]));
    },
    noteModel: () => null,
    runnersOf: (key: string) => [...(homes.get(key) ?? [])],
    modelsOn: (runner: number) => [...homes.values()].filter((r) => r.has(runner)).length,
    gather: async () => {},
    loadMsOf: (key: string) => loadMs.get(key) ?? 0,
    fitsWithoutEviction: () => true,
  } satisfies SchedulerRegistry;
  return { registry, homes, loadMs };
}

function plan(key: string): Plan {
  return {
    workflow: { id: key, path: `/w/${key}.json` },
    variables: {},
    steps: [
      {
        name: 's',
        kind: 'pipeline',
        type: 'onnx',
        models: [{ role: 'model', kind: 'onnx', path: `/m/${key}.onnx`, key }],
        session: { providers: ['cpu'] },
        arguments: {},
        save: null,
      },
    ],
  };
}

function setup(parallel = 2, runners = 1, replicas = false) {
  const pool = Array.from({ length: runners }, () => new FakeRunner());
  const runner = pool[0]!;
  const { registry, homes, loadMs } = fakeRegistry();
  const scheduler = new Scheduler(pool, registry, { parallel, maxQueue: 8, replicas });
  const events = new Map<string, RunEvent[]>();
  const submit = (id: string, key: string, timeout_ms = 60_000) => {
    const controller = new AbortController();
    events.set(id, []);
    const job: Job = { id, plan: plan(key), controller, timeout_ms, emit: (e) => void events.get(id)!.push(e) };
    const done = scheduler.submit(job).then(
      (r) => ({ ok: true as const, r }),
      (e: DwError) => ({ ok: false as const, e }),
    );
    return { controller, done };
  };
  return { runner, pool, homes, loadMs, scheduler, events, submit };
}

/** Lets the scheduler's promise chains run. */
const settle = () => new Promise<void>((r) => setImmediate(r));

test('runs of different models take lanes side by side; a run of the same model waits, told its place', async () => {
  const { runner, events, submit } = setup();
  const a = submit('a', 'm1');
  const b = submit('b', 'm2');
  const c = submit('c', 'm1');
  await settle();
  assert.deepEqual(runner.calls, ['run a', 'run b']);
  assert.deepEqual(
    events.get('c')!.filter((e) => e.kind === 'queued'),
    [{ kind: 'queued', position: 1 }],
  );
  runner.settle('a')!.resolve(RESULT);
  await settle();
  assert.deepEqual(runner.calls, ['run a', 'run b', 'run c']);
  runner.settle('b')!.resolve(RESULT);
  runner.settle('c')!.resolve(RESULT);
  for (const r of [a, b, c]) assert.equal((await r.done).ok, true);
});

test('a queued run whose controller is aborted leaves the queue without ever reaching the runner', async () => {
  const { runner, submit } = setup(1);
  const a = submit('a', 'm1');
  const b = submit('b', 'm1');
  await settle();
  b.controller.abort(new DwError('DW_ERR_CANCELLED', 'the client disconnected'));
  const got = await b.done;
  assert.equal(got.ok, false);
  assert.equal(!got.ok && got.e.code, 'DW_ERR_CANCELLED');
  runner.settle('a')!.resolve(RESULT);
  await a.done;
  assert.deepEqual(runner.calls, ['run a'], 'b never ran');
});

test('past its deadline a run is cancelled; not yielding while its runner answers, it is abandoned, the runner kept', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout', 'setInterval'] });
  const { runner, submit } = setup();
  const a = submit('a', 'm1', 1000);
  await settle();
  t.mock.timers.tick(1000);
  assert.deepEqual(runner.calls, ['run a', 'cancel a']);
  t.mock.timers.tick(YIELD_GRACE_MS);
  await settle();
  assert.deepEqual(runner.calls, ['run a', 'cancel a', 'abandon a']);
  const got = await a.done;
  assert.equal(!got.ok && got.e.code, 'DW_ERR_TIMEOUT');
});

test('a run inside a native call, or a runner that does not answer, gets the runner killed; the other run on it is retried once and succeeds', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout', 'setInterval'] });
  for (const pong of [{ native: ['a'] }, null]) {
    const { runner, events, submit } = setup();
    runner.pong = pong;
    const a = submit('a', 'm1', 1000);
    const b = submit('b', 'm2');
    await settle();
    t.mock.timers.tick(1000);
    t.mock.timers.tick(YIELD_GRACE_MS);
    await settle();
    assert.deepEqual(runner.calls.slice(0, 4), ['run a', 'run b', 'cancel a', 'kill a'], JSON.stringify(pong));
    const ga = await a.done;
    assert.equal(!ga.ok && ga.e.code, 'DW_ERR_TIMEOUT');
    await settle();
    assert.deepEqual(runner.calls.at(-1), 'run b', 'b sent again');
    assert.deepEqual(
      events.get('b')!.filter((e) => e.kind === 'retry'),
      [{ kind: 'retry', reason: 'dwd killed the runner' }],
    );
    runner.settle('b')!.resolve(RESULT);
    assert.equal((await b.done).ok, true);
  }
});

test('a run whose runner dies twice under it fails with DW_ERR_RUNNER_CRASHED, saying it was retried', async () => {
  const { runner, events, submit } = setup();
  const a = submit('a', 'm1');
  for (let i = 0; i < 2; i++) {
    await settle();
    runner
      .settle('a')!
      .reject(new DwError('DW_ERR_RUNNER_CRASHED', 'the runner died during the run (killed by SIGKILL); it is being restarted'));
  }
  const got = await a.done;
  assert.equal(!got.ok && got.e.code, 'DW_ERR_RUNNER_CRASHED');
  assert.match(!got.ok ? got.e.message : '', /the run had been retried once already, so it is not tried again$/);
  assert.equal(events.get('a')!.filter((e) => e.kind === 'retry').length, 1);
  assert.deepEqual(runner.calls, ['run a', 'run a']);
});

test('a run cancelled while its runner restarts is not retried', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout', 'setInterval'] });
  const { runner, submit } = setup();
  const a = submit('a', 'm1');
  await settle();
  a.controller.abort(new DwError('DW_ERR_CANCELLED', 'the run was cancelled by the client'));
  runner.settle('a')!.reject(new DwError('DW_ERR_RUNNER_CRASHED', 'the runner died'));
  const got = await a.done;
  assert.equal(!got.ok && got.e.code, 'DW_ERR_RUNNER_CRASHED');
  assert.deepEqual(runner.calls, ['run a', 'cancel a'], 'not sent again');
});

test('pool: runs of models loaded nowhere spread over the runners; a run goes where its model is, and waits there rather than move', async () => {
  const { pool, homes, submit } = setup(1, 2);
  const a = submit('a', 'm1');
  const b = submit('b', 'm2');
  await settle();
  assert.deepEqual(
    pool.map((r) => r.calls),
    [['run a'], ['run b']],
    'the least busy runner',
  );
  pool[0]!.settle('a')!.resolve(RESULT);
  assert.equal((await a.done).ok, true);
  assert.deepEqual([...homes.get('m1')!], [0]);
  // Runner 0 is free, but m2 is on busy runner 1: a cache hit never moves, it waits.
  const c = submit('c', 'm2');
  await settle();
  assert.deepEqual(pool[0]!.calls, ['run a']);
  pool[1]!.settle('b')!.resolve(RESULT);
  assert.equal((await b.done).ok, true);
  await settle();
  assert.deepEqual(pool[1]!.calls, ['run b', 'run c']);
  pool[1]!.settle('c')!.resolve(RESULT);
  assert.equal((await c.done).ok, true);
  // Both idle, a new model: the runner holding fewer models (runner 0 holds m1, runner 1 holds m2: a tie, the first).
  homes.set('m3', new Set([1]));
  const d = submit('d', 'm4');
  await settle();
  assert.deepEqual(pool[0]!.calls, ['run a', 'run d'], 'runner 0 holds 1 model, runner 1 holds 2');
  pool[0]!.settle('d')!.resolve(RESULT);
  await d.done;
});

test('pool: a runner killed for a run that does not yield costs the runs on other runners nothing', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout', 'setInterval'] });
  const { pool, events, submit } = setup(2, 2);
  pool[0]!.pong = null;
  const a = submit('a', 'm1', 1000);
  const b = submit('b', 'm2');
  await settle();
  assert.deepEqual(
    pool.map((r) => r.calls),
    [['run a'], ['run b']],
  );
  t.mock.timers.tick(1000);
  t.mock.timers.tick(YIELD_GRACE_MS);
  await settle();
  assert.deepEqual(pool[0]!.calls, ['run a', 'cancel a', 'kill a']);
  assert.deepEqual(pool[1]!.calls, ['run b'], 'nothing asked of the other runner');
  assert.equal((await a.done).ok, false);
  pool[1]!.settle('b')!.resolve(RESULT);
  assert.equal((await b.done).ok, true);
  assert.deepEqual(
    events.get('b')!.filter((e) => e.kind === 'retry'),
    [],
  );
});

/** Two runners; m1 (a 500 ms load) held by runner 0 only; runs a and b of it submitted at once. */
async function busyHome(replicas: boolean) {
  const s = setup(2, 2, replicas);
  s.homes.set('m1', new Set([0]));
  s.loadMs.set('m1', 500);
  const a = s.submit('a', 'm1');
  const b = s.submit('b', 'm1');
  await settle();
  return { ...s, a, b };
}

test('replicas off: a model stays in one runner, its runs wait there however long', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout', 'setInterval', 'Date'] });
  const { pool, a, b } = await busyHome(false);
  t.mock.timers.tick(10_000);
  await settle();
  assert.deepEqual(
    pool.map((r) => r.calls),
    [['run a'], []],
  );
  pool[0]!.settle('a')!.resolve(RESULT);
  await settle();
  assert.deepEqual(pool[0]!.calls, ['run a', 'run b']);
  pool[0]!.settle('b')!.resolve(RESULT);
  for (const r of [a, b]) assert.equal((await r.done).ok, true);
});

test('replicas auto: a run that waited longer than its model takes to load goes to another runner, which loads it too', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout', 'setInterval', 'Date'] });
  const { pool, homes, submit, a, b } = await busyHome(true);
  assert.deepEqual(
    pool.map((r) => r.calls),
    [['run a'], []],
    'not before it has waited as long as a load takes',
  );
  t.mock.timers.tick(499);
  await settle();
  assert.deepEqual(pool[1]!.calls, []);
  t.mock.timers.tick(1);
  await settle();
  assert.deepEqual(pool[1]!.calls, ['run b'], 'a replica on the other runner');
  pool[1]!.settle('b')!.resolve(RESULT);
  assert.equal((await b.done).ok, true);
  assert.deepEqual([...homes.get('m1')!].sort(), [0, 1]);
  // Now both hold it: the next run goes at once to the free one.
  const c = submit('c', 'm1');
  await settle();
  assert.deepEqual(pool[1]!.calls, ['run b', 'run c']);
  pool[0]!.settle('a')!.resolve(RESULT);
  pool[1]!.settle('c')!.resolve(RESULT);
  for (const r of [a, c]) assert.equal((await r.done).ok, true);
});

test('replicas auto: a model loaded nowhere is never loaded twice at once; the second run waits for the first load', async () => {
  const { pool, submit } = setup(2, 2, true);
  const a = submit('a', 'm9');
  const b = submit('b', 'm9');
  await settle();
  assert.deepEqual(
    pool.map((r) => r.calls),
    [['run a'], []],
  );
  pool[0]!.settle('a')!.resolve(RESULT);
  await settle();
  assert.deepEqual(pool[0]!.calls, ['run a', 'run b'], 'then a cache hit where it was loaded');
  pool[0]!.settle('b')!.resolve(RESULT);
  for (const r of [a, b]) assert.equal((await r.done).ok, true);
});

test('replicas auto: a waiting dw clear of a model holds back later runs of it on every copy, and none runs while it clears', async () => {
  const { pool, homes, scheduler, submit } = setup(2, 2, true);
  homes.set('m1', new Set([0, 1]));
  const a = submit('a', 'm1');
  await settle();
  let finishClear!: () => void;
  const steps: string[] = [];
  const clear = scheduler.whenFree('clear', ['m1'], () => {
    steps.push('clear');
    return new Promise<void>((r) => (finishClear = r));
  });
  const b = submit('b', 'm1');
  await settle();
  assert.deepEqual(
    pool.map((r) => r.calls),
    [['run a'], []],
    'b does not overtake the clear on the free copy',
  );
  assert.equal(scheduler.queued, 1, 'dw status counts the waiting run b, not the waiting clear');
  pool[0]!.settle('a')!.resolve(RESULT);
  await settle();
  assert.deepEqual(steps, ['clear']);
  assert.deepEqual(
    pool.map((r) => r.calls),
    [['run a'], []],
    'nothing runs on m1 while it is cleared',
  );
  finishClear();
  await clear;
  await settle();
  assert.equal(pool[0]!.calls.length + pool[1]!.calls.length, 2, 'b ran once the clear was done');
  for (const r of pool) for (const id of [...r.runs.keys()]) r.settle(id)!.resolve(RESULT);
  for (const r of [a, b]) assert.equal((await r.done).ok, true);
});

test('replicas auto: a runner holding some of the models (a clear took the rest) loads what it lacks, rather than all runs queue on one runner', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout', 'setInterval', 'Date'] });
  const { pool, homes, loadMs, scheduler } = setup(2, 2, true);
  homes.set('det', new Set([1]));
  homes.set('rec', new Set([0, 1]));
  loadMs.set('det', 50);
  const two = (id: string) => {
    const p = plan('det');
    p.steps[0]!.models.push({ role: 'rec', kind: 'onnx', path: '/m/rec.onnx', key: 'rec' });
    const controller = new AbortController();
    return scheduler.submit({ id, plan: p, controller, timeout_ms: 60_000, emit: () => {} });
  };
  const a = two('a');
  const b = two('b');
  await settle();
  assert.deepEqual(
    pool.map((r) => r.calls),
    [[], ['run a']],
    'the runner holding both',
  );
  t.mock.timers.tick(50);
  await settle();
  assert.deepEqual(pool[0]!.calls, ['run b'], 'after a load time, the runner with rec takes it and loads det');
  pool[1]!.settle('a')!.resolve(RESULT);
  pool[0]!.settle('b')!.resolve(RESULT);
  await Promise.all([a, b]);
});
