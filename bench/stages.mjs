// Where the paddle-ocr pipeline's time goes, in one warm process: each sample read REPEAT times
// on sessions loaded once (as the daemon holds them), with each model's session.run timed apart,
// and the character error rate of every sample (the measure of test/ocr-accuracy.test.ts).
// Usage: node bench/stages.mjs [repeat] [sample.png ...]   (after npm run build)
//   DW_BENCH_THREADS=n      intraOpNumThreads (default: onnxruntime's)
//   DW_BENCH_SPINNING=0|1   intra_op_spinning (default: the daemon's, off)
//   DW_BENCH_ONESHOT=1      sessions created with no options, as bench/oneshot.mjs does
import { readdirSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { paddleOcr } from '../dist/pipelines/paddle-ocr/index.js';
import { sessionOptions } from '../dist/runner/sessions.js';

const ROOT = join(import.meta.dirname, '..');
const assets = join(ROOT, 'node_modules', '@gutenye', 'ocr-models', 'assets');
const SAMPLES = join(ROOT, 'workflows', 'samples');
const files = {
  det: 'ch_PP-OCRv4_det_infer.onnx',
  cls: 'ch_ppocr_mobile_v2.0_cls_infer.onnx',
  rec: 'ch_PP-OCRv4_rec_infer.onnx',
  keys: 'ppocr_keys_v1.txt',
};
const repeat = Number(process.argv[2] ?? 10);
const names =
  process.argv.length > 3
    ? process.argv.slice(3)
    : readdirSync(SAMPLES)
        .filter((f) => f.endsWith('.png'))
        .sort();

// The daemon's options (src/runner/sessions.ts) unless DW_BENCH_ONESHOT asks for the defaults.
const opts = process.env.DW_BENCH_ONESHOT
  ? undefined
  : sessionOptions(
      {
        providers: ['cpu'],
        ...(process.env.DW_BENCH_THREADS ? { intra_op_threads: Number(process.env.DW_BENCH_THREADS) } : {}),
        ...(process.env.DW_BENCH_SPINNING ? { intra_op_spinning: process.env.DW_BENCH_SPINNING === '1' } : {}),
      },
      'cpu',
    );
const spent = { det: 0, cls: 0, rec: 0 };
const runs = { det: 0, cls: 0, rec: 0 };
const sessions = {};
for (const role of ['det', 'cls', 'rec']) {
  const s = await ort.InferenceSession.create(join(assets, files[role]), opts);
  sessions[role] = new Proxy(s, {
    get: (t, p) =>
      p !== 'run'
        ? Reflect.get(t, p)
        : async (...a) => {
            const t0 = performance.now();
            try {
              return await t.run(...a);
            } finally {
              spent[role] += performance.now() - t0;
              runs[role] += 1;
            }
          },
  });
}
const ctx = {
  has: (r) => r in files,
  session: async (r) => sessions[r],
  text: (r) => readFile(join(assets, files[r]), 'utf8'),
  progress: () => {},
  signal: new AbortController().signal,
};

function cer(got, truth) {
  const norm = (s) =>
    s
      .split('\n')
      .map((l) => l.replace(/\s+/g, ' ').trim())
      .filter((l) => l !== '')
      .join(' ');
  const a = norm(got),
    b = norm(truth);
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length] / b.length;
}
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
};

console.log('| sample | lines | CER | total ms | det ms | cls ms | rec ms | other ms |');
console.log('|---|---:|---:|---:|---:|---:|---:|---:|');
for (const name of names) {
  const image = join(SAMPLES, name);
  const truth = readFileSync(image.replace(/\.png$/, '.txt'), 'utf8');
  const result = await paddleOcr.run({ image, min_score: 0.5 }, ctx); // warm-up, not timed
  const rows = [];
  for (let i = 0; i < repeat; i++) {
    for (const r of Object.keys(spent)) spent[r] = 0;
    const t0 = performance.now();
    await paddleOcr.run({ image, min_score: 0.5 }, ctx);
    const total = performance.now() - t0;
    rows.push({ total, ...spent, other: total - spent.det - spent.cls - spent.rec });
  }
  const m = (k) => median(rows.map((r) => r[k])).toFixed(1);
  console.log(
    `| ${name} | ${result.lines.length} | ${(cer(result.text, truth) * 100).toFixed(2)}% | ${m('total')} | ${m('det')} | ${m('cls')} | ${m('rec')} | ${m('other')} |`,
  );
}
