// The daemon's log: JSON lines only (the runner's own output included), never a reason to hang
// (a full disk), and what dw shows when a daemon it started fails: that daemon's reason only.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import {
  closeSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { alive, DWD, dw, dwJson, eventually, OCR_WORKFLOW, pluginWorkflow, sandbox, startDaemon } from '../helpers/env.js';

test('a full disk under the log: the autostarted daemon works, counts the lines it drops, and stops on request', {
  timeout: 90_000,
}, async () => {
  const sb = sandbox();
  const env = { DW_AUTOSTART: '1' };
  try {
    // Every write to /dev/full fails with ENOSPC, as on a filled disk.
    mkdirSync(join(sb.dir, 'state', 'dw'), { recursive: true });
    symlinkSync('/dev/full', join(sb.dir, 'state', 'dw', 'dwd.log'));
    const r = await dw(sb, ['run', OCR_WORKFLOW], { env });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /FRESH MART/);
    const st = await dwJson(sb, ['status']);
    assert.ok(st.json.log.dropped > 0, JSON.stringify(st.json.log));
    assert.match(st.json.log.last_error, /ENOSPC/);
    assert.match((await dw(sb, ['status'])).stdout, /^log +its standard output, no file; \d+ lines could not be written \(ENOSPC/m);
    const stop = await dw(sb, ['stop']);
    assert.equal(stop.code, 0, stop.stderr);
    assert.equal(alive(st.json.pid), false);
  } finally {
    await dw(sb, ['stop']);
    sb.cleanup();
  }
});

test("dw logs shows the running daemon's own log, wherever the dw that started it put it; a dwd logging to the journal or a pipe is named", {
  timeout: 60_000,
}, async () => {
  const sb = sandbox();
  try {
    const r = await dw(sb, ['validate', OCR_WORKFLOW], { env: { DW_AUTOSTART: '1' } }); // starts one, loads nothing
    assert.equal(r.code, 0, r.stderr);
    const pid = (await dwJson(sb, ['status'])).json.pid;
    // Another state folder (a cron job's environment, say) with an older daemon's log in it.
    const other = join(sb.dir, 'other');
    mkdirSync(join(other, 'dw'), { recursive: true });
    writeFileSync(join(other, 'dw', 'dwd.log'), `${JSON.stringify({ level: 30, time: new Date().toISOString(), msg: 'an old line' })}\n`);
    const elsewhere = { env: { ...sb.env, XDG_STATE_HOME: other } };
    const shown = await dw(sb, ['logs', '--json'], elsewhere);
    assert.equal(shown.code, 0, shown.stderr);
    assert.doesNotMatch(shown.stdout, /an old line/);
    assert.ok(
      shown.stdout.split('\n').some((l) => l.includes(`"pid":${pid}`) && l.includes('dwd listening')),
      shown.stdout,
    );
    const st = await dw(sb, ['status'], elsewhere);
    assert.match(st.stdout, new RegExp(`^log +${join(sb.dir, 'state', 'dw', 'dwd.log')}$`, 'm'));
    // Removed while the daemon writes it: said, not shown as some other file.
    rmSync(join(sb.dir, 'state', 'dw', 'dwd.log'));
    const removed = await dw(sb, ['logs']);
    assert.equal(removed.code, 0, removed.stderr);
    assert.match(removed.stderr, new RegExp(`dwd \\(pid ${pid}\\) writes its log to .*dwd\\.log, which was removed`));
    await dw(sb, ['stop']);
    // With none running, the file this dw's environment names.
    const none = await dw(sb, ['logs', '--json'], elsewhere);
    assert.match(none.stdout, /an old line/);
    assert.doesNotMatch(none.stderr, /did not answer/);
    // A socket file left behind (a daemon killed) is no daemon that is silent.
    writeFileSync(sb.socket, '');
    const stale = await dw(sb, ['logs'], elsewhere);
    assert.doesNotMatch(stale.stderr, /did not answer/);
    rmSync(sb.socket);
    const folder = join(sb.dir, 'folder');
    mkdirSync(join(folder, 'dw', 'dwd.log'), { recursive: true });
    const unreadable = await dw(sb, ['logs'], { env: { ...sb.env, XDG_STATE_HOME: folder } });
    assert.equal(unreadable.code, 3);
    assert.match(unreadable.stderr, /DW_ERR_FILE_NOT_FOUND\]: the log .*dwd\.log is not a regular file/);
    // A named pipe there would hold dw for good.
    rmSync(join(folder, 'dw', 'dwd.log'), { recursive: true });
    execFileSync('mkfifo', [join(folder, 'dw', 'dwd.log')]);
    const pipe = await dw(sb, ['logs', '-f'], { env: { ...sb.env, XDG_STATE_HOME: folder } });
    assert.equal(pipe.code, 3, pipe.stderr);

    // systemd tells a service its journal stream by JOURNAL_STREAM=<device>:<inode>.
    const out = join(sb.dir, 'stream');
    writeFileSync(out, '');
    const { dev, ino } = statSync(out);
    const fd = openSync(out, 'a');
    const journaled = spawn(process.execPath, [DWD], { env: { ...sb.env, JOURNAL_STREAM: `${dev}:${ino}` }, stdio: ['ignore', fd, fd] });
    closeSync(fd);
    try {
      await eventually('the journaled dwd to answer', async () => (await dw(sb, ['status'])).code === 0);
      const j = await dw(sb, ['logs', '-f']);
      assert.equal(j.code, 0, j.stderr);
      assert.equal(j.stderr, `dw: dwd (pid ${journaled.pid}) logs to systemd's journal: journalctl --user -u dwd -f\n`);
      assert.match((await dw(sb, ['status'])).stdout, /^log +systemd's journal$/m);
    } finally {
      journaled.kill();
      await once(journaled, 'exit');
    }
    const piped = await startDaemon(sb);
    try {
      const p = await dw(sb, ['logs']);
      assert.equal(p.code, 0, p.stderr);
      assert.match(p.stderr, new RegExp(`dwd \\(pid ${piped.proc.pid}\\) writes its log to its standard output, which is no file`));
    } finally {
      await piped.stop();
    }
  } finally {
    await dw(sb, ['stop']);
    sb.cleanup();
  }
});

