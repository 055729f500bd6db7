// A daemon with two runners, real processes: placement by model, a runner killed for real while
// the other runs another model, Ctrl-C on a run that does not yield, one budget across both,
// replicas, dw clear of one model beside other runs, and a runner stopped by a signal.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { encodeWav } from '../../src/media/audio.js';
import {
  dw,
  dwJson,
  OCR_WORKFLOW,
  pluginWorkflow,
  ROOT,
  type Sandbox,
  spawnDw,
  withDaemon,
  type Daemon,
  tallImage,
} from '../helpers/env.js';

const VAD_WORKFLOW = join(ROOT, 'workflows', 'vad.json');

/** A daemon with two runners for the length of `fn`. */
const withPool = <T>(args: string[], fn: (sb: Sandbox, d: Daemon) => Promise<T>) => withDaemon(args, fn, 2);

const memory = async (sb: Sandbox) => (await dwJson(sb, ['memory'])).json;

/** The index of the runner holding a model whose path ends so; -1 if none does. */
const holder = (m: any, suffix: string): number => m.runners.findIndex((r: any) => r.models.some((x: any) => x.path.endsWith(suffix)));

/** `minutes` of quiet noise at 16 kHz: a VAD run of a few seconds (about 1900 model calls a minute). */
function noise(sb: Sandbox, minutes: number): string {
  const n = 16000 * 60 * minutes;
  const samples = new Float32Array(n);
  let seed = 11;
  for (let i = 0; i < n; i++) samples[i] = ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648 - 0.5) * 0.01;
  const file = join(sb.dir, `noise${minutes}.wav`);
  writeFileSync(file, encodeWav({ kind: 'audio', samples, sample_rate: 16000, channels: 1 }));
  return file;
}

test('placement: a model loaded nowhere goes to the runner holding fewer models; its next run goes where it is', async () => {
  await withPool([], async (sb) => {
    const ocr = await dwJson(sb, ['run', OCR_WORKFLOW]);
    assert.equal(ocr.ran.code, 0, ocr.ran.stderr);
    const vad = await dwJson(sb, ['run', VAD_WORKFLOW]);
    assert.equal(vad.ran.code, 0, vad.ran.stderr);
    let m = await memory(sb);
    assert.equal(m.runners.length, 2);
    const ocrAt = holder(m, '_det_infer.onnx');
    const vadAt = holder(m, 'silero_vad.onnx');
    assert.ok(ocrAt >= 0 && vadAt >= 0, JSON.stringify(m.runners.map((r: any) => r.models.map((x: any) => x.path))));
    assert.notEqual(ocrAt, vadAt, 'the VAD model went to the runner without models');
    assert.equal(m.runners[ocrAt].models.length, 3);
    for (let i = 0; i < 2; i++) {
      const again = await dwJson(sb, ['run', OCR_WORKFLOW]);
      assert.deepEqual(
        again.json.models.map((x: any) => x.cache),
        ['hit', 'hit', 'hit'],
      );
    }
    m = await memory(sb);
    assert.equal(holder(m, '_det_infer.onnx'), ocrAt, 'a cache hit never moves');
    assert.equal(m.runners[vadAt].models.length, 1, 'never loaded twice');
    const status = await dw(sb, ['status']);
    assert.match(status.stdout, /^runner 0 on cpu: ready, pid \d+; \d models?$/m);
    assert.match(status.stdout, /^runner 1 on cpu: ready, pid \d+; \d models?$/m);
  });
});

test('kill -9 of one runner mid-run: the run on the other runner never notices and its models stay; the killed run is retried and succeeds', async () => {
  await withPool([], async (sb, d) => {
    const tall = await tallImage(sb, 8);
    const audio = noise(sb, 10);
    assert.equal((await dw(sb, ['run', OCR_WORKFLOW, '-q'])).code, 0);
    assert.equal((await dw(sb, ['run', VAD_WORKFLOW, '-q'])).code, 0);
    const before = await memory(sb);
    const ocrAt = holder(before, '_det_infer.onnx');
    const vadAt = 1 - ocrAt;
    assert.equal(holder(before, 'silero_vad.onnx'), vadAt);

    const vad = spawnDw(sb, ['run', VAD_WORKFLOW, '--arg', `audio=${audio}`, '--json']);
    await vad.stderrMatches(/speech: \d+\/\d+ frames/);
    const ocr = spawnDw(sb, ['run', OCR_WORKFLOW, '--arg', `image=${tall}`, '--json']);
    await ocr.stderrMatches(/read: \d+\/\d+ boxes/);
    process.kill(before.runners[ocrAt].pid, 'SIGKILL');

    const [rv, ro] = await Promise.all([vad.done, ocr.done]);
    assert.equal(ro.code, 0, ro.stderr);
    assert.match(ro.stderr, /the runner died during the run \(killed by SIGKILL\); running the run again on a fresh runner/);
    assert.equal(rv.code, 0, rv.stderr);
    assert.doesNotMatch(rv.stderr, /running the run again|runner died/, 'the other runner never noticed');
    const after = await memory(sb);
    assert.equal(after.runners[vadAt].pid, before.runners[vadAt].pid, 'the same process');
    assert.ok(
      after.runners[vadAt].models.some((x: any) => x.path.endsWith('silero_vad.onnx')),
      'its model still loaded',
    );
    assert.notEqual(after.runners[ocrAt].pid, before.runners[ocrAt].pid);
    const st = (await dwJson(sb, ['status'])).json;
    assert.equal(st.runners[ocrAt].restarts, 1);
    assert.equal(st.runners[vadAt].restarts, 0);
    assert.equal(st.pid, d.proc.pid);
  });
});

