// Speech probabilities per frame → speech segments, as Silero's own get_speech_timestamps does it:
// hysteresis (enter above threshold, leave below threshold - 0.15), short silences bridged, short
// bursts dropped, then padding that never overlaps the next segment.

export interface SegmentOptions {
  threshold: number;
  neg_threshold: number;
  min_speech_ms: number;
  min_silence_ms: number;
  speech_pad_ms: number;
}

/** In samples at the model's rate; end is exclusive. */
export interface SampleSpan {
  start: number;
  end: number;
}

export function speechSpans(
  probs: ArrayLike<number>,
  frameSamples: number,
  totalSamples: number,
  rate: number,
  o: SegmentOptions,
): SampleSpan[] {
  const ms = (x: number) => Math.round((x * rate) / 1000);
  const minSpeech = ms(o.min_speech_ms),
    minSilence = ms(o.min_silence_ms),
    pad = ms(o.speech_pad_ms);
  const spans: SampleSpan[] = [];
  let start = -1;
  let tempEnd = 0;
  for (let i = 0; i < probs.length; i++) {
    const p = probs[i]!,
      at = i * frameSamples;
    if (p >= o.threshold && tempEnd) tempEnd = 0;
    if (p >= o.threshold && start < 0) {
      start = at;
      continue;
    }
    if (p < o.neg_threshold && start >= 0) {
      if (!tempEnd) tempEnd = at;
      if (at - tempEnd < minSilence) continue;
      if (tempEnd - start > minSpeech) spans.push({ start, end: tempEnd });
      start = -1;
      tempEnd = 0;
    }
  }
  if (start >= 0 && totalSamples - start > minSpeech) spans.push({ start, end: totalSamples });
  // Padding: half the gap each when two segments are closer than two pads.
  for (let i = 0; i < spans.length; i++) {
    const s = spans[i]!;
    if (i === 0) s.start = Math.max(0, s.start - pad);
    const next = spans[i + 1];
    if (!next) {
      s.end = Math.min(totalSamples, s.end + pad);
      continue;
    }
    const gap = next.start - s.end;
    if (gap < 2 * pad) {
      s.end += Math.floor(gap / 2);
      next.start = Math.max(0, next.start - Math.floor(gap / 2));
    } else {
      s.end = Math.min(totalSamples, s.end + pad);
      next.start = Math.max(0, next.start - pad);
    }
  }
  return spans;
}
