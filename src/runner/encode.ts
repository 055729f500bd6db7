// Turns a step result into the bytes of a saved output. The runner encodes; the client writes the
// file (as the invoking user, under its own --output-dir).
import { DwError } from '../protocol/errors.js';
import { encodeWav, isAudio } from '../media/audio.js';
import { isEncodedFile } from '../media/file.js';
import { encodeImage, isImage } from '../media/image.js';
import { isTensorData, writeNpy } from '../media/npy.js';
import { toJson } from './values.js';

/**
 * The value itself when `is` holds, else its only field for which it holds: a VAD result saves its
 * `audio`, a one-output onnx result its tensor.
 */
function find<T>(value: unknown, is: (v: unknown) => v is T): T | undefined {
  if (is(value)) return value;
  if (value === null || typeof value !== 'object') return undefined;
  const hits = Object.values(value).filter(is);
  return hits.length === 1 ? hits[0] : undefined;
}

function textOf(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  const text = (value as { text?: unknown } | null)?.text;
  return typeof text === 'string' ? text : undefined;
}

const line = (s: string) => Buffer.from(s.endsWith('\n') ? s : s + '\n');

/** An encoder for values `find` can locate with `is`; undefined (cannot encode) otherwise. */
function via<T>(
  is: (v: unknown) => v is T,
  encode: (x: T) => Buffer | Promise<Buffer>,
): (value: unknown) => Buffer | Promise<Buffer> | undefined {
  return (value) => {
    const x = find(value, is);
    return x === undefined ? undefined : encode(x);
  };
}

const ENCODERS: Record<string, { needs: string; encode: (value: unknown) => Buffer | Promise<Buffer> | undefined }> = {
  'application/json': { needs: 'any result', encode: (value) => line(JSON.stringify(toJson(value), null, 2)) },
  'text/plain': {
    needs: 'a string result or one with a "text" field',
    encode: (v) => {
      const t = textOf(v);
      return t === undefined ? undefined : line(t);
    },
  },
  'image/png': { needs: 'an image', encode: via(isImage, (img) => encodeImage(img, 'png')) },
  'image/jpeg': { needs: 'an image', encode: via(isImage, (img) => encodeImage(img, 'jpeg')) },
  'image/webp': { needs: 'an image', encode: via(isImage, (img) => encodeImage(img, 'webp')) },
  'audio/wav': { needs: 'audio (or a result with one audio field)', encode: via(isAudio, encodeWav) },
  'application/x-npy': {
    needs: 'a tensor (or a result with exactly one tensor, e.g. an onnx step with one output)',
    encode: via(isTensorData, writeNpy),
  },
};

export async function encodeResult(value: unknown, contentType: string, step: string): Promise<Buffer> {
  // A step that encoded its own file (image_save, audio_save) is saved as it is.
  if (isEncodedFile(value)) {
    if (value.content_type !== contentType) {
      throw new DwError(
        'DW_ERR_OUTPUT',
        `step "${step}": it produced ${value.content_type} but result.content_type is ${contentType}; make them agree`,
        { step, content_type: contentType, produced: value.content_type },
      );
    }
    return Buffer.from(value.data.buffer, value.data.byteOffset, value.data.byteLength);
  }
  const enc = ENCODERS[contentType];
  const bytes = enc ? await enc.encode(value) : undefined;
  if (!bytes) {
    throw new DwError(
      'DW_ERR_OUTPUT',
      `step "${step}": its result cannot be saved as ${contentType}, which needs ${enc?.needs ?? 'a known content type'}`,
      { step, content_type: contentType },
    );
  }
  return bytes;
}
