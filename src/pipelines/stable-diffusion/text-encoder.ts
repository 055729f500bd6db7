// Prompts to embeddings: CLIP ids through the text encoder, one prompt per call (batch 1 fits
// every export, fixed batch or not; two 77-token calls cost nothing next to the UNet's).
import type * as ort from 'onnxruntime-node';
import { fixed, floatData, idTensor, port } from './graph-io.js';
import { MAX_LENGTH, type ClipTokenizer } from './tokenizer.js';

/** last_hidden_state of each prompt, back to back: [prompts.length, 77, D] as float32. */
export async function encodePrompts(
  ortm: typeof ort,
  session: ort.InferenceSession,
  tokenizer: ClipTokenizer,
  prompts: string[],
): Promise<Float32Array> {
  const ids = port(session, 'text_encoder', 'input', 'input_ids');
  const out = port(session, 'text_encoder', 'output', 'last_hidden_state');
  const length = fixed(ids.dims[1]);
  if (length !== undefined && length !== MAX_LENGTH)
    throw new Error(`text_encoder: "input_ids" takes ${length} tokens, not CLIP's ${MAX_LENGTH}`);
  const parts: Float32Array[] = [];
  for (const prompt of prompts) {
    const result = await session.run({ [ids.name]: idTensor(ortm.Tensor, ids, tokenizer.encode(prompt), [1, MAX_LENGTH]) });
    parts.push(floatData(result, out, 'text_encoder'));
  }
  const all = new Float32Array(parts.reduce((s, p) => s + p.length, 0));
  parts.reduce((at, p) => (all.set(p, at), at + p.length), 0);
  if (all.length % (prompts.length * MAX_LENGTH) !== 0)
    throw new Error(`text_encoder: "last_hidden_state" has ${parts[0]!.length} values, not 77 × D`);
  return all;
}
