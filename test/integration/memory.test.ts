// Model memory with the real OCR models and real file edits: invalidation by chokidar + sha256,
// keep-alive, the memory budget, dw clear and dw memory.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  dw,
  dwJson,
  eventually,
  MODELS,
  OCR_WORKFLOW,
  pluginWorkflow,
  SAMPLE,
  sandbox,
  spawnDw,
  startDaemon,
  tallImage,
  type Daemon,
  type Sandbox,
  withDaemon,
} from '../helpers/env.js';

const CLS = join(MODELS, 'ch_ppocr_mobile_v2.0_cls_infer.onnx');

/** The same model with a different doc_string: appending a field to a protobuf message is a valid merge. */
function variant(n: number): Buffer {
  const doc = Buffer.from(`dw test variant ${n}`);
  return Buffer.concat([readFileSync(CLS), Buffer.from([0x32, doc.length]), doc]);
}

/** A copy of workflows/ocr.json whose cls model is `cls` and whose other settings are overridden. */
function workflow(sb: Sandbox, name: string, cls: string, pipeline: Record<string, unknown> = {}): string {
  const wf = JSON.parse(readFileSync(OCR_WORKFLOW, 'utf8'));
  delete wf.$schema;
  wf.variables.image = SAMPLE;
  wf.steps[0].pipeline.models.cls = cls;
  Object.assign(wf.steps[0].pipeline, pipeline);
  const path = join(sb.dir, name);
  writeFileSync(path, JSON.stringify(wf, null, 2));
  return path;
}

async function memory(sb: Sandbox): Promise<any> {
  const r = await dwJson(sb, ['memory']);
  assert.equal(r.ran.code, 0, r.ran.stderr);
  return r.json;
}
const loadedPaths = async (sb: Sandbox) => (await memory(sb)).runners[0].models.map((m: any) => m.path);

describeWatcher();

function describeWatcher(): void {
  let sb: Sandbox;
  let d: Daemon;
  let cls: string;
  let wf: string;
  before(async () => {
    sb = sandbox();
    d = await startDaemon(sb);
    cls = join(sb.dir, 'cls.onnx');
    copyFileSync(CLS, cls);
    wf = workflow(sb, 'watched.json', './cls.onnx');
    const first = await dwJson(sb, ['run', wf]);
    assert.equal(first.ran.code, 0, first.ran.stderr);
  });
  after(async () => {
    await d.stop();
    sb.cleanup();
  });

  const edits: Array<[string, (n: number) => void]> = [
    ['replaced in place', (n) => writeFileSync(cls, variant(n))],
    [
      'renamed over atomically',
      (n) => {
        writeFileSync(`${cls}.tmp`, variant(n));
        renameSync(`${cls}.tmp`, cls);
      },
    ],
    [
      "rewritten by an editor's backup-and-write",
      (n) => {
        renameSync(cls, `${cls}~`);
        writeFileSync(cls, variant(n));
        unlinkSync(`${cls}~`);
      },
    ],
  ];
  edits.forEach(([how, edit], i) => {
    test(`a model file ${how} drops exactly its session before the next run, which says why`, async () => {
      assert.ok((await loadedPaths(sb)).includes(cls));
      edit(i + 1);
      await eventually('the cls session to be dropped', async () => !(await loadedPaths(sb)).includes(cls));
      const r = await dwJson(sb, ['run', wf]);
      assert.equal(r.ran.code, 0, r.ran.stderr);
      assert.deepEqual(
        r.json.models.map((m: any) => [m.role, m.cache]),
        [
          ['det', 'hit'],
          ['cls', 'loaded'],
          ['rec', 'hit'],
        ],
      );
      assert.match(r.ran.stderr, /read: cls reloaded: model file changed on disk \(sha256 \w+… → \w+…\)/);
      assert.match(d.log(), /"msg":"model file changed: sessions dropped"/);
    });
  });

  test('a model file rewritten with the same bytes keeps its session', async () => {
    writeFileSync(cls, readFileSync(cls));
    await eventually('the watcher to check the file', async () => d.log().includes('content unchanged: sessions kept'));
    const r = await dwJson(sb, ['run', wf]);
    assert.deepEqual(
      r.json.models.map((m: any) => m.cache),
      ['hit', 'hit', 'hit'],
    );
  });

  test('editing only variables of a watched workflow drops nothing', async () => {
    const body = JSON.parse(readFileSync(wf, 'utf8'));
    body.variables.min_score = 0.7;
    writeFileSync(wf, JSON.stringify(body, null, 2));
    await eventually('the watcher to see the workflow edit', async () => d.log().includes('workflow file changed'));
    const r = await dwJson(sb, ['run', wf]);
    assert.deepEqual(
      r.json.models.map((m: any) => m.cache),
      ['hit', 'hit', 'hit'],
    );
  });

  test('a run right after a change, before the watcher checked it, says the file changed; the run after that is a hit and says nothing', async () => {
    const confirmed = () => d.log().match(/"msg":"model file changed: sessions dropped"/g)?.length ?? 0;
    const before = confirmed();
    writeFileSync(cls, variant(10));
    const first = await dwJson(sb, ['run', wf]);
    assert.equal(first.ran.code, 0, first.ran.stderr);
    assert.equal(first.json.models[1].cache, 'loaded');
    assert.match(first.ran.stderr, /read: cls reloaded: model file changed on disk \(sha256 \w+… → \w+…\)/);
    await eventually('the watcher to confirm the change', async () => confirmed() > before);
    const second = await dwJson(sb, ['run', wf]);
    assert.deepEqual(
      second.json.models.map((m: any) => m.cache),
      ['hit', 'hit', 'hit'],
      'the session the first run loaded from the new file was kept',
    );
    assert.doesNotMatch(second.ran.stderr, /reloaded/);
  });

  test('a deleted model file drops its session and the next run fails with DW_ERR_MODEL_NOT_FOUND', async () => {
    unlinkSync(cls);
    await eventually('the cls session to be dropped', async () => !(await loadedPaths(sb)).includes(cls));
    const r = await dwJson(sb, ['run', wf]);
    assert.equal(r.ran.code, 3);
    assert.equal(r.json.error.code, 'DW_ERR_MODEL_NOT_FOUND');
    assert.match(d.log(), /"msg":"model file deleted: sessions dropped"/);
  });
}

