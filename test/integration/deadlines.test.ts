// dw never waits for ever: a frozen daemon (SIGSTOP) fails every command with exit 4 and its pid,
// while a long run on a live daemon, silent as it may be, is not mistaken for one.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dw, dwJson, eventually, OCR_WORKFLOW, pluginWorkflow, spawnDw, withDaemon } from '../helpers/env.js';

const quick = { env: { DW_CONNECT_TIMEOUT: '1s' } };

/** A one-step workflow whose step waits `seconds` without a single event. */
const quietWorkflow = (dir: string, seconds: number) =>
  pluginWorkflow(dir, 'quiet', `await new Promise((r) => setTimeout(r, ${seconds * 1000})); return 'done quietly';`, { step: 'wait' });

test('a stopped daemon (SIGSTOP): status, memory, stop, validate and run each fail with exit 4 naming its pid', {
  timeout: 60_000,
}, async () => {
  await withDaemon([], async (sb, d) => {
    const pid = d.proc.pid!;
    d.proc.kill('SIGSTOP');
    try {
      for (const args of [['status'], ['memory'], ['stop'], ['validate', OCR_WORKFLOW], ['run', OCR_WORKFLOW, '--timeout', '5']]) {
        const r = await dw(sb, args, quick);
        assert.equal(r.code, 4, `${args.join(' ')}: ${r.stderr}`);
        assert.match(
          r.stderr,
          new RegExp(`DW_ERR_DAEMON_UNREACHABLE\\]: dwd \\(pid ${pid}\\) on .* does not answer: nothing came from it for 1\\.0 s`),
        );
        assert.match(r.stderr, new RegExp(`kill -CONT ${pid}`));
      }
    } finally {
      d.proc.kill('SIGCONT');
    }
    const st = await dw(sb, ['status'], quick);
    assert.equal(st.code, 0, 'resumed, it answers again');
  });
});

test('a daemon frozen in the middle of a run: dw run gives up with exit 4 instead of hanging', { timeout: 60_000 }, async () => {
  await withDaemon([], async (sb, d) => {
    const run = spawnDw(sb, ['run', quietWorkflow(sb.dir, 20)], quick);
    await run.stderrMatches(/wait: started/);
    d.proc.kill('SIGSTOP');
    try {
      const r = await run.done;
      assert.equal(r.code, 4, r.stderr);
      assert.match(r.stderr, /does not answer/);
    } finally {
      d.proc.kill('SIGCONT');
    }
  });
});

test('a long run without events is not taken for a frozen daemon: its heartbeats keep dw waiting', { timeout: 60_000 }, async () => {
  await withDaemon([], async (sb) => {
    const r = await dw(sb, ['run', quietWorkflow(sb.dir, 4)], quick);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'done quietly\n');
  });
});

test('a DW_CONNECT_TIMEOUT dw cannot read is a usage error', async () => {
  await withDaemon([], async (sb) => {
    const r = await dw(sb, ['status'], { env: { DW_CONNECT_TIMEOUT: 'soon' } });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /DW_CONNECT_TIMEOUT: "soon" is not a duration/);
  });
});

test('a stopped runner (SIGSTOP) is shown as such in dw status, with how to resume it; resumed, it runs', { timeout: 60_000 }, async () => {
  await withDaemon([], async (sb) => {
    const { json } = await dwJson(sb, ['status']);
    const pid = json.runners[0].pid as number;
    process.kill(pid, 'SIGSTOP');
    try {
      await eventually('the runner seen as stopped', async () => (await dwJson(sb, ['status'])).json.runners[0].frozen === true);
      // A run meanwhile is told why it waits, and goes on once the runner is resumed.
      const run = spawnDw(sb, ['run', OCR_WORKFLOW]);
      await run.stderrMatches(new RegExp(`its runner \\(pid ${pid}\\) is stopped by a signal: this run waits until it is resumed`));
      process.kill(pid, 'SIGCONT');
      assert.equal((await run.done).code, 0);
      process.kill(pid, 'SIGSTOP');
      await eventually('stopped again', async () => (await dwJson(sb, ['status'])).json.runners[0].frozen === true);
      const shown = await dw(sb, ['status']);
      assert.match(
        shown.stdout,
        new RegExp(`runner 0 on cpu: stopped by a signal, pid ${pid}: runs wait until it is resumed \\(\`kill -CONT ${pid}\`\\)`),
      );
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    assert.equal((await dw(sb, ['run', OCR_WORKFLOW])).code, 0);
    assert.equal((await dwJson(sb, ['status'])).json.runners[0].frozen, false);
  });
});
