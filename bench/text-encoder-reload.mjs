// Should the stable-diffusion pipeline release its text encoder after encoding, when memory is
// tight, and load it again on the next generation? This measures what that trades: the memory a
// text encoder of CLIP ViT-L/14's size holds (SD 1.x's: 123 M float32 weights, 49408×768 token
// embeddings and 12 layers of 4·768² attention and 2·768·3072 MLP weights) against the time to
// load it again and to encode a prompt pair. The graph is generated (no weights can be downloaded
// here) with that many weights in that layout, as matrix products: its load time is the file's
// reading and onnxruntime's session setup, which depend on the bytes and the graph, not on what
// the numbers mean.
// Usage: node --import tsx bench/text-encoder-reload.mjs [rounds]
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import { bytesField as bytes, intField as int, messageField as msg } from '../src/runner/protobuf.ts';
import { node } from '../test/helpers/onnx.ts';

const D = 768;
const VOCAB = 49408;
const LAYERS = 12;
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

let state = 1;
/** Small pseudo-random weights (a fixed LCG): values that keep activations finite through 72 products. */
function weights(count, scale) {
  const raw = Buffer.alloc(4 * count);
  for (let i = 0; i < count; i++) {
    state = (Math.imul(state, 1664525) + 1013904223) | 0;
    raw.writeFloatLE(((state >>> 8) / 2 ** 24 - 0.5) * scale, 4 * i);
  }
  return raw;
}
const tensor = (name, dims, raw) => msg(5, ...dims.map((d) => int(1, d)), int(2, 1), bytes(8, name), bytes(9, raw));
const valueInfo = (field, name, elem, dims) =>
  msg(
    field,
    bytes(1, name),
    msg(2, msg(1, int(1, elem), msg(2, ...dims.map((d) => msg(1, typeof d === 'number' ? int(1, d) : bytes(2, d)))))),
  );

function clipSizedEncoder() {
  const nodes = [node('Gather', ['embeddings', 'input_ids'], ['h0'])];
  const inits = [tensor('embeddings', [VOCAB, D], weights(VOCAB * D, 1))];
  let h = 'h0';
  let k = 0;
  const product = (rows, cols) => {
    const w = `w${k}`;
    inits.push(tensor(w, [rows, cols], weights(rows * cols, 2 / Math.sqrt(rows))));
    nodes.push(node('MatMul', [h, w], [`h${++k}`]));
    h = `h${k}`;
  };
  for (let l = 0; l < LAYERS; l++) {
    for (let i = 0; i < 4; i++) product(D, D);
    product(D, 4 * D);
    product(4 * D, D);
  }
  nodes.push(node('Identity', [h], ['last_hidden_state']));
  const graph = Buffer.concat([
    ...nodes,
    bytes(2, 'clip-sized-text-encoder'),
    ...inits,
    valueInfo(11, 'input_ids', 7, ['batch', 77]),
    valueInfo(12, 'last_hidden_state', 1, ['batch', 77, D]),
  ]);
  return Buffer.concat([int(1, 8), bytes(2, 'dw-bench'), msg(7, graph), msg(8, bytes(1, ''), int(2, 13))]);
}

/** One load, encode and release, in a fresh process: its RSS growth is the session's alone. */
async function once(file) {
  const ids = new ort.Tensor(
    'int64',
    BigInt64Array.from({ length: 2 * 77 }, (_, i) => BigInt((i * 7919) % VOCAB)),
    [2, 77],
  );
  const rss0 = process.memoryUsage().rss;
  const t0 = performance.now();
  const s = await ort.InferenceSession.create(file, { executionProviders: ['cpu'], graphOptimizationLevel: 'all' });
  const t1 = performance.now();
  await s.run({ input_ids: ids });
  const t2 = performance.now();
  const rss1 = process.memoryUsage().rss;
  await s.release();
  process.stdout.write(JSON.stringify({ load: t1 - t0, encode: t2 - t1, held: (rss1 - rss0) / 1e6 }));
}

if (process.argv[2] === '--once') {
  await once(process.argv[3]);
} else {
  const rounds = Number(process.argv[2] ?? 5);
  const dir = mkdtempSync(join(tmpdir(), 'dw-bench-te-'));
  try {
    const file = join(dir, 'model.onnx');
    writeFileSync(file, clipSizedEncoder());
    const mb = statSync(file).size / 1e6;
    const runs = [];
    // Round 0 reads the file into the page cache; a reload finds it there, as the runner would.
    for (let r = 0; r < rounds + 1; r++) {
      const out = execFileSync(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), '--once', file], {
        encoding: 'utf8',
      });
      if (r > 0) runs.push(JSON.parse(out));
    }
    const m = (k) => median(runs.map((x) => x[k]));
    console.log(
      `text encoder of CLIP ViT-L/14's size: ${mb.toFixed(0)} MB file, median of ${rounds} rounds, each in a fresh process, onnxruntime CPU`,
    );
    console.log('| load the session (file in the page cache) | encode a prompt pair (batch 2) | memory held while loaded (RSS) |');
    console.log('|---:|---:|---:|');
    console.log(`| ${m('load').toFixed(0)} ms | ${m('encode').toFixed(0)} ms | ${m('held').toFixed(0)} MB |`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
