// What the step cache saves, side by side in one run (interleaved rounds, medians of per-round
// ratios, since this machine is shared and noisy):
//  1. A fully cached `dw run workflows/ocr.json` against `node -e ''`, the floor of any Node CLI.
//  2. receipt-total.json (crop → OCR sub-workflow → text template) with only its last step changed
//     each round (a new template), with the cache (crop and OCR come from it) and with --no-cache.
// Usage: node bench/cache.mjs [rounds]   (after npm run build)
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const rounds = Number(process.argv[2] ?? 15);
const ROOT = join(import.meta.dirname, '..');
const DW = join(ROOT, 'dist', 'cli', 'dw.cjs');
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const dir = mkdtempSync(join(tmpdir(), 'dw-bench-cache-'));
const env = {
  ...process.env,
  DW_SOCKET: join(dir, 'run', 'dwd.sock'),
  XDG_STATE_HOME: join(dir, 'state'),
  XDG_CACHE_HOME: join(dir, 'cache'),
  DW_AUTOSTART: '1',
  DWD_CACHE_SIZE: '1G',
};

function time(args) {
  const t0 = performance.now();
  const r = spawnSync(process.execPath, args, { env, encoding: 'utf8' });
  const ms = performance.now() - t0;
  if (r.status !== 0) throw new Error(`${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  return { ms, out: r.stdout };
}
const dw = (...args) => time([DW, ...args]);

// receipt-total.json with its template a variable, so a run can change the last step alone.
for (const f of ['receipt-total.json', 'ocr.json']) cpSync(join(ROOT, 'workflows', f), join(dir, f));
const total = JSON.parse(readFileSync(join(dir, 'receipt-total.json'), 'utf8'));
total.variables.image = join(ROOT, 'workflows', 'samples', 'receipt.png');
total.variables.template = '{line}';
total.steps.at(-1).task.arguments.template = 'variable:template';
writeFileSync(join(dir, 'receipt-total.json'), JSON.stringify(total));
const TOTAL = join(dir, 'receipt-total.json');
const OCR = join(ROOT, 'workflows', 'ocr.json');

try {
  dw('run', OCR); // starts the daemon, loads the models, stores the entry
  dw('run', TOTAL, '-o', dir);
  const floor = [];
  const cached = [];
  const withCache = [];
  const noCache = [];
  const ratios = { cached: [], last: [], lastDaemon: [] };
  for (let r = 0; r < rounds; r++) {
    const f = time(['-e', '']).ms;
    const c = dw('run', OCR).ms;
    const a = dw('run', TOTAL, '-o', dir, '--json', '--arg', `template=total {line} #${r}`);
    const b = dw('run', TOTAL, '-o', dir, '--json', '--no-cache', '--arg', `template=total {line} #${r}b`);
    const steps = JSON.parse(a.out)
      .steps.map((s) => s.cache)
      .join(',');
    if (steps !== 'hit,hit,off,miss') throw new Error(`expected crop and OCR from the cache, got ${steps}`);
    floor.push(f);
    cached.push(c);
    withCache.push(a.ms);
    noCache.push(b.ms);
    ratios.cached.push(c / f);
    ratios.last.push(b.ms / a.ms);
    ratios.lastDaemon.push(JSON.parse(b.out).timings.total_ms / Math.max(1, JSON.parse(a.out).timings.total_ms));
  }
  console.log(`Median of ${rounds} interleaved rounds:\n`);
  console.log('| | wall time | ratio (median of rounds) | target |');
  console.log('|---|---:|---:|---|');
  console.log(`| \`node -e ''\` | ${median(floor).toFixed(0)} ms | | |`);
  console.log(
    `| fully cached \`dw run workflows/ocr.json\` | ${median(cached).toFixed(0)} ms | ${median(ratios.cached).toFixed(2)}x \`node -e ''\` | ≤ 1.3x |`,
  );
  console.log(`| receipt-total, last step changed, cache on | ${median(withCache).toFixed(0)} ms | | |`);
  console.log(
    `| receipt-total, last step changed, --no-cache | ${median(noCache).toFixed(0)} ms | ${median(ratios.last).toFixed(2)}x slower (in the daemon: ${median(ratios.lastDaemon).toFixed(1)}x) | ≥ 3x |`,
  );
} finally {
  spawnSync(process.execPath, [DW, 'stop'], { env, stdio: 'ignore' });
  rmSync(dir, { recursive: true, force: true });
}
