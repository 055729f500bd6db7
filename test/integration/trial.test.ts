// Defects from the second hostile trial, each reproduced as it was found: files that are not files,
// oversized workflows, a client that pipelines without reading, two sockets in one folder, a path
// that is a user's file, a plugin that leaves a promise rejected, a TMPDIR that is gone.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import {
  DW,
  DWD,
  dw,
  dwJson,
  eventually,
  OCR_WORKFLOW,
  pluginWorkflow,
  ROOT,
  sandbox,
  slowWorkflow,
  spawnDw,
  startDaemon,
  withDaemon,
} from '../helpers/env.js';
import { PROTOCOL_VERSION } from '../../src/protocol/version.js';

const VERSION = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version;

/** A raw protocol connection (past dw's own checks): `ask` sends one request and resolves with its answer. */
async function rawClient(socket: string) {
  const s = createConnection(socket);
  await new Promise<void>((r, reject) => s.once('connect', r).once('error', reject));
  const waiting = new Map<string, (frame: any) => void>();
  let buf = '';
  s.on('data', (d) => {
    buf += d;
    for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
      const frame = JSON.parse(buf.slice(0, nl));
      buf = buf.slice(nl + 1);
      if (frame.type !== 'event') waiting.get(String(frame.id))?.(frame);
    }
  });
  let n = 0;
  const ask = (req: object): Promise<any> => {
    const id = `r${++n}`;
    s.write(`${JSON.stringify({ id, ...req })}\n`);
    return new Promise((r) => waiting.set(id, r));
  };
  const hello = await ask({ type: 'hello', protocol: PROTOCOL_VERSION, version: VERSION });
  assert.equal(hello.type, 'result');
  return { ask, socket: s, close: () => s.destroy() };
}

test('a workflow or sub-workflow that is a named pipe or a device is refused at once; the daemon still stops on SIGTERM', {
  timeout: 60_000,
}, async () => {
  const sb = sandbox();
  const d = await startDaemon(sb);
  try {
    const fifo = join(sb.dir, 'fifo.json');
    execFileSync('mkfifo', [fifo]);
    // dw refuses it before sending: dwd, not dw, would open the path.
    const viaDw = await dwJson(sb, ['validate', fifo]);
    assert.equal(viaDw.ran.code, 3, viaDw.ran.stderr);
    assert.match(viaDw.json.error.message, /fifo\.json is a pipe, not a file/);
    // Sent as is, dwd refuses it without opening it for good (it once waited for a writer in a
    // thread that then held the process's exit, so SIGTERM did nothing).
    const raw = await rawClient(sb.socket);
    for (const workflow of [fifo, '/dev/zero']) {
      const r = await raw.ask({ type: 'validate', workflow, args: {}, cwd: sb.dir });
      assert.equal(r.error.code, 'DW_ERR_FILE_NOT_FOUND', workflow);
      assert.match(r.error.message, workflow === fifo ? /a named pipe/ : /a device/);
    }
    raw.close();
    const parent = join(sb.dir, 'parent.json');
    writeFileSync(parent, JSON.stringify({ id: 'parent', steps: [{ name: 'sub', workflow: { path: 'fifo.json' } }] }));
    const sub = await dwJson(sb, ['validate', parent]);
    assert.equal(sub.json.error.code, 'DW_ERR_FILE_NOT_FOUND', sub.ran.stderr);
    assert.match(sub.json.error.message, /fifo\.json: a named pipe/);
    assert.equal((await dw(sb, ['run', OCR_WORKFLOW, '--json'])).code, 0, 'the daemon carries on');
    d.proc.kill('SIGTERM');
    assert.deepEqual(await d.exited, { code: 0, signal: null });
  } finally {
    await d.stop();
    sb.cleanup();
  }
});

