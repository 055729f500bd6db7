// Makes the voice-activity sample workflows/samples/speech.wav (22050 Hz, mono, 16-bit) and, next to
// it, speech.json with the truth: where each phrase's voice starts and ends, in seconds.
// Run: npx tsx scripts/make-vad-sample.ts   Needs espeak-ng (apt-get install espeak-ng); nothing
// else in the project does.
//
// espeak-ng speaks a few short phrases with no commas (a comma is a pause, which a VAD rightly
// splits on). They end on a consonant: after a final vowel or nasal Silero VAD's probability takes
// 100-150 ms to fall, and the sample should test the pipeline, not that lag. Each clip is trimmed
// to its voice, since espeak pads it with silence that is not speech, and placed at a fixed offset
// in silence. The whole recording gets white noise at -40 dBFS RMS so that "silence" is not
// digital zero, as in a real room.
// The noise is seeded, so the output only changes with the espeak-ng version (made with 1.51).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { decodeWav, durationS, encodeWav, type Audio } from '../src/media/audio.js';

const ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)));
const OUT = join(ROOT, 'workflows', 'samples');
const RATE = 22050; // what espeak-ng writes
const LENGTH_S = 12;
const VOICE = 'en-us';

/** Each phrase's voice starts at `at` seconds into the recording. */
const PHRASES = [
  { text: 'Please turn off the lights', at: 0.7 },
  { text: 'Turn left at the corner shop', at: 3.0 },
  { text: 'Meet me at the bus stop', at: 5.9 },
  { text: 'Open the window please', at: 8.1 },
  { text: 'Did you feed the cats', at: 10.25 },
];

const WINDOW_S = 0.01;
// A window is voice when it is within 40 dB of the clip's loudest; espeak's padding is (near) zero,
// so the exact figure hardly matters, but a relative one keeps it independent of the voice's level.
const VOICE_DB = -40;
const NOISE_RMS = 0.01; // -40 dBFS
const SEED = 0x5eed;

function speak(text: string, dir: string, n: number): Audio {
  const file = join(dir, `${n}.wav`);
  try {
    execFileSync('espeak-ng', ['-v', VOICE, '-w', file, text]);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new Error('espeak-ng is not installed; apt-get install espeak-ng');
    throw err;
  }
  const a = decodeWav(readFileSync(file), file);
  if (a.sample_rate !== RATE || a.channels !== 1)
    throw new Error(`espeak-ng wrote ${a.sample_rate} Hz, ${a.channels} channels; expected ${RATE} Hz mono`);
  return a;
}

/** The samples from the first to the last window that is voice. */
function trim(a: Audio): Float32Array {
  const w = Math.round(WINDOW_S * RATE);
  const rms: number[] = [];
  for (let s = 0; s + w <= a.samples.length; s += w) {
    let sum = 0;
    for (let i = s; i < s + w; i++) sum += a.samples[i]! ** 2;
    rms.push(Math.sqrt(sum / w));
  }
  const threshold = Math.max(...rms) * 10 ** (VOICE_DB / 20);
  const first = rms.findIndex((r) => r > threshold);
  const last = rms.findLastIndex((r) => r > threshold);
  return a.samples.subarray(first * w, (last + 1) * w);
}

// mulberry32: tiny, seedable, good enough for noise.
function prng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), seed | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

function gaussian(random: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random()); // Box-Muller
}

const ms = (s: number) => Math.round(s * 1000) / 1000;

const dir = mkdtempSync(join(tmpdir(), 'vad-sample-'));
const samples = new Float32Array(LENGTH_S * RATE);
const segments: { start_s: number; end_s: number }[] = [];
try {
  for (const [n, phrase] of PHRASES.entries()) {
    const voice = trim(speak(phrase.text, dir, n));
    const start = Math.round(phrase.at * RATE);
    samples.set(voice, start);
    segments.push({ start_s: ms(start / RATE), end_s: ms((start + voice.length) / RATE) });
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}

// The layout is fixed above but the clip lengths come from espeak-ng; check they still fit it.
for (const [n, s] of segments.entries()) {
  const length = s.end_s - s.start_s;
  if (length < 1 || length > 2.5) throw new Error(`"${PHRASES[n]!.text}" lasts ${length.toFixed(2)} s; phrases should last 1 to 2.5 s`);
  const gap = (segments[n + 1]?.start_s ?? LENGTH_S) - s.end_s;
  if (n + 1 < segments.length ? gap < 0.8 || gap > 2 : gap < 0.5)
    throw new Error(`${gap.toFixed(2)} s of silence after "${PHRASES[n]!.text}"; move the offsets`);
}

const random = prng(SEED);
for (let i = 0; i < samples.length; i++) samples[i] += NOISE_RMS * gaussian(random);

const audio: Audio = { kind: 'audio', samples, sample_rate: RATE, channels: 1 };
const wav = encodeWav(audio);
const truth = { sample_rate: RATE, segments, phrases: PHRASES.map((p) => p.text) };
await mkdir(OUT, { recursive: true });
await writeFile(join(OUT, 'speech.wav'), wav);
await writeFile(join(OUT, 'speech.json'), JSON.stringify(truth, null, 2) + '\n');
console.log(`speech.wav ${durationS(audio).toFixed(2)} s ${(wav.length / 1024).toFixed(1)} KB`);
for (const [n, s] of segments.entries()) console.log(`  ${s.start_s.toFixed(3)}-${s.end_s.toFixed(3)}  ${PHRASES[n]!.text}`);