test('keep-alive: a short one unloads idle models, -1 pins them, 0 unloads right after the run', async () => {
  await withDaemon(['--keep-alive', '400ms'], async (sb, d) => {
    assert.equal((await dw(sb, ['run', OCR_WORKFLOW, '-q'])).code, 0);
    await eventually('the idle models to unload', async () => (await loadedPaths(sb)).length === 0);
    assert.match(d.log(), /idle for its keep-alive of 400 ms/);

    assert.equal((await dw(sb, ['run', OCR_WORKFLOW, '-q', '--keep-alive', '-1'])).code, 0);
    const pinned = (await memory(sb)).runners[0].models;
    assert.deepEqual(
      pinned.map((m: any) => [m.keep_alive_ms, m.expires_at]),
      [
        [-1, null],
        [-1, null],
        [-1, null],
      ],
    );

    const wf = workflow(sb, 'other-opts.json', CLS, { options: { graph_optimization: 'basic' } });
    assert.equal((await dw(sb, ['run', wf, '-q', '--keep-alive', '0'])).code, 0);
    const after = (await memory(sb)).runners[0].models;
    assert.equal(after.length, 3, 'only the pinned models remain; the keep-alive 0 ones went with their run');
    assert.ok(after.every((m: any) => m.keep_alive_ms === -1));
  });
});

