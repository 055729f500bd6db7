// What the daemon needs to know about each pipeline and task type to validate a workflow before any
// model loads, without importing the implementations (which pull in onnxruntime and sharp).
import { IMAGE_FORMATS } from '../media/image-value.js';
import type { ArgRule, ArgSpec } from './arguments.js';
import { ONNX_ARGS, ONNX_RULE } from './onnx/args.js';
import { OCR_ARGS } from './paddle-ocr/args.js';
import { VAD_ARGS, VAD_RULE } from './silero-vad/args.js';
import { SD_ARGS, SD_RULE } from './stable-diffusion/args.js';
import { stableDiffusionLayout, type Layout } from './stable-diffusion/export-layout.js';
import { TASK_ARGS, TASK_RULES, type TaskType } from './tasks/specs.js';
import type { ModelRole } from './types.js';

/** What a step's result holds besides plain JSON, which decides the content types it can be saved as. */
export type ValueKind = 'text' | 'image' | 'audio' | 'tensor';

/** The kind of value each content type needs (null: any value, as JSON); runner/encode.ts encodes them. */
export const CONTENT_NEEDS: Record<string, ValueKind | null> = {
  'application/json': null,
  'text/plain': 'text',
  'image/png': 'image',
  'image/jpeg': 'image',
  'image/webp': 'image',
  'audio/wav': 'audio',
  'application/x-npy': 'tensor',
};

export interface StepTypeInfo {
  /** Model roles; only pipelines have them. */
  roles: ModelRole[];
  /**
   * Arguments that name input files, as dotted paths ("*" matches any key): string values there are
   * resolved to absolute paths and checked to exist before the run.
   */
  fileArgs: string[];
  summary: string;
  /** For steps whose result is an encoded file: its content type, so result.save can default to it. */
  saves?: (args: Record<string, unknown>) => string;
  /**
   * For pipelines whose models are a folder layout (a diffusers export): the onnx graphs and text
   * files the given roles stand for, which the loader then checks, and the daemon keys, one by one.
   */
  layout?: (given: Record<string, string>, args: Record<string, unknown>) => Layout;
  /** Its arguments, checked before the run (dw validate too) with the rules the run itself uses; absent: not known (plugins, sub-workflows). */
  args?: Record<string, ArgSpec>;
  rule?: ArgRule;
  /** What its result holds besides JSON; absent: not known ahead (json_pick, plugins, sub-workflows). */
  produces?: ValueKind;
  /**
   * Bumped when the same arguments and models would give another result (a fixed bug, a changed
   * default): part of the step cache's key, so results of the older code are not served.
   */
  version?: number;
  /** Whether the same arguments and models always give the same result (the step cache relies on it); absent: yes. */
  deterministic?: (args: Record<string, unknown>) => boolean;
}

export const PIPELINES: Record<string, StepTypeInfo> = {
  'paddle-ocr': {
    roles: [
      { name: 'det', kind: 'onnx', required: true },
      { name: 'cls', kind: 'onnx', required: false },
      { name: 'rec', kind: 'onnx', required: true },
      { name: 'keys', kind: 'text', required: true },
    ],
    fileArgs: ['image'],
    summary: 'PaddleOCR v4: detect text boxes, fix their direction, recognise each line',
    args: OCR_ARGS,
    produces: 'text',
  },
  'silero-vad': {
    roles: [{ name: 'vad', kind: 'onnx', required: true }],
    fileArgs: ['audio'],
    summary: 'Silero VAD v4: speech segments of a recording, and the speech-only audio',
    args: VAD_ARGS,
    rule: VAD_RULE,
    produces: 'audio',
  },
  onnx: {
    roles: [{ name: 'model', kind: 'onnx', required: true }],
    fileArgs: ['inputs.*', 'inputs.*.image'],
    summary: 'any ONNX model: inputs from JSON, .npy files or images; outputs as tensors',
    args: ONNX_ARGS,
    rule: ONNX_RULE,
    produces: 'tensor',
  },
  'stable-diffusion': {
    roles: [
      { name: 'export', kind: 'folder', required: false },
      { name: 'text_encoder', kind: 'onnx', required: false },
      { name: 'unet', kind: 'onnx', required: false },
      { name: 'vae_decoder', kind: 'onnx', required: false },
      { name: 'vae_encoder', kind: 'onnx', required: false },
      { name: 'tokenizer', kind: 'folder', required: false },
      { name: 'scheduler', kind: 'folder', required: false },
    ],
    fileArgs: ['image'],
    summary: 'Stable Diffusion (a diffusers/optimum ONNX export): text, or text and an image, to an image',
    saves: () => 'image/png',
    // Without a seed each generation picks a random one.
    deterministic: (a) => typeof a.seed === 'number',
    layout: (given, args) => stableDiffusionLayout(given, { image: args.image !== undefined && args.image !== null }),
    args: SD_ARGS,
    rule: SD_RULE,
    produces: 'image',
  },
};

