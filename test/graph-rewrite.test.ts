// dw's graph rewrites (src/runner/graph-rewrite.ts): on the real PP-OCR models they must leave
// the pipeline's output as it was; on tiny graphs, every condition that must stop a rewrite does,
// and what is rewritten computes the same numbers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import * as ort from 'onnxruntime-node';
import { rewriteGraph } from '../src/runner/graph-rewrite.js';
import { SessionCache, sessionOptions } from '../src/runner/sessions.js';
import { optionsDigest } from '../src/daemon/model-identity.js';
import { paddleOcr, type OcrResult } from '../src/pipelines/paddle-ocr/index.js';
import type { PipelineContext } from '../src/pipelines/types.js';
import { initializer, model, node, tensorFloat, valueInfo } from './helpers/onnx.js';
import { bytesField, floatField, intField, messageField } from '../src/runner/protobuf.js';

const ROOT = resolve(import.meta.dirname, '..');
const MODELS = join(ROOT, 'node_modules', '@gutenye', 'ocr-models', 'assets');
const FILES: Record<string, string> = {
  det: 'ch_PP-OCRv4_det_infer.onnx',
  cls: 'ch_ppocr_mobile_v2.0_cls_infer.onnx',
  rec: 'ch_PP-OCRv4_rec_infer.onnx',
};
const SAMPLES = join(ROOT, 'workflows', 'samples');
const options = sessionOptions({ providers: ['cpu'] }, 'cpu');

test('the PP-OCR models: the chains found, and the Silero VAD model left alone', () => {
  const counts = Object.fromEntries(
    Object.entries(FILES).map(([role, f]) => {
      const r = rewriteGraph(readFileSync(join(MODELS, f)));
      return [role, r && { hardSwish: r.hardSwish, perChannel: r.perChannel }];
    }),
  );
  assert.deepEqual(counts, {
    det: { hardSwish: 24, perChannel: 56 },
    cls: { hardSwish: 18, perChannel: 0 },
    rec: { hardSwish: 28, perChannel: 56 },
  });
  assert.equal(rewriteGraph(readFileSync(join(ROOT, 'node_modules', '@ricky0123', 'vad-node', 'dist', 'silero_vad.onnx'))), null);
});

test('paddle-ocr reads every sample the same on the rewritten models as on the files as shipped', async () => {
  const contexts = await Promise.all(
    [false, true].map(async (rewrite) => {
      const sessions: Record<string, ort.InferenceSession> = {};
      for (const [role, f] of Object.entries(FILES)) {
        const bytes = readFileSync(join(MODELS, f));
        const source = rewrite ? rewriteGraph(bytes)!.bytes : bytes;
        sessions[role] = await ort.InferenceSession.create(source, options);
      }
      const ctx: PipelineContext = {
        has: (role) => role in FILES || role === 'keys',
        session: async (role) => sessions[role]!,
        text: () => readFile(join(MODELS, 'ppocr_keys_v1.txt'), 'utf8'),
        progress: () => {},
        signal: new AbortController().signal,
        ort,
      };
      return ctx;
    }),
  );
  const samples = readdirSync(SAMPLES).filter((f) => f.endsWith('.png'));
  assert.ok(samples.length >= 5);
  for (const sample of samples) {
    const [asShipped, rewritten] = (await Promise.all(
      contexts.map((ctx) => paddleOcr.run({ image: join(SAMPLES, sample) }, ctx)),
    )) as OcrResult[];
    assert.equal(rewritten!.text, asShipped!.text, sample);
    assert.deepEqual(
      rewritten!.lines.map((l) => l.box),
      asShipped!.lines.map((l) => l.box),
      sample,
    );
    rewritten!.lines.forEach((l, i) =>
      assert.ok(Math.abs(l.score - asShipped!.lines[i]!.score) < 1e-5, `${sample} line ${i}: ${l.score} vs ${asShipped!.lines[i]!.score}`),
    );
  }
});

interface ChainSpec {
  three?: number;
  hi?: number;
  clipAlsoRead?: boolean;
  opset?: number;
  addOutputIsGraphOutput?: boolean;
  sixDims?: number[];
  more?: Buffer[];
}

