// WAV decoding of every layout we claim to read, built byte by byte here, and the resampler's
// length, passband and stopband.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeWav, durationS, encodeWav, isAudio, resample, toMono, type Audio } from '../src/media/audio.js';
import { DwError } from '../src/protocol/errors.js';

const PCM = 1,
  FLOAT = 3,
  EXTENSIBLE = 0xfffe;

function chunk(id: string, body: Uint8Array, size = body.length): Buffer {
  const head = Buffer.alloc(8);
  head.write(id, 0, 'latin1');
  head.writeUInt32LE(size, 4);
  return Buffer.concat([head, body, Buffer.alloc(body.length & 1)]);
}

function riff(...chunks: Buffer[]): Buffer {
  const body = Buffer.concat(chunks);
  const head = Buffer.alloc(12);
  head.write('RIFF', 0, 'latin1');
  head.writeUInt32LE(4 + body.length, 4);
  head.write('WAVE', 8, 'latin1');
  return Buffer.concat([head, body]);
}

function fmt(format: number, channels: number, rate: number, bits: number): Buffer {
  const b = Buffer.alloc(16);
  const width = Math.ceil(bits / 8);
  b.writeUInt16LE(format, 0);
  b.writeUInt16LE(channels, 2);
  b.writeUInt32LE(rate, 4);
  b.writeUInt32LE(rate * channels * width, 8);
  b.writeUInt16LE(channels * width, 12);
  b.writeUInt16LE(bits, 14);
  return chunk('fmt ', b);
}

function fmtExtensible(subFormat: number, channels: number, rate: number, bits: number, guidTail = '000000001000800000aa00389b71'): Buffer {
  const b = Buffer.alloc(40);
  fmt(EXTENSIBLE, channels, rate, bits).copy(b, 0, 8, 24);
  b.writeUInt16LE(22, 16); // cbSize
  b.writeUInt16LE(bits, 18); // valid bits
  b.writeUInt32LE(channels === 2 ? 3 : 0, 20); // channel mask
  b.writeUInt16LE(subFormat, 24);
  Buffer.from(guidTail, 'hex').copy(b, 26);
  return chunk('fmt ', b);
}

function ints(values: number[], width: number): Buffer {
  const b = Buffer.alloc(values.length * width);
  values.forEach((v, i) => b.writeIntLE(v, i * width, width));
  return b;
}

function floats(values: number[], width: 4 | 8): Buffer {
  const b = Buffer.alloc(values.length * width);
  values.forEach((v, i) => (width === 4 ? b.writeFloatLE(v, i * 4) : b.writeDoubleLE(v, i * 8)));
  return b;
}

function assertClose(actual: ArrayLike<number>, expected: number[], tolerance = 1e-7): void {
  assert.equal(actual.length, expected.length, 'length');
  for (let i = 0; i < expected.length; i++) {
    assert.ok(Math.abs(actual[i]! - expected[i]!) <= tolerance, `sample ${i}: ${actual[i]} != ${expected[i]}`);
  }
}

function rejects(bytes: Uint8Array, message: RegExp): void {
  assert.throws(
    () => decodeWav(bytes, 'in.wav'),
    (err: unknown) => {
      assert.ok(err instanceof DwError);
      assert.equal(err.code, 'DW_ERR_BAD_ARGUMENT');
      assert.match(err.message, /^in\.wav: /);
      assert.match(err.message, message);
      return true;
    },
  );
}

const mono = (samples: number[] | Float32Array, sample_rate: number): Audio => ({
  kind: 'audio',
  samples: Float32Array.from(samples),
  sample_rate,
  channels: 1,
});

function sine(freq: number, rate: number, frames: number): Audio {
  const s = new Float32Array(frames);
  for (let i = 0; i < frames; i++) s[i] = Math.sin((2 * Math.PI * freq * i) / rate);
  return mono(s, rate);
}

function rms(x: Float32Array, from = 0, to = x.length): number {
  let sum = 0;
  for (let i = from; i < to; i++) sum += x[i]! ** 2;
  return Math.sqrt(sum / (to - from));
}