const image = ['image'];
const audio = ['audio'];
const IMAGE_TYPES: Record<string, string> = IMAGE_FORMATS;

/** A task's entry: its arguments and rule come from tasks/specs.ts, which the task itself checks with. */
const task = (type: TaskType, info: Omit<StepTypeInfo, 'roles' | 'args' | 'rule'>): StepTypeInfo => ({
  roles: [],
  ...info,
  args: TASK_ARGS[type],
  rule: TASK_RULES[type],
});

export const TASKS: Record<string, StepTypeInfo> = {
  image_load: task('image_load', { fileArgs: image, summary: 'decode an image file (mode rgb, rgba or gray)', produces: 'image' }),
  image_resize: task('image_resize', {
    fileArgs: image,
    summary: 'resize to width and/or height (fit: fill, contain, cover, inside, outside)',
    produces: 'image',
  }),
  image_crop: task('image_crop', { fileArgs: image, summary: 'cut out left, top, width, height (pixels)', produces: 'image' }),
  image_convert: task('image_convert', { fileArgs: image, summary: 'convert to rgb, rgba or gray', produces: 'image' }),
  image_save: task('image_save', {
    fileArgs: image,
    summary: 'encode as png, jpeg or webp (saved by default)',
    saves: (a) => IMAGE_TYPES[String(a.format ?? 'png')] ?? 'image/png',
  }),
  audio_load: task('audio_load', { fileArgs: audio, summary: 'decode a WAV file (optionally mixed to mono)', produces: 'audio' }),
  audio_resample: task('audio_resample', {
    fileArgs: audio,
    summary: 'change the sample rate (optionally mixed to mono)',
    produces: 'audio',
  }),
  audio_save: task('audio_save', { fileArgs: audio, summary: 'encode as 16-bit WAV (saved by default)', saves: () => 'audio/wav' }),
  text_join: task('text_join', { fileArgs: [], summary: 'join strings (or the "text" of results) with a separator', produces: 'text' }),
  text_template: task('text_template', { fileArgs: [], summary: 'fill {name} placeholders from values', produces: 'text' }),
  json_pick: task('json_pick', { fileArgs: [], summary: 'pick a field from a value by a dotted path' }),
};

/** A pipeline type that names a local ES module ("./my-pipeline.js") rather than a built-in. */
export function isPluginType(type: string): boolean {
  return type.startsWith('./') || type.startsWith('../') || type.startsWith('/');
}

/** File extensions loaded as onnxruntime sessions; other model files of a plugin are text assets. */
export const ONNX_EXTENSIONS = ['.onnx', '.ort'];

/** A plugin's roles are whatever its step gives: .onnx files become sessions, the rest text assets. */
export function pluginInfo(models: Record<string, string>): StepTypeInfo {
  return {
    roles: Object.entries(models).map(([name, path]) => ({
      name,
      kind: ONNX_EXTENSIONS.some((e) => path.endsWith(e)) ? 'onnx' : 'text',
      required: false,
    })),
    fileArgs: [],
    summary: 'a plugin pipeline (local ES module)',
    // Any code: cached only where its step says "cache": true.
    deterministic: () => false,
  };
}