test('dw in a folder that was removed says so and exits; /dev/stdin redirected from a file is that file', async () => {
  await withDaemon([], async (sb) => {
    const gone = join(sb.dir, 'gone');
    const inGone = (args: string) =>
      spawnSync('sh', ['-c', `mkdir "$G" && cd "$G" && rmdir "$G" && exec "$NODE" "$DW" ${args}`], {
        env: { ...sb.env, G: gone, NODE: process.execPath, DW },
        encoding: 'utf8',
        timeout: 30_000,
      });
    for (const args of [`run "${OCR_WORKFLOW}" -o "${sb.dir}"`, `validate "${OCR_WORKFLOW}"`, 'clear x.onnx']) {
      const r = inGone(args);
      assert.equal(r.status, 2, `${args}: ${r.stderr}`);
      assert.match(r.stderr, /the current folder \(.*gone\) no longer exists; cd to one that does/);
    }
    const piped = spawnSync('sh', ['-c', `exec "$NODE" "$DW" validate /dev/stdin < "$WF"`], {
      env: { ...sb.env, NODE: process.execPath, DW, WF: OCR_WORKFLOW },
      encoding: 'utf8',
    });
    assert.equal(piped.status, 0, piped.stderr);
    assert.match(piped.stdout, /valid workflow "ocr"/);
    const pipe = spawnSync('sh', ['-c', `cat "$WF" | exec "$NODE" "$DW" validate /dev/stdin`], {
      env: { ...sb.env, NODE: process.execPath, DW, WF: OCR_WORKFLOW },
      encoding: 'utf8',
    });
    assert.equal(pipe.status, 3, pipe.stderr);
    assert.match(pipe.stderr, /workflow \/dev\/stdin is a pipe, not a file/);
    // Open, but removed: no path leads to it, and dwd would open its own /dev/fd/8.
    const copy = join(sb.dir, 'copy.json');
    const removed = spawnSync('sh', ['-c', `cp "$WF" "$C" && exec 8<"$C" && rm "$C" && exec "$NODE" "$DW" validate /dev/fd/8`], {
      env: { ...sb.env, NODE: process.execPath, DW, WF: OCR_WORKFLOW, C: copy },
      encoding: 'utf8',
    });
    assert.equal(removed.status, 3, removed.stderr);
    assert.match(removed.stderr, /workflow \/dev\/fd\/8 is a file of this dw with no path to it \(removed\?\)/);
    // Any other file under /dev (a tmpfs) is a file like any.
    if (existsSync('/dev/shm')) {
      const shm = mkdtempSync('/dev/shm/dw-');
      try {
        const wf = join(shm, 'hi.json');
        writeFileSync(
          wf,
          JSON.stringify({ id: 'hi', steps: [{ name: 't', task: { type: 'text_template', arguments: { template: 'hi' } } }] }),
        );
        const onShm = await dw(sb, ['run', wf]);
        assert.equal(onShm.code, 0, onShm.stderr);
        assert.equal(onShm.stdout, 'hi\n');
      } finally {
        rmSync(shm, { recursive: true, force: true });
      }
    }
  });
});

test('a workflow file over 1 MiB, or one saved as UTF-16, is DW_ERR_WORKFLOW_INVALID saying so', async () => {
  await withDaemon([], async (sb) => {
    const huge = join(sb.dir, 'huge.json');
    const variables = Object.fromEntries(Array.from({ length: 100_000 }, (_, i) => [`v${i}`, i]));
    writeFileSync(huge, JSON.stringify({ id: 'huge', variables, steps: [] }));
    const big = await dwJson(sb, ['validate', huge]);
    assert.equal(big.ran.code, 3, big.ran.stderr);
    assert.equal(big.json.error.code, 'DW_ERR_WORKFLOW_INVALID');
    assert.match(big.json.error.message, /the file is \d+ bytes; a workflow file is at most 1048576 \(1 MiB\)/);
    const utf16 = join(sb.dir, 'utf16.json');
    writeFileSync(utf16, Buffer.from(readFileSync(OCR_WORKFLOW, 'utf8'), 'utf16le'));
    const wide = await dwJson(sb, ['validate', utf16]);
    assert.equal(wide.json.error.code, 'DW_ERR_WORKFLOW_INVALID');
    assert.match(wide.json.error.message, /not UTF-8 text \(it holds NUL bytes: saved as UTF-16\?\)/);
    assert.doesNotMatch(wide.json.error.message, /\0/);
    const latin1 = join(sb.dir, 'latin1.json');
    writeFileSync(latin1, Buffer.from('{"id":"caf\xe9","steps":[]}', 'latin1'));
    const other = await dwJson(sb, ['validate', latin1]);
    assert.match(other.json.error.message, /not UTF-8 text \(saved in another encoding, such as Latin-1\?\)/);
  });
});

