// Checked access to onnxruntime outputs, so a wrong model in a role fails with a clear message.
import type * as ort from 'onnxruntime-node';

export interface FloatOutput {
  data: Float32Array;
  dims: readonly number[];
}

/** The first output of `session` in `result`, which must be a float32 tensor. */
export function outputOf(result: ort.InferenceSession.OnnxValueMapType, session: ort.InferenceSession, role: string): FloatOutput {
  const name = session.outputNames[0];
  const tensor = name === undefined ? undefined : result[name];
  if (!tensor || tensor.type !== 'float32' || !(tensor.data instanceof Float32Array)) {
    throw new Error(`${role} model gave no float32 output "${name ?? ''}"`);
  }
  return { data: tensor.data, dims: tensor.dims };
}
