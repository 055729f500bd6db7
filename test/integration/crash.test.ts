// A runner killed for real: its runs are run again on a fresh runner (once: a run that takes down two
// runners fails with DW_ERR_RUNNER_CRASHED), the daemon carries on, a new runner loads what the old
// one held, and the next run hits the cache without asking. A run that does not yield costs only itself.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, existsSync, openSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  alive,
  dw,
  dwJson,
  eventually,
  OCR_WORKFLOW,
  pluginWorkflow,
  SAMPLE,
  slowWorkflow,
  spawnDw,
  tallImage,
  withDaemon,
} from '../helpers/env.js';
import { slowClassifier } from '../helpers/onnx.js';

test('SIGKILL of the runner mid-run: that run is run again on a fresh runner and succeeds; the models come back, the next run hits', async () => {
  await withDaemon([], async (sb, d) => {
    const tall = await tallImage(sb, 6);
    assert.equal((await dw(sb, ['run', OCR_WORKFLOW, '-q'])).code, 0);
    const before = (await dwJson(sb, ['status'])).json.runners[0].pid as number;

    const victim = spawnDw(sb, ['run', OCR_WORKFLOW, '--arg', `image=${tall}`, '--json']);
    await victim.stderrMatches(/read: \d+\/\d+ boxes/);
    process.kill(before, 'SIGKILL');
    const retried = await victim.done;
    assert.equal(retried.code, 0, retried.stderr);
    assert.match(retried.stderr, /dw: the runner died during the run \(killed by SIGKILL\); running the run again on a fresh runner/);
    assert.ok(JSON.parse(retried.stdout).results.read.lines.length > 0, 'the whole result, from the second attempt');

    const recovered = await eventually('the models loaded in a new runner', async () => {
      const m = (await dwJson(sb, ['memory'])).json;
      return m.runners[0].pid !== before && m.runners[0].models.length === 3 && m;
    });
    assert.ok(alive(recovered.runners[0].pid));
    const st = (await dwJson(sb, ['status'])).json;
    assert.equal(st.runners[0].restarts, 1);
    assert.equal(st.runners[0].last_exit, 'killed by SIGKILL');
    assert.equal(st.pid, d.proc.pid, 'the daemon itself never went down');
    const next = await dwJson(sb, ['run', OCR_WORKFLOW]);
    assert.equal(next.ran.code, 0, next.ran.stderr);
    assert.deepEqual(
      next.json.models.map((m: any) => m.cache),
      ['hit', 'hit', 'hit'],
      'reloaded without a client asking',
    );
    assert.match(d.log(), /reloaded the models the crashed runner held/);
  });
});

test('a run past its deadline is cancelled with DW_ERR_TIMEOUT and the daemon carries on', async () => {
  await withDaemon([], async (sb, d) => {
    const r = await dwJson(sb, ['run', OCR_WORKFLOW, '--timeout', '1ms']);
    assert.equal(r.ran.code, 5);
    assert.equal(r.json.error.code, 'DW_ERR_TIMEOUT');
    assert.match(r.json.error.message, /exceeded its 0\.001 s deadline/);
    const ok = await dwJson(sb, ['run', OCR_WORKFLOW]);
    assert.equal(ok.ran.code, 0, ok.ran.stderr);
  });
});

/** A copy of workflows/ocr.json with `edit` applied, written into the sandbox. */
function ocrWorkflow(sb: { dir: string }, name: string, edit: (wf: any) => void): string {
  const wf = JSON.parse(readFileSync(OCR_WORKFLOW, 'utf8'));
  delete wf.$schema;
  wf.variables.image = SAMPLE;
  edit(wf);
  const path = join(sb.dir, name);
  writeFileSync(path, JSON.stringify(wf));
  return path;
}

