// A daemon owns exactly the socket it made: it never removes the one of a daemon that replaced it,
// stops when its socket path no longer leads to it, and never runs beside another one on one path.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { alive, dw, dwJson, OCR_WORKFLOW, sandbox, slowWorkflow, spawnDw, startDaemon } from '../helpers/env.js';
import { socketAccepts } from '../../src/daemon/listen.js';

async function gone(pid: number, ms = 10_000): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (alive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
  return !alive(pid);
}

test('dw stop during a run, then a new run: the new daemon waits for the old one, keeps its socket, and is the only one', {
  timeout: 120_000,
}, async () => {
  const sb = sandbox();
  const env = { DW_AUTOSTART: '1', DWD_GRACE: '60s' };
  try {
    const long = spawnDw(sb, ['run', slowWorkflow(sb.dir, 6)], { env });
    await long.stderrMatches(/sleep: \d+\/\d+ ticks/, 60_000);
    const first = (await dwJson(sb, ['status'])).json;
    const stopping = spawnDw(sb, ['stop']);
    // The old daemon stops accepting at once but finishes its run within its grace period.
    const deadline = Date.now() + 10_000;
    while ((await socketAccepts(sb.socket)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    const next = await dw(sb, ['run', OCR_WORKFLOW], { env });
    assert.equal(next.code, 0, next.stderr);
    assert.match(next.stderr, new RegExp(`waiting for dwd pid ${first.pid}, which holds the socket but does not answer`));
    const finished = await long.done;
    assert.equal(finished.code, 0, 'the run in flight finished in the old daemon');
    assert.equal(finished.stdout, 'slept\n');
    assert.equal((await stopping.done).code, 0);
    assert.equal(alive(first.pid), false, 'the old daemon has exited');
    const second = await dwJson(sb, ['status']);
    assert.equal(second.ran.code, 0, `the new daemon answers on its socket: ${second.ran.stderr}`);
    assert.notEqual(second.json.pid, first.pid);
    assert.equal((await dw(sb, ['run', OCR_WORKFLOW, '-q'], { env })).code, 0);
    assert.equal((await dwJson(sb, ['status'])).json.pid, second.json.pid, 'no third daemon was started');
  } finally {
    await dw(sb, ['stop']);
    sb.cleanup();
  }
});

test('a daemon whose socket file is removed by hand notices and exits cleanly, pid file included', { timeout: 60_000 }, async () => {
  const sb = sandbox();
  const d = await startDaemon(sb);
  try {
    const pidFile = `${sb.socket}.pid`;
    assert.ok(existsSync(pidFile));
    unlinkSync(sb.socket);
    assert.deepEqual(await d.exited, { code: 0, signal: null });
    assert.match(d.log(), /"why":"[^"]*dwd\.sock was removed","msg":"the socket no longer leads to this daemon"/);
    assert.equal(existsSync(pidFile), false);
    const after = await dw(sb, ['status']);
    assert.equal(after.code, 4);
  } finally {
    await d.stop();
    sb.cleanup();
  }
});

test("a daemon whose socket path was taken over stops, and removes neither the other's socket nor its pid file", {
  timeout: 60_000,
}, async () => {
  const sb = sandbox();
  const d = await startDaemon(sb);
  const other = createServer();
  try {
    const pidFile = `${sb.socket}.pid`;
    // Another listener put at the path (as a daemon that replaced this one would be), and its pid file.
    renameSync(sb.socket, `${sb.socket}.old`);
    await new Promise<void>((r) => other.listen(sb.socket, r));
    writeFileSync(pidFile, '1 0\n');
    const ino = statSync(sb.socket).ino;
    assert.deepEqual(await d.exited, { code: 0, signal: null });
    assert.match(d.log(), /was replaced by another file/);
    assert.equal(statSync(sb.socket).ino, ino, "the other's socket is still there");
    assert.ok(await socketAccepts(sb.socket), 'and still answers');
    assert.equal(existsSync(pidFile), true, "the other's pid file is still there");
  } finally {
    other.close();
    await d.stop();
    sb.cleanup();
  }
});

test('SIGTERM during shutdown ends the daemon at once, runner included', { timeout: 60_000 }, async () => {
  const sb = sandbox();
  const d = await startDaemon(sb, ['--grace', '60s']);
  try {
    const running = spawnDw(sb, ['run', slowWorkflow(sb.dir, 20)]);
    await running.stderrMatches(/sleep: \d+\/\d+ ticks/);
    const runner = (await dwJson(sb, ['status'])).json.runners[0].pid as number;
    d.proc.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(alive(d.proc.pid!), true, 'the first SIGTERM waits for the run (grace 60 s)');
    d.proc.kill('SIGTERM');
    const exited = await d.exited;
    assert.equal(exited.code, 1);
    assert.ok(await gone(runner), 'the runner went with it');
    assert.equal(existsSync(sb.socket), false, 'its socket is removed');
    assert.notEqual((await running.done).code, 0);
  } finally {
    await d.stop();
    sb.cleanup();
  }
});

test('two daemons started at the same moment on one socket: one serves, the other says it is already running', {
  timeout: 60_000,
}, async () => {
  const sb = sandbox();
  try {
    for (let round = 0; round < 3; round++) {
      const results = await Promise.allSettled([startDaemon(sb), startDaemon(sb)]);
      const up = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
      const refused = results.flatMap((r) => (r.status === 'rejected' ? [String(r.reason)] : []));
      assert.equal(up.length, 1, `round ${round}: ${refused.join('\n')}`);
      assert.match(refused[0]!, /already running \(pid \d+\)/);
      assert.doesNotMatch(up[0]!.log(), /socket lost/);
      assert.equal((await dwJson(sb, ['status'])).json.pid, up[0]!.proc.pid);
      await up[0]!.stop();
    }
  } finally {
    sb.cleanup();
  }
});
