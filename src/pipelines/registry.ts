// Implementations by type, for the runner. Loaded on first use, so a runner pays for sharp and a
// pipeline's code only when a workflow needs them. The daemon uses catalog.ts instead, which has
// no heavy imports; test/catalog.test.ts keeps the two in step.
import type { Pipeline } from './types.js';

export const PIPELINE_IMPLS: Record<string, () => Promise<Pipeline>> = {
  'paddle-ocr': async () => (await import('./paddle-ocr/index.js')).paddleOcr,
  'silero-vad': async () => (await import('./silero-vad/index.js')).sileroVad,
  onnx: async () => (await import('./onnx/index.js')).onnxPipeline,
  'stable-diffusion': async () => (await import('./stable-diffusion/index.js')).stableDiffusion,
};

export type Task = (args: Record<string, unknown>) => unknown;

const task =
  <K extends string>(file: string, name: K) =>
  async (): Promise<Task> =>
    (await import(`./tasks/${file}.js`))[name] as Task;

export const TASK_IMPLS: Record<string, () => Promise<Task>> = {
  image_load: task('image-load', 'imageLoad'),
  image_resize: task('image-resize', 'imageResize'),
  image_crop: task('image-crop', 'imageCrop'),
  image_convert: task('image-convert', 'imageConvert'),
  image_save: task('image-save', 'imageSave'),
  audio_load: task('audio-load', 'audioLoad'),
  audio_resample: task('audio-resample', 'audioResample'),
  audio_save: task('audio-save', 'audioSave'),
  text_join: task('text-join', 'textJoin'),
  text_template: task('text-template', 'textTemplate'),
  json_pick: task('json-pick', 'jsonPick'),
};