test('SIGINT (Ctrl-C) in dw run cancels the run in the daemon, writes no output, exits 130', async () => {
  await withDaemon([], async (sb, d) => {
    const tall = await tallImage(sb, 6);
    const wf = ocrWorkflow(sb, 'save.json', (w) => (w.steps[0].result = { content_type: 'application/json', save: true }));
    const out = join(sb.dir, 'out');
    const run = spawnDw(sb, ['run', wf, '--arg', `image=${tall}`, '-o', out]);
    await run.stderrMatches(/read: \d+\/\d+ boxes/);
    run.proc.kill('SIGINT');
    const r = await run.done;
    assert.equal(r.code, 130);
    assert.match(r.stderr, /cancelling the run \(Ctrl-C again to quit at once\)/);
    assert.match(r.stderr, /DW_ERR_CANCELLED/);
    assert.match(d.log(), /"code":"DW_ERR_CANCELLED","err":"the run was cancelled by the client"/);
    assert.equal(existsSync(out), false, 'a cancelled run writes nothing');
  });
});

test('a second Ctrl-C exits at once, while the daemon is still stuck cancelling', async () => {
  await withDaemon([], async (sb) => {
    const slow = join(sb.dir, 'slow-cls.onnx');
    writeFileSync(slow, slowClassifier());
    const wf = ocrWorkflow(sb, 'slow.json', (w) => (w.steps[0].pipeline.models.cls = slow));
    const run = spawnDw(sb, ['run', wf]);
    await run.stderrMatches(/read: loaded cls/);
    run.proc.kill('SIGINT');
    await run.stderrMatches(/cancelling the run/);
    run.proc.kill('SIGINT');
    const r = await run.done;
    assert.equal(r.code, 130);
    assert.doesNotMatch(r.stderr, /DW_ERR_CANCELLED/, 'it did not wait for the daemon to answer');
  });
});

test('Ctrl-C while the daemon is still checking the run (hashing a big model) is not lost', async () => {
  await withDaemon([], async (sb, d) => {
    // A sparse 1.5 GB file: instant to make, and the daemon must read all of it to hash it.
    const big = join(sb.dir, 'big-cls.onnx');
    closeSync(openSync(big, 'w'));
    truncateSync(big, 1536 * 1024 * 1024);
    const wf = ocrWorkflow(sb, 'big.json', (w) => (w.steps[0].pipeline.models.cls = big));
    const run = spawnDw(sb, ['run', wf]);
    await run.stderrMatches(/hashing cls \(1536 MB\)/);
    run.proc.kill('SIGINT');
    const r = await run.done;
    assert.equal(r.code, 130, r.stderr);
    assert.doesNotMatch(r.stderr, /read: started/, 'the run never started');
    await eventually('the daemon to drop the run', async () => /"code":"DW_ERR_CANCELLED"/.test(d.log()));
    assert.equal((await dwJson(sb, ['status'])).json.runs_total, 0);
  });
});

test('a runner that keeps crashing is restarted with backoff, and dw status says so', async () => {
  await withDaemon([], async (sb, d) => {
    let pid = (await dwJson(sb, ['status'])).json.runners[0].pid as number;
    for (let i = 1; i <= 3; i++) {
      process.kill(pid, 'SIGKILL');
      const st = await eventually(`runner ${i + 1}`, async () => {
        const s = (await dwJson(sb, ['status'])).json;
        return s.runners[0].pid !== pid && s.runners[0].state === 'ready' && s;
      });
      pid = st.runners[0].pid;
      assert.equal(st.runners[0].restarts, i);
      assert.equal(st.runners[0].crash_streak, i);
    }
    process.kill(pid, 'SIGKILL');
    const backing = await eventually('the backoff to show', async () => {
      const r = await dw(sb, ['status']);
      return /^runner 0 on cpu: down \(it crashed 4 times in a row, backing off; next start in \d+\.\d s\)/m.test(r.stdout) && r;
    });
    assert.equal(backing.code, 0);
    const ok = await eventually('a runner again', async () => (await dwJson(sb, ['status'])).json.runners[0].state === 'ready');
    assert.ok(ok);
    const ready = await dw(sb, ['status']);
    assert.match(
      ready.stdout,
      /^runner 0 on cpu: ready, pid \d+, restarted 4x \(last: killed by SIGKILL\); it crashed 4 times in a row within 30 s of starting; 0 models$/m,
    );
    assert.doesNotMatch(ready.stdout, /backing off/, 'a ready runner is not said to be backing off');
    assert.equal((await dwJson(sb, ['run', OCR_WORKFLOW])).ran.code, 0, 'and it works again');
    assert.equal((await dwJson(sb, ['status'])).json.pid, d.proc.pid);
  });
});

