// Files by content, with real processes: a real OpenSSH server on 127.0.0.1 (DW_HOST=ssh://), an
// account made for the test that cannot read the caller's files, its own dwd started there by
// `dw dial-stdio`, and a dwd run as that account on a local socket. Raw protocol clients check
// what a client may not do: offer bytes that do not match, stop half-way, send too much.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, chownSync, copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createHash } from 'node:crypto';
import {
  DW,
  dw,
  dwJson,
  eventually,
  OCR_WORKFLOW,
  ROOT,
  sandbox,
  SAMPLE,
  slowWorkflow,
  spawnDw,
  withDaemon,
  type Sandbox,
} from '../helpers/env.js';
import { ensureUser, otherUserMissing, sharedInstall, sshMissing, startSshd, type Sshd } from '../helpers/sshd.js';
import { PACKAGE_VERSION, PROTOCOL_VERSION } from '../../src/protocol/version.js';

const RECEIPT_TOTAL = join(ROOT, 'workflows', 'receipt-total.json');
const USER = 'dwtest-remote';
const skipRemote = sshMissing() ?? otherUserMissing();

/** A folder only its owner (root, the test) can read, with the receipt in it: the remote account cannot open it. */
function privateScan(sb: Sandbox): string {
  const dir = join(sb.dir, 'private');
  mkdirSync(dir, { mode: 0o700 });
  const scan = join(dir, 'scan.png');
  copyFileSync(SAMPLE, scan);
  chmodSync(scan, 0o600);
  return scan;
}

