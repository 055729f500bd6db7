// Runs last (files run in name order): every dwd and runner that the tests started has exited,
// and no child of the test run is left a zombie.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { eventually, ROOT } from '../helpers/env.js';

function processes(): Array<{ pid: number; ppid: number; state: string; cmd: string; env: string }> {
  const out = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const [state, ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      let cmd = '';
      let env = '';
      try {
        cmd = readFileSync(`/proc/${name}/cmdline`, 'utf8').replace(/\0/g, ' ');
        env = readFileSync(`/proc/${name}/environ`, 'utf8');
      } catch {}
      out.push({ pid: Number(name), ppid: Number(ppid), state: state!, cmd, env });
    } catch {
      // exited while we looked
    }
  }
  return out;
}

test('no dwd or runner started by the tests is still running, and no zombie is left', async () => {
  const ours = (p: { cmd: string; env: string }) =>
    (p.cmd.includes(`${ROOT}/dist/daemon/main.js`) || p.cmd.includes(`${ROOT}/dist/runner/main.js`)) &&
    /DW_SOCKET=[^\0]*\/dwt-/.test(p.env);
  // Daemons stopped by the last test may still be finishing their shutdown.
  const strays = await eventually(
    'test daemons to exit',
    async () => {
      const left = processes().filter(ours);
      return left.length === 0 ? [] : undefined;
    },
    10_000,
  ).catch(() => processes().filter(ours));
  assert.deepEqual(
    strays.map((p) => `${p.pid} ${p.cmd}`),
    [],
  );
  const zombies = processes().filter((p) => p.state === 'Z' && (p.ppid === process.pid || p.ppid === process.ppid));
  assert.deepEqual(
    zombies.map((p) => p.pid),
    [],
  );
});