test('a run stuck inside one native call past its deadline: the runner is killed and replaced, the run gets DW_ERR_TIMEOUT', async () => {
  await withDaemon([], async (sb, d) => {
    // A direction classifier whose one call multiplies big matrices for many seconds: onnxruntime
    // does not return to JavaScript in between, so the cancel cannot be seen; only a kill helps.
    const slow = join(sb.dir, 'slow-cls.onnx');
    writeFileSync(slow, slowClassifier());
    const path = ocrWorkflow(sb, 'slow.json', (w) => (w.steps[0].pipeline.models.cls = slow));
    const before = (await dwJson(sb, ['status'])).json.runners[0].pid as number;

    // Past loading three models and det's run, even on a loaded host (at 1 s the cancel once came
    // between two calls, and was heard); the classifier's one call takes far longer.
    const r = await dwJson(sb, ['run', path, '--timeout', '5s']);
    assert.equal(r.ran.code, 5, r.ran.stderr);
    assert.equal(r.json.error.code, 'DW_ERR_TIMEOUT');
    assert.match(r.json.error.message, /exceeded its 5 s deadline while running step "read" of .*slow\.json/);
    await eventually('the kill in the log', async () => /killing the runner: a run did not yield/.test(d.log()));
    assert.equal(alive(before), false, 'the stuck runner is gone');

    const st = await eventually('a new runner', async () => {
      const s = (await dwJson(sb, ['status'])).json;
      return s.runners[0].state === 'ready' && s.runners[0].pid !== before && s;
    });
    assert.equal(st.runners[0].restarts, 1);
    assert.equal(st.runners[0].last_exit, 'killed by dwd: a run did not yield');
    assert.equal(st.runners[0].crash_streak, 0, 'a kill by dwd is not a crash: no backoff');
    // The new runner reloads what the old one held, in the background; wait for det and rec.
    await eventually('det and rec reloaded', async () => {
      const models: Array<{ path: string }> = (await dwJson(sb, ['memory'])).json.runners[0].models;
      return ['_det_', '_rec_'].every((k) => models.some((m) => m.path.includes(k)));
    });
    const ok = await dwJson(sb, ['run', OCR_WORKFLOW]);
    assert.equal(ok.ran.code, 0, ok.ran.stderr);
    assert.deepEqual(
      ok.json.models.filter((m: any) => m.role !== 'cls').map((m: any) => m.cache),
      ['hit', 'hit'],
      'det and rec were reloaded after the kill',
    );
  });
});

test('a run that takes down its runner twice fails with DW_ERR_RUNNER_CRASHED, after one retry', async () => {
  await withDaemon([], async (sb) => {
    const r = await dwJson(sb, [
      'run',
      pluginWorkflow(sb.dir, 'poison', "process.kill(process.pid, 'SIGKILL'); await new Promise(() => {});"),
    ]);
    assert.equal(r.ran.code, 1, r.ran.stderr);
    assert.equal(r.json.error.code, 'DW_ERR_RUNNER_CRASHED');
    assert.match(
      r.json.error.message,
      /killed by SIGKILL\); it is being restarted; the run had been retried once already, so it is not tried again/,
    );
    assert.equal((r.ran.stderr.match(/running the run again on a fresh runner/g) ?? []).length, 1, 'retried exactly once');
    const ok = await eventually('a runner again', async () => (await dwJson(sb, ['status'])).json.runners[0].state === 'ready');
    assert.ok(ok);
    assert.equal((await dwJson(sb, ['run', OCR_WORKFLOW])).ran.code, 0);
  });
});