test('a client that pipelines thousands of requests without reading slows only itself: others are answered, it gets every answer', {
  timeout: 120_000,
}, async () => {
  await withDaemon([], async (sb) => {
    const flood = await rawClient(sb.socket);
    const N = 3000;
    let answered = 0;
    flood.socket.pause(); // answers pile up unread
    flood.socket.write(Array.from({ length: N }, (_, i) => `${JSON.stringify({ id: `m${i}`, type: 'memory' })}\n`).join(''));
    await new Promise((r) => setTimeout(r, 1000));
    const status = await dwJson(sb, ['status']);
    assert.equal(status.ran.code, 0, status.ran.stderr);
    let buf = '';
    flood.socket.on('data', (d) => {
      buf += d;
      const lines = buf.split('\n');
      buf = lines.pop()!;
      answered += lines.filter((l) => l.includes('"type":"result"')).length;
    });
    flood.socket.resume();
    await eventually('every pipelined request answered', async () => answered === N, 90_000);
    flood.close();
  });
});

test('two sockets in one folder are two daemons, each with its own pid file', { timeout: 60_000 }, async () => {
  const sb = sandbox();
  const a = await startDaemon(sb, ['--socket', join(sb.dir, 'run', 'a.sock')]);
  const b = await startDaemon(sb, ['--socket', join(sb.dir, 'run', 'b.sock')]).catch(async (err) => {
    await a.stop();
    throw err;
  });
  try {
    for (const [name, d] of [
      ['a', a],
      ['b', b],
    ] as const) {
      const socket = join(sb.dir, 'run', `${name}.sock`);
      const r = await dwJson(sb, ['status'], { env: { ...sb.env, DW_SOCKET: socket } });
      assert.equal(r.json.pid, d.proc.pid, name);
      assert.match(readFileSync(`${socket}.pid`, 'utf8'), new RegExp(`^${d.proc.pid} `));
    }
  } finally {
    await a.stop();
    await b.stop();
    sb.cleanup();
  }
});

test("DW_SOCKET naming a user's file or folder: dwd refuses to replace it, and the file is untouched", async () => {
  const sb = sandbox();
  try {
    mkdirSync(join(sb.dir, 'run'));
    const notes = join(sb.dir, 'run', 'notes.txt');
    writeFileSync(notes, 'important notes');
    await assert.rejects(
      startDaemon(sb, ['--socket', notes]),
      /notes\.txt is a regular file, not a socket; dwd replaces only a stale socket/,
    );
    assert.equal(readFileSync(notes, 'utf8'), 'important notes');
    await assert.rejects(startDaemon(sb, ['--socket', join(sb.dir, 'run')]), /is a directory, not a socket/);
  } finally {
    sb.cleanup();
  }
});

test('a pid file without a start time that names some other live process is stale: dwd starts at once', { timeout: 60_000 }, async () => {
  const sb = sandbox();
  const sleeper = spawn('sleep', ['600'], { stdio: 'ignore' });
  try {
    mkdirSync(join(sb.dir, 'run'), { mode: 0o700 });
    writeFileSync(`${sb.socket}.pid`, `${sleeper.pid}\n`);
    const d = await startDaemon(sb);
    try {
      assert.doesNotMatch(d.log(), /waiting for the dwd/);
      assert.match(readFileSync(`${sb.socket}.pid`, 'utf8'), new RegExp(`^${d.proc.pid} \\d+\n$`));
    } finally {
      await d.stop();
    }
  } finally {
    sleeper.kill();
    sb.cleanup();
  }
});

test("a plugin that leaves a promise rejected fails its own run; the runner, its models and another client's run carry on", {
  timeout: 60_000,
}, async () => {
  await withDaemon([], async (sb) => {
    const warm = await dwJson(sb, ['run', OCR_WORKFLOW]);
    assert.equal(warm.ran.code, 0, warm.ran.stderr);
    const before = (await dwJson(sb, ['status'])).json.runners[0].pid;
    // A plugin run beside it, innocent: it must not pay for the other's slip.
    const innocent = spawnDw(sb, ['run', slowWorkflow(sb.dir, 2), '--json']);
    await innocent.stderrMatches(/sleep: \d+\/\d+ ticks/);
    const wf = pluginWorkflow(sb.dir, 'unhandled', `Promise.reject(new Error('nobody catches this')); return 'ok';`);
    const r = await dwJson(sb, ['run', wf]);
    const bystander = await innocent.done;
    assert.equal(bystander.code, 0, bystander.stdout);
    // A reason that cannot even become a string is named all the same.
    const odd = await dwJson(sb, [
      'run',
      pluginWorkflow(sb.dir, 'odd', 'Promise.reject(Object.create(null)); await new Promise((r) => setTimeout(r, 100)); return 1;'),
    ]);
    assert.match(odd.json.error.message, /nothing to handle it: \[object Object\]/);
    assert.equal(r.ran.code, 1, r.ran.stdout);
    assert.equal(r.json.error.code, 'DW_ERR_RUN_FAILED');
    assert.match(r.json.error.message, /plugin code left a promise rejected with nothing to handle it: nobody catches this/);
    const after = await dwJson(sb, ['run', OCR_WORKFLOW]);
    assert.equal(after.ran.code, 0, after.ran.stderr);
    assert.equal((await dwJson(sb, ['status'])).json.runners[0].pid, before, 'the same runner');
    assert.deepEqual(new Set(after.json.models.map((m: { cache: string }) => m.cache)), new Set(['hit']), 'its models stayed loaded');
  });
});