describe('DW_HOST=ssh:// to another account through a real sshd', { skip: skipRemote ?? false }, () => {
  let sshd: Sshd;
  let install: ReturnType<typeof sharedInstall>;
  let remoteHome: string;
  let sb: Sandbox;
  let env: NodeJS.ProcessEnv;

  before(async () => {
    const u = ensureUser(USER);
    // A locked account ('!', useradd's default) may not log in even with a key when PAM is off.
    execFileSync('usermod', ['-p', '*', USER]);
    install = sharedInstall();
    sshd = await startSshd([{ name: USER, ...u }]);
    // The remote account's daemon keeps its socket and state in a folder of its own.
    remoteHome = mkdtempSync(join(tmpdir(), 'dw-remote-'));
    chownSync(remoteHome, u.uid, u.gid);
    sb = sandbox();
    const remoteEnv = `env XDG_RUNTIME_DIR=${remoteHome} XDG_STATE_HOME=${remoteHome}/state XDG_CACHE_HOME=${remoteHome}/cache DWD_RUNNERS=1 DWD_CACHE_SIZE=0`;
    env = {
      DW_HOST: sshd.url(USER),
      DW_REMOTE_DW: `${remoteEnv} ${install.dw}`,
      PATH: sshd.path,
      DW_SOCKET: '',
      // dw's ssh control socket and forward live beside its socket: in the sandbox, not in /tmp/dw-UID.
      XDG_RUNTIME_DIR: join(sb.dir, 'rt'),
    };
  });

  after(async () => {
    await dw(sb, ['stop'], { env });
    // Nothing of the remote account may outlive the tests (its daemon above, ssh sessions).
    try {
      execFileSync('pkill', ['-u', USER]);
    } catch {}
    await sshd?.stop();
    install?.remove();
    rmSync(remoteHome, { recursive: true, force: true });
    sb?.cleanup();
  });

  test('a run reads a file the remote account cannot, sends only what the daemon lacks, and writes outputs here', async () => {
    const scan = privateScan(sb);
    assert.throws(
      () => execFileSync('runuser', ['-u', USER, '--', 'cat', scan], { stdio: 'ignore' }),
      'the remote account must not read it',
    );
    const first = await dwJson(sb, ['run', OCR_WORKFLOW, '--arg', `image=${scan}`], { env });
    assert.equal(first.ran.code, 0, first.ran.stderr);
    assert.match(first.json.results.read.text, /TOTAL 15\.90/);
    assert.equal(first.json.sent.files, 2, 'the workflow and the image');
    assert.equal(first.json.sent.uploaded_bytes, readFileSync(scan).length + readFileSync(OCR_WORKFLOW).length);

    const second = await dwJson(sb, ['run', OCR_WORKFLOW, '--arg', `image=${scan}`], { env });
    assert.equal(second.ran.code, 0, second.ran.stderr);
    assert.equal(second.json.results.read.text, first.json.results.read.text);
    assert.deepEqual(second.json.sent, { files: 2, uploaded_files: 0, uploaded_bytes: 0 }, 'a second run sends nothing');
    assert.ok(second.json.models.length > 0 && second.json.models.every((m: { cache: string }) => m.cache === 'hit'));

    // A sub-workflow and a default input travel too; the saved output lands in this host's folder.
    const out = join(sb.dir, 'out');
    const total = await dwJson(sb, ['run', RECEIPT_TOTAL, '-o', out], { env });
    assert.equal(total.ran.code, 0, total.ran.stderr);
    assert.equal(total.json.sent.files, 3, 'receipt-total.json, ocr.json and the sample');
    assert.deepEqual(readdirSync(out), ['receipt-total-total.txt']);
    assert.match(readFileSync(join(out, 'receipt-total-total.txt'), 'utf8'), /TOTAL 15\.90/);
  });

  test('dw status and dw logs show the remote daemon; dw validate checks there', async () => {
    const st = await dw(sb, ['status', '--json'], { env });
    assert.equal(st.code, 0, st.stderr);
    const s = JSON.parse(st.stdout);
    assert.equal(s.socket, join(remoteHome, 'dw', 'dwd.sock'));
    const owner = execFileSync('ps', ['-o', 'user=', '-p', String(s.pid)], { encoding: 'utf8' }).trim();
    assert.equal(owner, USER, 'the daemon runs as the remote account');
    const logs = await dw(sb, ['logs', '-n', '3'], { env });
    assert.equal(logs.code, 0, logs.stderr);
    assert.match(logs.stdout, /run done|run failed|runner ready/);
    // The workflows of runs by content are paths on this host, not the daemon's: it lists them, never watches them.
    const more = await dw(sb, ['logs', '-n', '200'], { env });
    assert.doesNotMatch(more.stdout, /file watcher error/);
    const v = await dw(sb, ['validate', RECEIPT_TOTAL], { env });
    assert.equal(v.code, 0, v.stderr);
    assert.match(v.stdout, /valid workflow "receipt-total"/);
  });

  test('Ctrl-C ends dw logs -f through ssh, there as well as here, with 0 as on this host', async () => {
    const follow = spawnDw(sb, ['logs', '-f', '-n', '1'], { env, group: true });
    await new Promise((res) => follow.proc.stdout!.once('data', res));
    const following = () => {
      try {
        return execFileSync('pgrep', ['-u', USER, '-f', 'dw.cjs logs -n 1 -f'], { encoding: 'utf8' }).trim();
      } catch {
        return '';
      }
    };
    assert.notEqual(following(), '', 'the far dw follows the log');
    // A terminal's Ctrl-C signals the whole foreground group: dw and its ssh alike. Without a
    // terminal, ssh does not pass it on: the far dw used to follow on for good.
    process.kill(-follow.proc.pid!, 'SIGINT');
    const r = await follow.done;
    assert.equal(r.code, 0, r.stderr);
    await eventually('the far dw logs -f to end', async () => following() === '');
  });

  test('on a terminal too: Ctrl-C goes through ssh as a key, ends the far dw logs -f, and dw says 0', async () => {
    // script gives dw a terminal; ssh -t makes it raw, so Ctrl-C reaches the far side as a key.
    const term = spawn('script', ['-qec', `${process.execPath} ${DW} logs -f -n 1; echo "RC=$?"`, '/dev/null'], {
      env: { ...process.env, ...sb.env, ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let out = '';
    const watchers = new Set<() => void>();
    term.stdout!.on('data', (d) => {
      out += d;
      for (const w of watchers) w();
    });
    const shows = (re: RegExp) =>
      new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`the terminal never showed ${re}: ${JSON.stringify(out)}`)), 30_000);
        const check = () => re.test(out) && (clearTimeout(timer), watchers.delete(check), resolve());
        watchers.add(check);
        check();
      });
    try {
      await shows(/ (INFO|WARN) /);
      term.stdin!.write('\x03');
      await shows(/RC=\d+/);
      assert.match(out, /RC=0\b/, 'the far shell killed by SIGINT made ssh say 255');
    } finally {
      term.kill('SIGKILL');
    }
  });

  test('Ctrl-C cancels the remote run; the remote daemon goes on', async () => {
    const wf = slowWorkflow(sb.dir, 30);
    const run = spawnDw(sb, ['run', wf], { env });
    await run.stderrMatches(/sleep: \d+\/600 ticks/);
    run.proc.kill('SIGINT');
    const r = await run.done;
    assert.equal(r.code, 130, r.stderr);
    const idle = await eventually('the remote run to end', async () => {
      const st = await dw(sb, ['status', '--json'], { env });
      return st.code === 0 && JSON.parse(st.stdout).runs_active === 0 ? st : undefined;
    });
    assert.equal(idle.code, 0);
  });

  test('an input missing on this host names the path and the host it was looked for on', async () => {
    const r = await dw(sb, ['run', OCR_WORKFLOW, '--arg', `image=${join(sb.dir, 'nope.png')}`], { env });
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stderr, /DW_ERR_FILE_NOT_FOUND.*nope\.png cannot be read on the client's host \(ENOENT\)/);
  });

  test("a relative model path is looked for on the daemon's host, and the error says so", async () => {
    const wf = join(sb.dir, 'mine.json');
    writeFileSync(
      wf,
      JSON.stringify({
        id: 'mine',
        steps: [{ name: 'm', pipeline: { type: 'onnx', models: { model: 'models/mine.onnx' }, arguments: { inputs: {} } } }],
      }),
    );
    const r = await dw(sb, ['validate', wf], { env });
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stderr, /DW_ERR_MODEL_NOT_FOUND.*models\/mine\.onnx cannot be read on the daemon's host \S+ \((ENOENT|EACCES)\)/);
  });

  test('dw stop stops the remote daemon and says so', async () => {
    const r = await dw(sb, ['stop'], { env });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /dwd \(pid \d+ on .+\) stopped/);
    const again = await dw(sb, ['status'], { env });
    assert.equal(again.code, 4);
    assert.match(again.stderr, /no dwd answers/);
  });

  test('after a stop the next run starts a daemon there again, and the one after finds it', async () => {
    for (let i = 0; i < 2; i++) {
      const r = await dwJson(sb, ['run', OCR_WORKFLOW], { env });
      assert.equal(r.ran.code, 0, r.ran.stderr);
      assert.match(r.json.results.read.text, /TOTAL 15\.90/);
    }
  });
});