/** y = x * Clip(x + three, 0, hi) / 6 over a [1, 2, 3, 3] input, written as paddle2onnx does. */
function hardSwishChain({
  three = 3,
  hi = 6,
  clipAlsoRead = false,
  opset = 13,
  addOutputIsGraphOutput = false,
  sixDims = [],
  more = [],
}: ChainSpec = {}): Buffer {
  const clip =
    opset < 11
      ? node(
          'Clip',
          ['a'],
          ['c'],
          [
            { name: 'min', f: 0 },
            { name: 'max', f: hi },
          ],
        )
      : node('Clip', ['a', 'lo', 'hi'], ['c']);
  return model(
    Buffer.concat([
      node('Constant', [], ['k3'], [{ name: 'value', t: tensorFloat('k3', [three], []) }]),
      node('Add', ['x', 'k3'], ['a']),
      clip,
      node('Mul', ['x', 'c'], ['m']),
      node('Div', ['m', 'k6'], ['y']),
      ...(clipAlsoRead ? [node('Identity', ['c'], ['c2'])] : []),
      ...more,
      bytesField(2, 'chain'),
      initializer(tensorFloat('lo', [0], [])),
      initializer(tensorFloat('hi', [hi], [])),
      initializer(tensorFloat('k6', [6], sixDims)),
      valueInfo(11, 'x', [1, 2, 3, 3]),
      valueInfo(12, 'y', [1, 2, 3, 3]),
      ...(clipAlsoRead ? [valueInfo(12, 'c2', [1, 2, 3, 3])] : []),
      ...(addOutputIsGraphOutput ? [valueInfo(12, 'a', [1, 2, 3, 3])] : []),
    ]),
    opset,
  );
}

/** y = (Conv(x) * s) + b with scalar s and b, the learnable affine block of PP-LCNetV3. */
function convAffine(scaleDims = [1]): Buffer {
  const w = Array.from({ length: 3 * 2 * 3 * 3 }, (_, i) => Math.sin(i) / 4);
  return model(
    Buffer.concat([
      node('Conv', ['x', 'w', 'bias'], ['conv'], [{ name: 'pads', ints: [1, 1, 1, 1] }]),
      node('Mul', ['s', 'conv'], ['scaled']),
      node('Add', ['scaled', 'b'], ['y']),
      bytesField(2, 'conv-affine'),
      initializer(tensorFloat('w', w, [3, 2, 3, 3])),
      initializer(tensorFloat('bias', [0.1, -0.2, 0.3], [3])),
      initializer(tensorFloat('s', [1.75], scaleDims)),
      initializer(tensorFloat('b', [-0.5], [1])),
      valueInfo(11, 'x', [1, 2, 5, 5]),
      valueInfo(12, 'y', [1, 3, 5, 5]),
    ]),
  );
}

async function outputs(bytes: Uint8Array, dims: number[]): Promise<ort.Tensor> {
  const n = dims.reduce((a, b) => a * b, 1);
  const x = Float32Array.from({ length: n }, (_, i) => ((i * 7919) % 23) - 11 + i / n);
  const s = await ort.InferenceSession.create(bytes, options);
  const out = await s.run({ x: new ort.Tensor('float32', x, dims) });
  await s.release();
  return out[s.outputNames[0]!]!;
}

async function assertSameNumbers(before: Uint8Array, after: Uint8Array, dims: number[]): Promise<void> {
  const [ta, tb] = await Promise.all([outputs(before, dims), outputs(after, dims)]);
  assert.deepEqual(tb.dims, ta.dims);
  const a = ta.data as Float32Array,
    b = tb.data as Float32Array;
  a.forEach((v, i) => assert.ok(Math.abs(v - b[i]!) <= 1e-5 * Math.max(1, Math.abs(v)), `element ${i}: ${v} vs ${b[i]}`));
}

test('a hard-swish chain becomes x * HardSigmoid(x) and computes the same, with Clip bounds as inputs or attributes', async () => {
  for (const opset of [9, 13]) {
    const before = hardSwishChain({ opset });
    const after = rewriteGraph(before);
    assert.equal(after?.hardSwish, 1, `opset ${opset}`);
    await assertSameNumbers(before, after!.bytes, [1, 2, 3, 3]);
  }
});

test('a chain that is not exactly hard-swish, or whose parts are read elsewhere, is left as it is', () => {
  // [1, 1, 1] would widen the output of an input of unknown rank to rank 3 at least.
  for (const spec of [
    { three: 2 },
    { hi: 5 },
    { clipAlsoRead: true },
    { addOutputIsGraphOutput: true },
    { opset: 9, hi: 5 },
    { sixDims: [1, 1, 1] },
  ]) {
    assert.equal(rewriteGraph(hardSwishChain(spec)), null, JSON.stringify(spec));
  }
});

test('a scalar affine after a Conv is given per channel and computes the same', async () => {
  const before = convAffine();
  const after = rewriteGraph(before);
  assert.deepEqual(after && { hardSwish: after.hardSwish, perChannel: after.perChannel }, { hardSwish: 0, perChannel: 2 });
  await assertSameNumbers(before, after!.bytes, [1, 2, 5, 5]);
});

test('a scalar of higher rank than the Conv output (it widens the result) keeps its shape', async () => {
  const before = convAffine([1, 1, 1, 1, 1]);
  const after = rewriteGraph(before);
  // The Mul stays; the Add after it is still per channel on the trailing [C, H, W].
  assert.equal(after?.perChannel, 1);
  await assertSameNumbers(before, after!.bytes, [1, 2, 5, 5]);
});