test('a TMPDIR that does not exist costs the runner its private temporary folder, not the daemon', { timeout: 60_000 }, async () => {
  const sb = sandbox();
  const d = await startDaemon(sb, [], { TMPDIR: join(sb.dir, 'gone') });
  try {
    const r = await dwJson(sb, ['run', OCR_WORKFLOW]);
    assert.equal(r.ran.code, 0, r.ran.stderr);
    assert.match(d.log(), /cannot make the runner a temporary folder there/);
  } finally {
    await d.stop();
    sb.cleanup();
  }
});

test('dw logs: a reader that closes the pipe ends dw quietly (141); a full disk is DW_ERR_OUTPUT; -f follows a rotated log', {
  timeout: 60_000,
}, async () => {
  const sb = sandbox();
  try {
    const log = join(sb.dir, 'state', 'dw', 'dwd.log');
    mkdirSync(join(sb.dir, 'state', 'dw'), { recursive: true });
    const line = (msg: string) => `${JSON.stringify({ level: 30, time: Date.now(), pid: 1, msg })}\n`;
    writeFileSync(log, Array.from({ length: 20_000 }, (_, i) => line(`line ${i}`)).join(''));
    const piped = spawnSync('bash', ['-c', `node ${DW} logs -n 20000 | head -1; echo "rc=\${PIPESTATUS[0]}" >&2`], {
      env: sb.env,
      encoding: 'utf8',
    });
    assert.match(piped.stderr, /^rc=141\n$/, piped.stderr);
    const full = spawnSync('bash', ['-c', `node ${DW} logs > /dev/full`], { env: sb.env, encoding: 'utf8' });
    assert.equal(full.status, 1);
    assert.match(full.stderr, /^dw: error \[DW_ERR_OUTPUT\]: cannot write to standard output: ENOSPC\n$/);

    const follow = spawn(process.execPath, [DW, 'logs', '-f', '-n', '0'], { env: sb.env });
    let out = '';
    follow.stdout.on('data', (d) => (out += d));
    try {
      await new Promise((r) => setTimeout(r, 500));
      appendFileSync(log, line('before the rotation'));
      await eventually('the line before the rotation', async () => out.includes('before the rotation'));
      renameSync(log, `${log}.1`);
      writeFileSync(log, line('after the rotation'));
      await eventually('the line after the rotation', async () => out.includes('after the rotation'));
      assert.equal(follow.exitCode, null, 'still following');
    } finally {
      follow.kill('SIGINT');
    }
  } finally {
    sb.cleanup();
  }
});

