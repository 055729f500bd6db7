// What the daemon needs to know about each pipeline and task type to validate a workflow before any
// model loads, without importing the implementations (which pull in onnxruntime and sharp).
import type { ModelRole } from './types.js';
import { stableDiffusionLayout, type Layout } from './stable-diffusion/export-layout.js';

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
  },
  'silero-vad': {
    roles: [{ name: 'vad', kind: 'onnx', required: true }],
    fileArgs: ['audio'],
    summary: 'Silero VAD v4: speech segments of a recording, and the speech-only audio',
  },
  onnx: {
    roles: [{ name: 'model', kind: 'onnx', required: true }],
    fileArgs: ['inputs.*', 'inputs.*.image'],
    summary: 'any ONNX model: inputs from JSON, .npy files or images; outputs as tensors',
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
    layout: (given, args) => stableDiffusionLayout(given, { image: args.image !== undefined && args.image !== null }),
  },
};

const IMAGE_TYPES: Record<string, string> = { png: 'image/png', jpeg: 'image/jpeg', webp: 'image/webp' };
const image = ['image'];
const audio = ['audio'];

export const TASKS: Record<string, StepTypeInfo> = {
  image_load: { roles: [], fileArgs: image, summary: 'decode an image file (mode rgb, rgba or gray)' },
  image_resize: { roles: [], fileArgs: image, summary: 'resize to width and/or height (fit: fill, contain, cover, inside, outside)' },
  image_crop: { roles: [], fileArgs: image, summary: 'cut out left, top, width, height (pixels)' },
  image_convert: { roles: [], fileArgs: image, summary: 'convert to rgb, rgba or gray' },
  image_save: { roles: [], fileArgs: image, summary: 'encode as png, jpeg or webp (saved by default)', saves: (a) => IMAGE_TYPES[String(a.format ?? 'png')] ?? 'image/png' },
  audio_load: { roles: [], fileArgs: audio, summary: 'decode a WAV file (optionally mixed to mono)' },
  audio_resample: { roles: [], fileArgs: audio, summary: 'change the sample rate (optionally mixed to mono)' },
  audio_save: { roles: [], fileArgs: audio, summary: 'encode as 16-bit WAV (saved by default)', saves: () => 'audio/wav' },
  text_join: { roles: [], fileArgs: [], summary: 'join strings (or the "text" of results) with a separator' },
  text_template: { roles: [], fileArgs: [], summary: 'fill {name} placeholders from values' },
  json_pick: { roles: [], fileArgs: [], summary: 'pick a field from a value by a dotted path' },
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
    roles: Object.entries(models).map(([name, path]) => ({ name, kind: ONNX_EXTENSIONS.some((e) => path.endsWith(e)) ? 'onnx' : 'text', required: false })),
    fileArgs: [],
    summary: 'a plugin pipeline (local ES module)',
  };
}
