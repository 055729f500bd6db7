// Audio in memory as interleaved float samples, WAV decoding and encoding, mixing down to mono and
// band-limited resampling: what a speech model such as Silero VAD needs from a recording.
import { DwError } from '../protocol/errors.js';

/** Interleaved samples in [-1, 1]. */
export interface Audio {
  kind: 'audio';
  samples: Float32Array;
  sample_rate: number;
  channels: number;
}

export function isAudio(v: unknown): v is Audio {
  if (typeof v !== 'object' || v === null) return false;
  const a = v as Partial<Audio>;
  return (
    a.kind === 'audio' &&
    a.samples instanceof Float32Array &&
    typeof a.sample_rate === 'number' &&
    a.sample_rate > 0 &&
    Number.isInteger(a.channels) &&
    a.channels! >= 1 &&
    a.samples.length % a.channels! === 0
  );
}

export function durationS(a: Audio): number {
  return a.samples.length / a.channels / a.sample_rate;
}

const PCM = 0x0001;
const FLOAT = 0x0003;
const EXTENSIBLE = 0xfffe;

// Names for the codes people actually meet, so the error says what the file is rather than a number.
const COMPRESSED: Record<number, string> = {
  0x0002: 'MS ADPCM',
  0x0006: 'A-law',
  0x0007: 'mu-law',
  0x0011: 'IMA ADPCM',
  0x0031: 'GSM 6.10',
  0x0050: 'MPEG',
  0x0055: 'MP3',
  0x0161: 'WMA',
  0x1610: 'AAC',
  0xf1ac: 'FLAC',
};

// The sub-format GUID of WAVE_FORMAT_EXTENSIBLE is the format code followed by these 14 bytes.
const GUID_TAIL = [0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xaa, 0x00, 0x38, 0x9b, 0x71];

export const MIN_RATE = 1000;
export const MAX_RATE = 768000;
/** 1 GiB of float32 samples: about 4.6 hours of 16 kHz mono, or 1.7 hours of 44.1 kHz stereo. */
export const MAX_SAMPLES = 2 ** 28;

function bad(source: string, why: string): DwError {
  return new DwError('DW_ERR_BAD_ARGUMENT', `${source}: not a readable WAV file: ${why}`, { argument: 'audio', path: source });
}

function hex(code: number): string {
  return `0x${code.toString(16).padStart(4, '0')}`;
}

function fourcc(bytes: Uint8Array, at: number): string {
  return String.fromCharCode(bytes[at]!, bytes[at + 1]!, bytes[at + 2]!, bytes[at + 3]!);
}

