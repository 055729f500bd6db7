// Side by side, interleaved in one invocation (this machine is shared and noisy, so compare
// ratios within a run, not numbers across runs):
//   one-shot  node bench/oneshot.mjs: load det+cls+rec and OCR the sample in a fresh process
//   one-shot with dw's session setup: the same with the runner's session options and graph rewrites
//   dw warm   dw run workflows/ocr.json against a daemon that already holds the models
//   the same two for VAD: bench/oneshot-vad.mjs and dw run workflows/vad.json (one small model,
//   375 model calls on the 12 s sample)
//   dw start  dw --version: the CLI's own start, no daemon round trip
//   node      node -e '': the floor of any Node process
// Usage: node bench/cold-vs-warm.mjs [rounds]   (after npm ci; default 15 rounds)
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const ROOT = join(import.meta.dirname, '..');
const DW = join(ROOT, 'dist', 'cli', 'dw.cjs');
const rounds = Number(process.argv[2] ?? 15);
const dir = mkdtempSync(join(tmpdir(), 'dwb-'));
const env = {
  ...process.env,
  DW_SOCKET: join(dir, 'dwd.sock'),
  XDG_STATE_HOME: join(dir, 'state'),
  DW_AUTOSTART: '1',
  DWD_CACHE_SIZE: '0',
};

function time(cmd, args) {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(cmd, args, { env, cwd: ROOT, encoding: 'utf8' });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}):\n${r.stderr}`);
  return { ms, stdout: r.stdout };
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

function warmRun(workflow, into) {
  const r = time(process.execPath, [DW, 'run', workflow, '--json', '--quiet']);
  const j = JSON.parse(r.stdout);
  if (!j.models.every((m) => m.cache === 'hit')) throw new Error(`the warm run of ${workflow} loaded a model`);
  into.pipeline.push(j.timings.run_ms);
  into.daemon.push(j.timings.total_ms);
  return r.ms;
}

const cases = {
  'one-shot process (load 3 models + OCR)': () => time(process.execPath, [join(ROOT, 'bench', 'oneshot.mjs')]).ms,
  "one-shot process with dw's session setup": () => time(process.execPath, [join(ROOT, 'bench', 'oneshot.mjs'), '--dw-sessions']).ms,
  'dw run, warm daemon': () => warmRun('workflows/ocr.json', samples),
  'VAD one-shot process (load Silero + 375 frames)': () => time(process.execPath, [join(ROOT, 'bench', 'oneshot-vad.mjs')]).ms,
  'VAD dw run, warm daemon': () => warmRun('workflows/vad.json', vadSamples),
  'dw --version (CLI start only)': () => time(process.execPath, [DW, '--version']).ms,
  "node -e ''": () => time(process.execPath, ['-e', '']).ms,
};
const samples = { pipeline: [], daemon: [] };
const vadSamples = { pipeline: [], daemon: [] };
const results = Object.fromEntries(Object.keys(cases).map((k) => [k, []]));

try {
  // Start the daemon and load the models once; not measured.
  time(process.execPath, [DW, 'run', 'workflows/ocr.json', '--quiet']);
  time(process.execPath, [DW, 'run', 'workflows/vad.json', '--quiet']);
  for (let i = 0; i < rounds; i++) for (const [name, fn] of Object.entries(cases)) results[name].push(fn());
} finally {
  spawnSync(process.execPath, [DW, 'stop'], { env });
  rmSync(dir, { recursive: true, force: true });
}

const m = Object.fromEntries(Object.entries(results).map(([k, v]) => [k, median(v)]));
const oneshot = m['one-shot process (load 3 models + OCR)'];
const warm = m['dw run, warm daemon'];
const floor = m["node -e ''"];
const pipeline = median(samples.pipeline);
const daemonSide = median(samples.daemon);
console.log(`cold-vs-warm: ${rounds} interleaved rounds, median wall time per command (${process.version}, ${process.arch})\n`);
console.log('| command | median ms | vs dw run |');
console.log('|---|---:|---:|');
for (const [k, v] of Object.entries(m))
  console.log(`| ${k} | ${v.toFixed(1)} | ${(v / (k.startsWith('VAD') ? m['VAD dw run, warm daemon'] : warm)).toFixed(2)}x |`);
console.log('');
console.log(`one-shot / warm dw run: ${(oneshot / warm).toFixed(2)}x faster with dw (target ≥ 2.5x)`);
console.log(
  `one-shot with dw's session setup / warm dw run: ${(m["one-shot process with dw's session setup"] / warm).toFixed(2)}x (what keeping the models loaded saves alone)`,
);
console.log(
  `pipeline run inside the daemon (timings.run_ms): ${pipeline.toFixed(1)} ms; daemon-side total (timings.total_ms): ${daemonSide.toFixed(1)} ms`,
);
// Paired within each round (the rounds interleave, so a busy spell of this shared machine hits
// both), then the median: steadier than a difference of three medians.
const overheads = results['dw run, warm daemon'].map((w, i) => w - results["node -e ''"][i] - samples.pipeline[i]);
console.log(
  `CLI overhead = dw run - node -e '' - run_ms, median of the ${rounds} rounds: ${median(overheads).toFixed(1)} ms (target ≤ 25 ms)`,
);

const vadOneshot = m['VAD one-shot process (load Silero + 375 frames)'];
const vadWarm = m['VAD dw run, warm daemon'];
const vadPipeline = median(vadSamples.pipeline);
console.log('');
console.log(
  `VAD: one-shot / warm dw run: ${(vadOneshot / vadWarm).toFixed(2)}x; pipeline run inside the daemon: ${vadPipeline.toFixed(1)} ms`,
);
console.log(
  `VAD: of the warm dw run, node's own start is ${((100 * floor) / vadWarm).toFixed(0)}%, the CLI on top ${((100 * (vadWarm - floor - vadPipeline)) / vadWarm).toFixed(0)}%, the pipeline ${((100 * vadPipeline) / vadWarm).toFixed(0)}%`,
);