test('memory budget: idle models are evicted least recently used first; a run that cannot fit gets DW_ERR_NO_MEMORY', async () => {
  const sb = sandbox();
  const d = await startDaemon(sb, ['--max-memory', '40M']);
  try {
    // Each variant of the session options is another set of sessions of the same files. A set not
    // loaded yet is estimated at twice its files' size (about 31 MB), so 40 MB fits one set and
    // forces evictions as soon as the loaded ones measure more than about 9 MB.
    const variants = ['disabled', 'basic', 'extended'].flatMap((g) => [1, 2].map((t) => ({ graph_optimization: g, intra_op_threads: t })));
    const setOf = new Map<string, number>();
    let evictions: any[] = [];
    for (const [i, options] of variants.entries()) {
      const r = await dwJson(sb, ['run', workflow(sb, `v${i}.json`, CLS, { options })]);
      assert.equal(r.ran.code, 0, r.ran.stderr);
      r.json.models.forEach((m: any) => setOf.set(m.key, i));
      evictions = (await memory(sb)).evictions;
      if (evictions.length > 0) break;
    }
    assert.ok(evictions.length > 0, 'the budget forced an eviction');
    const m = await memory(sb);
    const remaining = m.runners[0].models.map((x: any) => setOf.get(x.key)!);
    const evicted = evictions.map((e: any) => setOf.get(e.key)!);
    assert.ok(Math.max(...evicted) <= Math.min(...remaining), `evicted sets ${evicted} are older than the remaining ${remaining}`);
    // Before a load (to fit its estimate), or after it (the measured cost was more than estimated).
    assert.match(evictions[0].reason, /(under|over) the 40\.0 MB budget \(least recently used first\)/);
    assert.match(d.log(), /"msg":"model evicted"/);
    assert.equal(m.budget.max_bytes, 40 * 1048576);
  } finally {
    await d.stop();
    sb.cleanup();
  }
  const tiny = sandbox();
  const t = await startDaemon(tiny, ['--max-memory', '1M']);
  try {
    const r = await dwJson(tiny, ['run', OCR_WORKFLOW]);
    assert.equal(r.ran.code, 6);
    assert.equal(r.json.error.code, 'DW_ERR_NO_MEMORY');
    assert.match(r.json.error.message, /needs about [\d.]+ MB .* budget of 1\.0 MB/);
  } finally {
    await t.stop();
    tiny.cleanup();
  }
});

