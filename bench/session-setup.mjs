// What the runner's session setup is worth: the paddle-ocr and silero-vad pipelines on warm
// sessions made (a) with onnxruntime's defaults, (b) with intra-op spinning off, (c) spinning off
// plus dw's graph rewrites (src/runner/graph-rewrite.ts), and for VAD (d) spinning on and
// (e) one operator thread.
// Each setup runs in its own process (spinning threads of one setup would slow another's), the
// processes interleave round by round, and each reports the median of 5 warm pipeline runs and
// how long its loads took (the graph rewrites are done at load time).
// Usage: node bench/session-setup.mjs [rounds]   (after npm ci; default 6 rounds)
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

const ROOT = join(import.meta.dirname, '..');
const SETUPS = {
  ocr: {
    "onnxruntime's defaults": null,
    'spinning off': { providers: ['cpu'] },
    'spinning off + graph rewrites': { providers: ['cpu'], rewrite: true },
  },
  vad: {
    "onnxruntime's defaults": null,
    'spinning off': { providers: ['cpu'] },
    'spinning on': { providers: ['cpu'], intra_op_spinning: true },
    'one thread': { providers: ['cpu'], intra_op_threads: 1 },
  },
};

if (process.argv[2] === '--child') {
  const [, , , pipeline, setupName] = process.argv;
  const spec = SETUPS[pipeline][setupName];
  const ort = await import('onnxruntime-node');
  const { sessionOptions } = await import('../dist/runner/sessions.js');
  const { rewriteGraph } = await import('../dist/runner/graph-rewrite.js');
  const load = (path) => {
    if (!spec) return ort.InferenceSession.create(path);
    const bytes = readFileSync(path);
    return ort.InferenceSession.create((spec.rewrite && rewriteGraph(bytes)?.bytes) || bytes, sessionOptions(spec, 'cpu'));
  };
  let run;
  const t0 = performance.now();
  if (pipeline === 'ocr') {
    const assets = join(ROOT, 'node_modules', '@gutenye', 'ocr-models', 'assets');
    const files = { det: 'ch_PP-OCRv4_det_infer.onnx', cls: 'ch_ppocr_mobile_v2.0_cls_infer.onnx', rec: 'ch_PP-OCRv4_rec_infer.onnx' };
    const sessions = {};
    for (const [role, f] of Object.entries(files)) sessions[role] = await load(join(assets, f));
    const keys = await readFile(join(assets, 'ppocr_keys_v1.txt'), 'utf8');
    const ctx = {
      has: () => true,
      session: async (r) => sessions[r],
      text: async () => keys,
      progress: () => {},
      signal: new AbortController().signal,
      ort,
    };
    const { paddleOcr } = await import('../dist/pipelines/paddle-ocr/index.js');
    run = () => paddleOcr.run({ image: join(ROOT, 'workflows', 'samples', 'receipt.png') }, ctx);
  } else {
    const session = await load(join(ROOT, 'node_modules', '@ricky0123', 'vad-node', 'dist', 'silero_vad.onnx'));
    const ctx = {
      has: () => true,
      session: async () => session,
      text: async () => '',
      progress: () => {},
      signal: new AbortController().signal,
      ort,
    };
    const { sileroVad } = await import('../dist/pipelines/silero-vad/index.js');
    run = () => sileroVad.run({ audio: join(ROOT, 'workflows', 'samples', 'speech.wav') }, ctx);
  }
  const loadMs = performance.now() - t0; // the sessions, plus the pipeline modules' import
  await run();
  const times = [];
  for (let i = 0; i < 5; i++) {
    const t0 = performance.now();
    await run();
    times.push(performance.now() - t0);
  }
  process.stdout.write(JSON.stringify({ run: times.sort((a, b) => a - b)[2], load: loadMs }));
  process.exit(0);
}

const rounds = Number(process.argv[2] ?? 6);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const results = {};
for (let r = 0; r < rounds; r++) {
  for (const [pipeline, setups] of Object.entries(SETUPS)) {
    for (const name of Object.keys(setups)) {
      const c = spawnSync(process.execPath, [import.meta.filename, '--child', pipeline, name], { encoding: 'utf8' });
      if (c.status !== 0) throw new Error(`${pipeline} / ${name} failed:\n${c.stderr}`);
      ((results[pipeline] ??= {})[name] ??= []).push(JSON.parse(c.stdout));
    }
  }
}
console.log(
  `session-setup: ${rounds} interleaved rounds, median of per-process medians of 5 warm runs (${process.version}, ${process.arch})\n`,
);
console.log('| pipeline | session setup | warm run ms | vs defaults | load ms (cold) |');
console.log('|---|---|---:|---:|---:|');
for (const [pipeline, byName] of Object.entries(results)) {
  const base = median(byName["onnxruntime's defaults"].map((r) => r.run));
  for (const [name, rs] of Object.entries(byName)) {
    const run = median(rs.map((r) => r.run));
    console.log(
      `| ${pipeline} | ${name} | ${run.toFixed(1)} | ${(run / base).toFixed(2)}x | ${median(rs.map((r) => r.load)).toFixed(0)} |`,
    );
  }
}