test('models the rewrite does not handle load as they are: subgraphs, external data, wire types protobuf would skip, malformed bytes', () => {
  // The chain, plus an If whose branch could read any of its values.
  assert.equal(
    rewriteGraph(hardSwishChain({ more: [node('If', ['cond'], ['z'], [{ name: 'then_branch', g: bytesField(2, 'then') }])] })),
    null,
  );
  // A Constant whose tensor lives in another file: loaded from bytes, its path would be lost.
  const farTensor = messageField(5, intField(2, 1), bytesField(8, 'far'), intField(14, 1));
  assert.equal(
    rewriteGraph(hardSwishChain({ more: [node('Constant', [], ['far'], [{ name: 'value', t: farTensor.subarray(2) }])] })),
    null,
  );
  // An input name written as a varint: protobuf keeps it as an unknown field, not an input.
  const oddInput = messageField(1, bytesField(1, 'x'), intField(1, 7), bytesField(2, 'odd'), bytesField(4, 'Identity'));
  assert.equal(rewriteGraph(hardSwishChain({ more: [oddInput] })), null);
  // A node already named like the ones the rewrite would add: left as it is.
  const namesake = messageField(
    1,
    bytesField(1, 'x'),
    bytesField(2, 'xx'),
    bytesField(3, 'Div_y/dw_hard_swish'),
    bytesField(4, 'Identity'),
  );
  assert.equal(rewriteGraph(hardSwishChain({ more: [namesake] })), null);
  const chain = hardSwishChain();
  const rec = readFileSync(join(MODELS, FILES.rec!));
  for (const bad of [
    rec.subarray(0, rec.length / 2),
    Buffer.from('not a model at all, just text'),
    chain.subarray(0, chain.length - 3),
    Buffer.alloc(0),
    Buffer.concat([chain, chain]),
  ]) {
    assert.equal(rewriteGraph(bad), null);
  }
});

test('an opset 9 Clip bound written twice is read as protobuf reads it: the last one', () => {
  const clip = messageField(
    1,
    bytesField(1, 'a'),
    bytesField(2, 'c'),
    bytesField(4, 'Clip'),
    messageField(5, bytesField(1, 'min'), floatField(2, 0), floatField(2, -1), intField(20, 1)),
    messageField(5, bytesField(1, 'max'), floatField(2, 6), intField(20, 1)),
  );
  const bytes = model(
    Buffer.concat([
      node('Add', ['x', 'k3'], ['a']),
      clip,
      node('Mul', ['x', 'c'], ['m']),
      node('Div', ['m', 'k6'], ['y']),
      bytesField(2, 'chain'),
      initializer(tensorFloat('k3', [3], [])),
      initializer(tensorFloat('k6', [6], [])),
      valueInfo(11, 'x', [1, 4]),
      valueInfo(12, 'y', [1, 4]),
    ]),
    9,
  );
  assert.equal(rewriteGraph(bytes), null);
});

test('a Conv claiming more output channels than any real one gets no per-channel constant', () => {
  const huge = model(
    Buffer.concat([
      node('Conv', ['x', 'w'], ['conv']),
      node('Mul', ['conv', 's'], ['y']),
      bytesField(2, 'huge'),
      messageField(5, intField(1, 25_000_000), intField(1, 0), intField(1, 1), intField(1, 1), intField(2, 1), bytesField(8, 'w')),
      initializer(tensorFloat('s', [2], [])),
    ]),
  );
  assert.equal(rewriteGraph(huge), null);
});

test('the runner rewrites unless the workflow says graph_rewrites: false, and the two are cached apart', async () => {
  const logged: string[] = [];
  const cache = new SessionCache((_level, message) => logged.push(message));
  const path = join(MODELS, FILES.cls!);
  const on = { providers: ['cpu'] };
  const off = { providers: ['cpu'], graph_rewrites: false };
  assert.notEqual(optionsDigest(on), optionsDigest(off));
  assert.equal(optionsDigest(on), optionsDigest({ ...on, graph_rewrites: true }));
  await cache.session({ role: 'cls', kind: 'onnx', path, key: `cls:${optionsDigest(on)}` }, on);
  assert.deepEqual(
    logged.filter((m) => m.includes('graph rewrites')),
    [`${path}: graph rewrites: 18 hard-swish chains as x*HardSigmoid(x), 0 scalar affines per channel`],
  );
  await cache.session({ role: 'cls', kind: 'onnx', path, key: `cls:${optionsDigest(off)}` }, off);
  assert.equal(logged.filter((m) => m.includes('graph rewrites')).length, 1, 'graph_rewrites: false loads the file as it is');
  assert.equal(cache.snapshot().length, 2);
  await cache.release(cache.snapshot().map((m) => m.key));
});