// Stereo frames: full scale both ways, half scale, silence.
const INTS = (full: number) => [0, full / 2, -full / 2, full - 1, -full, 0];

test('decodes 8-bit unsigned PCM', () => {
  const a = decodeWav(riff(fmt(PCM, 2, 8000, 8), chunk('data', Uint8Array.from([128, 192, 64, 255, 0, 128]))), 'in.wav');
  assert.deepEqual([a.sample_rate, a.channels], [8000, 2]);
  assertClose(a.samples, [0, 0.5, -0.5, 127 / 128, -1, 0]);
});

for (const bits of [16, 24, 32]) {
  test(`decodes ${bits}-bit signed PCM`, () => {
    const full = 2 ** (bits - 1);
    const a = decodeWav(riff(fmt(PCM, 2, 44100, bits), chunk('data', ints(INTS(full), bits / 8))), 'in.wav');
    assert.deepEqual([a.sample_rate, a.channels], [44100, 2]);
    assertClose(a.samples, [0, 0.5, -0.5, (full - 1) / full, -1, 0]);
  });
}

for (const bits of [32, 64] as const) {
  test(`decodes ${bits}-bit float, clipping overshoot and NaN into [-1, 1]`, () => {
    const a = decodeWav(
      riff(fmt(FLOAT, 1, 48000, bits), chunk('data', floats([0, 0.25, -0.75, 1.5, -3, NaN], (bits / 8) as 4 | 8))),
      'in.wav',
    );
    assert.deepEqual([a.sample_rate, a.channels], [48000, 1]);
    assertClose(a.samples, [0, 0.25, -0.75, 1, -1, 0]);
  });
}

test('decodes any channel count', () => {
  const a = decodeWav(riff(fmt(PCM, 6, 48000, 16), chunk('data', ints([1, 2, 3, 4, 5, 6, -1, -2, -3, -4, -5, -6], 2))), 'in.wav');
  assert.equal(a.channels, 6);
  assert.equal(a.samples.length, 12);
  assert.equal(durationS(a), 2 / 48000);
});

test('decodes WAVE_FORMAT_EXTENSIBLE with a PCM or float sub-format', () => {
  const pcm = decodeWav(riff(fmtExtensible(PCM, 2, 96000, 24), chunk('data', ints(INTS(2 ** 23), 3))), 'in.wav');
  assert.deepEqual([pcm.sample_rate, pcm.channels], [96000, 2]);
  assertClose(pcm.samples, [0, 0.5, -0.5, (2 ** 23 - 1) / 2 ** 23, -1, 0]);
  const float = decodeWav(riff(fmtExtensible(FLOAT, 1, 16000, 32), chunk('data', floats([0.5, -0.5], 4))), 'in.wav');
  assertClose(float.samples, [0.5, -0.5]);
});

test('skips unknown chunks, including odd-sized ones with their pad byte, before and after the data', () => {
  const list = chunk('LIST', Buffer.from('INFOISFT\x05\x00\x00\x00dw!!\x00\x00', 'latin1'));
  const odd = chunk('junk', Uint8Array.from([1, 2, 3]));
  assert.equal(odd.length, 8 + 4, 'the test chunk carries its pad byte');
  const oddData = chunk('data', Uint8Array.from([128, 255, 0])); // three 8-bit samples: odd size
  const a = decodeWav(riff(odd, list, fmt(PCM, 1, 8000, 8), oddData, list), 'in.wav');
  assertClose(a.samples, [0, 127 / 128, -1]);
});

test('reads what is there when the data size is 0xFFFFFFFF or past the end of the file', () => {
  const samples = ints([100, -100, 200, -200], 2);
  for (const size of [0xffffffff, 1000]) {
    const a = decodeWav(riff(fmt(PCM, 1, 16000, 16), chunk('data', samples, size)), 'in.wav');
    assertClose(
      a.samples,
      [100, -100, 200, -200].map((v) => v / 32768),
    );
  }
  // A recording cut in the middle of a stereo frame loses only that frame.
  const torn = riff(fmt(PCM, 2, 16000, 16), chunk('data', samples, 0xffffffff)).subarray(0, -1);
  assertClose(decodeWav(torn, 'in.wav').samples, [100 / 32768, -100 / 32768]);
});

