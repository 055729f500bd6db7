// Tasks: steps with no model. Each is called directly, as the engine calls it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { imageLoad } from '../src/pipelines/tasks/image-load.js';
import { imageResize } from '../src/pipelines/tasks/image-resize.js';
import { imageCrop } from '../src/pipelines/tasks/image-crop.js';
import { imageConvert } from '../src/pipelines/tasks/image-convert.js';
import { imageSave } from '../src/pipelines/tasks/image-save.js';
import { audioLoad } from '../src/pipelines/tasks/audio-load.js';
import { audioResample } from '../src/pipelines/tasks/audio-resample.js';
import { audioSave } from '../src/pipelines/tasks/audio-save.js';
import { textJoin } from '../src/pipelines/tasks/text-join.js';
import { textTemplate } from '../src/pipelines/tasks/text-template.js';
import { jsonPick } from '../src/pipelines/tasks/json-pick.js';
import { decodeWav, encodeWav, type Audio } from '../src/media/audio.js';
import type { RawImage } from '../src/media/image.js';

/** A 4x2 RGB image whose pixel (x, y) is [10x, 100y, 7]. */
function ramp(): RawImage {
  const data = new Uint8Array(4 * 2 * 3);
  for (let y = 0; y < 2; y++) for (let x = 0; x < 4; x++) data.set([10 * x, 100 * y, 7], (y * 4 + x) * 3);
  return { data, width: 4, height: 2, channels: 3 };
}

const rejects = (p: Promise<unknown> | (() => unknown), re: RegExp) =>
  assert.rejects(
    async () => (typeof p === 'function' ? p() : p),
    (e: any) => e.code === 'DW_ERR_BAD_ARGUMENT' && re.test(e.message),
  );

test('image_crop cuts the exact pixels and refuses a rectangle outside the image', async () => {
  const out = await imageCrop({ image: ramp(), left: 1, top: 1, width: 2, height: 1 });
  assert.deepEqual([out.width, out.height, ...out.data], [2, 1, 10, 100, 7, 20, 100, 7]);
  const rgba = await imageCrop({
    image: { data: new Uint8Array(4 * 2 * 4).fill(9), width: 4, height: 2, channels: 4 },
    left: 0,
    top: 0,
    width: 1,
    height: 1,
  });
  assert.deepEqual([rgba.channels, ...rgba.data], [4, 9, 9, 9, 9], 'an image value keeps its alpha');
  await rejects(imageCrop({ image: ramp(), left: 3, top: 0, width: 2, height: 1 }), /2x1 at \(3, 0\) reaches outside the 4x2 image/);
  await rejects(imageCrop({ image: ramp(), left: -1, top: 0, width: 2, height: 1 }), /"left" must be an integer from 0/);
});

test('image_resize keeps the aspect ratio given one side and needs at least one', async () => {
  const img = { data: new Uint8Array(40 * 20 * 3).fill(200), width: 40, height: 20, channels: 3 };
  const out = await imageResize({ image: img, width: 10 });
  assert.deepEqual([out.width, out.height, out.channels], [10, 5, 3]);
  assert.ok(
    out.data.every((v) => v === 200),
    'a flat image stays flat',
  );
  const fill = await imageResize({ image: img, width: 8, height: 8 });
  assert.deepEqual([fill.width, fill.height], [8, 8]);
  await rejects(imageResize({ image: img }), /give "width", "height" or both/);
  await rejects(imageResize({ image: img, width: 10, fit: 'stretch' }), /"fit" must be one of/);
});