test("a daemon that cannot start: dw says why, shows only that daemon's log lines, and the log stays JSON", {
  timeout: 60_000,
}, async () => {
  const sb = sandbox();
  try {
    const log = join(sb.dir, 'state', 'dw', 'dwd.log');
    mkdirSync(join(sb.dir, 'state', 'dw'), { recursive: true });
    const earlier = Array.from({ length: 13 }, (_, i) =>
      JSON.stringify({ level: 30, time: new Date().toISOString(), pid: 999_999, msg: `an earlier daemon's line ${i}` }),
    );
    writeFileSync(log, `${earlier.join('\n')}\n`);
    const r = await dw(sb, ['run', OCR_WORKFLOW], { env: { DW_AUTOSTART: '1', DWD_MAX_MEMORY: 'lots' } });
    assert.equal(r.code, 4, r.stderr);
    assert.match(r.stderr, /DW_ERR_DAEMON_UNREACHABLE\]: could not start dwd: DWD_MAX_MEMORY: "lots" is not a size/);
    assert.doesNotMatch(r.stderr, /an earlier daemon's line/);
    for (const line of readFileSync(log, 'utf8').trim().split('\n')) assert.doesNotThrow(() => JSON.parse(line), line);
    assert.match(readFileSync(log, 'utf8'), /"code":"DW_ERR_USAGE".*"msg":"dwd could not start"/);
  } finally {
    sb.cleanup();
  }
});

test("the runner's own output becomes log records (no colour codes); its temporary folder is private and removed", {
  timeout: 60_000,
}, async () => {
  const sb = sandbox();
  const tmp = join(sb.dir, 'tmp');
  mkdirSync(tmp);
  const noisy = pluginWorkflow(sb.dir, 'noisy', `console.error('\\x1b[31mred alert\\x1b[0m'); console.log('plain words'); return 'ok';`);
  // Left by a daemon killed with its runner (its pid is gone), and one of a daemon still alive.
  // A pid counts in its own pid namespace only: a folder of another namespace (a container
  // sharing this folder) is never judged by this one's processes.
  const ns = /\[(\d+)\]/.exec(readlinkSync('/proc/self/ns/pid'))![1];
  const gone = spawnSync('true').pid;
  mkdirSync(join(tmp, `dw-runner-${ns}-${gone}-left`));
  writeFileSync(join(tmp, `dw-runner-${ns}-${gone}-left`, 'mat-debug-1.log'), '');
  const kept = [`dw-runner-${ns}-${process.pid}-alive`, `dw-runner-1${ns}-${gone}-other-namespace`];
  for (const k of kept) mkdirSync(join(tmp, k));
  const d = await startDaemon(sb, [], { TMPDIR: tmp });
  try {
    assert.equal((await dw(sb, ['run', noisy])).code, 0);
    assert.equal((await dw(sb, ['run', OCR_WORKFLOW, '-q'])).code, 0);
    const during = readdirSync(tmp).filter((n) => !kept.includes(n));
    assert.equal(during.length, 1, `one private folder for the runner, the dead daemon's removed: ${during}`);
    assert.match(during[0]!, new RegExp(`^dw-runner-${ns}-${d.proc.pid}-`));
    for (const k of kept) rmSync(join(tmp, k), { recursive: true });
    await d.stop();
    const lines = d.log().trim().split('\n');
    for (const line of lines) assert.doesNotThrow(() => JSON.parse(line), `not a JSON line: ${line}`);
    const records = lines.map((l) => JSON.parse(l));
    assert.ok(records.some((r) => r.source === 'runner' && r.stream === 'stderr' && r.msg === 'red alert' && r.level === 40));
    assert.ok(records.some((r) => r.source === 'runner' && r.stream === 'stdout' && r.msg === 'plain words'));
    assert.deepEqual(readdirSync(tmp), [], 'nothing left in the temporary folder (no mat-debug-PID.log)');
  } finally {
    await d.stop();
    sb.cleanup();
  }
});