test('command-line edge cases: --arg __proto__, integers past 2^53, underflow, DW_AUTOSTART typos, dwd negative values, tiny --max-frame', async () => {
  await withDaemon([], async (sb) => {
    const wf = pluginWorkflow(sb.dir, 'echo', 'return args.n;', { variables: { n: 1 }, arguments: { n: 'variable:n' } });
    const proto = await dwJson(sb, ['run', wf, '--arg', '__proto__=1']);
    assert.equal(proto.json.error.code, 'DW_ERR_UNKNOWN_VARIABLE', proto.ran.stderr);
    const big = await dwJson(sb, ['run', wf, '--arg', 'n=9007199254740993']);
    assert.match(big.json.error.message, /a whole number beyond ±2\^53/);
    const exact = await dwJson(sb, ['run', wf, '--arg', 'n=9007199254740992']);
    assert.equal(exact.json.results.x, 2 ** 53, '2^53 itself is exact');
    const huge = await dwJson(sb, ['run', wf, '--arg', 'n=1e400']);
    assert.match(huge.json.error.message, /too large for a number/);
    const empty = await dw(sb, ['run', wf, '--output-dir', '']);
    assert.equal(empty.code, 2);
    assert.match(empty.stderr, /--output-dir is empty/);
    const tiny = await dwJson(sb, ['run', wf, '--arg', 'n=1e-400']);
    assert.match(tiny.json.error.message, /too small to tell from 0/);
    const typo = await dw(sb, ['run', wf], { env: { ...sb.env, DW_AUTOSTART: 'disable' } });
    assert.equal(typo.code, 2);
    assert.match(typo.stderr, /DW_AUTOSTART=disable: write 0, false, no or off/);
  });
  const dwd = (...args: string[]) => spawnSync(process.execPath, [DWD, ...args, '--version'], { encoding: 'utf8' });
  assert.equal(dwd('--keep-alive', '-1').status, 0, 'dwd --keep-alive -1 as documented');
  const frame = spawnSync(process.execPath, [DWD, '--max-frame', '10'], { encoding: 'utf8' });
  assert.equal(frame.status, 2);
  assert.match(frame.stderr, /--max-frame: 10 is too small; the least is 4K/);
  const empty = spawnSync(process.execPath, [DWD, '--cache-size', ''], { encoding: 'utf8' });
  assert.equal(empty.status, 2);
  assert.match(empty.stderr, /--cache-size is empty; give a value/);
  const two = spawnSync(process.execPath, [DW, 'run', 'a.json', 'b.json'], { encoding: 'utf8' });
  assert.equal(two.status, 2);
  assert.match(two.stderr, /dw run takes at most 1 argument, got "a\.json" "b\.json"/);
});

