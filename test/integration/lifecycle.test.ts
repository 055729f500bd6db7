// Starting, stopping, dying and being replaced, with real processes and real signals.
import { test } from 'node:test';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdirSync, readFileSync, readlinkSync, realpathSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { dirname, join } from 'node:path';
import { alive, DWD, dw, dwJson, eventually, OCR_WORKFLOW, ROOT, sandbox, spawnDw, startDaemon, withDaemon } from '../helpers/env.js';
import { PROTOCOL_VERSION } from '../../src/protocol/version.js';

function runnerPid(log: string): number {
  const m = /"runner_pid":(\d+)/.exec(log);
  assert.ok(m, `no runner pid in the log:\n${log}`);
  return Number(m[1]);
}

async function gone(pid: number, ms = 5000): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (alive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
  return !alive(pid);
}

test('socket in a 0700 directory, socket 0600, pid file; dw stop removes them, stops the runner and exits 0', async () => {
  await withDaemon([], async (sb, d) => {
    assert.equal(statSync(dirname(sb.socket)).mode & 0o777, 0o700);
    assert.equal(statSync(sb.socket).mode & 0o777, 0o600);
    assert.match(readFileSync(`${sb.socket}.pid`, 'utf8'), new RegExp(`^${d.proc.pid} \\d+\n$`), 'the pid and its start time');
    const st = await dwJson(sb, ['status']);
    assert.equal(st.json.pid, d.proc.pid);
    assert.equal(st.json.runners[0].state, 'ready');
    const runner = st.json.runners[0].pid as number;

    const r = await dw(sb, ['stop']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(await d.exited, { code: 0, signal: null });
    assert.equal(existsSync(sb.socket), false);
    assert.equal(existsSync(`${sb.socket}.pid`), false);
    assert.ok(await gone(runner), 'the runner exits with its daemon');
    const again = await dw(sb, ['status']);
    assert.equal(again.code, 4, 'status never starts a daemon and says none answers');
    assert.match(again.stderr, /DW_ERR_DAEMON_UNREACHABLE/);
  });
});

test('SIGTERM during a run lets it finish, then exits 0 and cleans up', async () => {
  await withDaemon([], async (sb, d) => {
    const running = spawnDw(sb, ['run', OCR_WORKFLOW]);
    await running.stderrMatches(/read: started/);
    d.proc.kill('SIGTERM');
    const r = await running.done;
    assert.equal(r.code, 0, `${r.stderr}\n${d.log()}`);
    assert.deepEqual(await d.exited, { code: 0, signal: null });
    assert.match(d.log(), /"reason":"SIGTERM","msg":"shutting down"[\s\S]*"msg":"run done"[\s\S]*"msg":"stopped"/);
    assert.equal(existsSync(sb.socket), false);
  });
});

test('after kill -9 the stale socket and pid file are cleared by the next daemon; the old runner does not outlive it', async () => {
  const sb = sandbox();
  const first = await startDaemon(sb);
  const oldRunner = runnerPid(await waitForLog(first, '"runner_pid"'));
  first.proc.kill('SIGKILL');
  await first.exited;
  assert.ok(existsSync(sb.socket), 'a killed daemon leaves its socket behind');
  assert.ok(await gone(oldRunner), 'the runner notices its parent is gone and exits');
  const second = await startDaemon(sb);
  try {
    const r = await dwJson(sb, ['status']);
    assert.equal(r.json.pid, second.proc.pid);
  } finally {
    await second.stop();
    sb.cleanup();
  }
});

test('after kill -9 of an autostarted daemon, the next dw run starts a new one and succeeds; no orphan runner; neither keeps the folder dw ran in busy', async () => {
  const sb = sandbox();
  const auto = { env: { DW_AUTOSTART: '1' } };
  try {
    const here = join(sb.dir, 'mounted');
    mkdirSync(here);
    const started = await dw(sb, ['run', OCR_WORKFLOW], { ...auto, cwd: here });
    assert.equal(started.code, 0, started.stderr);
    const first = (await dwJson(sb, ['status'])).json;
    // They work from dw's install folder (a runner started from source finds tsx there).
    for (const pid of [first.pid, first.runners[0].pid]) assert.equal(readlinkSync(`/proc/${pid}/cwd`), realpathSync(ROOT));
    assert.match(
      started.stderr,
      new RegExp(`^dw: started dwd \\(pid ${first.pid}\\) in the background; its log: .*dwd\\.log$`, 'm'),
      'a first autostart says so, once',
    );
    assert.equal(started.stderr.match(/started dwd/g)?.length, 1);
    process.kill(first.pid, 'SIGKILL');
    assert.ok(await gone(first.pid));
    const r = await dwJson(sb, ['run', OCR_WORKFLOW], auto);
    assert.equal(r.ran.code, 0, r.ran.stderr);
    const second = (await dwJson(sb, ['status'])).json;
    assert.notEqual(second.pid, first.pid);
    assert.ok(await gone(first.runners[0].pid), 'the dead daemon took its runner with it');
  } finally {
    await dw(sb, ['stop']);
    sb.cleanup();
  }
});

test('a second daemon never steals the socket of a live one', async () => {
  const sb = sandbox();
  const first = await startDaemon(sb);
  try {
    await assert.rejects(startDaemon(sb), /already running \(pid \d+\)/);
    const r = await dwJson(sb, ['status']);
    assert.equal(r.json.pid, first.proc.pid);
  } finally {
    await first.stop();
    sb.cleanup();
  }
});

test('ten parallel dw invocations autostart exactly one daemon, and all succeed', async () => {
  const sb = sandbox();
  try {
    // validate autostarts like run, and is cheap: the race is about the start, not the work.
    const validated = await Promise.all(
      Array.from({ length: 10 }, () => dw(sb, ['validate', OCR_WORKFLOW, '--json'], { env: { DW_AUTOSTART: '1' } })),
    );
    for (const v of validated) assert.equal(v.code, 0, v.stderr);
    const log = readFileSync(join(sb.dir, 'state', 'dw', 'dwd.log'), 'utf8');
    assert.equal(log.match(/dwd listening/g)?.length, 1, log);
    const shown = await dw(sb, ['logs', '-n', '2']);
    assert.equal(shown.code, 0);
    assert.match(shown.stdout, /^\d\d:\d\d:\d\d INFO  /m, 'dw logs shows the autostart log as readable lines');
    assert.equal(shown.stdout.trim().split('\n').length, 2);
    assert.equal(JSON.parse((await dw(sb, ['logs', '-n', '1', '--json'])).stdout).level, 30);
    assert.equal((await dw(sb, ['logs', '-n', '0'])).stdout, '', '-n 0 shows no line');
    const st = await dwJson(sb, ['status']);
    assert.equal(st.json.runs_total, 0);
    const stop = await dw(sb, ['stop']);
    assert.equal(stop.code, 0);
    assert.equal(alive(st.json.pid), false);
  } finally {
    await dw(sb, ['stop']);
    sb.cleanup();
  }
});

test('DW_AUTOSTART=0 with no daemon: exit 4 and a message that says how to start one', async () => {
  const sb = sandbox();
  try {
    const r = await dw(sb, ['run', OCR_WORKFLOW]);
    assert.equal(r.code, 4);
    assert.match(r.stderr, /no dwd answers on .*dwd\.sock/);
    assert.match(r.stderr, /(dwd|daemon\/main\.js) &/, 'a command that starts dwd from here');
  } finally {
    sb.cleanup();
  }
});

test('a client of another version gets DW_ERR_VERSION_MISMATCH with the daemon facts', async () => {
  await withDaemon([], async (sb, d) => {
    const reply = await rawExchange(
      sb.socket,
      JSON.stringify({ id: 1, type: 'hello', protocol: PROTOCOL_VERSION, version: '0.0.0-old' }) + '\n',
    );
    const frame = JSON.parse(reply.split('\n')[0]!);
    assert.equal(frame.type, 'error');
    assert.equal(frame.error.code, 'DW_ERR_VERSION_MISMATCH');
    assert.equal(frame.error.details.daemon.pid, d.proc.pid);
    assert.equal(frame.error.details.client.version, '0.0.0-old');
  });
});

test('a socket path too long for sun_path fails with how to fix it', async () => {
  const sb = sandbox();
  try {
    const long = join(sb.dir, 'x'.repeat(120), 'dwd.sock');
    await assert.rejects(
      startDaemon({ ...sb, env: { ...sb.env, DW_SOCKET: long } }),
      /over the 107-byte limit[\s\S]*Set DW_SOCKET to a shorter path/,
    );
  } finally {
    sb.cleanup();
  }
});

export function rawExchange(socket: string, payload: string, waitMs = 1500): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = createConnection(socket);
    let got = '';
    s.on('data', (d) => (got += d));
    s.on('error', reject);
    s.on('connect', () => s.write(payload));
    s.on('close', () => resolve(got));
    setTimeout(() => s.end(), waitMs);
  });
}