test("an unreachable ssh host fails at once with DW_ERR_DAEMON_UNREACHABLE and ssh's own message", {
  skip: sshMissing() ?? false,
}, async () => {
  const sb = sandbox();
  try {
    // A port nothing listens on (sshd's helper finds free ones the same way).
    const { freePort } = await import('../helpers/sshd.js');
    const port = await freePort();
    const t0 = Date.now();
    const r = await dw(sb, ['--host', `ssh://127.0.0.1:${port}`, 'status'], {
      env: { DW_SOCKET: '', XDG_RUNTIME_DIR: join(sb.dir, 'rt') },
    });
    assert.equal(r.code, 4, r.stderr);
    assert.match(r.stderr, /DW_ERR_DAEMON_UNREACHABLE.*ssh exited with code 255.*Connection refused/);
    assert.ok(Date.now() - t0 < 5000 + 3000, 'within the connect deadline');
  } finally {
    sb.cleanup();
  }
});

test('a dwd running as another account serves a run on a file only the caller can read', {
  skip: otherUserMissing() ?? false,
}, async () => {
  const u = ensureUser(USER);
  const install = sharedInstall();
  const theirs = mkdtempSync(join(tmpdir(), 'dw-other-'));
  chownSync(theirs, u.uid, u.gid);
  chmodSync(theirs, 0o755);
  const sb = sandbox();
  const socket = join(theirs, 'dwd.sock');
  // The socket open to everyone (as the system service's is to its group): umask 0 for its daemon.
  const daemon = spawn(
    'runuser',
    [
      '-u',
      USER,
      '--',
      'sh',
      '-c',
      `umask 0; exec env XDG_STATE_HOME=${theirs}/state XDG_CACHE_HOME=${theirs}/cache DWD_RUNNERS=1 ${process.execPath} ${install.dir}/dist/daemon/main.js --socket ${socket}`,
    ],
    { stdio: 'ignore' },
  );
  try {
    const scan = privateScan(sb);
    await eventually('their daemon to answer', async () => (await dw(sb, ['status'], { env: { DW_SOCKET: socket } })).code === 0);
    const r = await dwJson(sb, ['run', OCR_WORKFLOW, '--arg', `image=${scan}`], { env: { DW_SOCKET: socket } });
    assert.equal(r.ran.code, 0, r.ran.stderr);
    assert.match(r.json.results.read.text, /TOTAL 15\.90/);
    assert.equal(r.json.sent.files, 2, 'a daemon of another account gets the files by content, unasked');
    // Its input store is its own, private, and no workflow may name what is in it.
    const store = join(theirs, 'state', 'dw', 'inputs');
    const stored = readdirSync(store).find((n) => n.endsWith('.png'))!;
    // A request that names it as a path (a client that does not send by content) is refused.
    const sneaky = await rawRequest(socket, {
      type: 'validate',
      workflow: join(install.dir, 'workflows', 'ocr.json'),
      args: { image: join(store, stored) },
      cwd: '/',
    });
    assert.equal(sneaky.error?.code, 'DW_ERR_PATH_FORBIDDEN', JSON.stringify(sneaky));
    assert.match(sneaky.error.message, /input store/);
  } finally {
    await dw(sb, ['stop'], { env: { DW_SOCKET: socket } });
    daemon.kill();
    install.remove();
    rmSync(theirs, { recursive: true, force: true });
    sb.cleanup();
  }
});

