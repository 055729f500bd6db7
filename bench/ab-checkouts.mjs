// bench/cold-vs-warm.mjs for two checkouts at once, interleaved round by round, so that a change
// is judged against its base under the same machine noise (this machine is shared: numbers from
// two separate invocations differ by more than most changes do). Each checkout gets its own daemon.
// Usage: node bench/ab-checkouts.mjs BASE_DIR NEW_DIR [rounds]   (both built; default 20 rounds)
//   e.g. git worktree add --detach ../base main && (cd ../base && npm ci && npm run build)
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const [base, next, roundsArg] = process.argv.slice(2);
if (!base || !next) throw new Error('usage: node bench/ab-checkouts.mjs BASE_DIR NEW_DIR [rounds]');
const rounds = Number(roundsArg ?? 20);
const setups = [base, next].map((dir) => {
  const root = resolve(dir);
  const tmp = mkdtempSync(join(tmpdir(), 'dwab-'));
  const env = {
    ...process.env,
    DW_SOCKET: join(tmp, 'dwd.sock'),
    XDG_STATE_HOME: join(tmp, 'state'),
    DW_AUTOSTART: '1',
    DWD_CACHE_SIZE: '0',
  };
  return { root, tmp, env, dw: join(root, 'dist', 'cli', 'dw.cjs'), oneshot: [], warm: [], run: [] };
});

function time(s, args) {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(process.execPath, args, { env: s.env, cwd: s.root, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${args.join(' ')} failed in ${s.root} (${r.status}):\n${r.stderr}`);
  return { ms: Number(process.hrtime.bigint() - t0) / 1e6, stdout: r.stdout };
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

try {
  // Start both daemons and load their models; not measured.
  for (const s of setups) time(s, [s.dw, 'run', 'workflows/ocr.json', '--quiet']);
  for (let i = 0; i < rounds; i++) {
    // Alternate which checkout goes first, so neither always runs right after the other's one-shot.
    for (const s of i % 2 ? setups : [...setups].reverse()) {
      s.oneshot.push(time(s, [join(s.root, 'bench', 'oneshot.mjs')]).ms);
      const r = time(s, [s.dw, 'run', 'workflows/ocr.json', '--json', '--quiet']);
      s.warm.push(r.ms);
      s.run.push(JSON.parse(r.stdout).timings.run_ms);
    }
  }
} finally {
  for (const s of setups) {
    spawnSync(process.execPath, [s.dw, 'stop'], { env: s.env });
    rmSync(s.tmp, { recursive: true, force: true });
  }
}

console.log(`ab-checkouts: ${rounds} interleaved rounds, medians (${process.version}, ${process.arch})\n`);
// The second checkout against the first round by round (both ran under the same noise): a median ratio
// whose quartiles straddle 1.00 is no difference this machine can show.
const quartiles = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return [0.25, 0.5, 0.75].map((q) => s[Math.round(q * (s.length - 1))].toFixed(3));
};
const paired = (k) => setups[1][k].map((v, i) => v / setups[0][k][i]);
console.log('| checkout | one-shot ms | dw run warm ms | run_ms | one-shot / warm |');
console.log('|---|---:|---:|---:|---:|');
for (const s of setups) {
  console.log(
    `| ${s.root} | ${median(s.oneshot).toFixed(1)} | ${median(s.warm).toFixed(1)} | ${median(s.run).toFixed(1)} | ${(median(s.oneshot) / median(s.warm)).toFixed(2)}x |`,
  );
}
console.log(
  `\nsecond / first, round by round: dw run warm ${quartiles(paired('warm')).join(' / ')}, run_ms ${quartiles(paired('run')).join(' / ')} (quartiles 25 / 50 / 75 %)`,
);