test('decodes from a view into a larger buffer', () => {
  const wav = riff(fmt(PCM, 1, 8000, 16), chunk('data', ints([1000, -1000], 2)));
  const inside = new Uint8Array(wav.length + 20);
  inside.set(wav, 7);
  assertClose(decodeWav(inside.subarray(7, 7 + wav.length), 'in.wav').samples, [1000 / 32768, -1000 / 32768]);
});

test('says why a file cannot be read', () => {
  const data = chunk('data', ints([0, 0], 2));
  rejects(Buffer.from('ID3\x04 this is an mp3 file'), /no RIFF\/WAVE header/);
  rejects(Buffer.from('RIFF\x00\x00\x00\x00AVI LIST'), /no RIFF\/WAVE header/);
  rejects(riff(data), /no fmt chunk/);
  rejects(riff(fmt(PCM, 1, 8000, 16)), /no data chunk/);
  rejects(riff(fmt(0x0055, 2, 44100, 0), data), /compressed format 0x0055 \(MP3\)/);
  rejects(riff(fmt(0x0011, 1, 8000, 4), data), /compressed format 0x0011 \(IMA ADPCM\)/);
  rejects(riff(fmt(0x1234, 1, 8000, 16), data), /unsupported format 0x1234/);
  rejects(riff(fmtExtensible(0x0055, 1, 8000, 16), data), /compressed format 0x0055 \(MP3\)/);
  rejects(riff(fmtExtensible(PCM, 1, 8000, 16, '00'.repeat(14)), data), /unknown sub-format GUID/);
  rejects(riff(fmt(PCM, 0, 8000, 16), data), /zero channels/);
  rejects(riff(fmt(PCM, 1, 0, 16), data), /sample rate 0 Hz \(supported: 1000 to 768000\)/);
  rejects(riff(fmt(PCM, 1, 3, 16), data), /sample rate 3 Hz/);
  rejects(riff(fmt(FLOAT, 1, 8000, 16), data), /16-bit float samples/);
  rejects(riff(fmt(PCM, 1, 8000, 40), data), /40-bit PCM samples/);
  rejects(riff(chunk('fmt ', Buffer.alloc(8)), data), /fmt chunk of 8 bytes is too short/);
});

test('encodeWav writes 16-bit PCM that decodes back, clipped and rounded', () => {
  const a: Audio = {
    kind: 'audio',
    samples: Float32Array.from([0, 0.5, -0.5, 1.5, -2, 0.4 / 32768, 0.6 / 32768, -0.6 / 32768]),
    sample_rate: 22050,
    channels: 2,
  };
  const wav = encodeWav(a);
  assert.equal(wav.length, 44 + 16);
  assert.equal(wav.toString('latin1', 0, 4), 'RIFF');
  const back = decodeWav(wav, 'out.wav');
  assert.deepEqual([back.sample_rate, back.channels], [22050, 2]);
  assert.deepEqual([...ints([0, 16384, -16384, 32767, -32768, 0, 1, -1], 2)], [...wav.subarray(44)]);
  // Decoding and re-encoding a 16-bit file changes nothing.
  assert.deepEqual(encodeWav(back), wav);
});

test('isAudio and durationS', () => {
  const a: Audio = { kind: 'audio', samples: new Float32Array(48000), sample_rate: 16000, channels: 2 };
  assert.ok(isAudio(a));
  assert.equal(durationS(a), 1.5);
  assert.ok(!isAudio({ ...a, samples: [0, 0] }));
  assert.ok(!isAudio({ ...a, channels: 0 }));
  assert.ok(!isAudio({ ...a, samples: new Float32Array(3) }), 'a torn frame');
  assert.ok(!isAudio({ ...a, kind: 'image' }));
  assert.ok(!isAudio(null));
});