test('clients holding unfinished requests cannot take the daemon down: past 64 MiB in all, the connection idle longest is closed, not the next client', {
  timeout: 60_000,
}, async () => {
  await withDaemon([], async (sb, d) => {
    const clients = await Promise.all(Array.from({ length: 16 }, () => rawClient(sb.socket)));
    const closed = clients.map(
      (c) =>
        new Promise<string>((r) => {
          let got = '';
          c.socket.on('data', (x) => (got += x));
          c.socket.on('close', () => r(got));
        }),
    );
    // Each just under a request's 4 MiB, sent and left unfinished: 16 of them just under the 64 MiB.
    const piece = `{"id":"x","type":"status","pad":"${'a'.repeat(4_194_000)}`;
    await Promise.all(clients.map((c) => new Promise((r) => c.socket.write(piece, r))));
    // A client with a request of its own (120 kB) takes them over the bound: one of them goes.
    const wf = join(sb.dir, 'echo.json');
    writeFileSync(
      wf,
      JSON.stringify({
        id: 'echo',
        variables: { s: '' },
        steps: [{ name: 't', task: { type: 'text_template', arguments: { template: '{s}', values: { s: 'variable:s' } } } }],
      }),
    );
    const next = await dw(sb, ['run', wf, '--arg', `s=${'b'.repeat(120_000)}`]);
    assert.equal(next.code, 0, next.stderr);
    assert.equal(next.stdout, `${'b'.repeat(120_000)}\n`);
    const dropped = await Promise.race([
      Promise.any(closed),
      new Promise<string>((_, no) => setTimeout(() => no(new Error('none closed')), 20_000).unref()),
    ]);
    assert.match(dropped, /dwd holds 64 MB of unfinished requests from its clients; this connection's, idle longest, is dropped/);
    // A peer that goes on sending after its answer, never closing, is closed by the daemon.
    const rude = createConnection({ path: sb.socket, allowHalfOpen: true });
    let heard = '';
    rude.on('data', (x) => (heard += x));
    rude.on('error', () => {});
    const writing = setInterval(() => rude.writable && rude.write('more garbage '.repeat(1000)), 50);
    rude.write('not json\n');
    await new Promise((r) => rude.on('close', r));
    clearInterval(writing);
    assert.match(heard, /malformed frame/);
    const st = await dwJson(sb, ['status']);
    assert.equal(st.ran.code, 0, st.ran.stderr);
    assert.equal(st.json.pid, d.proc.pid);
    for (const c of clients) c.close();
  });
});

test('clients flooding bad requests without reading are dropped once their answers pile up; the log names the first few', {
  timeout: 120_000,
}, async () => {
  await withDaemon([], async (sb, d) => {
    // Many connections, each one read's worth of bad lines (32,768 of them), none reading: each
    // used to be answered line by line, megabytes buffered per connection.
    const floods = await Promise.all(
      Array.from({ length: 50 }, async () => {
        const s = createConnection(sb.socket);
        await new Promise((r) => s.once('connect', r));
        s.pause();
        s.on('error', () => {});
        s.write('1\n'.repeat(32_768));
        return s;
      }),
    );
    const dropping = /"msg":"closing a connection: bad requests whose answers it does not read"/g;
    await eventually('every flood dropped', async () => d.log().match(dropping)?.length === floods.length);
    // Read only now: what was answered before the drop, and the drop.
    const heard = floods.map(
      (s) =>
        new Promise<string>((r) => {
          let got = '';
          s.on('data', (x) => (got += x));
          s.on('close', () => r(got));
          s.resume();
        }),
    );
    for (const got of await Promise.all(heard)) {
      assert.match(got, /\d+ bad requests, their answers unread; this connection is dropped/);
      // What the kernel's socket buffers hold (some hundreds of kB), not all 32,768 answers.
      assert.ok(got.split('\n').length < 16_384, `answered ${got.split('\n').length} lines before the drop`);
    }
    const st = await dwJson(sb, ['status']);
    assert.equal(st.ran.code, 0, st.ran.stderr);
    assert.ok(d.log().match(/"msg":"bad request"/g)!.length <= 5 * floods.length);
    // One that reads its answers gets each of them, and only the first five are logged.
    const reader = createConnection(sb.socket);
    await new Promise((r) => reader.once('connect', r));
    let answers = '';
    reader.on('data', (x) => (answers += x));
    const before = d.log().match(/"msg":"bad request"/g)!.length;
    for (let i = 0; i < 20; i++) {
      reader.write('{"id":2,"type":"status"}\n');
      await eventually('its answer', async () => answers.split('\n').length > i + 1);
    }
    reader.destroy();
    assert.match(answers, /"message":"send \\"hello\\" first"/);
    await eventually('the count in the log', async () => /"refused":20/.test(d.log()));
    assert.equal(d.log().match(/"msg":"bad request"/g)!.length - before, 5, 'the first five only');
  });
});

test('a folder at the pid file path is named, not a stack trace; a sparse array of length 4e9 as a result is refused at once', {
  timeout: 60_000,
}, async () => {
  const sb = sandbox();
  try {
    mkdirSync(`${sb.socket}.pid`, { recursive: true });
    await assert.rejects(startDaemon(sb), /dwd\.sock\.pid is a directory, not a pid file; remove it/);
  } finally {
    sb.cleanup();
  }
  await withDaemon([], async (sb2) => {
    const r = await dwJson(sb2, ['run', pluginWorkflow(sb2.dir, 'sparse', 'const a = []; a.length = 4e9; return { a };')]);
    assert.equal(r.json.error.code, 'DW_ERR_RUN_FAILED');
    assert.match(
      r.json.error.message,
      /its result is an array of 4000000000 items, more than a result can carry as JSON \(save it to a file\) \(at \$\.a\)/,
    );
  });
});

test('dw stop during a run with a 15 MB result: the client still gets all of it before the daemon exits', { timeout: 60_000 }, async () => {
  await withDaemon([], async (sb, d) => {
    const wf = pluginWorkflow(sb.dir, 'big', 'await new Promise((r) => setTimeout(r, 1000)); return "x".repeat(15_000_000);');
    const run = spawnDw(sb, ['run', wf, '--json']);
    await run.stderrMatches(/x: started/);
    assert.equal((await dw(sb, ['stop'])).code, 0);
    const r = await run.done;
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).results.x.length, 15_000_000);
    assert.deepEqual(await d.exited, { code: 0, signal: null });
  });
});

test('dw clear right after a runner crash: what the dead runner held is not loaded again behind it', { timeout: 60_000 }, async () => {
  await withDaemon([], async (sb) => {
    assert.equal((await dw(sb, ['run', OCR_WORKFLOW, '-q'])).code, 0);
    process.kill((await dwJson(sb, ['status'])).json.runners[0].pid, 'SIGKILL');
    assert.equal((await dw(sb, ['clear'])).code, 0);
    await new Promise((r) => setTimeout(r, 3000));
    const m = (await dwJson(sb, ['memory'])).json;
    assert.deepEqual(m.runners[0].models, [], 'nothing came back');
  });
});
