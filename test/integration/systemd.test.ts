// dwd under systemd: socket activation on a pre-bound fd 3, and unit files that systemd accepts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { alive, DWD, dw, dwJson, OCR_WORKFLOW, ROOT, sandbox, startDaemon } from '../helpers/env.js';

test('dwd takes the listening socket systemd passes on fd 3 and runs workflows through it', async () => {
  const sb = sandbox();
  const socket = join(sb.dir, 'activated.sock');
  const logfile = join(sb.dir, 'dwd.log');
  const env = { ...sb.env, DW_SOCKET: socket };
  const pid = Number(
    execFileSync(process.execPath, [join(ROOT, 'test', 'helpers', 'socket-activate.mjs'), socket, DWD, logfile], {
      env,
      encoding: 'utf8',
    }).trim(),
  );
  try {
    const r = await dwJson({ ...sb, env }, ['run', OCR_WORKFLOW]);
    assert.equal(r.ran.code, 0, `${r.ran.stderr}\n${readFileSync(logfile, 'utf8')}`);
    assert.equal(r.json.ok, true);
    const st = await dwJson({ ...sb, env }, ['status']);
    assert.equal(st.json.pid, pid, 'the activated daemon answered');
    assert.match(readFileSync(logfile, 'utf8'), /"socket_activated":true/);
  } finally {
    await dw({ ...sb, env }, ['stop']);
    const deadline = Date.now() + 10_000;
    while (alive(pid) && Date.now() < deadline) await new Promise((res) => setTimeout(res, 25));
    assert.equal(alive(pid), false);
    sb.cleanup();
  }
});

const analyze = spawnSync('systemd-analyze', ['--version'], { encoding: 'utf8' });
// The user units (systemd/user/) need a running user manager to verify, which a CI container lacks.
test('the system unit files pass systemd-analyze verify', {
  skip: analyze.error ? 'systemd-analyze is not installed (apt-get install systemd)' : false,
}, () => {
  const r = spawnSync('systemd-analyze', ['verify', join(ROOT, 'systemd', 'dwd.service'), join(ROOT, 'systemd', 'dwd.socket')], {
    encoding: 'utf8',
  });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stderr + r.stdout, '', 'no warnings either');
});

test('dw finds the system service socket when no per-user daemon answers', async () => {
  const sb = sandbox();
  const system = join(sb.dir, 'system', 'dwd.sock');
  const d = await startDaemon({ ...sb, env: { ...sb.env, DW_SOCKET: system } });
  try {
    const env: NodeJS.ProcessEnv = {
      ...sb.env,
      DW_SOCKET: '',
      XDG_RUNTIME_DIR: join(sb.dir, 'xdg'),
      DW_SYSTEM_SOCKET: system,
      DW_AUTOSTART: '0',
    };
    const r = await dwJson(sb, ['run', OCR_WORKFLOW], { env });
    assert.equal(r.ran.code, 0, r.ran.stderr);
    assert.equal((await dwJson(sb, ['status'], { env })).json.pid, d.proc.pid);
  } finally {
    await d.stop();
    sb.cleanup();
  }
});
