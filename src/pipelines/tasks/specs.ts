// What each task takes, in one light module: the tasks check their arguments with it when they run,
// and the daemon checks a workflow's literal arguments with it before any run (and in dw validate).
import { IMAGE_FORMATS } from '../../media/image-value.js';
import { type ArgRule, type ArgSpec, audio, boolean, image, number, oneOf, text } from '../arguments.js';

const coord = number(0, 16384, { int: true });
const size = number(1, 16384, { int: true });
const side = { ...number(1, 16384, { int: true }), optional: true };
const mode = oneOf('rgb', 'rgba', 'gray');

export const TASK_ARGS = {
  image_load: { image, mode: { ...mode, default: 'rgb' } },
  image_resize: { image, width: side, height: side, fit: { ...oneOf('fill', 'contain', 'cover', 'inside', 'outside'), default: 'fill' } },
  image_crop: { image, left: coord, top: coord, width: size, height: size },
  image_convert: { image, mode },
  image_save: {
    image,
    format: { ...oneOf(...Object.keys(IMAGE_FORMATS)), default: 'png' },
    quality: { ...number(1, 100, { int: true }), optional: true },
  },
  audio_load: { audio, mono: { ...boolean, default: false } },
  audio_resample: { audio, sample_rate: number(1000, 384000, { int: true }), mono: { ...boolean, default: false } },
  audio_save: { audio },
  text_join: { items: { expected: 'an array', ok: Array.isArray }, separator: { ...text, default: '\n' } },
  text_template: {
    template: text,
    values: {
      expected: 'an object of name → value',
      ok: (v: unknown) => typeof v === 'object' && v !== null && !Array.isArray(v),
      default: {},
    },
  },
  json_pick: {
    value: { expected: 'any value', ok: () => true },
    path: { expected: 'a non-empty dotted path, e.g. "lines.0.text"', ok: (v: unknown) => typeof v === 'string' && v !== '' },
  },
} satisfies Record<string, Record<string, ArgSpec>>;

export type TaskType = keyof typeof TASK_ARGS;

export const TASK_RULES: Partial<Record<TaskType, ArgRule>> = {
  image_resize: (a) => (a.width === undefined && a.height === undefined ? 'give "width", "height" or both' : null),
};