/** Decodes a RIFF/WAVE file; `source` names it in error messages. */
export function decodeWav(bytes: Uint8Array, source: string): Audio {
  if (bytes.length < 12 || fourcc(bytes, 8) !== 'WAVE' || (fourcc(bytes, 0) !== 'RIFF' && fourcc(bytes, 0) !== 'RF64')) {
    throw bad(source, 'no RIFF/WAVE header');
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let fmt: { at: number; size: number } | undefined;
  let data: { at: number; size: number } | undefined;
  for (let at = 12; at + 8 <= bytes.length; ) {
    const id = fourcc(bytes, at);
    const size = view.getUint32(at + 4, true);
    const body = at + 8;
    // A recorder that was killed, or one writing to a pipe, leaves a size it guessed up front
    // (often 0xFFFFFFFF); the samples that made it to disk are still good.
    const available = Math.min(size, bytes.length - body);
    if (id === 'fmt ') fmt = { at: body, size: available };
    else if (id === 'data') data = { at: body, size: available };
    at = body + size + (size & 1); // chunks are word-aligned: an odd size is followed by a pad byte
  }
  if (!fmt) throw bad(source, 'no fmt chunk');
  if (!data) throw bad(source, 'no data chunk');
  if (fmt.size < 16) throw bad(source, `fmt chunk of ${fmt.size} bytes is too short`);

  let format = view.getUint16(fmt.at, true);
  const channels = view.getUint16(fmt.at + 2, true);
  const sampleRate = view.getUint32(fmt.at + 4, true);
  const bits = view.getUint16(fmt.at + 14, true);
  if (format === EXTENSIBLE) {
    if (fmt.size < 40) throw bad(source, 'WAVE_FORMAT_EXTENSIBLE with a short fmt chunk');
    const guid = fmt.at + 24;
    if (GUID_TAIL.some((b, i) => bytes[guid + 2 + i] !== b)) throw bad(source, 'WAVE_FORMAT_EXTENSIBLE with an unknown sub-format GUID');
    format = view.getUint16(guid, true);
  }
  if (format !== PCM && format !== FLOAT) {
    throw bad(
      source,
      COMPRESSED[format] ? `compressed format ${hex(format)} (${COMPRESSED[format]})` : `unsupported format ${hex(format)}`,
    );
  }
  if (channels === 0) throw bad(source, 'zero channels');
  // A header's rate decides how much resampling produces: a forged 3 Hz would turn 200 KB into
  // gigabytes. Real recordings lie between telephone and studio rates.
  if (sampleRate < MIN_RATE || sampleRate > MAX_RATE)
    throw bad(source, `sample rate ${sampleRate} Hz (supported: ${MIN_RATE} to ${MAX_RATE})`);
  // PCM narrower than its container (12-bit, 20-bit) is stored left-justified, so reading the
  // whole container gives the right value.
  const width = format === FLOAT ? bits / 8 : Math.ceil(bits / 8);
  if (format === FLOAT ? bits !== 32 && bits !== 64 : bits < 1 || bits > 32) {
    throw bad(source, `${bits}-bit ${format === FLOAT ? 'float' : 'PCM'} samples`);
  }

  const frames = Math.floor(data.size / (width * channels)); // a torn last frame is dropped
  if (frames * channels > MAX_SAMPLES)
    throw bad(
      source,
      `${(frames / sampleRate / 3600).toFixed(1)} h of ${channels}-channel audio is more than dw decodes at once (${MAX_SAMPLES} samples); split the file`,
    );
  const samples = new Float32Array(frames * channels);
  const at = data.at;
  if (format === FLOAT) {
    for (let i = 0; i < samples.length; i++) {
      const x = width === 4 ? view.getFloat32(at + 4 * i, true) : view.getFloat64(at + 8 * i, true);
      // Float files may overshoot full scale or hold NaN; the Audio contract is [-1, 1].
      samples[i] = Number.isNaN(x) ? 0 : Math.max(-1, Math.min(1, x));
    }
  } else if (width === 1) {
    for (let i = 0; i < samples.length; i++) samples[i] = (bytes[at + i]! - 128) / 128; // 8-bit is unsigned
  } else if (width === 2) {
    for (let i = 0; i < samples.length; i++) samples[i] = view.getInt16(at + 2 * i, true) / 0x8000;
  } else if (width === 3) {
    for (let i = 0, p = at; i < samples.length; i++, p += 3) {
      samples[i] = (((bytes[p]! | (bytes[p + 1]! << 8) | (bytes[p + 2]! << 16)) << 8) >> 8) / 0x800000;
    }
  } else {
    for (let i = 0; i < samples.length; i++) samples[i] = view.getInt32(at + 4 * i, true) / 0x80000000;
  }
  return { kind: 'audio', samples, sample_rate: sampleRate, channels };
}

function checkAudio(a: Audio, what: string): void {
  if (!isAudio(a))
    throw new DwError('DW_ERR_BAD_ARGUMENT', `${what}: not audio (need Float32Array samples, a positive sample rate and whole frames)`, {
      argument: 'audio',
    });
}

/** 16-bit PCM WAV; samples are clipped to [-1, 1] and rounded to the nearest step. */
export function encodeWav(a: Audio): Buffer {
  checkAudio(a, 'encodeWav');
  const dataSize = a.samples.length * 2;
  if (dataSize > 0xffffffff - 36)
    throw new DwError('DW_ERR_BAD_ARGUMENT', `encodeWav: ${durationS(a).toFixed(0)} s of audio does not fit in a 4 GB WAV file`, {
      argument: 'audio',
    });
  const out = Buffer.alloc(44 + dataSize);
  out.write('RIFF', 0, 'latin1');
  out.writeUInt32LE(36 + dataSize, 4);
  out.write('WAVEfmt ', 8, 'latin1');
  out.writeUInt32LE(16, 16);
  out.writeUInt16LE(PCM, 20);
  out.writeUInt16LE(a.channels, 22);
  out.writeUInt32LE(Math.round(a.sample_rate), 24);
  out.writeUInt32LE(Math.round(a.sample_rate) * a.channels * 2, 28);
  out.writeUInt16LE(a.channels * 2, 32);
  out.writeUInt16LE(16, 34);
  out.write('data', 36, 'latin1');
  out.writeUInt32LE(dataSize, 40);
  // The same scale as decodeWav (x 32768), so a decoded 16-bit file encodes back bit for bit.
  for (let i = 0; i < a.samples.length; i++) {
    const v = Math.round(a.samples[i]! * 0x8000);
    out.writeInt16LE(Number.isNaN(v) ? 0 : Math.max(-0x8000, Math.min(0x7fff, v)), 44 + 2 * i);
  }
  return out;
}

/** The average of the channels; mono audio is returned as is. */
export function toMono(a: Audio): Audio {
  checkAudio(a, 'toMono');
  if (a.channels === 1) return a;
  const c = a.channels;
  const out = new Float32Array(a.samples.length / c);
  for (let f = 0; f < out.length; f++) {
    let sum = 0;
    for (let ch = 0; ch < c; ch++) sum += a.samples[f * c + ch]!;
    out[f] = sum / c;
  }
  return { kind: 'audio', samples: out, sample_rate: a.sample_rate, channels: 1 };
}

// The low-pass filter is a Kaiser-windowed sinc. Nothing can be both flat up to the lower rate's
// Nyquist frequency and silent just above it, so the cut sits at 0.435 of the lower rate with a
// transition band of about 0.06 of it: flat to 6.5 kHz and below -70 dB from 7.45 kHz for 16 kHz,
// which keeps all of speech and lets nothing fold back.
const CUTOFF = 0.435;
const ZEROS = 32; // zero crossings of the sinc on each side; sets the steepness (and the cost)
const BETA = 7; // Kaiser window shape: about 70 dB of stopband attenuation
const STEPS = 256; // table entries per zero crossing; linear interpolation error is below -90 dB

let kernel: Float32Array | undefined;

// sinc(u) * window(u / ZEROS) for u in [0, ZEROS], where u counts zero crossings.
function kernelTable(): Float32Array {
  if (kernel) return kernel;
  const i0 = (x: number): number => {
    let sum = 1,
      term = 1;
    for (let k = 1; term > 1e-12 * sum; k++) {
      term *= (x / (2 * k)) ** 2;
      sum += term;
    }
    return sum;
  };
  kernel = new Float32Array(ZEROS * STEPS + 2);
  for (let j = 0; j <= ZEROS * STEPS; j++) {
    const u = j / STEPS;
    const sinc = j === 0 ? 1 : Math.sin(Math.PI * u) / (Math.PI * u);
    kernel[j] = (sinc * i0(BETA * Math.sqrt(1 - (u / ZEROS) ** 2))) / i0(BETA);
  }
  return kernel;
}

function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}

