// The onnx step's arguments, in a light module: the pipeline checks them when it runs, the daemon
// before. What each input may be is checked against the model's own metadata, at the run.
import type { ArgRule, ArgSpec } from '../arguments.js';
import { tensorFromJson } from './tensors.js';
import type { TensorType } from '../../media/npy.js';

export const ONNX_ARGS: Record<string, ArgSpec> = {
  inputs: { expected: 'an object of input name → value', ok: (v) => typeof v === 'object' && v !== null && !Array.isArray(v) },
  outputs: {
    expected: 'an array of output names',
    ok: (v) => Array.isArray(v) && v.length > 0 && v.every((x) => typeof x === 'string'),
    optional: true,
  },
};

function leaves(v: unknown, out: unknown[] = []): unknown[] {
  if (Array.isArray(v)) for (const x of v) leaves(x, out);
  else out.push(v);
  return out;
}

/**
 * An element type to check an untyped literal with before the model's is known: one that accepts
 * every value some model input would, so only what no model takes is refused (a ragged array,
 * null, dims that do not match the data), never what the run would accept.
 */
function lenientType(data: unknown): TensorType {
  const all = leaves(data);
  if (all.some((x) => typeof x === 'string')) return 'int64'; // only 64-bit integers are written as strings
  if (all.length > 0 && all.every((x) => typeof x === 'boolean')) return 'bool';
  return 'float64';
}

/** A literal tensor input that no model could take, said as the run would say it; null for the rest. */
function literalProblem(name: string, v: unknown): string | null {
  if (typeof v === 'string') return null; // a .npy file, or a value from an earlier step: the run reads it
  if (v !== null && typeof v === 'object' && !Array.isArray(v) && 'image' in v) return null; // an image, checked at the run
  const data = v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as { data?: unknown }).data : v;
  if (leaves(data).some((x) => typeof x === 'string' && x.startsWith('previous_result:'))) return null;
  const guessed = lenientType(data);
  try {
    tensorFromJson(v, guessed, `input "${name}"`);
    return null;
  } catch (err) {
    // The type here was a stand-in for the model's: not one to name.
    const typed = v !== null && typeof v === 'object' && !Array.isArray(v) && 'type' in v;
    return typed ? (err as Error).message : (err as Error).message.replace(` for ${guessed}`, '');
  }
}

export const ONNX_RULE: ArgRule = (a) => {
  const problems = Object.entries(a.inputs as Record<string, unknown>)
    .map(([name, v]) => literalProblem(name, v))
    .filter((p) => p !== null);
  return problems.length > 0 ? problems.join('; ') : null;
};