async function waitFor(cond: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function waitForLog(d: { log: () => string }, needle: string): Promise<string> {
  await waitFor(() => d.log().includes(needle));
  return d.log();
}

/** The "old install": the same build under a package.json of another version. */
function oldInstall(sb: { dir: string }): { pkg: { version: string }; oldDwd: string } {
  const old = join(sb.dir, 'old');
  cpSync(join(ROOT, 'dist'), join(old, 'dist'), { recursive: true });
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
  writeFileSync(join(old, 'package.json'), JSON.stringify({ ...pkg, version: '0.0.1-old' }));
  symlinkSync(join(ROOT, 'node_modules'), join(old, 'node_modules'));
  return { pkg, oldDwd: join(old, 'dist', 'daemon', 'main.js') };
}

test('after an upgrade, dw replaces a daemon of the old version that it autostarted, and tells you', async () => {
  const sb = sandbox();
  const { pkg, oldDwd } = oldInstall(sb);
  const stale = await startDaemon({ ...sb, env: { ...sb.env, DWD_AUTOSTARTED: '1' } }, [], {}, oldDwd);
  try {
    const r = await dwJson(sb, ['run', OCR_WORKFLOW], { env: { DW_AUTOSTART: '1' } });
    assert.equal(r.ran.code, 0, r.ran.stderr);
    assert.match(r.ran.stderr, /the running dwd is version 0\.0\.1-old .* restarting the daemon it autostarted/);
    assert.deepEqual(await stale.exited, { code: 0, signal: null });
    const st = await dwJson(sb, ['status']);
    assert.equal(st.json.version, pkg.version);
  } finally {
    await stale.stop();
    await dw(sb, ['stop']);
    sb.cleanup();
  }
});

test('a daemon of another version that you started yourself is left alone, with how to restart it', async () => {
  const sb = sandbox();
  const { oldDwd } = oldInstall(sb);
  const mine = await startDaemon(sb, [], {}, oldDwd);
  try {
    const r = await dw(sb, ['run', OCR_WORKFLOW], { env: { DW_AUTOSTART: '1' } });
    assert.equal(r.code, 4);
    assert.match(r.stderr, /DW_ERR_VERSION_MISMATCH.*0\.0\.1-old[\s\S]*Restart it so both match: `dw stop`/);
    assert.equal(alive(mine.proc.pid!), true);
  } finally {
    await mine.stop();
    sb.cleanup();
  }
});

test('dw stop of a daemon in another pid namespace (a container sharing the socket) waits for it to stop, not for a pid of this one', async (t) => {
  // A user namespace too, so that no root is needed (where the kernel allows them, as Debian's does).
  const unshare = ['--user', '--map-root-user', '--pid', '--fork', '--mount-proc'];
  if (spawnSync('unshare', [...unshare, 'true']).status !== 0) return t.skip('this kernel allows no unprivileged user and pid namespaces');
  const sb = sandbox();
  try {
    mkdirSync(dirname(sb.socket), { recursive: true });
    const inside = spawn('unshare', [...unshare, process.execPath, DWD, '--grace', '1s'], {
      env: sb.env,
      stdio: 'ignore',
    });
    const exited = once(inside, 'exit');
    const st = await eventually('the daemon in its namespace', async () => {
      const r = await dwJson(sb, ['status']);
      return r.ran.code === 0 && r.json;
    });
    assert.ok(st.pid < 10, `pid ${st.pid} counts in its own namespace`);
    const stop = await dw(sb, ['stop']);
    assert.equal(stop.code, 0, stop.stderr);
    assert.match(stop.stderr, /^dw: dwd \(pid \d+\) stopped$/m);
    assert.equal(existsSync(sb.socket), false);
    await exited;
  } finally {
    await dw(sb, ['stop']);
    sb.cleanup();
  }
});