test('toMono averages the channels and returns mono audio as is', () => {
  const stereo: Audio = { kind: 'audio', samples: Float32Array.from([1, 0, 0.5, -0.5, -1, -0.5]), sample_rate: 8000, channels: 2 };
  const m = toMono(stereo);
  assert.deepEqual([m.sample_rate, m.channels], [8000, 1]);
  assertClose(m.samples, [0.5, 0, -0.75]);
  const three = toMono({ kind: 'audio', samples: Float32Array.from([0.3, 0.6, 0.9]), sample_rate: 8000, channels: 3 });
  assertClose(three.samples, [0.6]);
  const one = mono([0.1, 0.2], 8000);
  assert.equal(toMono(one), one);
});

test('resample keeps the length ratio and returns audio at the same rate as is', () => {
  const a = sine(440, 48000, 48000);
  assert.equal(resample(a, 48000), a);
  assert.equal(resample(a, 16000).samples.length, 16000);
  assert.equal(resample(a, 16000).sample_rate, 16000);
  assert.equal(resample(sine(440, 16000, 16000), 48000).samples.length, 48000);
  for (const frames of [44100, 44101, 12345, 1, 0, 441 * 7 + 3]) {
    const out = resample(mono(new Float32Array(frames), 44100), 16000).samples.length;
    assert.ok(Math.abs(out - (frames * 16000) / 44100) <= 1, `${frames} frames at 44.1 kHz gave ${out} at 16 kHz`);
  }
  assert.throws(() => resample(a, 0), /sample rates must be whole numbers from 1000 to 768000 Hz/);
  assert.throws(() => resample(a, 16000.5), /sample rates must be whole numbers from 1000 to 768000 Hz/);
  assert.throws(() => resample(a, 3), /from 1000 to 768000 Hz, got 48000 -> 3/);
});

test('a 1 kHz sine at 48 kHz is still a 1 kHz sine at 16 kHz', () => {
  const out = resample(sine(1000, 48000, 48000), 16000).samples;
  const ideal = sine(1000, 16000, 16000).samples;
  // Away from the ends, where the filter sees silence outside the signal.
  const from = 200,
    to = out.length - 200;
  let dot = 0,
    maxErr = 0,
    crossings = 0;
  for (let i = from; i < to; i++) {
    dot += out[i]! * ideal[i]!;
    maxErr = Math.max(maxErr, Math.abs(out[i]! - ideal[i]!));
    if (i > from && Math.sign(out[i]!) !== Math.sign(out[i - 1]!)) crossings++;
  }
  const correlation = dot / ((to - from) * rms(out, from, to) * rms(ideal, from, to));
  assert.ok(correlation > 0.9999, `correlation ${correlation}`);
  assert.ok(maxErr < 1e-3, `max error ${maxErr}`);
  // Two zero crossings per cycle, 1000 cycles per second.
  assert.ok(Math.abs(crossings - (2000 * (to - from)) / 16000) <= 2, `${crossings} zero crossings`);
});

test('resampling 48 kHz to 16 kHz removes what does not fit below the new Nyquist frequency', () => {
  const near = resample(sine(7500, 48000, 48000), 16000).samples;
  assert.ok(rms(near, 200, near.length - 200) < 0.1 * Math.SQRT1_2, `7.5 kHz kept ${rms(near)}`);
  // 10 kHz would fold back to 6 kHz, well inside the passband, without the low-pass.
  const above = resample(sine(10000, 48000, 48000), 16000).samples;
  assert.ok(rms(above, 200, above.length - 200) < 0.001, `10 kHz aliased with RMS ${rms(above)}`);
});

test('resampling treats each channel on its own', () => {
  const left = sine(1000, 44100, 4410).samples;
  const stereo: Audio = { kind: 'audio', samples: new Float32Array(8820), sample_rate: 44100, channels: 2 };
  left.forEach((v, i) => (stereo.samples[2 * i] = v));
  const out = resample(stereo, 16000);
  assert.equal(out.channels, 2);
  assert.equal(out.samples.length, 2 * 1600);
  let rightEnergy = 0;
  for (let i = 1; i < out.samples.length; i += 2) rightEnergy += out.samples[i]! ** 2;
  assert.equal(rightEnergy, 0);
  const l = Float32Array.from({ length: 1600 }, (_, i) => out.samples[2 * i]!);
  assert.ok(Math.abs(rms(l, 100, 1500) - Math.SQRT1_2) < 1e-3);
});
