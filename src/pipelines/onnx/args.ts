// The onnx step's arguments, in a light module: the pipeline checks them when it runs, the daemon
// before. What each input may be is checked against the model's own metadata, at the run.
import type { ArgSpec } from '../arguments.js';

export const ONNX_ARGS: Record<string, ArgSpec> = {
  inputs: { expected: 'an object of input name → value', ok: (v) => typeof v === 'object' && v !== null && !Array.isArray(v) },
  outputs: {
    expected: 'an array of output names',
    ok: (v) => Array.isArray(v) && v.length > 0 && v.every((x) => typeof x === 'string'),
    optional: true,
  },
};
