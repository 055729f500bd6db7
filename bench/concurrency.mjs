// Many dw clients against one warm daemon, as `make -j` or `xargs -P` would run them, on a daemon
// with one runner and on one with two (dwd --runners), side by side in one run:
//   levels: 1, 2, 4, 8, 16 concurrent clients, each running workflows/ocr.json ROUNDS times:
//           throughput (runs/s) and p50/p99 latency per run, measured at the client.
//   mix:    a long run (the sample tiled 8 times) and a short one on other sessions (same files,
//           other session options): the short one's latency alone, and while the long one runs.
//   pair:   an OCR run and a VAD run (other models) one after the other, then started together.
//   clients on two workflows: 16 clients alternating OCR and VAD runs: every run must succeed.
// Ratios are the median of each round's own ratio: this machine's speed drifts within a run, and a
// round's two figures were taken under the same noise.
// Usage: node bench/concurrency.mjs [rounds]   (default 2 runs per client per level; the mix and the pair 7 rounds)
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';

const ROOT = join(import.meta.dirname, '..');
const DW = join(ROOT, 'dist', 'cli', 'dw.cjs');
const OCR = join(ROOT, 'workflows', 'ocr.json');
const VAD = join(ROOT, 'workflows', 'vad.json');
const SAMPLE = join(ROOT, 'workflows', 'samples', 'receipt.png');
const SPEECH = join(ROOT, 'workflows', 'samples', 'speech.wav');
const rounds = Number(process.argv[2] ?? 2);
const MIX_ROUNDS = 7;
const POOLS = [1, 2];
const dir = mkdtempSync(join(tmpdir(), 'dwc-'));

/** The environment of the dw clients of one daemon: its own socket, autostarted with `runners` runners. */
const envOf = (runners) => ({
  ...process.env,
  DW_SOCKET: join(dir, `r${runners}`, 'dwd.sock'),
  XDG_STATE_HOME: join(dir, `r${runners}`, 'state'),
  DW_AUTOSTART: '1',
  DWD_RUNNERS: String(runners),
  DWD_CACHE_SIZE: '0', // the pipelines' own time: no step served from the step cache
});