test('a run that crashes its runner twice fails alone; Ctrl-C on a run that does not yield fails no other client’s run', async () => {
  await withPool([], async (sb) => {
    const audio = noise(sb, 10);
    assert.equal((await dw(sb, ['run', VAD_WORKFLOW, '-q'])).code, 0);
    const crasher = pluginWorkflow(sb.dir, 'crasher', `process.kill(process.pid, 'SIGKILL'); await new Promise(() => {});`);
    const blocker = pluginWorkflow(
      sb.dir,
      'blocker',
      `ctx.progress(0, 1, 'blocking'); await new Promise((r) => setTimeout(r, 50)); const t = Date.now(); while (Date.now() - t < 120000) {} return 'never';`,
    );

    // The VAD run holds its runner; the plugin runs (no models) go to the other, the least busy.
    const vad = spawnDw(sb, ['run', VAD_WORKFLOW, '--arg', `audio=${audio}`, '--json']);
    await vad.stderrMatches(/speech: \d+\/\d+ frames/);
    const crashed = await dwJson(sb, ['run', crasher]);
    assert.equal(crashed.json.error.code, 'DW_ERR_RUNNER_CRASHED');
    assert.match(crashed.json.error.message, /the run had been retried once already, so it is not tried again/);

    const blocked = spawnDw(sb, ['run', blocker]);
    await blocked.stderrMatches(/blocking/);
    blocked.proc.kill('SIGINT');
    const rb = await blocked.done;
    assert.equal(rb.code, 130, rb.stderr);

    const rv = await vad.done;
    assert.equal(rv.code, 0, rv.stderr);
    assert.doesNotMatch(rv.stderr, /running the run again|runner died|killed the runner/);
    const st = (await dwJson(sb, ['status'])).json;
    const vadAt = holder(await memory(sb), 'silero_vad.onnx');
    assert.equal(st.runners[vadAt].restarts, 0, 'the VAD runner was never touched');
    assert.equal(st.runners[1 - vadAt].restarts, 3, 'two crashes, then a kill');
    assert.equal(st.runners[1 - vadAt].last_exit, 'killed by dwd: a run did not yield');
  });
});

test('one budget across both runners: the least recently used idle model is evicted from whichever runner holds it', async () => {
  // What OCR and VAD cost here, measured, to set a budget 10 MB above them.
  const used = await withPool([], async (sb) => {
    assert.equal((await dw(sb, ['run', OCR_WORKFLOW, '-q'])).code, 0);
    assert.equal((await dw(sb, ['run', VAD_WORKFLOW, '-q'])).code, 0);
    return (await memory(sb)).budget.used_bytes as number;
  });
  const budget = used + 10 * 1048576;
  await withPool(['--max-memory', String(budget)], async (sb) => {
    // The same OCR files with other session options: three new sessions, estimated at twice their
    // 15.4 MB of files: no room for them under the budget without evicting.
    const wf = JSON.parse(readFileSync(OCR_WORKFLOW, 'utf8'));
    delete wf.$schema;
    wf.variables.image = join(ROOT, 'workflows', 'samples', 'receipt.png');
    wf.steps[0].pipeline.options = { graph_optimization: 'basic' };
    const other = join(sb.dir, 'other.json');
    writeFileSync(other, JSON.stringify(wf));
    assert.equal((await dw(sb, ['run', OCR_WORKFLOW, '-q'])).code, 0);
    assert.equal((await dw(sb, ['run', VAD_WORKFLOW, '-q'])).code, 0);
    const was = await memory(sb);
    const ocrAt = holder(was, '_det_infer.onnx');
    const vadAt = holder(was, 'silero_vad.onnx');
    assert.notEqual(ocrAt, vadAt);
    const r = await dwJson(sb, ['run', other]);
    assert.equal(r.ran.code, 0, r.ran.stderr);
    const now = await memory(sb);
    assert.ok(now.evictions.length > 0, 'something was evicted');
    for (const e of now.evictions) assert.match(e.path, /ocr-models/, 'the OCR models were used least recently, not the VAD one');
    const evicted = new Set(now.evictions.map((e: any) => e.key));
    assert.ok(
      was.runners[ocrAt].models.some((x: any) => evicted.has(x.key)),
      'evicted from the OCR runner, though the run went to the other',
    );
    assert.equal(now.runners[ocrAt].models.filter((x: any) => evicted.has(x.key)).length, 0, 'and released there');
    assert.ok(
      now.runners[vadAt].models.some((x: any) => x.path.endsWith('silero_vad.onnx')),
      'the VAD model, used more recently, stays',
    );
    assert.equal(now.runners[vadAt].models.length, 4, 'the new sessions went beside it: the runner with fewer models');
  });
});