test('image_convert to gray and back to rgb, image_save encodes, image_load reads it again', async () => {
  const gray = await imageConvert({ image: ramp(), mode: 'gray' });
  assert.equal(gray.channels, 1);
  assert.equal(gray.data.length, 8);
  const saved = await imageSave({ image: ramp(), format: 'png' });
  assert.equal(saved.content_type, 'image/png');
  const dir = mkdtempSync(join(tmpdir(), 'dw-tasks-'));
  try {
    const file = join(dir, 'ramp.png');
    writeFileSync(file, saved.data);
    const back = await imageLoad({ image: file });
    assert.deepEqual([...back.data], [...ramp().data], 'PNG is lossless');
    const rgba = await imageLoad({ image: file, mode: 'rgba' });
    assert.equal(rgba.channels, 4);
    const jpeg = await imageSave({ image: file, format: 'jpeg', quality: 50 });
    assert.equal((await sharp(jpeg.data).metadata()).format, 'jpeg');
    await assert.rejects(imageLoad({ image: join(dir, 'none.png') }), (e: any) => e.code === 'DW_ERR_FILE_NOT_FOUND');
    writeFileSync(join(dir, 'junk.png'), 'not an image');
    await rejects(imageLoad({ image: join(dir, 'junk.png') }), /not a readable image/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  await rejects(imageConvert({ image: ramp(), mode: 'cmyk' }), /"mode" must be one of "rgb", "rgba", "gray"/);
});

test('audio_load, audio_resample and audio_save', async () => {
  const stereo: Audio = {
    kind: 'audio',
    samples: Float32Array.from({ length: 4800 * 2 }, (_, i) => (i % 2 ? 0.5 : -0.5) * Math.sin(i / 20)),
    sample_rate: 48000,
    channels: 2,
  };
  const dir = mkdtempSync(join(tmpdir(), 'dw-tasks-'));
  try {
    const file = join(dir, 'a.wav');
    writeFileSync(file, encodeWav(stereo));
    const loaded = await audioLoad({ audio: file });
    assert.deepEqual([loaded.sample_rate, loaded.channels, loaded.samples.length], [48000, 2, 9600]);
    const mono = await audioLoad({ audio: file, mono: true });
    assert.equal(mono.channels, 1);
    const down = await audioResample({ audio: loaded, sample_rate: 16000, mono: true });
    assert.deepEqual([down.sample_rate, down.channels, down.samples.length], [16000, 1, 1600]);
    const saved = await audioSave({ audio: down });
    assert.equal(saved.content_type, 'audio/wav');
    assert.equal(decodeWav(saved.data, 'saved').samples.length, 1600);
    await rejects(audioResample({ audio: loaded, sample_rate: 12.5 }), /"sample_rate" must be an integer/);
    writeFileSync(join(dir, 'b.wav'), 'RIFF....WAVEjunk');
    await rejects(audioLoad({ audio: join(dir, 'b.wav') }), /audio_load: .*b\.wav.*not a readable WAV/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('text_template fills placeholders from values and results, and names a missing one', () => {
  assert.deepEqual(textTemplate({ template: 'total: {ocr.text} ({n} lines) {{x}}', values: { ocr: { text: '15.90' }, n: 2 } }), {
    text: 'total: 15.90 (2 lines) {x}',
  });
  assert.deepEqual(textTemplate({ template: '{r}', values: { r: { text: 'from a result' } } }), { text: 'from a result' });
  assert.throws(() => textTemplate({ template: 'hi {who}', values: { name: 'x' } }), /"\{who\}" has no text value; values: name/);
  assert.throws(
    () => textTemplate({ template: 'x', values: {}, extra: 1 }),
    /unknown argument "extra"; accepted arguments: template, values/,
  );
});

test('text_join and json_pick', () => {
  assert.deepEqual(textJoin({ items: ['a', { text: 'b' }], separator: ' + ' }), { text: 'a + b' });
  assert.throws(() => textJoin({ items: [3] }), /items\[0\] is neither a string nor a result with "text"/);
  assert.equal(jsonPick({ value: { lines: [{ text: 'x' }] }, path: 'lines.0.text' }), 'x');
  assert.throws(() => jsonPick({ value: {}, path: 'a.b' }), /nothing at "a.b"/);
});