/** Calls `on` with each JSON frame that arrives on `s` (newline-delimited, as the protocol is). */
function onFrames(s: Socket, on: (f: Record<string, any>) => void): void {
  let buf = '';
  s.on('data', (d) => {
    buf += d;
    const lines = buf.split('\n');
    buf = lines.pop()!;
    for (const l of lines) on(JSON.parse(l));
  });
}

/** A raw client: hello, then a validate by content of `workflow`, answering its need with `answer`. */
function rawByContent(
  socket: string,
  workflow: string,
  answer: (need: { path: string }, send: (frame: object) => void) => void,
): Promise<Array<Record<string, any>>> {
  return new Promise((resolve, reject) => {
    const s = createConnection(socket);
    const frames: Array<Record<string, any>> = [];
    const send = (f: object) => s.write(`${JSON.stringify(f)}\n`);
    s.on('connect', () => {
      send({ id: 1, type: 'hello', protocol: PROTOCOL_VERSION, version: PACKAGE_VERSION });
      send({ id: 2, type: 'validate', workflow, args: {}, cwd: '/', by_content: true });
    });
    onFrames(s, (f) => {
      frames.push(f);
      if (f.type === 'event' && f.event.kind === 'need') answer(f.event, send);
      if (f.id === 2 && f.type !== 'event') s.end();
    });
    s.on('close', () => resolve(frames));
    s.on('error', reject);
  });
}