test('--replicas auto: a run that waits longer than its models take to load gets them loaded in the other runner', async () => {
  await withPool(['--replicas', 'auto'], async (sb) => {
    const tall = await tallImage(sb, 8);
    assert.equal((await dw(sb, ['run', OCR_WORKFLOW, '-q'])).code, 0);
    const home = holder(await memory(sb), '_det_infer.onnx');
    const finished: string[] = [];
    const long = spawnDw(sb, ['run', OCR_WORKFLOW, '--arg', `image=${tall}`, '--json']);
    long.done.then(() => finished.push('long'));
    await long.stderrMatches(/read: \d+\/\d+ boxes/);
    const second = await dwJson(sb, ['run', OCR_WORKFLOW]);
    finished.push('second');
    assert.equal(second.ran.code, 0, second.ran.stderr);
    assert.deepEqual(
      second.json.models.map((m: any) => m.cache),
      ['loaded', 'loaded', 'loaded'],
      'loaded afresh in the other runner',
    );
    assert.equal((await long.done).code, 0);
    assert.deepEqual(finished, ['second', 'long'], 'it did not wait for the long run');
    const m = await memory(sb);
    for (const r of m.runners)
      assert.equal(r.models.filter((x: any) => x.path.endsWith('_det_infer.onnx')).length, 1, `runner ${r.index} holds a copy`);
    assert.notEqual(home, -1);
  });
});

test('dw clear FILE waits only for runs of that model: a long run of another model on the other runner does not hold it', async () => {
  await withPool([], async (sb) => {
    const audio = noise(sb, 10);
    assert.equal((await dw(sb, ['run', OCR_WORKFLOW, '-q'])).code, 0);
    assert.equal((await dw(sb, ['run', VAD_WORKFLOW, '-q'])).code, 0);
    const vad = spawnDw(sb, ['run', VAD_WORKFLOW, '--arg', `audio=${audio}`]);
    await vad.stderrMatches(/speech: \d+\/\d+ frames/);
    const det = join(ROOT, 'node_modules', '@gutenye', 'ocr-models', 'assets', 'ch_PP-OCRv4_det_infer.onnx');
    const cleared = await dw(sb, ['clear', '--no-wait', det]);
    assert.equal(cleared.code, 0, cleared.stderr);
    assert.match(cleared.stdout, /released 1 session \(ch_PP-OCRv4_det_infer\.onnx\)/);
    assert.equal(vad.proc.exitCode, null, 'done while the VAD run still runs');
    const busy = await dw(sb, ['clear', '--no-wait', join(ROOT, 'node_modules', '@ricky0123', 'vad-node', 'dist', 'silero_vad.onnx')]);
    assert.equal(busy.code, 6, 'the model in use: --no-wait refuses');
    assert.equal((await vad.done).code, 0);
  });
});

test('a runner stopped by a signal gets no new run: it goes to the other runner', async () => {
  await withPool([], async (sb) => {
    assert.equal((await dw(sb, ['run', OCR_WORKFLOW, '-q'])).code, 0);
    const st = (await dwJson(sb, ['status'])).json;
    const idle = st.runners.find((r: any) => r.models === 0);
    assert.ok(idle, JSON.stringify(st.runners));
    const busyAt = 1 - idle.index;
    process.kill(idle.pid, 'SIGSTOP');
    try {
      const plugin = pluginWorkflow(sb.dir, 'hello', `return 'hello';`);
      const r = await dwJson(sb, ['run', plugin]);
      assert.equal(r.ran.code, 0, r.ran.stderr);
      assert.equal(r.json.results.x, 'hello');
      const after = (await dwJson(sb, ['status'])).json;
      assert.equal(after.runners[idle.index].frozen, true);
      assert.equal(after.runs_total, 2);
      assert.ok(after.runners[busyAt].pid, 'ran on the other runner');
      const mem = await memory(sb);
      assert.equal(mem.runners[idle.index].frozen, true, 'dw memory says so, without waiting for it');
    } finally {
      process.kill(idle.pid, 'SIGCONT');
    }
  });
});