/** Runs dw to completion; resolves with its wall time in ms. */
function dw(env, args) {
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
const med = (xs) => pct(xs, 50);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A WAV of the speech sample repeated `times` times (a VAD run about as long as an OCR of the sample). */
function longSpeech(times) {
  const wav = readFileSync(SPEECH);
  const data = wav.indexOf('data');
  const header = Buffer.from(wav.subarray(0, data + 8));
  const pcm = wav.subarray(data + 8, data + 8 + wav.readUInt32LE(data + 4));
  const body = Buffer.concat(Array.from({ length: times }, () => pcm));
  header.writeUInt32LE(body.length, data + 4);
  header.writeUInt32LE(header.length - 8 + body.length, 4);
  const out = join(dir, 'speech-long.wav');
  writeFileSync(out, Buffer.concat([header, body]));
  return out;
}

/** The dw arguments of each run the bench makes. */
function runsOf({ tall, short, speech }) {
  return {
    ocr: ['run', OCR],
    vad: ['run', VAD, '--arg', `audio=${speech}`],
    long: ['run', OCR, '--arg', `image=${tall}`],
    short: ['run', short],
  };
}

async function levels(env, runs) {
  const out = [];
  for (const clients of [1, 2, 4, 8, 16]) {
    const lat = [];
    const t0 = Date.now();
    await Promise.all(
      Array.from({ length: clients }, async () => {
        for (let i = 0; i < rounds; i++) lat.push(await dw(env, runs.ocr));
      }),
    );
    out.push({ clients, runs: lat.length, wall: (Date.now() - t0) / 1000, p50: pct(lat, 50), p99: pct(lat, 99) });
  }
  return out;
}

/** One round of the mix and the pair, appended to `r`. */
async function mixRound(env, runs, r) {
  r.alone.push(await dw(env, runs.short));
  const long = dw(env, runs.long);
  await sleep(300);
  r.during.push(await dw(env, runs.short));
  r.mixRatio.push(r.during.at(-1) / r.alone.at(-1));
  await long;
  const t0 = Date.now();
  await dw(env, runs.ocr);
  await dw(env, runs.vad);
  r.sequential.push(Date.now() - t0);
  const t1 = Date.now();
  await Promise.all([dw(env, runs.ocr), dw(env, runs.vad)]);
  r.together.push(Date.now() - t1);
  r.pairRatio.push(r.together.at(-1) / r.sequential.at(-1));
}

/** 16 clients on two workflows, each alternating them: runs/s and failures. */
async function mixedClients(env, runs) {
  let failed = 0;
  let done = 0;
  const t0 = Date.now();
  await Promise.all(
    Array.from({ length: 16 }, async (_, c) => {
      for (let i = 0; i < rounds; i++) {
        await dw(env, (c + i) % 2 ? runs.vad : runs.ocr).then(
          () => done++,
          () => failed++,
        );
      }
    }),
  );
  return { runs: done + failed, failed, perSecond: (done + failed) / ((Date.now() - t0) / 1000) };
}

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
  const inputs = { tall, short, speech: longSpeech(2) };

  const runs = runsOf(inputs);
  const results = POOLS.map((runners) => ({
    runners,
    env: envOf(runners),
    alone: [],
    during: [],
    sequential: [],
    together: [],
    mixRatio: [],
    pairRatio: [],
  }));
  // Warm every set of sessions and the shapes onnxruntime has seen; not measured.
  for (const r of results) for (const args of [runs.ocr, runs.long, runs.short, runs.vad]) await dw(r.env, args);
  for (const r of results) r.levels = await levels(r.env, runs);
  // The mix and the pair round by round, the daemons in turn (this machine's noise drifts).
  for (let i = 0; i < MIX_ROUNDS; i++) for (const r of i % 2 ? results : [...results].reverse()) await mixRound(r.env, runs, r);
  for (const r of results) r.mixed = await mixedClients(r.env, runs);
  for (const r of results) for (const k of ['alone', 'during', 'sequential', 'together', 'mixRatio', 'pairRatio']) r[k] = med(r[k]);

  console.log(
    `concurrency: warm daemons with ${POOLS.join(' and ')} runners (dwd --runners, --parallel 2), ${rounds} runs per client per level (${process.version}, ${process.arch})\n`,
  );
  console.log('| runners | clients | runs | wall s | runs/s | p50 ms | p99 ms |');
  console.log('|---:|---:|---:|---:|---:|---:|---:|');
  for (const r of results)
    for (const l of r.levels)
      console.log(
        `| ${r.runners} | ${l.clients} | ${l.runs} | ${l.wall.toFixed(1)} | ${(l.runs / l.wall).toFixed(2)} | ${l.p50.toFixed(0)} | ${l.p99.toFixed(0)} |`,
      );
  console.log(
    `\n| ${MIX_ROUNDS} rounds, median ms | ${results.map((r) => `${r.runners} runner${r.runners > 1 ? 's' : ''}`).join(' | ')} |`,
  );
  console.log(`|---|${results.map(() => '---:').join('|')}|`);
  const row = (label, f) => console.log(`| ${label} | ${results.map(f).join(' | ')} |`);
  row('short OCR run on other sessions, alone', (r) => r.alone.toFixed(0));
  row('the same while a long OCR run (sample tiled 8x) runs', (r) => r.during.toFixed(0));
  row("**ratio**, median of the rounds' (target ≤ 1.3)", (r) => r.mixRatio.toFixed(2));
  row('an OCR run, then a VAD run', (r) => r.sequential.toFixed(0));
  row('the two started together', (r) => r.together.toFixed(0));
  row("**ratio**, median of the rounds' (target ≤ 0.85)", (r) => r.pairRatio.toFixed(2));
  row('16 clients alternating OCR and VAD: runs/s', (r) => r.mixed.perSecond.toFixed(2));
  row('… against 1 client on OCR', (r) => (r.mixed.perSecond / (r.levels[0].runs / r.levels[0].wall)).toFixed(2));
  row('… runs failed', (r) => `${r.mixed.failed} of ${r.mixed.runs}`);
} finally {
  for (const runners of POOLS) spawnSync(process.execPath, [DW, 'stop'], { env: envOf(runners) });
  rmSync(dir, { recursive: true, force: true });
}