test("a step that awaits for ever past its deadline is abandoned, its runner kept: another client's run and the models carry on; once idle, the runner is replaced", async () => {
  await withDaemon([], async (sb, d) => {
    assert.equal((await dw(sb, ['run', OCR_WORKFLOW, '-q'])).code, 0);
    const before = (await dwJson(sb, ['status'])).json.runners[0].pid as number;
    const tall = await tallImage(sb, 6);
    const other = spawnDw(sb, ['run', OCR_WORKFLOW, '--arg', `image=${tall}`, '--json']);
    // It keeps timers going, as a step that ignores its cancel may: its runner must not keep it for ever.
    const stuck = await dwJson(sb, [
      'run',
      pluginWorkflow(sb.dir, 'forever', 'setInterval(() => {}, 50); await new Promise(() => {});'),
      '--timeout',
      '1s',
    ]);
    assert.equal(stuck.ran.code, 5, stuck.ran.stderr);
    assert.equal(stuck.json.error.code, 'DW_ERR_TIMEOUT');
    // Replaced only once idle (2 s after the last run): right now it is the same runner.
    const st = (await dwJson(sb, ['status'])).json;
    assert.equal(st.runners[0].pid, before, 'the same runner');
    assert.equal(st.runners[0].restarts, 0);
    const done = await other.done;
    assert.equal(done.code, 0, done.stderr);
    assert.doesNotMatch(done.stderr, /running the run again/, 'the other run was never interrupted');
    assert.match(d.log(), /abandoned a run that does not yield; its runner answers, so it stays/);
    await eventually(
      'the idle runner replaced, its models loaded again',
      async () =>
        /replacing the idle runner: it still holds 1 abandoned run\(s\)/.test(d.log()) &&
        /runner replaced: memory given back, models loaded again/.test(d.log()),
    );
    assert.notEqual((await dwJson(sb, ['status'])).json.runners[0].pid, before);
    assert.equal(alive(before), false, 'the abandoned run went with its runner');
    const next = await dwJson(sb, ['run', OCR_WORKFLOW]);
    assert.deepEqual(
      next.json.models.map((m: any) => m.cache),
      ['hit', 'hit', 'hit'],
      'its models were loaded again in the new one',
    );
  });
});

test("Ctrl-C on a run that blocks its runner's thread: the runner is killed, and another client's run on it is run again and succeeds", async () => {
  await withDaemon([], async (sb, d) => {
    assert.equal((await dw(sb, ['run', OCR_WORKFLOW, '-q'])).code, 0);
    const tall = await tallImage(sb, 6);
    const other = spawnDw(sb, ['run', OCR_WORKFLOW, '--arg', `image=${tall}`, '--json']);
    await other.stderrMatches(/read: \d+\/\d+ boxes/);
    const blocker = spawnDw(sb, ['run', pluginWorkflow(sb.dir, 'spin', 'ctx.progress(0, 1, "spins"); for (;;) {}')]);
    await blocker.stderrMatches(/x: started/);
    blocker.proc.kill('SIGINT');
    const b = await blocker.done;
    assert.equal(b.code, 130, b.stderr);
    const o = await other.done;
    assert.equal(o.code, 0, o.stderr);
    assert.match(o.stderr, /dw: dwd killed the runner: another run on it did not yield; running the run again on a fresh runner/);
    assert.ok(JSON.parse(o.stdout).results.read.lines.length > 0);
    assert.match(d.log(), /killing the runner: a run did not yield/);
  });
});

test('a run that only shared the runner with one that kills it is retried alone and succeeds; the killer fails', async () => {
  await withDaemon([], async (sb) => {
    const innocent = spawnDw(sb, ['run', slowWorkflow(sb.dir, 3), '--json']);
    await innocent.stderrMatches(/sleep: \d+\/\d+ ticks/);
    const killer = await dwJson(sb, [
      'run',
      pluginWorkflow(sb.dir, 'killer', "await new Promise((r) => setTimeout(r, 500)); process.kill(process.pid, 'SIGKILL');"),
    ]);
    assert.equal(killer.json.error.code, 'DW_ERR_RUNNER_CRASHED');
    assert.match(killer.json.error.message, /retried once already/);
    const i = await innocent.done;
    assert.equal(i.code, 0, i.stderr);
    assert.match(i.stderr, /running the run again on a fresh runner/);
    assert.equal(JSON.parse(i.stdout).results.sleep, 'slept');
  });
});