/**
 * Changes the sample rate with a band-limited (windowed-sinc) interpolator, so downsampling does not
 * alias. Returns `a` itself when the rate is already `rate`. The output has round(frames * rate /
 * a.sample_rate) frames; the signal before the start and after the end is taken as silence.
 */
export function resample(a: Audio, rate: number): Audio {
  checkAudio(a, 'resample');
  if (
    !Number.isInteger(rate) ||
    rate < MIN_RATE ||
    rate > MAX_RATE ||
    !Number.isInteger(a.sample_rate) ||
    a.sample_rate < MIN_RATE ||
    a.sample_rate > MAX_RATE
  ) {
    throw new DwError(
      'DW_ERR_BAD_ARGUMENT',
      `resample: sample rates must be whole numbers from ${MIN_RATE} to ${MAX_RATE} Hz, got ${a.sample_rate} -> ${rate}`,
      { argument: 'sample_rate' },
    );
  }
  if (rate === a.sample_rate) return a;
  const table = kernelTable();
  const c = a.channels;
  const x = a.samples;
  const inFrames = x.length / c;
  const outFrames = Math.round((inFrames * rate) / a.sample_rate);
  if (outFrames * c > MAX_SAMPLES)
    throw new DwError(
      'DW_ERR_BAD_ARGUMENT',
      `resample: ${outFrames * c} samples at ${rate} Hz is more than dw holds at once (${MAX_SAMPLES})`,
      { argument: 'sample_rate' },
    );
  // In input samples: the sinc's zero crossings are 1/scale apart and it reaches `half` each way.
  const scale = Math.min(1, rate / a.sample_rate) * 2 * CUTOFF;
  const half = ZEROS / scale;
  // Output sample i sits at input position i * up / down. Its weights depend only on the fraction
  // of that position, of which there are `down` kinds, so each set is computed once, when first met.
  const g = gcd(a.sample_rate, rate);
  const up = a.sample_rate / g,
    down = rate / g;
  const phases: { first: number; w: Float32Array }[] = [];
  const phase = (p: number) => {
    const frac = p / down;
    const first = Math.ceil(frac - half);
    const w = new Float32Array(Math.floor(frac + half) - first + 1);
    for (let j = 0; j < w.length; j++) {
      const pos = Math.abs(frac - first - j) * scale * STEPS;
      const n = Math.floor(pos);
      w[j] = (table[n]! + (table[n + 1]! - table[n]!) * (pos - n)) * scale;
    }
    return (phases[p] = { first, w });
  };
  const y = new Float32Array(outFrames * c);
  for (let i = 0; i < outFrames; i++) {
    const q = Math.floor((i * up) / down);
    const p = i * up - q * down;
    const { first, w } = phases[p] ?? phase(p);
    const k0 = q + first;
    const j0 = Math.max(0, -k0),
      j1 = Math.min(w.length, inFrames - k0);
    for (let ch = 0; ch < c; ch++) {
      let acc = 0;
      for (let j = j0, xi = (k0 + j0) * c + ch; j < j1; j++, xi += c) acc += x[xi]! * w[j]!;
      y[i * c + ch] = acc;
    }
  }
  return { kind: 'audio', samples: y, sample_rate: rate, channels: c };
}
