// What files by content cost, side by side in one run on this machine:
//  1. Inputs by path against by content, to a daemon of the same user here: a one-step workflow
//     that decodes a WAV file (audio_load: little work beyond reading it), for a 1 MB and a 50 MB
//     input. By content a first run uploads the file (a new file each round), later runs of the
//     same file only hash it here and find it in the daemon's store.
//  2. A warm `dw run workflows/ocr.json` over ssh to this host (a real sshd on 127.0.0.1, as
//     another account) against the same run on a local socket: with a new ssh connection per run
//     (DW_SSH_MULTIPLEX=0), and as dw does by default, reusing the previous run's (ControlMaster).
// Needs root (it makes the account, as test/integration/remote.test.ts does) and openssh-server.
// Usage: node --import tsx bench/remote.mjs [rounds]   (after npm run build)
import { execFileSync, spawnSync } from 'node:child_process';
import { chownSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureUser, otherUserMissing, sharedInstall, sshMissing, startSshd } from '../test/helpers/sshd.ts';

const rounds = Number(process.argv[2] ?? 11);
const ROOT = join(import.meta.dirname, '..');
const DW = join(ROOT, 'dist', 'cli', 'dw.cjs');
const OCR = join(ROOT, 'workflows', 'ocr.json');
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const missing = sshMissing() ?? otherUserMissing();
if (missing) {
  console.error(`bench/remote.mjs cannot run here: ${missing}`);
  process.exit(2);
}

const dir = mkdtempSync(join(tmpdir(), 'dw-bench-remote-'));
const local = {
  ...process.env,
  DW_SOCKET: join(dir, 'run', 'dwd.sock'),
  XDG_STATE_HOME: join(dir, 'state'),
  DWD_RUNNERS: '1',
  DWD_CACHE_SIZE: '0', // runs that run: the cost of getting there, not of the step cache
};
delete local.DW_HOST;

