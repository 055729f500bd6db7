// Step values as JSON. Inside the runner, steps pass images, audio and tensors to each other as
// typed arrays; what leaves it (a --json result, a saved .json) must be plain JSON, and a client
// should see an image's size rather than megabytes of pixels.
import { isAudio, durationS } from '../media/audio.js';
import { isEncodedFile } from '../media/file.js';
import { isImage } from '../media/image.js';
import { isTensorData } from '../media/npy.js';
import { tensorToJson } from '../pipelines/onnx/tensors.js';

/** Tensors with more values than this are shown by type and dims only in a run's results. */
export const RESULT_TENSOR_LIMIT = 65536;

/** A value that refers to itself cannot be JSON; `path` says where the loop closes. */
export class CircularValue extends Error {
  constructor(readonly path: string) {
    super(`circular at ${path}`);
  }
}

export function toJson(value: unknown, tensorLimit = Infinity, path = '$', ancestors: object[] = []): unknown {
  if (isImage(value)) return { kind: 'image', width: value.width, height: value.height, channels: value.channels };
  if (isAudio(value))
    return {
      kind: 'audio',
      sample_rate: value.sample_rate,
      channels: value.channels,
      duration_s: Math.round(durationS(value) * 1000) / 1000,
    };
  if (isEncodedFile(value)) return { kind: 'file', content_type: value.content_type, bytes: value.data.byteLength };
  if (isTensorData(value)) return { kind: 'tensor', ...tensorToJson(value, tensorLimit) };
  if (typeof value === 'bigint') return Number.isSafeInteger(Number(value)) ? Number(value) : value.toString();
  if (ArrayBuffer.isView(value)) return Array.from(value as unknown as ArrayLike<number>);
  if (value === null || typeof value !== 'object') return value;
  // A plugin's result may refer to itself; JSON.stringify would overflow the stack on it.
  if (ancestors.includes(value)) throw new CircularValue(path);
  ancestors.push(value);
  try {
    if (Array.isArray(value)) return value.map((v, i) => toJson(v, tensorLimit, `${path}[${i}]`, ancestors));
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, toJson(v, tensorLimit, `${path}.${k}`, ancestors)]));
  } finally {
    ancestors.pop();
  }
}
