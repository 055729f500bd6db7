// What one large run leaves behind, and how long it stays: the runner after an OCR of a large page at
// full resolution (onnxruntime's arenas keep their peak), and the daemon after relaying large results.
//   runner: warm OCR runs, then one OCR of a large page (the sample tiled to about SIDE x SIDE pixels,
//           read at limit_side_len 4096);
//           runner RSS right after it, then every 0.5 s until dwd has replaced the idle runner (its
//           models loaded again), and whether the next run finds them loaded
//   daemon: RSS of an autostarted dwd before, after 8 plugin results of 15 MB each, and after 150 small runs
// Usage: node bench/large-runs.mjs [side]   (after npm ci; default 4096)
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';

const ROOT = join(import.meta.dirname, '..');
const DW = join(ROOT, 'dist', 'cli', 'dw.cjs');
const SAMPLE = join(ROOT, 'workflows', 'samples', 'receipt.png');
const side = Number(process.argv[2] ?? 4096);
const dir = mkdtempSync(join(tmpdir(), 'dwl-'));
const env = {
  ...process.env,
  DW_SOCKET: join(dir, 'dwd.sock'),
  XDG_STATE_HOME: join(dir, 'state'),
  DW_AUTOSTART: '1',
  DWD_CACHE_SIZE: '0',
};
const MB = 1024 * 1024;
const mb = (n) => `${(n / MB).toFixed(0)} MB`;

function dw(...args) {
  const r = spawnSync(process.execPath, [DW, ...args], { env, cwd: dir, encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
  if (r.status !== 0) throw new Error(`dw ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  return r.stdout;
}
const memory = () => JSON.parse(dw('memory', '--json'));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// A copy of ocr.json whose limit_side_len is a variable, and a tall page to read at full resolution.
const wf = JSON.parse(readFileSync(join(ROOT, 'workflows', 'ocr.json'), 'utf8'));
delete wf.$schema;
wf.variables = { ...wf.variables, image: SAMPLE, limit: 960 };
wf.steps[0].pipeline.arguments.limit_side_len = 'variable:limit';
writeFileSync(join(dir, 'ocr.json'), JSON.stringify(wf));
const meta = await sharp(SAMPLE).metadata();
const [cols, rows] = [Math.max(1, Math.round(side / meta.width)), Math.max(1, Math.round(side / meta.height))];
const [pageW, pageH] = [cols * meta.width, rows * meta.height];
await sharp({ create: { width: pageW, height: pageH, channels: 3, background: '#ffffff' } })
  .composite(
    Array.from({ length: cols * rows }, (_, i) => ({
      input: SAMPLE,
      top: Math.floor(i / cols) * meta.height,
      left: (i % cols) * meta.width,
    })),
  )
  .png()
  .toFile(join(dir, 'page.png'));
writeFileSync(join(dir, 'big.mjs'), 'export default { async run(args) { return { s: "x".repeat(args.mb * 1048576) }; } };\n');
writeFileSync(
  join(dir, 'big.json'),
  JSON.stringify({
    id: 'big',
    variables: { mb: 0 },
    steps: [{ name: 'x', pipeline: { type: './big.mjs', models: {}, arguments: { mb: 'variable:mb' } } }],
  }),
);

const table = [];
try {
  for (let i = 0; i < 5; i++) dw('run', 'ocr.json', '-q');
  const before = memory().runners[0];
  table.push(['runner after 5 ordinary runs', mb(before.rss)]);
  dw('run', 'ocr.json', '-q', '--arg', 'image=page.png', '--arg', 'limit=4096');
  const t0 = performance.now();
  const after = memory().runners[0];
  table.push([`runner right after one run on a ${pageW}x${pageH} page at limit_side_len 4096`, mb(after.rss)]);
  let now = after;
  while (now.pid === after.pid && performance.now() - t0 < 60_000) {
    await sleep(500);
    now = memory().runners[0];
  }
  await sleep(1000); // its models are loaded again in the background
  now = memory().runners[0];
  table.push([
    `runner after dwd replaced it (${now.pid === after.pid ? 'NOT replaced' : `within ${((performance.now() - t0) / 1000).toFixed(1)} s of the run's end`}), ${now.models.length} models loaded`,
    mb(now.rss),
  ]);
  const next = JSON.parse(dw('run', 'ocr.json', '--json'));
  table.push(['the next run', next.models.map((m) => m.cache).join(', ')]);

  const daemon0 = memory().daemon.rss;
  for (let i = 0; i < 8; i++) dw('run', 'big.json', '-q', '--arg', 'mb=15');
  await sleep(1000);
  const daemon1 = memory().daemon.rss;
  for (let i = 0; i < 150; i++) dw('run', 'big.json', '-q');
  const daemon2 = memory().daemon.rss;
  table.push(['daemon before relaying large results', mb(daemon0)]);
  table.push(['daemon after 8 results of 15 MB', mb(daemon1)]);
  table.push(['daemon after 150 more small runs', mb(daemon2)]);
} finally {
  spawnSync(process.execPath, [DW, 'stop'], { env });
  rmSync(dir, { recursive: true, force: true });
}
console.log(`large runs (${process.version}, ${process.arch})\n`);
console.log('| measure | value |');
console.log('|---|---:|');
for (const [k, v] of table) console.log(`| ${k} | ${v} |`);