/** One request after a hello, on a raw connection: its final frame. */
function rawRequest(socket: string, body: object): Promise<Record<string, any>> {
  return new Promise((resolve, reject) => {
    const s = createConnection(socket);
    s.on('connect', () => {
      s.write(`${JSON.stringify({ id: 1, type: 'hello', protocol: PROTOCOL_VERSION, version: PACKAGE_VERSION })}\n`);
      s.write(`${JSON.stringify({ id: 2, ...body })}\n`);
    });
    onFrames(s, (f) => {
      if (f.id === 2 && f.type !== 'event') {
        s.destroy();
        resolve(f);
      }
    });
    s.on('error', reject);
  });
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

test('bytes that do not hash to what was offered, a piece past the size and a file over the store are refused; the store keeps nothing of them', async () => {
  await withDaemon(['--input-store', '64K'], async (sb) => {
    const body = Buffer.from(
      JSON.stringify({ id: 'tiny', steps: [{ name: 't', task: { type: 'text_template', arguments: { template: 'hi' } } }] }),
    );
    const store = join(sb.env.XDG_STATE_HOME!, 'dw', 'inputs');
    // Offered as one file, sent as another.
    const wrong = await rawByContent(sb.socket, '/w.json', (need, send) => {
      send({ id: 10, type: 'offer', target: 2, path: need.path, sha256: sha(body), size: body.length });
      const other = Buffer.from(body);
      other[0] = 0x20;
      send({ id: 11, type: 'put', target: 2, sha256: sha(body), offset: 0, data_base64: other.toString('base64') });
    });
    const end = wrong.find((f) => f.id === 2 && f.type !== 'event')!;
    assert.equal(end.error?.code, 'DW_ERR_CONTENT_MISMATCH', JSON.stringify(wrong));
    // A piece that runs past the size offered.
    const past = await rawByContent(sb.socket, '/w.json', (need, send) => {
      send({ id: 10, type: 'offer', target: 2, path: need.path, sha256: sha(body), size: 4 });
      send({ id: 11, type: 'put', target: 2, sha256: sha(body), offset: 0, data_base64: body.toString('base64') });
    });
    assert.equal(past.find((f) => f.id === 2 && f.type !== 'event')!.error?.code, 'DW_ERR_CONTENT_MISMATCH');
    // More than the whole store: refused at the offer, before any byte.
    const big = await rawByContent(sb.socket, '/w.json', (need, send) =>
      send({ id: 10, type: 'offer', target: 2, path: need.path, sha256: sha(body), size: 65 * 1024 }),
    );
    assert.equal(big.find((f) => f.id === 10)!.error?.code, 'DW_ERR_INPUT_TOO_LARGE');
    assert.equal(big.find((f) => f.id === 2 && f.type !== 'event')!.error?.code, 'DW_ERR_INPUT_TOO_LARGE');
    // A client that stops half-way and goes away leaves no half-written entry.
    await new Promise<void>((resolve) => {
      const s = createConnection(sb.socket);
      const send = (f: object) => s.write(`${JSON.stringify(f)}\n`);
      s.on('connect', () => {
        send({ id: 1, type: 'hello', protocol: PROTOCOL_VERSION, version: PACKAGE_VERSION });
        send({ id: 2, type: 'validate', workflow: '/w.json', args: {}, cwd: '/', by_content: true });
      });
      s.on('data', (d) => {
        if (!String(d).includes('"need"')) return;
        send({ id: 10, type: 'offer', target: 2, path: '/w.json', sha256: sha(body), size: body.length });
        send({ id: 11, type: 'put', target: 2, sha256: sha(body), offset: 0, data_base64: body.subarray(0, 10).toString('base64') });
        setTimeout(() => s.destroy(), 200);
      });
      s.on('close', () => resolve());
    });
    await eventually('the half-sent upload to be removed', async () => readdirSync(store).length === 0);
    // And the right bytes are taken, stored under their hash, then found there by the next run.
    const ok = await rawByContent(sb.socket, '/w.json', (need, send) => {
      send({ id: 10, type: 'offer', target: 2, path: need.path, sha256: sha(body), size: body.length });
      send({ id: 11, type: 'put', target: 2, sha256: sha(body), offset: 0, data_base64: body.toString('base64') });
    });
    assert.equal(ok.find((f) => f.id === 2 && f.type !== 'event')!.type, 'result', JSON.stringify(ok));
    assert.deepEqual(readdirSync(store), [sha(body)]);
    const again = await rawByContent(sb.socket, '/w.json', (need, send) =>
      send({ id: 10, type: 'offer', target: 2, path: need.path, sha256: sha(body), size: body.length }),
    );
    assert.deepEqual(again.find((f) => f.id === 10)!.result, { have: true });
    assert.equal(again.find((f) => f.id === 2 && f.type !== 'event')!.type, 'result');
    // Knowing the hash alone (the wrong size) is not having the file: it must be sent.
    const guess = await rawByContent(sb.socket, '/w.json', (need, send) =>
      send({ id: 10, type: 'offer', target: 2, path: need.path, sha256: sha(body), size: 0 }),
    );
    assert.deepEqual(guess.find((f) => f.id === 10)!.result, { have: false });
  });
});

test('the store stays within --input-store: least recently used entries go first', async () => {
  await withDaemon(['--input-store', '3K'], async (sb) => {
    const store = join(sb.env.XDG_STATE_HOME!, 'dw', 'inputs');
    const workflows = [0, 1, 2, 3].map((i) => {
      const wf = join(sb.dir, `w${i}.json`);
      const pad = 'x'.repeat(1000);
      writeFileSync(
        wf,
        JSON.stringify({
          id: `w${i}`,
          description: pad,
          steps: [{ name: 't', task: { type: 'text_template', arguments: { template: 'hi' } } }],
        }),
      );
      return wf;
    });
    for (const wf of workflows) {
      const r = await dw(sb, ['validate', wf], { env: { DW_BY_CONTENT: '1' } });
      assert.equal(r.code, 0, r.stderr);
    }
    const kept = readdirSync(store);
    const bytes = kept.reduce((s, n) => s + readFileSync(join(store, n)).length, 0);
    assert.ok(bytes <= 3 * 1024, `${bytes} bytes kept`);
    assert.ok(!kept.includes(sha(readFileSync(workflows[0]!))), 'the oldest went first');
    assert.ok(kept.includes(sha(readFileSync(workflows[3]!))));
  });
});

test('by content to a daemon that reads small frames (--max-frame 8K), a file travels in pieces that fit', async () => {
  await withDaemon(['--max-frame', '8K'], async (sb) => {
    const r = await dwJson(sb, ['run', OCR_WORKFLOW, '--arg', `image=${SAMPLE}`], { env: { DW_BY_CONTENT: '1' } });
    assert.equal(r.ran.code, 0, r.ran.stderr);
    assert.match(r.json.results.read.text, /TOTAL 15\.90/);
    assert.equal(r.json.sent.uploaded_bytes, readFileSync(SAMPLE).length + readFileSync(OCR_WORKFLOW).length);
  });
});

test('DW_HOST=unix:///path and dw --host unix:///path name a local socket, as DW_SOCKET does', async () => {
  await withDaemon([], async (sb) => {
    const byFlag = await dw(sb, ['--host', `unix://${sb.socket}`, 'status', '--json'], { env: { DW_SOCKET: '' } });
    assert.equal(byFlag.code, 0, byFlag.stderr);
    assert.equal(JSON.parse(byFlag.stdout).socket, sb.socket);
    const byEnv = await dw(sb, ['status'], { env: { DW_SOCKET: '', DW_HOST: `unix://${sb.socket}` } });
    assert.equal(byEnv.code, 0, byEnv.stderr);
    // --host wins over DW_HOST.
    const both = await dw(sb, ['--host', `unix://${sb.socket}`, 'status'], { env: { DW_SOCKET: '', DW_HOST: 'unix:///nowhere/dwd.sock' } });
    assert.equal(both.code, 0, both.stderr);
    const bad = await dw(sb, ['--host', 'tcp://x:1', 'status']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /DW_ERR_USAGE.*ssh:\/\/\[user@\]host\[:port\]/);
  });
});

test('a daemon that asks for a file the workflow does not name gets a refusal, not the file', async () => {
  const sb = sandbox();
  const secret = join(sb.dir, 'secret.txt');
  writeFileSync(secret, 'my secret token');
  const socket = join(sb.dir, 'fake.sock');
  const offers: Array<Record<string, unknown>> = [];
  // A daemon of "another user" (uid in its hello), which asks for the workflow, then the secret.
  const server = createServer((s) => {
    const send = (f: object) => s.write(`${JSON.stringify(f)}\n`);
    onFrames(s, (f) => {
      if (f.type === 'hello')
        send({
          id: f.id,
          type: 'result',
          result: {
            protocol: PROTOCOL_VERSION,
            version: PACKAGE_VERSION,
            pid: 1,
            autostarted: false,
            timeout_ms: 1000,
            uid: 12345,
            host: 'elsewhere',
            socket,
            input_store_bytes: 1e9,
            max_request_bytes: 1e6,
          },
        });
      if (f.type === 'run') {
        send({ id: f.id, type: 'event', event: { kind: 'need', path: f.workflow, what: 'workflow' } });
        send({ id: f.id, type: 'event', event: { kind: 'need', path: secret, what: 'input' } });
      }
      if (f.type === 'offer') {
        offers.push(f);
        send({ id: f.id, type: 'result', result: { have: true } });
        if (offers.length === 2) send({ id: f.target, type: 'error', error: { code: 'DW_ERR_RUN_FAILED', message: 'done' } });
      }
    });
  });
  await new Promise<void>((r) => server.listen(socket, r));
  try {
    const r = await dw(sb, ['run', OCR_WORKFLOW], { env: { DW_SOCKET: socket } });
    assert.equal(r.code, 1, r.stderr);
    const bySecret = offers.find((o) => o.path === secret)!;
    assert.equal(bySecret.sha256, undefined, 'no hash, no bytes');
    assert.match(String(bySecret.error), /not a file this workflow or its --arg values name/);
    assert.ok(offers.find((o) => o.path === OCR_WORKFLOW)?.sha256, 'the workflow itself is offered');
  } finally {
    server.close();
    sb.cleanup();
  }
});
