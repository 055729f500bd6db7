// A runner killed for real: its run fails fast with DW_ERR_RUNNER_CRASHED, the daemon carries on,
// a new runner loads what the old one held, and the next run hits the cache without asking.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { alive, dw, dwJson, eventually, OCR_WORKFLOW, sandbox, spawnDw, startDaemon, tallImage } from '../helpers/env.js';

test('SIGKILL of the runner mid-run: that run fails, the runner is back with its models, the next run hits', async () => {
  const sb = sandbox();
  const d = await startDaemon(sb);
  try {
    const tall = await tallImage(sb, 6);
    assert.equal((await dw(sb, ['run', OCR_WORKFLOW, '-q'])).code, 0);
    const before = (await dwJson(sb, ['status'])).json.runner.pid as number;

    const victim = spawnDw(sb, ['run', OCR_WORKFLOW, '--arg', `image=${tall}`, '--json']);
    await victim.stderrMatches(/read: \d+\/\d+ boxes/);
    process.kill(before, 'SIGKILL');
    const failed = await victim.done;
    assert.equal(failed.code, 1);
    const err = JSON.parse(failed.stdout).error;
    assert.equal(err.code, 'DW_ERR_RUNNER_CRASHED');
    assert.match(err.message, /killed by SIGKILL/);

    const recovered = await eventually('the models loaded in a new runner', async () => {
      const m = (await dwJson(sb, ['memory'])).json;
      return m.runners[0].pid !== before && m.runners[0].models.length === 3 && m;
    });
    assert.ok(alive(recovered.runners[0].pid));
    const st = (await dwJson(sb, ['status'])).json;
    assert.equal(st.runner.restarts, 1);
    assert.equal(st.runner.last_exit, 'killed by SIGKILL');
    assert.equal(st.pid, d.proc.pid, 'the daemon itself never went down');
    const next = await dwJson(sb, ['run', OCR_WORKFLOW]);
    assert.equal(next.ran.code, 0, next.ran.stderr);
    assert.deepEqual(next.json.models.map((m: any) => m.cache), ['hit', 'hit', 'hit'], 'reloaded without a client asking');
    assert.match(d.log(), /reloaded the models the crashed runner held/);
  } finally {
    await d.stop();
    sb.cleanup();
  }
});

test('a run past its deadline is cancelled with DW_ERR_TIMEOUT and the daemon carries on', async () => {
  const sb = sandbox();
  const d = await startDaemon(sb);
  try {
    const r = await dwJson(sb, ['run', OCR_WORKFLOW, '--timeout', '1ms']);
    assert.equal(r.ran.code, 5);
    assert.equal(r.json.error.code, 'DW_ERR_TIMEOUT');
    assert.match(r.json.error.message, /exceeded its 0\.001 s deadline/);
    const ok = await dwJson(sb, ['run', OCR_WORKFLOW]);
    assert.equal(ok.ran.code, 0, ok.ran.stderr);
  } finally {
    await d.stop();
    sb.cleanup();
  }
});

test('SIGINT (Ctrl-C) in dw run cancels the run in the daemon and exits 130', async () => {
  const sb = sandbox();
  const d = await startDaemon(sb);
  try {
    const tall = await tallImage(sb, 6);
    const run = spawnDw(sb, ['run', OCR_WORKFLOW, '--arg', `image=${tall}`, '-o', join(sb.dir, 'out')]);
    await run.stderrMatches(/read: \d+\/\d+ boxes/);
    run.proc.kill('SIGINT');
    const r = await run.done;
    assert.equal(r.code, 130);
    assert.match(r.stderr, /cancelling the run \(Ctrl-C again to quit at once\)/);
    assert.match(r.stderr, /DW_ERR_CANCELLED/);
    assert.match(d.log(), /"code":"DW_ERR_CANCELLED","err":"the run was cancelled by the client"/);
  } finally {
    await d.stop();
    sb.cleanup();
  }
});

test('a runner that keeps crashing is restarted with backoff, and dw status says so', async () => {
  const sb = sandbox();
  const d = await startDaemon(sb);
  try {
    let pid = (await dwJson(sb, ['status'])).json.runner.pid as number;
    for (let i = 1; i <= 3; i++) {
      process.kill(pid, 'SIGKILL');
      const st = await eventually(`runner ${i + 1}`, async () => {
        const s = (await dwJson(sb, ['status'])).json;
        return s.runner.pid !== pid && s.runner.state === 'ready' && s;
      });
      pid = st.runner.pid;
      assert.equal(st.runner.restarts, i);
      assert.equal(st.runner.crash_streak, i);
    }
    process.kill(pid, 'SIGKILL');
    const backing = await eventually('the backoff to show', async () => {
      const r = await dw(sb, ['status']);
      return /crashing repeatedly \(4 in a row\), backing off; next start in \d+\.\d s/.test(r.stdout) && r;
    });
    assert.equal(backing.code, 0);
    const ok = await eventually('a runner again', async () => (await dwJson(sb, ['status'])).json.runner.state === 'ready');
    assert.ok(ok);
    assert.equal((await dwJson(sb, ['run', OCR_WORKFLOW])).ran.code, 0, 'and it works again');
    assert.equal((await dwJson(sb, ['status'])).json.pid, d.proc.pid);
  } finally {
    await d.stop();
    sb.cleanup();
  }
});
