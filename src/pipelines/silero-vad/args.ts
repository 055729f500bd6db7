// The silero-vad step's arguments, in a light module: the pipeline checks them when it runs, the
// daemon before (and dw validate).
import { type ArgRule, audio, number } from '../arguments.js';

export const VAD_ARGS = {
  audio,
  threshold: { ...number(0, 1, { above: true }), default: 0.5 },
  neg_threshold: { ...number(0, 1), optional: true },
  min_speech_ms: { ...number(0, 60000), default: 250 },
  min_silence_ms: { ...number(0, 60000), default: 100 },
  speech_pad_ms: { ...number(0, 10000), default: 30 },
  // Silero v4 at 16 kHz takes 512, 1024 or 1536 samples; 512 (32 ms) gives the finest edges.
  frame_samples: { expected: '512, 1024 or 1536', ok: (v: unknown) => v === 512 || v === 1024 || v === 1536, default: 512 },
};

export const VAD_RULE: ArgRule = (a) =>
  a.neg_threshold !== undefined && (a.neg_threshold as number) > (a.threshold as number)
    ? `"neg_threshold" (${a.neg_threshold}) must not exceed "threshold" (${a.threshold})`
    : null;