test('dw clear: one model, a workflow, then everything with a fresh runner and the memory it freed', async () => {
  await withDaemon([], async (sb, d) => {
    assert.equal((await dw(sb, ['run', OCR_WORKFLOW, '-q'])).code, 0);
    const one = await dwJson(sb, ['clear', CLS]);
    assert.equal(one.ran.code, 0, one.ran.stderr);
    assert.deepEqual(
      one.json.released.map((x: any) => x.path),
      [CLS],
    );
    assert.equal((await loadedPaths(sb)).length, 2);

    const byWorkflow = await dwJson(sb, ['clear', OCR_WORKFLOW]);
    assert.equal(byWorkflow.json.released.length, 2);
    assert.deepEqual(await loadedPaths(sb), []);

    assert.equal((await dw(sb, ['run', OCR_WORKFLOW, '-q'])).code, 0);
    const before = await memory(sb);
    const all = await dw(sb, ['clear']);
    assert.equal(all.code, 0, all.stderr);
    assert.match(all.stdout, /runners replaced: released 3 sessions .* runners' rss [\d.]+ MB -> [\d.]+ MB, freed [\d.]+ MB/);
    const after = await memory(sb);
    assert.notEqual(after.runners[0].pid, before.runners[0].pid, 'a new runner process');
    assert.ok(after.runners[0].rss < before.runners[0].rss, `rss ${after.runners[0].rss} < ${before.runners[0].rss}`);
    assert.deepEqual(after.runners[0].models, []);
    const next = await dwJson(sb, ['run', OCR_WORKFLOW]);
    assert.deepEqual(
      next.json.models.map((x: any) => x.cache),
      ['loaded', 'loaded', 'loaded'],
    );
    assert.equal((await dwJson(sb, ['status'])).json.runners[0].restarts, 0, 'a clear is not a crash');
  });
});

test('dw clear of a model in use waits for its run, or fails at once with --no-wait', async () => {
  await withDaemon([], async (sb, d) => {
    const tall = await tallImage(sb, 6);
    const long = spawnDw(sb, ['run', OCR_WORKFLOW, '--arg', `image=${tall}`]);
    await long.stderrMatches(/read: \d+\/\d+ boxes/);
    const refused = await dwJson(sb, ['clear', CLS, '--no-wait']);
    assert.equal(refused.ran.code, 6);
    assert.deepEqual([refused.json.ok, refused.json.error.code], [false, 'DW_ERR_MODEL_IN_USE']);
    const waited = await dwJson(sb, ['clear', CLS]);
    const run = await long.done;
    assert.equal(run.code, 0, 'the run was not disturbed');
    assert.equal(waited.ran.code, 0);
    assert.match(waited.ran.stderr, /waiting for the runs using .*cls.* to end/, 'the wait is told, not silent');
    assert.deepEqual(
      waited.json.released.map((x: any) => x.path),
      [CLS],
    );
  });
});

test('dw memory shows daemon, host, runner, models and GPU facts, as text and as JSON', async () => {
  await withDaemon([], async (sb, d) => {
    await dw(sb, ['run', OCR_WORKFLOW, '-q']);
    const m = await memory(sb);
    assert.equal(m.daemon.pid, d.proc.pid);
    assert.ok(m.daemon.rss > 0 && m.host.total_mem > 0 && m.host.cpus > 0);
    assert.deepEqual(m.gpus, []);
    assert.match(m.gpu_note, /no GPU/);
    assert.equal(m.runs_total, 1);
    const r = m.runners[0];
    assert.equal(r.device, 'cpu');
    assert.ok(r.rss > 0);
    assert.deepEqual(
      r.models.map((x: any) => x.role),
      ['det', 'cls', 'rec'],
    );
    for (const x of r.models) {
      assert.equal(x.provider, 'cpu');
      assert.ok(x.size_bytes > 0 && x.cost_bytes >= 0 && x.uses === 1 && x.expires_at > Date.now());
      assert.deepEqual(x.workflows, [OCR_WORKFLOW]);
    }
    const text = await dw(sb, ['ps']);
    assert.equal(text.code, 0);
    assert.match(text.stdout, /^gpu {2}no GPU/m);
    assert.match(text.stdout, /MODEL +KEY +PROVIDER +SIZE +MEMORY +USES +LAST USED +UNLOADS/);
    assert.match(text.stdout, /ch_PP-OCRv4_det_infer\.onnx +[0-9a-f]{8} +cpu +[\d.]+ MB/);
  });
});

test('with --prewarm, a changed model file is loaded again in the background before any run asks', async () => {
  await withDaemon(['--prewarm'], async (sb, d) => {
    const cls = join(sb.dir, 'cls.onnx');
    copyFileSync(CLS, cls);
    const wf = workflow(sb, 'prewarm.json', cls);
    const first = await dwJson(sb, ['run', wf]);
    const oldKey = first.json.models.find((m: any) => m.role === 'cls').key;
    writeFileSync(cls, variant(9));
    const fresh = await eventually('the new cls session', async () =>
      (await memory(sb)).runners[0].models.find((m: any) => m.path === cls && m.key !== oldKey),
    );
    assert.equal(fresh.role, 'cls');
    assert.match(d.log(), /"msg":"model prewarmed after its file changed"/);
    const next = await dwJson(sb, ['run', wf]);
    assert.deepEqual(
      next.json.models.map((m: any) => [m.role, m.cache]),
      [
        ['det', 'hit'],
        ['cls', 'hit'],
        ['rec', 'hit'],
      ],
    );
    assert.equal(next.json.models[1].key, fresh.key);
  });
});

test('during a run dw memory shows the models it loaded with their cost and uses, and dw status counts the same', async () => {
  await withDaemon([], async (sb) => {
    const tall = await tallImage(sb, 16);
    const running = spawnDw(sb, ['run', OCR_WORKFLOW, '--arg', `image=${tall}`]);
    await running.stderrMatches(/read: \d+\/\d+ boxes/);
    const [mem, st] = await Promise.all([memory(sb), dwJson(sb, ['status'])]);
    const models = mem.runners[0].models;
    assert.equal(models.length, 3);
    assert.equal(st.json.models_loaded, models.length);
    for (const m of models) {
      assert.ok(m.uses >= 1, `${m.path}: ${m.uses} uses`);
      assert.ok(m.size_bytes > 0, `${m.path}: size ${m.size_bytes}`);
      assert.equal(m.in_use, true);
    }
    assert.ok(models.find((m: any) => m.path.endsWith('det_infer.onnx')).cost_bytes > 0, 'det measured at its load');
    assert.equal((await running.done).code, 0);
  });
});

test('--prewarm after a model file is replaced in the middle of a run: loaded beside that run, not after it; the next run is all hits', async () => {
  await withDaemon(['--prewarm'], async (sb, d) => {
    const cls = join(sb.dir, 'cls.onnx');
    copyFileSync(CLS, cls);
    const wf = workflow(sb, 'midrun.json', cls);
    assert.equal((await dwJson(sb, ['run', wf])).ran.code, 0);
    // A run that holds the cls session for 6 s, yielding all along.
    const hold = pluginWorkflow(
      sb.dir,
      'hold',
      `await ctx.session('cls');
      for (let i = 0; i < 120; i++) { ctx.signal.throwIfAborted(); ctx.progress(i, 120, 'ticks'); await new Promise((r) => setTimeout(r, 50)); }
      return 'held';`,
      { step: 'hold', roles: "[{ name: 'cls', kind: 'onnx', required: true }]", models: { cls: './cls.onnx' } },
    );
    const running = spawnDw(sb, ['run', hold]);
    await running.stderrMatches(/hold: \d+\/120 ticks/);
    writeFileSync(cls, variant(11));
    await eventually('the prewarm', async () => d.log().includes('"msg":"model prewarmed after its file changed"'));
    assert.equal(running.proc.exitCode, null, 'the run that uses the old file is still going');
    assert.equal((await running.done).code, 0);
    const next = await dwJson(sb, ['run', wf]);
    assert.deepEqual(
      next.json.models.map((m: any) => [m.role, m.cache]),
      [
        ['det', 'hit'],
        ['cls', 'hit'],
        ['rec', 'hit'],
      ],
    );
  });
});

test('a runner left holding far more than its models after a large input is replaced once idle, and its models loaded again', {
  timeout: 120_000,
}, async () => {
  await withDaemon(['--recycle-above', '200M'], async (sb, d) => {
    const wf = workflow(sb, 'large.json', CLS);
    const body = JSON.parse(readFileSync(wf, 'utf8'));
    body.variables.limit = 960;
    body.steps[0].pipeline.arguments.limit_side_len = 'variable:limit';
    writeFileSync(wf, JSON.stringify(body));
    const runnerPid = async () => (await dwJson(sb, ['status'])).json.runners[0].pid as number;
    assert.equal((await dwJson(sb, ['run', wf])).ran.code, 0);
    assert.equal((await dwJson(sb, ['run', wf])).ran.code, 0);
    const first = await runnerPid();
    await new Promise((r) => setTimeout(r, 3000));
    assert.equal(await runnerPid(), first, 'ordinary runs leave the runner alone');
    // At full resolution the detector's buffers grow by hundreds of megabytes, and stay.
    const big = await dwJson(sb, ['run', wf, '--arg', `image=${await tallImage(sb, 8)}`, '--arg', 'limit=4096']);
    assert.equal(big.ran.code, 0, big.ran.stderr);
    const peak = (await memory(sb)).runners[0].rss as number;
    const second = await eventually('the runner to be replaced', async () => (await runnerPid()) !== first && runnerPid());
    assert.match(d.log(), /"msg":"replacing the idle runner: it holds far more memory than its models"/);
    await eventually('its models loaded again', async () =>
      d.log().includes('"msg":"runner replaced: memory given back, models loaded again"'),
    );
    const after = await memory(sb);
    assert.equal(after.runners[0].pid, second);
    assert.equal(after.runners[0].models.length, 3, 'the models it held are loaded again');
    assert.ok(after.runners[0].rss < peak - 150 * 1048576, `memory given back: ${peak} -> ${after.runners[0].rss}`);
    assert.equal(after.runners[0].growth?.warning ?? null, null, 'no stale growth warning');
    const next = await dwJson(sb, ['run', wf]);
    assert.deepEqual(
      next.json.models.map((m: any) => m.cache),
      ['hit', 'hit', 'hit'],
    );
  });
});