/** One dw run; its wall time in ms (fails loudly: a bench of failures measures nothing). */
function run(args, env) {
  const t0 = performance.now();
  const r = spawnSync(process.execPath, [DW, ...args], { env, encoding: 'utf8' });
  const ms = performance.now() - t0;
  if (r.status !== 0) throw new Error(`dw ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  return ms;
}

/** A mono 16-bit WAV of about `bytes`, its samples from `seed` (a new seed, new bytes). */
function wav(path, bytes, seed) {
  const samples = Math.floor((bytes - 44) / 2);
  const b = Buffer.alloc(44 + 2 * samples);
  b.write('RIFF', 0);
  b.writeUInt32LE(36 + 2 * samples, 4);
  b.write('WAVEfmt ', 8);
  b.writeUInt32LE(16, 16);
  b.writeUInt16LE(1, 20);
  b.writeUInt16LE(1, 22);
  b.writeUInt32LE(16000, 24);
  b.writeUInt32LE(32000, 28);
  b.writeUInt16LE(2, 32);
  b.writeUInt16LE(16, 34);
  b.write('data', 36);
  b.writeUInt32LE(2 * samples, 40);
  let s = seed | 1;
  for (let i = 0; i < samples; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) | 0;
    b.writeInt16LE((s >> 20) & 0x7fff, 44 + 2 * i);
  }
  writeFileSync(path, b);
}

const loadWf = join(dir, 'load.json');
writeFileSync(
  loadWf,
  JSON.stringify({
    id: 'load',
    variables: { audio: 'in.wav' },
    steps: [{ name: 'load', task: { type: 'audio_load', arguments: { audio: 'variable:audio', mono: true } } }],
  }),
);

let sshd;
let install;
let remoteHome;
try {
  console.log(`## Inputs by path and by content, a daemon of the same user here (median of ${rounds} rounds)\n`);
  console.log('| input | by path | by content, first time (uploaded) | by content, again (hashed, not sent) |');
  console.log('|---|---:|---:|---:|');
  run(['run', loadWf, '--arg', `audio=${join(dir, 'w.wav')}`], local); // starts the daemon (errors: no such file, fine below)
} catch {}
try {
  for (const [label, bytes] of [
    ['1 MB', 1e6],
    ['50 MB', 50e6],
  ]) {
    const same = join(dir, `same-${label}.wav`);
    wav(same, bytes, 7);
    run(['run', loadWf, '--arg', `audio=${same}`], local); // warm: the daemon and the page cache
    run(['run', loadWf, '--arg', `audio=${same}`], { ...local, DW_BY_CONTENT: '1' }); // in the store
    const byPath = [];
    const first = [];
    const again = [];
    for (let r = 0; r < rounds; r++) {
      const fresh = join(dir, `fresh-${label}-${r}.wav`);
      wav(fresh, bytes, 1000 + r);
      byPath.push(run(['run', loadWf, '--arg', `audio=${same}`], local));
      first.push(run(['run', loadWf, '--arg', `audio=${fresh}`], { ...local, DW_BY_CONTENT: '1' }));
      again.push(run(['run', loadWf, '--arg', `audio=${same}`], { ...local, DW_BY_CONTENT: '1' }));
      rmSync(fresh);
    }
    console.log(`| ${label} | ${median(byPath).toFixed(0)} ms | ${median(first).toFixed(0)} ms | ${median(again).toFixed(0)} ms |`);
  }

  // 2. ssh to this host, as another account with dw installed where it can read it.
  const user = 'dwtest-remote';
  const u = ensureUser(user);
  execFileSync('usermod', ['-p', '*', user]);
  install = sharedInstall();
  sshd = await startSshd([{ name: user, ...u }]);
  remoteHome = mkdtempSync(join(tmpdir(), 'dw-remote-'));
  chownSync(remoteHome, u.uid, u.gid);
  const remote = {
    ...local,
    DW_SOCKET: '',
    XDG_RUNTIME_DIR: join(dir, 'rt'),
    DW_HOST: sshd.url(user),
    PATH: sshd.path,
    DW_REMOTE_DW: `env XDG_RUNTIME_DIR=${remoteHome} XDG_STATE_HOME=${remoteHome}/state DWD_RUNNERS=1 DWD_CACHE_SIZE=0 ${install.dw}`,
  };
  // By default dw keeps its ssh connection up for the next dw (ControlMaster); DW_SSH_MULTIPLEX=0 opens one per run.
  const mux = remote;
  const fresh = { ...remote, DW_SSH_MULTIPLEX: '0' };
  for (const env of [local, fresh, mux]) for (let i = 0; i < 2; i++) run(['run', OCR], env); // warm models, store, connection
  const times = { local: [], ssh: [], mux: [] };
  for (let r = 0; r < rounds; r++) {
    times.local.push(run(['run', OCR], local));
    times.ssh.push(run(['run', OCR], fresh));
    times.mux.push(run(['run', OCR], mux));
  }
  const l = median(times.local);
  const over = (ms) => `${ms - l >= 0 ? '+' : '−'}${Math.abs(ms - l).toFixed(0)} ms`;
  console.log(`\n## A warm \`dw run workflows/ocr.json\`: local socket, and over ssh to this host (median of ${rounds} rounds)\n`);
  console.log('| how | wall time | over local |');
  console.log('|---|---:|---:|');
  console.log(`| local socket | ${l.toFixed(0)} ms | |`);
  console.log(
    `| DW_HOST=ssh://, DW_SSH_MULTIPLEX=0: a new ssh connection per run | ${median(times.ssh).toFixed(0)} ms | ${over(median(times.ssh))} |`,
  );
  console.log(
    `| DW_HOST=ssh://, default: through the socket the previous run's ssh connection forwards | ${median(times.mux).toFixed(0)} ms | ${over(median(times.mux))} |`,
  );
  run(['stop'], remote);
} finally {
  spawnSync(process.execPath, [DW, 'stop'], { env: local, stdio: 'ignore' });
  try {
    execFileSync('pkill', ['-u', 'dwtest-remote']);
  } catch {}
  await sshd?.stop();
  install?.remove();
  if (remoteHome) rmSync(remoteHome, { recursive: true, force: true });
  rmSync(dir, { recursive: true, force: true });
}
