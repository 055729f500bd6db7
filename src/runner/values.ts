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

/** A value that cannot be JSON (one that refers to itself, a function, a promise); `path` says where. */
export class UnsendableValue extends Error {
  constructor(
    readonly path: string,
    readonly why: string,
  ) {
    super(`${why} (at ${path})`);
  }
}

/**
 * More items than this cannot be in a result at all (each takes two characters of JSON at least,
 * and results travel in 16 MiB): refused before walking them (a sparse array of length 4e9 once
 * held the runner for minutes).
 */
export const MAX_RESULT_ITEMS = 8 * 1024 * 1024;

/** Deeper than this a result is a mistake, and a recursive walk of it would overflow the stack. */
export const MAX_RESULT_DEPTH = 256;

/** What JSON.stringify would make of a value silently (an Error as {}, a Map as {}), said plainly. */
function plain(value: object): unknown {
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? null : value.toISOString();
  if (value instanceof Error) return { error: value.name, message: value.message };
  if (value instanceof Map) return Object.fromEntries([...value].map(([k, v]) => [String(k), v]));
  if (value instanceof Set) return [...value];
  return value;
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
  if (typeof value === 'bigint')
    return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : value.toString();
  const items = Array.isArray(value) || ArrayBuffer.isView(value) ? (value as ArrayLike<unknown>).length : 0;
  if (items > MAX_RESULT_ITEMS)
    throw new UnsendableValue(path, `it is an array of ${items} items, more than a result can carry as JSON (save it to a file)`);
  if (ArrayBuffer.isView(value)) return Array.from(value as unknown as ArrayLike<number>);
  if (typeof value === 'function' || typeof value === 'symbol') throw new UnsendableValue(path, `it holds a ${typeof value}`);
  if (value === null || typeof value !== 'object') return value;
  if (value instanceof Promise) throw new UnsendableValue(path, 'it holds a promise (await it before returning)');
  // A plugin's result may refer to itself; JSON.stringify would overflow the stack on it.
  if (ancestors.includes(value)) throw new UnsendableValue(path, 'it refers to itself');
  if (ancestors.length >= MAX_RESULT_DEPTH) throw new UnsendableValue(path, `it is nested deeper than ${MAX_RESULT_DEPTH} levels`);
  const shown = plain(value);
  if (shown !== value) return toJson(shown, tensorLimit, path, ancestors);
  ancestors.push(value);
  try {
    if (Array.isArray(value)) return value.map((v, i) => toJson(v, tensorLimit, `${path}[${i}]`, ancestors));
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, toJson(v, tensorLimit, `${path}.${k}`, ancestors)]));
  } finally {
    ancestors.pop();
  }
}
