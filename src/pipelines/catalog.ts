// What the daemon needs to know about each pipeline and task type to validate a workflow before any
// model loads, without importing the implementations (which pull in onnxruntime and sharp).
import type { ModelRole } from './types.js';

export interface StepTypeInfo {
  /** Model roles; only pipelines have them. */
  roles: ModelRole[];
  /** Arguments that name input files: resolved to absolute paths and checked to exist before the run. */
  fileArgs: string[];
  /** Extension for result.save when the content type does not imply one. */
  summary: string;
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
};

export const TASKS: Record<string, StepTypeInfo> = {
  text_join: { roles: [], fileArgs: [], summary: 'join strings (or the "text" of results) with a separator' },
  json_pick: { roles: [], fileArgs: [], summary: 'pick a field from a value by a dotted path' },
};
