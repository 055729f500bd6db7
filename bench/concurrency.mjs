// Many dw clients against one warm daemon, as `make -j` or `xargs -P` would run them.
//   levels: 1, 2, 4, 8, 16 concurrent clients, each running workflows/ocr.json ROUNDS times:
//           throughput (runs/s) and p50/p99 latency per run, measured at the client.
//   mix:    a long run (the sample tiled 8 times) and a short one on other sessions (same files,
//           other session options): the short one's latency alone, and while the long one runs.
// Usage: node bench/concurrency.mjs [rounds]   (default 2 runs per client per level)
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';

const ROOT = join(import.meta.dirname, '..');
const DW = join(ROOT, 'dist', 'cli', 'dw.cjs');
const OCR = join(ROOT, 'workflows', 'ocr.json');
const SAMPLE = join(ROOT, 'workflows', 'samples', 'receipt.png');
const rounds = Number(process.argv[2] ?? 2);
const dir = mkdtempSync(join(tmpdir(), 'dwc-'));
const env = { ...process.env, DW_SOCKET: join(dir, 'dwd.sock'), XDG_STATE_HOME: join(dir, 'state'), DW_AUTOSTART: '1' };

/** Runs dw to completion; resolves with its wall time in ms. */
function dw(args) {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const p = spawn(process.execPath, [DW, ...args, '--quiet'], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.on('data', (d) => (err += d));
    p.on('close', (code) =>
      code === 0 ? resolve(Number(process.hrtime.bigint() - t0) / 1e6) : reject(new Error(`dw ${args.join(' ')}: ${code} ${err}`)),
    );
  });
}

const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
};

try {
  const meta = await sharp(SAMPLE).metadata();
  const tall = join(dir, 'tall.png');
  await sharp({ create: { width: meta.width, height: meta.height * 8, channels: 3, background: '#fff' } })
    .composite(Array.from({ length: 8 }, (_, i) => ({ input: SAMPLE, top: i * meta.height, left: 0 })))
    .png()
    .toFile(tall);
  const wf = JSON.parse(readFileSync(OCR, 'utf8'));
  delete wf.$schema;
  wf.variables.image = SAMPLE;
  wf.steps[0].pipeline.options = { graph_optimization: 'basic' };
  const short = join(dir, 'short.json');
  writeFileSync(short, JSON.stringify(wf));
  // Warm both sets of sessions and the shapes onnxruntime has seen; not measured.
  await dw(['run', OCR]);
  await dw(['run', OCR, '--arg', `image=${tall}`]);
  await dw(['run', short]);

  console.log(
    `concurrency: one warm daemon (--parallel 2), workflows/ocr.json on the sample, ${rounds} runs per client (${process.version}, ${process.arch})\n`,
  );
  console.log('| clients | runs | wall s | runs/s | p50 ms | p99 ms |');
  console.log('|---:|---:|---:|---:|---:|---:|');
  for (const clients of [1, 2, 4, 8, 16]) {
    const lat = [];
    const t0 = Date.now();
    await Promise.all(
      Array.from({ length: clients }, async () => {
        for (let i = 0; i < rounds; i++) lat.push(await dw(['run', OCR]));
      }),
    );
    const wall = (Date.now() - t0) / 1000;
    console.log(
      `| ${clients} | ${lat.length} | ${wall.toFixed(1)} | ${(lat.length / wall).toFixed(2)} | ${pct(lat, 50).toFixed(0)} | ${pct(lat, 99).toFixed(0)} |`,
    );
  }

  const alone = [];
  const during = [];
  const longs = [];
  for (let i = 0; i < 3; i++) {
    alone.push(await dw(['run', short]));
    const long = dw(['run', OCR, '--arg', `image=${tall}`]);
    await new Promise((r) => setTimeout(r, 300));
    during.push(await dw(['run', short]));
    longs.push(await long);
  }
  console.log('\n| mix (3 rounds, median ms) | latency |');
  console.log('|---|---:|');
  console.log(`| long run (sample tiled 8x) | ${pct(longs, 50).toFixed(0)} |`);
  console.log(`| short run on other sessions, alone | ${pct(alone, 50).toFixed(0)} |`);
  console.log(`| short run while the long one runs | ${pct(during, 50).toFixed(0)} |`);
} finally {
  spawnSync(process.execPath, [DW, 'stop'], { env });
  rmSync(dir, { recursive: true, force: true });
}
