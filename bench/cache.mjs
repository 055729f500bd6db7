// What the step cache saves, side by side in one run (interleaved rounds, medians of per-round
// ratios, since this machine is shared and noisy):
//  1. A fully cached `dw run workflows/ocr.json` against `node -e ''`, the floor of any Node CLI.
//  2. receipt-total.json (crop → OCR sub-workflow → text template) with only its last step changed
//     each round (a new template), with the cache (crop and OCR come from it) and with --no-cache.
// When NODE_EXTRA_CA_CERTS is set, every Node process reads and parses that file as it starts
// (85 ms on the host the README's figures come from): the rows of 1. are taken both with it and
// without it, since it hides what dw itself costs.
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

const { NODE_EXTRA_CA_CERTS: extraCerts, ...withoutCerts } = env;
const envs = extraCerts ? { 'as this shell starts Node': env, 'without NODE_EXTRA_CA_CERTS': withoutCerts } : { '': env };

function time(args, childEnv = env) {
  const t0 = performance.now();
  const r = spawnSync(process.execPath, args, { env: childEnv, encoding: 'utf8' });
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

// The least any Node client of dwd can do for the same run: connect, hello, run, print the text;
// no checks, no progress, no outputs. What it costs over `node -e ''` is Node's socket, the round
// trips and the daemon's work, which no CLI written in Node avoids.
const BARE = join(dir, 'bare-client.cjs');
const { PROTOCOL_VERSION, PACKAGE_VERSION } = await import(join(ROOT, 'dist', 'protocol', 'version.js'));
writeFileSync(
  BARE,
  `const s = require('node:net').connect(${JSON.stringify(env.DW_SOCKET)});
let buf = '';
s.on('connect', () => s.write(${JSON.stringify(
    `${JSON.stringify({ id: 1, type: 'hello', protocol: PROTOCOL_VERSION, version: PACKAGE_VERSION })}\n${JSON.stringify({ id: 2, type: 'run', workflow: OCR, args: {}, cwd: ROOT })}\n`,
  )}));
s.on('data', (d) => {
  buf += d;
  for (let k; (k = buf.indexOf('\\n')) >= 0; buf = buf.slice(k + 1)) {
    const m = JSON.parse(buf.slice(0, k));
    if (m.id === 2 && m.type !== 'event') {
      process.stdout.write(m.result.results.read.text + '\\n');
      s.end();
    }
  }
});
`,
);

try {
  dw('run', OCR); // starts the daemon, loads the models, stores the entry
  dw('run', TOTAL, '-o', dir);
  const starts = Object.fromEntries(Object.keys(envs).map((k) => [k, { floor: [], cached: [], bare: [], ratio: [], bareRatio: [] }]));
  const withCache = [];
  const noCache = [];
  const ratios = { last: [], lastDaemon: [] };
  for (let r = 0; r < rounds; r++) {
    for (const [name, e] of Object.entries(envs)) {
      const f = time(['-e', ''], e).ms;
      const c = time([DW, 'run', OCR], e);
      const b = time([BARE], e);
      if (b.out !== c.out) throw new Error(`the bare client printed ${JSON.stringify(b.out)}, dw ${JSON.stringify(c.out)}`);
      const all = { floor: f, cached: c.ms, bare: b.ms, ratio: c.ms / f, bareRatio: b.ms / f };
      Object.entries(all).forEach(([k, v]) => starts[name][k].push(v));
    }
    const a = dw('run', TOTAL, '-o', dir, '--json', '--arg', `template=total {line} #${r}`);
    const b = dw('run', TOTAL, '-o', dir, '--json', '--no-cache', '--arg', `template=total {line} #${r}b`);
    const steps = JSON.parse(a.out)
      .steps.map((s) => s.cache)
      .join(',');
    if (steps !== 'hit,hit,off,miss') throw new Error(`expected crop and OCR from the cache, got ${steps}`);
    withCache.push(a.ms);
    noCache.push(b.ms);
    ratios.last.push(b.ms / a.ms);
    ratios.lastDaemon.push(JSON.parse(b.out).timings.total_ms / Math.max(1, JSON.parse(a.out).timings.total_ms));
  }
  const ms = (xs) => `${median(xs).toFixed(0)} ms`;
  const x = (xs) => `${median(xs).toFixed(2)}x`;
  console.log(`Median of ${rounds} interleaved rounds:\n`);
  console.log('| | wall time | ratio (median of rounds) | target |');
  console.log('|---|---:|---:|---|');
  for (const [name, t] of Object.entries(starts)) {
    const as = name ? ` (${name})` : '';
    console.log(`| \`node -e ''\`${as} | ${ms(t.floor)} | | |`);
    console.log(`| fully cached \`dw run workflows/ocr.json\`${as} | ${ms(t.cached)} | ${x(t.ratio)} \`node -e ''\` | ≤ 1.3x |`);
    console.log(`| the same run by a bare Node client${as} | ${ms(t.bare)} | ${x(t.bareRatio)} \`node -e ''\` | |`);
  }
  console.log(`| receipt-total, last step changed, cache on | ${ms(withCache)} | | |`);
  console.log(
    `| receipt-total, last step changed, --no-cache | ${ms(noCache)} | ${x(ratios.last)} slower (in the daemon: ${median(ratios.lastDaemon).toFixed(1)}x) | ≥ 3x |`,
  );
} finally {
  spawnSync(process.execPath, [DW, 'stop'], { env, stdio: 'ignore' });
  rmSync(dir, { recursive: true, force: true });
}
